"""The values that cross a TF Serving transport, and the small interface every transport (and
the gateway's in-process model) implements: tritonclient-style, the same names for each."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

__all__ = [
    "LATEST",
    "Generated",
    "ModelStatus",
    "Pin",
    "RemoteTransport",
    "Transport",
    "VersionState",
]


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
class VersionState:
    """One row of TF Serving's status: a version and its state."""

    version: int
    state: str  # UNKNOWN, START, LOADING, AVAILABLE, UNLOADING, END
    error: str = ""


@dataclass(frozen=True)
class Generated:
    images: np.ndarray  # (n, 28, 28, 1) float32 in [-1, 1]
    version: int  # the version that drew them


@dataclass(frozen=True)
class ModelStatus:
    versions: list[VersionState] = field(default_factory=list)

    @property
    def available(self) -> list[int]:
        return sorted(v.version for v in self.versions if v.state == "AVAILABLE")

    @property
    def ready(self) -> bool:
        return bool(self.available)


class Transport(Protocol):
    name: str

    async def start(self) -> None:
        """Open channels / load the model; must not fail when no version exists yet."""

    async def generate(
        self, z: np.ndarray, pin: Pin, category: np.ndarray | None = None
    ) -> Generated:
        """z (n, latent_dim) float32 -> images; raises a ServingError subclass. ``category``:
        None for the unconditional model (the request carries z only), else int64 (n,), one
        category per row of z, for the conditional one (fashion_core.contract.CATEGORY)."""
        ...

    async def latent_dim(self, pin: Pin) -> int:
        """Length of z the version ``pin`` names expects, read from the model itself."""
        ...

    async def status(self) -> ModelStatus:
        """Versions and their states, as TF Serving's status body reports them."""
        ...

    async def close(self) -> None: ...


class RemoteTransport(Transport, Protocol):
    """A transport to a model server: it can also say which version a pin names now."""

    async def resolve(self, pin: Pin) -> int: ...
