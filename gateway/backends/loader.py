"""The SavedModels the embedded backend holds in memory: which stay, which go, which may load.

- At most ``KEEP_LOADED`` versions are loaded; the newest (what unpinned traffic gets) always
  stays, the least recently used other one goes first. When a newer version replaces the
  newest, the old one goes at once unless a pinned request has used it.
- Going means going: nothing else keeps a reference to a dropped version (no ``gc.freeze()``
  after a load, no attribute on the signature pointing back at its SavedModel), so the next
  garbage collection returns its memory (``tests/test_embedded_memory.py`` checks it with a weak
  reference). Before, every evicted or replaced SavedModel stayed in memory for good, and
  cycling through ``?version=1..5`` leaked one on every request.
- Loading a version that is not loaded, for a pinned request, happens at most once per
  ``GATEWAY_PIN_LOAD_INTERVAL_S``; others meanwhile get 503 with Retry-After. A load takes
  seconds of CPU and hundreds of MB: anonymous clients must not be able to make the gateway do
  it on every request.
- A version that failed to load is remembered for ``GATEWAY_FAILED_LOAD_TTL_S`` (its requests
  get 502 with the error at once) instead of being loaded again on every request.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from gateway.errors import UpstreamError

log = logging.getLogger("gateway.embedded")
KEEP_LOADED = 4


@dataclass(eq=False)
class Loaded:
    version: int
    root: Any  # the SavedModel object: it owns the variables the signature reads
    fn: Any  # its serving signature
    pinned: bool = False  # a pinned request (a version or a label) has used it


class LoadedVersions:
    def __init__(
        self,
        open_version: Callable[[int], Loaded],
        pool: Executor,
        load_interval_s: float,
        failed_ttl_s: float,
        keep: int = KEEP_LOADED,
    ) -> None:
        self.open_version = open_version  # blocking: runs in ``pool``
        self.pool = pool
        self.load_interval_s, self.failed_ttl_s, self.keep = load_interval_s, failed_ttl_s, keep
        self.newest: int | None = None
        self._loaded: OrderedDict[int, Loaded] = OrderedDict()  # least recently used first
        self._failed: dict[int, tuple[float, str]] = {}  # version -> (forgotten at, error)
        self._next_pinned_load = 0.0  # monotonic time the next on-demand load may start
        self._lock = asyncio.Lock()

    def __contains__(self, version: int) -> bool:
        return version in self._loaded

    def failed(self, version: int, now: float | None = None) -> str | None:
        """The error of a recent failed load of ``version``, else None."""
        entry = self._failed.get(version)
        if entry is None:
            return None
        if entry[0] <= (time.monotonic() if now is None else now):
            del self._failed[version]
            return None
        return entry[1]

    def loaded_versions(self) -> list[int]:
        return sorted(self._loaded)

    async def get(self, version: int, pinned: bool) -> Loaded:
        """The loaded ``version``, loading it first if allowed (see above)."""
        found = self._loaded.get(version)
        if found is None:
            found = await self._load(version, pinned)
        self._loaded.move_to_end(version)
        found.pinned = found.pinned or pinned
        return found

    async def load_newest(self, version: int) -> bool:
        """Load ``version`` as the new newest one (the poller found it); False if it failed."""
        try:
            await self._load(version, pinned=False)
        except UpstreamError:
            return False
        previous, self.newest = self.newest, version
        if previous is not None and previous != version:
            replaced = self._loaded.get(previous)
            if replaced is not None and not replaced.pinned:
                del self._loaded[previous]  # only unpinned traffic used it: free it now
        return True

    async def _load(self, version: int, pinned: bool) -> Loaded:
        now = time.monotonic()
        error = self.failed(version, now)
        if error is not None:
            retry = math.ceil(self._failed[version][0] - now)
            raise UpstreamError(f"version {version} failed to load: {error}", 502, retry)
        if pinned and version not in self._loaded and now < self._next_pinned_load:
            wait = math.ceil(self._next_pinned_load - now)
            raise UpstreamError(
                f"version {version} is not loaded, and versions are loaded on demand at most "
                f"once every {self.load_interval_s:g} s.",
                503,
                retry_after=max(wait, 1),
            )
        async with self._lock:  # one load at a time: each takes seconds and much memory
            found = self._loaded.get(version)
            if found is not None:
                return found
            if pinned:
                self._next_pinned_load = time.monotonic() + self.load_interval_s
            loop = asyncio.get_running_loop()
            try:
                found = await loop.run_in_executor(self.pool, self.open_version, version)
            except Exception as exc:  # corrupt or half-copied folder: keep serving the others
                text = str(exc).splitlines()[0][:300] if str(exc) else repr(exc)
                self._failed[version] = (time.monotonic() + self.failed_ttl_s, text)
                log.error("version %s failed to load: %s", version, text)
                raise UpstreamError(f"version {version} failed to load: {text}", 502) from None
            self._loaded[version] = found
            self._evict()
            return found

    def _evict(self) -> None:
        while len(self._loaded) > self.keep:
            oldest = next(v for v in self._loaded if v != self.newest)
            del self._loaded[oldest]  # nothing else refers to it: freed by the next collection
            log.info("unloaded version %s", oldest)
