"""The embedded backend: the published SavedModel loaded in-process, the seed's singleton.

The newest version under MODEL_BASE_PATH is loaded once at start and a background task checks
the folder every GATEWAY_POLL_INTERVAL_S; a newer version is loaded beside the old one and swapped
in with one assignment, so requests in flight finish on the version they started with.
Pinned versions are loaded on demand and kept (a few, most recently used).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections import OrderedDict
from typing import Any

import numpy as np
import tensorflow as tf

from fashion_core.contract import INPUT, OUTPUT, SIGNATURE
from fashion_core.models_config import LabelFile
from fashion_core.versions import list_versions, version_dir
from gateway.backends.base import Generated, ModelStatus, Pin, VersionState
from gateway.errors import NotPinnable, NoVersion, UpstreamError
from gateway.settings import Settings

log = logging.getLogger("gateway.embedded")
KEEP_LOADED = 4


class EmbeddedBackend:
    name = "embedded"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base = settings.model_base_path
        self.labels = LabelFile(settings.model_config_file, settings.model_name)
        self._models: OrderedDict[int, Any] = OrderedDict()  # version -> signature function
        self._failed: dict[int, str] = {}  # version -> load error (not retried)
        self._latest: int | None = None
        self._load_lock = asyncio.Lock()
        self._poller: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.refresh()
        self._poller = asyncio.create_task(self._poll())

    async def close(self) -> None:
        if self._poller:
            self._poller.cancel()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_interval_s)
            try:
                await self.refresh()
            except Exception:  # a bad version must not stop the poller
                log.exception("version check failed")

    async def refresh(self) -> None:
        """Switch to the newest loadable version on disk, if it is newer than the current one."""
        for version in reversed(list_versions(self.base)):
            if self._latest is not None and version <= self._latest:
                return
            if version in self._failed:
                continue
            if await self._load(version) is not None:
                if self._latest != version:
                    log.info("serving version %s", version)
                self._latest = version
                return

    async def _load(self, version: int) -> Any:
        if version in self._models:
            self._models.move_to_end(version)
            return self._models[version]
        async with self._load_lock:
            if version in self._models:
                return self._models[version]
            try:
                path = version_dir(self.base, version)
                fn = await asyncio.to_thread(load_signature, str(path))
            except Exception as exc:  # corrupt or half-copied folder: keep serving the old one
                self._failed[version] = str(exc).splitlines()[0][:300] if str(exc) else repr(exc)
                log.error("version %s failed to load: %s", version, self._failed[version])
                return None
            self._models[version] = fn
            gc.freeze()  # a loaded model is long-lived: keep it out of full collections
            while len(self._models) > KEEP_LOADED:
                oldest = next(iter(self._models))
                if oldest == self._latest:
                    self._models.move_to_end(oldest)
                    continue
                self._models.pop(oldest)
            return fn

    def _resolve(self, pin: Pin) -> int:
        if pin.version is not None:
            return pin.version
        if pin.label is not None:
            labels = self.labels.labels()
            if pin.label not in labels:
                known = ", ".join(sorted(labels)) or "none"
                raise NotPinnable(f"label {pin.label!r} is not defined; defined labels: {known}.")
            return labels[pin.label]
        if self._latest is None:
            raise NoVersion(f"no version of {self.settings.model_name} is published yet.")
        return self._latest

    async def _function(self, version: int) -> Any:
        """The loaded signature of ``version``, loading it on first use."""
        fn = self._models.get(version)
        if fn is not None:
            return fn
        published = list_versions(self.base)
        if version not in published:
            known = ", ".join(map(str, published)) or "none"
            raise NotPinnable(
                f"version {version} does not exist; published versions: {known}.", status=404
            )
        fn = await self._load(version)
        if fn is None:
            raise UpstreamError(f"version {version} failed to load: {self._failed.get(version)}")
        return fn

    async def generate(self, z: np.ndarray, pin: Pin) -> Generated:
        version = self._resolve(pin)
        fn = await self._function(version)
        deadline = self.settings.upstream_timeout_s
        try:
            # the same deadline as a TF Serving call; a late model run finishes in its thread
            images = await asyncio.wait_for(asyncio.to_thread(call_signature, fn, z), deadline)
        except TimeoutError:
            raise UpstreamError(f"the model did not answer within {deadline:g}s.", 504) from None
        except Exception as exc:
            raise UpstreamError(f"the model failed: {type(exc).__name__}", 502) from exc
        return Generated(images, version)

    async def latent_dim(self, pin: Pin) -> int:
        return signature_latent_dim(await self._function(self._resolve(pin)))

    async def status(self) -> ModelStatus:
        """Loaded versions and older ones (loadable on demand) are AVAILABLE, newer ones not yet
        loaded are LOADING, and ones that failed to load are END with their error."""
        states = []
        for v in list_versions(self.base):
            if v in self._failed:
                states.append(VersionState(v, "END", self._failed[v]))
            elif v in self._models or (self._latest is not None and v <= self._latest):
                states.append(VersionState(v, "AVAILABLE"))
            else:
                states.append(VersionState(v, "LOADING"))
        return ModelStatus(sorted(states, key=lambda s: -s.version))


def load_signature(path: str) -> Any:
    """The serving signature of the SavedModel at ``path`` (also fashion_gan's loader)."""
    loaded = tf.saved_model.load(path)
    fn = loaded.signatures[SIGNATURE]
    fn._keepalive = loaded  # the signature needs its SavedModel object alive
    return fn


def call_signature(fn: Any, z: np.ndarray) -> np.ndarray:
    """z (n, latent_dim) -> images (n, 28, 28, 1); concrete functions are safe across threads."""
    out: np.ndarray = fn(**{INPUT: tf.constant(z, dtype=tf.float32)})[OUTPUT].numpy()
    return out


def signature_latent_dim(fn: Any) -> int:
    """The length of z the signature takes, read from the model itself."""
    return int(fn.structured_input_signature[1][INPUT].shape[-1])
