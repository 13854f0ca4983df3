#!/usr/bin/env python3
"""Measures Gyre's memory and liveness under three denial-of-service attacks.

    python3 scripts/abuse_probe.py --bin target/release/gyre [--attack all|keyless|history|idle]

Starts the given binary on a free loopback port with a temporary config
(one fresh server per attack, so VmHWM of one attack does not mask the
next), waits for GET /health, runs the attack(s) and prints one table:

* keyless: 100 connections POST /api/publish with Content-Length 2,000,000
  and no API key, send 1,999,000 body bytes, then stall about 5 s.
* history: 300 publications of ~3,000 bytes into chat:h, then one raw
  WebSocket sends a single text frame of up to 1,000 `history` commands
  (limit 300 each) and does not read for 3 s.
* idle: 2,000 TCP sockets that connect and send nothing, held 15 s.

For each attack: the server's VmRSS/VmHWM (/proc/PID/status) before, the
peak VmRSS sampled every 50 ms during the attack, VmRSS/VmHWM at its end,
whether /health answered meanwhile, and what the attacker got.

Python 3 standard library only. Loopback only; every loop is bounded in
count and time, and the probe stops (and stops the server) by itself.
"""

import argparse
import base64
import collections
import errno
import hashlib
import hmac
import http.client
import json
import os
import resource
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HOST = "127.0.0.1"
API_KEY = "k"
SECRET = "secret"


def mib(kib):
    return kib / 1024.0


# ---------------------------------------------------------------- server ---


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def write_config(path, port):
    cfg = {
        "http_server": {"port": port},
        "log": {"level": "error"},
        "client": {"token": {"hmac_secret_key": SECRET}},
        "http_api": {"key": API_KEY},
        "health": {"enabled": True},
        "channel": {
            "namespaces": [
                {
                    "name": "chat",
                    "history_size": 300,
                    "history_ttl": "300s",
                    "allow_subscribe_for_client": True,
                    "allow_history_for_subscriber": True,
                    "allow_history_for_client": True,
                }
            ]
        },
    }
    with open(path, "w") as f:
        json.dump(cfg, f)


def proc_mem(pid):
    """(VmRSS, VmHWM) in KiB, or (None, None) if the process is gone."""
    rss = hwm = None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


def health(port, timeout=2.0):
    """(ok, seconds) for one GET /health on a fresh connection."""
    t0 = time.monotonic()
    try:
        c = http.client.HTTPConnection(HOST, port, timeout=timeout)
        c.request("GET", "/health")
        r = c.getresponse()
        r.read()
        c.close()
        return r.status == 200, time.monotonic() - t0
    except (OSError, http.client.HTTPException):
        return False, time.monotonic() - t0


class Server:
    def __init__(self, binary, workdir):
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.config = os.path.join(workdir, f"config-{self.port}.json")
        self.logpath = os.path.join(workdir, f"gyre-{self.port}.log")
        write_config(self.config, self.port)
        self.proc = None

    def start(self, wait_s=15.0):
        self.log = open(self.logpath, "wb")
        self.proc = subprocess.Popen(
            [self.binary, "-c", self.config],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if health(self.port, timeout=0.5)[0]:
                return
            time.sleep(0.1)
        self.stop()
        with open(self.logpath, "rb") as f:
            tail = f.read()[-2000:].decode(errors="replace")
        raise RuntimeError(f"gyre did not answer /health on port {self.port}:\n{tail}")

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        self.log.close()


class Watch:
    """Samples VmRSS every 50 ms and GET /health every 0.5 s until stopped
    (or max_s elapsed)."""

    def __init__(self, server, max_s=180.0):
        self.server = server
        self.max_s = max_s
        self.stop_ev = threading.Event()
        self.peak_rss = 0
        self.health_ok = 0
        self.health_total = 0
        self.health_worst_s = 0.0

    def _mem(self):
        deadline = time.monotonic() + self.max_s
        while not self.stop_ev.is_set() and time.monotonic() < deadline:
            rss, _ = proc_mem(self.server.pid)
            if rss is not None:
                self.peak_rss = max(self.peak_rss, rss)
            self.stop_ev.wait(0.05)

    def _health(self):
        deadline = time.monotonic() + self.max_s
        while not self.stop_ev.is_set() and time.monotonic() < deadline:
            ok, dt = health(self.server.port, timeout=2.0)
            self.health_total += 1
            self.health_ok += ok
            self.health_worst_s = max(self.health_worst_s, dt)
            self.stop_ev.wait(0.5)

    def __enter__(self):
        self.threads = [threading.Thread(target=t, daemon=True) for t in (self._mem, self._health)]
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        for t in self.threads:
            t.join(timeout=5)

    def health_summary(self):
        return f"{self.health_ok}/{self.health_total} ok, worst {self.health_worst_s * 1000:.0f} ms"


# --------------------------------------------------------------- attacks ---


def attack_keyless(server, conns=100, length=2_000_000, send=1_999_000, stall_s=5.0, send_budget_s=60.0):
    """Keyless POST /api/publish with a large, never completed body."""
    head = (
        f"POST /api/publish HTTP/1.1\r\nHost: {HOST}:{server.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()
    body = memoryview(b"a" * send)
    socks = []
    for _ in range(conns):
        s = socket.create_connection((HOST, server.port), timeout=5)
        s.sendall(head)
        s.setblocking(False)
        socks.append(s)
    sent = {s: 0 for s in socks}
    answer = {}  # sock -> (first line, body bytes sent when it arrived, seconds)
    dead = {}  # sock -> error name while sending/reading
    got = {s: b"" for s in socks}
    t0 = time.monotonic()

    def read_some(s):
        try:
            data = s.recv(65536)
        except BlockingIOError:
            return
        except OSError as e:
            dead.setdefault(s, errno.errorcode.get(e.errno, str(e)))
            return
        if not data:
            dead.setdefault(s, "EOF")
            return
        got[s] += data[:4096]
        if s not in answer and b"\r\n" in got[s]:
            answer[s] = (got[s].split(b"\r\n", 1)[0].decode(errors="replace"), sent[s], time.monotonic() - t0)

    # Send bodies round-robin, reading any early answer, within a time budget.
    deadline = t0 + send_budget_s
    while time.monotonic() < deadline:
        writing = [s for s in socks if sent[s] < send and s not in dead]
        if not writing:
            break
        reading = [s for s in socks if s not in dead]
        r, w, _ = select.select(reading, writing, [], 0.5)
        for s in r:
            read_some(s)
        for s in w:
            if s in dead or sent[s] >= send:
                continue
            try:
                n = s.send(body[sent[s] : sent[s] + 65536])
                sent[s] += n
            except BlockingIOError:
                pass
            except OSError as e:
                read_some(s)  # an answer may have arrived just before the close
                dead.setdefault(s, errno.errorcode.get(e.errno, str(e)))
    send_s = time.monotonic() - t0
    # Stall with the last 1,000 bytes never sent, still reading answers.
    stall_end = time.monotonic() + stall_s
    while time.monotonic() < stall_end:
        reading = [s for s in socks if s not in dead]
        if not reading:
            time.sleep(min(0.2, max(0.0, stall_end - time.monotonic())))
            continue
        r, _, _ = select.select(reading, [], [], 0.2)
        for s in r:
            read_some(s)
    rss_end, hwm_end = proc_mem(server.pid)
    outcomes = collections.Counter()
    for s in socks:
        if s in answer:
            line, at, secs = answer[s]
            outcomes[line.replace("HTTP/1.1 ", "")] += 1
        else:
            outcomes["no answer" + (f" ({dead[s]})" if s in dead else ", still open")] += 1
    still_open = sum(1 for s in socks if s not in dead)
    ats = sorted(a[1] for a in answer.values())
    secs = sorted(a[2] for a in answer.values())
    for s in socks:
        s.close()
    detail = ", ".join(f"{k}: {v}" for k, v in outcomes.most_common())
    if ats:
        detail += f"; answered after a median {ats[len(ats) // 2]:,} body bytes sent, {secs[len(secs) // 2]:.2f} s"
    detail += f"; body bytes accepted total {sum(sent.values()) / 1e6:.0f} MB in {send_s:.1f} s; open after stall {still_open}/{conns}"
    return {"attacker_got": detail, "rss_end": rss_end, "hwm_end": hwm_end}


def jwt_hs256(sub, secret):
    def b64(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = b64(json.dumps({"sub": sub, "exp": int(time.time()) + 3600}, separators=(",", ":")).encode())
    signing = f"{header}.{payload}".encode()
    sig = b64(hmac.new(secret.encode(), signing, hashlib.sha256).digest())
    return f"{header}.{payload}.{sig}"


def ws_frame(payload, opcode=0x1):
    """One masked, final client frame."""
    n = len(payload)
    if n < 126:
        hdr = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        hdr = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    mask = os.urandom(4)
    # XOR with the repeated mask, as one big integer (fast for 64 KB).
    m = (mask * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(m, "big")).to_bytes(n, "big") if n else b""
    return hdr + mask + masked


class FrameReader:
    """Streams server frames; keeps only small payloads (control frames and
    the first bytes of data frames)."""

    def __init__(self):
        self.buf = bytearray()
        self.skip = 0  # payload bytes of the current big frame still to drop
        self.frames = 0
        self.data_bytes = 0
        self.close_code = None
        self.close_reason = ""
        self.first_text = []

    def feed(self, data):
        if self.skip:
            k = min(self.skip, len(data))
            self.skip -= k
            self.data_bytes += k
            data = data[k:]
        self.buf += data
        while True:
            b = self.buf
            if len(b) < 2:
                return
            op = b[0] & 0x0F
            n = b[1] & 0x7F
            off = 2
            if n == 126:
                if len(b) < 4:
                    return
                n = struct.unpack("!H", b[2:4])[0]
                off = 4
            elif n == 127:
                if len(b) < 10:
                    return
                n = struct.unpack("!Q", b[2:10])[0]
                off = 10
            self.frames += 1
            if op == 0x8:
                if len(b) < off + n:
                    self.frames -= 1
                    return
                p = bytes(b[off : off + n])
                if len(p) >= 2:
                    self.close_code = struct.unpack("!H", p[:2])[0]
                    self.close_reason = p[2:].decode(errors="replace")
                else:
                    self.close_code = 1005
                del b[: off + n]
                continue
            if len(b) >= off + n:
                if len(self.first_text) < 3:
                    self.first_text.append(bytes(b[off : off + min(n, 200)]))
                self.data_bytes += n
                del b[: off + n]
                continue
            # A large frame: note its start and drop the rest as it streams.
            if len(self.first_text) < 3:
                self.first_text.append(bytes(b[off : off + 200]))
            have = len(b) - off
            self.data_bytes += have
            self.skip = n - have
            del b[:]
            return


def publish(conn, channel, data):
    body = json.dumps({"channel": channel, "data": data}).encode()
    conn.request("POST", "/api/publish", body=body, headers={"X-API-Key": API_KEY, "Content-Type": "application/json"})
    r = conn.getresponse()
    out = r.read()
    return r.status == 200 and b'"error"' not in out


def attack_history(server, pubs=300, pub_bytes=3000, commands=1000, quiet_s=3.0, read_budget_s=60.0):
    """Fills chat:h, then one WebSocket frame of many history commands."""
    conn = http.client.HTTPConnection(HOST, server.port, timeout=10)
    ok = 0
    for i in range(pubs):
        ok += publish(conn, "chat:h", {"i": i, "text": "x" * (pub_bytes - 20)})
    conn.close()
    if ok != pubs:
        print(f"  warning: only {ok}/{pubs} publications accepted", file=sys.stderr)
    rss_filled, hwm_filled = proc_mem(server.pid)

    s = socket.create_connection((HOST, server.port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        (
            f"GET /connection/websocket HTTP/1.1\r\nHost: {HOST}:{server.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    resp = b""
    deadline = time.monotonic() + 10
    while b"\r\n\r\n" not in resp and time.monotonic() < deadline and len(resp) < 65536:
        chunk = s.recv(4096)
        if not chunk:
            break
        resp += chunk
    head, _, rest = resp.partition(b"\r\n\r\n")
    expect = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
    if not head.startswith(b"HTTP/1.1 101") or expect not in head:
        raise RuntimeError(f"WebSocket handshake failed: {head[:200]!r}")
    reader = FrameReader()
    reader.feed(rest)
    s.sendall(ws_frame(json.dumps({"id": 1, "connect": {"token": jwt_hs256("1", SECRET)}}).encode()))
    deadline = time.monotonic() + 10
    while reader.frames == 0 and time.monotonic() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            break
        reader.feed(chunk)
    connect_reply = reader.first_text[0][:120].decode(errors="replace") if reader.first_text else "none"
    if '"connect"' not in connect_reply:
        raise RuntimeError(f"connect failed: {connect_reply}")

    # One text frame of history commands, under 65,536 bytes.
    lines = [json.dumps({"id": n, "history": {"channel": "chat:h", "limit": 300}}, separators=(",", ":")) for n in range(2, commands + 2)]
    while len("\n".join(lines).encode()) >= 65536:
        lines.pop()
    payload = "\n".join(lines).encode()
    reader = FrameReader()
    t0 = time.monotonic()
    s.sendall(ws_frame(payload))
    time.sleep(quiet_s)  # do not read: replies pile up on the server
    rss_quiet, hwm_quiet = proc_mem(server.pid)
    s.settimeout(1.0)
    got_eof = False
    deadline = time.monotonic() + read_budget_s
    idle_since = time.monotonic()
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(1 << 20)
        except socket.timeout:
            if time.monotonic() - idle_since > 5:
                break  # nothing more for 5 s
            continue
        except OSError as e:
            reader.close_reason = reader.close_reason or errno.errorcode.get(e.errno, str(e))
            break
        if not chunk:
            got_eof = True
            break
        idle_since = time.monotonic()
        reader.feed(chunk)
        if reader.close_code is not None:
            break
    read_s = time.monotonic() - t0
    rss_end, hwm_end = proc_mem(server.pid)
    s.close()
    detail = f"{len(lines)} commands in one {len(payload):,} B frame; read {reader.data_bytes / 1e6:,.1f} MB in {reader.frames} frame(s) over {read_s:.1f} s; "
    if reader.close_code is not None:
        detail += f"close {reader.close_code} {reader.close_reason!r}"
    elif got_eof:
        detail += "EOF without close frame"
    else:
        detail += "no close (connection still open)"
    return {
        "attacker_got": detail,
        "rss_end": rss_end,
        "hwm_end": hwm_end,
        "extra": f"after filling history: RSS {mib(rss_filled):.1f} MiB; after 3 s quiet: RSS {mib(rss_quiet):.1f} MiB, HWM {mib(hwm_quiet):.1f} MiB",
        "baseline": (rss_filled, hwm_filled),
    }


def attack_idle(server, conns=2000, hold_s=15.0, checks=(5.0, 12.0, 15.0)):
    """Silent TCP sockets: how long does the server keep them?"""
    socks = []
    sources = [HOST] + [f"127.0.0.{i}" for i in range(2, 10)]
    src = 0
    failures = collections.Counter()
    t_connect = time.monotonic()
    deadline = t_connect + 30
    # Non-blocking connects in paced batches of 100 (Gyre listens with a
    # backlog of 128), so the whole set is open within about a second.
    while len(socks) < conns and time.monotonic() < deadline and sum(failures.values()) < 100:
        batch = []
        while len(batch) < min(100, conns - len(socks)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                if src:
                    s.bind((sources[src], 0))
                rc = s.connect_ex((HOST, server.port))
            except OSError as e:
                rc = e.errno
            if rc == errno.EADDRNOTAVAIL and src + 1 < len(sources):
                s.close()
                src += 1  # out of ephemeral ports: next source address
                continue
            if rc not in (0, errno.EINPROGRESS):
                s.close()
                failures[errno.errorcode.get(rc, str(rc))] += 1
                if sum(failures.values()) >= 100:
                    break
                continue
            batch.append(s)
        waiting = {s.fileno(): s for s in batch}
        poller = select.poll()  # select() cannot take descriptors over 1023
        for fd in waiting:
            poller.register(fd, select.POLLOUT)
        batch_deadline = time.monotonic() + 5
        while waiting and time.monotonic() < batch_deadline:
            for fd, _ in poller.poll(200):
                poller.unregister(fd)
                s = waiting.pop(fd)
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    s.close()
                    failures[errno.errorcode.get(err, str(err))] += 1
                else:
                    socks.append(s)
        for s in waiting.values():
            s.close()
            failures["connect timeout"] += 1
        # Let the server accept this batch: a full accept queue drops SYNs,
        # which the kernel retries only after 1 s.
        time.sleep(0.02)
    t0 = time.monotonic()
    connect_s = t0 - t_connect
    closed = set()

    def count_open():
        for i, s in enumerate(socks):
            if i in closed:
                continue
            try:
                if s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                    closed.add(i)
            except BlockingIOError:
                pass
            except OSError:
                closed.add(i)
        return len(socks) - len(closed)

    open_at = {}
    for c in checks:
        time.sleep(max(0.0, t0 + c - time.monotonic()))
        open_at[c] = count_open()
    rss_end, hwm_end = proc_mem(server.pid)
    for s in socks:
        s.close()
    detail = f"{len(socks)} connected in {connect_s:.1f} s"
    if failures:
        detail += " (failed: " + ", ".join(f"{k} {v}" for k, v in failures.items()) + ")"
    detail += "; open at " + ", ".join(f"{c:g}s: {open_at[c]}" for c in checks)
    return {"attacker_got": detail, "rss_end": rss_end, "hwm_end": hwm_end}


ATTACKS = {"keyless": attack_keyless, "history": attack_history, "idle": attack_idle}


# ------------------------------------------------------------------ main ---


def run_one(binary, name, workdir):
    server = Server(binary, workdir)
    server.start()
    try:
        time.sleep(0.5)
        rss0, hwm0 = proc_mem(server.pid)
        print(f"== {name}: gyre pid {server.pid} port {server.port}, RSS {mib(rss0):.1f} MiB", flush=True)
        with Watch(server) as w:
            res = ATTACKS[name](server)
        rss_after_close = None
        time.sleep(1.0)
        rss_after_close, _ = proc_mem(server.pid)
        res.update(
            name=name,
            rss0=rss0,
            hwm0=hwm0,
            peak_rss=w.peak_rss,
            health=w.health_summary(),
            rss_after_close=rss_after_close,
            alive=server.alive(),
        )
        print(f"   {res['attacker_got']}", flush=True)
        if "extra" in res:
            print(f"   {res['extra']}", flush=True)
        return res
    finally:
        server.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True, help="path to the gyre binary")
    ap.add_argument("--attack", default="all", choices=["all"] + list(ATTACKS))
    args = ap.parse_args()
    binary = os.path.abspath(args.bin)
    if not os.access(binary, os.X_OK):
        sys.exit(f"not executable: {binary}")

    # The idle attack holds 2,000+ sockets; the server inherits this limit too.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    names = list(ATTACKS) if args.attack == "all" else [args.attack]
    results = []
    with tempfile.TemporaryDirectory(prefix="abuse_probe-") as workdir:
        for name in names:
            results.append(run_one(binary, name, workdir))

    print()
    print(f"binary: {binary}")
    hdr = f"{'attack':<8} {'RSS0':>7} {'peakRSS':>8} {'RSSend':>7} {'growth':>7} {'HWM0':>7} {'HWMend':>7} {'HWMgrow':>8} {'RSSclosed':>9}  /health during attack"
    print(hdr)
    print("-" * len(hdr))
    for r in results:
        f = lambda k: f"{mib(r[k]):.1f}" if r.get(k) is not None else "-"
        growth = mib(r["peak_rss"] - r["rss0"])
        hwm_grow = mib(r["hwm_end"] - r["hwm0"]) if r["hwm_end"] is not None else float("nan")
        print(
            f"{r['name']:<8} {f('rss0'):>7} {f('peak_rss'):>8} {f('rss_end'):>7} {growth:>7.1f} {f('hwm0'):>7} {f('hwm_end'):>7} {hwm_grow:>8.1f} {f('rss_after_close'):>9}  {r['health']}"
            + ("" if r["alive"] else "  (server died)")
        )
    print("(MiB; RSS0/HWM0 before the attack, peakRSS sampled every 50 ms, RSSend/HWMend at the end of the attack, RSSclosed 1 s after the attacker closed)")
    for r in results:
        print(f"{r['name']}: {r['attacker_got']}")


if __name__ == "__main__":
    main()
