// Client flows of centrifuge-js over its bidirectional emulation transports
// (http_stream, sse), shared by the js_http_stream*.js and js_sse*.js
// scenarios. Every client is made by c.newEmulationClient with a transports
// array of ONE entry, so it cannot fall back to WebSocket, and every
// `connected` event must report that transport. `opts.protobuf` selects the
// SDK's protobuf build (http_stream only: the SDK's sse transport is JSON).
// The frames printed on failure are the HTTP requests and the stream
// contents, recorded by c.tracingFetch.
'use strict';

const c = require('./common');

// Payload helpers: JSON data is an object in the JSON build and its JSON text
// as bytes in the protobuf build.
function codecOf(protobuf) {
  return protobuf
    ? { enc: (o) => c.bytes(JSON.stringify(o)), dec: (d) => JSON.parse(c.text(d)) }
    : { enc: (o) => o, dec: (d) => d };
}

function label(transport, protobuf) {
  return transport + (protobuf ? '/protobuf' : '');
}

// Makes a client of the given transport that checks the transport of every
// `connected` event; returns {cl, connectedTransports}.
function mkClient(transport, protobuf, opts) {
  const cl = c.track(c.newEmulationClient(transport, { protobuf, minReconnectDelay: 100, maxReconnectDelay: 500, ...opts }));
  const seen = [];
  cl.on('connected', (ctx) => seen.push(ctx.transport));
  return { cl, seen };
}

function assertTransports(seen, transport, what) {
  c.assert(seen.length > 0, `${what}: no connected event`);
  c.assertEq(seen, seen.map(() => transport), `${what}: transport of every connected event`);
}

async function connectAndSubscribe(transport, protobuf, opts, ch) {
  const { cl, seen } = mkClient(transport, protobuf, opts);
  const sub = c.traceSub(cl.newSubscription(ch), opts.name + '/sub');
  const connected = c.once(cl, 'connected', { what: `${opts.name} connected` });
  const subscribed = c.once(sub, 'subscribed', { what: `${opts.name} subscribed` });
  sub.subscribe();
  cl.connect();
  const conn = await connected;
  c.assertEq(conn.transport, transport, `${opts.name}: ctx.transport of connected`);
  const sctx = await subscribed;
  return { cl, sub, conn, sctx, seen };
}

// Connect with a JWT, subscribe, own publication, API publication, join,
// presence, presence_stats, history, RPC (108), unknown namespace (102).
async function basic(transport, { protobuf = false } = {}) {
  const { enc, dec } = codecOf(protobuf);
  const name = label(transport, protobuf);
  const user = `js-emu-${transport}-` + c.rand(3);
  const info = { name: 'emu user', n: 5 };
  const ch = c.channel(`emu-${transport}`);
  const api = c.cent();

  const a = await connectAndSubscribe(transport, protobuf, { token: c.connToken(user, { info }).token, name }, ch);
  const { cl, sub, conn, sctx } = a;
  c.assert(/^[0-9a-f-]{36}$/i.test(conn.client), `client id should be a UUID, got ${JSON.stringify(conn.client)}`);
  c.assertEq(cl.state, 'connected', 'client state');
  c.assertEq(cl._transport && cl._transport.name(), transport, 'SDK transport in use');
  c.assertEq(cl._transport.emulation(), true, 'an emulation transport');
  c.assert(cl._session, `the SDK should have the emulation session from the connect reply, got ${JSON.stringify(cl._session)}`);
  const reconnects = [];
  cl.on('connecting', (x) => reconnects.push(x));

  c.assertEq(sctx.channel, ch, 'subscribed channel');
  c.assertEq(sctx.recoverable, true, 'recoverable (force_recovery namespace)');
  c.assertEq(sctx.positioned, true, 'positioned');
  c.assert(sctx.streamPosition && typeof sctx.streamPosition.epoch === 'string' && sctx.streamPosition.epoch !== '',
    `streamPosition with an epoch expected, got ${JSON.stringify(sctx.streamPosition)}`);
  c.assertEq(Number(sctx.streamPosition.offset), 0, 'offset of a new channel');
  const epoch = sctx.streamPosition.epoch;

  // Own publication: the publish command goes through POST /emulation, the
  // reply and the publication come back on the stream.
  const payload = { text: 'from client', n: 1, nested: { a: [1, 2, 3], u: 'ünï' } };
  const ownPub = c.once(sub, 'publication', { what: 'own publication' });
  const pubRes = await sub.publish(enc(payload));
  c.log('publish result', pubRes);
  const own = await ownPub;
  c.assertEq(dec(own.data), payload, 'own publication data');
  c.assertEq(own.channel, ch, 'own publication channel');
  c.assertEq(Number(own.offset), 1, 'own publication offset');
  c.assert(own.info, 'own publication should carry ClientInfo');
  c.assertEq(own.info.user, user, 'publication info.user');
  c.assertEq(own.info.client, conn.client, 'publication info.client');
  c.assertEq(dec(own.info.connInfo), info, 'publication info.connInfo');

  // Publication through the server API.
  const serverPayload = { text: 'from api', t: Date.now() };
  const apiPub = c.once(sub, 'publication', { pred: (p) => Number(p.offset) === 2, what: 'API publication' });
  const apiRes = await api.publish({ channel: ch, data: serverPayload, tags: { k: 'v' } });
  c.assertEq([apiRes.offset, apiRes.epoch], [2, epoch], 'API publish result');
  const got = await apiPub;
  c.assertEq(dec(got.data), serverPayload, 'API publication data');
  c.assertEq(got.tags, { k: 'v' }, 'API publication tags');
  c.assertEq(got.info, undefined, 'API publication has no ClientInfo');

  // A second client of the same transport joins.
  const user2 = `js-emu2-${transport}-` + c.rand(3);
  const joined = c.once(sub, 'join', { pred: (j) => j.info.user === user2, what: 'join of the second client' });
  const b = await connectAndSubscribe(transport, protobuf, { token: c.connToken(user2).token, name: name + '-2' }, ch);
  const j = await joined;
  c.assertEq(j.info.client, b.conn.client, 'join info.client');

  // presence_stats, presence, history.
  c.assertEq(await sub.presenceStats(), { numClients: 2, numUsers: 2 }, 'presence_stats');
  c.assertEq(await cl.presenceStats(ch), { numClients: 2, numUsers: 2 }, 'client.presenceStats(channel)');
  const p = await sub.presence();
  c.assertEq(Object.keys(p.clients).sort(), [conn.client, b.conn.client].sort(), 'presence client ids');
  c.assertEq(p.clients[conn.client].user, user, 'presence user');
  c.assertEq(dec(p.clients[conn.client].connInfo), info, 'presence connInfo');
  const h = await sub.history({ limit: 10 });
  c.log('history', h);
  c.assertEq(h.publications.map((x) => Number(x.offset)), [1, 2], 'history offsets');
  c.assertEq(h.publications.map((x) => dec(x.data)), [payload, serverPayload], 'history data');
  c.assertEq([Number(h.offset), h.epoch], [2, epoch], 'history stream position');
  const rev = await b.sub.history({ limit: 1, reverse: true });
  c.assertEq(rev.publications.map((x) => Number(x.offset)), [2], 'history reverse limit 1');

  // RPC without a handler: 108; unknown namespace: 102, connection stays.
  let rpcErr = null;
  try {
    await cl.rpc('echo', enc({ x: 1 }));
  } catch (e) {
    rpcErr = e;
  }
  c.assert(rpcErr && rpcErr.code === 108, `rpc without a handler should fail with 108, got ${JSON.stringify(rpcErr)}`);
  const unknown = c.traceSub(cl.newSubscription('nope:' + c.rand(3)), 'unknown');
  const gone = c.once(unknown, 'unsubscribed', { what: 'unsubscribed from an unknown namespace' });
  unknown.subscribe();
  const g = await gone;
  c.assertEq([g.code, g.reason], [102, 'unknown channel'], 'unknown namespace');

  // Leave of the second client.
  const left = c.once(sub, 'leave', { pred: (l) => l.info.client === b.conn.client, what: 'leave of the second client' });
  b.sub.unsubscribe();
  await left;
  c.assertEq(await sub.presenceStats(), { numClients: 1, numUsers: 1 }, 'presence_stats after leave');

  c.assertEq(cl.state, 'connected', 'still connected');
  c.assertEq(reconnects, [], 'no reconnects');
  assertTransports(a.seen, transport, 'first client');
  assertTransports(b.seen, transport, 'second client');
  const bad = c.emulationStatuses.filter(([, s]) => s !== 204 && s !== 200);
  c.assertEq(bad, [], 'statuses of POST /emulation (204 expected)');
  c.assert(c.emulationStatuses.length >= 8, `the commands after connect should go through POST /emulation, saw ${c.emulationStatuses.length}`);
}

// Recovery after a client-side disconnect/connect and after a server-side
// disconnect (disconnect API, code 4001: a disconnect push on the stream).
async function recovery(transport, { protobuf = false } = {}) {
  const { dec } = codecOf(protobuf);
  const name = label(transport, protobuf) + '-rec';
  const user = `js-emurec-${transport}-` + c.rand(3);
  const ch = c.channel(`emurec-${transport}`);
  const api = c.cent();
  const { cl, seen } = mkClient(transport, protobuf, { token: c.connToken(user).token, name });
  const sub = c.traceSub(cl.newSubscription(ch), name + '/sub');
  const received = [];
  sub.on('publication', (p) => received.push(p));
  const first = c.once(sub, 'subscribed', { what: 'first subscribed' });
  sub.subscribe();
  cl.connect();
  const s1 = await first;
  c.assertEq(s1.recoverable, true, 'recoverable');
  const epoch = s1.streamPosition.epoch;
  const p1 = c.once(sub, 'publication', { pred: (p) => dec(p.data).n === 1, what: 'publication 1' });
  await api.publish({ channel: ch, data: { n: 1 } });
  await p1;

  // 1. Client-side disconnect, publish while offline, connect again.
  const down = c.once(cl, 'disconnected', { what: 'disconnected' });
  cl.disconnect();
  await down;
  for (const n of [2, 3, 4]) {
    const r = await api.publish({ channel: ch, data: { n } });
    c.assertEq(r.offset, n, `offset of offline publication ${n}`);
  }
  // The server dropped the connection of the closed stream: presence is empty.
  await c.waitUntil(async () => (await c.apiResult('presence_stats', { channel: ch })).num_clients === 0,
    { what: 'the closed stream to leave presence' });
  const resub = c.once(sub, 'subscribed', { what: 'resubscribed after reconnect' });
  const got4 = c.once(sub, 'publication', { pred: (p) => dec(p.data).n === 4, what: 'recovered publication 4' });
  cl.connect();
  const s2 = await resub;
  c.log('resubscribed ctx', s2);
  c.assertEq([s2.wasRecovering, s2.recovered, s2.hasRecoveredPublications], [true, true, true], 'wasRecovering/recovered/hasRecoveredPublications');
  c.assertEq([Number(s2.streamPosition.offset), s2.streamPosition.epoch], [1, epoch], 'stream position recovered from');
  await got4;
  await c.sleep(200);
  c.assertEq(received.map((p) => dec(p.data).n), [1, 2, 3, 4], 'publications seen, in order, without duplicates');
  c.assertEq(received.map((p) => Number(p.offset)), [1, 2, 3, 4], 'publication offsets');

  // 2. Server-initiated reconnect: the disconnect push carries code/reason.
  const connecting = c.once(cl, 'connecting', { what: 'connecting after server disconnect' });
  const resub2 = c.once(sub, 'subscribed', { what: 'resubscribed after server disconnect' });
  c.assertEq(await c.apiResult('disconnect', { user, disconnect: { code: 4001, reason: 'go away' } }), {}, 'disconnect result');
  const cx = await connecting;
  c.assertEq([cx.code, cx.reason], [4001, 'go away'], 'connecting code/reason from the disconnect push');
  await api.publish({ channel: ch, data: { n: 5 } });
  const s3 = await resub2;
  c.assertEq([s3.wasRecovering, s3.recovered], [true, true], 'wasRecovering/recovered after server disconnect');
  await c.waitUntil(() => received.length >= 5, { what: 'publication 5' });
  await api.publish({ channel: ch, data: { n: 6 } });
  await c.waitUntil(() => received.length >= 6, { what: 'publication 6' });
  await c.sleep(200);
  c.assertEq(received.map((p) => dec(p.data).n), [1, 2, 3, 4, 5, 6], 'all publications exactly once');
  const hist = await sub.history({ limit: 0 });
  c.assertEq([Number(hist.offset), hist.epoch], [6, epoch], 'history stream position');
  c.assertEq(cl.state, 'connected', 'connected at the end');
  assertTransports(seen, transport, 'recovering client');
  c.assertEq(seen.length, 3, 'connected three times');
}

// Connection token refresh: short-lived tokens from getToken, refreshed with
// refresh commands (through /emulation) and not by reconnecting; an expired
// token is answered with 109 and the SDK connects with a fresh one.
async function refresh(transport, { protobuf = false } = {}) {
  const { dec } = codecOf(protobuf);
  const name = label(transport, protobuf) + '-refresh';
  const user = `js-emuref-${transport}-` + c.rand(3);
  const ch = c.channel(`emuref-${transport}`);
  const firstTok = c.connToken(user, { exp: c.now() + 3 });
  const issued = [];
  const getToken = async (ctx) => {
    const t = c.connToken(user, { exp: c.now() + 3 });
    issued.push(t.claims);
    c.log('getToken called', ctx, '-> jti', t.claims.jti, 'exp', t.claims.exp);
    return t.token;
  };
  const refreshes = [];
  const replies = [];
  c.onMessage((lbl, dir, m) => {
    if (dir === '>' && m.refresh) refreshes.push([lbl, m]);
    if (dir === '<' && m.refresh) replies.push([lbl, m]);
  });
  const { cl, seen } = mkClient(transport, protobuf, { token: firstTok.token, getToken, name });
  const sub = c.traceSub(cl.newSubscription(ch), name + '/sub');
  const subscribed = c.once(sub, 'subscribed', { what: 'subscribed' });
  sub.subscribe();
  cl.connect();
  await subscribed;
  const t0 = Date.now();
  const bad = [];
  cl.on('connecting', (ctx) => bad.push(['connecting', ctx]));
  cl.on('disconnected', (ctx) => bad.push(['disconnected', ctx]));
  sub.on('subscribing', (ctx) => bad.push(['subscribing', ctx]));

  // original exp + expired_close_delay (3 s) + margin
  const until = firstTok.claims.exp * 1000 + 3000 + 2500;
  while (Date.now() < until) {
    c.assertEq(bad, [], 'no reconnect/resubscribe while refreshing');
    await c.sleep(200);
  }
  c.log(`stayed connected ${Date.now() - t0} ms; getToken calls=${issued.length}`);
  c.assertEq(bad, [], 'no reconnect/resubscribe while refreshing');
  c.assertEq(cl.state, 'connected', 'client state');
  c.assert(issued.length >= 2, `getToken should have been called at least twice, got ${issued.length}`);
  c.assert(issued.length <= 6, `getToken called too often (${issued.length}): bad ttl in refresh replies?`);
  c.assert(refreshes.length >= 2, `refresh commands expected, saw ${refreshes.length}`);
  c.assert(refreshes.every(([lbl]) => c.emulationStatuses.some(([l]) => l === lbl)),
    `refresh commands should go through POST /emulation: ${JSON.stringify(refreshes.map(([l]) => l))}`);
  c.assert(replies.length >= 2, `refresh replies expected on the stream, saw ${replies.length}`);
  for (const [, r] of replies) {
    c.assert(r.refresh.expires === true && r.refresh.ttl >= 1 && r.refresh.ttl <= 3,
      `refresh reply should carry expires:true and ttl 1..3, got ${JSON.stringify(r)}`);
  }

  // An already expired token: 109, getToken, connected.
  let expiredCalls = 0;
  const late = mkClient(transport, protobuf, {
    token: c.connToken(user, { exp: c.now() - 10 }).token,
    getToken: async () => { expiredCalls++; return c.connToken(user).token; },
    name: name + '-expired',
  });
  const lateErrors = [];
  late.cl.on('error', (e) => lateErrors.push(e));
  const lateConnected = c.once(late.cl, 'connected', { what: 'connected after 109 + getToken', timeout: 8000 });
  late.cl.connect();
  await lateConnected;
  c.assertEq(expiredCalls, 1, 'getToken calls after an expired token');
  c.assert(lateErrors.some((e) => e.error && e.error.code === 109), `error event with code 109 expected, got ${JSON.stringify(lateErrors)}`);

  const pub = c.once(sub, 'publication', { what: 'publication after refreshes' });
  await c.cent().publish({ channel: ch, data: { after: 'refresh' } });
  c.assertEq(dec((await pub).data), { after: 'refresh' }, 'publication after refreshes');
  assertTransports(seen, transport, 'refreshing client');
  c.assertEq(seen.length, 1, 'the refreshing client connected once');
  assertTransports(late.seen, transport, 'client with an expired token');
}

// block_user: the server's disconnect push 3503 "blocked" ends the session
// and the SDK does not reconnect; a new connect of the blocked user is
// refused with 3503; after unblock_user the user connects again.
async function blockUser(transport, { protobuf = false } = {}) {
  const name = label(transport, protobuf);
  const user = `js-emublk-${transport}-` + c.rand(3);
  const ch = c.channel(`emublock-${transport}`);
  const victim = await connectAndSubscribe(transport, protobuf, { token: c.connToken(user).token, name: name + '-victim' }, ch);
  const bystander = await connectAndSubscribe(transport, protobuf, { token: c.connToken(`js-emubys-${transport}-` + c.rand(3)).token, name: name + '-bystander' }, ch);
  const disconnects = [];
  c.onMessage((lbl, dir, m) => {
    if (dir === '<' && m.push && m.push.disconnect) disconnects.push([lbl, m.push.disconnect]);
  });

  const afterBlock = [];
  const disconnected = c.once(victim.cl, 'disconnected', { what: 'victim disconnected (3503)' });
  c.assertEq(await c.api('block_user', { user, expire_at: c.now() + 120 }), { result: {} }, 'block_user response');
  const d = await disconnected;
  c.assertEq([d.code, d.reason], [3503, 'blocked'], 'disconnected code/reason');
  victim.cl.on('connecting', (ctx) => afterBlock.push(['connecting', ctx]));
  victim.cl.on('connected', (ctx) => afterBlock.push(['connected', ctx]));
  c.log('disconnect pushes', disconnects);
  c.assert(disconnects.some(([, x]) => x.code === 3503 && x.reason === 'blocked'),
    `a disconnect push {code: 3503, reason: "blocked"} on the stream expected, got ${JSON.stringify(disconnects)}`);
  await c.sleep(3000);
  c.assertEq(afterBlock, [], 'no reconnect attempt after a 3503');
  c.assertEq(victim.cl.state, 'disconnected', 'victim state');
  c.assertEq(bystander.cl.state, 'connected', 'bystander unaffected');
  c.assertEq(await bystander.sub.presenceStats(), { numClients: 1, numUsers: 1 }, 'presence after block');

  // A new connection of the blocked user is refused with 3503.
  const again = mkClient(transport, protobuf, { token: c.connToken(user).token, name: name + '-again' });
  const refused = c.once(again.cl, 'disconnected', { what: 'connect of a blocked user refused' });
  again.cl.connect();
  const r = await refused;
  c.assertEq(again.seen, [], 'blocked user must not connect');
  c.assertEq([r.code, r.reason], [3503, 'blocked'], 'refused connect code/reason');

  // Unblock: the old client connects again on demand.
  c.assertEq(await c.api('unblock_user', { user }), { result: {} }, 'unblock_user response');
  const back = c.once(victim.cl, 'connected', { what: 'victim connected after unblock' });
  const resub = c.once(victim.sub, 'subscribed', { what: 'victim resubscribed after unblock' });
  victim.cl.connect();
  await back;
  await resub;
  c.assertEq(await bystander.sub.presenceStats(), { numClients: 2, numUsers: 2 }, 'presence after unblock');
  assertTransports(victim.seen, transport, 'victim');
  assertTransports(bystander.seen, transport, 'bystander');
}

// revoke_token of the connection token's jti: disconnect push 3014 "state
// invalidated", the SDK reconnects with a fresh token from getToken; a raw
// connect with the revoked token is answered with error 109.
async function revokeToken(transport, { protobuf = false } = {}) {
  const name = label(transport, protobuf) + '-revoke';
  const user = `js-emurev-${transport}-` + c.rand(3);
  const ch = c.channel(`emurevoke-${transport}`);
  const issued = [];
  const getToken = async () => {
    const t = c.connToken(user);
    issued.push(t);
    c.log(`getToken #${issued.length} -> jti ${t.claims.jti}`);
    return t.token;
  };
  const a = await connectAndSubscribe(transport, protobuf, { getToken, name }, ch);
  c.assertEq(issued.length, 1, 'getToken called once for the first connect');
  const jti1 = issued[0].claims.jti;
  let conns = (await c.apiResult('connections', { user })).connections;
  c.assertEq(Object.keys(conns), [a.conn.client], 'connections of the user');
  c.assertEq(conns[a.conn.client].state.connection_token, { uid: jti1, issued_at: issued[0].claims.iat }, 'connection_token of the live connection');

  const reconnecting = c.once(a.cl, 'connecting', { pred: (x) => x.code !== 0, what: 'connecting after revoke (3014)' });
  const reconnected = c.once(a.cl, 'connected', { what: 'connected again with a fresh token', timeout: 8000 });
  const resub = c.once(a.sub, 'subscribed', { what: 'resubscribed after revoke', timeout: 8000 });
  c.assertEq(await c.api('revoke_token', { uid: jti1, expire_at: c.now() + 600 }), { result: {} }, 'revoke_token response');
  const rc = await reconnecting;
  c.assertEq([rc.code, rc.reason], [3014, 'state invalidated'], 'connecting code/reason after revoke');
  const conn2 = await reconnected;
  await resub;
  c.assertEq(conn2.transport, transport, 'transport after reconnect');
  c.assertEq(issued.length, 2, 'getToken called again after 3014');
  c.assert(issued[1].claims.jti !== jti1, 'a new jti');
  c.assert(conn2.client !== a.conn.client, 'a new connection');
  conns = (await c.apiResult('connections', { user })).connections;
  c.assertEq(Object.keys(conns), [conn2.client], 'connections after reconnect');
  c.assertEq(conns[conn2.client].state.connection_token.uid, issued[1].claims.jti, 'connection token uid after reconnect');
  const pub = c.once(a.sub, 'publication', { what: 'publication after reconnect' });
  await c.cent().publish({ channel: ch, data: { ok: 1 } });
  c.assertEq(codecOf(protobuf).dec((await pub).data), { ok: 1 }, 'publication after reconnect');
  assertTransports(a.seen, transport, 'revoked client');

  // The revoked token on a new connect: error 109, getToken, connected.
  let calls = 0;
  const second = mkClient(transport, protobuf, {
    token: issued[0].token,
    getToken: async () => { calls++; return c.connToken(user).token; },
    name: name + '-stale',
  });
  const errors = [];
  second.cl.on('error', (e) => errors.push(e));
  const ok = c.once(second.cl, 'connected', { what: 'connect after 109 + getToken', timeout: 8000 });
  second.cl.connect();
  await ok;
  c.assertEq(calls, 1, 'getToken called once after 109');
  c.assert(errors.some((e) => e.error && e.error.code === 109), `an error event with code 109 expected, got ${JSON.stringify(errors)}`);
  assertTransports(second.seen, transport, 'client with the revoked token');
}

module.exports = { basic, recovery, refresh, blockUser, revokeToken };
