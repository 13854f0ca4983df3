"""centrifuge-python with use_protobuf=True (the `centrifuge-protobuf`
subprotocol, binary frames): connect with a JWT, subscribe in the sdk
namespace, publish bytes from the client and get them back with ClientInfo,
receive an API publication (JSON data arrives as its JSON bytes), join/leave,
presence, presence_stats and history. Then a JSON client and a protobuf
client on the same channel both receive one API publication."""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import common as c  # noqa: E402


async def main() -> None:
    from cent import PublishRequest
    from centrifuge import ClientState, StreamPosition

    user = "py-pb-" + c.rand(3)
    info = {"name": "pb user", "n": 7}
    ch = c.channel("pypb")
    token, _ = c.conn_token(user, info=info)
    client = c.new_protobuf_client("pb", token=token)
    ev = client._sdk_events
    sev = c.SubEvents("pb/sub")
    sub = client.new_subscription(ch, events=sev)
    api = c.cent_client()
    clients = [client]
    try:
        await client.connect()
        await client.ready(timeout=5)
        c.check_eq(client.state, ClientState.CONNECTED, "client state")
        c.check_eq(c.subprotocol(client), "centrifuge-protobuf", "negotiated WebSocket subprotocol (transport)")
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

        # Own publication: arbitrary bytes (not UTF-8).
        payload = bytes([0, 1, 2, 0xFF, 0xFE, 0x80, 0x7F, 10, 13, 0x22, 0x7B])
        res = await sub.publish(payload)
        c.log("publish result", res)
        await c.wait_until(lambda: sev.datas(), what="own publication")
        pub = sev.kinds("publication")[0].pub
        c.check(isinstance(pub.data, bytes), f"own publication data should be bytes, got {type(pub.data)}")
        c.check_eq(pub.data, payload, "own publication bytes")
        c.check_eq(pub.offset, 1, "own publication offset")
        c.check(pub.info is not None, "own publication should carry ClientInfo")
        c.check_eq((pub.info.user, pub.info.client), (user, conn.client), "publication info user/client")
        c.check(pub.info.conn_info, f"publication info.conn_info should hold the token info, got {pub.info.conn_info!r}")
        c.check_eq(json.loads(pub.info.conn_info), info, "publication info.conn_info (JSON bytes of the token info)")

        # API publication of JSON: the protobuf client gets the JSON bytes.
        r = await c.call(api.publish, PublishRequest(channel=ch, data={"a": 1}, tags={"k": "v"}))
        c.check_eq((r.offset, r.epoch), (2, epoch), "cent publish result")
        await c.wait_until(lambda: len(sev.datas()) >= 2, what="API publication")
        pub2 = sev.kinds("publication")[1].pub
        c.check(isinstance(pub2.data, bytes), f"API publication data should be bytes, got {type(pub2.data)}")
        c.check_eq(json.loads(pub2.data), {"a": 1}, f"API publication data (bytes {pub2.data!r})")
        c.check_eq(pub2.offset, 2, "API publication offset")
        c.check_eq(pub2.tags, {"k": "v"}, "API publication tags")
        c.check(pub2.info is None, f"API publication has no ClientInfo, got {pub2.info}")

        # A second protobuf client joins.
        user2 = "py-pb2-" + c.rand(3)
        other = c.new_protobuf_client("pb2", token=c.conn_token(user2)[0])
        clients.append(other)
        osev = c.SubEvents("pb2/sub")
        osub = other.new_subscription(ch, events=osev)
        await other.connect()
        await other.ready(timeout=5)
        await osub.subscribe()
        await osub.ready(timeout=5)
        oid = other._sdk_events.kinds("connected")[0].client
        await c.wait_until(lambda: any(j.info.client == oid for j in sev.kinds("join")), what="join of the second client")
        j = [j for j in sev.kinds("join") if j.info.client == oid][0]
        c.check_eq(j.info.user, user2, "join info.user")

        p = await sub.presence()
        c.log("presence", p)
        c.check_eq(sorted(p.clients), sorted([conn.client, oid]), "presence client ids")
        me = p.clients[conn.client]
        c.check_eq((me.user, me.client), (user, conn.client), "presence entry")
        c.check_eq(json.loads(me.conn_info), info, "presence conn_info (JSON bytes of the token info)")
        c.check_eq(p.clients[oid].user, user2, "presence user of the second client")
        st = await sub.presence_stats()
        c.log("presence_stats", st)
        c.check_eq((st.num_clients, st.num_users), (2, 2), "presence_stats")
        st = await client.presence_stats(ch)
        c.check_eq((st.num_clients, st.num_users), (2, 2), "client.presence_stats(channel)")

        h = await sub.history(limit=10)
        c.log("history", h)
        c.check_eq([x.offset for x in h.publications], [1, 2], "history offsets")
        c.check_eq(h.publications[0].data, payload, "history: binary publication bytes")
        c.check(h.publications[0].info and h.publications[0].info.user == user, "history: info.user")
        c.check_eq(json.loads(h.publications[1].data), {"a": 1}, "history: API publication JSON bytes")
        c.check_eq((h.offset, h.epoch), (2, epoch), "history position")
        h = await osub.history(limit=1, reverse=True)
        c.check_eq([x.offset for x in h.publications], [2], "history reverse limit 1")
        h = await osub.history(limit=10, since=StreamPosition(offset=1, epoch=epoch))
        c.check_eq([x.offset for x in h.publications], [2], "history since offset 1")

        await osub.unsubscribe()
        await c.wait_until(lambda: any(x.info.client == oid for x in sev.kinds("leave")), what="leave of the second client")
        st = await sub.presence_stats()
        c.check_eq((st.num_clients, st.num_users), (1, 1), "presence_stats after leave")

        # Mixed: a JSON client and the protobuf client on the same channel.
        jclient = c.new_client("json", token=c.conn_token("py-json-" + c.rand(3))[0])
        clients.append(jclient)
        jsev = c.SubEvents("json/sub")
        jsub = jclient.new_subscription(ch, events=jsev)
        await jclient.connect()
        await jclient.ready(timeout=5)
        c.check_eq(c.subprotocol(jclient), None, "JSON client: no subprotocol")
        await jsub.subscribe()
        await jsub.ready(timeout=5)
        mixed = {"mixed": True, "list": [1, "two", None], "u": "ünï"}
        r = await c.call(api.publish, PublishRequest(channel=ch, data=mixed))
        c.check_eq(r.offset, 3, "mixed publish offset")
        await c.wait_until(lambda: len(sev.datas()) >= 3 and jsev.datas(), what="mixed publication on both clients")
        c.check_eq(jsev.datas(), [mixed], "JSON client: publication data")
        c.check_eq(json.loads(sev.datas()[2]), mixed, "protobuf client: publication data (JSON bytes)")
        c.check_eq(sev.kinds("publication")[2].pub.offset, 3, "protobuf client: publication offset")
        c.check_eq(client.state, ClientState.CONNECTED, "protobuf client still connected")
        c.check_eq(len(ev.kinds("connecting")), 1, "no reconnects")
        c.check_eq(ev.kinds("disconnected"), [], "no disconnects")
    finally:
        api.close()
        for cl in clients:
            await cl.disconnect()


c.run("py_protobuf", 25, main)
