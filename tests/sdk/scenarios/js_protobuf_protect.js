// centrifuge-js protobuf build + plain HTTP API: block_user closes the
// protobuf connection with 3503 "blocked" and the SDK does not reconnect;
// revoke_token of the connection token's jti closes it with 3014
// "state invalidated", after which the SDK reconnects with a fresh token
// from getToken.
'use strict';

const c = require('../lib/common');

async function connectAndSubscribe(opts, ch) {
  const cl = c.track(c.newProtobufClient({ minReconnectDelay: 100, maxReconnectDelay: 500, ...opts }));
  const sub = c.traceSub(cl.newSubscription(ch), opts.name + '/sub');
  const connected = c.once(cl, 'connected', { what: `${opts.name} connected` });
  const subscribed = c.once(sub, 'subscribed', { what: `${opts.name} subscribed` });
  sub.subscribe();
  cl.connect();
  const conn = await connected;
  await subscribed;
  c.assertEq(conn.transport, 'websocket', `${opts.name}: transport`);
  c.assertEq(cl._transport._transport.protocol, 'centrifuge-protobuf', `${opts.name}: negotiated subprotocol`);
  return { cl, sub, conn };
}

c.run('js_protobuf_protect', 30000, async () => {
  const ch = c.channel('pbprotect');

  // --- block_user -> 3503, terminal
  const user = 'js-pbblocked-' + c.rand(3);
  const bystanderUser = 'js-pbbystander-' + c.rand(3);
  const victim = await connectAndSubscribe({ token: c.connToken(user).token, name: 'victim' }, ch);
  const bystander = await connectAndSubscribe({ token: c.connToken(bystanderUser).token, name: 'bystander' }, ch);
  const closes = [];
  c.onFrame((conn, dir, t) => { if (dir === '--' && t.startsWith('closed')) closes.push([conn, t]); });

  const afterBlock = [];
  const disconnected = c.once(victim.cl, 'disconnected', { what: 'victim disconnected (3503)' });
  c.assertEq(await c.api('block_user', { user, expire_at: c.now() + 120 }), { result: {} }, 'block_user response');
  const d = await disconnected;
  c.assertEq([d.code, d.reason], [3503, 'blocked'], 'disconnected code/reason');
  victim.cl.on('connecting', (ctx) => afterBlock.push(['connecting', ctx]));
  victim.cl.on('connected', (ctx) => afterBlock.push(['connected', ctx]));
  c.log('close frames so far', closes);
  c.assert(closes.some(([, t]) => t.startsWith('closed code=3503 ')), `a WebSocket close frame with code 3503 expected, got ${JSON.stringify(closes)}`);
  await c.sleep(3000);
  c.assertEq(afterBlock, [], 'no reconnect attempt after a 3503');
  c.assertEq(victim.cl.state, 'disconnected', 'victim state');
  c.assertEq(bystander.cl.state, 'connected', 'bystander unaffected');
  c.assertEq(await bystander.sub.presenceStats(), { numClients: 1, numUsers: 1 }, 'presence after block');

  // A new protobuf connection of the blocked user is refused with 3503 too.
  const again = c.track(c.newProtobufClient({ token: c.connToken(user).token, name: 'again' }));
  const refused = c.once(again, 'disconnected', { what: 'connect of a blocked user refused' });
  let connectedAgain = false;
  again.on('connected', () => { connectedAgain = true; });
  again.connect();
  const r = await refused;
  c.assertEq(connectedAgain, false, 'blocked user must not connect');
  c.assertEq([r.code, r.reason], [3503, 'blocked'], 'refused connect code/reason');

  // --- revoke_token -> 3014, reconnect with a fresh token
  const ruser = 'js-pbrevoke-' + c.rand(3);
  const issued = [];
  const getToken = async () => {
    const t = c.connToken(ruser);
    issued.push(t);
    c.log(`getToken #${issued.length} -> jti ${t.claims.jti}`);
    return t.token;
  };
  const rv = await connectAndSubscribe({ getToken, name: 'revoke' }, ch);
  c.assertEq(issued.length, 1, 'getToken called once for the first connect');
  const jti1 = issued[0].claims.jti;
  const conns = (await c.apiResult('connections', { user: ruser })).connections;
  c.assertEq(Object.keys(conns), [rv.conn.client], 'connections of the user');
  c.assertEq(conns[rv.conn.client].state.connection_token.uid, jti1, 'connection token uid');

  const reconnecting = c.once(rv.cl, 'connecting', { pred: (x) => x.code !== 0, what: 'connecting after revoke (3014)' });
  const reconnected = c.once(rv.cl, 'connected', { what: 'connected again with a fresh token', timeout: 8000 });
  const resub = c.once(rv.sub, 'subscribed', { what: 'resubscribed after revoke', timeout: 8000 });
  c.assertEq(await c.api('revoke_token', { uid: jti1, expire_at: c.now() + 600 }), { result: {} }, 'revoke_token response');
  const rc = await reconnecting;
  c.assertEq([rc.code, rc.reason], [3014, 'state invalidated'], 'connecting code/reason after revoke');
  c.assert(closes.some(([, t]) => t.startsWith('closed code=3014 ')), `a WebSocket close frame with code 3014 expected, got ${JSON.stringify(closes)}`);
  const conn2 = await reconnected;
  await resub;
  c.assertEq(issued.length, 2, 'getToken called again after 3014');
  c.assert(issued[1].claims.jti !== jti1, 'a new jti');
  c.assert(conn2.client !== rv.conn.client, 'a new connection');
  const pub = c.once(rv.sub, 'publication', { what: 'publication after reconnect' });
  await c.cent().publish({ channel: ch, data: { ok: 1 } });
  c.assertEq(JSON.parse(c.text((await pub).data)), { ok: 1 }, 'publication after reconnect');
});
