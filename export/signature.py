"""Write a generator as a SavedModel with the one public signature of ``fashion_core.contract``:
serving_default: ``z`` float32 [-1, latent_dim] -> ``images`` float32 [-1, 28, 28, 1] in [-1, 1].
"""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from fashion_core.contract import INPUT, OUTPUT, SIGNATURE


def latent_dim_of(generator: keras.Model) -> int:
    return int(generator.inputs[0].shape[-1])


def save_serving_model(generator: keras.Model, path: Path) -> None:
    """Write ``generator`` as a SavedModel with the one public signature (inference mode:
    BatchNorm uses its moving statistics, so the same z always gives the same images)."""
    archive = keras.export.ExportArchive()
    archive.track(generator)

    def serve(z: tf.Tensor) -> dict[str, tf.Tensor]:
        return {OUTPUT: generator(z, training=False)}

    archive.add_endpoint(
        name=SIGNATURE,
        fn=serve,
        input_signature=[tf.TensorSpec([None, latent_dim_of(generator)], tf.float32, name=INPUT)],
    )
    archive.write_out(str(path), verbose=False)
