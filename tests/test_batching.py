"""The batcher and the chunking in front of the model, on a fake backend the test controls:
order, merging and carry-over, splitting within the upstream limit, errors fanned out, requests
of clients that left skipped, and admission control. (The real backends are in test_upstream.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np
import pytest

from fashion_gan.tfserving.chunking import MIN_ROWS, Chunked
from gateway.backends.base import Generated, ModelStatus, Pin
from gateway.batching import Batcher
from gateway.errors import NotPinnable, Overloaded, QueueTimeout, UpstreamError


class Fake:
    """Images whose pixels all equal the row's first latent value, so every answer says which
    latent it came from. ``hold`` (an Event) keeps a call open until the test releases it."""

    name = "fake"

    def __init__(self, version: Callable[[int], int] = lambda call: 1) -> None:
        self.calls: list[tuple[int, Pin]] = []
        self.hold: asyncio.Event | None = None
        self.fail: Exception | None = None
        self.version = version

    async def generate(
        self, z: np.ndarray, pin: Pin, category: np.ndarray | None = None
    ) -> Generated:
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


class Clock:
    """Time for the speed estimate, moved by the test (the estimate reads no wall clock)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_admission_counts_whole_calls_ahead_and_refuses_at_once() -> None:
    async def test() -> None:
        fake, clock = Fake(), Clock()
        batcher = Batcher(fake, 90, max_wait_s=1.0, max_queue_images=400, clock=clock)
        batcher.speed.observe(images=90, seconds=1.0)  # the model draws 90 images a second
        fake.hold = asyncio.Event()
        running = asyncio.ensure_future(batcher.generate(z(9, 0), Pin()))
        await asyncio.sleep(0.01)
        # a request that fits in the next call waits only for the running one (0.1 s left)
        assert batcher.expected_wait_s("a", 9) == pytest.approx(0.1)
        waiting = [asyncio.ensure_future(batcher.generate(z(45, 0), Pin(), "a")) for _ in range(2)]
        await asyncio.sleep(0.01)
        # 90 images ahead of a's next 9: one whole call (1 s) before theirs, on top of the 0.1
        assert batcher.expected_wait_s("a", 9) == pytest.approx(1.1)
        with pytest.raises(Overloaded):
            batcher.admit(9, "a")
        with pytest.raises(Overloaded):
            await batcher.generate(z(300, 0), Pin(version=3))  # past max_queue_images
        assert [rows for rows, _ in fake.calls] == [9] and batcher.waiting == 90
        fake.hold.set()
        await asyncio.gather(running, *waiting)
        await batcher.close()

    run(test)


def test_thirty_two_small_sheets_are_never_refused_however_slow_the_model() -> None:
    """32 connections asking 3x3 sheets: 279 images wait while a call runs, which fit in the
    next call of 288, so nobody is refused, at any measured speed, while the running call keeps
    to its estimate (before, a low estimate refused some of them)."""

    async def test() -> None:
        for rate in (40.0, 400.0, 4000.0):
            fake, clock = Fake(), Clock()
            batcher = Batcher(fake, 288, max_wait_s=1.0, clock=clock)
            batcher.speed.observe(images=int(rate), seconds=1.0)
            fake.hold = asyncio.Event()
            first = asyncio.ensure_future(batcher.generate(z(9, 0), Pin()))
            await asyncio.sleep(0.01)
            rest = [asyncio.ensure_future(batcher.generate(z(9, 0), Pin())) for _ in range(31)]
            await asyncio.sleep(0.01)
            assert batcher.waiting == 279 and not any(t.done() for t in rest)
            fake.hold.set()
            await asyncio.gather(first, *rest)  # none raised Overloaded
            await batcher.close()

    run(test)


def test_a_call_that_runs_late_makes_admission_refuse_before_it_ends() -> None:
    """A slow upstream is noticed while its first slow call still runs: past eight times its
    expected time, a call is taken to need as long again as it has run."""

    async def test() -> None:
        fake, clock = Fake(), Clock()
        batcher = Batcher(fake, 288, max_wait_s=1.0, clock=clock)
        for _ in range(3):  # a warm model: 9 images take 10 ms
            batcher.speed.observe(images=900, seconds=1.0)
        fake.hold = asyncio.Event()
        running = asyncio.ensure_future(batcher.generate(z(9, 0), Pin()))
        await asyncio.sleep(0.01)
        clock.now += 0.5  # 50 times its estimate, and still running
        batcher.admit(9)  # half a second left is within the 1 s limit
        clock.now += 0.6
        with pytest.raises(Overloaded):
            batcher.admit(9)  # 1.1 s run so far: about as long again to go
        clock.now += 3.9  # it took 5 s in all: the estimate follows
        fake.hold.set()
        await running
        assert batcher.speed.rate is not None and batcher.speed.rate < 0.75 * 900
        await batcher.close()

    run(test)


def test_a_failing_model_is_tried_by_one_request_at_a_time() -> None:
    async def test() -> None:
        fake = Fake()
        batcher = Batcher(fake, 288, max_wait_s=30)
        fake.fail = UpstreamError("TF Serving did not answer within 1s.", 504)
        with pytest.raises(UpstreamError):
            await batcher.generate(z(9, 0), Pin())
        fake.hold = asyncio.Event()
        probe = asyncio.ensure_future(batcher.generate(z(9, 0), Pin()))
        await asyncio.sleep(0.01)
        with pytest.raises(Overloaded):  # refused at once while the probe runs
            batcher.admit(9)
        fake.fail = None
        fake.hold.set()
        await probe  # the model answers again: admission is back to normal
        fake.hold = None
        await asyncio.gather(*(batcher.generate(z(9, 0), Pin()) for _ in range(5)))
        # a client's mistake (an unknown label) says nothing about the model
        fake.fail = NotPinnable("label 'x' is not defined.")
        with pytest.raises(NotPinnable):
            await batcher.generate(z(9, 0), Pin(label="x"))
        assert not batcher.speed.failing
        await batcher.close()

    run(test)


def test_a_request_past_its_deadline_is_answered_then_not_at_the_next_call() -> None:
    async def test() -> None:
        fake, dropped = Fake(), list[str]()
        batcher = Batcher(fake, 288, max_wait_s=60, queue_timeout_s=0.05, on_drop=dropped.append)
        fake.hold = asyncio.Event()
        running = asyncio.ensure_future(batcher.generate(z(9, 0), Pin()))
        await asyncio.sleep(0.01)
        late = asyncio.ensure_future(batcher.generate(z(9, 0), Pin()))
        await asyncio.sleep(0.5)  # well past its deadline; the running call still holds
        assert late.done() and isinstance(late.exception(), QueueTimeout)
        assert not running.done() and batcher.waiting == 0 and dropped == ["queue_timeout"]
        fake.hold.set()
        await running
        assert [rows for rows, _ in fake.calls] == [9]  # the late one was never computed
        await batcher.close()

    run(test)


def test_one_client_cannot_take_the_model_from_the_others() -> None:
    """Three 256-image requests of one client ahead of 3x3 requests of thirty others: every
    small one goes into the next call, before the big client's second, and admission, which
    counts only what the round-robin order puts ahead, refuses none of them."""

    async def test() -> None:
        fake, clock = Fake(), Clock()
        batcher = Batcher(fake, 288, max_wait_s=1.0, clock=clock)
        batcher.speed.observe(images=600, seconds=1.0)  # a call of 288 takes about 0.5 s
        fake.hold = asyncio.Event()
        hog = [asyncio.ensure_future(batcher.generate(z(256, 0), Pin(), "hog")) for _ in range(3)]
        await asyncio.sleep(0.01)  # the first runs, two wait
        with pytest.raises(Overloaded):
            batcher.admit(256, "hog")  # its own backlog: three whole calls ahead of a fourth
        polite = [
            asyncio.ensure_future(batcher.generate(z(9, 1000 + i), Pin(), f"client-{i}"))
            for i in range(30)
        ]  # none refused
        await asyncio.sleep(0.01)
        fake.hold.set()
        answers = await asyncio.gather(*polite)
        assert [tag(a.images)[0] for a in answers] == [1000 + i for i in range(30)]
        await asyncio.gather(*hog)
        # the hog's second request and the three small ones that fit beside it, then every
        # other small one, and only then the hog's third
        assert [rows for rows, _ in fake.calls] == [256, 256 + 3 * 9, 27 * 9, 256]
        await batcher.close()

    run(test)


def test_chunks_stay_within_the_limit_and_come_back_in_order() -> None:
    async def test() -> None:
        fake = Fake()
        chunked = Chunked(fake, limit=72)
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
        out = await Chunked(fake, limit=72).generate(z(144, 0), Pin(label="stable"))
        assert out.version == 2 and tag(out.images) == list(range(144))
        assert fake.calls[-1] == (72, Pin(version=2))  # the old chunk again, pinned

    run(test)


def test_a_model_server_whose_latency_grew_is_not_trusted_with_small_calls() -> None:
    """After a call that took 5 s where 10 ms was expected, a small call that has just started
    is expected to take 5 s too (the server's latency grew, not its work), so requests are
    refused at once instead of queueing behind it until their deadline. One call on time and
    the estimate is back to normal; on its own, the belief lapses after as long as the late
    call took (a busy machine has outliers)."""

    async def test() -> None:
        fake, clock = Fake(), Clock()
        batcher = Batcher(fake, 288, max_wait_s=1.0, clock=clock)
        for _ in range(3):  # a warm model
            batcher.speed.observe(images=900, seconds=1.0)
        for seconds in (5.0, 0.01):
            fake.hold = asyncio.Event()
            call = asyncio.ensure_future(batcher.generate(z(9, 0), Pin()))
            await asyncio.sleep(0.01)
            if seconds == 0.01:  # the small call after the slow one
                assert batcher.expected_wait_s("x", 9) == pytest.approx(5.0)
                with pytest.raises(Overloaded):
                    batcher.admit(9, "x")
            clock.now += seconds
            fake.hold.set()
            await call
        assert batcher.speed.floor_s == 0.0  # the quick call cleared it
        fake.hold = asyncio.Event()
        running = asyncio.ensure_future(batcher.generate(z(9, 0), Pin()))
        await asyncio.sleep(0.01)
        batcher.admit(9, "x")  # admitted again
        fake.hold.set()
        await running
        # a single outlier: believed for as long as it took, then no longer
        fake.hold = asyncio.Event()
        slow = asyncio.ensure_future(batcher.generate(z(9, 0), Pin()))
        await asyncio.sleep(0.01)
        clock.now += 2.0
        fake.hold.set()
        await slow
        assert batcher.speed.expected_s(9) == pytest.approx(2.0)
        clock.now += 2.1
        assert batcher.speed.expected_s(9) < 0.1
        await batcher.close()

    run(test)


def test_a_cold_model_is_not_called_late() -> None:
    """The first calls of a model server that has just started are slow for reasons that do not
    last: nobody is refused because of them."""

    async def test() -> None:
        fake, clock = Fake(), Clock()
        batcher = Batcher(fake, 288, max_wait_s=1.0, clock=clock)
        fake.hold = asyncio.Event()
        first = asyncio.ensure_future(batcher.generate(z(9, 0), Pin()))
        await asyncio.sleep(0.01)
        clock.now += 3.0  # the first call ever takes seconds
        batcher.admit(9)
        clock.now += 0.01
        fake.hold.set()
        await first
        assert batcher.speed.floor_s == 0.0
        await batcher.close()

    run(test)
