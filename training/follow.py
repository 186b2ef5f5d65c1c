"""A progressive job's versions reach TF Serving: after each version it publishes, the job adds
it to the models.config that TF Serving reads (``--model-config-file``), under the rollout
tool's lock.

TF Serving loads only the versions a ``specific`` policy lists (the starting config keeps 1 and
2), so without this a compose or Kubernetes deployment would stay on the job's second version
while the job goes on publishing better ones. The embedded gateway serves the newest version
on disk and needs none of it. A model the file does not list yet (the class-conditional one on
a fresh volume) joins it with its first version: TF Serving would have waited for ever for a
model listed before it had one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from export.rollout.history import History
from fashion_core import locks
from fashion_core.models_config import (
    ConfigFileError,
    entry_of,
    follow,
    lock_path,
    parse,
    write,
)

LOCK_WAIT_S = 60.0  # a rollout holds the lock while TF Serving reloads (seconds, not minutes)


@contextmanager
def config_lock(config_file: Path, wait_s: float = LOCK_WAIT_S) -> Iterator[bool]:
    """Hold the rollout tool's lock on ``config_file`` for the ``with`` body, waiting at most
    ``wait_s``; yields False (and holds nothing) when a rollout keeps it or it cannot be
    opened (a read-only folder): the caller leaves the file alone this time."""
    deadline = time.monotonic() + wait_s
    fd: int | None = None
    try:
        while (fd := locks.try_acquire(lock_path(config_file))) is None:
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
    except OSError:
        fd = None
    try:
        yield fd is not None  # outside the except: the body's own errors are the caller's
    finally:
        if fd is not None:
            os.close(fd)


def follow_version(
    config_file: Path,
    model_name: str,
    base_path: Path,
    version: int,
    state: dict[str, Any],
    log: Callable[[str], None],
    wait_s: float = LOCK_WAIT_S,
) -> None:
    """Add ``version`` to ``config_file`` for ``model_name``; ``state`` (the run's state.json)
    remembers which versions the job added, so that it drops them again as newer ones land.
    Never raises: the version is published either way, and the next one tries again."""
    added: dict[str, list[int]] = state.setdefault("followed", {})
    mine = added.setdefault(model_name, [])
    with config_lock(config_file, wait_s) as held:
        if not held:
            log(f"models.config está bloqueado (un rollout) o no se puede abrir: la versión "
                f"{version} se añadirá con la siguiente.")  # fmt: skip
            return
        try:
            config = parse(config_file.read_text(), str(config_file))
            stable = entry_labels(config, model_name).get("stable")
            rollback = History(config_file, model_name).earlier(stable)
            keep = () if rollback is None else (rollback,)
            new = follow(config, model_name, str(base_path.resolve()), version, mine, keep)
            if new is not None:
                write(config_file, new)
        except (OSError, ConfigFileError) as exc:
            log(f"No se pudo añadir la versión {version} a {config_file}: {exc}")
            return
    if new is None:
        return
    mine.append(version)
    log(f"Versión {version} de {model_name} añadida a {config_file} (TF Serving la carga).")


def entry_labels(config: Any, model_name: str) -> dict[str, int]:
    """The model's labels in ``config``; none when it is not listed yet."""
    try:
        return entry_of(config, model_name).labels
    except ConfigFileError:
        return {}
