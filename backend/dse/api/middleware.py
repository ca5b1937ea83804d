"""ASGI middleware: body size and JSON shape limits, rate limits per client, security headers."""

from __future__ import annotations

import asyncio
import json
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PROBLEM = "application/problem+json"


async def send_problem(
    send: Send, status: int, title: str, detail: str, field: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps(
        {
            "type": "about:blank",
            "title": title,
            "status": status,
            "detail": detail,
            "errors": [{"field": field, "reason": detail}],
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", PROBLEM.encode()), (b"content-length", str(len(body)).encode())]
            + (headers or []),
        }
    )
    await send({"type": "http.response.body", "body": body})


# -- JSON shape, checked on the bytes before anything parses them ------------------------------------

#: `bytes.translate` delete-set keeping only brackets, and the table folding `{}` into `[]`.
_ALL_BUT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_FOLD_BRACES = bytes.maketrans(b"{}", b"[]")


def _without_escapes(body: bytes) -> bytes:
    # Escapes pair up left to right, as str.replace scans: after `\\` pairs are gone, a `\"` left is
    # an escaped quote. Outside strings valid JSON has no backslash.
    return body.replace(b"\\\\", b"").replace(b'\\"', b"") if b"\\" in body else body


def _nesting_exceeds(brackets: bytes, limit: int) -> bool:
    """True when a bracket sequence (`[` and `]` only) nests deeper than `limit`.

    Each pass of `replace(b"[]", b"")` removes exactly the innermost level (every bracket pair at
    the deepest level is a `[]`), so anything left after `limit` passes is deeper than `limit`.
    Unbalanced leftovers that stop shrinking are left to the JSON parser to refuse.
    """
    if b"[" * (limit + 1) in brackets:
        return True  # limit + 1 opening brackets in a row: the usual deep-nesting body, found at once
    rest = brackets
    for _ in range(limit):
        if not rest:
            return False
        shorter = rest.replace(b"[]", b"")
        if len(shorter) == len(rest):
            return False
        rest = shorter
    return bool(rest)


def json_shape_problem(body: bytes, max_depth: int, max_containers: int, max_strings: int) -> str | None:
    """Why a JSON body is refused unparsed (too deep, too many arrays/objects or strings), or None.

    Parsing is what costs: `json.loads` of 1 MiB of empty arrays takes about 0.4 s and holds the
    GIL throughout, in whichever thread it runs. So the shape is measured first with a handful of
    C-speed bytes operations (count, replace, split, translate: a few milliseconds per MiB) and a
    body whose parse would be expensive is refused before anything parses it. Brackets and quotes
    inside strings are not counted. Small bodies take the first return.
    """
    quotes = body.count(b'"')
    if quotes > 2 * max_strings:
        body = _without_escapes(body)
        quotes = body.count(b'"')
        if quotes > 2 * max_strings:
            return f"more than {max_strings} strings"
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return None
    outside = b"".join(_without_escapes(body).split(b'"')[::2]) if quotes else body
    brackets = outside.translate(_FOLD_BRACES, _ALL_BUT_BRACKETS)
    if _nesting_exceeds(brackets, max_depth):
        return f"JSON nested deeper than {max_depth} levels"
    if brackets.count(b"[") > max_containers:
        return f"more than {max_containers} arrays and objects"
    return None


#: Bodies at least this large are measured in a worker thread and parsed one at a time.
LARGE_BODY_BYTES = 64 * 1024


class BodyLimitMiddleware:
    """413 above `max_body_bytes` (declared or streamed); 422 for JSON whose shape is out of bounds.

    A large body (`LARGE_BODY_BYTES` or more) is measured in a worker thread, and handed on to be
    parsed only while no other large body is being parsed: the app parses JSON on the event loop,
    so several large bodies arriving together would otherwise be parsed back to back while every
    other request (a health check) waits behind all of them. The slot is freed at the parsing
    request's first pause, so other requests run between two large parses.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        max_depth: int,
        max_containers: int = 10_000,
        max_strings: int = 20_000,
    ) -> None:
        self.app, self.max_body_bytes, self.max_depth = app, max_body_bytes, max_depth
        self.max_containers, self.max_strings = max_containers, max_strings
        # Made for the running event loop (an app may be served by several loops in turn, e.g. tests).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._measure_limiter = anyio.CapacityLimiter(2)
        self._parse_slot = asyncio.Lock()

    def _for_this_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._measure_limiter, self._parse_slot = loop, anyio.CapacityLimiter(2), asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length")
        too_large = f"the request body is larger than {self.max_body_bytes} bytes"
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await send_problem(send, 413, "Request body too large", too_large, "(body)")
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await send_problem(send, 413, "Request body too large", too_large, "(body)")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        large = len(body) >= LARGE_BODY_BYTES

        def measure() -> str | None:
            return json_shape_problem(body, self.max_depth, self.max_containers, self.max_strings)

        if large:
            self._for_this_loop()
            problem = await anyio.to_thread.run_sync(measure, limiter=self._measure_limiter)
        else:
            problem = measure()
        if problem is not None:
            await send_problem(send, 422, "Invalid input", problem, "(body)")
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                if large:
                    await self._take_parse_slot()
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _take_parse_slot(self) -> None:
        self._for_this_loop()
        slot = self._parse_slot
        await slot.acquire()
        # Released at the next turn of the loop, i.e. once this request pauses after parsing.
        asyncio.get_running_loop().call_soon(slot.release)


# -- rate limits ---------------------------------------------------------------------------------


class TokenBuckets:
    """One token bucket per client: `per_minute` tokens flow in, at most `burst` are kept.

    Thread-safe. Remembers at most `max_clients` clients, forgetting the least recently seen first
    (a forgotten client starts again with a full bucket). `per_minute == 0` turns it off.
    """

    def __init__(
        self, per_minute: float, burst: int, max_clients: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, when)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def _tokens(self, client: str, now: float) -> float:
        tokens, when = self._buckets.get(client, (self.burst, now))
        return min(self.burst, tokens + (now - when) * self.rate)

    def _wait_s(self, tokens: float) -> float:
        return (1.0 - tokens) / self.rate

    def _store(self, client: str, tokens: float, now: float) -> None:
        self._buckets[client] = (tokens, now)
        self._buckets.move_to_end(client)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)

    def take(self, client: str) -> float:
        """Take a token: 0.0 when there was one, else the seconds until there will be (none taken)."""
        if not self.enabled:
            return 0.0
        with self._lock:
            now = self._clock()
            tokens = self._tokens(client, now)
            if tokens < 1.0:
                self._store(client, tokens, now)
                return self._wait_s(tokens)
            self._store(client, tokens - 1.0, now)
            return 0.0

    def wait_s(self, client: str) -> float:
        """Seconds until the client has a token (0.0 if it has one now); takes nothing."""
        if not self.enabled:
            return 0.0
        with self._lock:
            tokens = self._tokens(client, self._clock())
            return 0.0 if tokens >= 1.0 else self._wait_s(tokens)

    def spend(self, client: str) -> None:
        """Take a token even if that leaves the bucket empty (for work already done)."""
        if not self.enabled:
            return
        with self._lock:
            now = self._clock()
            self._store(client, max(0.0, self._tokens(client, now) - 1.0), now)


def client_of(scope: Scope) -> str:
    """The client's address (behind a proxy, what uvicorn's --forwarded-allow-ips made of it)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


#: Requests that run an engine: POST evaluate/sweep/compare/report, a saved scenario's result or report.
EVALUATION_PATH = re.compile(
    r"/api/v1/(?:evaluate|sweep|sweep/axes|compare|report|scenarios/[^/]+/(?:result|report\.html))/?"
)
MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class RateLimitMiddleware:
    """429 (problem+json, Retry-After) once a client's bucket is empty.

    Evaluations (`EVALUATION_PATH`, whatever the method) draw on one bucket, every other mutating
    request (saves, renames, deletes, forks) on another; other reads are not limited.
    """

    def __init__(self, app: ASGIApp, writes: TokenBuckets, evaluations: TokenBuckets) -> None:
        self.app, self.writes, self.evaluations = app, writes, evaluations

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if EVALUATION_PATH.fullmatch(scope["path"]):
                buckets, what = self.evaluations, "evaluations"
            elif scope["method"] in MUTATING_METHODS:
                buckets, what = self.writes, "changes"
            else:
                buckets = None
            if buckets is not None and buckets.enabled:
                wait = buckets.take(client_of(scope))
                if wait > 0:
                    per_minute = round(buckets.rate * 60, 3)
                    detail = (
                        f"too many {what} from this client: at most {per_minute:g} a minute "
                        f"(bursts of {buckets.burst:g}); retry in {retry_after(wait)} s"
                    )
                    await send_problem(
                        send,
                        429,
                        "Too many requests",
                        detail,
                        "(request)",
                        headers=[(b"retry-after", retry_after(wait).encode())],
                    )
                    return
        await self.app(scope, receive, send)


# -- security headers ------------------------------------------------------------------------------

SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
        b"font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'; "
        b"form-action 'self'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


def with_security_headers(headers: Any) -> list[tuple[bytes, bytes]]:
    """`headers` plus every security header it does not set itself."""
    present = list(headers or [])
    names = {name.lower() for name, _ in present}
    return present + [h for h in SECURITY_HEADERS if h[0] not in names]


class SecurityHeadersMiddleware:
    """Adds the security headers to every response (500s are sent outside it: see problems.py)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = with_security_headers(message.get("headers"))
            await send(message)

        await self.app(scope, receive, send_with_headers)
