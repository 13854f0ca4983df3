// centrifuge-js: private channel with subscription tokens. Without a token the
// subscribe is refused (103); with a getToken callback returning short-lived
// subscription JWTs the SDK subscribes and keeps the subscription past the
// first token's expiry via sub_refresh (server expired_sub_close_delay: 3 s).
// An expired subscription token gets 109 and a new token from getToken.
'use strict';

const c = require('../lib/common');

c.run('js_sub_token', 25000, async () => {
  const user = 'js-subtok-' + c.rand(3);
  const ch = '$' + c.channel('private');
  const client = c.track(c.newClient({ token: c.connToken(user).token, name: 'subtok' }));
  const connected = c.once(client, 'connected', { what: 'connected' });
  client.connect();
  await connected;

  // 1. no token -> 103 permission denied, terminal for the subscription
  const noTok = c.traceSub(client.newSubscription(ch), 'no-token');
  const refused = c.once(noTok, 'unsubscribed', { what: 'unsubscribed without token' });
  noTok.subscribe();
  const r = await refused;
  c.assertEq([r.code, r.reason], [103, 'permission denied'], 'private channel without token');
  client.removeSubscription(noTok);

  // 2. short-lived subscription tokens refreshed with sub_refresh
  const subTokens = [];
  const getToken = async (ctx) => {
    const claims = { sub: user, channel: ctx.channel, exp: c.now() + 3, jti: 'sub-' + c.rand() };
    subTokens.push(claims);
    c.log('sub getToken', ctx, '-> exp', claims.exp);
    return c.hs256Jwt(claims);
  };
  const subRefreshes = [];
  c.onFrame((id, dir, text) => {
    if (dir === '>' && text.includes('"sub_refresh"')) subRefreshes.push(text);
  });
  const sub = c.traceSub(client.newSubscription(ch, { getToken }), 'private');
  const subscribed = c.once(sub, 'subscribed', { what: 'subscribed to the private channel' });
  sub.subscribe();
  const s = await subscribed;
  c.assertEq(s.channel, ch, 'subscribed channel');
  const firstExp = subTokens[0].exp;
  const bad = [];
  sub.on('subscribing', (ctx) => bad.push(['subscribing', ctx]));
  sub.on('unsubscribed', (ctx) => bad.push(['unsubscribed', ctx]));
  client.on('connecting', (ctx) => bad.push(['connecting', ctx]));

  const until = firstExp * 1000 + 3000 + 2500;
  while (Date.now() < until) {
    c.assertEq(bad, [], 'no resubscribe/reconnect while refreshing the subscription token');
    await c.sleep(200);
  }
  c.assertEq(sub.state, 'subscribed', 'subscription state');
  c.assert(subTokens.length >= 3, `subscription getToken calls: ${subTokens.length}`);
  c.assert(subRefreshes.length >= 2, `sub_refresh commands sent: ${subRefreshes.length}`);
  const pub = c.once(sub, 'publication', { what: 'publication on the private channel' });
  await c.cent().publish({ channel: ch, data: { secret: true } });
  c.assertEq((await pub).data, { secret: true }, 'publication on the private channel');

  // 3. an expired subscription token -> 109 -> getToken -> subscribed
  const ch2 = '$' + c.channel('private2');
  let calls = 0;
  const sub2 = c.traceSub(client.newSubscription(ch2, {
    token: c.hs256Jwt({ sub: user, channel: ch2, exp: c.now() - 10 }),
    getToken: async (ctx) => { calls++; return c.hs256Jwt({ sub: user, channel: ctx.channel, exp: c.now() + 600 }); },
  }), 'expired');
  const errs = [];
  sub2.on('error', (e) => errs.push(e));
  const s2 = c.once(sub2, 'subscribed', { what: 'subscribed after an expired token', timeout: 8000 });
  sub2.subscribe();
  await s2;
  c.assertEq(calls, 1, 'getToken calls after an expired subscription token');
  c.assert(errs.some((e) => e.error && e.error.code === 109), `subscription error 109 expected, got ${JSON.stringify(errs)}`);
});
