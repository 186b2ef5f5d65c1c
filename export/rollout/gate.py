"""The quality comparison a label move passes: a version whose FID (from its model card, at
the same sample count) is worse than stable's is refused unless --force."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from export.rollout import RolloutError
from fashion_core.cards import read_card
from fashion_core.versions import version_dir


def quality(base_path: Path, version: int) -> dict[str, Any]:
    try:
        return dict(read_card(version_dir(base_path, version)).get("quality", {}))
    except FileNotFoundError:
        return {}


def check(base_path: Path, version: int, stable: int | None, log: Callable[[str], None]) -> None:
    if stable is None or stable == version:
        return
    new, old = quality(base_path, version), quality(base_path, stable)
    if "fid" not in new or "fid" not in old or new.get("samples") != old.get("samples"):
        log(f"no comparable FID for {version} and stable {stable}: not compared")
        return
    if new["fid"] > old["fid"]:
        raise RolloutError(
            f"version {version} has FID {new['fid']:.2f}, worse than stable {stable}'s "
            f"{old['fid']:.2f}; use --force to roll it out anyway."
        )
