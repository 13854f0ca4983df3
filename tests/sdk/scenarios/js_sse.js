// centrifuge-js over sse only (GET /connection/sse?cf_connect=..., EventSource
// from the eventsource package; later commands to POST /emulation): connect
// with a JWT, subscribe, own and API publications, join/leave, presence,
// presence_stats, history, RPC 108, unknown namespace 102; then recovery after
// a client-side disconnect and after a server-side disconnect (push 4001).
'use strict';

const c = require('../lib/common');
const flows = require('../lib/emulation');

c.run('js_sse', 30000, async () => {
  await flows.basic('sse');
  await flows.recovery('sse');
});
