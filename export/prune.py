"""Keep a base path's disk bounded: remove old versions, never a labelled or pinned one.

A progressive training job publishes a version every few minutes for an hour; without pruning
the base path (and TF Serving's volume) grows with each. A version is removed by renaming it
to a hidden folder first, so TF Serving sees it vanish in one step (it loads and unloads only
numeric folders), then deleting that folder.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from fashion_core.models_config import ConfigFileError, read
from fashion_core.versions import list_versions, version_dir


def remove_version(base_path: Path, version: int) -> None:
    gone = base_path / f".retired-{version}-{uuid.uuid4().hex[:6]}"
    os.rename(version_dir(base_path, version), gone)
    shutil.rmtree(gone, ignore_errors=True)


def protected_versions(models_config: Path | None, model_name: str) -> set[int]:
    """Versions a models.config names (labels and the specific policy): rollouts own those.
    An unreadable or unparsable file protects every version: pruning then waits."""
    if models_config is None or not models_config.exists():
        return set()
    try:
        entry = read(models_config, model_name)[1]
    except ConfigFileError:
        return {-1}  # a marker: see prune()
    return set(entry.labels.values()) | set(entry.versions)


def prune(
    base_path: Path,
    keep: int,
    protected: set[int],
    log: Callable[[str], None] = print,
) -> list[int]:
    """Remove every version but the newest ``keep`` and the ``protected`` ones."""
    if keep < 1 or -1 in protected:
        return []
    published = list_versions(base_path)
    doomed = [v for v in published[:-keep] if v not in protected]
    for v in doomed:
        remove_version(base_path, v)
        log(f"Versión {v} retirada (se conservan las {keep} más nuevas y las etiquetadas).")
    return doomed
