"""STAND-IN ONLY: latency and error injection for gateway tests. Off unless configured.

The real TF Serving has nothing like this, so tests that use it cannot run against a real server.
Errors apply to Predict (REST and gRPC) after the model and signature were resolved and the
inputs validated; the delay applies right where the model runs (inside the batch thread when
batching is on), so it counts against ``--rest_api_timeout_in_ms`` and client deadlines, and
fills the batch queue, exactly like a slow model.

Configuration, read at start-up from the environment:

- ``STANDIN_PREDICT_DELAY_MS=250``: sleep this long before every predict.
- ``STANDIN_PREDICT_ERROR=UNAVAILABLE`` or ``UNAVAILABLE:some message``: fail predicts with this
  TF error code (REST maps it to HTTP as in the contract, e.g. UNAVAILABLE -> 503).
- ``STANDIN_PREDICT_ERROR_COUNT=2``: fail only the first N predicts (default: all of them).
- ``STANDIN_FAULTS_FILE=/path/faults.json``: a JSON object ``{"delay_ms": 0, "error": "CODE[:msg]",
  "error_count": N}`` re-read whenever the file changes; while the file exists it replaces the
  environment values, so a running stand-in can be reconfigured (``StandIn.set_faults``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import TIMED_OUT, Code, ServingError, code_from_name

ENV_DELAY_MS = "STANDIN_PREDICT_DELAY_MS"
ENV_ERROR = "STANDIN_PREDICT_ERROR"
ENV_ERROR_COUNT = "STANDIN_PREDICT_ERROR_COUNT"
ENV_FAULTS_FILE = "STANDIN_FAULTS_FILE"

_log = logging.getLogger("tfserving_standin.faults")


@dataclass(frozen=True)
class FaultSpec:
    """What to inject; the default injects nothing."""

    delay_ms: int = 0
    error_code: Code | None = None
    error_message: str = "injected by the TF Serving stand-in"
    error_count: int | None = None  # None: every request

    @classmethod
    def parse(cls, delay_ms: object, error: object, error_count: object) -> FaultSpec:
        """Build from loosely typed values (env strings or JSON); ValueError when malformed."""
        code: Code | None = None
        text = cls.error_message
        if error:
            name, _, message = str(error).partition(":")
            code = code_from_name(name)
            text = message or text
        count = None if error_count in (None, "") else int(str(error_count))
        delay = int(str(delay_ms)) if delay_ms not in (None, "") else 0
        return cls(delay_ms=delay, error_code=code, error_message=text, error_count=count)


def _from_env(env: Mapping[str, str]) -> FaultSpec:
    return FaultSpec.parse(env.get(ENV_DELAY_MS), env.get(ENV_ERROR), env.get(ENV_ERROR_COUNT))


class Faults:
    """Thread-safe injector consulted before every predict and every model run."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self._base = _from_env(env)
        self._file = env.get(ENV_FAULTS_FILE, "")
        self._file_stamp: tuple[int, int, int] | None = None
        self._active = self._base
        self._failed = 0
        self._lock = threading.Lock()
        if self._base != FaultSpec():
            _log.warning("stand-in fault injection from the environment: %s", self._base)
        if self._file:
            _log.info("stand-in fault injection file (re-read on change): %s", self._file)

    def _refresh_from_file(self) -> None:
        # Called with the lock held. A changed file resets the error counter.
        try:
            stat = os.stat(self._file)
        except OSError:
            stamp = None
        else:
            stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if stamp == self._file_stamp:
            return
        self._file_stamp = stamp
        self._failed = 0
        if stamp is None:
            self._active = self._base
            return
        try:
            with open(self._file, encoding="utf-8") as handle:
                data = json.load(handle)
            self._active = FaultSpec.parse(
                data.get("delay_ms"), data.get("error"), data.get("error_count")
            )
        except (OSError, ValueError, AttributeError) as exc:
            _log.error("ignoring unreadable faults file %s: %s", self._file, exc)
            self._active = self._base

    def check_error(self) -> None:
        """Raise the injected error, if any (before the request is queued or run)."""
        with self._lock:
            if self._file:
                self._refresh_from_file()
            spec = self._active
            fail = spec.error_code is not None and (
                spec.error_count is None or self._failed < spec.error_count
            )
            if fail:
                self._failed += 1
        if fail and spec.error_code is not None:
            raise ServingError(spec.error_code, spec.error_message)

    def delay(self, timeout_s: float | None = None) -> None:
        """Sleep the injected delay where the model runs (once per executed batch when
        batching is on, so a slow model also fills the batch queue as a real one would).

        With ``timeout_s`` (the session run's timeout) the sleep ends there with
        DEADLINE_EXCEEDED, as TensorFlow cancels a run at its next op past the timeout."""
        with self._lock:
            if self._file:
                self._refresh_from_file()
            delay_ms = self._active.delay_ms
        if delay_ms <= 0:
            return
        if timeout_s is not None and timeout_s < delay_ms / 1000.0:
            time.sleep(max(timeout_s, 0.0))
            raise ServingError(Code.DEADLINE_EXCEEDED, TIMED_OUT)
        time.sleep(delay_ms / 1000.0)
