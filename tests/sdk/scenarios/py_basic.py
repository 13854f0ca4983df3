"""centrifuge-python: connect with a JWT, subscribe, publish from the client and
get the own publication back, receive a publication made via the server API
(cent), RPC without a handler fails with 108, an unknown namespace is
refused with 102, unsubscribe/resubscribe."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import common as c  # noqa: E402


async def main() -> None:
    from cent import PublishRequest
    from centrifuge import ClientState, ReplyError, SubscriptionState

    user = "py-basic-" + c.rand(3)
    ch = c.channel("pybasic")
    token, _ = c.conn_token(user)
    client = c.new_client("basic", token=token)
    ev = client._sdk_events
    sev = c.SubEvents("sub")
    sub = client.new_subscription(ch, events=sev)
    api = c.cent_client()
    try:
        await client.connect()
        await client.ready(timeout=5)
        c.check_eq(client.state, ClientState.CONNECTED, "client state")
        conn = ev.kinds("connected")[0]
        c.check(len(conn.client) == 36, f"client id should be a UUID, got {conn.client!r}")
        c.check_eq(conn.version, c.EXPECTED_VERSION, "server version in the connect reply")

        await sub.subscribe()
        await sub.ready(timeout=5)
        s = sev.kinds("subscribed")[0]
        c.check_eq(s.channel, ch, "subscribed channel")
        c.check_eq((s.recoverable, s.positioned), (True, True), "recoverable/positioned")
        c.check(s.stream_position is not None and s.stream_position.epoch, f"stream position, got {s.stream_position}")
        c.check_eq(s.stream_position.offset, 0, "offset of a new channel")
        epoch = s.stream_position.epoch

        payload = {"text": "from python", "n": 1, "list": [1, 2, {"x": None}], "u": "ünï"}
        res = await sub.publish(payload)
        c.log("publish result", res)
        await c.wait_until(lambda: sev.datas(), what="own publication")
        pub = sev.kinds("publication")[0].pub
        c.check_eq(pub.data, payload, "own publication data")
        c.check_eq(pub.offset, 1, "own publication offset")
        c.check(pub.info is not None, "own publication should carry ClientInfo")
        c.check_eq((pub.info.user, pub.info.client), (user, conn.client), "publication info user/client")

        r = await c.call(api.publish, PublishRequest(channel=ch, data={"text": "from cent"}, tags={"k": "v"}))
        c.check_eq((r.offset, r.epoch), (2, epoch), "cent publish result")
        await c.wait_until(lambda: len(sev.datas()) >= 2, what="API publication")
        pub2 = sev.kinds("publication")[1].pub
        c.check_eq(pub2.data, {"text": "from cent"}, "API publication data")
        c.check_eq(pub2.offset, 2, "API publication offset")
        c.check_eq(pub2.tags, {"k": "v"}, "API publication tags")
        c.check(pub2.info is None, f"API publication has no ClientInfo, got {pub2.info}")

        try:
            r = await client.rpc("echo", {"x": 1})
            raise c.ScenarioError(f"rpc without a handler should fail, got {r}")
        except ReplyError as e:
            c.log("rpc error", e)
            c.check_eq(e.code, 108, "rpc error code")

        uev = c.SubEvents("unknown")
        unknown = client.new_subscription("nope:" + c.rand(3), events=uev)
        await unknown.subscribe()
        await c.wait_until(lambda: uev.kinds("unsubscribed"), what="unsubscribed from an unknown namespace")
        g = uev.kinds("unsubscribed")[0]
        c.check_eq((g.code, g.reason), (102, "unknown channel"), "unknown namespace")
        c.check_eq(client.state, ClientState.CONNECTED, "connected after a refused subscribe")

        await sub.unsubscribe()
        c.check_eq(sub.state, SubscriptionState.UNSUBSCRIBED, "state after unsubscribe")
        u = sev.kinds("unsubscribed")[-1]
        c.check_eq(u.code, 0, "client-side unsubscribe code")
        await sub.subscribe()
        await sub.ready(timeout=5)
        s2 = sev.kinds("subscribed")[-1]
        c.check_eq(s2.stream_position.offset if s2.stream_position else None, 2, "offset after resubscribe")
        c.check_eq(client.state, ClientState.CONNECTED, "still connected")
        c.check_eq(ev.kinds("disconnected"), [], "no disconnects")
    finally:
        api.close()
        await client.disconnect()


c.run("py_basic", 20, main)
