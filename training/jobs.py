"""Single-flight training jobs, for train-on-miss.

``TrainingJobs.start()`` launches at most one job at a time for a jobs folder, across threads,
processes and gateway restarts: the check-and-start runs under an exclusive file lock, and
``job.json`` records the supervisor's pid, so a live job is found again and a dead one is
reported (and cleared) instead of blocking forever.

A job is this module run as a small supervisor (no TensorFlow import):

    python -m training.jobs --jobs-dir runs/jobs -- --profile quick --model-base-path models/x

It runs ``python -m training <args>`` as its child, copies its output to ``train.log``, keeps
``job.json`` up to date (epoch, progress, last lines) and records the outcome.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import subprocess
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from training.process import pid_alive

JOB_FILE, LOG_FILE, LOCK_FILE = "job.json", "train.log", ".lock"
EPOCH_LINE = re.compile(r"Época de moda (\d+)/(\d+)")
PUBLISHED_LINE = re.compile(r"Publicada la versión (\d+)")
TAIL = 20


@dataclass
class JobState:
    state: str = "idle"  # idle | running | succeeded | failed
    profile: str | None = None
    pid: int | None = None
    started: float | None = None
    finished: float | None = None
    epoch: int = 0
    epochs: int | None = None
    progress: float = 0.0
    version: int | None = None  # published by the job
    returncode: int | None = None
    error: str | None = None
    log_tail: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("started", "finished"):
            if out[key] is not None:
                out[key] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(out[key]))
        return out


def _write(path: Path, state: JobState) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(state)))
    os.replace(tmp, path)


def _read(path: Path) -> JobState:
    try:
        return JobState(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return JobState()


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
        for pid, child in list(self._children.items()):
            if child.poll() is not None:  # reap our own finished supervisors (no zombies)
                del self._children[pid]
        job = _read(self.dir / JOB_FILE)
        if job.state == "running" and job.pid is not None and not pid_alive(job.pid):
            job = _read(self.dir / JOB_FILE)  # it may have written its outcome just now
            if job.state == "running":
                job.state, job.finished = "failed", time.time()
                job.error = "the training process died before finishing"
                _write(self.dir / JOB_FILE, job)
        return job

    def start(self, profile: str) -> tuple[JobState, bool]:
        """Start a job unless one runs; returns (state, whether this call started it)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / LOCK_FILE, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = self.state()
            if current.state == "running":
                return current, False
            args = [
                self.python,
                "-m",
                "training.jobs",
                "--jobs-dir",
                str(self.dir),
                "--",
                "--profile",
                profile,
                "--model-base-path",
                str(self.base),
                "--quiet",
                "--run-dir",
                str(self.dir / f"run-{profile}"),
                *self.extra_args,
            ]
            # own session: the job outlives a gateway restart, and ^C on the gateway spares it
            child = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            self._children[child.pid] = child
            job = JobState(state="running", profile=profile, pid=child.pid, started=time.time())
            _write(self.dir / JOB_FILE, job)
            return job, True


def supervise(jobs_dir: Path, train_args: list[str]) -> int:
    """Run ``python -m training`` and keep job.json current; the job's outcome is its exit code."""
    job_file = jobs_dir / JOB_FILE
    # the starter holds the lock until it has written job.json: wait for it, so this first
    # write never races the starter's (and an early failure is never overwritten by "running")
    with open(jobs_dir / LOCK_FILE, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        job = _read(job_file)
        job.state, job.pid = "running", os.getpid()
        job.started = job.started or time.time()
        job.profile = job.profile or _arg(train_args, "--profile")
        _write(job_file, job)
    tail: deque[str] = deque(maxlen=TAIL)
    # TensorFlow's C++ start-up chatter would crowd the last log lines that /api/training shows
    env = {"TF_CPP_MIN_LOG_LEVEL": "2", **os.environ, "PYTHONUNBUFFERED": "1"}
    with open(jobs_dir / LOG_FILE, "w") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "training", *train_args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        assert child.stdout is not None
        for raw in child.stdout:
            line = raw.rstrip()
            log.write(raw)
            log.flush()
            if not line.strip():
                continue
            tail.append(line[-300:])
            if m := EPOCH_LINE.search(line):
                job.epoch, job.epochs = int(m[1]), int(m[2])
                job.progress = round(job.epoch / job.epochs, 4)
            if m := PUBLISHED_LINE.search(line):
                job.version = int(m[1])
            job.log_tail = list(tail)
            _write(job_file, job)
        code = child.wait()
    job.returncode, job.finished, job.log_tail = code, time.time(), list(tail)
    if code == 0:
        job.state, job.progress = "succeeded", 1.0
    else:
        job.state = "failed"
        job.error = (tail[-1] if tail else "") or f"training exited with code {code}"
    _write(job_file, job)
    return code


def _arg(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args[:-1] else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.jobs", description=__doc__)
    p.add_argument("--jobs-dir", type=Path, required=True)
    p.add_argument("train_args", nargs=argparse.REMAINDER, help="arguments for python -m training")
    args = p.parse_args(argv)
    train_args = args.train_args[1:] if args.train_args[:1] == ["--"] else args.train_args
    args.jobs_dir.mkdir(parents=True, exist_ok=True)
    return supervise(args.jobs_dir, train_args)


if __name__ == "__main__":
    raise SystemExit(main())
