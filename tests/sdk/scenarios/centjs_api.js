// cent.js (server HTTP API client): publish, broadcast, presence,
// presence_stats, history, history_remove, channels, info against a channel
// with a live centrifuge-js subscriber; errors and a wrong key reject.
// Also checks that publication data passes through the server API verbatim.
'use strict';

const c = require('../lib/common');
const { CentClient } = require('cent.js');

c.run('centjs_api', 20000, async () => {
  const api = c.cent();
  const user = 'centjs-' + c.rand(3);
  const ch = c.channel('centjs');
  const ch2 = c.channel('centjs2');

  const client = c.track(c.newClient({ token: c.connToken(user).token, name: 'sub' }));
  const sub = c.traceSub(client.newSubscription(ch));
  const received = [];
  sub.on('publication', (p) => received.push(p));
  const connected = c.once(client, 'connected', { what: 'connected' });
  const subscribed = c.once(sub, 'subscribed', { what: 'subscribed' });
  sub.subscribe();
  client.connect();
  const conn = await connected;
  await subscribed;

  // publish
  const r1 = await api.publish({ channel: ch, data: { text: 'one' } });
  c.log('publish ->', r1);
  c.assertEq(r1.offset, 1, 'publish offset');
  c.assert(typeof r1.epoch === 'string' && r1.epoch.length > 0, `publish epoch, got ${JSON.stringify(r1)}`);
  await c.waitUntil(() => received.length === 1, { what: 'publication one' });
  c.assertEq(received[0].data, { text: 'one' }, 'received publication');

  // broadcast
  const b = await api.broadcast({ channels: [ch, ch2], data: { text: 'both' } });
  c.log('broadcast ->', b);
  c.assert(b && Array.isArray(b.responses) && b.responses.length === 2, `broadcast responses, got ${JSON.stringify(b)}`);
  c.assertEq(b.responses[0].result.offset, 2, 'broadcast offset in the first channel');
  c.assertEq(b.responses[1].result.offset, 1, 'broadcast offset in the second channel');
  await c.waitUntil(() => received.length === 2, { what: 'broadcast publication' });

  // presence / presence_stats
  const pres = await api.getPresence({ channel: ch });
  c.log('presence ->', pres);
  c.assertEq(Object.keys(pres.presence), [conn.client], 'presence clients');
  c.assertEq(pres.presence[conn.client].user, user, 'presence user');
  const stats = await api.getPresenceStats({ channel: ch });
  c.log('presence_stats ->', stats);
  c.assertEq(stats, { num_clients: 1, num_users: 1 }, 'presence_stats');
  const emptyStats = await api.getPresenceStats({ channel: ch2 });
  c.assertEq(emptyStats, { num_clients: 0, num_users: 0 }, 'presence_stats of a channel without subscribers');

  // history
  const h = await api.getHistory({ channel: ch, limit: 10 });
  c.log('history ->', h);
  c.assertEq(h.publications.map((p) => p.data), [{ text: 'one' }, { text: 'both' }], 'history data');
  c.assertEq(h.publications.map((p) => p.offset), [1, 2], 'history offsets');
  c.assertEq([h.offset, h.epoch], [2, r1.epoch], 'history position');
  const hr = await api.getHistory({ channel: ch, limit: 1, reverse: true });
  c.assertEq(hr.publications.map((p) => p.data.text), ['both'], 'history reverse');
  const hs = await api.getHistory({ channel: ch, limit: 10, since: { offset: 1, epoch: r1.epoch } });
  c.assertEq(hs.publications.map((p) => p.offset), [2], 'history since');

  // channels
  const chans = await api.getChannels({ pattern: `${c.NS}:centjs-*` });
  c.log('channels ->', chans);
  c.assertEq(chans.channels[ch], { num_clients: 1 }, 'channels entry');
  c.assert(!(ch2 in chans.channels), 'a channel without subscribers is not listed');

  // info
  const info = await api.getInfo();
  c.log('info ->', info);
  c.assert(Array.isArray(info.nodes) && info.nodes.length === 1, `info.nodes, got ${JSON.stringify(info)}`);
  const node = info.nodes[0];
  c.assert(typeof node.uid === 'string' && node.uid.length > 0, 'node uid');
  c.assert(typeof node.name === 'string' && node.name.length > 0, 'node name');
  c.assertEq(node.version, c.EXPECTED_VERSION, 'node version');
  c.assert(node.num_clients >= 1 && node.num_users >= 1 && node.num_channels >= 1, `node counters, got ${JSON.stringify(node)}`);

  // history_remove
  c.assertEq(await api.removeHistory({ channel: ch }), {}, 'history_remove result');
  const h2 = await api.getHistory({ channel: ch, limit: 10 });
  c.assertEq(h2.publications, [], 'history after history_remove');

  // errors: unknown namespace, missing channel, wrong API key
  const rejects = async (what, p) => {
    try {
      const v = await p;
      throw new Error(`${what}: expected a rejection, got ${JSON.stringify(v)}`);
    } catch (e) {
      if (e.message && e.message.startsWith(what + ':')) throw e;
      c.log(`${what} rejected:`, e.constructor.name, e.message);
      return e;
    }
  };
  const e1 = await rejects('unknown namespace', api.publish({ channel: 'nope:x', data: {} }));
  c.assertEq(e1.constructor.name, 'CentException', 'unknown namespace error type');
  const raw = await c.api('publish', { channel: 'nope:x', data: {} });
  c.assertEq(raw, { error: { code: 102, message: 'unknown channel' } }, 'unknown namespace error body');
  const e2 = await rejects('missing channel', api.getHistory({}));
  c.assertEq(e2.constructor.name, 'CentException', 'missing channel error type');
  const wrong = new CentClient({ url: c.API_URL, apiKey: 'wrong-key' });
  await rejects('wrong key', wrong.getInfo());

  // Data is embedded verbatim: key order and number spelling survive the
  // server API (Centrifugo passes the JSON bytes through untouched).
  const verbatim = '{"z":1,"a":{"y":2.50,"b":[3,1e2]},"big":123456789012345678901,"m":"x"}';
  const frame = new Promise((resolve) => {
    const off = c.onFrame((id, dir, text) => {
      if (dir === '<' && text.includes('"m":"x"')) {
        off();
        resolve(text);
      }
    });
  });
  const res = await fetch(`${c.API_URL}/publish`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-API-Key': c.API_KEY },
    body: `{"channel":${JSON.stringify(ch)},"data":${verbatim}}`,
  });
  c.assertEq(res.status, 200, 'raw publish status');
  const text = await frame;
  c.log('frame with the verbatim payload:', text);
  c.assert(text.includes(`"data":${verbatim}`),
    `publication data should be delivered byte-for-byte as published (${verbatim}), the subscriber got: ${text}`);
});
