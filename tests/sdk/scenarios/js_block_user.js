// centrifuge-js + plain HTTP API: block_user closes the user's connections
// with 3503 "blocked", the SDK treats it as terminal (no reconnect), a new
// connect attempt of the blocked user is refused the same way, other users
// are unaffected, and after unblock_user the user connects again.
'use strict';

const c = require('../lib/common');

c.run('js_block_user', 25000, async () => {
  const user = 'js-blocked-' + c.rand(3);
  const bystanderUser = 'js-bystander-' + c.rand(3);
  const ch = c.channel('block');

  const mk = (u, name) => {
    const cl = c.track(c.newClient({ token: c.connToken(u).token, name, minReconnectDelay: 100, maxReconnectDelay: 500 }));
    const sub = c.traceSub(cl.newSubscription(ch), name + '/sub');
    sub.subscribe();
    return { cl, sub };
  };
  const victim = mk(user, 'victim');
  const bystander = mk(bystanderUser, 'bystander');
  const up = [c.once(victim.cl, 'connected', { what: 'victim connected' }), c.once(bystander.cl, 'connected', { what: 'bystander connected' })];
  victim.cl.connect();
  bystander.cl.connect();
  await Promise.all(up);
  await c.once(victim.sub, 'subscribed', { what: 'victim subscribed', timeout: 3000 }).catch(() => {});
  c.assertEq(victim.sub.state, 'subscribed', 'victim subscription');

  const afterBlock = [];
  const disconnected = c.once(victim.cl, 'disconnected', { what: 'victim disconnected (3503)' });
  const res = await c.api('block_user', { user, expire_at: c.now() + 120 });
  c.assertEq(res, { result: {} }, 'block_user response');
  const d = await disconnected;
  c.assertEq([d.code, d.reason], [3503, 'blocked'], 'disconnected code/reason');
  victim.cl.on('connecting', (ctx) => afterBlock.push(['connecting', ctx]));
  victim.cl.on('connected', (ctx) => afterBlock.push(['connected', ctx]));

  // Terminal: the SDK must stay disconnected.
  await c.sleep(3000);
  c.assertEq(afterBlock, [], 'no reconnect attempt after a 3503');
  c.assertEq(victim.cl.state, 'disconnected', 'victim state');
  c.assertEq(victim.sub.state, 'subscribing', 'victim subscription waits for a connection');
  c.assertEq(bystander.cl.state, 'connected', 'bystander unaffected');

  // Connections of the blocked user are gone from presence.
  const stats = await bystander.sub.presenceStats();
  c.assertEq(stats, { numClients: 1, numUsers: 1 }, 'presence after block');

  // A new connection of the blocked user (fresh token) is refused with 3503.
  const again = c.track(c.newClient({ token: c.connToken(user).token, name: 'again' }));
  const refused = c.once(again, 'disconnected', { what: 'connect of a blocked user refused' });
  let connectedAgain = false;
  again.on('connected', () => { connectedAgain = true; });
  again.connect();
  const r = await refused;
  c.assertEq(connectedAgain, false, 'blocked user must not connect');
  c.assertEq([r.code, r.reason], [3503, 'blocked'], 'refused connect code/reason');

  // Unblock: the user connects again, and the old client can reconnect on demand.
  c.assertEq(await c.api('unblock_user', { user }), { result: {} }, 'unblock_user response');
  const back = c.once(victim.cl, 'connected', { what: 'victim connected after unblock' });
  const resub = c.once(victim.sub, 'subscribed', { what: 'victim resubscribed after unblock' });
  victim.cl.connect();
  await back;
  await resub;
  await c.waitUntil(async () => (await bystander.sub.presenceStats()).numUsers === 2, { what: 'victim back in presence' });

  // Blocking an unknown user and unblocking a user that is not blocked are fine;
  // a request without user is a bad request.
  c.assertEq(await c.api('block_user', { user: 'nobody-' + c.rand(3) }), { result: {} }, 'block_user of an unknown user');
  c.assertEq(await c.api('unblock_user', { user: 'nobody-' + c.rand(3) }), { result: {} }, 'unblock_user of a user that is not blocked');
  const bad = await c.api('block_user', {});
  c.assert(bad.error && bad.error.code === 107, `block_user without user should be error 107, got ${JSON.stringify(bad)}`);
});
