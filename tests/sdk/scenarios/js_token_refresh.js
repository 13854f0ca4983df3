// centrifuge-js: connection token refresh. The first token expires 3 s after
// connect; getToken returns fresh short-lived tokens. The client must refresh
// (refresh command, not a reconnect) and stay connected well past the
// original expiry (the server's expired_close_delay is 3 s), with server
// pings answered along the way. An expired token gets 109 and a getToken.
'use strict';

const c = require('../lib/common');

c.run('js_token_refresh', 25000, async () => {
  const user = 'js-refresh-' + c.rand(3);
  const ch = c.channel('refresh');
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
  c.onFrame((conn, dir, text) => {
    if (dir !== '<' && dir !== '>') return;
    for (const line of text.split('\n')) {
      if (!line) continue;
      const m = JSON.parse(line);
      if (dir === '>' && m.refresh) refreshes.push(m);
      if (dir === '<' && m.refresh) replies.push(m);
    }
  });

  const client = c.track(c.newClient({ token: first.token, getToken, name: 'refresh' }));
  const sub = c.traceSub(client.newSubscription(ch));
  const connected = c.once(client, 'connected', { what: 'connected' });
  const subscribed = c.once(sub, 'subscribed', { what: 'subscribed' });
  sub.subscribe();
  client.connect();
  await connected;
  await subscribed;
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
  c.log(`stayed connected ${Date.now() - t0} ms; getToken calls=${issued.length}`);
  c.assertEq(bad, [], 'no reconnect/resubscribe while refreshing');
  c.assertEq(client.state, 'connected', 'client state');
  c.assert(issued.length >= 2, `getToken should have been called at least twice, got ${issued.length}`);
  c.assert(issued.length <= 6, `getToken called too often (${issued.length}): bad ttl in refresh replies?`);
  c.assert(refreshes.length >= 2, `refresh commands expected, saw ${refreshes.length}`);
  for (const r of replies) {
    c.assert(r.refresh.expires === true && r.refresh.ttl >= 1 && r.refresh.ttl <= 3,
      `refresh reply should carry expires:true and ttl 1..3, got ${JSON.stringify(r)}`);
  }

  // An already expired token is answered with 109: the SDK calls getToken
  // and connects with the new token.
  let expiredCalls = 0;
  const late = c.track(c.newClient({
    token: c.connToken(user, { exp: c.now() - 10 }).token,
    getToken: async () => { expiredCalls++; return c.connToken(user).token; },
    name: 'expired',
  }));
  const lateErrors = [];
  late.on('error', (e) => lateErrors.push(e));
  const lateConnected = c.once(late, 'connected', { what: 'connected after 109 + getToken', timeout: 8000 });
  late.connect();
  await lateConnected;
  c.assertEq(expiredCalls, 1, 'getToken calls after an expired token');
  c.assert(lateErrors.some((e) => e.error && e.error.code === 109), `error event with code 109 expected, got ${JSON.stringify(lateErrors)}`);

  // The connection is alive: a publication gets through.
  const pub = c.once(sub, 'publication', { what: 'publication after refreshes' });
  await c.cent().publish({ channel: ch, data: { after: 'refresh' } });
  c.assertEq((await pub).data, { after: 'refresh' }, 'publication after refreshes');
});
