"""Version folders under a TF Serving base path, as TF Serving reads them, and the numbering
of new ones."""

from __future__ import annotations

from pathlib import Path

from fashion_core import atomic

# the highest number ever published here: deleting the newest version never frees its number,
# so a cached sheet, a model card or a rollout history never means two different models
HIGH_WATER_FILE = ".high-water"


def list_versions(base_path: Path) -> list[int]:
    """Numeric version folders (``00000123`` is 123), ascending. Hidden temporary folders of
    publishes in progress are not numeric, so never listed."""
    try:
        entries = list(base_path.iterdir())
    except OSError:  # missing, not a folder, or not readable: no versions
        return []
    return sorted(int(p.name) for p in entries if p.name.isdigit() and p.is_dir())


def version_dir(base_path: Path, version: int) -> Path:
    """The folder of ``version``, whatever zero padding it was published with."""
    for p in base_path.iterdir():
        if p.name.isdigit() and int(p.name) == version and p.is_dir():
            return p
    raise FileNotFoundError(f"no version {version} under {base_path}")


def high_water(base_path: Path) -> int:
    try:
        return int((base_path / HIGH_WATER_FILE).read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def next_version(base_path: Path) -> int:
    """The number the next publish takes (call under the publish lock)."""
    return max([high_water(base_path), *list_versions(base_path)], default=0) + 1


def record_version(base_path: Path, version: int) -> None:
    """Raise the high-water mark to ``version`` (under the publish lock, after the rename)."""
    if version > high_water(base_path):
        atomic.write_text(base_path / HIGH_WATER_FILE, f"{version}\n")
