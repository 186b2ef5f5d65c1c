"""The noise behind a sheet: a pure function of the seed, so the same seed and the same version
give the same PNG from the gateway, the Python API and every backend."""

from __future__ import annotations

import numpy as np

from fashion_core.categories import ALL

MAX_SEED = 2**63 - 1


def latents_for(seed: int, count: int, latent_dim: int) -> np.ndarray:
    """(count, latent_dim) float32 standard normal noise drawn from ``seed``."""
    return np.random.default_rng(seed).standard_normal((count, latent_dim), dtype=np.float32)


def slerp(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """(steps, dim) float32: the walk from ``a`` to ``b`` along the great circle between them
    (spherical interpolation), both ends included. Gaussian latents live near a sphere of radius
    sqrt(dim); a straight line between two of them cuts through the low-norm middle, where the
    generator draws faint, washed-out designs. Nearly parallel vectors fall back to a line."""
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    na, nb = np.linalg.norm(a64), np.linalg.norm(b64)
    cos = float(np.dot(a64, b64) / (na * nb)) if na > 0 and nb > 0 else 1.0
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if np.sin(omega) < 1e-6:
        walk = (1.0 - t) * a64 + t * b64
    else:
        walk = (np.sin((1.0 - t) * omega) * a64 + np.sin(t * omega) * b64) / np.sin(omega)
    return walk.astype(np.float32)


def sheet_latents(
    seed: int, rows: int, cols: int, latent_dim: int, category: int | str | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """(z, category per row or None) of a seeded rows x cols sheet, for the gateway and the
    Python API alike. No category: the first model's latents. One category: the same latents,
    so a seed gives the same ideas in every category. ``ALL`` (rows = one per category): every
    row repeats the seed's first ``cols`` latents, row k drawn as category k, so a column is
    one idea in every category."""
    if category is None:
        return latents_for(seed, rows * cols, latent_dim), None
    if category == ALL:
        row = latents_for(seed, cols, latent_dim)
        return np.tile(row, (rows, 1)), np.repeat(np.arange(rows, dtype=np.int64), cols)
    assert isinstance(category, int)
    return latents_for(seed, rows * cols, latent_dim), np.full(rows * cols, category, np.int64)
