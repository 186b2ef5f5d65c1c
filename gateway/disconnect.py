"""Work for a client that has gone away is not worth doing: run a handler's work beside a
watch on the connection, and cancel the work when the client disconnects (its batch item is
then skipped, gateway/batching.py).

The watch is never cancelled: the server's receive() answers http.disconnect either when the
client closes or right after the answer has been sent, so it ends by itself. (Cancelling a task
per request leaves a reference cycle through its CancelledError's traceback, and thousands of
those per second made full garbage collections that paused the event loop for 100-250 ms.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

from gateway.errors import ClientGone

T = TypeVar("T")


async def _disconnected(request: Request) -> None:
    # the request body, if any, has been read before this starts
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_gone(request: Request, work: Awaitable[T]) -> T:
    """The result of ``work``, or ClientGone (with ``work`` cancelled) if the client left."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if task in done:
        return task.result()
    task.cancel()
    raise ClientGone("the client closed the connection")
