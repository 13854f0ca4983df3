"""centrifuge-python with use_protobuf=True: recovery. Publications made
through the server API while the client is offline arrive after reconnect
(as JSON bytes), in order and exactly once, and the subscribed event reports
was_recovering/recovered. Both after a client disconnect()/connect() and
after a server disconnect with a reconnect code."""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import common as c  # noqa: E402


async def main() -> None:
    from cent import Disconnect, DisconnectRequest, PublishRequest
    from centrifuge import ClientState

    user = "py-pbrec-" + c.rand(3)
    ch = c.channel("pypbrecovery")
    token, _ = c.conn_token(user)
    client = c.new_protobuf_client("pbrec", token=token, min_reconnect_delay=0.1, max_reconnect_delay=0.5)
    ev = client._sdk_events
    sev = c.SubEvents("pbrec/sub")
    sub = client.new_subscription(ch, events=sev)
    api = c.cent_client()

    def ns() -> list:
        return [json.loads(d)["n"] for d in sev.datas()]

    try:
        await client.connect()
        await client.ready(timeout=5)
        c.check_eq(c.subprotocol(client), "centrifuge-protobuf", "negotiated WebSocket subprotocol")
        await sub.subscribe()
        await sub.ready(timeout=5)
        s1 = sev.kinds("subscribed")[0]
        c.check(s1.recoverable, "recoverable")
        epoch = s1.stream_position.epoch

        await c.call(api.publish, PublishRequest(channel=ch, data={"n": 1}))
        await c.wait_until(lambda: len(sev.datas()) == 1, what="publication 1")
        c.check(isinstance(sev.datas()[0], bytes), f"publication data should be bytes, got {sev.datas()[0]!r}")

        # 1. client-side disconnect, publish while offline, connect again
        await client.disconnect()
        c.check_eq(client.state, ClientState.DISCONNECTED, "client state after disconnect()")
        for n in (2, 3, 4):
            r = await c.call(api.publish, PublishRequest(channel=ch, data={"n": n}))
            c.check_eq(r.offset, n, f"offset of offline publication {n}")
        await client.connect()
        await client.ready(timeout=5)
        c.check_eq(c.subprotocol(client), "centrifuge-protobuf", "negotiated WebSocket subprotocol after reconnect")
        await c.wait_until(lambda: len(sev.kinds("subscribed")) == 2, what="resubscribed after reconnect")
        s2 = sev.kinds("subscribed")[1]
        c.log("resubscribed ctx", s2)
        c.check_eq((s2.was_recovering, s2.recovered), (True, True), "was_recovering/recovered after reconnect")
        c.check_eq((s2.stream_position.offset, s2.stream_position.epoch), (1, epoch), "position recovered from")
        await c.wait_until(lambda: len(sev.datas()) >= 4, what="recovered publications")
        await c.sleep_quiet(0.2)
        c.check_eq(ns(), [1, 2, 3, 4], "publications (decoded JSON bytes) in order, exactly once")
        c.check_eq([x.pub.offset for x in sev.kinds("publication")], [1, 2, 3, 4], "publication offsets")

        # 2. server disconnect with a reconnect code: the SDK reconnects and recovers
        await c.call(api.disconnect, DisconnectRequest(user=user, disconnect=Disconnect(code=4001, reason="go away")))
        await c.wait_until(lambda: any(x.code == 4001 for x in ev.kinds("connecting")), what="connecting 4001")
        cx = [x for x in ev.kinds("connecting") if x.code == 4001][0]
        c.check_eq(cx.reason, "go away", "connecting reason from the close frame")
        await c.call(api.publish, PublishRequest(channel=ch, data={"n": 5}))
        await c.wait_until(lambda: len(sev.kinds("subscribed")) == 3, what="resubscribed after server disconnect")
        s3 = sev.kinds("subscribed")[2]
        c.check_eq((s3.was_recovering, s3.recovered), (True, True), "recovered after server disconnect")
        await c.call(api.publish, PublishRequest(channel=ch, data={"n": 6}))
        await c.wait_until(lambda: len(sev.datas()) >= 6, what="publications 5 and 6")
        await c.sleep_quiet(0.2)
        c.check_eq(ns(), [1, 2, 3, 4, 5, 6], "all publications exactly once")
        c.check_eq(ev.kinds("disconnected")[1:], [], "no terminal disconnect")
        h = await sub.history(limit=0)
        c.check_eq((h.offset, h.epoch), (6, epoch), "history position")
    finally:
        api.close()
        await client.disconnect()


c.run("py_protobuf_recovery", 25, main)
