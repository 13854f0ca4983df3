// Shared helpers for the Node scenarios (centrifuge-js 5.8.0 + ws 8.23.0 on
// Node 20, cent.js 6.1.0). Every scenario calls run(name, timeoutMs, fn): it
// prints OK and exits 0 when fn resolves, or prints the failure, the event
// log and the captured WebSocket frames and exits 1 (also on timeout).
'use strict';

const crypto = require('crypto');
const util = require('util');
const WebSocket = require('ws');
const { Centrifuge } = require('centrifuge');
const { CentClient } = require('cent.js');

const WS_URL = process.env.SDK_WS_URL || 'ws://127.0.0.1:8000/connection/websocket';
const API_URL = process.env.SDK_API_URL || 'http://127.0.0.1:8000/api';
const API_KEY = process.env.SDK_API_KEY || 'api-key';
const SECRET = process.env.SDK_HMAC_SECRET || 'secret';
const NS = process.env.SDK_NS || 'sdk';
const EXPECTED_VERSION = process.env.SDK_SERVER_VERSION || '0.1.0 Gyre';

const started = Date.now();
const events = [];
const frames = [];
let connSeq = 0;

function stamp() {
  return ((Date.now() - started) / 1000).toFixed(3).padStart(7);
}

function fmt(args) {
  return args.map((a) => (typeof a === 'string' ? a : util.inspect(a, { depth: 6, breakLength: 200 }))).join(' ');
}

// Event log: printed on failure (and always when SDK_VERBOSE=1).
function log(...args) {
  const line = `${stamp()} ${fmt(args)}`;
  events.push(line);
  if (process.env.SDK_VERBOSE === '1') console.log(line);
}

const frameListeners = [];

// cb(connId, dir, text) for every frame ('<' received, '>' sent).
function onFrame(cb) {
  frameListeners.push(cb);
  return () => frameListeners.splice(frameListeners.indexOf(cb), 1);
}

function trace(conn, dir, text) {
  const t = String(text);
  for (const cb of frameListeners.slice()) {
    try {
      cb(conn, dir, t);
    } catch (e) {
      log('frame listener error', e);
    }
  }
  // conn: a number for a WebSocket, or a label such as 'http#3' for the
  // HTTP requests of the emulation transports.
  const label = typeof conn === 'number' ? `ws#${conn}` : conn;
  frames.push(`${stamp()} ${label} ${dir} ${t.length > 600 ? t.slice(0, 600) + '…' : t}`);
  if (frames.length > 400) frames.shift();
}

// The `ws` constructor with every frame recorded, so that a failure shows
// what the server actually sent.
class TracingWebSocket extends WebSocket {
  constructor(...args) {
    super(...args);
    const n = ++connSeq;
    this._traceId = n;
    trace(n, '--', `open ${args[0]}`);
    this.on('message', (data, isBinary) => trace(n, isBinary ? '<bin' : '<', isBinary ? data.toString('hex') : data.toString()));
    this.on('close', (code, reason) => trace(n, '--', `closed code=${code} reason=${JSON.stringify(reason.toString())}`));
    this.on('error', (err) => trace(n, '--', `error ${err.message}`));
  }

  send(data, ...rest) {
    trace(this._traceId, '>', Buffer.isBuffer(data) ? data.toString() : data);
    return super.send(data, ...rest);
  }
}

function b64url(buf) {
  return Buffer.from(buf).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

function hs256Jwt(claims, secret = SECRET) {
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const payload = b64url(JSON.stringify(claims));
  const sig = b64url(crypto.createHmac('sha256', secret).update(header + '.' + payload).digest());
  return header + '.' + payload + '.' + sig;
}

function now() {
  return Math.floor(Date.now() / 1000);
}

function rand(n = 6) {
  return crypto.randomBytes(n).toString('hex');
}

// Connection JWT: {sub, iat, exp, jti} plus any overrides (null removes a claim).
function connToken(user, extra = {}) {
  const claims = { sub: user, iat: now(), exp: now() + 3600, jti: 'jti-' + rand(), ...extra };
  for (const k of Object.keys(claims)) if (claims[k] === null) delete claims[k];
  return { token: hs256Jwt(claims), claims };
}

function channel(prefix) {
  return `${NS}:${prefix}-${rand(4)}`;
}

function newClient(opts = {}) {
  const c = new Centrifuge(WS_URL, { websocket: TracingWebSocket, timeout: 5000, ...opts });
  const name = opts.name || 'js';
  c.on('connecting', (ctx) => log(`[${name}] connecting`, ctx.code, ctx.reason));
  c.on('connected', (ctx) => log(`[${name}] connected client=${ctx.client} transport=${ctx.transport}`));
  c.on('disconnected', (ctx) => log(`[${name}] disconnected`, ctx.code, ctx.reason));
  c.on('error', (ctx) => log(`[${name}] error`, ctx.type, ctx.error && (ctx.error.message || ctx.error)));
  return c;
}

function traceSub(sub, name = 'sub') {
  sub.on('subscribing', (ctx) => log(`[${name}] subscribing ${sub.channel}`, ctx.code, ctx.reason));
  sub.on('subscribed', (ctx) => log(`[${name}] subscribed`, ctx));
  sub.on('unsubscribed', (ctx) => log(`[${name}] unsubscribed`, ctx.code, ctx.reason));
  sub.on('error', (ctx) => log(`[${name}] sub error`, ctx.type, ctx.error));
  sub.on('publication', (ctx) => log(`[${name}] publication offset=${ctx.offset}`, ctx.data));
  return sub;
}

function cent() {
  return new CentClient({ url: API_URL, apiKey: API_KEY });
}

// Plain HTTP call to the server API: returns the parsed JSON body.
async function api(method, body) {
  const res = await fetch(`${API_URL}/${method}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-API-Key': API_KEY },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  log(`api ${method} ${JSON.stringify(body)} -> ${res.status} ${text}`);
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`api ${method}: HTTP ${res.status}, body is not JSON: ${JSON.stringify(text)}`);
  }
  if (res.status !== 200) throw new Error(`api ${method}: HTTP ${res.status} ${text}`);
  return parsed;
}

async function apiResult(method, body) {
  const r = await api(method, body);
  if (r.error) throw new Error(`api ${method} error ${JSON.stringify(r.error)}`);
  return r.result;
}

class AssertionError extends Error {}

function assert(cond, msg) {
  if (!cond) throw new AssertionError(msg);
}

// Structural equality (object key order does not matter).
function assertEq(actual, expected, msg) {
  if (!util.isDeepStrictEqual(actual, expected)) {
    throw new AssertionError(`${msg}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// Resolves with the first `event` args of `emitter` accepted by `pred`.
function once(emitter, event, { timeout = 5000, pred = () => true, what } = {}) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      emitter.removeListener(event, h);
      reject(new AssertionError(`timeout (${timeout} ms) waiting for ${what || event}`));
    }, timeout);
    function h(ctx) {
      let ok;
      try {
        ok = pred(ctx);
      } catch (e) {
        ok = false;
      }
      if (!ok) return;
      clearTimeout(t);
      emitter.removeListener(event, h);
      resolve(ctx);
    }
    emitter.on(event, h);
  });
}

// Polls `fn` until it returns a truthy value.
async function waitUntil(fn, { timeout = 5000, interval = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new AssertionError(`timeout (${timeout} ms) waiting for ${what}`);
    await sleep(interval);
  }
}

function dumpAndExit(name, err) {
  console.log(`FAIL ${name}: ${err && err.stack ? err.stack : fmt([err])}`);
  if (process.env.SDK_VERBOSE !== '1') {
    console.log('--- event log');
    for (const l of events) console.log(l);
  }
  console.log('--- frames (> client to server, < server to client; ws#N a WebSocket, http#N an HTTP request)');
  for (const l of frames) console.log(l);
  process.exit(1);
}

const clients = [];

function track(c) {
  clients.push(c);
  return c;
}

function run(name, timeoutMs, fn) {
  const deadline = setTimeout(() => dumpAndExit(name, new Error(`scenario timeout after ${timeoutMs} ms`)), timeoutMs);
  process.on('unhandledRejection', (e) => dumpAndExit(name, e));
  Promise.resolve()
    .then(fn)
    .then(() => {
      clearTimeout(deadline);
      for (const c of clients) {
        try {
          c.disconnect();
        } catch (e) {
          /* ignore */
        }
      }
      if (process.env.SDK_VERBOSE === '1') {
        for (const l of frames) console.log(l);
      }
      console.log(`OK ${name}`);
      process.exit(0);
    })
    .catch((e) => dumpAndExit(name, e));
}

module.exports = {
  WS_URL,
  API_URL,
  API_KEY,
  SECRET,
  NS,
  EXPECTED_VERSION,
  WebSocket,
  TracingWebSocket,
  Centrifuge,
  hs256Jwt,
  connToken,
  now,
  rand,
  channel,
  newClient,
  traceSub,
  cent,
  api,
  apiResult,
  assert,
  assertEq,
  sleep,
  once,
  waitUntil,
  log,
  onFrame,
  track,
  run,
};

// --- protobuf flavour (centrifuge-js protobuf build) ---------------------------
// Appended for the js_protobuf* scenarios. Frames are binary: the tracing
// socket records them as hex ('<bin' / '>bin', as TracingWebSocket does for
// received binary data) and, decoded with the SDK's own codec, as JSON
// ('<pb' replies / '>pb' commands).

let pbCodecInstance = null;

function pbCodec() {
  if (!pbCodecInstance) {
    const { Centrifuge: CentrifugeProtobuf } = require('centrifuge/build/protobuf');
    pbCodecInstance = new CentrifugeProtobuf(WS_URL, { websocket: WebSocket })._codec;
  }
  return pbCodecInstance;
}

// bytes fields as "hex:…" (plus the text when it is UTF-8), 64-bit integers
// (protobufjs Long) as numbers.
function pbJsonReplacer(key, value) {
  if (value instanceof Uint8Array || (value && value.type === 'Buffer' && Array.isArray(value.data))) {
    const b = Buffer.from(value instanceof Uint8Array ? value : value.data);
    let t = null;
    try {
      t = new TextDecoder('utf-8', { fatal: true }).decode(b);
    } catch (e) {
      /* not text */
    }
    return `hex:${b.toString('hex')}` + (t !== null && b.length ? ` (${JSON.stringify(t)})` : '');
  }
  if (value && typeof value === 'object' && typeof value.low === 'number' && typeof value.high === 'number' && 'unsigned' in value) {
    return value.high * 4294967296 + (value.low >>> 0);
  }
  return value;
}

// Decodes a binary frame (several length-prefixed messages) to a JSON text.
function pbDecodeFrame(buf, kind = 'replies') {
  try {
    const u8 = new Uint8Array(buf.buffer ? buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) : buf);
    const msgs = kind === 'commands' ? pbCodec().decodeCommands(u8) : pbCodec().decodeReplies(u8);
    return msgs.map((m) => JSON.stringify(m, pbJsonReplacer)).join(' | ');
  } catch (e) {
    return `(undecodable: ${e.message})`;
  }
}

function pbToHex(data) {
  if (typeof data === 'string') return data;
  return Buffer.from(data.buffer ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : data).toString('hex');
}

class ProtobufTracingWebSocket extends TracingWebSocket {
  constructor(...args) {
    super(...args);
    this.on('open', () => trace(this._traceId, '--', `open, subprotocol=${JSON.stringify(this.protocol)}`));
    this.on('message', (data, isBinary) => {
      if (isBinary) {
        // TracingWebSocket's own line cannot show an ArrayBuffer: hex here.
        if (data instanceof ArrayBuffer) trace(this._traceId, '<hex', pbToHex(new Uint8Array(data)));
        trace(this._traceId, '<pb', pbDecodeFrame(data, 'replies'));
      }
      else trace(this._traceId, '<TEXT', data.toString());
    });
  }

  send(data, ...rest) {
    if (typeof data === 'string') {
      trace(this._traceId, '>', data);
    } else {
      trace(this._traceId, '>bin', pbToHex(data));
      trace(this._traceId, '>pb', pbDecodeFrame(data, 'commands'));
    }
    return WebSocket.prototype.send.call(this, data, ...rest);
  }
}

// centrifuge-js protobuf build (require('centrifuge/build/protobuf')) with the
// same event logging as newClient.
function newProtobufClient(opts = {}) {
  const { Centrifuge: CentrifugeProtobuf } = require('centrifuge/build/protobuf');
  const c = new CentrifugeProtobuf(opts.url || WS_URL, { websocket: ProtobufTracingWebSocket, timeout: 5000, ...opts });
  const name = opts.name || 'js-pb';
  c.on('connecting', (ctx) => log(`[${name}] connecting`, ctx.code, ctx.reason));
  c.on('connected', (ctx) => log(`[${name}] connected client=${ctx.client} transport=${ctx.transport}`));
  c.on('disconnected', (ctx) => log(`[${name}] disconnected`, ctx.code, ctx.reason));
  c.on('error', (ctx) => log(`[${name}] error`, ctx.type, ctx.error && (ctx.error.message || ctx.error)));
  return c;
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

function bytes(s) {
  return utf8Encoder.encode(s);
}

// Uint8Array -> string (throws on invalid UTF-8).
function text(b) {
  return utf8Decoder.decode(b);
}

// Uint8Array -> hex, for comparisons and messages.
function hex(b) {
  return b == null ? String(b) : Buffer.from(b).toString('hex');
}

module.exports.ProtobufTracingWebSocket = ProtobufTracingWebSocket;
module.exports.newProtobufClient = newProtobufClient;
module.exports.pbDecodeFrame = pbDecodeFrame;
module.exports.bytes = bytes;
module.exports.text = text;
module.exports.hex = hex;

// --- bidirectional emulation (http_stream, sse) ----------------------------------
// centrifuge-js's emulation transports on Node 20: http_stream uses the global
// fetch and ReadableStream; sse needs an EventSource, from the `eventsource`
// package (4.1.1, the last release for Node 20), handed to the SDK with its
// `eventsource` option. Every HTTP request of these transports goes through
// tracingFetch, which records what went over the wire as frames labelled
// http#N: the request ('--' method, URL, content type), its body ('>' JSON
// command lines; '>bin' hex and '>pb' decoded commands for protobuf; '>emu'
// the session/node envelope of a POST /emulation), the status, and the
// response ('<' JSON reply lines, one per line of the stream or per SSE event;
// '<raw' the raw SSE text as it arrived; '<bin' hex and '<pb' decoded replies
// for protobuf), with the end or the failure of the response body.

const HTTP_URL = process.env.SDK_HTTP_URL || 'http://127.0.0.1:8000';
const { EventSource } = require('eventsource');

let httpSeq = 0;
const messageListeners = [];
// Status of every POST /emulation: [label, status].
const emulationStatuses = [];

// cb(label, dir, msg): every command ('>') and reply ('<') the emulation
// transports carried, decoded (JSON object, or the protobuf message).
function onMessage(cb) {
  messageListeners.push(cb);
  return () => messageListeners.splice(messageListeners.indexOf(cb), 1);
}

function emitMessage(label, dir, msg) {
  for (const cb of messageListeners.slice()) {
    try {
      cb(label, dir, msg);
    } catch (e) {
      log('message listener error', e);
    }
  }
}

function toU8(body) {
  if (body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  return utf8Encoder.encode(String(body));
}

// The length-delimited fields of a protobuf message: {fieldNumber: Uint8Array}
// (enough for EmulationRequest {1 node, 2 session, 3 data}).
function pbLenFields(u8) {
  const out = {};
  let pos = 0;
  const varint = () => {
    let v = 0;
    let mul = 1;
    for (;;) {
      if (pos >= u8.length) throw new Error('truncated varint');
      const b = u8[pos++];
      v += (b & 0x7f) * mul;
      mul *= 128;
      if (b < 0x80) return v;
    }
  };
  while (pos < u8.length) {
    const tag = varint();
    const wt = tag & 7;
    if (wt === 2) {
      const len = varint();
      out[tag >>> 3] = u8.subarray(pos, pos + len);
      pos += len;
    } else if (wt === 0) {
      varint();
    } else {
      throw new Error(`unexpected wire type ${wt}`);
    }
  }
  return out;
}

function traceJsonLines(label, dir, text) {
  for (const line of String(text).split('\n')) {
    if (!line) continue;
    trace(label, dir, line);
    let m;
    try {
      m = JSON.parse(line);
    } catch (e) {
      trace(label, '!!', `not JSON: ${e.message}`);
      continue;
    }
    emitMessage(label, dir, m);
  }
}

function tracePbCommands(label, u8) {
  let cmds;
  try {
    cmds = pbCodec().decodeCommands(u8);
  } catch (e) {
    trace(label, '!!', `undecodable commands: ${e.message}`);
    return;
  }
  for (const m of cmds) {
    trace(label, '>pb', JSON.stringify(m, pbJsonReplacer));
    emitMessage(label, '>', m);
  }
}

function traceRequestBody(label, url, body, protobuf) {
  const emulation = url.pathname.endsWith('/emulation');
  if (protobuf) {
    const u8 = toU8(body);
    trace(label, '>bin', Buffer.from(u8).toString('hex'));
    if (emulation) {
      let f;
      try {
        f = pbLenFields(u8);
      } catch (e) {
        trace(label, '!!', `undecodable EmulationRequest: ${e.message}`);
        return;
      }
      const s = (b) => (b ? utf8Decoder.decode(b) : '');
      trace(label, '>emu', `node=${JSON.stringify(s(f[1]))} session=${JSON.stringify(s(f[2]))}`);
      tracePbCommands(label, f[3] || new Uint8Array(0));
    } else {
      tracePbCommands(label, u8);
    }
    return;
  }
  const text = typeof body === 'string' ? body : utf8Decoder.decode(toU8(body));
  if (emulation) {
    let env;
    try {
      env = JSON.parse(text);
    } catch (e) {
      trace(label, '>', text);
      return;
    }
    trace(label, '>emu', `node=${JSON.stringify(env.node)} session=${JSON.stringify(env.session)}`);
    traceJsonLines(label, '>', typeof env.data === 'string' ? env.data : JSON.stringify(env.data));
  } else {
    traceJsonLines(label, '>', text);
  }
}

// Observes the chunks of a response body as they arrive.
function responseObserver(label, kind) {
  if (kind === 'protobuf') {
    let buf = new Uint8Array(0);
    return (chunk) => {
      trace(label, '<bin', Buffer.from(chunk).toString('hex'));
      const joined = new Uint8Array(buf.length + chunk.length);
      joined.set(buf);
      joined.set(chunk, buf.length);
      buf = joined;
      for (;;) {
        let r;
        try {
          r = pbCodec().decodeReply(buf);
        } catch (e) {
          trace(label, '!!', `undecodable reply stream: ${e.message}`);
          buf = new Uint8Array(0);
          return;
        }
        if (!r.ok) return;
        const one = buf.slice(0, r.pos);
        buf = buf.slice(r.pos);
        for (const m of pbCodec().decodeReplies(one)) {
          trace(label, '<pb', JSON.stringify(m, pbJsonReplacer));
          emitMessage(label, '<', m);
        }
      }
    };
  }
  const dec = new TextDecoder();
  let pending = '';
  if (kind === 'sse') {
    return (chunk) => {
      const t = dec.decode(chunk, { stream: true });
      trace(label, '<raw', JSON.stringify(t));
      pending += t.replace(/\r\n?/g, '\n');
      let i;
      while ((i = pending.indexOf('\n\n')) !== -1) {
        const ev = pending.slice(0, i);
        pending = pending.slice(i + 2);
        const data = ev.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, ''));
        if (data.length) traceJsonLines(label, '<', data.join('\n'));
      }
    };
  }
  return (chunk) => {
    pending += dec.decode(chunk, { stream: true });
    const i = pending.lastIndexOf('\n');
    if (i === -1) {
      trace(label, '--', `partial line so far: ${JSON.stringify(pending)}`);
      return;
    }
    traceJsonLines(label, '<', pending.slice(0, i));
    pending = pending.slice(i + 1);
  };
}

// fetch for the SDK (its `fetch` option) and for the EventSource: records
// requests and responses as frames, and decoded messages for onMessage.
async function tracingFetch(input, init = {}) {
  const label = `http#${++httpSeq}`;
  const url = new URL(String(input instanceof Request ? input.url : input));
  const method = (init.method || 'GET').toUpperCase();
  const headers = new Headers(init.headers || {});
  const ctype = headers.get('content-type') || '';
  const protobuf = ctype === 'application/octet-stream';
  trace(label, '--', `${method} ${url.pathname}${url.search.length > 200 ? url.search.slice(0, 200) + '…' : url.search} content-type=${JSON.stringify(ctype)} accept=${JSON.stringify(headers.get('accept'))}`);
  const connect = url.searchParams.get('cf_connect');
  if (connect !== null) traceJsonLines(label, '>', connect);
  if (init.body != null) traceRequestBody(label, url, init.body, protobuf);
  if (init.signal) {
    const sig = init.signal;
    if (sig.aborted) trace(label, '--', 'signal aborted before the request');
    else sig.addEventListener('abort', () => trace(label, '--', 'request aborted by the client'), { once: true });
  }
  let res;
  try {
    res = await fetch(input, init);
  } catch (e) {
    trace(label, '--', `fetch failed: ${e.name} ${e.message}${e.cause ? ' (' + e.cause.message + ')' : ''}`);
    throw e;
  }
  const rtype = res.headers.get('content-type') || '';
  trace(label, '--', `HTTP ${res.status} content-type=${JSON.stringify(rtype)}`);
  if (url.pathname.endsWith('/emulation')) emulationStatuses.push([label, res.status]);
  if (!res.body) return res;
  const kind = rtype.startsWith('text/event-stream') ? 'sse' : rtype.startsWith('application/octet-stream') ? 'protobuf' : 'json';
  const observe = responseObserver(label, kind);
  const reader = res.body.getReader();
  const body = new ReadableStream({
    async pull(ctrl) {
      let r;
      try {
        r = await reader.read();
      } catch (e) {
        trace(label, '--', `response body ended with ${e.name}: ${e.message}`);
        ctrl.error(e);
        return;
      }
      if (r.done) {
        trace(label, '--', 'end of response body');
        ctrl.close();
        return;
      }
      try {
        observe(r.value);
      } catch (e) {
        trace(label, '!!', `tracing error: ${e.message}`);
      }
      ctrl.enqueue(r.value);
    },
    cancel(reason) {
      trace(label, '--', 'response body cancelled by the reader');
      return reader.cancel(reason);
    },
  });
  return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
}

// The `eventsource` package's EventSource, fetching through tracingFetch.
class TracingEventSource extends EventSource {
  constructor(url, init = {}) {
    super(url, { ...init, fetch: tracingFetch });
  }
}

function emulationEndpoint(transport) {
  return `${HTTP_URL}/connection/${transport}`;
}

// A centrifuge-js client with one transport only ('http_stream' or 'sse'), so
// that it cannot fall back to WebSocket. opts.protobuf: the protobuf build.
function newEmulationClient(transport, opts = {}) {
  const { protobuf, ...rest } = opts;
  const Cls = protobuf ? require('centrifuge/build/protobuf').Centrifuge : Centrifuge;
  const c = new Cls([{ transport, endpoint: emulationEndpoint(transport) }], {
    fetch: tracingFetch,
    eventsource: TracingEventSource,
    emulationEndpoint: `${HTTP_URL}/emulation`,
    timeout: 5000,
    ...rest,
  });
  const name = opts.name || transport;
  c.on('connecting', (ctx) => log(`[${name}] connecting`, ctx.code, ctx.reason));
  c.on('connected', (ctx) => log(`[${name}] connected client=${ctx.client} transport=${ctx.transport}`));
  c.on('disconnected', (ctx) => log(`[${name}] disconnected`, ctx.code, ctx.reason));
  c.on('error', (ctx) => log(`[${name}] error`, ctx.type, ctx.error && (ctx.error.message || ctx.error), ctx.transport || ''));
  return c;
}

module.exports.HTTP_URL = HTTP_URL;
module.exports.EventSource = EventSource;
module.exports.TracingEventSource = TracingEventSource;
module.exports.tracingFetch = tracingFetch;
module.exports.onMessage = onMessage;
module.exports.emulationStatuses = emulationStatuses;
module.exports.emulationEndpoint = emulationEndpoint;
module.exports.newEmulationClient = newEmulationClient;
