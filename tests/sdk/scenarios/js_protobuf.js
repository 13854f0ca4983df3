// centrifuge-js protobuf build (require('centrifuge/build/protobuf'), which
// asks for the `centrifuge-protobuf` WebSocket subprotocol and sends binary
// frames): connect with a JWT, subscribe in the sdk namespace, publish binary
// data from the client and get it back byte for byte with ClientInfo, receive
// an API publication (JSON data arrives as its JSON bytes), join, presence,
// presence_stats and history. Then a JSON client and a protobuf client on the
// same channel both receive one API publication.
'use strict';

const c = require('../lib/common');

c.run('js_protobuf', 25000, async () => {
  const user = 'js-pb-' + c.rand(3);
  const info = { name: 'pb user', n: 7 };
  const { token } = c.connToken(user, { info });
  const ch = c.channel('pb');
  const api = c.cent();

  const client = c.track(c.newProtobufClient({ token, name: 'pb' }));
  const sub = c.traceSub(client.newSubscription(ch), 'pb/sub');
  const connected = c.once(client, 'connected', { what: 'protobuf client connected' });
  const subscribed = c.once(sub, 'subscribed', { what: 'protobuf subscription subscribed' });
  sub.subscribe();
  client.connect();

  const conn = await connected;
  c.log('connected ctx', conn);
  const reconnects = [];
  client.on('connecting', (ctx) => reconnects.push(ctx));
  c.assert(/^[0-9a-f-]{36}$/i.test(conn.client), `client id should be a UUID, got ${JSON.stringify(conn.client)}`);
  c.assertEq(conn.transport, 'websocket', 'transport');
  c.assertEq(client.state, 'connected', 'client state');
  // The SDK's WebSocket asked for the subprotocol; the server must have agreed.
  const ws = client._transport && client._transport._transport;
  c.assert(ws, 'the SDK should expose its WebSocket transport');
  c.assertEq(ws.protocol, 'centrifuge-protobuf', 'negotiated WebSocket subprotocol');
  c.assertEq(ws.binaryType, 'arraybuffer', 'protobuf transport in binary mode');

  const sctx = await subscribed;
  c.assertEq(sctx.channel, ch, 'subscribed channel');
  c.assertEq(sctx.recoverable, true, 'recoverable (force_recovery namespace)');
  c.assertEq(sctx.positioned, true, 'positioned');
  c.assert(sctx.streamPosition && typeof sctx.streamPosition.epoch === 'string' && sctx.streamPosition.epoch !== '',
    `streamPosition with an epoch expected, got ${JSON.stringify(sctx.streamPosition)}`);
  c.assertEq(Number(sctx.streamPosition.offset), 0, 'offset of a new channel');
  c.assertEq(sctx.wasRecovering, false, 'wasRecovering on first subscribe');
  const epoch = sctx.streamPosition.epoch;

  // Own publication: arbitrary binary (not UTF-8, with a zero byte and 0xff).
  const payload = new Uint8Array([0, 1, 2, 0xff, 0xfe, 0x80, 0x7f, 10, 13, 0x22, 0x7b]);
  const ownPub = c.once(sub, 'publication', { what: 'own binary publication' });
  const pubRes = await sub.publish(payload);
  c.log('publish result', pubRes);
  const own = await ownPub;
  c.assert(own.data instanceof Uint8Array, `own publication data should be bytes, got ${typeof own.data}`);
  c.assertEq(c.hex(own.data), c.hex(payload), 'own publication bytes');
  c.assertEq(own.channel, ch, 'own publication channel');
  c.assertEq(Number(own.offset), 1, 'own publication offset');
  c.assert(own.info, 'own publication should carry ClientInfo');
  c.assertEq(own.info.user, user, 'publication info.user');
  c.assertEq(own.info.client, conn.client, 'publication info.client');
  c.assert(own.info.connInfo && own.info.connInfo.length > 0, `publication info.connInfo should hold the token info, got ${c.hex(own.info.connInfo)}`);
  c.assertEq(JSON.parse(c.text(own.info.connInfo)), info, 'publication info.connInfo (JSON bytes of the token info)');

  // API publication of JSON: the protobuf client gets the JSON text as bytes.
  const apiPub = c.once(sub, 'publication', { pred: (p) => Number(p.offset) === 2, what: 'API publication' });
  const apiRes = await api.publish({ channel: ch, data: { a: 1 }, tags: { k: 'v' } });
  c.log('cent.js publish ->', apiRes);
  c.assertEq(apiRes.offset, 2, 'API publish offset');
  c.assertEq(apiRes.epoch, epoch, 'API publish epoch');
  const got = await apiPub;
  c.assert(got.data instanceof Uint8Array, `API publication data should be bytes, got ${typeof got.data}`);
  c.assertEq(JSON.parse(c.text(got.data)), { a: 1 }, `API publication data (bytes ${c.hex(got.data)})`);
  c.assertEq(got.tags, { k: 'v' }, 'API publication tags');
  c.assertEq(got.info, undefined, 'API publication has no ClientInfo');

  // A second protobuf client joins: join event (join_leave) with its ClientInfo.
  const user2 = 'js-pb2-' + c.rand(3);
  const other = c.track(c.newProtobufClient({ token: c.connToken(user2).token, name: 'pb2' }));
  const osub = c.traceSub(other.newSubscription(ch), 'pb2/sub');
  const joined = c.once(sub, 'join', { pred: (j) => j.info.user === user2, what: 'join of the second client' });
  const oconnected = c.once(other, 'connected', { what: 'second client connected' });
  const osubscribed = c.once(osub, 'subscribed', { what: 'second client subscribed' });
  osub.subscribe();
  other.connect();
  const oconn = await oconnected;
  await osubscribed;
  const j = await joined;
  c.assertEq(j.channel, ch, 'join channel');
  c.assertEq(j.info.client, oconn.client, 'join info.client');

  // Presence and presence_stats.
  const p = await sub.presence();
  c.log('presence', p);
  c.assertEq(Object.keys(p.clients).sort(), [conn.client, oconn.client].sort(), 'presence client ids');
  c.assertEq(p.clients[conn.client].user, user, 'presence user');
  c.assertEq(p.clients[conn.client].client, conn.client, 'presence client');
  c.assertEq(JSON.parse(c.text(p.clients[conn.client].connInfo)), info, 'presence connInfo (JSON bytes of the token info)');
  c.assertEq(p.clients[oconn.client].user, user2, 'presence user of the second client');
  const st = await sub.presenceStats();
  c.log('presence_stats', st);
  c.assertEq(st, { numClients: 2, numUsers: 2 }, 'presence_stats');
  c.assertEq(await client.presenceStats(ch), { numClients: 2, numUsers: 2 }, 'client.presenceStats(channel)');

  // History: both publications, the binary one byte for byte.
  const h = await sub.history({ limit: 10 });
  c.log('history', h);
  c.assertEq(h.publications.length, 2, 'history length');
  c.assertEq(h.publications.map((x) => Number(x.offset)), [1, 2], 'history offsets');
  c.assertEq(c.hex(h.publications[0].data), c.hex(payload), 'history: binary publication bytes');
  c.assertEq(h.publications[0].info && h.publications[0].info.user, user, 'history: info.user');
  c.assertEq(JSON.parse(c.text(h.publications[1].data)), { a: 1 }, 'history: API publication JSON bytes');
  c.assertEq(Number(h.offset), 2, 'history top offset');
  c.assertEq(h.epoch, epoch, 'history epoch');
  const rev = await osub.history({ limit: 1, reverse: true });
  c.assertEq(rev.publications.map((x) => Number(x.offset)), [2], 'history reverse limit 1');
  const since = await osub.history({ limit: 10, since: { offset: 1, epoch } });
  c.assertEq(since.publications.map((x) => Number(x.offset)), [2], 'history since offset 1');

  // Leave of the second client.
  const left = c.once(sub, 'leave', { pred: (l) => l.info.client === oconn.client, what: 'leave of the second client' });
  osub.unsubscribe();
  await left;
  c.assertEq(await sub.presenceStats(), { numClients: 1, numUsers: 1 }, 'presence_stats after leave');

  // Mixed: a JSON client and the protobuf client on the same channel.
  const jsonUser = 'js-json-' + c.rand(3);
  const jclient = c.track(c.newClient({ token: c.connToken(jsonUser).token, name: 'json' }));
  const jsub = c.traceSub(jclient.newSubscription(ch), 'json/sub');
  const jsubscribed = c.once(jsub, 'subscribed', { what: 'JSON client subscribed' });
  jsub.subscribe();
  jclient.connect();
  await jsubscribed;
  c.assertEq(jclient._transport._transport.protocol, '', 'JSON client: no subprotocol');
  const mixed = { mixed: true, list: [1, 'two', null], u: 'ünï' };
  const onPb = c.once(sub, 'publication', { pred: (x) => Number(x.offset) === 3, what: 'mixed publication on the protobuf client' });
  const onJson = c.once(jsub, 'publication', { pred: (x) => x.offset === 3, what: 'mixed publication on the JSON client' });
  const mr = await api.publish({ channel: ch, data: mixed });
  c.assertEq(mr.offset, 3, 'mixed publish offset');
  const [pp, jp] = await Promise.all([onPb, onJson]);
  c.assertEq(jp.data, mixed, 'JSON client: publication data');
  c.assertEq(JSON.parse(c.text(pp.data)), mixed, 'protobuf client: publication data (JSON bytes)');
  c.assertEq(c.text(pp.data), JSON.stringify(mixed), 'protobuf client: the bytes the API received');
  c.assertEq(client.state, 'connected', 'protobuf client still connected');
  c.assertEq(reconnects, [], 'no reconnects');
});
