"""MODEL_BASE_PATH as the gateway reads it: off the event loop, with a deadline, and failing
closed.

Whether the base path holds a version decides whether a miss trains a new one, so "cannot
read it" must never look like "empty": a missing mount, an NFS fault or a permission error with
TF Serving unreachable used to start training. ``versions()`` raises ``BasePathError`` instead
(answered 503 with Retry-After, logged once per outage, and counted in
``gateway_base_path_errors_total`` beside the ``gateway_base_path_readable`` gauge to alert on).
The listing runs in a thread of its own with the status deadline: a hung mount blocks that
thread, never the event loop (``/healthz`` stays quick), and callers get the error when the
deadline passes. Listings are shared for a moment between concurrent callers (gateway/shared.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fashion_core.versions import BasePathError, scan_versions
from gateway.shared import Shared

log = logging.getLogger("gateway")


class ModelFolder:
    def __init__(
        self,
        base: Path,
        timeout_s: float,
        ttl_s: float,
        on_read: Callable[[bool], None] = lambda readable: None,
        scan: Callable[[Path], list[int]] = scan_versions,
    ) -> None:
        self.base, self.timeout_s, self.scan = base, timeout_s, scan
        self.on_read = on_read  # told after every listing whether the folder could be read
        self.readable: bool | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="model-folder")
        self._listing: Shared[list[int]] = Shared(self._scan, ttl_s)

    async def versions(self) -> list[int]:
        """Version numbers under the base path, ascending; raises BasePathError."""
        return await self._listing.get()

    def fresh(self) -> None:
        """The next ``versions()`` reads the folder again (a version was just published)."""
        self._listing.invalidate()

    async def _scan(self) -> list[int]:
        loop = asyncio.get_running_loop()
        try:
            found = await asyncio.wait_for(
                loop.run_in_executor(self._pool, self.scan, self.base), self.timeout_s
            )
        except TimeoutError:
            self._note(False, f"listing {self.base} took longer than {self.timeout_s:g}s")
            raise BasePathError(
                f"the model folder {self.base} did not answer within {self.timeout_s:g}s"
            ) from None
        except BasePathError as exc:
            self._note(False, str(exc))
            raise
        self._note(True, "")
        return found

    def _note(self, readable: bool, why: str) -> None:
        if readable != self.readable:
            if readable:
                log.info("the model folder %s can be read again", self.base)
            else:  # once per outage: every request meanwhile gets the same 503
                log.error("the model folder cannot be read: %s", why)
        self.readable = readable
        self.on_read(readable)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
