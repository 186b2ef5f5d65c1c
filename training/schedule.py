"""When a time-budgeted training job judges a candidate (``Schedule``), and the driver of such a
job that publishes nothing (``BudgetOnly``, ``--no-publish``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras

from training.config import TrainConfig


@dataclass(frozen=True)
class Schedule:
    points: tuple[float, ...]  # job seconds at which a candidate is judged, ascending
    budget_s: float
    early_until: float = 0.0  # the last listed point: until then no time goes to the evaluator

    @classmethod
    def of(cls, cfg: TrainConfig) -> Schedule:
        listed = sorted(float(p) for p in cfg.publish_at_s.split(",") if p.strip())
        points = [p for p in listed if p < cfg.time_budget_s]
        if cfg.publish_every_s > 0:
            t = (points[-1] if points else 0.0) + cfg.publish_every_s
            while t < cfg.time_budget_s:
                points.append(t)
                t += cfg.publish_every_s
        early = max((p for p in listed if p < cfg.time_budget_s), default=0.0)
        return cls((*points, cfg.time_budget_s), cfg.time_budget_s, early)

    def due(self, last: float, clock: float) -> bool:
        """Whether a point lies in (last, clock]: one candidate however many were passed."""
        return any(last < p <= clock for p in self.points)

    def next_point(self, clock: float) -> float | None:
        return next((p for p in self.points if p > clock), None)


class BudgetOnly:
    """The ``EpochDriver`` of a time-budgeted profile run with ``--no-publish``: train until the
    budget, publish and prune nothing."""

    def __init__(self, cfg: TrainConfig) -> None:
        self.budget_s = cfg.time_budget_s

    def finished(self, state: dict[str, Any]) -> bool:
        return bool(state.get("finished"))

    def after_epoch(self, epochs_done: int, generator: keras.Model, state: dict[str, Any]) -> bool:
        if state.get("clock_s", 0.0) >= self.budget_s:
            state["finished"] = True
        return bool(state.get("finished"))
