"""The gateway's state and its one operation: a request's latents -> images from the right
version, within the model server's limits and the gateway's own capacity, each client in turn."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
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
from gateway.errors import BodiesFull, NotPinnable, Overloaded, UpstreamError
from gateway.metrics import Metrics
from gateway.settings import Settings
from gateway.shared import Shared
from gateway.sheets import Renderer
from gateway.standing import Standing
from gateway.trainer import Trainer

log = logging.getLogger("gateway")
ROLLOUT_ROUTES = ("canary", "stable")


class Gateway:
    """One backend (every call within TF Serving's max_batch_size: the library's Chunked),
    one batcher with admission control, one trainer, one PNG renderer, one metrics registry,
    and the status answers every caller shares."""

    def __init__(self, settings: Settings, backend: Backend, trainer: Trainer) -> None:
        self.settings, self.trainer = settings, trainer
        self.backend = Chunked(backend, settings.upstream_max_batch)
        self.metrics = Metrics()
        self.batcher = Batcher(
            self.backend,
            settings.max_batch_images,
            settings.batch_window_ms,
            max_wait_s=settings.max_queue_wait_s,
            max_queue_images=settings.max_queue_images,
            queue_timeout_s=settings.queue_timeout_s,
            observe=self.metrics.batch_images.observe,
            on_drop=lambda reason: self.metrics.dropped.labels(reason).inc(),
        )
        self.renderer = Renderer(settings.render_threads)
        self.catalog = Catalog(settings)
        self.standing = Standing(settings.retry_busy_s)
        self.bodies = BodyBudget(settings.max_buffered_bytes)
        self.metrics.body_bytes.set_function(lambda: self.bodies.held)
        self.folder = ModelFolder(
            settings.model_base_path,
            settings.status_timeout_s,
            ttl_s=min(settings.poll_interval_s, 1.0),
            on_read=self._folder_read,
        )
        # status calls: one at a time, answers shared for a poll interval (gateway/shared.py)
        self.status: Shared[ModelStatus] = Shared(self.backend.status, settings.poll_interval_s)
        self.training: Shared[dict[str, Any]] = Shared(trainer.state, settings.poll_interval_s)
        self._served: dict[str, float] = {}  # route -> start time of the request shown
        self._watch: asyncio.Task[None] | None = None

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
    def submit(self, z: np.ndarray, pin: Pin, route: str, client: str) -> Awaitable[Generated]:
        """Queue the model work now (raising Overloaded at once when the gateway is full) and
        return what to await for the images. Seeded sheets are batched like the rest: every
        model call has 9 rows or more, where a row's result does not depend on its batch
        (fashion_gan/tfserving/chunking.py)."""
        try:
            future = self.batcher.submit(z, pin, client)
        except Overloaded:
            self.standing.refused(client)
            raise
        return self._finish(future, z, route, client)

    async def _finish(
        self, future: asyncio.Future[Generated], z: np.ndarray, route: str, client: str
    ) -> Generated:
        """A rollout label that is not defined yet falls back to the newest version, so
        turning the canary share on before publishing a canary loses nothing."""
        try:
            return await future
        except NotPinnable:
            if route not in ROLLOUT_ROUTES:
                raise
            return await self.batcher.generate(z, Pin(), client)
        finally:
            future.cancel()  # the client went away: drop the work if it has not started

    async def latent_dim(self, pin: Pin, route: str) -> int:
        try:
            return await self.backend.latent_dim(pin)
        except NotPinnable:
            if route not in ROLLOUT_ROUTES:
                raise
            return await self.backend.latent_dim(Pin())

    def served(self, route: str, version: int, started: float) -> None:
        """``gateway_served_version{route}``: the version that answered the request of that
        route that started last. Not the answer that came last: a request that started on
        the old version may end after one that started on the new (pinned requests say
        nothing about what the route serves)."""
        if route == "pinned" or started < self._served.get(route, float("-inf")):
            return
        self._served[route] = started
        self.metrics.served_version.labels(route).set(version)

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
        """Read the base path and the model server's status once (errors become gauges)."""
        with contextlib.suppress(OSError):
            await self.folder.versions()  # its gauge and log follow the folder's state
        try:
            status = await self.status.get()
        except (UpstreamError, OSError):
            self.metrics.upstream_up.set(0)
            self.metrics.upstream_ready.set(0)
            self.metrics.upstream_available.set(0)
        except Exception:  # a surprise must not end the watch
            log.exception("model server status check failed")
        else:
            self.metrics.upstream_up.set(1)
            self.metrics.upstream_ready.set(1 if status.ready else 0)
            self.metrics.upstream_available.set(len(status.available))

    def upstream_state(self) -> dict[str, Any]:
        """What is known about the model server now, without asking it (for /readyz)."""
        s = self.status
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
        await self.backend.start()
        await self._look()  # the first /readyz already has the model server's state
        self._watch = asyncio.create_task(self._watch_upstream())

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        await self.batcher.close()
        await self.backend.close()
        self.renderer.close()
        self.folder.close()
