"""Continuous batching: concurrent requests for the same pin share one model call.

A call starts as soon as the model is free; requests that arrive while a call runs wait and go
together in the next one, up to ``max_images``. Under load (the previous call carried more than
one request) the worker waits GATEWAY_BATCH_WINDOW_MS for the clients that are just reading their
answers to send their next request: without it, a closed loop of clients splits into one big
and several tiny calls, and small calls cost more per image. A lone request never waits.
One worker task per pin keeps versions and labels apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from gateway.backends.base import Backend, Generated, Pin


@dataclass
class _Item:
    z: np.ndarray
    future: asyncio.Future[Generated] = field(repr=False)


class Batcher:
    def __init__(
        self,
        backend: Backend,
        max_images: int,
        window_ms: float = 0.0,
        observe: Callable[[int], None] = lambda n: None,
    ) -> None:
        self.backend = backend
        self.max_images = max_images
        self.window = window_ms / 1000.0
        self.observe = observe  # called with each batch's image count (metrics)
        self._queues: dict[Pin, asyncio.Queue[_Item]] = {}
        self._workers: dict[Pin, asyncio.Task[None]] = {}

    async def generate(self, z: np.ndarray, pin: Pin) -> Generated:
        """Images for ``z`` from the version ``pin`` names, computed in a shared batch."""
        if len(z) >= self.max_images:
            self.observe(len(z))
            return await self.backend.generate(z, pin)
        future: asyncio.Future[Generated] = asyncio.get_running_loop().create_future()
        queue = self._queues.get(pin)
        if queue is None:
            queue = self._queues[pin] = asyncio.Queue()
            self._workers[pin] = asyncio.create_task(self._work(pin, queue))
        queue.put_nowait(_Item(z, future))
        return await future

    async def _work(self, pin: Pin, queue: asyncio.Queue[_Item]) -> None:
        carry: _Item | None = None
        loaded = False  # the previous call carried more than one request
        while True:
            batch = [carry if carry is not None else await queue.get()]
            carry = None
            if self.window and loaded:
                await asyncio.sleep(self.window)
            count = len(batch[0].z)
            while not queue.empty():
                item = queue.get_nowait()
                if count + len(item.z) > self.max_images:
                    carry = item  # first in the next batch: order is kept
                    break
                batch.append(item)
                count += len(item.z)
            loaded = len(batch) > 1
            batch = [item for item in batch if not item.future.cancelled()]
            if not batch:
                continue
            self.observe(count)
            try:
                result = await self.backend.generate(np.concatenate([i.z for i in batch]), pin)
            except Exception as exc:  # every waiting request gets the same error
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            start = 0
            for item in batch:
                end = start + len(item.z)
                if not item.future.done():
                    item.future.set_result(Generated(result.images[start:end], result.version))
                start = end

    async def close(self) -> None:
        for task in self._workers.values():
            task.cancel()
        self._workers.clear()
        self._queues.clear()
