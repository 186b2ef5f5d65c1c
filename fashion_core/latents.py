"""The noise behind a sheet: a pure function of the seed, so the same seed and the same version
give the same PNG from the gateway, the Python API and every backend."""

from __future__ import annotations

import numpy as np

MAX_SEED = 2**63 - 1


def latents_for(seed: int, count: int, latent_dim: int) -> np.ndarray:
    """(count, latent_dim) float32 standard normal noise drawn from ``seed``."""
    return np.random.default_rng(seed).standard_normal((count, latent_dim), dtype=np.float32)
