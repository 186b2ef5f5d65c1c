"""The one small interface every backend implements (tritonclient-style: same names for each
transport), and the value types that cross it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from fashion_core.tfserving import VersionState  # TF Serving's status rows

__all__ = ["LATEST", "Backend", "Generated", "ModelStatus", "Pin", "VersionState"]


@dataclass(frozen=True)
class Pin:
    """Which version a request wants: a number, a label, or (both None) the newest."""

    version: int | None = None
    label: str | None = None

    def describe(self) -> str:
        if self.version is not None:
            return f"version {self.version}"
        return f"label {self.label!r}" if self.label else "the newest version"


LATEST = Pin()


@dataclass(frozen=True)
class Generated:
    images: np.ndarray  # (n, 28, 28, 1) float32 in [-1, 1]
    version: int


@dataclass(frozen=True)
class ModelStatus:
    versions: list[VersionState] = field(default_factory=list)

    @property
    def available(self) -> list[int]:
        return sorted(v.version for v in self.versions if v.state == "AVAILABLE")

    @property
    def ready(self) -> bool:
        return bool(self.available)


class Backend(Protocol):
    name: str

    async def start(self) -> None:
        """Open channels / load the model; must not fail when no version exists yet."""

    async def generate(self, z: np.ndarray, pin: Pin) -> Generated:
        """z (n, latent_dim) float32 -> images; raises NoVersion, NotPinnable or UpstreamError."""
        ...

    async def latent_dim(self, pin: Pin) -> int:
        """Length of z the version ``pin`` names expects, read from the model itself."""
        ...

    async def status(self) -> ModelStatus:
        """Versions and their states, as TF Serving's status body reports them."""
        ...

    async def close(self) -> None: ...
