"""The version table: every version of every model the server was ever asked to serve.

One lock guards it; ``changed`` is notified on every state change, so a waiter (start-up, a
reload that adds a model) can block until a condition holds. Each change gets a generation
number, which plays the role of ServableStateMonitor's event order: a "fresh" monitor
(server_core.cc creates one per reload) sees only versions whose generation is newer than it.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass

from tensorflow_serving.config import model_server_config_pb2

from .errors import Code
from .servable import LoadedServable


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


@dataclass
class Version:
    version: int
    state: State
    generation: int
    error_code: Code = Code.OK
    error_message: str = ""
    servable: LoadedServable | None = None
    # A failed load is not retried while the version stays aspired (as in the real manager).
    failed_while_aspired: bool = False


@dataclass
class Model:
    name: str
    config: model_server_config_pb2.ModelConfig | None  # None once removed from the config
    versions: dict[int, Version]


class VersionTable:
    """The models and their versions; hold ``lock`` for every read and write."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.models: dict[str, Model] = {}
        self.generation = 0

    def set_state(self, name: str, version: int, state: State, **fields: object) -> Version:
        """Move one version to ``state`` (creating it if new); call with ``lock`` held."""
        self.generation += 1
        table = self.models[name].versions
        entry = table.get(version)
        if entry is None:
            entry = table[version] = Version(version, state, self.generation)
        entry.state = state
        entry.generation = self.generation
        for key, value in fields.items():
            setattr(entry, key, value)
        self.changed.notify_all()
        return entry

    def scan(self, names: set[str], since: int) -> tuple[bool, dict[str, Version]]:
        """servable_state_monitor.cc HasAnyServableInStreamReachedState, for ServableRequest::
        Latest of each model: newest first, the first version (among those changed after
        generation ``since``) that is AVAILABLE or END. Returns (every model has one, the ones
        found); call with ``lock`` held."""
        found: dict[str, Version] = {}
        for name in names:
            model = self.models.get(name)
            fresh = [e for e in model.versions.values() if e.generation > since] if model else []
            for entry in sorted(fresh, key=lambda e: -e.version):
                if entry.state in (State.AVAILABLE, State.END):
                    found[name] = entry
                    break
        return len(found) == len(names), found
