"""Versions on disk as TF Serving sees them: publish a SavedModel under a base path atomically,
and wait until a server (the stand-in or the real one) reports a version in a given state."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import requests


def publish_version(
    source_dir: str | os.PathLike[str], base_path: str | os.PathLike[str], version: int
) -> Path:
    """Copy a SavedModel dir to ``base_path/<version>`` atomically (copy aside, then rename).

    TF Serving does not check that a version dir is complete, so a half-copied dir would be loaded
    (contract, "Models on disk"); the temporary name is not numeric, so it is never picked up.
    """
    base = Path(base_path)
    base.mkdir(parents=True, exist_ok=True)
    staging = base / f".staging-{version}-{uuid.uuid4().hex}"
    shutil.copytree(source_dir, staging)
    target = base / str(version)
    os.rename(staging, target)
    return target


def wait_for_version(
    rest_url: str,
    model_name: str,
    version: int,
    *,
    state: str = "AVAILABLE",
    timeout_s: float = 30.0,
    poll_interval_s: float = 0.1,
) -> dict[str, Any]:
    """Poll ``GET /v1/models/<name>/versions/<version>`` until it reports ``state``.

    Returns that version's status entry (``{"version", "state", "status"}``). A 404 (version not
    discovered yet) keeps polling; any other failure, or the deadline, raises TimeoutError with the
    last answer. Works against the real TF Serving too.
    """
    url = f"{rest_url}/v1/models/{model_name}/versions/{version}"
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    while True:
        try:
            response = requests.get(url, timeout=5)
            last = f"HTTP {response.status_code}: {response.text}"
            if response.status_code == 200:
                for entry in response.json().get("model_version_status", []):
                    if entry.get("version") == str(version) and entry.get("state") == state:
                        return dict(entry)
        except requests.RequestException as exc:
            last = repr(exc)
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{model_name} version {version} not {state} after {timeout_s}s; last: {last}"
            )
        time.sleep(poll_interval_s)
