"""Error answers, in one place, and what a miss means.

Training starts only when MODEL_BASE_PATH (mounted read-only into every gateway) holds no
version folder: TF Serving's own answers cannot tell "no version yet" from "not started" (it
keeps its ports closed until a version is loaded) or "not loaded on this replica yet" (404).
When the base path has versions, a miss is the model server still loading (503, Retry-After),
or a model name it does not know (404: MODEL_NAME is wrong); a label whose version is not loaded
is the caller's 404. A base path that cannot be read is neither: the gateway cannot tell, so it
answers 503 and trains nothing (it fails closed; gateway/disk.py logs it and counts it). A
failing job backs off (fashion_core.jobs), so misses never retrain in a loop, and a fresh
deployment starts its first job at start-up (``bootstrap``), not on a request.

The class-conditional model (a request with a category) misses in its own lane, its own base
path. The first model's ``quick`` job trains conditional networks and publishes them as this
model too (training/progressive.py, ``Companion``): while that job runs, a miss waits for it
(503 with its status), so a fresh deployment's first category sheet comes with its first
design. Otherwise the miss starts the conditional model's own job (``--set conditional=true``,
its own jobs folder), never at start-up: another profile's first model trains first and alone,
and the second model costs CPU only once someone asks for a category.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.responses import JSONResponse, Response

from fashion_core.versions import BasePathError
from fashion_gan.jobs import publishes_too
from gateway.errors import (
    BadRequest,
    NotPinnable,
    NoVersion,
    Overloaded,
    QueueTimeout,
    ServingError,
    TrainerError,
    UpstreamError,
)
from gateway.service import Gateway, Lane

log = logging.getLogger("gateway")


def sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


async def _no_version_on_disk(lane: Lane) -> bool:
    """Whether the base path holds no version; raises BasePathError when it cannot be read."""
    return not await lane.folder.versions()


def _what(lane: Lane) -> str:
    return "of the class-conditional model " if lane.conditional else ""


def status_url(lane: Lane) -> str:
    return f"/api/training?model={lane.model}" if lane.conditional else "/api/training"


def _unreadable(gw: Gateway, exc: BasePathError) -> UpstreamError:
    return UpstreamError(
        f"the gateway cannot read its model folder ({exc}), so it cannot tell whether a "
        "version exists; it trains nothing until it can.",
        503,
        retry_after=gw.settings.retry_after_s,
    )


async def _first_job_publishes(gw: Gateway, lane: Lane) -> dict[str, Any] | None:
    """The first model's running job when it publishes ``lane``'s model too, else None."""
    if lane is gw.first or gw.first.training is None:
        return None
    job = await gw.first.training.get()
    return job if publishes_too(job, lane.model) else None


async def train_on_miss(gw: Gateway, reason: str, lane: Lane | None = None) -> Response:
    lane = lane or gw.first
    retry = {"Retry-After": str(gw.settings.retry_after_s)}
    if not gw.settings.train_on_miss:
        off = {"error": f"{reason} Publish a version; training on miss is off."}
        return JSONResponse(off, status_code=503, headers=retry)
    if (first_job := await _first_job_publishes(gw, lane)) is not None:
        waiting = {
            "error": f"{reason} The {gw.first.model} training job publishes it too; retry "
            "after its first version.",
            "training": first_job,
            "status_url": "/api/training",
            "model": lane.model,
        }
        return JSONResponse(waiting, status_code=503, headers=retry)
    if lane.trainer is None or lane.training is None:
        off = {
            "error": f"{reason} Publish one (python -m training --set conditional=true), or "
            "start the trainer's quick job (POST /api/training), which publishes it too."
        }
        return JSONResponse(off, status_code=503, headers=retry)
    job, started = await lane.trainer.start(gw.settings.train_profile)
    lane.training.invalidate()
    if started:
        gw.metrics.training_jobs.inc()
        log.warning("no version of %s: started a %s training job", lane.model, job.get("profile"))
    body: dict[str, Any] = {"training": job, "status_url": status_url(lane), "model": lane.model}
    if job.get("state") == "running":
        body["error"] = f"{reason} A training job is running; retry after it publishes a version."
    else:
        body["error"] = (
            f"{reason} The last training job failed; the next one starts after a pause "
            "(see retry_at at /api/training)."
        )
    return JSONResponse(body, status_code=503, headers=retry)


async def _miss(gw: Gateway, exc: Exception, lane: Lane) -> Exception | Response:
    """A NoVersion, or an unreachable model server: train, wait, or blame the name."""
    try:
        nothing = await _no_version_on_disk(lane)
    except BasePathError as folder_exc:
        return _unreadable(gw, folder_exc)
    if nothing:
        try:
            return await train_on_miss(gw, f"No model version {_what(lane)}exists yet.", lane)
        except TrainerError as trainer_exc:
            return trainer_exc  # answered below: the miss cannot start a job right now
    if not isinstance(exc, NoVersion):
        return exc  # unreachable, with versions on disk: the server is down or starting
    try:
        known = (await lane.status.get()).versions
    except UpstreamError as status_exc:
        return status_exc
    if not known:  # TF Serving answers "Could not find any versions of model X"
        setting = "COND_MODEL_NAME" if lane.conditional else "MODEL_NAME"
        return BadRequest(f"the model server has no model named {lane.model!r} ({setting}).", 404)
    # published but not loaded (yet, or on this replica): wait, never retrain
    return UpstreamError(
        "the model server has not loaded the published versions yet.",
        503,
        retry_after=gw.settings.retry_after_s,
    )


async def answer(gw: Gateway, exc: Exception, lane: Lane | None = None) -> Response:
    """Every expected error type -> its HTTP answer (the one place this happens); ``lane``:
    the model the request asked (a miss trains that one)."""
    if isinstance(exc, NoVersion) or (isinstance(exc, UpstreamError) and exc.unreachable):
        outcome = await _miss(gw, exc, lane or gw.first)
        if isinstance(outcome, Response):
            return outcome
        exc = outcome
    if isinstance(exc, BadRequest | NotPinnable):  # the caller's choice of input or version
        return JSONResponse({"error": sentence(str(exc))}, exc.status)
    if isinstance(exc, Overloaded):
        reason = "queue_timeout" if isinstance(exc, QueueTimeout) else "overloaded"
        gw.metrics.rejected.labels(reason).inc()
        busy = gw.settings.retry_busy_s
        text = f"The gateway is at capacity ({exc}); retry in {busy} s."
        return JSONResponse({"error": text}, 503, {"Retry-After": str(busy)})
    if isinstance(exc, UpstreamError):
        gw.metrics.upstream_errors.labels(gw.backend.name, str(exc.status)).inc()
        # a bad answer or a busy server may well be gone in a moment; a missed deadline says
        # nothing about when to come back
        retry = exc.retry_after or (gw.settings.retry_busy_s if exc.status != 504 else None)
        headers = {"Retry-After": str(retry)} if retry else {}
        return JSONResponse({"error": sentence(str(exc))}, exc.status, headers=headers)
    if isinstance(exc, ServingError):  # any other model-server answer: its own status
        return JSONResponse({"error": sentence(str(exc))}, exc.status)
    if isinstance(exc, TrainerError):
        return JSONResponse({"error": sentence(str(exc))}, exc.status, {"Retry-After": "10"})
    raise exc


async def bootstrap(gw: Gateway) -> None:
    """A fresh deployment trains its first version without waiting for a request: while the
    base path holds no version and the model server has none either (or keeps its ports
    closed), make sure a training job runs. The job runner's single flight and back-off make
    repeating this cheap. A base path that cannot be read starts nothing (and is retried)."""
    if not gw.settings.train_on_miss:
        return
    interval = min(float(gw.settings.retry_after_s), 10.0)
    while True:
        try:
            if not await _no_version_on_disk(gw.first):
                return
        except BasePathError:
            await asyncio.sleep(interval)  # logged and counted by gw.folder
            continue
        try:
            if (await gw.status.get()).versions:
                return  # the model server has versions this gateway cannot see on disk
            await train_on_miss(gw, "No model version exists yet.")
        except UpstreamError as exc:
            if exc.unreachable:
                try:
                    await train_on_miss(gw, "No model version exists yet.")
                except TrainerError as trainer_exc:
                    log.error("could not start training at start-up: %s", trainer_exc)
        except TrainerError as exc:
            log.error("could not start training at start-up: %s", exc)
        await asyncio.sleep(interval)
