"""Clients that were told to come back later, and until when: the pacing of retry floods.

A refusal (503 with Retry-After) is cheap, but a client that ignores Retry-After and asks again
at once turns cheap refusals into thousands a second, which take the CPU the model needs: 256
such connections once got 10 designs served in 15 s. So the gateway remembers, per client
address, until when it asked each client to wait. A client that comes back earlier is not
refused at once: its request is held until that moment (plus a little jitter, so that the
connections of one client do not all come back in the same instant) and only then admitted or
refused. A client that honours Retry-After never waits here; one that does not gets at most
one answer per Retry-After per connection, however fast it asks.
"""

from __future__ import annotations

import random
import time
from collections import OrderedDict

MAX_CLIENTS = 1 << 16  # remembered at once; the oldest promises go first past this


class Standing:
    def __init__(self, retry_s: float, jitter_s: float = 0.5) -> None:
        self.retry_s, self.jitter_s = retry_s, jitter_s
        self._until: OrderedDict[str, float] = OrderedDict()  # client -> retry_at, in order set
        self._rng = random.Random()

    def hold_s(self, client: str, now: float | None = None) -> float:
        """How long to hold a request of ``client`` before deciding on it (0: not early)."""
        now = time.monotonic() if now is None else now
        self._forget_expired(now)
        until = self._until.get(client)
        if until is None or until <= now:
            return 0.0
        return until - now + self._rng.uniform(0, self.jitter_s)

    def refused(self, client: str, now: float | None = None) -> None:
        """``client`` was just told to retry after ``retry_s``."""
        now = time.monotonic() if now is None else now
        self._until.pop(client, None)
        self._until[client] = now + self.retry_s
        while len(self._until) > MAX_CLIENTS:
            self._until.popitem(last=False)

    def _forget_expired(self, now: float) -> None:
        # entries are in the order they were set, and all last retry_s: the front expires first
        while self._until:
            client, until = next(iter(self._until.items()))
            if until > now:
                return
            del self._until[client]

    def __len__(self) -> int:
        return len(self._until)
