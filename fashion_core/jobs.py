"""Single-flight training jobs: the runner behind train-on-miss and the trainer's job server.

``TrainingJobs.start()`` launches at most one job per jobs folder, across threads, processes,
gateway restarts and PID namespaces. The proof that a job runs is a file lock, not a pid:
the starter takes ``.running.lock`` and hands the locked descriptor to the job's supervisor,
which hands it on to the training process; the lock is released only when the last of them
exits, however they exit. A job whose lock is free while ``job.json`` still says "running"
died, and is reported as failed.

A job is this module run as a small supervisor (no TensorFlow import)::

    python -m fashion_core.jobs --jobs-dir runs/jobs --lock-fd 5 -- --profile quick ...

It runs ``python -m training <args> --progress-file <jobs>/progress.json`` as its child, copies
the child's output to ``train.log`` (for people) and records the outcome in ``job.json``. The
trainer writes its own progress as data (``fashion_core.progress``); ``state()`` merges both.

A failed job is not started again at once: automatic starts (train-on-miss) wait a growing
delay (30 s, 60 s, ... up to an hour), shown as ``retry_at``; an admin's start does not wait.
A job that exits 0 without publishing a version (the trainer's progress names none) counts as
failed too: a miss would otherwise start the same fruitless job again at once.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fashion_core import atomic, locks, progress

# TensorFlow's C++ log lines but fatal ones (absl: "E0000 00:00:17... file.cc:967] ..."): kept
# in the log file, left out of the tail that the gallery and /api/training show people
NATIVE_LOG = re.compile(r"[EWI]\d{4} \d\d:\d\d:\d\d")
JOB_FILE, LOG_FILE, PROGRESS_FILE = "job.json", "train.log", "progress.json"
START_LOCK, RUNNING_LOCK = ".start.lock", ".running.lock"
TAIL = 20
BACKOFF_S, BACKOFF_MAX_S = 30.0, 3600.0


@dataclass
class JobState:
    state: str = "idle"  # idle | running | succeeded | failed
    profile: str | None = None
    pid: int | None = None  # the supervisor's, for people (the lock is what counts)
    started: float | None = None
    finished: float | None = None
    returncode: int | None = None
    error: str | None = None
    log_tail: list[str] = field(default_factory=list)
    failures: int = 0  # consecutive failed jobs
    retry_at: float | None = None  # automatic starts wait until then after a failure
    # from the trainer's progress.json
    phase: str | None = None
    epoch: int = 0
    epochs: int | None = None
    step: int = 0
    steps: int | None = None
    progress: float = 0.0
    losses: dict[str, float] = field(default_factory=dict)
    images_per_s: float | None = None
    version: int | None = None  # the newest published by the job
    # a progressive job: still improving, when the next candidate is judged, what it published
    improving: bool = False
    next_candidate_at: float | None = None
    clock_s: float | None = None
    budget_s: float | None = None
    published: list[int] = field(default_factory=list)
    last_candidate: dict[str, Any] | None = None
    companion: dict[str, Any] | None = None  # the second model it publishes too, and its versions

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("started", "finished", "retry_at", "next_candidate_at"):
            if out[key] is not None:
                out[key] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(out[key]))
        return out


RUNNER_FIELDS = (
    "state",
    "profile",
    "pid",
    "started",
    "finished",
    "returncode",
    "error",
    "log_tail",
    "failures",
    "retry_at",
)


def _read(jobs_dir: Path) -> JobState:
    data = atomic.read_json(jobs_dir / JOB_FILE, {})
    known = {k: v for k, v in data.items() if k in RUNNER_FIELDS} if isinstance(data, dict) else {}
    try:
        return JobState(**known)
    except TypeError:
        return JobState()


def _write(jobs_dir: Path, job: JobState) -> None:
    data = asdict(job)
    atomic.write_json(jobs_dir / JOB_FILE, {k: data[k] for k in RUNNER_FIELDS})


def backoff(failures: int) -> float:
    return float(min(BACKOFF_S * 2 ** max(failures - 1, 0), BACKOFF_MAX_S))


def _failed(job: JobState, error: str, returncode: int | None = None) -> JobState:
    job.state, job.finished, job.error, job.returncode = "failed", time.time(), error, returncode
    job.failures += 1
    job.retry_at = job.finished + backoff(job.failures)
    return job


class TrainingJobs:
    def __init__(
        self,
        jobs_dir: Path,
        model_base_path: Path,
        python: str = sys.executable,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.dir = jobs_dir
        self.base = model_base_path
        self.python = python
        self.extra_args = extra_args
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def state(self) -> JobState:
        """job.json merged with the trainer's progress; a dead job is recorded as failed."""
        if _read(self.dir).state == "running" and not locks.is_held(self.dir / RUNNING_LOCK):
            with locks.exclusive(self._start_lock()):
                return self._state()
        return self._state()

    def _state(self) -> JobState:
        # called with the start lock held, or when no dead job needs recording
        for pid, child in list(self._children.items()):
            if child.poll() is not None:  # reap our own finished supervisors (no zombies)
                # pop, not del: state() runs without the start lock in several threads at
                # once (the job server's and the gateway's), and two may reap the same child
                self._children.pop(pid, None)
        job = _read(self.dir)
        if job.state == "running" and not locks.is_held(self.dir / RUNNING_LOCK):
            _write(self.dir, _failed(job, "the training process died before finishing"))
        if job.state != "idle":
            p = progress.read(self.dir / PROGRESS_FILE)
            job.phase, job.epoch, job.epochs = p.phase, p.epoch, p.epochs
            job.step, job.steps, job.losses = p.step, p.steps, p.losses
            job.images_per_s, job.version = p.images_per_s, p.version
            job.clock_s, job.budget_s, job.published = p.clock_s, p.budget_s, p.published
            job.last_candidate, job.companion = p.last_candidate, p.companion
            # only a running job improves: a killed one's file says nothing about the future
            job.improving = p.improving and job.state == "running"
            job.next_candidate_at = p.next_candidate_at if job.improving else None
            job.progress = 1.0 if job.state == "succeeded" else p.fraction
        return job

    def _start_lock(self) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        return self.dir / START_LOCK

    def start(self, profile: str, automatic: bool = True) -> tuple[JobState, bool]:
        """Start a job unless one runs (or, for an automatic start, unless the last one failed
        less than its back-off ago); returns (state, whether this call started it)."""
        with locks.exclusive(self._start_lock()):
            current = self._state()
            if current.state == "running":
                return current, False
            if automatic and current.retry_at is not None and time.time() < current.retry_at:
                return current, False
            fd = locks.try_acquire(self.dir / RUNNING_LOCK)
            if fd is None:  # a job outlived its job.json (say, restored from a backup)
                return current, False
            try:
                (self.dir / PROGRESS_FILE).unlink(missing_ok=True)
                job = JobState(
                    state="running",
                    profile=profile,
                    started=time.time(),
                    failures=current.failures,
                )
                _write(self.dir, job)
                child = subprocess.Popen(
                    [
                        self.python,
                        "-m",
                        "fashion_core.jobs",
                        "--jobs-dir",
                        str(self.dir),
                        "--lock-fd",
                        str(fd),
                        "--",
                        "--profile",
                        profile,
                        "--model-base-path",
                        str(self.base),
                        "--quiet",
                        "--run-dir",
                        str(self.dir / f"run-{profile}"),
                        *self.extra_args,
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    pass_fds=(fd,),
                    # own session: the job outlives a gateway restart, and ^C spares it
                    start_new_session=True,
                )
            except OSError as exc:
                _write(self.dir, _failed(job, f"the job could not start: {exc.strerror}"))
                return self._state(), False
            finally:
                os.close(fd)  # the child holds the lock now
            self._children[child.pid] = child
            job.pid = child.pid
            _write(self.dir, job)
            return self._state(), True


def supervise(jobs_dir: Path, lock_fd: int, train_args: list[str]) -> int:
    """Run ``python -m training`` and record its outcome; holds ``lock_fd`` (and passes it to
    the trainer) for the job's whole life."""
    # the starter holds the start lock until it has written job.json with our pid: wait for it,
    # so our writes never race its writes
    with locks.exclusive(jobs_dir / START_LOCK):
        job = _read(jobs_dir)
    tail: deque[str] = deque(maxlen=TAIL)
    # TensorFlow's C++ start-up chatter would crowd the last log lines that /api/training shows
    env = {"TF_CPP_MIN_LOG_LEVEL": "2", **os.environ, "PYTHONUNBUFFERED": "1"}
    command = [
        sys.executable,
        "-m",
        "training",
        *train_args,
        "--progress-file",
        str(jobs_dir / PROGRESS_FILE),
    ]
    with open(jobs_dir / LOG_FILE, "w") as log:
        try:
            child = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                text=True,
                pass_fds=(lock_fd,),
            )
        except OSError as exc:
            _write(jobs_dir, _failed(job, f"training could not start: {exc.strerror}"))
            return 1
        assert child.stdout is not None
        last_write = 0.0
        for raw in child.stdout:
            log.write(raw)
            log.flush()
            if raw.strip() and not NATIVE_LOG.match(raw):
                tail.append(raw.rstrip()[-300:])
            if time.monotonic() - last_write > 1.0:  # the tail is for people: once a second
                job.log_tail, last_write = list(tail), time.monotonic()
                _write(jobs_dir, job)
        code = child.wait()
    job.log_tail = list(tail)
    published = progress.read(jobs_dir / PROGRESS_FILE).version is not None
    if code == 0 and (published or "--no-publish" in train_args):
        job.state, job.finished, job.returncode = "succeeded", time.time(), 0
        job.failures, job.retry_at, job.error = 0, None, None
    elif code == 0:
        # a job that trains and publishes nothing would otherwise reset the back-off, and the
        # next miss would start the same fruitless job at once, in a loop
        _failed(job, "training finished but published no version", code)
    else:
        _failed(job, (tail[-1] if tail else "") or f"training exited with code {code}", code)
    # the outcome and the release of the running lock happen together, under the start lock:
    # a starter never sees "failed" while the lock is still held, nor "running" once it is free
    with locks.exclusive(jobs_dir / START_LOCK):
        _write(jobs_dir, job)
        os.close(lock_fd)  # the trainer (the other holder) has exited
    return code


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fashion_core.jobs", description=__doc__)
    p.add_argument("--jobs-dir", type=Path, required=True)
    p.add_argument("--lock-fd", type=int, required=True, help="the locked .running.lock")
    p.add_argument("train_args", nargs=argparse.REMAINDER, help="arguments for python -m training")
    args = p.parse_args(argv)
    train_args = args.train_args[1:] if args.train_args[:1] == ["--"] else args.train_args
    return supervise(args.jobs_dir, args.lock_fd, train_args)


if __name__ == "__main__":
    raise SystemExit(main())
