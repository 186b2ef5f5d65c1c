"""A minimal HTTP/1.1 client on asyncio streams (GET, and POST with a body), for load
generation on loopback.

One ``Connection`` per simulated client: keep-alive while the server allows it, a new connection
when it closes (Flask's dev server answers HTTP/1.0 and closes after each response). Bodies by
Content-Length, chunked, or until EOF. It does far less than httpx and costs far less CPU per
request (measured here: httpx ~2.5 ms of client CPU per request, this ~0.2 ms), which matters
when the client shares 2 cores with the server it measures.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit


class HttpError(Exception):
    """The answer was not valid HTTP/1.x, or the connection broke before it was complete."""


def encode_request(url: str, method: str = "GET", body: bytes = b"") -> bytes:
    """The bytes of one request for ``url``."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    head = f"{method} {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept: */*\r\n"
    if method != "GET" or body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return (head + "\r\n").encode("ascii") + body


class Connection:
    def __init__(self, url: str, source: str | None = None) -> None:
        """``source``: the local address to connect from (every 127.x.y.z is this machine on
        Linux, so one load generator can be many clients on loopback)."""
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"need an http:// URL, got {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.source = source
        self.request = encode_request(url)
        self.headers: dict[str, str] = {}  # of the last answer
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get(self, timeout: float) -> tuple[int, bytes]:
        """(status, body) of one GET of this connection's URL; a reused connection the server had
        closed is retried once on a new one. Raises TimeoutError, OSError or HttpError."""
        return await self.send(self.request, timeout)

    async def send(self, request: bytes, timeout: float) -> tuple[int, bytes]:
        """(status, body) of one request (``encode_request``) to this connection's server."""
        try:
            return await asyncio.wait_for(self._send(request), timeout)
        except BaseException:
            self.close()  # never reuse a connection in an unknown state
            raise

    async def _send(self, request: bytes) -> tuple[int, bytes]:
        reused = self._writer is not None
        if not reused:
            await self._open()
        try:
            return await self._exchange(request)
        except (_Closed, ConnectionResetError, BrokenPipeError):
            if not reused:
                raise
        self.close()  # keep-alive connection closed by the server while idle: once more
        await self._open()
        return await self._exchange(request)

    async def _open(self) -> None:
        local = (self.source, 0) if self.source else None
        self._reader, self._writer = await asyncio.open_connection(
            self.host, self.port, local_addr=local
        )

    async def _exchange(self, request: bytes) -> tuple[int, bytes]:
        reader, writer = self._reader, self._writer
        assert reader is not None and writer is not None
        writer.write(request)
        await writer.drain()
        status_line = await reader.readline()
        if not status_line:
            raise _Closed
        try:
            version, code, *_ = status_line.decode("latin-1").split(" ", 2)
            status = int(code)
        except ValueError:
            raise HttpError(f"bad status line {status_line[:80]!r}") from None
        headers: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                raise HttpError("connection closed inside the headers")
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await _chunked(reader)
        else:
            body = await reader.read()  # until the server closes
            headers["connection"] = "close"
        keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        if not keep:
            self.close()
        self.headers = headers
        return status, body

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


class _Closed(HttpError):
    """EOF before any byte of the answer."""


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readline()).split(b";")[0].strip(), 16)
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)  # CRLF after each chunk
