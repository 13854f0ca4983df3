// centrifuge-js protobuf build over http_stream only (Content-Type
// application/octet-stream: length-delimited Command/Reply messages, protobuf
// EmulationRequest bodies to /emulation): the flows of js_http_stream.js with
// binary-encoded data. (The SDK's sse transport has no protobuf form.)
'use strict';

const c = require('../lib/common');
const flows = require('../lib/emulation');

c.run('js_http_stream_protobuf', 30000, async () => {
  await flows.basic('http_stream', { protobuf: true });
  await flows.recovery('http_stream', { protobuf: true });
});
