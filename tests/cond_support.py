"""The class-conditional SavedModel the serving tests serve: the project's own conditional
generator (training.model, untrained: its weights do not matter to serving) written by the
project's own export (export.signature), so it takes ``z`` float32 [-1, 100] and ``category``
int64 [-1] and refuses a category outside 0-9 itself. Built in seconds, no training. Not a
test module."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from fashion_core.contract import CATEGORIES_EN, CATEGORY, INPUT, OUTPUT


def build_cond_model(path: Path, seed: int = 0) -> Path:
    """A conditional SavedModel at ``path`` (not a version dir)."""
    import keras

    from export.signature import save_serving_model
    from training.model import build_generator

    keras.utils.set_random_seed(seed)
    save_serving_model(build_generator(num_classes=len(CATEGORIES_EN)), path)
    return path


def with_card(model: Path, target: Path, quality: dict[str, Any]) -> Path:
    """A copy of ``model`` at ``target`` whose card (assets.extra/model_card.json) carries
    ``quality``, as a published conditional version's does."""
    shutil.copytree(model, target)
    extra = target / "assets.extra"
    extra.mkdir(exist_ok=True)
    card = {"conditional": True, "quality": quality}
    (extra / "model_card.json").write_text(json.dumps(card))
    return target


def reference(model: Path, z: np.ndarray, category: np.ndarray) -> np.ndarray:
    """The SavedModel's signature called in-process, to compare served images with."""
    import tensorflow as tf

    fn = tf.saved_model.load(str(model)).signatures["serving_default"]
    out = fn(**{INPUT: tf.constant(z), CATEGORY: tf.constant(category, tf.int64)})
    return np.asarray(out[OUTPUT].numpy())
