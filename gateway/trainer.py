"""Where train-on-miss sends its job: the local job runner (``fashion_core.jobs``, a supervisor
subprocess), or the trainer service's job runner over HTTP (``GATEWAY_TRAINER_URL``, see
training/jobserver.py). Both answer with the same JSON state that ``GET /api/training`` shows."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import requests

from fashion_core.jobs import TrainingJobs
from gateway.errors import TrainerError
from gateway.settings import Settings


class Trainer(Protocol):
    async def start(self, profile: str, automatic: bool = True) -> tuple[dict[str, Any], bool]:
        """Start a job unless one runs; an automatic start (a miss) honours the back-off."""
        ...

    async def state(self) -> dict[str, Any]: ...


class LocalTrainer:
    def __init__(self, settings: Settings) -> None:
        # a progressive job never prunes a version the labels file names
        labels = settings.model_config_file
        extra = ("--model-config-file", str(labels)) if labels else ()
        self.jobs = TrainingJobs(settings.jobs_dir, settings.model_base_path, extra_args=extra)

    async def start(self, profile: str, automatic: bool = True) -> tuple[dict[str, Any], bool]:
        job, started = await asyncio.to_thread(self.jobs.start, profile, automatic)
        return job.to_json(), started

    async def state(self) -> dict[str, Any]:
        return (await asyncio.to_thread(self.jobs.state)).to_json()


class RemoteTrainer:
    def __init__(self, settings: Settings) -> None:
        self.url = f"{settings.trainer_url}/api/training"
        self.timeout = settings.status_timeout_s
        self.token = settings.admin_token
        self.session = requests.Session()

    def _call(
        self, method: str, body: dict[str, Any] | None = None, automatic: bool = True
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        params = {} if automatic else {"automatic": "false"}
        try:
            resp = self.session.request(
                method, self.url, json=body, timeout=self.timeout, headers=headers, params=params
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

    async def start(self, profile: str, automatic: bool = True) -> tuple[dict[str, Any], bool]:
        payload = await asyncio.to_thread(self._call, "POST", {"profile": profile}, automatic)
        return payload["training"], bool(payload.get("started"))

    async def state(self) -> dict[str, Any]:
        payload = await asyncio.to_thread(self._call, "GET")
        training: dict[str, Any] = payload["training"]
        return training


def make_trainer(settings: Settings) -> Trainer:
    return RemoteTrainer(settings) if settings.trainer_url else LocalTrainer(settings)
