"""Continuous batching with admission control: concurrent requests for the same pin share one
model call, and the queue in front of the model stays short enough to keep answers fast.

A call starts as soon as the model is free; requests that arrive while a call runs wait and go
together in the next one, up to ``max_images``. Under load (the previous call carried more than
one request) the worker waits ``window_ms`` for the clients that are just reading their answers
to send their next request: without it, a closed loop of clients splits into one big and several
tiny calls, and small calls cost more per image. A lone request never waits. One worker task per
pin keeps versions and labels apart.

Admission: a request is refused at once (``Overloaded``, answered 503 with Retry-After) when
the images already waiting would take longer than ``max_wait_s`` at the measured model speed, or
when more than ``max_queue_images`` wait. An admitted request that still waits after
``queue_timeout_s`` is dropped without being computed (``QueueTimeout``, also 503), and so is one
whose client went away (its future is cancelled). Nothing waits unboundedly.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from gateway.backends.base import Backend, Generated, Pin
from gateway.errors import Overloaded, QueueTimeout


@dataclass
class _Item:
    z: np.ndarray
    future: asyncio.Future[Generated] = field(repr=False)
    enqueued: float = 0.0


class Speed:
    """Images per second the model delivers: the best of the last calls. Optimistic on
    purpose: a call that waited for the CPU behind another one, or paid for a first-time kernel
    set-up, says little about capacity; admission must not refuse work the model can do."""

    def __init__(self, window: int = 16) -> None:
        self._rates: deque[float] = deque(maxlen=window)

    @property
    def images_per_s(self) -> float | None:
        return max(self._rates) if self._rates else None

    def observe(self, images: int, seconds: float) -> None:
        if seconds > 0:
            self._rates.append(images / seconds)


class Batcher:
    def __init__(
        self,
        backend: Backend,
        max_images: int,
        window_ms: float = 0.0,
        *,
        max_wait_s: float = 1.0,
        max_queue_images: int = 4096,
        queue_timeout_s: float = 3.0,
        observe: Callable[[int], None] = lambda n: None,
        on_drop: Callable[[str], None] = lambda reason: None,
    ) -> None:
        self.backend = backend
        self.max_images = max_images
        self.window = window_ms / 1000.0
        self.max_wait_s = max_wait_s
        self.max_queue_images = max_queue_images
        self.queue_timeout_s = queue_timeout_s
        self.observe = observe  # called with each batch's image count (metrics)
        self.on_drop = on_drop  # called with why a queued request was not computed (metrics)
        self.speed = Speed()
        self.waiting = 0  # images queued, all pins
        self.running = 0  # images in model calls now
        self._queues: dict[Pin, asyncio.Queue[_Item]] = {}
        self._workers: dict[Pin, asyncio.Task[None]] = {}

    def expected_wait_s(self) -> float:
        """How long the images queued ahead of a new request take at the measured speed."""
        rate = self.speed.images_per_s
        return 0.0 if rate is None else self.waiting / rate

    def admit(self, n: int) -> None:
        """Raise Overloaded unless ``n`` more images may wait now. Cheap: handlers ask this
        before they draw any noise, so a burst of refusals costs the event loop little."""
        if self.waiting + n > self.max_queue_images:
            raise Overloaded(f"{self.waiting} images are already waiting for the model")
        wait = self.expected_wait_s()
        if self.waiting and wait > self.max_wait_s:
            raise Overloaded(f"the images ahead would take {wait:.1f}s")

    def submit(self, z: np.ndarray, pin: Pin) -> asyncio.Future[Generated]:
        """Queue ``z`` for the version ``pin`` names, or raise Overloaded at once (no await
        before the decision, so a refusal costs the event loop almost nothing). Cancelling
        the returned future drops the work if it has not started."""
        self.admit(len(z))
        future: asyncio.Future[Generated] = asyncio.get_running_loop().create_future()
        queue = self._queues.get(pin)
        if queue is None:
            queue = self._queues[pin] = asyncio.Queue()
            self._workers[pin] = asyncio.create_task(self._work(pin, queue))
        queue.put_nowait(_Item(z, future, time.monotonic()))
        self.waiting += len(z)
        return future

    async def generate(self, z: np.ndarray, pin: Pin) -> Generated:
        """Images for ``z`` from the version ``pin`` names, computed in a shared batch.
        Raises Overloaded or QueueTimeout when the model has more work than it can do soon."""
        return await self.submit(z, pin)

    def _take(self, item: _Item, now: float) -> bool:
        """Whether ``item`` goes into the batch; expired or abandoned items are answered."""
        self.waiting -= len(item.z)
        if item.future.done():  # cancelled: the client went away
            self.on_drop("client_gone")
            return False
        if now - item.enqueued > self.queue_timeout_s:
            item.future.set_exception(QueueTimeout(f"waited {now - item.enqueued:.1f}s"))
            self.on_drop("queue_timeout")
            return False
        return True

    async def _work(self, pin: Pin, queue: asyncio.Queue[_Item]) -> None:
        carry: _Item | None = None
        loaded = False  # the previous call carried more than one request
        while True:
            first = carry if carry is not None else await queue.get()
            carry = None
            if self.window and loaded:
                await asyncio.sleep(self.window)
            now = time.monotonic()
            batch = [first] if self._take(first, now) else []
            count = sum(len(i.z) for i in batch)
            while not queue.empty():
                item = queue.get_nowait()
                if count + len(item.z) > self.max_images:
                    carry = item  # first in the next batch: order is kept
                    break
                if self._take(item, now):
                    batch.append(item)
                    count += len(item.z)
            loaded = len(batch) > 1
            if not batch:
                continue
            await self._run(pin, batch, count)

    async def _run(self, pin: Pin, batch: list[_Item], count: int) -> None:
        self.observe(count)
        self.running += count
        started = time.monotonic()
        try:
            result = await self.backend.generate(np.concatenate([i.z for i in batch]), pin)
        except Exception as exc:  # every waiting request gets the same error
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        finally:
            self.running -= count
        self.speed.observe(count, time.monotonic() - started)
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
