"""centrifuge-python: join/leave events, presence, presence_stats and history
(limit, reverse, since, wrong epoch) as the SDK reports them."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import common as c  # noqa: E402


async def connect_and_subscribe(name: str, user: str, ch: str):
    token, _ = c.conn_token(user)
    client = c.new_client(name, token=token)
    sev = c.SubEvents(name + "/sub")
    sub = client.new_subscription(ch, events=sev)
    await client.connect()
    await client.ready(timeout=5)
    await sub.subscribe()
    await sub.ready(timeout=5)
    conn = client._sdk_events.kinds("connected")[0]
    return client, sub, sev, conn.client


async def main() -> None:
    from centrifuge import ReplyError, StreamPosition

    ch = c.channel("pypresence")
    ua, ub = "py-pa-" + c.rand(3), "py-pb-" + c.rand(3)
    clients = []
    try:
        a, sa, eva, ida = await connect_and_subscribe("A", ua, ch)
        clients.append(a)
        b, sb, evb, idb = await connect_and_subscribe("B", ub, ch)
        clients.append(b)

        await c.wait_until(
            lambda: any(j.info.client == idb for j in eva.kinds("join")), what="join of B seen by A"
        )
        j = [j for j in eva.kinds("join") if j.info.client == idb][0]
        c.check_eq(j.info.user, ub, "join info.user")

        for who, s in (("A", sa), ("B", sb)):
            p = await s.presence()
            c.log(f"presence ({who})", p)
            c.check_eq(sorted(p.clients), sorted([ida, idb]), f"presence client ids ({who})")
            c.check_eq((p.clients[ida].user, p.clients[ida].client), (ua, ida), "presence entry of A")
            c.check_eq(p.clients[idb].user, ub, "presence user of B")
            st = await s.presence_stats()
            c.log(f"presence_stats ({who})", st)
            c.check_eq((st.num_clients, st.num_users), (2, 2), f"presence_stats ({who})")

        st = await a.presence_stats(ch)
        c.check_eq((st.num_clients, st.num_users), (2, 2), "client.presence_stats(channel)")

        empty = await sa.history(limit=10)
        c.log("history (empty)", empty)
        c.check_eq((empty.publications, empty.offset), ([], 0), "history of a fresh channel")
        c.check(empty.epoch, "history epoch should be set")

        for i in range(1, 6):
            await sa.publish({"i": i})
        await c.wait_until(lambda: len(evb.datas()) == 5, what="5 publications on B")
        c.check_eq([d["i"] for d in evb.datas()], [1, 2, 3, 4, 5], "publications on B")

        h = await sa.history(limit=10)
        c.log("history (limit 10)", h)
        c.check_eq([p.data["i"] for p in h.publications], [1, 2, 3, 4, 5], "history data")
        c.check_eq([p.offset for p in h.publications], [1, 2, 3, 4, 5], "history offsets")
        c.check_eq((h.offset, h.epoch), (5, empty.epoch), "history position")
        c.check(h.publications[0].info and h.publications[0].info.user == ua, "history info.user")

        h = await sb.history(limit=2)
        c.check_eq([p.data["i"] for p in h.publications], [1, 2], "history limit 2")
        h = await sb.history(limit=2, reverse=True)
        c.check_eq([p.data["i"] for p in h.publications], [5, 4], "history reverse")
        h = await sb.history(limit=10, since=StreamPosition(offset=3, epoch=empty.epoch))
        c.check_eq([p.data["i"] for p in h.publications], [4, 5], "history since offset 3")
        h = await sb.history()
        c.log("history (python sends limit 0)", h)
        c.check_eq((h.publications, h.offset), ([], 5), "history with limit 0: position only")
        try:
            await sb.history(limit=10, since=StreamPosition(offset=1, epoch="wrong"))
            raise c.ScenarioError("history since a wrong epoch should fail")
        except ReplyError as e:
            c.check_eq(e.code, 112, "history since a wrong epoch: error code")

        await sb.unsubscribe()
        await c.wait_until(
            lambda: any(x.info.client == idb for x in eva.kinds("leave")), what="leave of B seen by A"
        )
        st = await sa.presence_stats()
        c.check_eq((st.num_clients, st.num_users), (1, 1), "presence_stats after B left")
        c.check_eq(eva.kinds("unsubscribed"), [], "A stays subscribed")
    finally:
        for cl in clients:
            await cl.disconnect()


c.run("py_presence_history", 20, main)
