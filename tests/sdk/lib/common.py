"""Shared helpers for the Python scenarios (centrifuge-python 0.7.0, cent 5.2.0).

Every scenario calls ``run(name, timeout_s, main)``: it prints ``OK name`` and
exits 0 when the coroutine returns, or prints the failure, the event log and
the SDK's debug log (frames sent and received) and exits 1, also on timeout.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import sys
import time
import traceback
from typing import Any, Awaitable, Callable, Dict, List, Optional

WS_URL = os.environ.get("SDK_WS_URL", "ws://127.0.0.1:8000/connection/websocket")
API_URL = os.environ.get("SDK_API_URL", "http://127.0.0.1:8000/api")
API_KEY = os.environ.get("SDK_API_KEY", "api-key")
SECRET = os.environ.get("SDK_HMAC_SECRET", "secret")
NS = os.environ.get("SDK_NS", "sdk")
EXPECTED_VERSION = os.environ.get("SDK_SERVER_VERSION", "0.1.0 Gyre")
VERBOSE = os.environ.get("SDK_VERBOSE") == "1"

_started = time.monotonic()
_events: List[str] = []
_sdk_log: List[str] = []


def _stamp() -> str:
    return f"{time.monotonic() - _started:7.3f}"


def log(*args: Any) -> None:
    """Event log line: printed on failure (always with SDK_VERBOSE=1)."""
    line = _stamp() + " " + " ".join(a if isinstance(a, str) else repr(a) for a in args)
    _events.append(line)
    if VERBOSE:
        print(line, flush=True)


class _Capture(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001
            msg = str(record.msg)
        if len(msg) > 600:
            msg = msg[:600] + "…"
        _sdk_log.append(f"{_stamp()} {record.name} {record.levelname.lower()} {msg}")
        if len(_sdk_log) > 600:
            del _sdk_log[0]


def _capture_sdk_logs() -> None:
    handler = _Capture()
    for name in ("centrifuge",):
        lg = logging.getLogger(name)
        lg.setLevel(logging.DEBUG)
        lg.addHandler(handler)
        lg.propagate = False


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hs256_jwt(claims: Dict[str, Any], secret: str = SECRET) -> str:
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(sig)}"


def now() -> int:
    return int(time.time())


def rand(n: int = 6) -> str:
    return secrets.token_hex(n)


def conn_token(user: str, **extra: Any) -> "tuple[str, Dict[str, Any]]":
    """Connection JWT {sub, iat, exp, jti} plus overrides (None removes a claim)."""
    claims: Dict[str, Any] = {"sub": user, "iat": now(), "exp": now() + 3600, "jti": "jti-" + rand()}
    claims.update(extra)
    claims = {k: v for k, v in claims.items() if v is not None}
    return hs256_jwt(claims), claims


def channel(prefix: str) -> str:
    return f"{NS}:{prefix}-{rand(4)}"


class ScenarioError(AssertionError):
    pass


def check(cond: Any, msg: str) -> None:
    if not cond:
        raise ScenarioError(msg)


def check_eq(actual: Any, expected: Any, msg: str) -> None:
    if actual != expected:
        raise ScenarioError(f"{msg}: expected {expected!r}, got {actual!r}")


async def wait_until(
    fn: Callable[[], Any], timeout: float = 5.0, interval: float = 0.05, what: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if asyncio.iscoroutine(v):
            v = await v
        if v:
            return v
        if time.monotonic() > deadline:
            raise ScenarioError(f"timeout ({timeout} s) waiting for {what}")
        await asyncio.sleep(interval)


async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Runs a blocking call (the sync cent client) off the event loop."""
    label = getattr(fn, "__name__", str(fn))
    res = await asyncio.to_thread(fn, *args, **kwargs)
    log(f"cent {label}{tuple(a for a in args)!r} -> {res!r}")
    return res


def cent_client() -> Any:
    from cent import Client

    return Client(API_URL, API_KEY, timeout=5.0)


def new_client(label: str = "py", **kwargs: Any) -> Any:
    """centrifuge-python client with event logging (label names it in the log);
    kwargs go to Client()."""
    from centrifuge import Client

    events = kwargs.pop("events", None) or ClientEvents(label)
    kwargs.setdefault("timeout", 5.0)
    kwargs.setdefault("proxy", None)
    client = Client(WS_URL, events=events, **kwargs)
    client._sdk_events = events  # type: ignore[attr-defined]
    return client


def _make_event_classes() -> "tuple[type, type]":
    from centrifuge import ClientEventHandler, SubscriptionEventHandler

    class _ClientEvents(ClientEventHandler):
        """Records every client event (kind, ctx) in self.seen."""

        def __init__(self, name: str) -> None:
            self.name = name
            self.seen: List["tuple[str, Any]"] = []

        def _rec(self, kind: str, ctx: Any) -> None:
            self.seen.append((kind, ctx))
            log(f"[{self.name}] {kind}", ctx)

        def kinds(self, kind: str) -> List[Any]:
            return [c for k, c in self.seen if k == kind]

        async def on_connecting(self, ctx: Any) -> None:
            self._rec("connecting", ctx)

        async def on_connected(self, ctx: Any) -> None:
            self._rec("connected", ctx)

        async def on_disconnected(self, ctx: Any) -> None:
            self._rec("disconnected", ctx)

        async def on_error(self, ctx: Any) -> None:
            self._rec("error", ctx)

        async def on_subscribed(self, ctx: Any) -> None:
            self._rec("server_subscribed", ctx)

        async def on_subscribing(self, ctx: Any) -> None:
            self._rec("server_subscribing", ctx)

        async def on_unsubscribed(self, ctx: Any) -> None:
            self._rec("server_unsubscribed", ctx)

        async def on_publication(self, ctx: Any) -> None:
            self._rec("server_publication", ctx)

        async def on_join(self, ctx: Any) -> None:
            self._rec("server_join", ctx)

        async def on_leave(self, ctx: Any) -> None:
            self._rec("server_leave", ctx)

    class _SubEvents(SubscriptionEventHandler):
        """Records every subscription event (kind, ctx) in self.seen."""

        def __init__(self, name: str) -> None:
            self.name = name
            self.seen: List["tuple[str, Any]"] = []

        def _rec(self, kind: str, ctx: Any) -> None:
            self.seen.append((kind, ctx))
            log(f"[{self.name}] {kind}", ctx)

        def kinds(self, kind: str) -> List[Any]:
            return [c for k, c in self.seen if k == kind]

        def datas(self) -> List[Any]:
            return [c.pub.data for c in self.kinds("publication")]

        async def on_subscribing(self, ctx: Any) -> None:
            self._rec("subscribing", ctx)

        async def on_subscribed(self, ctx: Any) -> None:
            self._rec("subscribed", ctx)

        async def on_unsubscribed(self, ctx: Any) -> None:
            self._rec("unsubscribed", ctx)

        async def on_error(self, ctx: Any) -> None:
            self._rec("error", ctx)

        async def on_publication(self, ctx: Any) -> None:
            self._rec("publication", ctx)

        async def on_join(self, ctx: Any) -> None:
            self._rec("join", ctx)

        async def on_leave(self, ctx: Any) -> None:
            self._rec("leave", ctx)

    return _ClientEvents, _SubEvents


_classes: Optional["tuple[type, type]"] = None


def ClientEvents(name: str) -> Any:  # noqa: N802 - factory with a class-like name
    global _classes
    if _classes is None:
        _classes = _make_event_classes()
    return _classes[0](name)


def SubEvents(name: str) -> Any:  # noqa: N802
    global _classes
    if _classes is None:
        _classes = _make_event_classes()
    return _classes[1](name)


def _dump(name: str, err: BaseException) -> None:
    print(f"FAIL {name}: {type(err).__name__}: {err}")
    if not isinstance(err, ScenarioError):
        traceback.print_exception(type(err), err, err.__traceback__, file=sys.stdout)
    if not VERBOSE:
        print("--- event log")
        for line in _events:
            print(line)
    print("--- centrifuge-python debug log (frames sent and received)")
    for line in _sdk_log:
        print(line)
    sys.stdout.flush()


def run(name: str, timeout_s: float, main: Callable[[], Awaitable[None]]) -> None:
    _capture_sdk_logs()

    async def guarded() -> None:
        await asyncio.wait_for(main(), timeout=timeout_s)

    try:
        asyncio.run(guarded())
    except (asyncio.TimeoutError, TimeoutError) as e:
        _dump(name, ScenarioError(f"scenario timeout after {timeout_s} s") if not str(e) else e)
        sys.exit(1)
    except BaseException as e:  # noqa: BLE001 - report any failure
        _dump(name, e)
        sys.exit(1)
    if VERBOSE:
        for line in _sdk_log:
            print(line)
    print(f"OK {name}")
    sys.exit(0)


async def sleep_quiet(seconds: float) -> None:
    """Lets pending events arrive (used before checking "exactly once")."""
    await asyncio.sleep(seconds)


class RawConn:
    """A bare JSON-protocol WebSocket connection (no SDK): sends connect,
    answers server pings, records every reply and the close code/reason."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.ws: Any = None
        self.replies: List[Dict[str, Any]] = []
        self.closed: Optional["tuple[int, str]"] = None
        self._reader: Optional["asyncio.Task[None]"] = None

    async def connect(self, token: str, name: str = "raw") -> Dict[str, Any]:
        """Opens the socket, sends connect and returns the first reply."""
        reply = await self.try_connect(token, name)
        if reply is None:
            raise ScenarioError(f"raw[{self.name}]: closed {self.closed} instead of replying to connect")
        return reply

    async def try_connect(self, token: str, name: str = "raw") -> Optional[Dict[str, Any]]:
        """Like connect() but returns None when the server closes instead."""
        from websockets.asyncio.client import connect

        self.ws = await connect(WS_URL, proxy=None, open_timeout=5)
        self._reader = asyncio.create_task(self._read())
        cmd = json.dumps({"id": 1, "connect": {"token": token, "name": name}})
        _sdk_log.append(f"{_stamp()} raw[{self.name}] > {cmd[:300]}")
        await self.ws.send(cmd)
        await wait_until(lambda: self.replies or self.closed, what=f"raw[{self.name}] connect reply")
        return self.replies[0] if self.replies else None

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for msg in self.ws:
                _sdk_log.append(f"{_stamp()} raw[{self.name}] < {str(msg)[:600]}")
                for line in str(msg).split("\n"):
                    if not line.strip():
                        continue
                    obj = json.loads(line)
                    if obj == {}:
                        await self.ws.send("{}")
                        continue
                    self.replies.append(obj)
        except ConnectionClosed:
            pass
        finally:
            rcvd = getattr(self.ws.protocol, "close_rcvd", None)
            if rcvd is not None:
                self.closed = (rcvd.code, rcvd.reason)
            else:  # no close frame from the server
                self.closed = (self.ws.close_code or 1006, self.ws.close_reason or "")
            _sdk_log.append(f"{_stamp()} raw[{self.name}] closed {self.closed}")
            log(f"raw[{self.name}] closed", self.closed)

    async def wait_closed(self, timeout: float = 5.0) -> "tuple[int, str]":
        await wait_until(lambda: self.closed, timeout=timeout, what=f"raw[{self.name}] close")
        assert self.closed is not None
        return self.closed

    async def close(self) -> None:
        if self.ws is not None and self.closed is None:
            await self.ws.close()
        if self._reader is not None:
            try:
                await asyncio.wait_for(self._reader, 2)
            except Exception:  # noqa: BLE001
                pass


# --- protobuf flavour (centrifuge-python use_protobuf=True) --------------------
# Appended for the py_protobuf* scenarios. The SDK's debug log shows each
# binary frame as bytes ("start processing message: b'...'") and decoded
# ("got reply {...}"), and the commands it sends ("send commands: [...]").


def new_protobuf_client(label: str = "py-pb", **kwargs: Any) -> Any:
    """new_client() with use_protobuf=True (the `centrifuge-protobuf`
    WebSocket subprotocol, binary frames)."""
    kwargs["use_protobuf"] = True
    return new_client(label, **kwargs)


def subprotocol(client: Any) -> Optional[str]:
    """The WebSocket subprotocol the server agreed to on the client's current
    connection (None when not connected or none negotiated)."""
    conn = getattr(client, "_conn", None)
    return None if conn is None else conn.subprotocol
