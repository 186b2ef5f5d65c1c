"""Single-flight training jobs: one job at a time across threads and restarts, a dead job is
reported and cleared, a failed job reports its error and the next start runs a new one."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from training.jobs import JOB_FILE, JobState, TrainingJobs


def _wait_done(jobs: TrainingJobs, timeout: float = 120) -> JobState:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = jobs.state()
        if state.state in ("succeeded", "failed"):
            return state
        time.sleep(0.2)
    raise AssertionError(f"job still {jobs.state()}")


def test_one_job_for_many_concurrent_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path / "no-data"))  # fails after a few s
    jobs = TrainingJobs(tmp_path / "jobs", tmp_path / "models")
    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(lambda _: jobs.start("smoke"), range(24)))
    assert sum(started for _, started in results) == 1
    assert len({state.pid for state, _ in results}) == 1
    # a second instance (a restarted gateway) finds the running job instead of starting one
    again, started = TrainingJobs(tmp_path / "jobs", tmp_path / "models").start("smoke")
    assert not started and again.pid == results[0][0].pid
    _wait_done(jobs)


def test_failed_job_reports_its_error_then_a_new_one_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path / "no-data"))
    jobs = TrainingJobs(tmp_path / "jobs", tmp_path / "models")
    first, started = jobs.start("smoke")
    assert started and first.state == "running"
    done = _wait_done(jobs)
    assert done.state == "failed" and done.returncode == 2
    assert done.error is not None and "does not exist" in done.error
    assert (tmp_path / "jobs" / "train.log").read_text()
    second, started = jobs.start("smoke")
    assert started and second.pid != first.pid
    _wait_done(jobs)


def test_dead_job_is_cleared(tmp_path: Path) -> None:
    jobs_dir = tmp_path / "jobs"
    jobs_dir.mkdir()
    ghost = {"state": "running", "profile": "quick", "pid": 999_999_999, "started": time.time()}
    (jobs_dir / JOB_FILE).write_text(json.dumps(ghost))
    jobs = TrainingJobs(jobs_dir, tmp_path / "models")
    state = jobs.state()
    assert state.state == "failed" and "died" in (state.error or "")


def test_state_json_is_what_the_api_shows(tmp_path: Path) -> None:
    out = JobState(state="running", profile="quick", started=0.0, epoch=2, epochs=4).to_json()
    assert out["started"] == "1970-01-01T00:00:00Z" and out["epoch"] == 2
    assert set(out) >= {"state", "profile", "epoch", "progress", "started", "log_tail", "error"}
