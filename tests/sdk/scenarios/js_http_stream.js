// centrifuge-js over http_stream only (POST /connection/http_stream, JSON
// lines; later commands to POST /emulation): connect with a JWT, subscribe,
// own and API publications, join/leave, presence, presence_stats, history,
// RPC 108, unknown namespace 102; then recovery after a client-side
// disconnect and after a server-side disconnect (disconnect push 4001).
'use strict';

const c = require('../lib/common');
const flows = require('../lib/emulation');

c.run('js_http_stream', 30000, async () => {
  await flows.basic('http_stream');
  await flows.recovery('http_stream');
});
