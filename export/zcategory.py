"""The first model's servable of a conditional generator: z alone picks the category.

A class-conditional generator draws much cleaner garments for the same training time than an
unconditional one (docs/benchmarks.md, "One network for both models"). Served as the first
model it must keep that model's signature, ``z`` -> ``images``: ``category_from_z`` wraps it so
that z's first coordinate, through the normal distribution's quantile, picks one of the ten
categories in equal parts. Latents drawn from N(0, 1), as every seeded sheet's are, then give
every category a tenth of the designs, and one z always gives the same design.

Only Keras here (no TensorFlow): a JAX training run builds the wrapper too, and
``python -m export`` imports this module before loading a .keras file that holds one.
"""

from __future__ import annotations

import math
from typing import Any

import keras

from fashion_core.contract import INPUT

NAME = "category_from_z"


@keras.saving.register_keras_serializable(package="fashion_gan")
class CategoryFromZ(keras.layers.Layer):  # type: ignore[misc]
    """z (n, latent) -> category (n,) int32: floor(classes x Phi(z[:, 0])), at most classes-1."""

    def __init__(self, classes: int = 10, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.classes = classes

    def call(self, z: Any) -> Any:
        ops = keras.ops
        uniform = 0.5 * (1.0 + ops.erf(z[:, 0] / math.sqrt(2.0)))
        index = ops.clip(ops.floor(uniform * self.classes), 0, self.classes - 1)
        return ops.cast(index, "int32")

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None]:
        return (input_shape[0],)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "classes": self.classes}


def category_from_z(generator: keras.Model, classes: int) -> keras.Model:
    """z -> images: ``generator`` ([z, category] -> images) with the category drawn by z."""
    z = keras.Input((int(generator.inputs[0].shape[-1]),), name=INPUT)
    category = CategoryFromZ(classes, name=NAME)(z)
    return keras.Model(z, generator([z, category]), name=f"{generator.name}_{NAME}")


def inner(generator: keras.Model) -> keras.Model:
    """The conditional generator inside a ``category_from_z`` wrapper (else ``generator``)."""
    if not any(isinstance(layer, CategoryFromZ) for layer in generator.layers):
        return generator
    return next(layer for layer in generator.layers if isinstance(layer, keras.Model))
