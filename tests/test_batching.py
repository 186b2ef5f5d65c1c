"""The batcher and the chunking in front of the model, on a fake backend the test controls:
order, merging and carry-over, splitting within the upstream limit, errors fanned out, requests
of clients that left skipped, and admission control. (The real backends are in test_upstream.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np
import pytest

from gateway.backends.base import Generated, ModelStatus, Pin
from gateway.batching import Batcher
from gateway.chunking import MIN_ROWS, ChunkedBackend
from gateway.errors import Overloaded, QueueTimeout, UpstreamError


class Fake:
    """Images whose pixels all equal the row's first latent value, so every answer says which
    latent it came from. ``hold`` (an Event) keeps a call open until the test releases it."""

    name = "fake"

    def __init__(self, version: Callable[[int], int] = lambda call: 1) -> None:
        self.calls: list[tuple[int, Pin]] = []
        self.hold: asyncio.Event | None = None
        self.fail: Exception | None = None
        self.version = version

    async def generate(self, z: np.ndarray, pin: Pin) -> Generated:
        self.calls.append((len(z), pin))
        call = len(self.calls)
        if self.hold is not None:
            await self.hold.wait()
        if self.fail is not None:
            raise self.fail
        images = np.broadcast_to(z[:, :1, None, None], (len(z), 28, 28, 1)).copy()
        return Generated(images, self.version(call) if pin.version is None else pin.version)

    async def latent_dim(self, pin: Pin) -> int:
        return 100

    async def status(self) -> ModelStatus:
        return ModelStatus([])

    async def start(self) -> None: ...

    async def close(self) -> None: ...


def z(rows: int, first: float) -> np.ndarray:
    """Latents whose first values are first, first + 1, ..."""
    out = np.zeros((rows, 100), np.float32)
    out[:, 0] = np.arange(rows) + first
    return out


def tag(images: np.ndarray) -> list[float]:
    return [float(img[0, 0, 0]) for img in images]


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


def test_requests_that_wait_share_one_call_in_order() -> None:
    async def test() -> None:
        fake = Fake()
        batcher = Batcher(fake, max_images=288)
        fake.hold = asyncio.Event()
        first = asyncio.ensure_future(batcher.generate(z(9, 0), Pin()))
        await asyncio.sleep(0.01)  # the first call is running; these wait for the next one
        rest = [asyncio.ensure_future(batcher.generate(z(9, 100 * i), Pin())) for i in (1, 2, 3)]
        await asyncio.sleep(0.01)
        fake.hold.set()
        answers = await asyncio.gather(first, *rest)
        assert [rows for rows, _ in fake.calls] == [9, 27]
        for i, out in enumerate(answers):
            assert tag(out.images) == [100 * i + k for k in range(9)]
        await batcher.close()

    run(test)


def test_a_request_that_does_not_fit_is_carried_to_the_next_call_first() -> None:
    async def test() -> None:
        fake = Fake()
        batcher = Batcher(fake, max_images=20)
        fake.hold = asyncio.Event()
        blocker = asyncio.ensure_future(batcher.generate(z(1, -1), Pin()))
        await asyncio.sleep(0.01)
        queued = [asyncio.ensure_future(batcher.generate(z(9, 10 * i), Pin())) for i in range(4)]
        await asyncio.sleep(0.01)
        fake.hold.set()
        answers = await asyncio.gather(blocker, *queued)
        assert [rows for rows, _ in fake.calls] == [1, 18, 18]  # 9 + 9, then the carried two
        assert [tag(a.images)[0] for a in answers[1:]] == [0, 10, 20, 30]
        await batcher.close()

    run(test)


def test_pins_never_share_a_call() -> None:
    async def test() -> None:
        fake = Fake()
        batcher = Batcher(fake, max_images=288)
        a, b = Pin(version=1), Pin(label="canary")
        await asyncio.gather(batcher.generate(z(9, 0), a), batcher.generate(z(9, 9), b))
        assert sorted((rows, str(pin)) for rows, pin in fake.calls) == sorted(
            [(9, str(a)), (9, str(b))]
        )
        await batcher.close()

    run(test)


def test_an_error_reaches_every_request_of_the_call() -> None:
    async def test() -> None:
        fake = Fake()
        batcher = Batcher(fake, max_images=288)
        fake.hold = asyncio.Event()
        first = asyncio.ensure_future(batcher.generate(z(9, 0), Pin()))
        await asyncio.sleep(0.01)
        fake.fail = UpstreamError("the model server broke", 502)
        rest = [asyncio.ensure_future(batcher.generate(z(9, 0), Pin())) for _ in range(3)]
        await asyncio.sleep(0.01)
        fake.hold.set()
        results = await asyncio.gather(first, *rest, return_exceptions=True)
        assert all(isinstance(r, UpstreamError) for r in results)
        fake.fail = None
        assert tag((await batcher.generate(z(9, 5), Pin())).images)[0] == 5  # still working
        await batcher.close()

    run(test)


def test_a_request_whose_client_left_is_not_computed() -> None:
    async def test() -> None:
        fake, dropped = Fake(), list[str]()
        batcher = Batcher(fake, max_images=288, on_drop=dropped.append)
        fake.hold = asyncio.Event()
        first = asyncio.ensure_future(batcher.generate(z(9, 0), Pin()))
        await asyncio.sleep(0.01)
        gone = asyncio.ensure_future(batcher.generate(z(9, 50), Pin()))
        stays = asyncio.ensure_future(batcher.generate(z(9, 90), Pin()))
        await asyncio.sleep(0.01)
        gone.cancel()  # what the handler does when the connection closes
        fake.hold.set()
        await asyncio.gather(first, stays)
        assert [rows for rows, _ in fake.calls] == [9, 9] and dropped == ["client_gone"]
        await batcher.close()

    run(test)


def test_admission_refuses_at_once_and_drops_what_waited_too_long() -> None:
    async def test() -> None:
        fake = Fake()
        batcher = Batcher(fake, 288, max_wait_s=1.0, max_queue_images=100, queue_timeout_s=0.2)
        batcher.speed.observe(images=80, seconds=1.0)  # the model draws 80 images a second
        fake.hold = asyncio.Event()
        running = asyncio.ensure_future(batcher.generate(z(9, 0), Pin()))
        await asyncio.sleep(0.01)
        waiting = [asyncio.ensure_future(batcher.generate(z(45, 0), Pin())) for _ in range(2)]
        await asyncio.sleep(0.01)
        assert batcher.expected_wait_s() == pytest.approx(90 / 80)
        with pytest.raises(Overloaded):
            batcher.admit(9)  # the 90 images ahead already take more than a second
        with pytest.raises(Overloaded):
            await batcher.generate(z(20, 0), Pin(version=3))  # and 110 would be past the cap
        await asyncio.sleep(0.3)  # longer than the queue timeout
        fake.hold.set()
        await running
        for task in waiting:
            with pytest.raises(QueueTimeout):
                await task
        assert [rows for rows, _ in fake.calls] == [9] and batcher.waiting == 0
        await batcher.close()

    run(test)


def test_chunks_stay_within_the_limit_and_come_back_in_order() -> None:
    async def test() -> None:
        fake = Fake()
        chunked = ChunkedBackend(fake, limit=72)
        out = await chunked.generate(z(256, 0), Pin())
        assert sorted(rows for rows, _ in fake.calls) == [40, 72, 72, 72]
        assert tag(out.images) == list(range(256))
        fake.calls.clear()
        small = await chunked.generate(z(2, 7), Pin())
        assert fake.calls == [(MIN_ROWS, Pin())]  # padded to 9 rows: batch-independent kernels
        assert tag(small.images) == [7, 8]

    run(test)


def test_chunks_answered_by_two_versions_are_redrawn_on_the_newer() -> None:
    async def test() -> None:
        fake = Fake(version=lambda call: 1 if call == 1 else 2)  # a rollout lands in between
        out = await ChunkedBackend(fake, limit=72).generate(z(144, 0), Pin(label="stable"))
        assert out.version == 2 and tag(out.images) == list(range(144))
        assert fake.calls[-1] == (72, Pin(version=2))  # the old chunk again, pinned

    run(test)
