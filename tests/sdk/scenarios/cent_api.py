"""cent (sync Client): every OSS server API method against Gyre, checked on the
returned models and on what a live centrifuge-python client sees: publish,
broadcast, subscribe, unsubscribe, disconnect, refresh, presence,
presence_stats, history, history_remove, channels, info, batch."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import common as c  # noqa: E402


async def main() -> None:
    from cent import (
        BatchRequest,
        BroadcastRequest,
        CentApiResponseError,
        ChannelsRequest,
        DisconnectRequest,
        HistoryRemoveRequest,
        HistoryRequest,
        InfoRequest,
        PresenceRequest,
        PresenceStatsRequest,
        PublishRequest,
        RefreshRequest,
        StreamPosition,
        SubscribeRequest,
        UnsubscribeRequest,
    )
    from cent.dto import BroadcastResult, HistoryResult, PresenceStatsResult, PublishResult
    from centrifuge import ClientState

    user = "cent-" + c.rand(3)
    ch = c.channel("cent")
    ch2 = c.channel("cent2")
    srv_ch = c.channel("centsrv")
    token, claims = c.conn_token(user)
    client = c.new_client("live", token=token)
    ev = client._sdk_events
    sev = c.SubEvents("sub")
    sub = client.new_subscription(ch, events=sev)
    api = c.cent_client()
    try:
        await client.connect()
        await sub.subscribe()
        await sub.ready(timeout=5)
        cid = ev.kinds("connected")[0].client

        # publish
        r = await c.call(api.publish, PublishRequest(channel=ch, data={"text": "one"}))
        c.check(isinstance(r, PublishResult), f"PublishResult expected, got {r!r}")
        c.check_eq(r.offset, 1, "publish offset")
        c.check(r.epoch, "publish epoch")
        epoch = r.epoch
        await c.wait_until(lambda: sev.datas() == [{"text": "one"}], what="publication one")

        # broadcast
        b = await c.call(api.broadcast, BroadcastRequest(channels=[ch, ch2], data={"text": "both"}))
        c.check(isinstance(b, BroadcastResult), f"BroadcastResult expected, got {b!r}")
        c.check_eq(len(b.responses), 2, "broadcast responses")
        c.check(all(x.error is None for x in b.responses), f"broadcast errors: {b.responses}")
        c.check_eq([x.result.offset for x in b.responses], [2, 1], "broadcast offsets")
        await c.wait_until(lambda: len(sev.datas()) == 2, what="broadcast publication")

        # presence / presence_stats
        p = await c.call(api.presence, PresenceRequest(channel=ch))
        c.check_eq(list(p.presence), [cid], "presence clients")
        c.check_eq((p.presence[cid].user, p.presence[cid].client), (user, cid), "presence entry")
        ps = await c.call(api.presence_stats, PresenceStatsRequest(channel=ch))
        c.check_eq((ps.num_clients, ps.num_users), (1, 1), "presence_stats")

        # history
        h = await c.call(api.history, HistoryRequest(channel=ch, limit=10))
        c.check_eq([x.data for x in h.publications], [{"text": "one"}, {"text": "both"}], "history data")
        c.check_eq([x.offset for x in h.publications], [1, 2], "history offsets")
        c.check_eq((h.offset, h.epoch), (2, epoch), "history position")
        h = await c.call(api.history, HistoryRequest(channel=ch, limit=1, reverse=True))
        c.check_eq([x.data for x in h.publications], [{"text": "both"}], "history reverse")
        h = await c.call(api.history, HistoryRequest(channel=ch, limit=10, since=StreamPosition(offset=1, epoch=epoch)))
        c.check_eq([x.offset for x in h.publications], [2], "history since")
        try:
            await c.call(api.history, HistoryRequest(channel=ch, limit=10, since=StreamPosition(offset=1, epoch="x")))
            raise c.ScenarioError("history since a wrong epoch should fail")
        except CentApiResponseError as e:
            c.check_eq(e.code, 112, "history since a wrong epoch: error code")

        # channels
        chans = await c.call(api.channels, ChannelsRequest(pattern=f"{c.NS}:cent-*"))
        c.check_eq(list(chans.channels), [ch], "channels matching the pattern")
        c.check_eq(chans.channels[ch].num_clients, 1, "channels num_clients")
        all_chans = await c.call(api.channels, ChannelsRequest())
        c.check(ch in all_chans.channels, "channels without pattern lists the channel")

        # info
        info = await c.call(api.info, InfoRequest())
        c.check_eq(len(info.nodes), 1, "info nodes")
        node = info.nodes[0]
        c.check(node.uid and node.name, f"node uid/name, got {node!r}")
        c.check_eq(node.version, c.EXPECTED_VERSION, "node version")
        c.check(node.num_clients >= 1 and node.num_users >= 1 and node.num_channels >= 1, f"node counters {node!r}")

        # batch
        batch = await c.call(
            api.batch,
            BatchRequest(
                requests=[
                    PublishRequest(channel=ch, data={"text": "batch"}),
                    PresenceStatsRequest(channel=ch),
                    HistoryRequest(channel=ch, limit=0),
                ]
            ),
        )
        c.check_eq(len(batch.replies), 3, "batch replies")
        r0, r1, r2 = batch.replies
        c.check(isinstance(r0, PublishResult) and r0.offset == 3, f"batch publish reply {r0!r}")
        c.check(isinstance(r1, PresenceStatsResult) and r1.num_clients == 1, f"batch presence_stats reply {r1!r}")
        c.check(isinstance(r2, HistoryResult) and r2.offset == 3 and r2.publications == [], f"batch history reply {r2!r}")
        await c.wait_until(lambda: len(sev.datas()) == 3, what="batch publication")
        pb = await c.call(api.batch, BatchRequest(requests=[PublishRequest(channel=ch2, data={"k": i}) for i in range(3)], parallel=True))
        c.check_eq(sorted(x.offset for x in pb.replies), [2, 3, 4], "parallel batch publish offsets")

        # history_remove
        hr = await c.call(api.history_remove, HistoryRemoveRequest(channel=ch))
        c.log("history_remove ->", hr)
        h = await c.call(api.history, HistoryRequest(channel=ch, limit=10))
        c.check_eq(h.publications, [], "history after history_remove")

        # subscribe (server-side subscription of the live client)
        await c.call(api.subscribe, SubscribeRequest(user=user, channel=srv_ch))
        await c.wait_until(
            lambda: any(x.channel == srv_ch for x in ev.kinds("server_subscribed")), what="server-side subscribed event"
        )
        await c.call(api.publish, PublishRequest(channel=srv_ch, data={"srv": 1}))
        await c.wait_until(
            lambda: any(x.channel == srv_ch for x in ev.kinds("server_publication")), what="server-side publication"
        )
        sp = [x for x in ev.kinds("server_publication") if x.channel == srv_ch][0]
        c.check_eq(sp.pub.data, {"srv": 1}, "server-side publication data")
        ps = await c.call(api.presence_stats, PresenceStatsRequest(channel=srv_ch))
        c.check_eq((ps.num_clients, ps.num_users), (1, 1), "presence of the server-side subscription")

        # unsubscribe (server-side channel, then the client-side one)
        await c.call(api.unsubscribe, UnsubscribeRequest(user=user, channel=srv_ch))
        await c.wait_until(
            lambda: any(x.channel == srv_ch for x in ev.kinds("server_unsubscribed")), what="server-side unsubscribed"
        )
        await c.call(api.unsubscribe, UnsubscribeRequest(user=user, channel=ch))
        await c.wait_until(lambda: sev.kinds("unsubscribed"), what="unsubscribed event")
        u = sev.kinds("unsubscribed")[0]
        c.check_eq((u.code, u.reason), (2000, "server unsubscribe"), "unsubscribe push code/reason")
        ps = await c.call(api.presence_stats, PresenceStatsRequest(channel=ch))
        c.check_eq(ps.num_clients, 0, "presence after unsubscribe")

        # refresh (new expiry, the client stays connected)
        rr = await c.call(api.refresh, RefreshRequest(user=user, expire_at=c.now() + 600))
        c.log("refresh ->", rr)
        await c.sleep_quiet(0.3)
        c.check_eq(client.state, ClientState.CONNECTED, "connected after refresh")

        # disconnect: default code 3503 "force disconnect" is terminal
        await c.call(api.disconnect, DisconnectRequest(user=user))
        await c.wait_until(lambda: ev.kinds("disconnected"), what="disconnected event")
        d = ev.kinds("disconnected")[0]
        c.check_eq((d.code, d.reason), (3503, "force disconnect"), "disconnect code/reason")
        await c.sleep_quiet(1.0)
        c.check_eq(client.state, ClientState.DISCONNECTED, "stays disconnected")
        c.check_eq(len(ev.kinds("connecting")), 1, "no reconnect after 3503")

        # errors come back as CentApiResponseError with the Centrifugo codes
        for req, code in (
            (PublishRequest(channel="nope:x", data={}), 102),
            (PublishRequest(channel="", data={}), 107),
        ):
            try:
                await c.call(api.publish, req)
                raise c.ScenarioError(f"{req!r} should fail")
            except CentApiResponseError as e:
                c.check_eq(e.code, code, f"error code for {req!r}")
    finally:
        api.close()
        await client.disconnect()


c.run("cent_api", 25, main)
