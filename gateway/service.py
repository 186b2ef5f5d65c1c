"""The gateway's state and its one operation: a request's latents -> images from the right
model and version, within the model server's limits and the gateway's own capacity, each
client in turn.

Two models can be served: the first (``fashion_gan``) and the class-conditional one
(``fashion_gan_cond``, requests with a category). Each is a ``Lane``: its backend, version
folder, catalog, status answers and trainer. What is about clients stays the gateway's, one
for both lanes: admission, fairness and pacing (one batcher, one speed), routing (a client is on
the same side of a canary split for both models), the renderer and the metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from starlette.requests import Request

from fashion_gan.tfserving import Chunked
from gateway import routing
from gateway.backends import Backend, ModelStatus, Pin
from gateway.backends.base import Generated
from gateway.batching import Batcher
from gateway.bodies import BodyBudget, body_of
from gateway.catalog import Catalog
from gateway.disk import ModelFolder
from gateway.errors import BadRequest, BodiesFull, NotPinnable, Overloaded, UpstreamError
from gateway.metrics import Metrics
from gateway.settings import Settings
from gateway.shared import Shared
from gateway.sheets import Renderer
from gateway.standing import Standing
from gateway.trainer import Trainer

log = logging.getLogger("gateway")
ROLLOUT_ROUTES = ("canary", "stable")


@dataclass(eq=False)
class Lane:
    """One served model: its backend (every call within TF Serving's max_batch_size: the
    library's Chunked), its version folder, catalog, trainer (None: it is not trained on a
    miss here) and the status answers every caller shares."""

    model: str  # the TF Serving model name
    conditional: bool  # takes a category per row
    base: Path
    backend: Chunked
    folder: ModelFolder
    catalog: Catalog
    trainer: Trainer | None
    status: Shared[ModelStatus]
    training: Shared[dict[str, Any]] | None
    key: str = ""  # the batcher's name for it ("" for the first model)
    served: dict[str, float] = field(default_factory=dict)  # route -> start of request shown


class Gateway:
    """The lanes (the first model, and the class-conditional one unless it is off), one
    batcher with admission control for both, one PNG renderer, one metrics registry."""

    def __init__(
        self,
        settings: Settings,
        backend: Backend,
        trainer: Trainer,
        cond_backend: Backend | None = None,
        cond_trainer: Trainer | None = None,
    ) -> None:
        """``cond_backend``: the class-conditional model's backend (None: not served)."""
        self.settings = settings
        self.metrics = Metrics()
        self.first = self._lane(settings.model_name, settings.model_base_path, backend, trainer)
        self.cond: Lane | None = None
        if cond_backend is not None:
            self.cond = self._lane(
                settings.cond_model_name,
                settings.cond_base_path,
                cond_backend,
                cond_trainer,
                conditional=True,
            )
        self.lanes = [lane for lane in (self.first, self.cond) if lane is not None]
        self.batcher = Batcher(
            self.first.backend,
            settings.max_batch_images,
            settings.batch_window_ms,
            max_wait_s=settings.max_queue_wait_s,
            max_queue_images=settings.max_queue_images,
            queue_timeout_s=settings.queue_timeout_s,
            observe=self.metrics.batch_images.observe,
            on_drop=lambda reason: self.metrics.dropped.labels(reason).inc(),
        )
        if self.cond is not None:
            self.cond.key = self.cond.model
            self.batcher.add_model(self.cond.key, self.cond.backend)
        self.renderer = Renderer(settings.render_threads)
        self.standing = Standing(settings.retry_busy_s)
        self.bodies = BodyBudget(settings.max_buffered_bytes)
        self.metrics.body_bytes.set_function(lambda: self.bodies.held)
        self._watch: asyncio.Task[None] | None = None

    def _lane(
        self,
        model: str,
        base: Path,
        backend: Backend,
        trainer: Trainer | None,
        conditional: bool = False,
    ) -> Lane:
        s = self.settings
        chunked = Chunked(backend, s.upstream_max_batch)
        first = not conditional  # the first model's folder keeps today's gauges
        folder = ModelFolder(
            base,
            s.status_timeout_s,
            ttl_s=min(s.poll_interval_s, 1.0),
            on_read=self._folder_read if first else lambda readable: None,
        )
        # status calls: one at a time, answers shared for a poll interval (gateway/shared.py)
        return Lane(
            model=model,
            conditional=conditional,
            base=base,
            backend=chunked,
            folder=folder,
            catalog=Catalog(s, base, model),
            trainer=trainer,
            status=Shared(chunked.status, s.poll_interval_s),
            training=None if trainer is None else Shared(trainer.state, s.poll_interval_s),
        )

    # the first model's parts, by their names from before there were two
    @property
    def backend(self) -> Chunked:
        return self.first.backend

    @property
    def folder(self) -> ModelFolder:
        return self.first.folder

    @property
    def status(self) -> Shared[ModelStatus]:
        return self.first.status

    @property
    def trainer(self) -> Trainer:
        assert self.first.trainer is not None
        return self.first.trainer

    @property
    def training(self) -> Shared[dict[str, Any]]:
        assert self.first.training is not None
        return self.first.training

    @property
    def catalog(self) -> Catalog:
        return self.first.catalog

    def lane(self, conditional: bool) -> Lane:
        """The lane of a request: with a category the class-conditional model's (404 when
        this gateway does not serve it), else the first model's."""
        if not conditional:
            return self.first
        if self.cond is None:
            raise BadRequest(
                "this gateway does not serve the class-conditional model "
                "(GATEWAY_CONDITIONAL is off); leave category out.",
                404,
            )
        return self.cond

    def lane_named(self, model: str | None) -> Lane:
        """The lane a ``?model=`` parameter names (None: the first model's)."""
        if model is None:
            return self.first
        for lane in self.lanes:
            if model == lane.model:
                return lane
        names = " or ".join(lane.model for lane in self.lanes)
        raise BadRequest(f"model must be {names}.")

    # --- who asks, and may they ------------------------------------------------------------
    def client(self, request: Request) -> str:
        """The client's address (through GATEWAY_TRUSTED_PROXIES): what fairness and pacing
        count by. Not X-Client-Id: anyone can write any id there, and a new id per request
        would make every request a new client."""
        peer = request.client.host if request.client else ""
        return routing.client_address(peer, request.headers, self.settings.trusted_proxies)

    async def admit(self, client: str, n: int) -> None:
        """Return when ``n`` more images of ``client`` may queue; raise Overloaded (503) when
        not. A client that comes back before its Retry-After is held until then first
        (gateway/standing.py), so clients that ignore Retry-After cannot flood the gateway."""
        hold = self.standing.hold_s(client)
        if hold:
            self.metrics.held.inc()
            await asyncio.sleep(hold)
        try:
            self.batcher.admit(n, client)
        except Overloaded:
            self.standing.refused(client)
            raise

    @asynccontextmanager
    async def body(
        self, request: Request, client: str, limit: int | None = None
    ) -> AsyncIterator[bytes]:
        """The request's body, read within its deadline and the memory budget
        (gateway/bodies.py); a body refused for lack of room is paced like any refusal."""
        s = self.settings
        try:
            async with body_of(
                request, self.bodies, limit or s.max_body_bytes, s.body_timeout_s
            ) as raw:
                yield raw
        except BodiesFull:
            self.standing.refused(client)
            raise

    def route(self, request: Request, explicit: Pin | None) -> tuple[Pin, str]:
        """The pin for this request and its traffic route (gateway/routing.py)."""
        peer = request.client.host if request.client else ""
        key = routing.client_key(peer, request.headers, self.settings)
        return routing.choose(explicit, key, self.settings)

    # --- the work --------------------------------------------------------------------------
    def submit(
        self,
        z: np.ndarray,
        pin: Pin,
        route: str,
        client: str,
        category: np.ndarray | None = None,
    ) -> Awaitable[Generated]:
        """Queue the model work now (raising Overloaded at once when the gateway is full) and
        return what to await for the images: the first model's, or with ``category`` (one
        per row) the class-conditional model's. Seeded sheets are batched like the rest:
        every model call has 9 rows or more, where a row's result does not depend on its
        batch (fashion_gan/tfserving/chunking.py)."""
        lane = self.lane(category is not None)
        try:
            future = self.batcher.submit(z, pin, client, model=lane.key, category=category)
        except Overloaded:
            self.standing.refused(client)
            raise
        return self._finish(future, z, route, client, lane, category)

    async def _finish(
        self,
        future: asyncio.Future[Generated],
        z: np.ndarray,
        route: str,
        client: str,
        lane: Lane,
        category: np.ndarray | None,
    ) -> Generated:
        """A rollout label that is not defined yet falls back to the newest version, so
        turning the canary share on before publishing a canary loses nothing."""
        try:
            return await future
        except NotPinnable:
            if route not in ROLLOUT_ROUTES:
                raise
            return await self.batcher.generate(z, Pin(), client, model=lane.key, category=category)
        finally:
            future.cancel()  # the client went away: drop the work if it has not started

    async def latent_dim(self, pin: Pin, route: str, lane: Lane | None = None) -> int:
        backend = (lane or self.first).backend
        try:
            return await backend.latent_dim(pin)
        except NotPinnable:
            if route not in ROLLOUT_ROUTES:
                raise
            return await backend.latent_dim(Pin())

    def served(self, route: str, version: int, started: float, lane: Lane | None = None) -> None:
        """``gateway_served_version{route,model}``: the version that answered the request of
        that route that started last. Not the answer that came last: a request that started
        on the old version may end after one that started on the new (pinned requests say
        nothing about what the route serves)."""
        lane = lane or self.first
        if route == "pinned" or started < lane.served.get(route, float("-inf")):
            return
        lane.served[route] = started
        self.metrics.served_version.labels(route, lane.model).set(version)

    # --- what the model server and the base path say --------------------------------------
    def _folder_read(self, readable: bool) -> None:
        self.metrics.base_path_readable.set(1 if readable else 0)
        if not readable:
            self.metrics.base_path_errors.inc()

    async def _watch_upstream(self) -> None:
        """Keep the model server's status (and its gauges) fresh for /readyz and /metrics,
        which read it without waiting on the model server."""
        while True:
            await asyncio.sleep(self.settings.poll_interval_s)
            await self._look()

    async def _look(self) -> None:
        """Read the base paths and the model server's status once (errors become gauges:
        the unlabelled ones are the first model's, ``gateway_model_*{model}`` each lane's)."""
        for lane in self.lanes:
            await self._look_at(lane)

    async def _look_at(self, lane: Lane) -> None:
        first = lane is self.first
        with contextlib.suppress(OSError):
            await lane.folder.versions()  # its gauge and log follow the folder's state
        up = self.metrics.model_up.labels(lane.model)
        available = self.metrics.model_available.labels(lane.model)
        try:
            status = await lane.status.get()
        except (UpstreamError, OSError):
            up.set(0)
            available.set(0)
            if first:
                self.metrics.upstream_up.set(0)
                self.metrics.upstream_ready.set(0)
                self.metrics.upstream_available.set(0)
        except Exception:  # a surprise must not end the watch
            log.exception("model server status check failed (%s)", lane.model)
        else:
            up.set(1)
            available.set(len(status.available))
            if first:
                self.metrics.upstream_up.set(1)
                self.metrics.upstream_ready.set(1 if status.ready else 0)
                self.metrics.upstream_available.set(len(status.available))

    def upstream_state(self, lane: Lane | None = None) -> dict[str, Any]:
        """What is known about the model server now, without asking it (for /readyz)."""
        s = (lane or self.first).status
        age = None if s.checked is None else round(time.monotonic() - s.checked, 3)
        if s.checked is None:
            return {"checked": False}
        if s.error is not None:
            return {"reachable": False, "ready": False, "error": str(s.error), "age_s": age}
        status = s.value
        assert status is not None
        return {
            "reachable": True,
            "ready": status.ready,
            "available": status.available,
            "versions": [{"version": v.version, "state": v.state} for v in status.versions],
            "age_s": age,
        }

    async def start(self) -> None:
        for lane in self.lanes:
            await lane.backend.start()
        await self._look()  # the first /readyz already has the model server's state
        self._watch = asyncio.create_task(self._watch_upstream())

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        await self.batcher.close()
        for lane in self.lanes:
            await lane.backend.close()
            lane.folder.close()
        self.renderer.close()
