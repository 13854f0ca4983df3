// centrifuge-js protobuf build over http_stream only: token refresh,
// block_user (3503, no reconnect) and revoke_token (3014, reconnect with a
// fresh token).
'use strict';

const c = require('../lib/common');
const flows = require('../lib/emulation');

c.run('js_http_stream_protobuf_protect', 40000, async () => {
  await flows.refresh('http_stream', { protobuf: true });
  await flows.blockUser('http_stream', { protobuf: true });
  await flows.revokeToken('http_stream', { protobuf: true });
});
