"""A published version's serving signature, loaded in-process (the only TensorFlow here).

Used by the seed's API (fashion_gan/model.py) and by the gateway's embedded backend, so both
call the model exactly the same way."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from fashion_core.contract import CATEGORY, INPUT, OUTPUT, SIGNATURE


def load_signature(path: str) -> tuple[Any, Any]:
    """(the SavedModel object, its serving signature) at ``path``. Keep the object as long as
    the signature: the signature reads the object's variables, and holding both side by side
    (not one inside the other) lets both go together."""
    loaded = tf.saved_model.load(path)
    return loaded, loaded.signatures[SIGNATURE]


def call_signature(fn: Any, z: np.ndarray, category: np.ndarray | None = None) -> np.ndarray:
    """z (n, latent_dim) -> images (n, 28, 28, 1); a class-conditional version also takes
    ``category`` (n,) int64, one per row. Concrete functions are safe across threads."""
    inputs = {INPUT: tf.constant(z, dtype=tf.float32)}
    if category is not None:
        inputs[CATEGORY] = tf.constant(category, dtype=tf.int64)
    out: np.ndarray = fn(**inputs)[OUTPUT].numpy()
    return out


def signature_latent_dim(fn: Any) -> int:
    """The length of z the signature takes, read from the model itself."""
    return int(fn.structured_input_signature[1][INPUT].shape[-1])
