"""centrifuge-python: connection token refresh. Tokens live 3 s; get_token
returns fresh ones. The client must stay connected well past the first
token's expiry (server expired_close_delay is 3 s), refreshing over the same
connection, and keep receiving server pings (watchdog: ping + 3 s). At the
same time a private-channel subscription lives on 3 s subscription tokens
refreshed with sub_refresh (server expired_sub_close_delay is 3 s)."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import common as c  # noqa: E402


async def main() -> None:
    from cent import PublishRequest
    from centrifuge import ClientState

    user = "py-refresh-" + c.rand(3)
    ch = c.channel("pyrefresh")
    issued = []

    async def get_token() -> str:
        token, claims = c.conn_token(user, exp=c.now() + 3)
        issued.append(claims)
        c.log(f"get_token #{len(issued)} -> jti {claims['jti']} exp {claims['exp']}")
        return token

    # No initial token: get_token is called for the first connect too.
    client = c.new_client("refresh", get_token=get_token, max_server_ping_delay=3.0)
    ev = client._sdk_events
    sev = c.SubEvents("sub")
    sub = client.new_subscription(ch, events=sev)
    priv = "$" + c.channel("pyprivate")
    sub_tokens = []

    async def get_sub_token(channel: str) -> str:
        claims = {"sub": user, "channel": channel, "exp": c.now() + 3}
        sub_tokens.append(claims)
        c.log(f"sub get_token #{len(sub_tokens)} for {channel}")
        return c.hs256_jwt(claims)

    pev = c.SubEvents("private")
    psub = client.new_subscription(priv, events=pev, get_token=get_sub_token)
    api = c.cent_client()
    try:
        await client.connect()
        await client.ready(timeout=5)
        await sub.subscribe()
        await sub.ready(timeout=5)
        await psub.subscribe()
        await psub.ready(timeout=5)
        c.check_eq(len(issued), 1, "get_token called for the first connect")
        first_exp = issued[0]["exp"]
        connects = len(ev.kinds("connected"))

        until = first_exp + 3 + 2.5
        while time.time() < until:
            c.check_eq(len(ev.kinds("connecting")), 1, "no reconnect while refreshing (connecting events)")
            c.check_eq(ev.kinds("disconnected"), [], "no disconnect while refreshing")
            await c.sleep_quiet(0.2)
        c.check_eq(client.state, ClientState.CONNECTED, "client state")
        c.check_eq(len(ev.kinds("connected")), connects, "same connection (no new connect)")
        c.check_eq(len(sev.kinds("subscribed")), 1, "no resubscribe")
        c.check_eq(len(pev.kinds("subscribed")), 1, "private subscription: no resubscribe")
        c.check_eq(pev.kinds("unsubscribed"), [], "private subscription: not unsubscribed")
        c.check(len(sub_tokens) >= 3, f"subscription get_token calls: {len(sub_tokens)}")
        c.check(len(issued) >= 3, f"get_token should have been called for refreshes, calls: {len(issued)}")
        c.check(len(issued) <= 7, f"get_token called too often ({len(issued)}): bad ttl in refresh replies?")

        await c.call(api.publish, PublishRequest(channel=ch, data={"after": "refresh"}))
        await c.wait_until(lambda: sev.datas(), what="publication after refreshes")
        c.check_eq(sev.datas(), [{"after": "refresh"}], "publication after refreshes")
        await c.call(api.publish, PublishRequest(channel=priv, data={"private": 1}))
        await c.wait_until(lambda: pev.datas(), what="publication on the private channel")
        c.check_eq(pev.datas(), [{"private": 1}], "publication on the private channel")
    finally:
        api.close()
        await client.disconnect()


c.run("py_token_refresh", 25, main)
