"""Where train-on-miss sends its job: the job runner of ``fashion_gan.jobs`` (the local one, or
the trainer service's at ``GATEWAY_TRAINER_URL``), asked from a thread of its own.

The runners' calls block (file locks, or an HTTP call with a deadline), so they run in
threads that nothing else uses: never in the default pool that other work (the REST
transport's JSON parsing, ...) needs. The local runner gets one (its calls take file locks
in turn anyway); the remote one a few, so that misses arriving together while the trainer is
slow do not queue behind each other's deadlines. Concurrent callers share one state call
(gateway/shared.py)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fashion_gan.jobs import JobRunner, LocalJobs, cond_train_args, first_train_args, job_runner
from gateway.settings import Settings

REMOTE_THREADS = 8


class Trainer:
    def __init__(self, runner: JobRunner, threads: int = 1) -> None:
        self.runner = runner
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="trainer")

    async def start(self, profile: str, automatic: bool = True) -> tuple[dict[str, Any], bool]:
        """Start a job unless one runs; an automatic start (a miss) honours the back-off."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, self.runner.start, profile, automatic)

    async def state(self) -> dict[str, Any]:
        return await asyncio.get_running_loop().run_in_executor(self.pool, self.runner.state)


def make_trainer(settings: Settings) -> Trainer:
    """The first model's trainer: the local runner, or the trainer service's. Its ``quick``
    job publishes the class-conditional model too when this gateway serves that one."""
    cond_base = settings.cond_base_path if settings.conditional else None
    runner = job_runner(
        settings.jobs_dir,
        settings.model_base_path,
        settings.model_config_file,
        settings.trainer_url,
        settings.admin_token,
        settings.status_timeout_s,
        first_train_args(cond_base, settings.cond_model_name),
    )
    return Trainer(runner, REMOTE_THREADS if settings.trainer_url else 1)


def cond_trainer(settings: Settings) -> Trainer | None:
    """The class-conditional model's trainer: a local runner of its own (its own jobs folder,
    ``<GATEWAY_JOBS_DIR>/<COND_MODEL_NAME>``, so its single flight and back-off are its own),
    training with ``--set conditional=true`` into the conditional base path, for a miss that
    the first model's job does not cover (gateway/misses.py). None with a trainer service
    (GATEWAY_TRAINER_URL): that service runs the first model's job only."""
    if settings.trainer_url:
        return None
    runner = LocalJobs(
        settings.jobs_dir / settings.cond_model_name,
        settings.cond_base_path,
        settings.model_config_file,
        cond_train_args(settings.cond_model_name),
    )
    return Trainer(runner)
