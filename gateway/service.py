"""The gateway's state and its one operation: a request's latents -> images from the right
version, within the model server's limits and the gateway's own capacity."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import numpy as np
from starlette.requests import Request

from gateway import routing
from gateway.backends import Backend, Pin
from gateway.backends.base import Generated
from gateway.batching import Batcher
from gateway.catalog import Catalog
from gateway.chunking import ChunkedBackend
from gateway.errors import NotPinnable
from gateway.metrics import Metrics
from gateway.settings import Settings
from gateway.sheets import Renderer
from gateway.trainer import Trainer

ROLLOUT_ROUTES = ("canary", "stable")


class Gateway:
    """One backend (every call within TF Serving's max_batch_size: gateway/chunking.py), one
    batcher with admission control, one trainer, one PNG renderer, one metrics registry."""

    def __init__(self, settings: Settings, backend: Backend, trainer: Trainer) -> None:
        self.settings, self.trainer = settings, trainer
        self.backend = ChunkedBackend(backend, settings.upstream_max_batch)
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

    def route(self, request: Request, explicit: Pin | None) -> tuple[Pin, str]:
        """The pin for this request and its traffic route (gateway/routing.py)."""
        peer = request.client.host if request.client else ""
        key = routing.client_key(peer, request.headers, self.settings)
        return routing.choose(explicit, key, self.settings)

    def submit(self, z: np.ndarray, pin: Pin, route: str) -> Awaitable[Generated]:
        """Queue the model work now (raising Overloaded at once when the gateway is full) and
        return what to await for the images. Seeded sheets are batched like the rest: every
        model call has 9 rows or more, where a row's result does not depend on its batch
        (gateway/chunking.py)."""
        return self._finish(self.batcher.submit(z, pin), z, route)

    async def _finish(
        self, future: asyncio.Future[Generated], z: np.ndarray, route: str
    ) -> Generated:
        """A rollout label that is not defined yet falls back to the newest version, so
        turning the canary share on before publishing a canary loses nothing."""
        try:
            return await future
        except NotPinnable:
            if route not in ROLLOUT_ROUTES:
                raise
            return await self.batcher.generate(z, Pin())
        finally:
            future.cancel()  # the client went away: drop the work if it has not started

    async def latent_dim(self, pin: Pin, route: str) -> int:
        try:
            return await self.backend.latent_dim(pin)
        except NotPinnable:
            if route not in ROLLOUT_ROUTES:
                raise
            return await self.backend.latent_dim(Pin())

    async def close(self) -> None:
        await self.batcher.close()
        await self.backend.close()
        self.renderer.close()
