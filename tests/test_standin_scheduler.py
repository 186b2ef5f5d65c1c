"""The TF Serving stand-in's batch scheduler in-process (``tfserving_standin.batching``), with a
model the test holds: the queue, the deadlines and the parameters file, each test naming the
TF Serving (or TensorFlow) source it mirrors. End to end: test_standin_batching."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.standin_support import SPLIT, latents, until
from tfserving_standin import batching
from tfserving_standin.errors import Code, ServingError


class Held:
    """A servable for the scheduler alone (in-process): every run waits until the test
    releases it, and records its rows and the timeout it was given."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.runs: list[tuple[int, float | None]] = []

    def call_unbatched(
        self, signature: str, inputs: dict[str, np.ndarray], timeout_s: float | None
    ) -> Any:
        self.runs.append((len(inputs["z"]), timeout_s))
        self.release.wait(30)
        return {"images": inputs["z"] * 2}


class Calls:
    """scheduler.run in threads of their own; results and errors by name."""

    def __init__(self, scheduler: batching.SharedBatchScheduler, servable: Held) -> None:
        self.scheduler, self.servable = scheduler, servable
        self.results: dict[str, Any] = {}
        self.threads: list[threading.Thread] = []

    def call(self, name: str, rows: int, timeout_s: float | None = None) -> None:
        try:
            inputs = {"z": latents(rows)}
            self.results[name] = self.scheduler.run(self.servable, "sig", inputs, timeout_s)
        except ServingError as exc:
            self.results[name] = exc

    def start(self, name: str, rows: int, timeout_s: float | None = None) -> None:
        thread = threading.Thread(target=self.call, args=(name, rows, timeout_s))
        thread.start()
        self.threads.append(thread)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(30)


def test_batching_queue_full_is_unavailable_at_once() -> None:
    """shared_batch_scheduler.h: without splitting, a task that does not fit the open batch
    when max_enqueued_batches batches are already waiting is UNAVAILABLE (REST 503), at once:
    the model server puts no BatchSchedulerRetrier in front. With splitting, a task bigger
    than the room left is UNAVAILABLE too. (In-process: the scheduler with a model that runs
    only when the test lets it.)"""
    held = Held()
    scheduler = batching.SharedBatchScheduler(
        batching.BatchingOptions(
            max_batch_size=18,
            allowed_batch_sizes=(9, 18),
            max_enqueued_batches=2,
            num_batch_threads=1,
        )
    )
    calls = Calls(scheduler, held)
    calls.start("first", 10)
    until("the only batch thread runs the first request", lambda: len(held.runs) == 1)
    calls.start("second", 10)  # opens a batch
    until("second queued", lambda: scheduler.queued_rows() == 10)
    calls.start("third", 10)  # does not fit the open batch: opens another
    until("third queued", lambda: scheduler.queued_rows() == 20)
    calls.call("fourth", 10)
    full = calls.results["fourth"]
    assert isinstance(full, ServingError) and full.code == Code.UNAVAILABLE
    assert full.message == (
        "The batch scheduling queue to which this task was submitted is full; currently 2 "
        "batches enqueued and max_enqueued_batches is 2"
    )
    held.release.set()
    calls.join()
    np.testing.assert_array_equal(calls.results["second"]["images"], latents(10) * 2)

    splitting = batching.SharedBatchScheduler(
        batching.BatchingOptions(
            max_batch_size=64,
            enable_large_batch_splitting=True,
            max_execution_batch_size=16,
            max_enqueued_batches=2,
        )
    )
    with pytest.raises(ServingError) as no_room:
        splitting.run(held, "serving_default", {"z": latents(40)})
    assert no_room.value.code == Code.UNAVAILABLE
    assert "task size is 40 but scheduling capacity is only 32" in no_room.value.message


def _past(what: str, seconds: float) -> None:
    """Wait until ``seconds`` from now have gone by (a deadline in the queue to pass)."""
    passed = time.monotonic() + seconds
    until(what, lambda: time.monotonic() > passed)


def test_a_batch_whose_tasks_are_all_past_their_deadlines_is_resource_exhausted() -> None:
    """batching/batching_session.cc: Run() waits for its batch with no deadline of its own
    (done.WaitForNotification); ProcessBatch takes each task's deadline as its enqueue time
    plus RunOptions.timeout_in_ms and, when every task of the batch is past it, fails them all
    with RESOURCE_EXHAUSTED "Run() timeout exceeded while waiting in batching queue" without
    running the batch. (In-process.)"""
    held = Held()
    scheduler = batching.SharedBatchScheduler(
        batching.BatchingOptions(max_batch_size=18, num_batch_threads=1)
    )
    calls = Calls(scheduler, held)
    calls.start("running", 10)
    until("the only batch thread is busy", lambda: len(held.runs) == 1)
    calls.start("late", 5, timeout_s=0.05)  # alone in the next batch
    until("late queued", lambda: scheduler.queued_rows() == 5)
    _past("late's deadline", 0.1)
    assert "late" not in calls.results  # still waiting for its batch
    held.release.set()
    calls.join()
    late = calls.results["late"]
    assert isinstance(late, ServingError) and late.code == Code.RESOURCE_EXHAUSTED
    assert late.message == "Run() timeout exceeded while waiting in batching queue"
    assert [rows for rows, _ in held.runs] == [10]  # the late batch never ran


def test_a_batch_with_one_task_in_time_runs_until_the_latest_deadline() -> None:
    """batching_session.cc ProcessBatch: one task still in time is enough for the batch to
    run, every task included, with the latest deadline of the batch as the run's timeout
    (RunOptions.timeout_in_ms); a task without a timeout counts as INT_MAX microseconds.
    (In-process.)"""
    held = Held()
    scheduler = batching.SharedBatchScheduler(
        batching.BatchingOptions(max_batch_size=18, num_batch_threads=1)
    )
    calls = Calls(scheduler, held)
    calls.start("running", 10)
    until("the only batch thread is busy", lambda: len(held.runs) == 1)
    calls.start("late", 5, timeout_s=0.05)
    calls.start("in time", 5, timeout_s=60)  # the same open batch
    until("both queued", lambda: scheduler.queued_rows() == 10)
    _past("late's deadline", 0.1)
    held.release.set()
    calls.join()
    for name in ("late", "in time"):
        np.testing.assert_array_equal(calls.results[name]["images"], latents(5) * 2)
    (first_rows, first_timeout), (rows, timeout) = held.runs
    assert first_rows == 10 and first_timeout is not None
    assert batching.NO_TIMEOUT_S - 60 < first_timeout <= batching.NO_TIMEOUT_S
    assert rows == 10 and timeout is not None and 0 < timeout < 60


def test_batching_parameters_file_is_read_and_checked(tmp_path: Path) -> None:
    """servables/tensorflow/bundle_factory_util.cc WrapSessionForBatching: the last allowed
    batch size must equal max_batch_size, else every version fails to load; GetQueueOptions:
    max_execution_batch_size defaults to max_batch_size (fields 8 and 9 of the proto)."""
    path = tmp_path / "batching.config"
    path.write_text(SPLIT)
    options = batching.read_options(str(path))
    assert (options.max_batch_size, options.execution_limit) == (64, 16)
    assert options.allowed_batch_sizes == (8, 16, 64) and options.enable_large_batch_splitting
    options.check()
    path.write_text(
        "max_batch_size { value: 72 }\nallowed_batch_sizes: 9\nallowed_batch_sizes: 36\n"
    )
    with pytest.raises(ServingError) as bad:
        batching.read_options(str(path)).check()
    assert bad.value.code == Code.INVALID_ARGUMENT
    assert bad.value.message == (
        "Last entry in allowed_batch_sizes must match max_batch_size; last entry was 36; "
        "expected 72"
    )
    assert [batching.round_to_allowed(n, (9, 18, 36, 72)) for n in (1, 9, 10, 37)] == [9, 9, 18, 72]
