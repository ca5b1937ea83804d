"""Running the app under uvicorn, with a deadline for a request's headers.

uvicorn closes an idle keep-alive connection after `timeout_keep_alive`, but waits for ever for a
request line and headers that never finish: a client opening connections and sending a header
byte now and then ("slowloris") holds them all open. `HeaderTimeoutH11Protocol` closes a
connection whose request line and headers are not complete `header_timeout_s` after they began
(or after the connection opened) with a 408. Bodies are bounded by size
(`BodyLimitMiddleware`), and the event loop never waits for one.

Every connection gets TCP_NODELAY. asyncio sets it only on sockets whose `proto` is IPPROTO_TCP; the
listening socket `dse serve --workers N` shares (uvicorn's `Config.bind_socket`) is made with proto 0, and
so are the connections it accepts. Without it Nagle's algorithm held each response's body (sent after
its headers, a second small write) until the client acknowledged the headers, which a client delays up
to 40 ms (Linux's delayed ACK): every request of a multi-process server took ~40 ms more (measured: a
20 kB answer in 45 ms at the median with 2 processes, 9 ms with 1 or with TCP_NODELAY).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from dse.settings import Settings, get_settings

logger = logging.getLogger("dse.api")

_REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"


def no_delay(transport: asyncio.BaseTransport) -> None:
    """Sets TCP_NODELAY on a TCP connection (see the module docstring); other transports are left alone."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
        with contextlib.suppress(OSError):  # a connection already reset: nothing to answer on
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class HeaderTimeoutH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections whose headers take longer than `header_timeout_s`."""

    header_timeout_s: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        no_delay(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._arm_header_timer()  # still reading a request line and headers: the clock runs
        else:
            self._cancel_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_timed_out)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_timed_out(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a response is being sent; its own completion arms the keep-alive timer
        logger.info("closing a connection whose request headers took over %g s", self.header_timeout_s)
        self.transport.write(_REQUEST_TIMEOUT)
        self.transport.close()


class SettingsHeaderTimeoutH11Protocol(HeaderTimeoutH11Protocol):
    """The same, its header deadline read from the DSE_* settings: what each process of
    `dse serve --workers N` imports by name (a class made at run time cannot be sent to a worker)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout_s = get_settings().header_timeout_s


def protocol_with_header_timeout(seconds: float) -> type[HeaderTimeoutH11Protocol]:
    return type("HeaderTimeoutH11Protocol", (HeaderTimeoutH11Protocol,), {"header_timeout_s": seconds})


def server_config(app: Any, settings: Settings, *, host: str, port: int, **options: Any) -> uvicorn.Config:
    """The uvicorn configuration `dse serve` runs: h11 with the header deadline of `settings`."""
    return uvicorn.Config(
        app, host=host, port=port, http=protocol_with_header_timeout(settings.header_timeout_s), **options
    )


def serve(app: Any, settings: Settings, *, host: str, port: int) -> None:
    uvicorn.Server(server_config(app, settings, host=host, port=port, log_level="warning")).run()


def serve_workers(workers: int, *, host: str, port: int) -> None:
    """`workers` server processes on one listening socket (uvicorn's supervisor restarts one that
    dies). Each builds its own app from the environment's settings (`create_served_app`), so they
    share the store (and its result cache) and nothing else: see README, "Several processes"."""
    uvicorn.run(
        "dse.api.app:create_served_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http=f"{__name__}:SettingsHeaderTimeoutH11Protocol",
        log_level="warning",
    )
