"""Training progress as data: the trainer writes ``progress.json`` (atomically, at most about
once a second) and the job runner, ``GET /api/training`` and the gallery read it. Log lines are
for people; nothing parses them."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from fashion_core import atomic

PHASES = ("starting", "training", "evaluating", "publishing", "preparing the evaluator", "done")


@dataclass
class Progress:
    phase: str = "starting"
    epoch: int = 0  # finished epochs
    epochs: int | None = None
    step: int = 0  # steps finished in the current epoch
    steps: int | None = None  # steps per epoch
    losses: dict[str, float] = field(default_factory=dict)
    images_per_s: float | None = None
    version: int | None = None  # the newest published by this run
    updated: float = 0.0
    # a progressive job (training/progressive.py): job seconds against the budget, whether it
    # is still improving, when the next candidate is judged (Unix time, estimated), the
    # versions it published and the last candidate's outcome
    clock_s: float | None = None
    budget_s: float | None = None
    improving: bool = False
    next_candidate_at: float | None = None
    published: list[int] = field(default_factory=list)
    last_candidate: dict[str, Any] | None = None
    # the class-conditional model a category_from_z job publishes too: {"model", "published"}
    companion: dict[str, Any] | None = None

    @property
    def fraction(self) -> float:
        """0..1 over the whole run (training only; evaluation and publish count as done)."""
        if self.budget_s:  # a progressive job: its clock against its budget
            done = self.phase == "done"
            return 1.0 if done else round(min(1.0, (self.clock_s or 0) / self.budget_s), 4)
        if self.phase in ("evaluating", "publishing", "done"):
            return 1.0
        if not self.epochs:
            return 0.0
        within = self.step / self.steps if self.steps else 0.0
        return round(min(1.0, (self.epoch + within) / self.epochs), 4)


class ProgressFile:
    """The trainer's side: update fields and write them out, throttled unless ``force``."""

    def __init__(
        self, path: Path | None, min_interval_s: float = 1.0, carry_on: bool = False
    ) -> None:
        """``carry_on``: start from what the file holds (a publish that follows a training
        process in another process keeps its epochs and losses)."""
        self.path = path
        self.progress = Progress()
        if carry_on and path is not None:
            known = {f.name for f in fields(Progress)}
            saved = atomic.read_json(path, default={})
            if isinstance(saved, dict):
                self.progress = Progress(**{k: v for k, v in saved.items() if k in known})
        self.min_interval_s = min_interval_s
        self._written = 0.0

    def update(self, force: bool = False, **fields: Any) -> None:
        for key, value in fields.items():
            setattr(self.progress, key, value)
        if self.path is None:
            return
        now = time.monotonic()
        if force or now - self._written >= self.min_interval_s:
            self.progress.updated = time.time()
            atomic.write_json(self.path, asdict(self.progress))
            self._written = now


def read(path: Path) -> Progress:
    """The last progress written to ``path`` (a fresh Progress when there is none)."""
    data = atomic.read_json(path, {})
    known = {k: v for k, v in data.items() if k in Progress.__dataclass_fields__}
    try:
        return Progress(**known)
    except TypeError:
        return Progress()
