"""centrifuge-python with use_protobuf=True: block_user closes the protobuf
connection with 3503 "blocked" and the SDK does not reconnect; revoke_token
of the connection token's jti closes it with 3014 "state invalidated", after
which the SDK reconnects with a fresh token from get_token."""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import common as c  # noqa: E402


async def main() -> None:
    from cent import BlockUserRequest, PublishRequest, RevokeTokenRequest
    from centrifuge import ClientState

    ch = c.channel("pypbprotect")
    api = c.cent_client()
    clients = []
    try:
        # --- block_user -> 3503, terminal
        user = "py-pbblocked-" + c.rand(3)
        victim = c.new_protobuf_client("victim", token=c.conn_token(user)[0],
                                       min_reconnect_delay=0.1, max_reconnect_delay=0.5)
        clients.append(victim)
        vev = victim._sdk_events
        vsub = victim.new_subscription(ch, events=c.SubEvents("victim/sub"))
        await victim.connect()
        await victim.ready(timeout=5)
        c.check_eq(c.subprotocol(victim), "centrifuge-protobuf", "victim: negotiated subprotocol")
        await vsub.subscribe()
        await vsub.ready(timeout=5)

        await c.call(api.block_user, BlockUserRequest(user=user, expire_at=c.now() + 120))
        await c.wait_until(lambda: vev.kinds("disconnected"), what="victim disconnected (3503)")
        d = vev.kinds("disconnected")[0]
        c.check_eq((d.code, d.reason), (3503, "blocked"), "disconnected code/reason")
        n_connecting = len(vev.kinds("connecting"))
        await c.sleep_quiet(3.0)
        c.check_eq(len(vev.kinds("connecting")), n_connecting, "no reconnect attempt after a 3503")
        c.check_eq(len(vev.kinds("connected")), 1, "no new connection after a 3503")
        c.check_eq(victim.state, ClientState.DISCONNECTED, "victim state")

        # A new protobuf connection of the blocked user is refused with 3503 too.
        again = c.new_protobuf_client("again", token=c.conn_token(user)[0])
        clients.append(again)
        aev = again._sdk_events
        await again.connect()
        await c.wait_until(lambda: aev.kinds("disconnected"), what="connect of a blocked user refused")
        r = aev.kinds("disconnected")[0]
        c.check_eq((r.code, r.reason), (3503, "blocked"), "refused connect code/reason")
        c.check_eq(aev.kinds("connected"), [], "blocked user must not connect")

        # --- revoke_token -> 3014, reconnect with a fresh token
        ruser = "py-pbrevoke-" + c.rand(3)
        issued = []

        async def get_token() -> str:
            token, claims = c.conn_token(ruser)
            issued.append(claims)
            c.log(f"get_token #{len(issued)} -> jti {claims['jti']}")
            return token

        rv = c.new_protobuf_client("revoke", get_token=get_token, min_reconnect_delay=0.1, max_reconnect_delay=0.5)
        clients.append(rv)
        rev = rv._sdk_events
        rsev = c.SubEvents("revoke/sub")
        rsub = rv.new_subscription(ch, events=rsev)
        await rv.connect()
        await rv.ready(timeout=5)
        c.check_eq(c.subprotocol(rv), "centrifuge-protobuf", "revoke: negotiated subprotocol")
        await rsub.subscribe()
        await rsub.ready(timeout=5)
        c.check_eq(len(issued), 1, "get_token called once for the first connect")
        cid1 = rev.kinds("connected")[0].client

        await c.call(api.revoke_token, RevokeTokenRequest(uid=issued[0]["jti"], expire_at=c.now() + 600))
        await c.wait_until(lambda: any(x.code == 3014 for x in rev.kinds("connecting")), what="connecting 3014")
        cx = [x for x in rev.kinds("connecting") if x.code == 3014][0]
        c.check_eq(cx.reason, "state invalidated", "connecting reason after revoke")
        await c.wait_until(lambda: len(rev.kinds("connected")) == 2, timeout=8, what="connected again with a fresh token")
        await c.wait_until(lambda: len(rsev.kinds("subscribed")) == 2, timeout=8, what="resubscribed after revoke")
        c.check_eq(len(issued), 2, "get_token called again after 3014")
        c.check(issued[1]["jti"] != issued[0]["jti"], "a new jti")
        c.check(rev.kinds("connected")[1].client != cid1, "a new connection")
        c.check_eq(rev.kinds("disconnected"), [], "no terminal disconnect after 3014")

        await c.call(api.publish, PublishRequest(channel=ch, data={"ok": 1}))
        await c.wait_until(lambda: rsev.datas(), what="publication after reconnect")
        c.check_eq([json.loads(x) for x in rsev.datas()], [{"ok": 1}], "publication after reconnect")
    finally:
        api.close()
        for cl in clients:
            await cl.disconnect()


c.run("py_protobuf_protect", 30, main)
