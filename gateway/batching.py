"""Continuous batching with admission control: concurrent requests for the same pin share one
model call, the queue in front of the model stays short enough to keep answers fast, and no
client takes more than its turn.

A call starts as soon as the model is free; requests that arrive while a call runs wait and go
together in the next one, up to ``max_images``, taken round-robin by client
(gateway/fairqueue.py). Under load (the previous call carried more than one request) the worker
waits ``window_ms`` for the clients that are just reading their answers to send their next
request: without it, a closed loop of clients splits into one big and several tiny calls, and
small calls cost more per image. A lone request never waits. One worker task per model and
pin keeps models, versions and labels apart; admission, fairness and the measured speed are
the gateway's, across both models (a client's turn is its turn, whichever model it asks).

Admission (``admit``, before any work): a request is refused at once (``Overloaded``, answered
503 with Retry-After) when the wait it would have, at the speed the model shows now
(gateway/speed.py), is longer than ``max_wait_s``; while the model is failing, when anything is
already running or queued; or when more than ``max_queue_images`` wait. Its wait counts the
calls still running and the images that the round-robin order would put before it, in whole
calls of ``max_images``: a request that fits in the next call waits only for the running one,
so a queue of small sheets is never refused for being long in images. Every admitted request
has a deadline, ``queue_timeout_s`` after it was queued: a timer answers it ``QueueTimeout``
(503) at that moment if its call has not started, and a request whose client went away leaves
the queue at once. Nothing waits unboundedly.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from gateway.backends.base import Backend, Generated, Pin
from gateway.errors import Overloaded, QueueTimeout, UpstreamError
from gateway.fairqueue import FairQueue
from gateway.speed import Speed


@dataclass(eq=False)
class _Item:
    z: np.ndarray
    category: np.ndarray | None  # (n,) int64 for the class-conditional model, else None
    client: str
    future: asyncio.Future[Generated] = field(repr=False)
    enqueued: float = 0.0
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)
    queued: bool = True  # still in its queue (not taken into a call, expired or abandoned)


class _PinQueue:
    def __init__(self) -> None:
        self.items: FairQueue[_Item] = FairQueue(lambda item: len(item.z))
        self.ready = asyncio.Event()


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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.max_images = max_images
        self.window = window_ms / 1000.0
        self.max_wait_s = max_wait_s
        self.max_queue_images = max_queue_images
        self.queue_timeout_s = queue_timeout_s
        self.observe = observe  # called with each batch's image count (metrics)
        self.on_drop = on_drop  # called with why a queued request was not computed (metrics)
        self.speed = Speed(clock)  # clock: tests drive time by hand
        self.waiting = 0  # images queued, all pins
        self.running = 0  # images in model calls now
        self._by_client: Counter[str] = Counter()  # images queued per client, all pins
        self.backends: dict[str, Backend] = {"": backend}  # model -> its backend ("": first)
        self._queues: dict[tuple[str, Pin], _PinQueue] = {}
        self._workers: dict[tuple[str, Pin], asyncio.Task[None]] = {}

    # --- admission -----------------------------------------------------------------------
    def ahead(self, client: str, n: int) -> int:
        """Images the round-robin order computes before ``n`` more images of ``client``: its
        own queued ones, and from each other client as many as it would have by then."""
        own = self._by_client[client]
        return own + sum(min(q, own + n) for c, q in self._by_client.items() if c != client)

    def expected_wait_s(self, client: str = "", n: int = 0) -> float:
        """How long ``n`` more images of ``client`` would wait before their call starts: the
        running calls' remaining time, then each whole call ahead of theirs."""
        calls_ahead = max(math.ceil((self.ahead(client, n) + n) / self.max_images) - 1, 0)
        return self.speed.remaining_s() + calls_ahead * self.speed.expected_s(self.max_images)

    def admit(self, n: int, client: str = "") -> None:
        """Raise Overloaded unless ``n`` more images of ``client`` may wait now. Cheap (no
        await, nothing allocated): handlers ask this before any work, so a refusal costs the
        event loop little."""
        if self.speed.failing and (self.waiting or self.running):
            raise Overloaded("the model is failing; one request at a time tries it again")
        if self.waiting + n > self.max_queue_images:
            raise Overloaded(f"{self.waiting} images are already waiting for the model")
        if self.waiting or self.running:
            wait = self.expected_wait_s(client, n)
            if wait > self.max_wait_s:
                raise Overloaded(f"the images ahead would take {wait:.1f}s")

    def add_model(self, model: str, backend: Backend) -> None:
        """Serve another model (its requests name it in ``submit``) through the same queue."""
        self.backends[model] = backend

    def submit(
        self,
        z: np.ndarray,
        pin: Pin,
        client: str = "",
        *,
        model: str = "",
        category: np.ndarray | None = None,
    ) -> asyncio.Future[Generated]:
        """Queue ``z`` (and, for a class-conditional ``model``, its ``category`` per row) for
        the version ``pin`` names, or raise Overloaded at once (no await before the decision).
        Cancelling the returned future takes the work out of the queue if its call has not
        started."""
        self.admit(len(z), client)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Generated] = loop.create_future()
        key = (model, pin)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _PinQueue()
            self._workers[key] = asyncio.create_task(self._work(key, queue))
        item = _Item(z, category, client, future, time.monotonic())
        item.timer = loop.call_later(self.queue_timeout_s, self._expire, queue, item)
        future.add_done_callback(lambda f: self._abandoned(queue, item))
        queue.items.put(client, item)
        self.waiting += len(z)
        self._by_client[client] += len(z)
        queue.ready.set()
        return future

    async def generate(
        self,
        z: np.ndarray,
        pin: Pin,
        client: str = "",
        *,
        model: str = "",
        category: np.ndarray | None = None,
    ) -> Generated:
        """Images for ``z`` from the version ``pin`` names, computed in a shared batch.
        Raises Overloaded or QueueTimeout when the model has more work than it can do soon."""
        return await self.submit(z, pin, client, model=model, category=category)

    # --- the queue -------------------------------------------------------------------------
    def _unqueue(self, queue: _PinQueue, item: _Item) -> bool:
        """Take ``item`` out of the accounting (and its queue); False if it already was."""
        if not item.queued:
            return False
        item.queued = False
        if item.timer is not None:
            item.timer.cancel()
        queue.items.remove(item.client, item)
        n = len(item.z)
        self.waiting -= n
        self._by_client[item.client] -= n
        if self._by_client[item.client] <= 0:
            del self._by_client[item.client]
        return True

    def _expire(self, queue: _PinQueue, item: _Item) -> None:
        if self._unqueue(queue, item) and not item.future.done():
            waited = time.monotonic() - item.enqueued
            item.future.set_exception(QueueTimeout(f"waited {waited:.1f}s"))
            self.on_drop("queue_timeout")

    def _abandoned(self, queue: _PinQueue, item: _Item) -> None:
        # the future is done: answered, expired, or cancelled because its client left
        if item.future.cancelled() and self._unqueue(queue, item):
            self.on_drop("client_gone")

    async def _work(self, key: tuple[str, Pin], queue: _PinQueue) -> None:
        loaded = False  # the previous call carried more than one request
        while True:
            if not queue.items:
                queue.ready.clear()
                await queue.ready.wait()
                continue
            if self.window and loaded:
                await asyncio.sleep(self.window)
            batch = queue.items.take(self.max_images)
            for item in batch:
                self._unqueue(queue, item)
            loaded = len(batch) > 1
            if batch:
                await self._run(key, batch, sum(len(i.z) for i in batch))

    async def _run(self, key: tuple[str, Pin], batch: list[_Item], count: int) -> None:
        model, pin = key
        backend = self.backends[model]
        self.observe(count)
        self.running += count
        call = self.speed.started(count)
        try:
            z = np.concatenate([i.z for i in batch])
            if batch[0].category is None:  # the first model: today's call, unchanged
                result = await backend.generate(z, pin)
            else:  # one queue is one model: every item of a conditional one has categories
                category = np.concatenate([i.category for i in batch if i.category is not None])
                result = await backend.generate(z, pin, category)
        except Exception as exc:  # every waiting request gets the same error
            # only the model server's own faults make it "failing" (or slow); an unknown label
            # or a version not published yet says nothing about the model
            if isinstance(exc, UpstreamError):
                self.speed.finished(call, ok=False)
            else:
                self.speed.forget(call)
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        finally:
            self.running -= count
        self.speed.finished(call, ok=True)
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
