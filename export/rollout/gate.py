"""The quality comparison a label move passes (``fashion_core.quality``): a version whose FID
is worse than stable's, or that cannot be compared with it (no FID, another evaluator, another
sample count), is refused unless --force."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from export.rollout import RolloutError
from fashion_core.cards import read_card
from fashion_core.quality import compare
from fashion_core.versions import version_dir


def quality(base_path: Path, version: int) -> dict[str, Any]:
    try:
        return dict(read_card(version_dir(base_path, version)).get("quality", {}))
    except FileNotFoundError:
        return {}


def check(base_path: Path, version: int, stable: int | None, log: Callable[[str], None]) -> None:
    if stable is None or stable == version:
        return
    result = compare(quality(base_path, version), quality(base_path, stable))
    if not result.comparable:
        # fail closed: a gate that waves through what it cannot measure is no gate
        raise RolloutError(
            f"version {version} cannot be compared with stable {stable} "
            f"({result.reason.removeprefix('FIDs not compared: ')}); "
            "use --force to roll it out anyway."
        )
    if result.worse:
        raise RolloutError(
            f"version {version} has FID {quality(base_path, version)['fid']:.2f}, worse than "
            f"stable {stable}'s {quality(base_path, stable)['fid']:.2f}; use --force to roll "
            "it out anyway."
        )
    log(f"quality gate: version {version} against stable {stable}, {result.reason}")
