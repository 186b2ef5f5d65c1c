"""ServerCore's part: resolving requests to servables, labels, and config (re)loads.

The versions themselves live in the table (``table``) and are loaded and unloaded by the poller
(``aspired``). What a config does, as model_servers/server_core.cc has it:

- The first config (start-up) polls at once and loads every aspired version in parallel, then
  waits until, for every model, the newest-first scan finds a version AVAILABLE or END
  (ConnectSourcesWithFastInitialLoad with ServableRequest::Latest), and until every start-up
  load has ended; an END found first fails the start (``N servable(s) did not become
  available``). So with a multi-version policy and a corrupt newest version the server starts
  with the older one; with latest/1 it fails (contract, "Failure behaviour").
- A later config (ReloadConfig, from the polled --model_config_file or HandleReloadConfigRequest)
  is validated, its labels checked against the versions AVAILABLE now, and stored
  (AddModelsViaModelConfigList -> FileSystemStoragePathSource::UpdateConfig): new versions of a
  model already served load at the next file-system poll, after the reload has returned OK
  (whether or not they load). Only for models new in the config does it wait, as at start-up
  but one version at a time, until the scan finds AVAILABLE (OK) or END (``N model(s) did not
  become available``) (WaitUntilModelsAvailable). A removed model's versions are unloaded at the
  next poll (the real source un-aspires them at once; its manager acts when free, too).
- A reloaded config replaces the old one whole; a label may only point at an AVAILABLE version.
"""

from __future__ import annotations

import logging
import threading

from tensorflow_serving.apis import model_pb2
from tensorflow_serving.config import model_server_config_pb2

from . import model_config
from .aspired import AspiredVersions, ManagerSettings
from .errors import Code, ServingError
from .servable import LoadedServable
from .table import Model, State, Version, VersionStatus, VersionTable

_log = logging.getLogger("tfserving_standin.manager")


def _copy_config(
    config: model_server_config_pb2.ModelConfig,
) -> model_server_config_pb2.ModelConfig:
    copy = model_server_config_pb2.ModelConfig()
    copy.CopyFrom(config)
    return copy


def _not_available(what: str, found: dict[str, Version]) -> ServingError | None:
    """WaitUntilModelsAvailable's error for the models whose scan found END, else None."""
    failed = [(name, e) for name, e in sorted(found.items()) if e.state != State.AVAILABLE]
    if not failed:
        return None
    details = "".join(
        f"{{{{name: {name} version: {e.version}}}"
        + (f" due to error: {e.error_code.name}: {e.error_message}" if e.error_code else "")
        + "}, "
        for name, e in failed
    )
    return ServingError(
        Code.UNKNOWN, f"{len(failed)} {what} did not become available: {{{details}}}"
    )


class ServableManager:
    """Owns every model version; thread-safe."""

    def __init__(self, settings: ManagerSettings) -> None:
        self._settings = settings
        self._table = VersionTable()
        self._aspired = AspiredVersions(self._table, settings)
        self._reload_lock = threading.Lock()
        self._labels: dict[str, dict[str, int]] | None = None
        self._config = model_server_config_pb2.ModelServerConfig()
        self._sourced = False  # a model_config_list has been applied (the source exists)

    # ------------------------------------------------------------------ request side

    def resolve(self, spec: model_pb2.ModelSpec) -> LoadedServable:
        """The servable a ModelSpec names (server_core.cc ServableRequestFromModelSpec)."""
        name = spec.name
        if not name:
            raise ServingError(Code.INVALID_ARGUMENT, "ModelSpec has no name specified.")
        choice = spec.WhichOneof("version_choice")
        with self._table.lock:
            version: int | None = None
            if choice == "version":
                version = int(spec.version.value)
            elif choice == "version_label":
                version = self._version_for_label(name, spec.version_label)
            model = self._table.models.get(name)
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
        # Called with the table's lock held (server_core.cc GetModelVersionForLabel).
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
        with self._table.lock:
            model = self._table.models.get(name)
            entries = sorted(model.versions.values(), key=lambda e: -e.version) if model else []
            return [
                VersionStatus(e.version, e.state, e.error_code, e.error_message) for e in entries
            ]

    # ------------------------------------------------------------------ config side

    def reload_config(self, config: model_server_config_pb2.ModelServerConfig) -> None:
        """ServerCore::ReloadConfig; the first call is the start-up config. Raises ServingError.

        Labels are checked before any model changes (server_core.cc order), so a label error
        leaves models, policies and labels as they were; only the stored config (used by the
        next platform check) is replaced, as in the real server.
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
            with self._table.lock:
                old = self._config
            if old.HasField("model_config_list"):
                model_config.validate_no_models_change_platforms(old.model_config_list, new_list)
            with self._table.lock:
                self._config = model_server_config_pb2.ModelServerConfig()
                self._config.CopyFrom(config)
            self._update_labels(new_list)
            model_config.check_platforms_supported(new_list)
            with self._table.lock:
                since = self._table.generation  # a fresh ServableStateMonitor
            new_models = self._update_source(new_list)
            if not self._sourced:
                self._sourced = True
                self._start(new_models, since)
            else:
                self._wait_until_available(new_models, since)

    def _update_labels(self, config_list: model_server_config_pb2.ModelConfigList) -> None:
        allow_unavailable = self._settings.allow_version_labels_for_unavailable_models
        with self._table.lock:
            new_labels: dict[str, dict[str, int]] = {}
            old_labels = self._labels or {}
            for model in config_list.config:
                known = self._table.models.get(model.name)
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

    def _update_source(self, config_list: model_server_config_pb2.ModelConfigList) -> set[str]:
        """FileSystemStoragePathSource::UpdateConfig: install the per-model configs (polled
        from now on, nothing loaded here); returns the names of models new to the source."""
        with self._table.lock:
            wanted = {model.name: model for model in config_list.config}
            new_models: set[str] = set()
            for name, model in wanted.items():
                current = self._table.models.get(name)
                if current is None:
                    self._table.models[name] = Model(name, _copy_config(model), {})
                    new_models.add(name)
                else:
                    if current.config is None:
                        new_models.add(name)
                    current.config = _copy_config(model)
            for name, current in self._table.models.items():
                if name not in wanted:
                    current.config = None  # its versions get unloaded by the next poll
        return new_models

    def _start(self, names: set[str], since: int) -> None:
        """load_servables_fast.cc ConnectSourcesWithFastInitialLoad: poll now, load in
        parallel, wait for the scan of every model, then for every start-up load."""
        self._aspired.initial_poll()
        try:
            found = self._wait_for_scan(names, since)
        finally:
            self._aspired.end_initial_loads()
        error = _not_available("servable(s)", found)
        if error is not None:
            raise error

    def _wait_until_available(self, names: set[str], since: int) -> None:
        """server_core.cc WaitUntilModelsAvailable, for the models new in a reloaded config."""
        if names:
            error = _not_available("model(s)", self._wait_for_scan(names, since))
            if error is not None:
                raise error

    def _wait_for_scan(self, names: set[str], since: int) -> dict[str, Version]:
        """Block until table.scan succeeds for ``names`` (forever if a model never gets a
        version: the real server waits without a timeout; contract, "Failure behaviour")."""
        with self._table.lock:
            while True:
                done, found = self._table.scan(names, since)
                if done or self._aspired.stopped:
                    return found
                self._table.changed.wait(timeout=0.5)

    # ------------------------------------------------------------------ lifetime

    def start_polling(self) -> None:
        """Start the background poll thread (not for a poll interval <= 0: poll once / never)."""
        self._aspired.start_polling()

    def stop(self) -> None:
        """Stop polling (loads in progress finish)."""
        self._aspired.stop()
