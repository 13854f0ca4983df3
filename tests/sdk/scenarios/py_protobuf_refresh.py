"""centrifuge-python with use_protobuf=True: connection token refresh. Tokens
live 3 s; get_token returns fresh ones. The client must stay connected well
past the first token's expiry (server expired_close_delay is 3 s), refreshing
over the same protobuf connection, with server pings (watchdog: ping + 3 s)."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import common as c  # noqa: E402


async def main() -> None:
    from cent import PublishRequest
    from centrifuge import ClientState

    user = "py-pbrefresh-" + c.rand(3)
    ch = c.channel("pypbrefresh")
    issued = []

    async def get_token() -> str:
        token, claims = c.conn_token(user, exp=c.now() + 3)
        issued.append(claims)
        c.log(f"get_token #{len(issued)} -> jti {claims['jti']} exp {claims['exp']}")
        return token

    # No initial token: get_token is called for the first connect too.
    client = c.new_protobuf_client("pbrefresh", get_token=get_token, max_server_ping_delay=3.0)
    ev = client._sdk_events
    sev = c.SubEvents("pbrefresh/sub")
    sub = client.new_subscription(ch, events=sev)
    api = c.cent_client()
    try:
        await client.connect()
        await client.ready(timeout=5)
        c.check_eq(c.subprotocol(client), "centrifuge-protobuf", "negotiated WebSocket subprotocol")
        await sub.subscribe()
        await sub.ready(timeout=5)
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
        c.check(len(issued) >= 3, f"get_token should have been called for refreshes, calls: {len(issued)}")
        c.check(len(issued) <= 7, f"get_token called too often ({len(issued)}): bad ttl in refresh replies?")

        await c.call(api.publish, PublishRequest(channel=ch, data={"after": "refresh"}))
        await c.wait_until(lambda: sev.datas(), what="publication after refreshes")
        c.check_eq([json.loads(d) for d in sev.datas()], [{"after": "refresh"}], "publication after refreshes")
    finally:
        api.close()
        await client.disconnect()


c.run("py_protobuf_refresh", 25, main)
