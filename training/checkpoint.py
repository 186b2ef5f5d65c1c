"""A run's checkpoint: every state variable in one ``.npz``, written atomically.

NumPy, not ``tf.train.Checkpoint``, so the TensorFlow and JAX backends read and write the same
file. Names and shapes are stored with the values and checked on restore, so a checkpoint never
loads into a different network.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import keras
import numpy as np

from fashion_core import atomic

FILE = "checkpoint.npz"


class CheckpointError(Exception):
    """The checkpoint does not match the networks (message: one sentence)."""


def save(run_dir: Path, variables: list[Any]) -> None:
    arrays = {f"v{i:04d}": keras.ops.convert_to_numpy(v.value) for i, v in enumerate(variables)}
    names = np.array([v.path for v in variables])
    buf = io.BytesIO()
    np.savez(buf, names=names, **arrays)
    atomic.write_bytes(run_dir / FILE, buf.getvalue())


def exists(run_dir: Path) -> bool:
    return (run_dir / FILE).is_file()


def restore(run_dir: Path, variables: list[Any]) -> None:
    with np.load(run_dir / FILE) as f:
        names = [str(n) for n in f["names"]]
        if len(names) != len(variables):
            raise CheckpointError(
                f"{run_dir / FILE} holds {len(names)} variables, the networks have "
                f"{len(variables)}; start over with --fresh."
            )
        for i, v in enumerate(variables):
            value = f[f"v{i:04d}"]
            if tuple(value.shape) != tuple(v.shape):
                raise CheckpointError(
                    f"{run_dir / FILE}: {names[i]} has shape {value.shape}, the network's "
                    f"{v.path} has {tuple(v.shape)}; start over with --fresh."
                )
            v.assign(value)
