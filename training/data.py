"""The seed's input pipeline: Fashion-MNIST (read and checked by ``fashion_core.dataset``)
normalised to [-1, 1], shuffled and batched with tf.data."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from fashion_core.dataset import to_unit_range


def make_dataset(
    images: np.ndarray, batch_size: int, shuffle_buffer: int, seed: int
) -> tf.data.Dataset:
    """The seed's pipeline: normalise, shuffle(buffer), batch, prefetch.

    ``drop_remainder`` keeps every step the same shape, so the compiled train step is traced once.
    """
    x = to_unit_range(images)
    return (
        tf.data.Dataset.from_tensor_slices(x)
        .shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )
