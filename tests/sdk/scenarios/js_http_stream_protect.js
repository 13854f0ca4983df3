// centrifuge-js over http_stream only: block_user ends the connection with a
// disconnect push 3503 "blocked" and the SDK stays disconnected; revoke_token
// of the JWT jti ends it with 3014 and the SDK reconnects with a fresh token.
'use strict';

const c = require('../lib/common');
const flows = require('../lib/emulation');

c.run('js_http_stream_protect', 30000, async () => {
  await flows.blockUser('http_stream');
  await flows.revokeToken('http_stream');
});
