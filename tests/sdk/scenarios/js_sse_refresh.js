// centrifuge-js over sse only: connection token refresh with short-lived
// tokens (refresh commands through /emulation, no reconnect), and an expired
// token answered with 109 followed by getToken.
'use strict';

const c = require('../lib/common');
const flows = require('../lib/emulation');

c.run('js_sse_refresh', 30000, async () => {
  await flows.refresh('sse');
});
