// centrifuge-js protobuf build: recovery. The client goes offline,
// publications are made through the server API (JSON data: the protobuf
// client gets the JSON bytes), and on reconnect the SDK resubscribes with
// recover/offset/epoch: the subscribed event must report
// wasRecovering/recovered and the missed publications must arrive in order,
// exactly once. Then the same after a server-initiated reconnect.
'use strict';

const c = require('../lib/common');

const decode = (p) => JSON.parse(c.text(p.data));

c.run('js_protobuf_recovery', 25000, async () => {
  const user = 'js-pbrec-' + c.rand(3);
  const ch = c.channel('pbrecovery');
  const api = c.cent();
  const client = c.track(c.newProtobufClient({ token: c.connToken(user).token, name: 'pbrec', minReconnectDelay: 100, maxReconnectDelay: 300 }));
  const sub = c.traceSub(client.newSubscription(ch), 'pbrec/sub');
  const received = [];
  sub.on('publication', (p) => received.push(p));

  const first = c.once(sub, 'subscribed', { what: 'first subscribed' });
  const connected = c.once(client, 'connected', { what: 'connected' });
  sub.subscribe();
  client.connect();
  const conn = await connected;
  c.assertEq(conn.transport, 'websocket', 'transport');
  c.assertEq(client._transport._transport.protocol, 'centrifuge-protobuf', 'negotiated subprotocol');
  const s1 = await first;
  c.assertEq(s1.recoverable, true, 'recoverable');
  const epoch = s1.streamPosition.epoch;

  const p1 = c.once(sub, 'publication', { what: 'publication 1' });
  await api.publish({ channel: ch, data: { n: 1 } });
  c.assertEq(decode(await p1), { n: 1 }, 'publication 1');

  // 1. Client-side disconnect, publish while offline, connect again.
  const down = c.once(client, 'disconnected', { what: 'disconnected' });
  client.disconnect();
  await down;
  c.assertEq(sub.state, 'subscribing', 'subscription state while the client is disconnected');
  for (const n of [2, 3, 4]) {
    const r = await api.publish({ channel: ch, data: { n } });
    c.assertEq(r.offset, n, `offset of offline publication ${n}`);
  }

  const resub = c.once(sub, 'subscribed', { what: 'resubscribed after reconnect' });
  const got4 = c.once(sub, 'publication', { pred: (p) => Number(p.offset) === 4, what: 'recovered publication 4' });
  client.connect();
  const s2 = await resub;
  c.log('resubscribed ctx', s2);
  c.assertEq(s2.wasRecovering, true, 'wasRecovering after reconnect');
  c.assertEq(s2.recovered, true, 'recovered after reconnect');
  c.assertEq(s2.hasRecoveredPublications, true, 'hasRecoveredPublications');
  c.assertEq({ offset: Number(s2.streamPosition.offset), epoch: s2.streamPosition.epoch }, { offset: 1, epoch }, 'stream position recovered from');
  await got4;
  await c.sleep(200);
  c.assertEq(received.map(decode), [{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }], 'publications (decoded JSON bytes), in order, exactly once');
  c.assertEq(received.map((p) => Number(p.offset)), [1, 2, 3, 4], 'publication offsets');

  // 2. Server-initiated reconnect (disconnect API with a non-terminal code).
  const connecting = c.once(client, 'connecting', { what: 'connecting after server disconnect' });
  const resub2 = c.once(sub, 'subscribed', { what: 'resubscribed after server disconnect' });
  c.assertEq(await c.apiResult('disconnect', { user, disconnect: { code: 4001, reason: 'go away' } }), {}, 'disconnect result');
  const cx = await connecting;
  c.assertEq([cx.code, cx.reason], [4001, 'go away'], 'connecting code/reason from the close frame');
  await api.publish({ channel: ch, data: { n: 5 } });
  const s3 = await resub2;
  c.log('resubscribed ctx (2)', s3);
  c.assertEq([s3.wasRecovering, s3.recovered], [true, true], 'wasRecovering/recovered after server disconnect');
  await c.waitUntil(() => received.length >= 5, { what: 'publication 5' });
  await api.publish({ channel: ch, data: { n: 6 } });
  await c.waitUntil(() => received.length >= 6, { what: 'publication 6' });
  await c.sleep(200);
  c.assertEq(received.map((p) => decode(p).n), [1, 2, 3, 4, 5, 6], 'all publications exactly once');

  const hist = await sub.history({ limit: 0 });
  c.assertEq(Number(hist.offset), 6, 'history top offset');
  c.assertEq(hist.epoch, epoch, 'epoch unchanged');
});
