// centrifuge-js protobuf build: connection token refresh. The first token
// expires 3 s after connect; getToken returns fresh short-lived tokens. The
// client must refresh over the same connection (protobuf refresh commands,
// refresh replies with expires/ttl) and stay connected well past the original
// expiry (server expired_close_delay is 3 s), server pings answered.
'use strict';

const c = require('../lib/common');

function messages(text) {
  return text.split(' | ').filter((s) => s.startsWith('{')).map((s) => JSON.parse(s));
}

c.run('js_protobuf_refresh', 25000, async () => {
  const user = 'js-pbrefresh-' + c.rand(3);
  const ch = c.channel('pbrefresh');
  const first = c.connToken(user, { exp: c.now() + 3 });
  const issued = [];
  const getToken = async (ctx) => {
    const t = c.connToken(user, { exp: c.now() + 3 });
    issued.push(t.claims);
    c.log('getToken called', ctx, '-> jti', t.claims.jti, 'exp', t.claims.exp);
    return t.token;
  };
  const refreshes = [];
  const replies = [];
  let pings = 0;
  let pongs = 0;
  c.onFrame((conn, dir, text) => {
    if (dir === '>pb') {
      for (const m of messages(text)) {
        if (m.refresh) refreshes.push(m);
        if (Object.keys(m).length === 0) pongs++;
      }
    }
    if (dir === '<pb') {
      for (const m of messages(text)) {
        if (m.refresh) replies.push(m);
        if (Object.keys(m).length === 0) pings++;
      }
    }
  });

  const client = c.track(c.newProtobufClient({ token: first.token, getToken, name: 'pbrefresh' }));
  const sub = c.traceSub(client.newSubscription(ch), 'pbrefresh/sub');
  const connected = c.once(client, 'connected', { what: 'connected' });
  const subscribed = c.once(sub, 'subscribed', { what: 'subscribed' });
  sub.subscribe();
  client.connect();
  const conn = await connected;
  await subscribed;
  c.assertEq(conn.transport, 'websocket', 'transport');
  c.assertEq(client._transport._transport.protocol, 'centrifuge-protobuf', 'negotiated subprotocol');
  const t0 = Date.now();

  const bad = [];
  client.on('connecting', (ctx) => bad.push(['connecting', ctx]));
  client.on('disconnected', (ctx) => bad.push(['disconnected', ctx]));
  sub.on('subscribing', (ctx) => bad.push(['subscribing', ctx]));

  // original exp + expired_close_delay (3 s) + margin
  const until = first.claims.exp * 1000 + 3000 + 2500;
  while (Date.now() < until) {
    c.assertEq(bad, [], 'no reconnect/resubscribe while refreshing');
    await c.sleep(200);
  }
  c.log(`stayed connected ${Date.now() - t0} ms; getToken calls=${issued.length}, pings=${pings}, pongs=${pongs}`);
  c.assertEq(bad, [], 'no reconnect/resubscribe while refreshing');
  c.assertEq(client.state, 'connected', 'client state');
  c.assert(issued.length >= 2, `getToken should have been called at least twice, got ${issued.length}`);
  c.assert(issued.length <= 6, `getToken called too often (${issued.length}): bad ttl in refresh replies?`);
  c.assert(refreshes.length >= 2, `protobuf refresh commands expected, saw ${refreshes.length}`);
  c.assert(replies.length >= 2, `protobuf refresh replies expected, saw ${replies.length}`);
  for (const r of replies) {
    c.assert(r.refresh.expires === true && r.refresh.ttl >= 1 && r.refresh.ttl <= 3,
      `refresh reply should carry expires:true and ttl 1..3, got ${JSON.stringify(r)}`);
  }
  c.assert(pings >= 1, `server pings (empty replies) expected, saw ${pings}`);
  c.assert(pongs >= 1, `pongs (empty commands) expected, saw ${pongs}`);

  // An already expired token: error 109, getToken, connected.
  let expiredCalls = 0;
  const late = c.track(c.newProtobufClient({
    token: c.connToken(user, { exp: c.now() - 10 }).token,
    getToken: async () => { expiredCalls++; return c.connToken(user).token; },
    name: 'pb-expired',
  }));
  const lateErrors = [];
  late.on('error', (e) => lateErrors.push(e));
  const lateConnected = c.once(late, 'connected', { what: 'connected after 109 + getToken', timeout: 8000 });
  late.connect();
  await lateConnected;
  c.assertEq(expiredCalls, 1, 'getToken calls after an expired token');
  c.assert(lateErrors.some((e) => e.error && e.error.code === 109), `error event with code 109 expected, got ${JSON.stringify(lateErrors)}`);

  // The connection is alive: an API publication gets through.
  const pub = c.once(sub, 'publication', { what: 'publication after refreshes' });
  await c.cent().publish({ channel: ch, data: { after: 'refresh' } });
  c.assertEq(JSON.parse(c.text((await pub).data)), { after: 'refresh' }, 'publication after refreshes');
});
