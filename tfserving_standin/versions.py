"""Version discovery under a base path and the version policy (which versions to serve).

Mirrors sources/storage_path/file_system_storage_path_source.cc: children whose names are integers
are versions (``00000123`` is 123), anything else is ignored; nothing checks that a version dir is
complete, so publishers must rename finished dirs into place (contract, "Models on disk").
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from .errors import Code, ServingError

_log = logging.getLogger("tfserving_standin.versions")


def discover_versions(name: str, base_path: str) -> dict[int, str]:
    """Map version number -> version dir for every numeric child dir of ``base_path``.

    Raises ServingError when the base path itself is missing; the caller logs and retries on the
    next poll, as the real source does.
    """
    try:
        entries = list(os.scandir(base_path))
    except FileNotFoundError:
        raise ServingError(
            Code.INVALID_ARGUMENT, f"Could not find base path {base_path} for servable {name}"
        ) from None
    except OSError as exc:
        raise ServingError(Code.UNKNOWN, f"Could not list {base_path}: {exc}") from exc
    found: dict[int, str] = {}
    for entry in entries:
        if not entry.name.isdigit() or not entry.is_dir():
            continue
        # Two spellings of one number (1 and 001): keep one, deterministically.
        version = int(entry.name)
        if version not in found or entry.path < found[version]:
            found[version] = entry.path
    return found


def aspired_versions(policy: Any, found: Mapping[int, str]) -> set[int]:
    """Apply a ``ServableVersionPolicy`` (latest / all / specific) to the discovered versions.

    ``policy`` is ``FileSystemStoragePathSourceConfig.ServableVersionPolicy``; an unset policy is
    latest with one version (contract: "default policy is latest/1").
    """
    choice = policy.WhichOneof("policy_choice")
    if choice == "all":
        return set(found)
    if choice == "specific":
        return {int(v) for v in policy.specific.versions if int(v) in found}
    # latest, or nothing set. The real source serves at least one version even for num_versions 0.
    count = max(int(policy.latest.num_versions), 1) if choice == "latest" else 1
    return set(sorted(found, reverse=True)[:count])


def log_no_versions(name: str, base_path: str) -> None:
    """The warning the real server prints on every poll of an empty base path."""
    _log.warning("No versions of servable %s found under base path %s", name, base_path)
