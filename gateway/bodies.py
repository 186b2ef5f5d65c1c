"""Request bodies: read only after admission, within a deadline, and never more of them in
memory than the gateway allows across all requests.

Before, a POST body was read (with no deadline) and parsed before admission control was asked,
so 150 uploads that stalled half way held 150 MB for as long as their clients liked. Now a
handler asks admission first (gateway/service.py), then reads the body here:

- the whole body must arrive within ``GATEWAY_BODY_TIMEOUT_S`` of the request head: else 408;
- a body longer than the endpoint's limit is refused (413) before or while it is read;
- the bytes of every body being read or parsed count against ``GATEWAY_MAX_BUFFERED_BYTES``;
  a body that would take the total past it is refused at once (503, Retry-After) and the
  connection closed. uvicorn itself buffers at most 64 kB per connection before it stops
  reading the socket, so the gateway's memory for bodies is bounded by both.

An answer to a request whose body was not read whole closes the connection (gateway/app.py):
the rest of the body would otherwise still have to be received and thrown away.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.requests import Request

from gateway.errors import BadRequest, BodiesFull


class BodyBudget:
    """Bytes of request bodies held now, all requests together."""

    def __init__(self, limit: int) -> None:
        self.limit, self.held = limit, 0

    def take(self, n: int) -> None:
        if self.held + n > self.limit:
            raise BodiesFull("too many request bodies are being received at once")
        self.held += n

    def give_back(self, n: int) -> None:
        self.held -= n


@asynccontextmanager
async def body_of(
    request: Request, budget: BodyBudget, limit: int, timeout_s: float
) -> AsyncIterator[bytes]:
    """The body of ``request`` (at most ``limit`` bytes, received within ``timeout_s``), held
    against ``budget`` until the ``with`` block ends."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BadRequest(f"the body must be at most {limit} bytes.", 413)
    held = 0
    try:
        if declared.isdigit():
            budget.take(int(declared))  # all of it, up front: refused before a byte is read
            held = int(declared)
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(timeout_s):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise BadRequest(f"the body must be at most {limit} bytes.", 413)
                    if size > held:  # chunked, or longer than declared
                        budget.take(size - held)
                        held = size
                    chunks.append(chunk)
        except TimeoutError:
            raise BadRequest(
                f"the body must arrive within {timeout_s:g} s of the request head.", 408
            ) from None
        request.state.body_read = True
        yield b"".join(chunks)
    finally:
        budget.give_back(held)
