"""Connections that cannot starve the health checks: uvicorn's HTTP protocol (httptools) with a
deadline on every request head, a cap on its size, and a connection limit that makes room
instead of refusing.

uvicorn has no header-read timeout: a connection that never sends a byte (or half a request
head) is kept for ever, and its ``limit_concurrency`` answers 503 to every request once that
many connections are open, ``/healthz`` included. So ``GATEWAY_MAX_CONNECTIONS`` idle sockets
took a healthy gateway out of its load balancer and got it restarted by its liveness probe.
Here instead:

- a request head must arrive whole within ``GATEWAY_HEADER_TIMEOUT_S`` of the connection
  opening (or of its first byte, on a kept-alive connection); else 408 and the connection is
  closed. Kept-alive connections that send nothing are closed after ``GATEWAY_KEEP_ALIVE_S``
  (uvicorn's own ``timeout_keep_alive``);
- a head larger than ``GATEWAY_MAX_HEADER_BYTES`` gets 431;
- past ``GATEWAY_MAX_CONNECTIONS`` open connections, a new connection holds no slot: a health
  check on it (``/healthz``, ``/readyz``, ``/metrics``) is answered, any other request closes
  the longest-idle connection (no request running: a kept-alive socket, or one still sending
  its head) and takes its slot, and only when every connection runs a request is it refused
  (503, ``Connection: close``). One that sends no request head within a second is closed. Room
  is made when a request asks for it, not when a socket opens: otherwise a client that reopens
  each closed socket at once would close another one each time, a loop at loopback speed.

Request bodies have their own deadline and memory cap in gateway/bodies.py.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from gateway.settings import Settings

ALWAYS_ANSWERED = frozenset({"/healthz", "/readyz", "/metrics"})
EXTRA_HEAD_S = 1.0  # a connection opened past the limit must send its request head this soon


@dataclass(frozen=True)
class Limits:
    max_connections: int
    header_timeout_s: float
    max_header_bytes: int

    @classmethod
    def of(cls, s: Settings) -> Limits:
        return cls(s.max_connections, s.header_timeout_s, s.max_header_bytes)


def _raw(status: bytes, sentence: str) -> bytes:
    """A whole answer written straight to the socket (no request cycle exists yet)."""
    body = ('{"error": "' + sentence + '"}').encode()
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
    )


def _answer(status: int, sentence: str, retry_after: str | None = None) -> Any:
    """An ASGI app that answers every request with ``status`` and closes the connection."""
    body = ('{"error": "' + sentence + '"}').encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    if retry_after:
        headers.append((b"retry-after", retry_after.encode()))

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


# every connection runs a request, so none could be closed to make room (never a health check)
FULL = _answer(503, "The gateway has too many open connections; retry in 2 s.", "2")


def guarded_protocol(
    limits: Limits, on_close: Callable[[str], None] = lambda reason: None
) -> type[HttpToolsProtocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` holding these limits; ``on_close`` is
    told why each connection the gateway closes was closed (metrics). One class per server:
    its idle list is that server's."""
    idle: OrderedDict[GuardedProtocol, None] = OrderedDict()  # longest idle first
    too_big = f"A request head must be at most {limits.max_header_bytes} bytes."
    TOO_BIG = _answer(431, too_big)

    class GuardedProtocol(HttpToolsProtocol):
        _head_timer: asyncio.TimerHandle | None = None
        _head_bytes = 0  # of the head parsed so far
        _head_raw = 0  # bytes received while no whole head has arrived
        _in_head = True  # reading a request head (or waiting for one): no request runs
        _extra = False  # opened past the limit: holds no slot (yet)

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            # Past the limit a connection gets no slot until a request asks for one: making
            # room at connect time let a client that reopens every closed socket at once
            # close another socket with each reopening, and so on for ever
            self._extra = len(self.connections) > limits.max_connections
            if not self._extra:
                self._idle()
            self._arm_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            idle.pop(self, None)
            self._disarm_head_timer()
            super().connection_lost(exc)

        # -- the request head: a deadline and a size cap --------------------------------
        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_head, self._head_bytes = True, 0
            if self._head_timer is None:  # a kept-alive connection starts its next request
                self._arm_head_timer()

        def on_url(self, url: bytes) -> None:
            self._head_bytes += len(url)
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._head_bytes += len(name) + len(value) + 4
            super().on_header(name, value)

        def data_received(self, data: bytes) -> None:
            if self._in_head:  # the parser reports a header only once its line is complete
                self._head_raw += len(data)
            super().data_received(data)
            if self._in_head and self._head_raw > limits.max_header_bytes:
                # still no end of the head in sight: no request cycle exists, answer raw
                self._refuse(b"431 Request Header Fields Too Large", too_big)
                on_close("head_too_large")

        def on_headers_complete(self) -> None:
            self._in_head, self._head_raw = False, 0
            self._disarm_head_timer()
            idle.pop(self, None)  # a request runs: not idle until its answer is sent
            if self._head_bytes <= limits.max_header_bytes:
                super().on_headers_complete()
                return
            # uvicorn starts (or queues, when pipelined) the app it holds: hand it the refusal
            # for this one request, so the rest of the message is parsed and dropped as usual
            on_close("head_too_large")
            app, self.app = self.app, TOO_BIG
            try:
                super().on_headers_complete()
            finally:
                self.app = app

        def on_response_complete(self) -> None:
            pipelined = bool(self.pipeline)  # uvicorn starts the next queued request now
            super().on_response_complete()
            if pipelined or self.transport.is_closing():
                return
            if self._extra and len(self.connections) > limits.max_connections:
                self.transport.close()  # a health check answered past the limit: done
                return
            self._extra = False
            self._in_head, self._head_raw = True, 0  # waiting for the next head (keep-alive)
            self._idle()

        def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
            if self._extra and cycle.scope["path"] not in ALWAYS_ANSWERED:
                if self._make_room():
                    self._extra = False  # it took the slot of the longest-idle connection
                else:
                    app = FULL  # every connection runs a request: none can make room
                    on_close("full")
            super()._start_asgi_task(cycle, app)

        # -- helpers -------------------------------------------------------------------
        def _idle(self) -> None:
            idle.pop(self, None)
            idle[self] = None  # newest idle last

        def _make_room(self) -> bool:
            """Close the longest-idle connection with a slot; False if none is idle."""
            for victim in idle:
                if victim is not self:
                    idle.pop(victim)
                    victim.transport.close()  # its client reconnects, as after a keep-alive end
                    on_close("idle_evicted")
                    return True
            return False

        def _arm_head_timer(self) -> None:
            self._disarm_head_timer()
            # a connection without a slot has a second to say what it wants
            wait = min(limits.header_timeout_s, EXTRA_HEAD_S) if self._extra else None
            self._head_timer = self.loop.call_later(
                wait or limits.header_timeout_s, self._head_late
            )

        def _disarm_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_late(self) -> None:
            self._head_timer = None
            if self._in_head and not self.transport.is_closing():
                late = min(limits.header_timeout_s, EXTRA_HEAD_S) if self._extra else None
                seconds = f"{late or limits.header_timeout_s:g}"
                self._refuse(
                    b"408 Request Timeout", f"A request head must arrive within {seconds} s."
                )
                on_close("head_timeout")

        def _refuse(self, status: bytes, sentence: str) -> None:
            idle.pop(self, None)
            self._in_head = False
            self._disarm_head_timer()
            if not self.transport.is_closing():
                self.transport.write(_raw(status, sentence))
                self.transport.close()

    return GuardedProtocol
