"""The run folder and its ``state.json``: which config, how many epochs are finished, and
whether the result was published. TensorFlow-free, so checking a run folder answers at once.

A run folder holds everything of one run:
    state.json          config, finished epochs, losses, speed, backend and devices
    checkpoint.npz      both networks, the EMA generator and both optimizers
    sheets/epoch_NNN.png  the fixed noise batch drawn after each epoch
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from fashion_core import atomic
from training.config import TrainConfig

STATE = "state.json"


class RunError(Exception):
    """The run folder cannot be resumed with this config (message: one sentence)."""


def open_run(cfg: TrainConfig, run_dir: Path, fresh: bool) -> dict[str, Any]:
    """The run's state: the unfinished (or finished, unpublished) run in ``run_dir`` with the
    same config, else a new one (a published run is replaced; another config is refused)."""
    state_file = run_dir / STATE
    if state_file.exists() and not fresh:
        state: dict[str, Any] = json.loads(state_file.read_text())
        if state.get("config") != cfg.to_dict():
            raise RunError(
                f"{run_dir} holds a run with another config; pass --fresh to start over there "
                "or choose another --run-dir."
            )
        if state.get("completed_epochs", 0) < cfg.epochs or "published_version" not in state:
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


def save_state(run_dir: Path, state: dict[str, Any]) -> None:
    atomic.write_json(run_dir / STATE, state)
