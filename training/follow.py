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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fashion_core import locks
from fashion_core.models_config import ConfigFileError, follow, lock_path, parse, write

LOCK_WAIT_S = 60.0  # a rollout holds the lock while TF Serving reloads (seconds, not minutes)


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
    deadline = time.monotonic() + wait_s
    lock = lock_path(config_file)
    while (fd := locks.try_acquire(lock)) is None:
        if time.monotonic() > deadline:
            log(f"models.config sigue bloqueado por un rollout: la versión {version} se añadirá "
                "con la siguiente.")  # fmt: skip
            return
        time.sleep(0.2)
    try:
        config = parse(config_file.read_text(), str(config_file))
        new = follow(config, model_name, str(base_path.resolve()), version, mine)
        if new is None:
            return
        write(config_file, new)
    except (OSError, ConfigFileError) as exc:
        log(f"No se pudo añadir la versión {version} a {config_file}: {exc}")
        return
    finally:
        os.close(fd)
    mine.append(version)
    log(f"Versión {version} de {model_name} añadida a {config_file} (TF Serving la carga).")
