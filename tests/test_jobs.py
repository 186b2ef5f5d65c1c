"""Single-flight training jobs: one job at a time across threads and restarts, proven by a file
lock rather than a pid; a dead job is reported, a failed one backs off before an automatic
restart, and progress is read as data."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest

from fashion_core import locks
from fashion_core.jobs import JOB_FILE, PROGRESS_FILE, RUNNING_LOCK, JobState, TrainingJobs
from fashion_core.progress import ProgressFile

T = TypeVar("T")


def _wait_for(condition: Callable[[], T], what: str, timeout: float = 60) -> T:
    """Poll ``condition`` until it returns something true, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f}s for {what}")
        time.sleep(0.02)
    return result


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state, ppid, ...); None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _children(pid: int) -> list[int]:
    kids = []
    for path in Path("/proc").glob("[0-9]*"):
        fields = _stat(int(path.name))
        if fields is not None and int(fields[1]) == pid:
            kids.append(int(path.name))
    return kids


def _dead(pid: int) -> bool:
    """Exited (a zombie until its parent reaps it: its files, the lock among them, are closed)."""
    fields = _stat(pid)
    return fields is None or fields[0] in ("Z", "X")


def _wait_done(jobs: TrainingJobs, timeout: float = 120) -> JobState:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = jobs.state()
        if state.state in ("succeeded", "failed"):
            return state
        time.sleep(0.2)
    raise AssertionError(f"job still {jobs.state()}")


@pytest.fixture()
def failing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TrainingJobs:
    # the job fails after a few seconds (TensorFlow import, then no data folder)
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path / "no-data"))
    return TrainingJobs(tmp_path / "jobs", tmp_path / "models")


def test_one_job_for_many_concurrent_starts(failing: TrainingJobs, tmp_path: Path) -> None:
    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(lambda _: failing.start("smoke"), range(24)))
    assert sum(started for _, started in results) == 1
    assert len({state.pid for state, _ in results}) == 1
    assert locks.is_held(tmp_path / "jobs" / RUNNING_LOCK)
    # a second instance (a restarted gateway) finds the running job instead of starting one
    again, started = TrainingJobs(tmp_path / "jobs", tmp_path / "models").start("smoke")
    assert not started and again.pid == results[0][0].pid
    _wait_done(failing)
    assert not locks.is_held(tmp_path / "jobs" / RUNNING_LOCK)


def test_failed_job_backs_off_then_an_admin_start_runs(failing: TrainingJobs) -> None:
    first, started = failing.start("smoke")
    assert started and first.state == "running"
    done = _wait_done(failing)
    assert done.state == "failed" and done.returncode == 2 and done.failures == 1
    assert done.error is not None and "does not exist" in done.error
    assert done.retry_at is not None and done.finished is not None
    assert done.retry_at - done.finished == pytest.approx(30, abs=1)
    assert (failing.dir / "train.log").read_text()
    # an automatic start (a miss) waits for the back-off; an operator's start does not
    blocked, started = failing.start("smoke")
    assert not started and blocked.state == "failed"
    second, started = failing.start("smoke", automatic=False)
    assert started and second.pid != first.pid
    again = _wait_done(failing)
    assert again.failures == 2 and again.retry_at is not None
    assert again.retry_at - (again.finished or 0) == pytest.approx(60, abs=1)


def test_job_whose_files_say_running_but_holds_no_lock_died(tmp_path: Path) -> None:
    jobs_dir = tmp_path / "jobs"
    jobs_dir.mkdir()
    # a pid that is alive (this process) must not fool it: only the lock counts
    ghost = {"state": "running", "profile": "quick", "pid": os.getpid(), "started": time.time()}
    (jobs_dir / JOB_FILE).write_text(json.dumps(ghost))
    state = TrainingJobs(jobs_dir, tmp_path / "models").state()
    assert state.state == "failed" and "died" in (state.error or "")
    assert state.failures == 1 and state.retry_at is not None


def test_killed_supervisor_leaves_the_job_running_while_training_lives(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FASHION_MNIST_DIR", str(data_dir))  # a real job, which runs a while
    jobs = TrainingJobs(tmp_path / "jobs", tmp_path / "models", extra_args=("--no-publish",))
    job, started = jobs.start("smoke")
    assert started and job.pid is not None
    supervisor = job.pid
    # the supervisor has started the trainer, which holds the lock too (inherited when forked)
    (trainer,) = _wait_for(lambda: _children(supervisor), "the supervisor to start the trainer")
    os.kill(supervisor, signal.SIGKILL)
    _wait_for(lambda: _dead(supervisor), "the supervisor to die")
    assert not _dead(trainer) and jobs.state().state == "running"  # the trainer holds the lock
    _, started = jobs.start("smoke", automatic=False)
    assert not started  # no second trainer in the same run folder
    done = _wait_done(jobs)
    assert done.state == "failed" and "died" in (done.error or "")


def test_progress_is_read_from_the_trainers_file(tmp_path: Path) -> None:
    jobs_dir = tmp_path / "jobs"
    jobs_dir.mkdir()
    fd = locks.try_acquire(jobs_dir / RUNNING_LOCK)  # this test plays the running job
    assert fd is not None
    try:
        (jobs_dir / JOB_FILE).write_text(json.dumps({"state": "running", "profile": "quick"}))
        ProgressFile(jobs_dir / PROGRESS_FILE).update(
            force=True, phase="training", epoch=1, epochs=4, step=300, steps=600,
            losses={"gen_loss": 0.9}, images_per_s=512.0,
        )  # fmt: skip
        out = TrainingJobs(jobs_dir, tmp_path / "models").state().to_json()
    finally:
        os.close(fd)
    assert (out["state"], out["epoch"], out["epochs"], out["step"]) == ("running", 1, 4, 300)
    assert out["progress"] == pytest.approx(1.5 / 4) and out["images_per_s"] == 512.0
    assert out["losses"] == {"gen_loss": 0.9} and out["phase"] == "training"


def test_state_json_is_what_the_api_shows() -> None:
    out = JobState(state="running", profile="quick", started=0.0, epoch=2, epochs=4).to_json()
    assert out["started"] == "1970-01-01T00:00:00Z" and out["epoch"] == 2
    assert set(out) >= {"state", "profile", "epoch", "progress", "started", "log_tail", "error"}
    assert set(out) >= {"step", "steps", "losses", "images_per_s", "failures", "retry_at"}


def test_a_job_that_publishes_nothing_backs_off_like_a_failure(tmp_path: Path) -> None:
    """The trainer exits 0 but publishes no version (here: asked for its --help): that is a
    failed job, with the same back-off, not a success that lets the next miss start the same
    fruitless job at once."""
    jobs = TrainingJobs(tmp_path / "jobs", tmp_path / "models", extra_args=("--help",))
    _, started = jobs.start("smoke")
    assert started
    done = _wait_done(jobs)
    assert done.state == "failed" and done.returncode == 0 and done.failures == 1
    assert done.error == "training finished but published no version"
    assert done.retry_at is not None and done.retry_at - (done.finished or 0) == pytest.approx(
        30, abs=1
    )
    blocked, started = jobs.start("smoke")  # a miss waits for the back-off
    assert not started and blocked.state == "failed"


class Rendezvous(subprocess.Popen[bytes]):
    """A real, finished child whose poll() first waits (up to 2 s) for a second caller: two
    threads then reap it at the same moment, as two concurrent GET /api/training can."""

    barrier = threading.Barrier(2)

    def poll(self) -> int | None:
        with contextlib.suppress(threading.BrokenBarrierError):
            self.barrier.wait(2)
        return super().poll()


def test_two_threads_reaping_the_same_child_do_not_fail(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    jobs = TrainingJobs(tmp_path / "jobs", tmp_path / "models")
    child = Rendezvous([sys.executable, "-c", "pass"])
    child.wait()
    jobs._children[child.pid] = child
    with ThreadPoolExecutor(2) as pool:
        states = list(pool.map(lambda _: jobs.state(), range(2)))  # before: one KeyError
    assert [s.state for s in states] == ["idle", "idle"] and jobs._children == {}


def test_native_log_lines_stay_out_of_the_tail_people_read() -> None:
    from fashion_core.jobs import NATIVE_LOG

    line = "E0000 00:00:1796621172.488498   32173 meta_optimizer.cc:967] remapper failed: ..."
    assert NATIVE_LOG.match(line) and NATIVE_LOG.match("W1207 05:26:12.000 x.cc:1] y")
    assert not NATIVE_LOG.match("Época de moda 1 (15s de 3600s) completada en 15.2s")
    assert not NATIVE_LOG.match("Error: the data folder is empty")
    assert not NATIVE_LOG.match("F1207 05:26:12.000 x.cc:1] Check failed")  # says why it died
