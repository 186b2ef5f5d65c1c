"""Server-side batching (``--enable_batching`` with ``--batching_parameters_file``), as strict as
TF Serving's: the limits refuse what the real server refuses, with its codes and messages.

Mirrors, in TensorFlow Serving 2.20 and the TensorFlow it builds with:

- ``servables/tensorflow/bundle_factory_util.{h,cc}``: GetQueueOptions (which fields are read,
  ``max_execution_batch_size`` defaulting to ``max_batch_size``) and WrapSessionForBatching (the
  last allowed batch size must equal ``max_batch_size``, else the version fails to load);
- ``tensorflow/core/kernels/batching_util/shared_batch_scheduler.h``: one queue per servable and
  signature, ``num_batch_threads`` threads shared by every queue; Schedule refuses a task with
  more rows than ``max_batch_size`` (INVALID_ARGUMENT ``Task size N is larger than maximum input
  batch size M``) whether or not splitting is on; with splitting, a task bigger than the room
  left (``max_enqueued_batches`` batches of ``max_execution_batch_size``) is UNAVAILABLE and
  smaller ones are cut to fill the open batch and then whole batches; without splitting, a task
  that does not fit the open batch starts a new one, and when ``max_enqueued_batches`` are
  already waiting it is UNAVAILABLE; a batch runs when it is full or ``batch_timeout_micros``
  after its first task, as soon as a thread is free;
- ``batching/batching_session.cc`` ProcessBatch: the inputs of a batch's tasks are concatenated
  and padded up to the smallest allowed batch size with copies of the last task's first row;
  the outputs are split back per task and the padding dropped. There is no retrier on this path
  (``BatchSchedulerRetrier`` is not used by the model server), so a full queue answers at once.
- Deadlines, also batching_session.cc: a task (Run) waits for its batch with no deadline of its
  own. Its deadline is its enqueue time plus RunOptions.timeout_in_ms, which is
  --rest_api_timeout_in_ms for REST (http_rest_api_handler.cc) and the client's remaining
  deadline for gRPC (prediction_service_impl.cc DeadlineToTimeoutMillis); no timeout counts as
  INT_MAX microseconds. When a batch is taken off the queue and every one of its tasks is past
  its deadline, they all fail with RESOURCE_EXHAUSTED "Run() timeout exceeded while waiting in
  batching queue" (REST 429); otherwise the batch runs with the latest deadline as its timeout,
  past which the run fails with DEADLINE_EXCEEDED (REST 504).

Defaults of fields the file leaves out are TensorFlow's QueueOptions defaults.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from google.protobuf import text_format

from .config_protos import BATCHING_PARAMETERS, message_class
from .errors import Code, ServingError

_log = logging.getLogger("tfserving_standin.batching")
# batching_session.cc: a task without RunOptions.timeout_in_ms gets INT_MAX microseconds (a gRPC
# call without a deadline has INT_MAX milliseconds in the real server; here it gets this too).
NO_TIMEOUT_S = (2**31 - 1) / 1e6
QUEUE_TIMEOUT = "Run() timeout exceeded while waiting in batching queue"


@dataclass(frozen=True)
class BatchingOptions:
    max_batch_size: int = 1000  # QueueOptions.input_batch_size_limit
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = os.cpu_count() or 1  # port::MaxParallelism()
    allowed_batch_sizes: tuple[int, ...] = ()
    enable_large_batch_splitting: bool = False
    max_execution_batch_size: int | None = None  # splitting only; default max_batch_size

    @property
    def execution_limit(self) -> int:
        if self.enable_large_batch_splitting and self.max_execution_batch_size:
            return self.max_execution_batch_size
        return self.max_batch_size

    def check(self) -> None:
        """WrapSessionForBatching's check, run when a version loads."""
        if self.allowed_batch_sizes and self.allowed_batch_sizes[-1] != self.max_batch_size:
            raise ServingError(
                Code.INVALID_ARGUMENT,
                "Last entry in allowed_batch_sizes must match max_batch_size; last entry was "
                f"{self.allowed_batch_sizes[-1]}; expected {self.max_batch_size}",
            )


def read_options(path: str) -> BatchingOptions:
    """Parse a ``--batching_parameters_file`` (text BatchingParameters)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ServingError(Code.NOT_FOUND, f"{path}; {exc.strerror}") from exc
    try:
        params = text_format.Parse(text, message_class(BATCHING_PARAMETERS)())
    except text_format.ParseError as exc:
        raise ServingError(Code.INVALID_ARGUMENT, f"Invalid protobuf file: '{path}'") from exc
    d = BatchingOptions()

    def wrapped(name: str, default: Any) -> Any:
        return getattr(params, name).value if params.HasField(name) else default

    return BatchingOptions(
        max_batch_size=wrapped("max_batch_size", d.max_batch_size),
        batch_timeout_micros=wrapped("batch_timeout_micros", d.batch_timeout_micros),
        max_enqueued_batches=wrapped("max_enqueued_batches", d.max_enqueued_batches),
        num_batch_threads=wrapped("num_batch_threads", d.num_batch_threads),
        allowed_batch_sizes=tuple(int(n) for n in params.allowed_batch_sizes),
        enable_large_batch_splitting=wrapped("enable_large_batch_splitting", False),
        max_execution_batch_size=wrapped("max_execution_batch_size", None),
    )


def round_to_allowed(size: int, allowed: tuple[int, ...]) -> int:
    """RoundToLowestAllowedBatchSize: the smallest allowed size >= size (size if none)."""
    return next((a for a in allowed if a >= size), size)


@dataclass
class _Task:
    """One Run() call: its inputs, and where its (possibly split) outputs gather."""

    inputs: Mapping[str, np.ndarray]
    size: int
    deadline: float  # monotonic: enqueue time + RunOptions.timeout_in_ms
    pieces: int = 0  # how many parts it was cut into
    results: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)
    error: ServingError | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def deliver(self, index: int, outputs: dict[str, np.ndarray] | None, error: Any) -> None:
        if error is not None:
            self.error = self.error or error
        else:
            assert outputs is not None
            self.results[index] = outputs
        if self.error is not None or len(self.results) == self.pieces:
            self.done.set()


@dataclass
class _Piece:
    task: _Task
    index: int
    start: int
    size: int

    def inputs(self) -> dict[str, np.ndarray]:
        return {k: v[self.start : self.start + self.size] for k, v in self.task.inputs.items()}


@dataclass
class _Batch:
    pieces: list[_Piece] = field(default_factory=list)
    size: int = 0
    opened: float = 0.0  # monotonic time of its first piece

    def add(self, piece: _Piece) -> None:
        if not self.pieces:
            self.opened = time.monotonic()
        self.pieces.append(piece)
        self.size += piece.size


class _Queue:
    """The batches of one (servable, signature): closed ones in order, then the open one."""

    def __init__(self, servable: Any, signature: str, options: BatchingOptions) -> None:
        self.servable, self.signature, self.options = servable, signature, options
        self.batches: deque[_Batch] = deque([_Batch()])

    def schedule(self, task: _Task) -> None:
        """Queue::Schedule (called with the scheduler's lock held); raises ServingError."""
        o = self.options
        if task.size > o.max_batch_size:
            raise ServingError(
                Code.INVALID_ARGUMENT,
                f"Task size {task.size} is larger than maximum input batch size {o.max_batch_size}",
            )
        limit, open_batch = o.execution_limit, self.batches[-1]
        if o.enable_large_batch_splitting:
            capacity = (o.max_enqueued_batches - len(self.batches)) * limit + (
                limit - open_batch.size
            )
            if task.size > capacity:
                raise ServingError(
                    Code.UNAVAILABLE,
                    "The batch scheduling queue to which this task was submitted is full; task "
                    f"size is {task.size} but scheduling capacity is only {capacity} "
                    f"(num_enqueued_batches={len(self.batches)}, max_enqueued_batches="
                    f"{o.max_enqueued_batches}, open_batch_size={open_batch.size}, "
                    f"max_execution_batch_size={limit})",
                )
            start = 0
            while start < task.size:
                if self.batches[-1].size == limit:
                    self.batches.append(_Batch())
                room = limit - self.batches[-1].size
                size = min(room, task.size - start)
                self.batches[-1].add(_Piece(task, task.pieces, start, size))
                task.pieces += 1
                start += size
            return
        if open_batch.size + task.size > limit:
            if len(self.batches) >= o.max_enqueued_batches:
                raise ServingError(
                    Code.UNAVAILABLE,
                    "The batch scheduling queue to which this task was submitted is full; "
                    f"currently {len(self.batches)} batches enqueued and max_enqueued_batches "
                    f"is {o.max_enqueued_batches}",
                )
            self.batches.append(_Batch())
        task.pieces = 1
        self.batches[-1].add(_Piece(task, 0, 0, task.size))

    def ready_batch(self, now: float) -> tuple[_Batch | None, float | None]:
        """A batch to run now, else the time the open batch becomes due (or None)."""
        if len(self.batches) > 1:
            return self.batches.popleft(), None
        open_batch = self.batches[-1]
        if not open_batch.pieces:
            return None, None
        due = open_batch.opened + self.options.batch_timeout_micros / 1e6
        if open_batch.size >= self.options.execution_limit or now >= due:
            self.batches[0] = _Batch()
            return open_batch, None
        return None, due


class SharedBatchScheduler:
    """``num_batch_threads`` threads running the due batches of every queue."""

    def __init__(self, options: BatchingOptions) -> None:
        self.options = options
        # keyed by the servable object itself: a reloaded version is a new object, a new queue
        self._queues: dict[tuple[Any, str], _Queue] = {}
        self._cond = threading.Condition()
        for i in range(max(1, options.num_batch_threads)):
            threading.Thread(target=self._work, name=f"standin-batch-{i}", daemon=True).start()

    def run(
        self,
        servable: Any,
        signature: str,
        inputs: Mapping[str, np.ndarray],
        timeout_s: float | None = None,
    ) -> dict[str, np.ndarray]:
        """BatchingSession::Run: enqueue one task and wait for its outputs, however long that
        takes; ``timeout_s`` (RunOptions.timeout_in_ms, None or <= 0: none) is checked when
        its batch leaves the queue."""
        sizes = {int(v.shape[0]) if v.ndim else -1 for v in inputs.values()}
        if len(sizes) != 1 or -1 in sizes:
            raise ServingError(
                Code.INVALID_ARGUMENT,
                "Batching Run() input tensors must have equal 0th-dimension size",
            )
        timeout = timeout_s if timeout_s is not None and timeout_s > 0 else NO_TIMEOUT_S
        task = _Task(inputs, sizes.pop(), deadline=time.monotonic() + timeout)
        with self._cond:
            key = (servable, signature)
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = _Queue(servable, signature, self.options)
            queue.schedule(task)
            self._cond.notify_all()
        task.done.wait()
        if task.error is not None:
            raise task.error
        parts = [task.results[i] for i in range(task.pieces)]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def _next(self) -> tuple[_Queue, _Batch]:
        with self._cond:
            while True:
                now, wake = time.monotonic(), None
                for queue in self._queues.values():
                    batch, due = queue.ready_batch(now)
                    if batch is not None:
                        return queue, batch
                    if due is not None:
                        wake = due if wake is None else min(wake, due)
                self._cond.wait(None if wake is None else max(wake - now, 0.0))

    def _work(self) -> None:
        while True:
            queue, batch = self._next()
            self._process(queue, batch)

    def queued_rows(self) -> int:
        """Rows waiting in every queue (not yet taken by a batch thread)."""
        with self._cond:
            return sum(b.size for q in self._queues.values() for b in q.batches)

    def _process(self, queue: _Queue, batch: _Batch) -> None:
        """ProcessBatch: check the deadlines, concatenate, pad to an allowed size, run once
        with the latest deadline as the run's timeout, split back."""
        dequeued = time.monotonic()
        _log.info("took a batch of %d rows off the queue", batch.size)
        live = [p.task.deadline for p in batch.pieces if p.task.deadline > dequeued]
        if not live:
            expired = ServingError(Code.RESOURCE_EXHAUSTED, QUEUE_TIMEOUT)
            for piece in batch.pieces:
                piece.task.deliver(piece.index, None, expired)
            _log.info("a batch of %d rows timed out in the queue", batch.size)
            return
        padded = round_to_allowed(batch.size, self.options.allowed_batch_sizes)
        parts = [piece.inputs() for piece in batch.pieces]
        inputs = {}
        for name in parts[0]:
            tensors = [p[name] for p in parts]
            if padded > batch.size:  # copies of the last task's first row
                tensors += [tensors[-1][:1]] * (padded - batch.size)
            inputs[name] = np.concatenate(tensors)
        try:
            outputs = queue.servable.call_unbatched(queue.signature, inputs, max(live) - dequeued)
        except ServingError as exc:
            for piece in batch.pieces:
                piece.task.deliver(piece.index, None, exc)
            return
        start = 0
        for piece in batch.pieces:
            part = {k: v[start : start + piece.size] for k, v in outputs.items()}
            piece.task.deliver(piece.index, part, None)
            start += piece.size
        _log.info("ran a batch of %d rows (padded to %d)", batch.size, padded)
