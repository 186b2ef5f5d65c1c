"""The run folder and its ``state.json``: which config, how many epochs are finished, and
whether the result was published. TensorFlow-free, so checking a run folder answers at once.

A run folder holds everything of one run:
    state.json          config, finished epochs, losses, speed, backend and devices
    checkpoint.npz      both networks, the EMA generator and both optimizers
    sheets/epoch_NNN.png  the fixed noise batch drawn after each epoch
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fashion_core import atomic
from training.config import TrainConfig

STATE = "state.json"


class RunError(Exception):
    """The run folder cannot be resumed with this config (message: one sentence)."""


def open_run(
    cfg: TrainConfig, run_dir: Path, fresh: bool, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """The run's state: the unfinished (or finished, unpublished) run in ``run_dir`` with the
    same config, else a new one. A finished, published run is replaced; an unfinished run of
    another config is set aside (renamed, kept) rather than blocking every later job."""
    state_file = run_dir / STATE
    if state_file.exists() and not fresh:
        try:
            state: dict[str, Any] = json.loads(state_file.read_text())
        except ValueError:
            state = {}
        if not same_config(state.get("config"), cfg):
            if not is_over(state):
                aside = set_aside(run_dir)
                log(f"{run_dir} held an unfinished run of another config: kept as {aside.name}.")
        elif not is_over(state):
            return state  # unfinished, or finished but never published: nothing is thrown away
        # that run finished and was published: this command asks for a new one
    if run_dir.exists():
        shutil.rmtree(run_dir)
    (run_dir / "sheets").mkdir(parents=True)
    state = {
        "config": cfg.to_dict(),
        "completed_epochs": 0,
        "seconds_per_epoch": [],
        "images_per_s": [],
        "losses": {},
    }
    atomic.write_json(state_file, state)
    return state


def same_config(stored: Any, cfg: TrainConfig) -> bool:
    """Whether a run's stored config is ``cfg``. A field added to ``TrainConfig`` after the run
    started is absent from it: absent counts as the field's default, which is what the run
    trained with (else every new option would set aside every run in progress)."""
    if not isinstance(stored, dict):
        return False
    current = cfg.to_dict()
    defaults = {
        f.name: f.default
        for f in dataclasses.fields(TrainConfig)
        if f.default is not dataclasses.MISSING and f.name in current
    }
    return {**defaults, **stored} == current


def is_over(state: dict[str, Any]) -> bool:
    """Whether the run needs nothing more: it ended (a progressive job's budget, or every
    epoch) and what it made is published."""
    if state.get("finished"):
        return True
    config = state.get("config") or {}
    epochs_done = state.get("completed_epochs", 0) >= config.get("epochs", float("inf"))
    return bool(epochs_done and "published_version" in state)


def set_aside(run_dir: Path) -> Path:
    """Rename ``run_dir`` to a free ``<name>.set-aside-<time>`` beside it and return that."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    for n in range(1000):
        aside = run_dir.with_name(f"{run_dir.name}.set-aside-{stamp}" + (f"-{n}" if n else ""))
        if not aside.exists():
            os.rename(run_dir, aside)
            return aside
    raise RunError(f"Could not set {run_dir} aside: too many set-aside runs beside it.")


def save_state(run_dir: Path, state: dict[str, Any]) -> None:
    atomic.write_json(run_dir / STATE, state)
