"""cent (sync Client): the protective methods block_user, unblock_user,
revoke_token, invalidate_user_tokens and connections, checked against live
centrifuge-python clients and raw WebSocket connections."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import common as c  # noqa: E402


async def main() -> None:
    from cent import (
        BlockUserRequest,
        ConnectionsRequest,
        InvalidateUserTokensRequest,
        RevokeTokenRequest,
        UnblockUserRequest,
    )
    from centrifuge import ClientState

    api = c.cent_client()
    to_close = []
    try:
        # ---- connections -------------------------------------------------
        user = "prot-" + c.rand(3)
        ch = c.channel("protect")
        issued = []

        async def get_token() -> str:
            token, claims = c.conn_token(user, iat=c.now() - 30)
            issued.append(claims)
            c.log(f"get_token #{len(issued)} -> jti {claims['jti']} iat {claims['iat']}")
            return token

        py = c.new_client("py", get_token=get_token, name="py-protect", version="1.2.3",
                          min_reconnect_delay=0.1, max_reconnect_delay=0.5)
        to_close.append(py)
        pev = py._sdk_events
        sev = c.SubEvents("py/sub")
        sub = py.new_subscription(ch, events=sev)
        await py.connect()
        await sub.subscribe()
        await sub.ready(timeout=5)
        py_id = pev.kinds("connected")[0].client

        raw_token, raw_claims = c.conn_token(user, iat=c.now() - 20)
        raw = c.RawConn("raw")
        to_close.append(raw)
        rep = await raw.connect(raw_token)
        c.check("connect" in rep, f"raw connect failed: {rep}")
        raw_id = rep["connect"]["client"]

        res = await c.call(api.connections, ConnectionsRequest(user=user, expression=""))
        c.check_eq(sorted(res.connections), sorted([py_id, raw_id]), "connections of the user")
        pc = res.connections[py_id]
        c.check_eq((pc.transport, pc.protocol, pc.user), ("websocket", "json", user), "transport/protocol/user")
        c.check_eq((pc.app_name, pc.app_version), ("py-protect", "1.2.3"), "app_name/app_version")
        c.check(pc.state is not None and pc.state.connection_token is not None, f"state.connection_token, got {pc!r}")
        c.check_eq(
            (pc.state.connection_token.uid, pc.state.connection_token.issued_at),
            (issued[0]["jti"], issued[0]["iat"]),
            "connection_token of the centrifuge-python connection",
        )
        c.check(pc.state.channels is not None and ch in pc.state.channels, f"state.channels has {ch}: {pc.state}")
        rc = res.connections[raw_id]
        c.check_eq(
            (rc.state.connection_token.uid, rc.state.connection_token.issued_at, rc.app_name),
            (raw_claims["jti"], raw_claims["iat"], "raw"),
            "connection_token of the raw connection",
        )
        none = await c.call(api.connections, ConnectionsRequest(user="nobody-" + c.rand(3), expression=""))
        c.check_eq(none.connections, {}, "connections of a user without connections")

        # ---- revoke_token ----------------------------------------------------
        await c.call(api.revoke_token, RevokeTokenRequest(uid=raw_claims["jti"], expire_at=c.now() + 600))
        c.check_eq(await raw.wait_closed(), (3014, "state invalidated"), "raw connection close after revoke")
        again = c.RawConn("raw-again")
        to_close.append(again)
        rep = await again.connect(raw_token)
        c.check_eq(rep, {"id": 1, "error": {"code": 109, "message": "token expired"}}, "connect with a revoked token")
        c.check_eq(py.state, ClientState.CONNECTED, "the other connection of the user is unaffected")

        # the SDK client: 3014 -> get_token -> connected with a new jti
        await c.call(api.revoke_token, RevokeTokenRequest(uid=issued[0]["jti"], expire_at=c.now() + 600))
        await c.wait_until(lambda: any(x.code == 3014 for x in pev.kinds("connecting")), what="connecting 3014")
        cx = [x for x in pev.kinds("connecting") if x.code == 3014][0]
        c.check_eq(cx.reason, "state invalidated", "connecting reason after revoke")
        await c.wait_until(lambda: len(pev.kinds("connected")) == 2, what="reconnected with a fresh token")
        c.check_eq(len(issued), 2, "get_token called again after 3014")
        await sub.ready(timeout=5)
        py_id2 = pev.kinds("connected")[1].client
        res = await c.call(api.connections, ConnectionsRequest(user=user, expression=""))
        c.check_eq(list(res.connections), [py_id2], "connections after the revoke")
        c.check_eq(res.connections[py_id2].state.connection_token.uid, issued[1]["jti"], "new jti")

        # ---- invalidate_user_tokens ----------------------------------------
        iu = "inval-" + c.rand(3)
        other = "inval-other-" + c.rand(3)
        old_token, _ = c.conn_token(iu, iat=c.now() - 60)
        fresh_calls = []

        async def fresh_token() -> str:
            fresh_calls.append(1)
            return c.conn_token(iu)[0]

        victim = c.new_client("inval", token=old_token, get_token=fresh_token,
                              min_reconnect_delay=0.1, max_reconnect_delay=0.5)
        to_close.append(victim)
        await victim.connect()
        await victim.ready(timeout=5)
        bystander = c.RawConn("bystander")
        to_close.append(bystander)
        c.check("connect" in await bystander.connect(c.conn_token(other, iat=c.now() - 60)[0]), "bystander connects")

        await c.call(api.invalidate_user_tokens,
                     InvalidateUserTokensRequest(user=iu, issued_before=c.now() - 10, expire_at=c.now() + 600))
        vev = victim._sdk_events
        await c.wait_until(lambda: any(x.code == 3014 for x in vev.kinds("connecting")), what="victim connecting 3014")
        await c.wait_until(lambda: len(vev.kinds("connected")) == 2, what="victim reconnected with a fresh token")
        c.check_eq(len(fresh_calls), 1, "get_token called once after invalidate_user_tokens")
        old_again = c.RawConn("inval-old")
        to_close.append(old_again)
        rep = await old_again.connect(c.conn_token(iu, iat=c.now() - 30)[0])
        c.check_eq(rep, {"id": 1, "error": {"code": 109, "message": "token expired"}}, "connect with an invalidated token")
        c.check(bystander.closed is None, f"another user's connection is unaffected, closed={bystander.closed}")

        # ---- block_user / unblock_user -----------------------------------------
        bu = "blocked-" + c.rand(3)
        blocked = c.new_client("blocked", token=c.conn_token(bu)[0], min_reconnect_delay=0.1, max_reconnect_delay=0.5)
        to_close.append(blocked)
        bev = blocked._sdk_events
        await blocked.connect()
        await blocked.ready(timeout=5)
        await c.call(api.block_user, BlockUserRequest(user=bu, expire_at=c.now() + 60))
        await c.wait_until(lambda: bev.kinds("disconnected"), what="blocked client disconnected")
        d = bev.kinds("disconnected")[0]
        c.check_eq((d.code, d.reason), (3503, "blocked"), "disconnect code/reason of a blocked user")
        await c.sleep_quiet(2.0)
        c.check_eq(blocked.state, ClientState.DISCONNECTED, "blocked client stays disconnected")
        c.check_eq(len(bev.kinds("connecting")), 1, "no reconnect attempt after 3503")

        # a new connect of the blocked user is refused with 3503
        await blocked.connect()
        await c.wait_until(lambda: len(bev.kinds("disconnected")) == 2, what="refused connect")
        d = bev.kinds("disconnected")[1]
        c.check_eq((d.code, d.reason), (3503, "blocked"), "refused connect code/reason")
        c.check_eq(len(bev.kinds("connected")), 1, "no second connect")

        await c.call(api.unblock_user, UnblockUserRequest(user=bu))
        await blocked.connect()
        await blocked.ready(timeout=5)
        c.check_eq(blocked.state, ClientState.CONNECTED, "connects after unblock_user")

        # a block lapses at expire_at
        lu = "lapse-" + c.rand(3)
        exp = c.now() + 2
        await c.call(api.block_user, BlockUserRequest(user=lu, expire_at=exp))
        probe = c.RawConn("lapse-1")
        to_close.append(probe)
        rep = await probe.try_connect(c.conn_token(lu)[0])
        c.check(rep is None, f"a blocked user must not connect, got {rep}")
        c.check_eq(await probe.wait_closed(), (3503, "blocked"), "connect of a blocked user (raw)")
        while time.time() < exp + 1.2:
            await c.sleep_quiet(0.1)
        probe2 = c.RawConn("lapse-2")
        to_close.append(probe2)
        rep = await probe2.connect(c.conn_token(lu)[0])
        c.check("connect" in rep, f"connect after the block expired, got {rep}")
    finally:
        api.close()
        for x in to_close:
            if isinstance(x, c.RawConn):
                await x.close()
            else:
                await x.disconnect()


c.run("cent_protect", 30, main)
