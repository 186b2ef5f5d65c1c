"""The version table: discovery polling, load/unload decisions, labels and config reloads.

This plays ServerCore + FileSystemStoragePathSource + AspiredVersionsManager with the
AvailabilityPreservingPolicy of the real server, simplified to one worker:

- every ``--file_system_poll_wait_seconds`` a background thread lists each model's base path and
  applies its version policy; the result is the set of *aspired* versions;
- one action at a time, as the availability-preserving policy decides it: unload the lowest
  un-aspired AVAILABLE version if that cannot leave the model without a serving version, otherwise
  load the highest new aspired version. So a new version is loaded before the old one is unloaded,
  and a version that fails to load (END with a non-OK status after the retries) leaves the previous
  version serving (contract, "Failure behaviour");
- labels are validated against the table (contract: a label may only point at an AVAILABLE
  version) and a reloaded config replaces the previous one whole.

Locking: ``_table_lock`` guards the table, labels and config and is held only for short sections,
never across a load; ``_work_lock`` serialises polls, loads and config changes. Request threads
only take ``_table_lock`` to pick a servable and then run it without any lock.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from tensorflow_serving.apis import model_pb2
from tensorflow_serving.config import model_server_config_pb2

from . import model_config, versions
from .batching import SharedBatchScheduler
from .errors import Code, ServingError
from .servable import LoadedServable, error_from_exception
from .warmup import run_warmup

_log = logging.getLogger("tfserving_standin.manager")


class State(enum.IntEnum):
    """``ModelVersionStatus.State`` (apis/get_model_status.proto), same numbers."""

    UNKNOWN = 0
    START = 10
    LOADING = 20
    AVAILABLE = 30
    UNLOADING = 40
    END = 50


@dataclass(frozen=True)
class VersionStatus:
    """One row of a model's status, as GetModelStatus reports it."""

    version: int
    state: State
    error_code: Code
    error_message: str


@dataclass(frozen=True)
class ManagerSettings:
    """The flags that shape loading and polling."""

    file_system_poll_wait_seconds: int = 1
    max_num_load_retries: int = 5
    load_retry_interval_s: float = 60.0
    enable_model_warmup: bool = True
    allow_version_labels_for_unavailable_models: bool = False
    batching: SharedBatchScheduler | None = None  # --enable_batching
    on_run: Callable[[], None] | None = None  # stand-in only: fault injection (a slow model)


@dataclass
class _Version:
    version: int
    state: State
    generation: int
    error_code: Code = Code.OK
    error_message: str = ""
    servable: LoadedServable | None = None
    # A failed load is not retried while the version stays aspired (as in the real manager).
    failed_while_aspired: bool = False


@dataclass
class _Model:
    name: str
    config: model_server_config_pb2.ModelConfig | None  # None once removed from the config
    versions: dict[int, _Version]


def _copy_config(
    config: model_server_config_pb2.ModelConfig,
) -> model_server_config_pb2.ModelConfig:
    copy = model_server_config_pb2.ModelConfig()
    copy.CopyFrom(config)
    return copy


class ServableManager:
    """Owns every model version; thread-safe."""

    def __init__(self, settings: ManagerSettings) -> None:
        self._settings = settings
        self._table_lock = threading.Lock()
        self._changed = threading.Condition(self._table_lock)
        self._work_lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self._models: dict[str, _Model] = {}
        self._labels: dict[str, dict[str, int]] | None = None
        self._config = model_server_config_pb2.ModelServerConfig()
        self._generation = 0
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    # ------------------------------------------------------------------ request side

    def resolve(self, spec: model_pb2.ModelSpec) -> LoadedServable:
        """The servable a ModelSpec names (server_core.cc ServableRequestFromModelSpec)."""
        name = spec.name
        if not name:
            raise ServingError(Code.INVALID_ARGUMENT, "ModelSpec has no name specified.")
        choice = spec.WhichOneof("version_choice")
        with self._table_lock:
            version: int | None = None
            if choice == "version":
                version = int(spec.version.value)
            elif choice == "version_label":
                version = self._version_for_label(name, spec.version_label)
            model = self._models.get(name)
            entries = list(model.versions.values()) if model else []
            if version is None:
                available = [e for e in entries if e.state == State.AVAILABLE]
                best = max(available, key=lambda e: e.version, default=None)
                request = f"Latest({name})"
            else:
                found = [e for e in entries if e.version == version]
                best = found[0] if found and found[0].state == State.AVAILABLE else None
                request = f"Specific({name}, {version})"
            if best is None or best.servable is None:
                raise ServingError(Code.NOT_FOUND, f"Servable not found for request: {request}")
            return best.servable

    def _version_for_label(self, name: str, label: str) -> int:
        # Called with _table_lock held (server_core.cc GetModelVersionForLabel).
        if self._labels is None:
            raise ServingError(Code.UNAVAILABLE, f"Model labels does not init yet.{label}")
        version = self._labels.get(name, {}).get(label)
        if version is None:
            raise ServingError(
                Code.INVALID_ARGUMENT, f"Unrecognized servable version label: {label}"
            )
        return version

    def version_states(self, name: str) -> list[VersionStatus]:
        """Every version the model ever had, newest first (contract, "Status body")."""
        with self._table_lock:
            model = self._models.get(name)
            entries = sorted(model.versions.values(), key=lambda e: -e.version) if model else []
            return [
                VersionStatus(e.version, e.state, e.error_code, e.error_message) for e in entries
            ]

    # ------------------------------------------------------------------ config side

    def reload_config(self, config: model_server_config_pb2.ModelServerConfig) -> None:
        """ServerCore::ReloadConfig: validate, set labels, apply, wait for new models.

        The first call is the start-up config. Raises ServingError. Labels are checked before any
        model changes (server_core.cc order), so a label error leaves models, policies and labels
        as they were; only the stored config (used by the next platform check) is replaced, as in
        the real server.
        """
        with self._reload_lock:
            kind = config.WhichOneof("config")
            if kind is None:
                _log.info("Taking no action for empty config.")
                return
            if kind != "model_config_list":
                raise ServingError(
                    Code.UNIMPLEMENTED, "stand-in: only model_config_list configs are supported"
                )
            new_list = config.model_config_list
            model_config.validate_model_config_list(new_list)
            with self._table_lock:
                old = self._config
            if old.HasField("model_config_list"):
                model_config.validate_no_models_change_platforms(old.model_config_list, new_list)
            with self._table_lock:
                self._config = model_server_config_pb2.ModelServerConfig()
                self._config.CopyFrom(config)
            self._update_labels(new_list)
            model_config.check_platforms_supported(new_list)
            with self._table_lock:
                start_generation = self._generation
            new_models = self._apply(new_list)
            self._wait_until_available(new_models, start_generation)

    def _update_labels(self, config_list: model_server_config_pb2.ModelConfigList) -> None:
        allow_unavailable = self._settings.allow_version_labels_for_unavailable_models
        with self._table_lock:
            new_labels: dict[str, dict[str, int]] = {}
            old_labels = self._labels or {}
            for model in config_list.config:
                known = self._models.get(model.name)
                for label, version in model.version_labels.items():
                    existing = old_labels.get(model.name, {}).get(label)
                    # The flag only covers new labels, not moving an existing one (contract).
                    allowed = allow_unavailable and (existing is None or existing == version)
                    entry = known.versions.get(version) if known else None
                    if not allowed and (entry is None or entry.state != State.AVAILABLE):
                        raise ServingError(
                            Code.FAILED_PRECONDITION,
                            f"Request to assign label to version {version} of model "
                            f"{model.name}, which is not currently available for inference",
                        )
                    new_labels.setdefault(model.name, {})[label] = int(version)
            self._labels = new_labels

    def _apply(self, config_list: model_server_config_pb2.ModelConfigList) -> set[str]:
        """Install the per-model configs and poll once; returns the names of new models."""
        with self._work_lock:
            with self._table_lock:
                wanted = {model.name: model for model in config_list.config}
                new_models: set[str] = set()
                for name, model in wanted.items():
                    current = self._models.get(name)
                    if current is None:
                        self._models[name] = _Model(name, _copy_config(model), {})
                        new_models.add(name)
                    else:
                        if current.config is None:
                            new_models.add(name)
                        current.config = _copy_config(model)
                for name, current in self._models.items():
                    if name not in wanted:
                        current.config = None  # its versions get unloaded by the poll below
            # A negative poll interval disables polling entirely (main.cc flag help).
            if self._settings.file_system_poll_wait_seconds >= 0:
                self._poll_all()
        return new_models

    def _wait_until_available(self, names: set[str], start_generation: int) -> None:
        """Block until each model's latest version is AVAILABLE or END (server_core.cc).

        A model with no version yet keeps the caller waiting, forever if none ever appears:
        that is how the real server behaves at start-up (contract, "Failure behaviour").
        """
        if not names:
            return
        with self._table_lock:
            while True:
                pending = False
                failed: list[tuple[str, _Version]] = []
                for name in sorted(names):
                    fresh = [
                        e
                        for e in self._models[name].versions.values()
                        if e.generation > start_generation
                    ]
                    latest = max(fresh, key=lambda e: e.version, default=None)
                    if latest is None or latest.state not in (State.AVAILABLE, State.END):
                        pending = True
                    elif latest.state == State.END:
                        failed.append((name, latest))
                if not pending:
                    break
                self._changed.wait(timeout=0.5)
        if failed:
            details = "".join(
                f"{{{{name: {name} version: {e.version}}}"
                + (f" due to error: {e.error_code.name}: {e.error_message}" if e.error_code else "")
                + "}, "
                for name, e in failed
            )
            raise ServingError(
                Code.UNKNOWN, f"{len(failed)} model(s) did not become available: {{{details}}}"
            )

    # ------------------------------------------------------------------ polling

    def start_polling(self) -> None:
        """Start the background poll thread (not for a poll interval <= 0: poll once / never)."""
        if self._settings.file_system_poll_wait_seconds <= 0 or self._poller is not None:
            return
        self._poller = threading.Thread(target=self._poll_loop, name="standin-poll", daemon=True)
        self._poller.start()

    def stop(self) -> None:
        """Stop polling (loads in progress finish)."""
        self._stop.set()

    def _poll_loop(self) -> None:
        interval = float(self._settings.file_system_poll_wait_seconds)
        while not self._stop.wait(interval):
            try:
                with self._work_lock:
                    self._poll_all()
            except Exception:  # keep polling whatever happens, like the real source
                _log.exception("poll failed")

    def _poll_all(self) -> None:
        # Called with _work_lock held.
        with self._table_lock:
            names = sorted(self._models)
        for name in names:
            self._poll_model(name)

    def _poll_model(self, name: str) -> None:
        with self._table_lock:
            config = self._models[name].config
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
            with self._table_lock:
                table = self._models[name].versions
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
            if unaspired_serving and (not aspired or aspired_serving or len(unaspired_serving) > 1):
                self._unload(name, unaspired_serving[0])
            elif new:
                version = max(new)
                self._load(name, version, paths[version])
            else:
                return

    def _set_state(self, name: str, version: int, state: State, **fields: object) -> _Version:
        # Called with _table_lock held.
        self._generation += 1
        table = self._models[name].versions
        entry = table.get(version)
        if entry is None:
            entry = table[version] = _Version(version, state, self._generation)
        entry.state = state
        entry.generation = self._generation
        for key, value in fields.items():
            setattr(entry, key, value)
        self._changed.notify_all()
        return entry

    def _load(self, name: str, version: int, path: str) -> None:
        with self._table_lock:
            self._set_state(
                name, version, State.START, error_code=Code.OK, error_message="", servable=None
            )
            self._set_state(name, version, State.LOADING)
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
            with self._table_lock:
                self._set_state(name, version, State.AVAILABLE, servable=servable)
            _log.info("Successfully loaded servable version {name: %s version: %d}", name, version)
            return
        with self._table_lock:
            self._set_state(
                name,
                version,
                State.END,
                error_code=error.code,
                error_message=error.message,
                failed_while_aspired=True,
            )

    def _unload(self, name: str, version: int) -> None:
        with self._table_lock:
            self._set_state(name, version, State.UNLOADING)
            # In-flight requests keep their own reference; dropping ours is the unload.
            self._set_state(name, version, State.END, servable=None)
        _log.info("Unloaded servable version {name: %s version: %d}", name, version)
