"""The trainer's job runner over HTTP, and a gateway whose train-on-miss goes to it
(GATEWAY_TRAINER_URL), both on loopback ports."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from fashion_core.jobs import TrainingJobs
from gateway.app import create_app
from gateway.settings import Settings
from tests.servers import serve
from training.jobserver import create_app as create_jobserver


def test_gateway_asks_the_remote_trainer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the job fails fast on a missing data folder: enough to see it started, once, remotely
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path / "no-data"))
    jobs = TrainingJobs(tmp_path / "jobs", tmp_path / "models" / "fashion_gan")
    with serve(create_jobserver(jobs, "smoke", token="s3cret")) as trainer:
        assert requests.get(f"{trainer}/api/training", timeout=10).json()["training"]["state"] == (
            "idle"
        )
        denied = requests.post(f"{trainer}/api/training", json={"profile": "smoke"}, timeout=10)
        assert denied.status_code == 401
        bad = requests.post(
            f"{trainer}/api/training",
            json={"profile": "huge"},
            timeout=10,
            headers={"Authorization": "Bearer s3cret"},
        )
        assert bad.status_code == 400 and "one of" in bad.json()["error"]

        s = Settings(
            model_base_path=tmp_path / "empty",
            trainer_url=trainer,
            admin_token="s3cret",
            train_profile="smoke",
            jobs_dir=tmp_path / "local-jobs",
        )
        with serve(create_app(s)) as gw:
            r = requests.get(f"{gw}/api/generar-diseno", timeout=30)
            assert r.status_code == 503 and r.json()["training"]["profile"] == "smoke"
            pid = r.json()["training"]["pid"]
            again = requests.get(f"{gw}/api/generar-diseno", timeout=30).json()["training"]
            assert again["pid"] == pid  # single flight on the trainer side
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                state = requests.get(f"{gw}/api/training", timeout=10).json()["training"]
                if state["state"] != "running":
                    break
                time.sleep(0.5)
            assert state["state"] == "failed" and "does not exist" in state["error"]
        assert not (tmp_path / "local-jobs").exists()  # nothing ran locally


def test_unreachable_trainer_is_503(tmp_path: Path) -> None:
    s = Settings(
        model_base_path=tmp_path / "empty",
        trainer_url="http://127.0.0.1:9",
        jobs_dir=tmp_path / "jobs",
        status_timeout_s=1,
    )
    with serve(create_app(s)) as gw:
        r = requests.get(f"{gw}/api/generar-diseno", timeout=30)
        assert r.status_code == 503 and "unreachable" in r.json()["error"]


def test_the_job_runner_s_jobs_follow_tf_serving_s_config_and_may_skip_the_second_model() -> None:
    import argparse

    from training.jobserver import job_args

    both = argparse.Namespace(models_config=Path("/models/models.config"), no_cond_model=False)
    assert job_args(both) == ("--model-config-file", "/models/models.config")
    first_only = argparse.Namespace(models_config=None, no_cond_model=True)
    assert job_args(first_only) == ("--no-cond-model",)
