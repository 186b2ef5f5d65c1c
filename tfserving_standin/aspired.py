"""Which versions to serve, and loading / unloading them: FileSystemStoragePathSource +
AspiredVersionsManager with the AvailabilityPreservingPolicy of the real server.

- Every ``--file_system_poll_wait_seconds`` a background thread lists each model's base path and
  applies its version policy (sources/storage_path/file_system_storage_path_source.cc
  PollFileSystemAndInvokeCallback); the result is the set of *aspired* versions. A config
  reload only replaces the per-model configs: the next poll acts on them.
- One action at a time, as core/availability_preserving_policy.cc GetNextAction decides it:
  unload the lowest un-aspired AVAILABLE version if that cannot leave the model without a
  serving version, otherwise load the highest new aspired version. So a new version is loaded
  before the old one is unloaded, and a version that fails to load (END with a non-OK status
  after the retries, core/loader_harness.cc Load) leaves the previous version serving.
- After start-up loads run one after another in the polling thread (server.cc leaves
  --num_load_threads at 0: "loads are performed serially in the manager's main work loop").
  During start-up they run in parallel (core/load_servables_fast.cc: num_initial_load_threads
  threads), and start-up ends by waiting for every one of them (BasicManager::SetNumLoadThreads
  destroys the initial thread pool, which waits for the work it was given).

Locking: the table's lock is held only for short sections, never across a load; ``work_lock``
serialises polls and inline loads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from . import versions
from .batching import SharedBatchScheduler
from .errors import Code, ServingError
from .servable import LoadedServable, error_from_exception
from .table import State, VersionTable
from .warmup import run_warmup

_log = logging.getLogger("tfserving_standin.manager")


@dataclass(frozen=True)
class ManagerSettings:
    """The flags that shape loading and polling."""

    file_system_poll_wait_seconds: int = 1
    max_num_load_retries: int = 5
    load_retry_interval_s: float = 60.0
    enable_model_warmup: bool = True
    allow_version_labels_for_unavailable_models: bool = False
    batching: SharedBatchScheduler | None = None  # --enable_batching
    # stand-in only: fault injection (a slow model), given the run's timeout
    on_run: Callable[[float | None], None] | None = None


class AspiredVersions:
    """Polls the base paths and loads / unloads versions into ``table``."""

    def __init__(self, table: VersionTable, settings: ManagerSettings) -> None:
        self._table = table
        self._settings = settings
        self.work_lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        # Until start-up ends, loads go to threads of their own (the initial load thread pool).
        self._parallel = True
        self._initial_loads: list[threading.Thread] = []

    # ------------------------------------------------------------------ start-up

    def initial_poll(self) -> None:
        """The source's first poll, right at start-up; loads run in parallel until
        end_initial_loads (load_servables_fast.cc ConnectSourcesWithFastInitialLoad)."""
        with self.work_lock:
            # A negative interval disables polling entirely (main.cc flag help).
            if self._settings.file_system_poll_wait_seconds >= 0:
                self.poll_all()

    def end_initial_loads(self) -> None:
        """Back to one load at a time, after waiting for every start-up load (retries
        included) to end: SetNumLoadThreads(0) destroys the initial pool, which drains it."""
        with self.work_lock, self._table.lock:
            self._parallel = False
            started = list(self._initial_loads)
            self._initial_loads.clear()
        for thread in started:
            thread.join()

    # ------------------------------------------------------------------ polling

    def start_polling(self) -> None:
        """Start the background poll thread (not for a poll interval <= 0: poll once / never)."""
        if self._settings.file_system_poll_wait_seconds <= 0 or self._poller is not None:
            return
        self._poller = threading.Thread(target=self._poll_loop, name="standin-poll", daemon=True)
        self._poller.start()

    def stop(self) -> None:
        """Stop polling and retrying (loads in progress finish)."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _poll_loop(self) -> None:
        interval = float(self._settings.file_system_poll_wait_seconds)
        while not self._stop.wait(interval):
            try:
                with self.work_lock:
                    self.poll_all()
            except Exception:  # keep polling whatever happens, like the real source
                _log.exception("poll failed")

    def poll_all(self) -> None:
        """One poll of every model; call with ``work_lock`` held."""
        with self._table.lock:
            names = sorted(self._table.models)
        for name in names:
            self._poll_model(name)

    def _poll_model(self, name: str) -> None:
        with self._table.lock:
            config = self._table.models[name].config
        found: dict[int, str] = {}
        if config is not None:
            try:
                found = versions.discover_versions(name, config.base_path)
            except ServingError as exc:
                _log.error("FileSystemStoragePathSource: %s", exc.message)
                return
            if not found:
                versions.log_no_versions(name, config.base_path)
        aspired = versions.aspired_versions(config.model_version_policy, found) if config else set()
        self._reconcile(name, aspired, found)

    def _reconcile(self, name: str, aspired: set[int], paths: dict[int, str]) -> None:
        """Apply AvailabilityPreservingPolicy actions until none is left."""
        while not self._stop.is_set():
            with self._table.lock:
                table = self._table.models[name].versions
                for entry in table.values():
                    if entry.version not in aspired:
                        entry.failed_while_aspired = False
                unaspired_serving = sorted(
                    v for v, e in table.items() if v not in aspired and e.state == State.AVAILABLE
                )
                aspired_serving = any(
                    v in table and table[v].state == State.AVAILABLE for v in aspired
                )
                new = [
                    v
                    for v in aspired
                    if v not in table
                    or (table[v].state == State.END and not table[v].failed_while_aspired)
                ]
                parallel = self._parallel
            if unaspired_serving and (not aspired or aspired_serving or len(unaspired_serving) > 1):
                self._unload(name, unaspired_serving[0])
            elif new:
                version = max(new)
                self._start_load(name, version)
                if parallel:
                    thread = threading.Thread(
                        target=self._load,
                        args=(name, version, paths[version]),
                        name=f"standin-load-{name}-{version}",
                        daemon=True,
                    )
                    with self._table.lock:
                        self._initial_loads.append(thread)
                    thread.start()
                else:
                    self._load(name, version, paths[version])
            else:
                return

    # ------------------------------------------------------------------ load / unload

    def _start_load(self, name: str, version: int) -> None:
        with self._table.lock:
            self._table.set_state(
                name, version, State.START, error_code=Code.OK, error_message="", servable=None
            )
            self._table.set_state(name, version, State.LOADING)

    def _load(self, name: str, version: int, path: str) -> None:
        """LoaderHarness::Load: try, then retry up to --max_num_load_retries times."""
        attempts = 1 + max(self._settings.max_num_load_retries, 0)
        error = ServingError(Code.UNKNOWN, "load not attempted")
        for attempt in range(attempts):
            if attempt and self._stop.wait(self._settings.load_retry_interval_s):
                break
            try:
                servable = LoadedServable.load(
                    name, version, path, self._settings.batching, self._settings.on_run
                )
                if self._settings.enable_model_warmup:
                    run_warmup(servable)
            except Exception as exc:
                error = error_from_exception(exc)
                _log.error(
                    "Loading servable: {name: %s version: %d} failed (attempt %d/%d): %s",
                    name, version, attempt + 1, attempts, error,
                )  # fmt: skip
                continue
            with self._table.lock:
                self._table.set_state(name, version, State.AVAILABLE, servable=servable)
            _log.info("Successfully loaded servable version {name: %s version: %d}", name, version)
            return
        with self._table.lock:
            self._table.set_state(
                name,
                version,
                State.END,
                error_code=error.code,
                error_message=error.message,
                failed_while_aspired=True,
            )
        _log.error("Servable {name: %s version: %d} is END: %s", name, version, error)

    def _unload(self, name: str, version: int) -> None:
        with self._table.lock:
            self._table.set_state(name, version, State.UNLOADING)
            # In-flight requests keep their own reference; dropping ours is the unload.
            self._table.set_state(name, version, State.END, servable=None)
        _log.info("Unloaded servable version {name: %s version: %d}", name, version)
