"""Where train-on-miss sends its job: the local job runner (``fashion_core.jobs``, a supervisor
subprocess), or the trainer service's job runner over HTTP (``GATEWAY_TRAINER_URL``, see
training/jobserver.py). Both answer with the same JSON state that ``GET /api/training`` shows."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import httpx

from fashion_core.jobs import TrainingJobs
from gateway.errors import TrainerError
from gateway.settings import Settings


class Trainer(Protocol):
    async def start(self, profile: str, automatic: bool = True) -> tuple[dict[str, Any], bool]:
        """Start a job unless one runs; an automatic start (a miss) honours the back-off."""
        ...

    async def state(self) -> dict[str, Any]: ...


class LocalTrainer:
    """The local job runner. Its calls take file locks (and may wait on a job that is being
    started), so they run in a thread of their own: never in the default pool that other
    work (the REST backend's JSON parsing, ...) needs."""

    def __init__(self, settings: Settings) -> None:
        # a progressive job never prunes a version the labels file names
        labels = settings.model_config_file
        extra = ("--model-config-file", str(labels)) if labels else ()
        self.jobs = TrainingJobs(settings.jobs_dir, settings.model_base_path, extra_args=extra)
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="trainer")

    async def start(self, profile: str, automatic: bool = True) -> tuple[dict[str, Any], bool]:
        loop = asyncio.get_running_loop()
        job, started = await loop.run_in_executor(self.pool, self.jobs.start, profile, automatic)
        return job.to_json(), started

    async def state(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        return (await loop.run_in_executor(self.pool, self.jobs.state)).to_json()


class RemoteTrainer:
    """The trainer service's job runner, asked over async HTTP: no thread waits on it. A client
    per call (the Python API calls it from a new event loop each time; a gateway asks at most
    once per GATEWAY_POLL_INTERVAL_S, its answers are shared)."""

    def __init__(self, settings: Settings) -> None:
        self.url = f"{settings.trainer_url}/api/training"
        self.timeout = settings.status_timeout_s
        self.token = settings.admin_token

    async def _call(
        self, method: str, body: dict[str, Any] | None = None, automatic: bool = True
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        params = {} if automatic else {"automatic": "false"}
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                resp = await client.request(
                    method, self.url, json=body, headers=headers, params=params
                )
            payload: dict[str, Any] = resp.json()
        except httpx.HTTPError:
            raise TrainerError(f"the trainer at {self.url} is unreachable.", 503) from None
        except ValueError:
            raise TrainerError("the trainer sent an answer that is not JSON.", 502) from None
        if resp.status_code >= 400:
            raise TrainerError(
                f"the trainer refused: {payload.get('error', resp.status_code)}", 502
            )
        return payload

    async def start(self, profile: str, automatic: bool = True) -> tuple[dict[str, Any], bool]:
        payload = await self._call("POST", {"profile": profile}, automatic)
        return payload["training"], bool(payload.get("started"))

    async def state(self) -> dict[str, Any]:
        payload = await self._call("GET")
        training: dict[str, Any] = payload["training"]
        return training


def make_trainer(settings: Settings) -> Trainer:
    return RemoteTrainer(settings) if settings.trainer_url else LocalTrainer(settings)
