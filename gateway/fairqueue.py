"""The requests waiting for one model version, served round-robin by client.

A plain first-in-first-out queue lets one client with several big requests in flight take the
model from everybody else: three closed-loop 16x16 sheets (768 images) ahead of a 3x3 one made
it wait three calls and, with admission control, be refused. Here every client has its own line
and a batch takes one request from each client in turn (the least recently served first), so a
client's own backlog delays mostly itself. ``ahead`` is what admission control needs: how many
images would be computed before a new request of a given client under that order.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class FairQueue(Generic[T]):
    """Items of ``size(item)`` images, each owned by a client key."""

    def __init__(self, size: Callable[[T], int]) -> None:
        self._size = size
        # client -> its items, oldest first; clients in serving order (served ones move last)
        self._lines: OrderedDict[str, deque[T]] = OrderedDict()

    def __len__(self) -> int:
        return sum(len(line) for line in self._lines.values())

    def __bool__(self) -> bool:
        return bool(self._lines)

    def __iter__(self) -> Iterator[T]:
        for line in self._lines.values():
            yield from line

    def put(self, client: str, item: T) -> None:
        line = self._lines.get(client)
        if line is None:
            line = self._lines[client] = deque()
        line.append(item)

    def remove(self, client: str, item: T) -> bool:
        """Take ``item`` out (it expired, or its client left); False if it was not queued."""
        line = self._lines.get(client)
        if line is None or item not in line:
            return False
        line.remove(item)
        if not line:
            del self._lines[client]
        return True

    def take(self, max_images: int) -> list[T]:
        """One batch of at most ``max_images``: rounds of one request per client, in serving
        order. The first client's request always goes, whatever its size, so a big request
        that does not fit beside small ones goes first in a later batch instead of waiting
        for ever."""
        batch: list[T] = []
        count, taken = 0, True
        while taken and self._lines:
            taken = False
            for client in list(self._lines):
                line = self._lines[client]
                size = self._size(line[0])
                if batch and count + size > max_images:
                    continue
                batch.append(line.popleft())
                count, taken = count + size, True
                if line:
                    self._lines.move_to_end(client)
                else:
                    del self._lines[client]
        return batch
