// centrifuge-js over sse only: block_user ends the connection with a
// disconnect push 3503 "blocked" and the SDK stays disconnected; revoke_token
// of the JWT jti ends it with 3014 and the SDK reconnects with a fresh token.
'use strict';

const c = require('../lib/common');
const flows = require('../lib/emulation');

c.run('js_sse_protect', 30000, async () => {
  await flows.blockUser('sse');
  await flows.revokeToken('sse');
});
