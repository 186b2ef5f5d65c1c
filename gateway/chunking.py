"""Every model call within the model server's batch limit, and with enough rows to be exact.

TF Serving with batching refuses any predict with more rows than ``max_batch_size``
(``Task size N is larger than maximum input batch size M``; serving_config/batching.config
sets 72, GATEWAY_UPSTREAM_MAX_BATCH says the same and a test keeps them equal). So a big sheet
or a merged batch is cut into calls of at most that many rows, sent concurrently and put back
together in order.

Each call also carries at least ``MIN_ROWS`` rows (short ones are padded with copies of their
first row, as TF Serving pads a merged batch): measured on these CPUs, TensorFlow's kernels
give a row the same bits in any batch of 8 rows or more, wherever it sits and whatever else is
in the batch, but take another code path below that. With every call at 9 rows or more, and
TF Serving padding its merged batches to the allowed sizes (9, 18, 36, 72), a seeded sheet is
byte-identical however it was batched, on every backend.

A call for "the newest version" or a label whose chunks were answered by two versions (a
rollout landed between them) has the older chunks computed again on the newer version, so a
sheet never mixes models.
"""

from __future__ import annotations

import asyncio

import numpy as np

from gateway.backends.base import Backend, Generated, ModelStatus, Pin

MIN_ROWS = 9


class ChunkedBackend:
    """A Backend whose generate() keeps every upstream call within [MIN_ROWS, limit] rows."""

    def __init__(self, backend: Backend, limit: int, min_rows: int = MIN_ROWS) -> None:
        self.inner, self.limit, self.min_rows = backend, limit, min(min_rows, limit)
        self.name = backend.name

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def latent_dim(self, pin: Pin) -> int:
        return await self.inner.latent_dim(pin)

    async def status(self) -> ModelStatus:
        return await self.inner.status()

    async def _call(self, z: np.ndarray, pin: Pin) -> Generated:
        n = len(z)
        if n < self.min_rows:
            z = np.concatenate([z, np.repeat(z[:1], self.min_rows - n, axis=0)])
        out = await self.inner.generate(z, pin)
        return Generated(out.images[:n], out.version)

    async def generate(self, z: np.ndarray, pin: Pin) -> Generated:
        chunks = [z[i : i + self.limit] for i in range(0, len(z), self.limit)]
        if len(chunks) == 1:
            return await self._call(chunks[0], pin)
        parts = list(await asyncio.gather(*(self._call(c, pin) for c in chunks)))
        newest = max(p.version for p in parts)
        if pin.version is None:
            for i, part in enumerate(parts):
                if part.version != newest:
                    parts[i] = await self._call(chunks[i], Pin(version=newest))
        return Generated(np.concatenate([p.images for p in parts]), newest)
