"""The stable versions of the past, newest last, beside models.config (rollback targets): one
file per model, so rolling one model back never picks a version of the other."""

from __future__ import annotations

from pathlib import Path

from fashion_core import atomic
from fashion_core.contract import MODEL_NAME


class History:
    def __init__(self, config_path: Path, model: str = MODEL_NAME) -> None:
        # the first model keeps the name its history has always had
        kind = "" if model == MODEL_NAME else f".{model}"
        self.path = config_path.with_name(f"{config_path.stem}{kind}.history.json")

    def stables(self) -> list[int]:
        data = atomic.read_json(self.path, {})
        try:
            return [int(v) for v in data["stable"]]
        except (KeyError, TypeError, ValueError):
            return []

    def _save(self, stables: list[int]) -> None:
        atomic.write_json(self.path, {"stable": stables[-20:]})

    def record(self, previous: int | None, version: int) -> None:
        """``version`` became stable after ``previous``."""
        stables = [v for v in self.stables() if v not in (previous, version)]
        self._save([*stables, *([previous] if previous is not None else []), version])

    def rolled_back(self, current: int, target: int) -> None:
        """``current`` leaves the history, so a second rollback goes further back."""
        self._save([v for v in self.stables() if v not in (current, target)] + [target])

    def earlier(self, current: int | None) -> int | None:
        before = [v for v in self.stables() if v != current]
        return before[-1] if before else None
