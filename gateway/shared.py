"""A value fetched by one call at a time and kept briefly: concurrent callers share the call in
flight and its answer (or its error), so 300 concurrent ``/api/versions`` make one status call
to TF Serving, not 300 that take the connections the predictions need."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Shared(Generic[T]):
    def __init__(self, fetch: Callable[[], Awaitable[T]], ttl_s: float) -> None:
        self.fetch, self.ttl_s = fetch, ttl_s
        self.value: T | None = None  # the last answer, and when it came
        self.error: Exception | None = None  # the last call's error (value is then older)
        self.checked: float | None = None  # monotonic time of the last call's end
        self._expires = 0.0
        self._inflight: asyncio.Future[T] | None = None

    async def get(self) -> T:
        """The value, fetched anew only when the last answer is older than ``ttl_s``; the
        last call's error is raised again until then."""
        if time.monotonic() < self._expires:
            if self.error is not None:
                raise self.error
            assert self.value is not None
            return self.value
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(self._call())
            # its error is seen even when every caller has gone (no "never retrieved" noise)
            self._inflight.add_done_callback(lambda f: f.cancelled() or f.exception())
        # shielded: a caller that goes away does not cancel the others' call
        return await asyncio.shield(self._inflight)

    async def _call(self) -> T:
        try:
            value = await self.fetch()
        except Exception as exc:
            self.error = exc
            raise
        else:
            self.value, self.error = value, None
            return value
        finally:
            self.checked = time.monotonic()
            self._expires = self.checked + self.ttl_s
            self._inflight = None

    def invalidate(self) -> None:
        self._expires = 0.0
