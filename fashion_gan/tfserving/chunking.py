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
byte-identical however it was batched, on every backend and through the Python API.

A conditional call's categories travel with their rows: cut at the same places, and padding
rows take category 0 (any valid one: their images are dropped).

A call for "the newest version" or a label whose chunks were answered by two versions (a
rollout landed between them) has the older chunks computed again on the newer version, so a
sheet never mixes models.
"""

from __future__ import annotations

import asyncio

import numpy as np

from fashion_gan.tfserving.values import Generated, ModelStatus, Pin, Transport

MIN_ROWS = 9


def split(z: np.ndarray, limit: int) -> list[np.ndarray]:
    """Rows in calls of at most ``limit``, in order."""
    return [z[i : i + limit] for i in range(0, len(z), limit)]


def padded(z: np.ndarray, min_rows: int = MIN_ROWS) -> np.ndarray:
    """``z`` with copies of its first row up to ``min_rows`` rows (as TF Serving pads)."""
    if len(z) >= min_rows:
        return z
    return np.concatenate([z, np.repeat(z[:1], min_rows - len(z), axis=0)])


def padded_categories(category: np.ndarray, min_rows: int = MIN_ROWS) -> np.ndarray:
    """``category`` with zeros up to ``min_rows`` rows (the padding rows of ``padded``)."""
    if len(category) >= min_rows:
        return category
    return np.concatenate([category, np.zeros(min_rows - len(category), np.int64)])


def check_categories(z: np.ndarray, category: np.ndarray | None) -> None:
    """One int64 category per row of z, or None (the unconditional model)."""
    if category is None:
        return
    if category.dtype != np.int64 or category.shape != (len(z),):
        raise ValueError(
            f"category must be int64 of shape ({len(z)},), one per latent, "
            f"not {category.dtype} {category.shape}."
        )


class Chunked:
    """A Transport whose generate() keeps every call within [MIN_ROWS, limit] rows."""

    def __init__(self, inner: Transport, limit: int, min_rows: int = MIN_ROWS) -> None:
        self.inner, self.limit, self.min_rows = inner, limit, min(min_rows, limit)
        self.name = inner.name

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def latent_dim(self, pin: Pin) -> int:
        return await self.inner.latent_dim(pin)

    async def status(self) -> ModelStatus:
        return await self.inner.status()

    async def _call(self, z: np.ndarray, pin: Pin, category: np.ndarray | None) -> Generated:
        rows = padded(z, self.min_rows)
        if category is None:
            out = await self.inner.generate(rows, pin)  # the unconditional call, as ever
        else:
            out = await self.inner.generate(rows, pin, padded_categories(category, self.min_rows))
        return Generated(out.images[: len(z)], out.version)

    async def generate(
        self, z: np.ndarray, pin: Pin, category: np.ndarray | None = None
    ) -> Generated:
        check_categories(z, category)
        chunks = split(z, self.limit)
        cats: list[np.ndarray | None] = (
            [None] * len(chunks) if category is None else list(split(category, self.limit))
        )
        if len(chunks) == 1:
            return await self._call(chunks[0], pin, cats[0])
        calls = (self._call(c, pin, k) for c, k in zip(chunks, cats, strict=True))
        parts = list(await asyncio.gather(*calls))
        newest = max(p.version for p in parts)
        if pin.version is None:
            for i, part in enumerate(parts):
                if part.version != newest:
                    parts[i] = await self._call(chunks[i], Pin(version=newest), cats[i])
        return Generated(np.concatenate([p.images for p in parts]), newest)
