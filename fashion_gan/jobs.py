"""Where a training job is started and watched: the local job runner (``fashion_core.jobs``, a
supervisor subprocess, its state in files) or a trainer service's runner over HTTP
(``python -m training.jobserver``). Both answer the same JSON state that ``GET /api/training``
shows. Blocking calls: the seed's API uses them directly, the gateway from a thread of its own
(gateway/trainer.py), so there is one client of each runner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import requests

from fashion_core.jobs import TrainingJobs


class TrainerError(Exception):
    """The training job runner could not be reached or refused (HTTP 502/503)."""

    def __init__(self, message: str, status: int = 503) -> None:
        super().__init__(message)
        self.status = status


class JobRunner(Protocol):
    def start(self, profile: str, automatic: bool = True) -> tuple[dict[str, Any], bool]:
        """Start a job unless one runs; an automatic start (a miss) honours the back-off."""
        ...

    def state(self) -> dict[str, Any]: ...


class LocalJobs:
    """The local job runner: a single flight across processes (file locks), so a gateway and a
    script never train twice at once."""

    def __init__(
        self,
        jobs_dir: Path,
        base: Path,
        labels_file: Path | None = None,
        train_args: tuple[str, ...] = (),
    ) -> None:
        # a progressive job never prunes a version the labels file names; ``train_args``: more
        # arguments of ``python -m training`` (the conditional model's ``--set conditional=true``)
        extra = ("--model-config-file", str(labels_file)) if labels_file else ()
        self.jobs = TrainingJobs(jobs_dir, base, extra_args=(*extra, *train_args))

    def start(self, profile: str, automatic: bool = True) -> tuple[dict[str, Any], bool]:
        job, started = self.jobs.start(profile, automatic)
        return job.to_json(), started

    def state(self) -> dict[str, Any]:
        return self.jobs.state().to_json()


class RemoteJobs:
    """The trainer service's job runner (``GATEWAY_TRAINER_URL``)."""

    def __init__(self, trainer_url: str, token: str | None = None, timeout_s: float = 10.0) -> None:
        self.url = f"{trainer_url.rstrip('/')}/api/training"
        self.timeout_s = timeout_s
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def _call(
        self, method: str, body: dict[str, Any] | None = None, automatic: bool = True
    ) -> dict[str, Any]:
        params = {} if automatic else {"automatic": "false"}
        try:
            resp = self.session.request(
                method, self.url, json=body, params=params, timeout=self.timeout_s
            )
            payload: dict[str, Any] = resp.json()
        except requests.RequestException:
            raise TrainerError(f"the trainer at {self.url} is unreachable.", 503) from None
        except ValueError:
            raise TrainerError("the trainer sent an answer that is not JSON.", 502) from None
        if resp.status_code >= 400:
            raise TrainerError(
                f"the trainer refused: {payload.get('error', resp.status_code)}", 502
            )
        return payload

    def start(self, profile: str, automatic: bool = True) -> tuple[dict[str, Any], bool]:
        payload = self._call("POST", {"profile": profile}, automatic)
        return payload["training"], bool(payload.get("started"))

    def state(self) -> dict[str, Any]:
        training: dict[str, Any] = self._call("GET")["training"]
        return training


def job_runner(
    jobs_dir: Path,
    base: Path,
    labels_file: Path | None = None,
    trainer_url: str | None = None,
    token: str | None = None,
    timeout_s: float = 10.0,
    train_args: tuple[str, ...] = (),
) -> JobRunner:
    """The trainer service's runner when ``trainer_url`` is set, else the local one (its jobs
    run ``python -m training`` with ``train_args`` too; the service has its own)."""
    if trainer_url:
        return RemoteJobs(trainer_url, token, timeout_s)
    return LocalJobs(jobs_dir, base, labels_file, train_args)


def first_train_args(cond_base: Path | None, cond_name: str) -> tuple[str, ...]:
    """The first model's job's arguments: a ``category_from_z`` profile (quick) publishes its
    conditional networks as the class-conditional model too, into ``cond_base`` (None: that
    model is not served here, so the job publishes the first one only)."""
    if cond_base is None:
        return ("--no-cond-model",)
    return ("--cond-model-base-path", str(cond_base), "--cond-model-name", cond_name)


def publishes_too(job: dict[str, Any], model_name: str) -> bool:
    """Whether the first model's job (its runner's state) publishes ``model_name`` too, so that
    a miss of that model waits for it instead of starting a job of its own. A job that has not
    said yet (still starting: its progress names no companion) is taken to."""
    if job.get("state") != "running":
        return False
    companion = job.get("companion")
    if not companion:
        return job.get("phase") in (None, "starting")
    return bool(companion.get("model") == model_name)


def cond_train_args(model_name: str) -> tuple[str, ...]:
    """``python -m training``'s arguments for the class-conditional model's job (besides the
    profile and base path): what the gateway's miss and the Python API both start."""
    return ("--set", "conditional=true", "--model-name", model_name)
