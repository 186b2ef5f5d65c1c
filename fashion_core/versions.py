"""Version folders under a TF Serving base path, as TF Serving reads them, and the numbering
of new ones."""

from __future__ import annotations

from pathlib import Path

from fashion_core import atomic

# the highest number ever published here: deleting the newest version never frees its number,
# so a cached sheet, a model card or a rollout history never means two different models
HIGH_WATER_FILE = ".high-water"


class BasePathError(OSError):
    """The base path cannot be read (permissions, a missing mount, an NFS fault): nobody can
    tell whether versions exist, so nothing may act as if none did."""


def scan_versions(base_path: Path) -> list[int]:
    """Numeric version folders (``00000123`` is 123), ascending; raises BasePathError when the
    folder cannot be read. A base path that does not exist inside a folder that does is a fresh
    volume with nothing published (the first publish creates it): ``[]``. One whose parent is
    missing too is a volume that is not mounted: an error, never "no versions"."""
    try:
        entries = list(base_path.iterdir())
    except FileNotFoundError:
        if base_path.parent.is_dir():
            return []
        raise BasePathError(
            f"neither {base_path} nor {base_path.parent} exists (is the volume mounted?)"
        ) from None
    except OSError as exc:
        raise BasePathError(f"{base_path} cannot be read: {exc.strerror or exc}") from None
    versions = []
    for p in entries:
        if p.name.isdigit():
            try:
                if p.is_dir():
                    versions.append(int(p.name))
            except OSError as exc:  # is_dir() hides most errors; a stale handle is one it shows
                raise BasePathError(f"{p} cannot be read: {exc.strerror or exc}") from None
    return sorted(versions)


def list_versions(base_path: Path) -> list[int]:
    """Numeric version folders, ascending, for tools that only report: a folder that cannot be
    read counts as having none. Anything that decides to train uses ``scan_versions``, which
    raises instead. Hidden temporary folders of publishes in progress are never listed."""
    try:
        return scan_versions(base_path)
    except BasePathError:
        return []


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
