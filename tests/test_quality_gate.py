"""One comparison of two versions' quality figures (fashion_core/quality.py), shared by the
rollout gate and the progressive trainer: figures compare only when one evaluator measured
both at one sample count, and the rollout gate refuses what it cannot compare."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from export.rollout import RolloutError
from export.rollout.gate import check
from fashion_core.quality import MARGIN, compare

NEW: dict[str, object] = {"fid": 20.0, "samples": 10000, "evaluator": "fmnist-fullres-v2"}


def test_compare_needs_one_evaluator_and_one_sample_count() -> None:
    old = {**NEW, "fid": 30.0}
    assert compare(NEW, old).better and not compare(NEW, old).worse
    assert compare(old, NEW).worse
    for other in (
        {**old, "evaluator": None},  # the previous evaluator's card: history, not a figure
        {**old, "samples": 2000},
        {"samples": 10000, "evaluator": "fmnist-fullres-v2"},  # no FID at all
    ):
        result = compare(NEW, other)
        assert not result.comparable and not result.better and not result.worse
        assert result.reason.startswith("FIDs not compared")


def test_the_margin_asks_for_a_real_improvement() -> None:
    fid = 20.0
    just = {**NEW, "fid": fid / (1 - MARGIN) + 0.01}
    assert compare(NEW, just, MARGIN).better
    close = {**NEW, "fid": fid * (1 + MARGIN / 2)}
    result = compare(NEW, close, MARGIN)
    assert not result.better and not result.worse and "not better enough" in result.reason


def _card(base: Path, version: int, quality: dict[str, object]) -> None:
    (base / str(version) / "assets.extra").mkdir(parents=True)
    card = {"version": version, "quality": quality}
    (base / str(version) / "assets.extra" / "model_card.json").write_text(json.dumps(card))


def test_the_rollout_gate_fails_closed(tmp_path: Path) -> None:
    _card(tmp_path, 1, {**NEW, "fid": 30.0})
    _card(tmp_path, 2, NEW)
    _card(tmp_path, 3, {**NEW, "fid": 40.0})
    _card(tmp_path, 4, {"skipped": "eval_samples is 0"})
    _card(tmp_path, 5, {"fid": 5.0, "samples": 10000})  # the previous evaluator's scale
    lines: list[str] = []
    check(tmp_path, 2, 1, lines.append)
    assert lines and "better" in lines[0]
    with pytest.raises(RolloutError, match="worse than stable 1"):
        check(tmp_path, 3, 1, lines.append)
    with pytest.raises(RolloutError, match=r"cannot be compared.*no FID.*--force"):
        check(tmp_path, 4, 1, lines.append)
    with pytest.raises(RolloutError, match="different evaluators"):
        check(tmp_path, 5, 1, lines.append)


def test_a_fid_that_is_not_a_finite_number_is_not_comparable() -> None:
    for bad in (float("nan"), float("inf"), True, "12.0", None):
        result = compare({**NEW, "fid": bad}, NEW)
        assert not result.comparable and not result.better and not result.worse
