"""Write a generator as a SavedModel with the one public signature of ``fashion_core.contract``:
serving_default: ``z`` float32 [-1, latent_dim] -> ``images`` float32 [-1, 28, 28, 1] in [-1, 1];
a conditional generator's also takes ``category`` int64 [-1] (0-9), one per row of ``z``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from fashion_core.contract import CATEGORY, INPUT, OUTPUT, SIGNATURE


def latent_dim_of(generator: keras.Model) -> int:
    return int(generator.inputs[0].shape[-1])


def is_conditional(generator: keras.Model) -> bool:
    """Whether ``generator`` takes a category besides z (``training.model``'s conditional one)."""
    return len(generator.inputs) == 2


def num_classes_of(generator: keras.Model) -> int:
    """The categories a conditional generator takes (its embedding's rows); 0 = unconditional."""
    if not is_conditional(generator):
        return 0
    embedding = next(x for x in generator.layers if isinstance(x, keras.layers.Embedding))
    return int(embedding.input_dim)


def generate(generator: keras.Model, z: np.ndarray, categories: Any = None) -> np.ndarray:
    """The generator's images (inference mode) for z, and categories when it is conditional."""
    inputs = [z, np.asarray(categories, np.int32)] if is_conditional(generator) else z
    return np.asarray(generator(inputs, training=False))


def save_serving_model(generator: keras.Model, path: Path) -> None:
    """Write ``generator`` as a SavedModel with the one public signature (inference mode:
    BatchNorm uses its moving statistics, so the same z always gives the same images)."""
    archive = keras.export.ExportArchive()
    archive.track(generator)
    z_spec = tf.TensorSpec([None, latent_dim_of(generator)], tf.float32, name=INPUT)

    if is_conditional(generator):
        classes = num_classes_of(generator)

        def serve_conditional(z: tf.Tensor, category: tf.Tensor) -> dict[str, tf.Tensor]:
            # a category outside 0..classes-1 is the caller's error on every device (a GPU's
            # embedding lookup would otherwise return zeros without a word)
            checks = [
                tf.debugging.assert_non_negative(category, message="category must be 0-9"),
                tf.debugging.assert_less(
                    category, tf.constant(classes, tf.int64), message="category must be 0-9"
                ),
            ]
            with tf.control_dependencies(checks):
                index = tf.cast(category, tf.int32)
            return {OUTPUT: generator([z, index], training=False)}

        archive.add_endpoint(
            name=SIGNATURE,
            fn=serve_conditional,
            input_signature=[z_spec, tf.TensorSpec([None], tf.int64, name=CATEGORY)],
        )
        archive.write_out(str(path), verbose=False)
        return

    def serve(z: tf.Tensor) -> dict[str, tf.Tensor]:
        return {OUTPUT: generator(z, training=False)}

    archive.add_endpoint(name=SIGNATURE, fn=serve, input_signature=[z_spec])
    archive.write_out(str(path), verbose=False)
