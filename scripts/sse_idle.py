#!/usr/bin/env python3
"""Memory per idle SSE (bidirectional emulation) connection of a running Gyre.

Opens N `GET /connection/sse?cf_connect=...` streams, each connecting with
an HS256 token whose `channels` claim subscribes it to one channel (as the
WebSocket idle scenario subscribes each connection), waits until every
stream carried its connect reply, holds them a few seconds, and reports the
server's resident memory growth per connection as one JSON line (the same
method as gyre-loadgen idle: RSS from /proc/<pid>/status before and after).

    python3 scripts/sse_idle.py --port 18500 --pid <gyre pid> --connections 10000 --secret bench-secret
"""

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import resource
import time
import urllib.parse


def b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def token(secret: str, sub: str) -> str:
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": sub, "channels": ["idle-sse"]}).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def open_one(port: int, secret: str, i: int, streams: list) -> None:
    cmd = json.dumps({"id": 1, "connect": {"token": token(secret, f"sse-{i}")}})
    path = "/connection/sse?cf_connect=" + urllib.parse.quote(cmd)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    buf = b""
    while b'"connect"' not in buf:
        chunk = await asyncio.wait_for(reader.read(4096), 10)
        if not chunk:
            raise RuntimeError("stream ended before the connect reply")
        buf += chunk
    streams.append((reader, writer))


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--secret", default="bench-secret")
    ap.add_argument("--hold", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=200)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    before = rss_kib(a.pid)
    streams: list = []
    started = time.monotonic()
    sem = asyncio.Semaphore(a.concurrency)

    async def guarded(i: int) -> None:
        async with sem:
            await open_one(a.port, a.secret, i, streams)

    await asyncio.gather(*(guarded(i) for i in range(a.connections)))
    opened = time.monotonic() - started
    await asyncio.sleep(a.hold)
    after = rss_kib(a.pid)
    for _, w in streams:
        w.close()
    print(json.dumps({
        "connections": len(streams),
        "open_s": round(opened, 2),
        "rss_before_kib": before,
        "rss_after_kib": after,
        "server_bytes_per_conn": round((after - before) * 1024 / max(1, len(streams))),
    }))


asyncio.run(main())
