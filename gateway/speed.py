"""How fast the model answers right now, for admission control (gateway/batching.py).

The estimate follows the model as it slows down and as it fails, instead of trusting its best
past moments (the best of the last 16 calls, as before, stayed optimistic for as long as a slow
or failing upstream took to finish 16 calls, and never counted a failed one):

- ``rate``: images per second, a moving average over finished calls (a call that failed after
  taking longer than expected counts too: it was at least that slow);
- a call still running that has already taken eight times what the average promised is
  evidence by itself: its remaining time is taken to be as long as it has run so far (once a
  call is that late, how long it has run is the best guess of how long it still needs), so
  admission reacts while the first slow call is still running, not after it. Eight times, not
  less: on a busy machine (2 cores shared with training) a call sometimes takes four times its
  usual time, and the average follows that by itself; it must not refuse anyone;
- ``floor_s``: the duration of the last call that finished that late, for as long again. A
  model server whose latency, not its work, has grown (every call 5 s, whatever its size)
  would otherwise look fast again to the next small call's estimate; each late call renews
  it, a call on time ends it, and on its own it lapses after as long as that call took (a
  busy machine has single calls that late, for reasons that do not last);
- ``failing``: the last call failed. Until one succeeds, admission lets a single request at a
  time try the model (a probe) and refuses the rest at once.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

ALPHA = 0.3  # weight of the newest call: about the last five calls count
LATE = 8.0  # a call this many times slower than expected is evidence of a slower model
WARM_CALLS = 3  # calls seen before one may count as late


class Speed:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.rate: float | None = None  # images per second
        self.floor_s = 0.0  # no call is expected to take less (see above)
        self._floor_until = 0.0  # when it lapses (clock time)
        self.failing = False
        self._running: dict[int, tuple[float, int]] = {}  # call -> (started, images)
        self._finished = 0  # calls observed: a cold model's first calls say little
        self._ids = itertools.count()

    def expected_s(self, images: int) -> float:
        """Seconds a call of ``images`` takes now (0 while nothing is known)."""
        floor = self.floor_s if self.clock() < self._floor_until else 0.0
        return max(self._at_rate(images), floor)

    def _at_rate(self, images: int) -> float:
        return images / self.rate if self.rate else 0.0

    def started(self, images: int) -> int:
        """Note a model call starting; returns its token for ``finished``."""
        call = next(self._ids)
        self._running[call] = (self.clock(), images)
        return call

    def finished(self, call: int, ok: bool) -> None:
        began, images = self._running.pop(call)
        seconds = self.clock() - began
        promised = self._at_rate(images)
        self._finished += 1
        if self.trusted and seconds > LATE * promised:
            # late: the server's latency may have grown; believed for as long as it took
            self.floor_s, self._floor_until = seconds, self.clock() + seconds
        elif seconds <= 2 * promised:
            self.floor_s = 0.0  # on time again
        if seconds > 0 and (ok or seconds > promised):
            self._observe(images / seconds)
        self.failing = not ok

    def forget(self, call: int) -> None:
        """A call that ended in a way that says nothing about the model's speed."""
        self._running.pop(call, None)

    def observe(self, images: int, seconds: float) -> None:
        """A finished call's figures, as if it had been timed here."""
        self._finished += 1
        if seconds > 0:
            self._observe(images / seconds)

    def _observe(self, rate: float) -> None:
        self.rate = rate if self.rate is None else (1 - ALPHA) * self.rate + ALPHA * rate

    @property
    def trusted(self) -> bool:
        """Whether enough calls were seen to call one late: the first calls of a cold model
        server (kernels compiled, caches filled) are slow for reasons that do not last."""
        return self.rate is not None and self._finished >= WARM_CALLS

    @property
    def running(self) -> int:
        return len(self._running)

    def remaining_s(self) -> float:
        """How long until the calls running now are done, as far as can be told."""
        now = self.clock()
        longest = 0.0
        for began, images in self._running.values():
            elapsed, expected = now - began, self.expected_s(images)
            # late by a factor of eight or more: it will take about as long again as it has
            # taken so far (while nothing is known, nobody is refused on a guess)
            late = self.trusted and elapsed > LATE * expected
            left = elapsed if late else expected - elapsed
            longest = max(longest, left)
        return longest
