// centrifuge-js over http_stream only: connection token refresh with
// short-lived tokens (refresh commands through /emulation, no reconnect), and
// an expired token answered with 109 followed by getToken.
'use strict';

const c = require('../lib/common');
const flows = require('../lib/emulation');

c.run('js_http_stream_refresh', 30000, async () => {
  await flows.refresh('http_stream');
});
