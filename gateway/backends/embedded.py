"""The embedded backend: the published SavedModel loaded in-process, the seed's singleton.

The newest version under MODEL_BASE_PATH is loaded once at start and a background task checks
the folder every GATEWAY_POLL_INTERVAL_S; a newer version is loaded beside the old one and swapped
in with one assignment, so requests in flight finish on the version they started with. Pinned
versions are loaded on demand, rate-limited, and a few are kept (gateway/backends/loader.py).
The folder is listed off the event loop with a deadline (gateway/disk.py) and model calls run
in threads of their own, so neither a hung mount nor a burst of work elsewhere stalls them.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from fashion_core.models_config import LabelFile
from fashion_core.versions import BasePathError, version_dir
from fashion_gan.savedmodel import call_signature, load_signature, signature_latent_dim
from gateway.backends.base import Generated, ModelStatus, Pin, VersionState
from gateway.backends.loader import Loaded, LoadedVersions
from gateway.disk import ModelFolder
from gateway.errors import NotPinnable, NoVersion, UpstreamError
from gateway.settings import Settings

log = logging.getLogger("gateway.embedded")
MODEL_THREADS = 8  # a 16x16 sheet is four concurrent calls of 72 rows; a few pins at once


class EmbeddedBackend:
    name = "embedded"

    def __init__(
        self, settings: Settings, base: Path | None = None, model_name: str | None = None
    ) -> None:
        """The first model's (MODEL_BASE_PATH, MODEL_NAME), or another's ``base`` and
        ``model_name`` (the class-conditional model's)."""
        self.settings = settings
        self.base = base or settings.model_base_path
        self.model_name = model_name or settings.model_name
        self.labels = LabelFile(settings.model_config_file, self.model_name)
        self.folder = ModelFolder(
            self.base, settings.status_timeout_s, ttl_s=settings.poll_interval_s / 2
        )
        self.pool = ThreadPoolExecutor(MODEL_THREADS, thread_name_prefix="model")
        self.versions = LoadedVersions(
            self._open,
            self.pool,
            load_interval_s=settings.pin_load_interval_s,
            failed_ttl_s=settings.failed_load_ttl_s,
        )
        self._poller: asyncio.Task[None] | None = None

    def _open(self, version: int) -> Loaded:
        root, fn = load_signature(str(version_dir(self.base, version)))
        return Loaded(version, root, fn)

    async def start(self) -> None:
        try:
            await self.refresh()
        except BasePathError as exc:  # served as 503 meanwhile; the poller tries again
            log.error("the model folder cannot be read at start: %s", exc)
        self._poller = asyncio.create_task(self._poll())

    async def close(self) -> None:
        if self._poller:
            self._poller.cancel()
        self.folder.close()
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_interval_s)
            try:
                await self.refresh()
            except Exception:  # a bad version or an unreadable folder must not stop the poller
                log.exception("version check failed")

    async def refresh(self) -> None:
        """Switch to the newest loadable version on disk, if it is newer than the current one."""
        current = self.versions.newest
        for version in reversed(await self.folder.versions()):
            if current is not None and version <= current:
                return
            if self.versions.failed(version) is not None:
                continue
            if await self.versions.load_newest(version):
                log.info("serving version %s", version)
                return

    def _resolve(self, pin: Pin) -> int:
        if pin.version is not None:
            return pin.version
        if pin.label is not None:
            labels = self.labels.labels()
            if pin.label not in labels:
                known = ", ".join(sorted(labels)) or "none"
                raise NotPinnable(f"label {pin.label!r} is not defined; defined labels: {known}.")
            return labels[pin.label]
        if self.versions.newest is None:
            raise NoVersion(f"no version of {self.model_name} is published yet.")
        return self.versions.newest

    async def _function(self, version: int, pinned: bool) -> Any:
        """The loaded signature of ``version``, loading it on first use."""
        if version not in self.versions:
            try:
                published = await self.folder.versions()
            except BasePathError as exc:
                raise UpstreamError(f"{exc}.", 503, self.settings.retry_busy_s) from None
            if version not in published:
                known = ", ".join(map(str, published)) or "none"
                raise NotPinnable(
                    f"version {version} does not exist; published versions: {known}.", status=404
                )
        return (await self.versions.get(version, pinned)).fn

    async def generate(
        self, z: np.ndarray, pin: Pin, category: np.ndarray | None = None
    ) -> Generated:
        """Images for ``z``; a class-conditional model takes ``category`` too, one per row."""
        version = self._resolve(pin)
        fn = await self._function(version, pinned=pin != Pin())
        deadline = self.settings.upstream_timeout_s
        loop = asyncio.get_running_loop()
        try:
            # the same deadline as a TF Serving call; a late model run finishes in its thread
            images = await asyncio.wait_for(
                loop.run_in_executor(self.pool, call_signature, fn, z, category), deadline
            )
        except TimeoutError:
            raise UpstreamError(f"the model did not answer within {deadline:g}s.", 504) from None
        except Exception as exc:
            raise UpstreamError(f"the model failed: {type(exc).__name__}", 502) from exc
        return Generated(images, version)

    async def latent_dim(self, pin: Pin) -> int:
        version = self._resolve(pin)
        return signature_latent_dim(await self._function(version, pinned=pin != Pin()))

    async def status(self) -> ModelStatus:
        """Loaded versions and older ones (loadable on demand) are AVAILABLE, newer ones not yet
        loaded are LOADING, and ones that failed to load are END with their error."""
        try:
            published = await self.folder.versions()
        except BasePathError as exc:
            raise UpstreamError(f"{exc}.", 503, self.settings.retry_busy_s) from None
        newest = self.versions.newest
        states = []
        for v in published:
            error = self.versions.failed(v)
            if error is not None:
                states.append(VersionState(v, "END", error))
            elif v in self.versions or (newest is not None and v <= newest):
                states.append(VersionState(v, "AVAILABLE"))
            else:
                states.append(VersionState(v, "LOADING"))
        return ModelStatus(sorted(states, key=lambda s: -s.version))
