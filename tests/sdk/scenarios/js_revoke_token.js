// centrifuge-js + plain HTTP API: revoke_token (uid = the JWT jti) closes the
// connection with 3014 "state invalidated"; the SDK reconnects, calls its
// getToken for a fresh token (new jti) and connects again. A connect with the
// revoked token is answered with error 109, which makes the SDK fetch a new
// token too.
'use strict';

const c = require('../lib/common');

async function connectionsOf(user) {
  const r = await c.apiResult('connections', { user });
  return r.connections;
}

c.run('js_revoke_token', 25000, async () => {
  const user = 'js-revoke-' + c.rand(3);
  const ch = c.channel('revoke');
  const issued = [];
  const getToken = async () => {
    const t = c.connToken(user);
    issued.push(t);
    c.log(`getToken #${issued.length} -> jti ${t.claims.jti}`);
    return t.token;
  };
  const client = c.track(c.newClient({ getToken, name: 'revoke', minReconnectDelay: 100, maxReconnectDelay: 500 }));
  const sub = c.traceSub(client.newSubscription(ch));
  const connected = c.once(client, 'connected', { what: 'connected' });
  const subscribed = c.once(sub, 'subscribed', { what: 'subscribed' });
  sub.subscribe();
  client.connect();
  const conn1 = await connected;
  await subscribed;
  c.assertEq(issued.length, 1, 'getToken called once for the first connect');
  const jti1 = issued[0].claims.jti;

  let conns = await connectionsOf(user);
  c.assertEq(Object.keys(conns), [conn1.client], 'connections of the user');
  c.assertEq(conns[conn1.client].state.connection_token, { uid: jti1, issued_at: issued[0].claims.iat }, 'connection_token of the live connection');

  // Revoke the live token.
  const reconnecting = c.once(client, 'connecting', { pred: (x) => x.code !== 0, what: 'connecting after revoke (3014)' });
  const reconnected = c.once(client, 'connected', { what: 'connected again with a fresh token', timeout: 8000 });
  const resub = c.once(sub, 'subscribed', { what: 'resubscribed after revoke', timeout: 8000 });
  c.assertEq(await c.api('revoke_token', { uid: jti1, expire_at: c.now() + 600 }), { result: {} }, 'revoke_token response');
  const rc = await reconnecting;
  c.assertEq([rc.code, rc.reason], [3014, 'state invalidated'], 'connecting code/reason after revoke');
  const conn2 = await reconnected;
  await resub;
  c.assertEq(issued.length, 2, 'getToken called again after 3014');
  const jti2 = issued[1].claims.jti;
  c.assert(jti2 !== jti1, 'a new jti');
  c.assert(conn2.client !== conn1.client, 'a new connection');
  conns = await connectionsOf(user);
  c.assertEq(Object.keys(conns), [conn2.client], 'connections after reconnect');
  c.assertEq(conns[conn2.client].state.connection_token.uid, jti2, 'connection token uid after reconnect');

  // The connection works.
  const pub = c.once(sub, 'publication', { what: 'publication after reconnect' });
  await c.cent().publish({ channel: ch, data: { ok: 1 } });
  c.assertEq((await pub).data, { ok: 1 }, 'publication after reconnect');

  // Raw check: connecting with the revoked token is answered with error 109.
  const reply = await new Promise((resolve, reject) => {
    const ws = new c.TracingWebSocket(c.WS_URL);
    const t = setTimeout(() => { ws.terminate(); reject(new Error('no reply to connect with a revoked token')); }, 5000);
    ws.on('open', () => ws.send(JSON.stringify({ id: 1, connect: { token: issued[0].token } })));
    ws.on('message', (data) => {
      const first = JSON.parse(data.toString().split('\n')[0]);
      clearTimeout(t);
      ws.terminate();
      resolve(first);
    });
    ws.on('close', (code, reason) => { clearTimeout(t); reject(new Error(`closed ${code} ${reason} instead of replying`)); });
    ws.on('error', reject);
  });
  c.assertEq(reply, { id: 1, error: { code: 109, message: 'token expired' } }, 'reply to connect with a revoked token');

  // SDK check: a client whose configured token is revoked gets 109, calls
  // getToken and connects with the fresh token.
  let calls = 0;
  const second = c.track(c.newClient({
    token: issued[0].token,
    getToken: async () => { calls++; return c.connToken(user).token; },
    name: 'stale-token',
  }));
  const errors = [];
  second.on('error', (e) => errors.push(e));
  const ok = c.once(second, 'connected', { what: 'connect after 109 + getToken', timeout: 8000 });
  second.connect();
  await ok;
  c.assertEq(calls, 1, 'getToken called once after 109');
  c.assert(errors.some((e) => e.error && e.error.code === 109), `an error event with code 109 expected, got ${JSON.stringify(errors)}`);
});
