// centrifuge-js: recovery. A subscriber in a force_recovery namespace goes
// offline, publications are made through the server API meanwhile, and on
// reconnect the SDK resubscribes with recover/offset/epoch: the subscribed
// event must report wasRecovering/recovered and the missed publications must
// arrive in order, exactly once. Then the same after a server-initiated
// reconnect (disconnect API with a reconnect code).
'use strict';

const c = require('../lib/common');

c.run('js_recovery', 25000, async () => {
  const user = 'js-rec-' + c.rand(3);
  const ch = c.channel('recovery');
  const api = c.cent();
  const client = c.track(c.newClient({ token: c.connToken(user).token, name: 'rec', minReconnectDelay: 100, maxReconnectDelay: 300 }));
  const sub = c.traceSub(client.newSubscription(ch));
  const received = [];
  sub.on('publication', (p) => received.push(p));

  const first = c.once(sub, 'subscribed', { what: 'first subscribed' });
  sub.subscribe();
  client.connect();
  const s1 = await first;
  c.assertEq(s1.recoverable, true, 'recoverable');
  const epoch = s1.streamPosition.epoch;

  const p1 = c.once(sub, 'publication', { pred: (p) => p.data.n === 1, what: 'publication 1' });
  await api.publish({ channel: ch, data: { n: 1 } });
  await p1;

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
  const got4 = c.once(sub, 'publication', { pred: (p) => p.data.n === 4, what: 'recovered publication 4' });
  client.connect();
  const s2 = await resub;
  c.log('resubscribed ctx', s2);
  c.assertEq(s2.wasRecovering, true, 'wasRecovering after reconnect');
  c.assertEq(s2.recovered, true, 'recovered after reconnect');
  c.assertEq(s2.hasRecoveredPublications, true, 'hasRecoveredPublications');
  // Centrifugo answers a successful recovery with the position the client
  // recovered from (centrifuge client.go: res.Offset = req.Offset); the SDK
  // catches up while it processes the recovered publications.
  c.assertEq(s2.streamPosition, { offset: 1, epoch }, 'stream position recovered from');
  await got4;
  await c.sleep(200);
  c.assertEq(received.map((p) => p.data.n), [1, 2, 3, 4], 'publications seen, in order, without duplicates');
  c.assertEq(received.map((p) => p.offset), [1, 2, 3, 4], 'publication offsets');

  // 2. Server-initiated reconnect (disconnect API with a non-terminal code):
  //    the SDK reconnects by itself and recovers what was published meanwhile.
  const connecting = c.once(client, 'connecting', { what: 'connecting after server disconnect' });
  const resub2 = c.once(sub, 'subscribed', { what: 'resubscribed after server disconnect' });
  const res = await c.apiResult('disconnect', { user, disconnect: { code: 4001, reason: 'go away' } });
  c.assertEq(res, {}, 'disconnect result');
  const cx = await connecting;
  c.assertEq([cx.code, cx.reason], [4001, 'go away'], 'connecting code/reason from the close frame');
  // Published right after the close: lands either in recovery or live.
  await api.publish({ channel: ch, data: { n: 5 } });
  const s3 = await resub2;
  c.log('resubscribed ctx (2)', s3);
  c.assertEq(s3.wasRecovering, true, 'wasRecovering after server disconnect');
  c.assertEq(s3.recovered, true, 'recovered after server disconnect');
  await c.waitUntil(() => received.length >= 5, { what: 'publication 5' });
  await api.publish({ channel: ch, data: { n: 6 } });
  await c.waitUntil(() => received.length >= 6, { what: 'publication 6' });
  await c.sleep(200);
  c.assertEq(received.map((p) => p.data.n), [1, 2, 3, 4, 5, 6], 'all publications exactly once');

  const hist = await sub.history({ limit: 0 });
  c.assertEq(hist.offset, 6, 'history top offset');
  c.assertEq(hist.epoch, epoch, 'epoch unchanged');

  // 3. A subscription created with a known position (`since` option) gets the
  //    publications after it; a wrong epoch is reported as not recovered.
  const other = c.track(c.newClient({ token: c.connToken(user + '-2').token, name: 'since' }));
  const good = c.traceSub(other.newSubscription(ch, { since: { offset: 4, epoch } }), 'since-good');
  const goodPubs = [];
  good.on('publication', (p) => goodPubs.push(p.data.n));
  const goodSubscribed = c.once(good, 'subscribed', { what: 'subscribed with since' });
  good.subscribe();
  other.connect();
  const g = await goodSubscribed;
  c.assertEq([g.wasRecovering, g.recovered], [true, true], 'since with the right epoch: wasRecovering/recovered');
  await c.waitUntil(() => goodPubs.length >= 2, { what: 'publications after offset 4' });
  c.assertEq(goodPubs, [5, 6], 'publications recovered after offset 4');

  const ch2 = ch + '-b';
  await api.publish({ channel: ch2, data: { n: 1 } });
  const bad = c.traceSub(other.newSubscription(ch2, { since: { offset: 1, epoch: 'wrong-epoch' } }), 'since-bad');
  const badPubs = [];
  bad.on('publication', (p) => badPubs.push(p.data.n));
  const badSubscribed = c.once(bad, 'subscribed', { what: 'subscribed with a wrong epoch' });
  bad.subscribe();
  const b = await badSubscribed;
  c.assertEq([b.wasRecovering, b.recovered], [true, false], 'wrong epoch: wasRecovering/recovered');
  c.assertEq(b.streamPosition && b.streamPosition.offset, 1, 'wrong epoch: current stream offset');
  c.assert(b.streamPosition && b.streamPosition.epoch !== 'wrong-epoch', 'wrong epoch: server epoch reported');
  await c.sleep(100);
  c.assertEq(badPubs, [], 'wrong epoch: nothing recovered');
});
