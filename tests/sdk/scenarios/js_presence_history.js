// centrifuge-js: join/leave events, presence, presence_stats and history
// (limit, since, reverse) as the SDK reports them.
'use strict';

const c = require('../lib/common');

async function connectAndSubscribe(name, user, ch) {
  const client = c.track(c.newClient({ token: c.connToken(user).token, name }));
  const sub = c.traceSub(client.newSubscription(ch), name + '/sub');
  const connected = c.once(client, 'connected', { what: `${name} connected` });
  const subscribed = c.once(sub, 'subscribed', { what: `${name} subscribed` });
  sub.subscribe();
  client.connect();
  const conn = await connected;
  await subscribed;
  return { client, sub, id: conn.client };
}

c.run('js_presence_history', 20000, async () => {
  const ch = c.channel('presence');
  const ua = 'js-pa-' + c.rand(3);
  const ub = 'js-pb-' + c.rand(3);

  const a = await connectAndSubscribe('A', ua, ch);
  const joinB = c.once(a.sub, 'join', { pred: (j) => j.info.user === ub, what: 'join of B seen by A' });
  const b = await connectAndSubscribe('B', ub, ch);
  const join = await joinB;
  c.assertEq(join.channel, ch, 'join channel');
  c.assertEq(join.info.client, b.id, 'join info.client');

  // presence from both sides
  for (const [who, s] of [['A', a.sub], ['B', b.sub]]) {
    const p = await s.presence();
    c.log(`presence (${who})`, p);
    c.assert(p && p.clients, `presence result should have clients, got ${JSON.stringify(p)}`);
    c.assertEq(Object.keys(p.clients).sort(), [a.id, b.id].sort(), `presence client ids (${who})`);
    c.assertEq(p.clients[a.id].user, ua, 'presence user of A');
    c.assertEq(p.clients[a.id].client, a.id, 'presence client of A');
    c.assertEq(p.clients[b.id].user, ub, 'presence user of B');
    const st = await s.presenceStats();
    c.log(`presence_stats (${who})`, st);
    c.assertEq(st, { numClients: 2, numUsers: 2 }, `presence_stats (${who})`);
  }

  // client-level presence/history calls with a channel argument
  const cp = await a.client.presenceStats(ch);
  c.assertEq(cp, { numClients: 2, numUsers: 2 }, 'client.presenceStats(channel)');

  // history
  const empty = await a.sub.history({ limit: 10 });
  c.log('history (empty)', empty);
  c.assertEq(empty.publications.length, 0, 'history of a fresh channel');
  c.assertEq(empty.offset, 0, 'history offset of a fresh channel');
  c.assert(typeof empty.epoch === 'string' && empty.epoch !== '', 'history epoch should be set');

  for (let i = 1; i <= 5; i++) {
    const seen = c.once(b.sub, 'publication', { pred: (p) => p.data.i === i, what: `publication ${i} on B` });
    await a.sub.publish({ i });
    await seen;
  }

  const all = await a.sub.history({ limit: 10 });
  c.log('history (limit 10)', all);
  c.assertEq(all.publications.map((p) => p.data.i), [1, 2, 3, 4, 5], 'history data');
  c.assertEq(all.publications.map((p) => p.offset), [1, 2, 3, 4, 5], 'history offsets');
  c.assertEq(all.offset, 5, 'history top offset');
  c.assertEq(all.epoch, empty.epoch, 'history epoch stays');
  c.assertEq(all.publications[0].info && all.publications[0].info.user, ua, 'history publication info.user');

  const limited = await b.sub.history({ limit: 2 });
  c.assertEq(limited.publications.map((p) => p.data.i), [1, 2], 'history limit 2');
  c.assertEq(limited.offset, 5, 'history top offset with limit');

  const reversed = await b.sub.history({ limit: 2, reverse: true });
  c.assertEq(reversed.publications.map((p) => p.data.i), [5, 4], 'history reverse limit 2');

  const since = await b.sub.history({ limit: 10, since: { offset: 3, epoch: all.epoch } });
  c.assertEq(since.publications.map((p) => p.data.i), [4, 5], 'history since offset 3');

  const top = await b.sub.history({ limit: -1 });
  c.log('history (limit -1)', top);
  c.assertEq(top.publications.length, 5, 'history limit -1 (no limit in the JS SDK) returns all');

  const onlyPos = await b.sub.history();
  c.log('history (no limit)', onlyPos);
  c.assertEq(onlyPos.publications.length, 0, 'history without limit returns only the position');
  c.assertEq(onlyPos.offset, 5, 'history without limit: top offset');

  let badEpoch = null;
  try {
    await b.sub.history({ limit: 10, since: { offset: 1, epoch: 'not-the-epoch' } });
  } catch (e) {
    badEpoch = e;
  }
  c.log('history with a wrong epoch ->', badEpoch);
  c.assert(badEpoch && badEpoch.code === 112, `history since a wrong epoch should fail with 112, got ${JSON.stringify(badEpoch)}`);

  // B leaves: A sees the leave and the presence shrinks.
  const leave = c.once(a.sub, 'leave', { pred: (l) => l.info.client === b.id, what: 'leave of B seen by A' });
  b.sub.unsubscribe();
  const l = await leave;
  c.assertEq(l.info.user, ub, 'leave info.user');
  const st = await a.sub.presenceStats();
  c.assertEq(st, { numClients: 1, numUsers: 1 }, 'presence_stats after B left');

  // B disconnects without unsubscribing first: presence drops too.
  b.sub.subscribe();
  await c.once(b.sub, 'subscribed', { what: 'B subscribed again' });
  await c.waitUntil(async () => (await a.sub.presenceStats()).numClients === 2, { what: 'B back in presence' });
  const leave2 = c.once(a.sub, 'leave', { pred: (x) => x.info.user === ub, what: 'leave of B on disconnect' });
  b.client.disconnect();
  await leave2;
  await c.waitUntil(async () => (await a.sub.presenceStats()).numClients === 1, { what: 'presence after B disconnected' });
});
