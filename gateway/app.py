"""The Starlette app: ``create_app(settings)``. Routes, error translation and train-on-miss.

GET  /api/generar-diseno   a new 3x3 PNG sheet on every call (?seed, rows, cols, scale,
                           spacing, version, label)
POST /api/generar-diseno   a sheet from the caller's own latent vectors (JSON)
GET  /api/training         the training job: state, profile, epoch, progress, log lines
POST /api/training         start a job (admin token)
GET  /healthz /readyz /metrics /openapi.json /docs
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from fashion_core.auth import AuthError, BodyError, check_bearer, profile_from_body
from fashion_core.render import sheet_png
from fashion_core.versions import list_versions
from gateway import params, routing
from gateway.backends import Backend, Pin, make_backend
from gateway.batching import Batcher
from gateway.chunking import ChunkedBackend
from gateway.docs import docs_page, openapi
from gateway.errors import BadRequest, NotPinnable, NoVersion, TrainerError, UpstreamError
from gateway.metrics import Metrics
from gateway.settings import Settings
from gateway.trainer import Trainer, make_trainer

log = logging.getLogger("gateway")
Handler = Callable[[Request], Awaitable[Response]]
IMMUTABLE = "public, max-age=31536000, immutable"


class Gateway:
    """The app's state: one backend, one batcher, one trainer, one metrics registry."""

    def __init__(self, settings: Settings, backend: Backend, trainer: Trainer) -> None:
        self.settings, self.trainer = settings, trainer
        # every model call within TF Serving's max_batch_size (gateway/chunking.py)
        self.backend = ChunkedBackend(backend, settings.upstream_max_batch)
        self.metrics = Metrics()
        self.batcher = Batcher(
            self.backend,
            settings.max_batch_images,
            settings.batch_window_ms,
            observe=self.metrics.batch_images.observe,
        )

    # --- routing of traffic between versions -------------------------------------------------
    def route(self, request: Request, explicit: Pin | None) -> tuple[Pin, str]:
        """The pin for this request and its traffic route (gateway/routing.py); the client key
        is X-Client-Id, else the client address."""
        key = request.headers.get("x-client-id") or (request.client.host if request.client else "")
        return routing.choose(explicit, key, self.settings)

    async def images(self, z: Any, pin: Pin, route: str) -> Any:
        """Run the model; a rollout label that is not defined yet falls back to the newest
        version, so turning the canary share on before publishing a canary loses nothing.
        Seeded sheets are batched like the rest: every model call has 9 rows or more, where
        a row's result does not depend on its batch (gateway/chunking.py)."""
        try:
            return await self.batcher.generate(z, pin)
        except NotPinnable:
            if route not in ("canary", "stable"):
                raise
            return await self.batcher.generate(z, Pin())

    async def latent_dim(self, pin: Pin, route: str) -> int:
        try:
            return await self.backend.latent_dim(pin)
        except NotPinnable:
            if route not in ("canary", "stable"):
                raise
            return await self.backend.latent_dim(Pin())

    # --- handlers ------------------------------------------------------------------------------
    async def design_get(self, request: Request) -> Response:
        """A PNG design sheet drawn from fresh noise, or from ``seed`` (reproducible)."""
        layout, seed, explicit = params.query(request.query_params, self.settings)
        pin, route = self.route(request, explicit)
        dim = await self.latent_dim(pin, route)
        seeded = seed is not None
        if seed is None:
            seed = secrets.randbits(63)
        z = params.latents_for(seed, layout.count, dim)
        out = await self.images(z, pin, route)
        return self._png(request, out, layout, route, seed, seeded)

    async def design_post(self, request: Request) -> Response:
        """A PNG sheet from the caller's latent vectors."""
        raw = await _read_body(request, self.settings.max_body_bytes)
        explicit = params.pin(dict(request.query_params)) if request.query_params else None
        pin, route = self.route(request, explicit)
        dim = await self.latent_dim(pin, route)
        layout, z, body_pin = params.body(raw, self.settings, dim)
        if body_pin is not None and body_pin != pin:
            pin, route = body_pin, "pinned"
        out = await self.images(z, pin, route)
        return self._png(request, out, layout, route, None, True)

    def _png(
        self,
        request: Request,
        out: Any,
        layout: params.Layout,
        route: str,
        seed: int | None,
        cacheable: bool,
    ) -> Response:
        png = sheet_png(out.images, layout.rows, layout.cols, layout.spacing, layout.scale)
        self.metrics.sheets.labels(str(out.version), route).inc()
        self.metrics.served_version.set(out.version)
        headers = {"X-Model-Version": str(out.version), "X-Traffic-Route": route}
        if seed is not None:
            headers["X-Seed"] = str(seed)
        if cacheable:
            # same version + same inputs -> same bytes: caches may keep it for good
            etag = '"' + hashlib.sha256(png).hexdigest()[:32] + '"'
            headers.update({"ETag": etag, "Cache-Control": IMMUTABLE})
            if request.headers.get("if-none-match") == etag:
                return Response(status_code=304, headers=headers)
        else:
            headers["Cache-Control"] = "no-store"
        return Response(png, media_type="image/png", headers=headers)

    async def training_get(self, request: Request) -> Response:
        """The training job's state, profile, epoch, progress, start time, log lines, error."""
        return JSONResponse({"training": await self.trainer.state()})

    async def training_post(self, request: Request) -> Response:
        """Start a training job (Authorization: Bearer GATEWAY_ADMIN_TOKEN)."""
        try:
            check_bearer(
                request.headers.get("authorization"),
                self.settings.admin_token,
                "POST /api/training",
                "GATEWAY_ADMIN_TOKEN",
            )
            profile = profile_from_body(
                await _read_body(request, 4096), self.settings.train_profile
            )
        except AuthError as exc:
            raise BadRequest(str(exc), exc.status) from None
        except BodyError as exc:
            raise BadRequest(str(exc)) from None
        job, started = await self.trainer.start(profile, automatic=False)
        if started:
            self.metrics.training_jobs.inc()
        return JSONResponse({"training": job, "started": started}, status_code=202)

    async def healthz(self, request: Request) -> Response:
        """The process is up."""
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        """200 only while the model server has a version AVAILABLE (read from its status body)."""
        status = await self.backend.status()
        body = {
            "ready": status.ready,
            "backend": self.backend.name,
            "available": status.available,
            "versions": [{"version": v.version, "state": v.state} for v in status.versions],
        }
        return JSONResponse(body, status_code=200 if status.ready else 503)

    async def metrics_endpoint(self, request: Request) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # --- train on miss ---------------------------------------------------------------------
    async def train_on_miss(self, reason: str) -> Response:
        retry = {"Retry-After": str(self.settings.retry_after_s)}
        if not self.settings.train_on_miss:
            off = {"error": f"{reason} Publish a version; training on miss is off."}
            return JSONResponse(off, status_code=503, headers=retry)
        job, started = await self.trainer.start(self.settings.train_profile)
        if started:
            self.metrics.training_jobs.inc()
            log.warning("no model version: started a %s training job", job.get("profile"))
        body: dict[str, Any] = {
            "error": f"{reason} A training job is running; retry after it publishes a version.",
            "training": job,
            "status_url": "/api/training",
        }
        return JSONResponse(body, status_code=503, headers=retry)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refusing more than ``limit`` bytes without reading it all into memory."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BadRequest(f"the body must be at most {limit} bytes.", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(f"the body must be at most {limit} bytes.", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    settings: Settings, backend: Backend | None = None, trainer: Trainer | None = None
) -> Starlette:
    """The gateway app for ``settings`` (tests may hand in a backend or trainer)."""
    gw = Gateway(settings, backend or make_backend(settings), trainer or make_trainer(settings))

    def measured(name: str, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            try:
                response = await handler(request)
            except Exception as exc:  # translated here, in one place
                response = await _translate(gw, exc)
            gw.metrics.latency.labels(name).observe(time.perf_counter() - started)
            gw.metrics.requests.labels(name, str(response.status_code)).inc()
            return response

        endpoint.__doc__ = handler.__doc__
        return endpoint

    routes = [
        Route("/api/generar-diseno", measured("design", gw.design_get), methods=["GET"]),
        Route("/api/generar-diseno", measured("design_post", gw.design_post), methods=["POST"]),
        Route("/api/training", measured("training", gw.training_get), methods=["GET"]),
        Route("/api/training", measured("training_post", gw.training_post), methods=["POST"]),
        Route("/healthz", measured("healthz", gw.healthz), methods=["GET"]),
        Route("/readyz", measured("readyz", gw.readyz), methods=["GET"]),
        Route("/metrics", gw.metrics_endpoint, methods=["GET"]),
    ]
    schema = openapi(settings)

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(schema)

    async def docs(request: Request) -> Response:
        return HTMLResponse(docs_page(schema))

    routes += [Route("/openapi.json", openapi_json), Route("/docs", docs)]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gw.backend.start()
        kick = asyncio.create_task(_bootstrap(gw))
        yield
        kick.cancel()
        await gw.batcher.close()
        await gw.backend.close()

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"error": _http_sentence(exc.status_code)}, exc.status_code)

    async def crash(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error")
        return JSONResponse({"error": "the gateway failed; this is a bug."}, 500)

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error, Exception: crash},
    )
    app.state.gateway = gw
    return app


def _no_version_on_disk(gw: Gateway) -> bool:
    """Whether MODEL_BASE_PATH (mounted read-only into every gateway) has no version folder:
    the one condition under which a miss trains. TF Serving's own answers cannot tell "no
    version yet" from "not loaded on this replica yet" or "not started" (contract)."""
    return not list_versions(gw.settings.model_base_path)


async def _bootstrap(gw: Gateway) -> None:
    """A fresh deployment trains its first version without waiting for a request: while the
    base path holds no version and the model server has none either (or keeps its ports
    closed, as TF Serving does until it has loaded one), make sure a training job runs. The
    job runner's single flight and back-off make repeating this cheap."""
    if not gw.settings.train_on_miss:
        return
    interval = min(float(gw.settings.retry_after_s), 10.0)
    while _no_version_on_disk(gw):
        try:
            status = await gw.backend.status()
            if status.versions:
                return  # the model server has versions this gateway cannot see on disk
        except UpstreamError as exc:
            if not exc.unreachable:
                await asyncio.sleep(interval)
                continue
        try:
            await gw.train_on_miss("No model version exists yet.")
        except TrainerError as exc:
            log.error("could not start training at start-up: %s", exc)
        await asyncio.sleep(interval)


async def _translate(gw: Gateway, exc: Exception) -> Response:
    """Every expected error type -> its HTTP answer (the one place this happens)."""
    if isinstance(exc, BadRequest):
        return JSONResponse({"error": _sentence(str(exc))}, exc.status)
    if isinstance(exc, NoVersion) or (isinstance(exc, UpstreamError) and exc.unreachable):
        if _no_version_on_disk(gw):
            try:
                return await gw.train_on_miss(_sentence(str(exc)))
            except TrainerError as trainer_exc:
                exc = trainer_exc  # answered below: the miss cannot start a job right now
        elif isinstance(exc, NoVersion):
            # published but not loaded (yet, or on this replica): wait, never retrain
            exc = UpstreamError(
                "the model server has not loaded the published versions yet.",
                503,
                retry_after=gw.settings.retry_after_s,
            )
    if isinstance(exc, UpstreamError):
        gw.metrics.upstream_errors.labels(gw.backend.name, str(exc.status)).inc()
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else {}
        return JSONResponse({"error": _sentence(str(exc))}, exc.status, headers=headers)
    if isinstance(exc, TrainerError):
        return JSONResponse({"error": _sentence(str(exc))}, exc.status, {"Retry-After": "10"})
    raise exc


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _http_sentence(code: int) -> str:
    return {
        404: "No such page; see /docs for the endpoints.",
        405: "That method is not allowed here; see /docs for the endpoints.",
    }.get(code, f"HTTP {code}.")
