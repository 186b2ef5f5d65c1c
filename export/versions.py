"""Version folders under a TF Serving base path. No TensorFlow import: the thin gateway and the
job runner use this too."""

from __future__ import annotations

from pathlib import Path


def list_versions(base_path: Path) -> list[int]:
    """Numeric version folders, as TF Serving parses them (``00000123`` is 123), ascending.
    Hidden temporary folders of publishes in progress are not numeric, so never listed."""
    if not base_path.is_dir():
        return []
    return sorted(int(p.name) for p in base_path.iterdir() if p.name.isdigit() and p.is_dir())


def version_dir(base_path: Path, version: int) -> Path:
    """The folder of ``version``, whatever zero padding it was published with."""
    for p in base_path.iterdir():
        if p.name.isdigit() and int(p.name) == version and p.is_dir():
            return p
    raise FileNotFoundError(f"no version {version} under {base_path}")
