// centrifuge-js: connect with a JWT, subscribe, publish from the client and get
// the own publication back (with ClientInfo), receive a publication made via
// the server API (cent.js), RPC without a handler is rejected with 108, an
// unknown namespace is refused with 102, unsubscribe/resubscribe.
'use strict';

const c = require('../lib/common');

c.run('js_basic', 20000, async () => {
  const user = 'js-basic-' + c.rand(3);
  const { token } = c.connToken(user);
  const ch = c.channel('basic');
  const client = c.track(c.newClient({ token, name: 'basic' }));
  const sub = c.traceSub(client.newSubscription(ch));

  const connected = c.once(client, 'connected', { what: 'connected' });
  const subscribed = c.once(sub, 'subscribed', { what: 'subscribed' });
  sub.subscribe();
  client.connect();

  const conn = await connected;
  c.assert(/^[0-9a-f-]{36}$/i.test(conn.client), `client id should be a UUID, got ${JSON.stringify(conn.client)}`);
  c.assertEq(conn.transport, 'websocket', 'transport');
  c.assertEq(client.state, 'connected', 'client state');

  const sctx = await subscribed;
  c.assertEq(sctx.channel, ch, 'subscribed channel');
  c.assertEq(sctx.recoverable, true, 'recoverable (force_recovery namespace)');
  c.assertEq(sctx.positioned, true, 'positioned (force_recovery implies positioning)');
  c.assert(sctx.streamPosition && typeof sctx.streamPosition.epoch === 'string' && sctx.streamPosition.epoch !== '',
    `streamPosition with an epoch expected, got ${JSON.stringify(sctx.streamPosition)}`);
  c.assertEq(sctx.streamPosition.offset, 0, 'offset of a new channel');
  c.assertEq(sctx.wasRecovering, false, 'wasRecovering on first subscribe');

  // Own publication comes back on the publisher's subscription.
  const payload = { text: 'from client', n: 1, nested: { a: [1, 2, 3], u: 'ünï' } };
  const ownPub = c.once(sub, 'publication', { pred: (p) => p.data && p.data.text === 'from client', what: 'own publication' });
  const pubRes = await sub.publish(payload);
  c.log('publish result', pubRes);
  const own = await ownPub;
  c.assertEq(own.data, payload, 'own publication data');
  c.assertEq(own.channel, ch, 'own publication channel');
  c.assertEq(own.offset, 1, 'own publication offset');
  c.assert(own.info, 'own publication should carry ClientInfo');
  c.assertEq(own.info.user, user, 'publication info.user');
  c.assertEq(own.info.client, conn.client, 'publication info.client');

  // Publication made through the server API (cent.js).
  const api = c.cent();
  const serverPayload = { text: 'from api', t: Date.now() };
  const apiPub = c.once(sub, 'publication', { pred: (p) => p.data && p.data.text === 'from api', what: 'API publication' });
  const apiRes = await api.publish({ channel: ch, data: serverPayload, tags: { k: 'v' } });
  c.log('cent.js publish ->', apiRes);
  c.assertEq(apiRes.offset, 2, 'cent.js publish result offset');
  c.assertEq(apiRes.epoch, sctx.streamPosition.epoch, 'cent.js publish result epoch');
  const got = await apiPub;
  c.assertEq(got.data, serverPayload, 'API publication data');
  c.assertEq(got.offset, 2, 'API publication offset');
  c.assertEq(got.tags, { k: 'v' }, 'API publication tags');
  c.assertEq(got.info, undefined, 'API publication has no ClientInfo');

  // RPC: no RPC proxy configured -> error 108 "not available".
  let rpcErr = null;
  try {
    const r = await client.rpc('echo', { x: 1 });
    c.log('rpc result', r);
  } catch (e) {
    rpcErr = e;
  }
  c.log('rpc error', rpcErr);
  c.assert(rpcErr, 'rpc without a handler should fail');
  c.assertEq(rpcErr.code, 108, 'rpc error code');

  // Unknown namespace: the subscription ends with 102, the connection stays.
  const unknown = c.traceSub(client.newSubscription('nope:' + c.rand(3)), 'unknown');
  const gone = c.once(unknown, 'unsubscribed', { what: 'unsubscribed from an unknown namespace' });
  unknown.subscribe();
  const g = await gone;
  c.assertEq([g.code, g.reason], [102, 'unknown channel'], 'unknown namespace');
  c.assertEq(client.state, 'connected', 'connected after a refused subscribe');

  // Client-side unsubscribe and resubscribe work on the same connection.
  const unsub = c.once(sub, 'unsubscribed', { what: 'unsubscribed' });
  sub.unsubscribe();
  const u = await unsub;
  c.assertEq(u.code, 0, 'unsubscribe code (client side)');
  const resub = c.once(sub, 'subscribed', { what: 'subscribed again' });
  sub.subscribe();
  const r2 = await resub;
  c.assertEq(r2.streamPosition && r2.streamPosition.offset, 2, 'offset after resubscribe');
  c.assertEq(client.state, 'connected', 'still connected');
});
