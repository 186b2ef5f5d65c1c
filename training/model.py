"""The seed's DCGAN: generator and discriminator builders, and their class-conditional forms.

Plain Keras layers, so the same networks train under the TensorFlow and the JAX backend and
the generator saves to the same ``.keras`` file either way. The train steps live in
``training.step_tf`` and ``training.step_jax``; the losses they share in ``training.losses``.
"""

from __future__ import annotations

import keras
from keras import layers

from fashion_core.contract import CATEGORY, IMAGE_SHAPE, LATENT_DIM
from training.augment import DiffAugment

CATEGORY_EMBED = 50  # the conditional generator's category embedding, joined to z


def _w(filters: int, width: float) -> int:
    return max(1, round(filters * width))


def build_generator(
    latent_dim: int = LATENT_DIM,
    width: float = 1.0,
    dtype: str | None = None,
    *,
    num_classes: int = 0,
) -> keras.Model:
    """z (latent_dim,) -> image (28, 28, 1) in [-1, 1]. ``width`` scales every layer's filters
    (1.0 = the seed's 256/128/64); the layer structure never changes. ``dtype`` is a Keras dtype
    policy ("mixed_bfloat16" trains in bfloat16); the image layer always computes in float32.

    ``num_classes`` > 0: the class-conditional generator, [z, category ()] -> image, the
    category's embedding joined to the noise in front of the same layers."""
    c1, c2, c3 = _w(256, width), _w(128, width), _w(64, width)
    z = keras.Input((latent_dim,), name="z")
    inputs: keras.KerasTensor | list[keras.KerasTensor] = z
    x = z
    if num_classes:
        category = keras.Input((), dtype="int32", name=CATEGORY)
        embedded = layers.Embedding(num_classes, CATEGORY_EMBED, dtype=dtype)(category)
        x = layers.Concatenate(dtype=dtype)([z, embedded])
        assert tuple(x.shape) == (None, latent_dim + CATEGORY_EMBED)
        inputs = [z, category]
    x = layers.Dense(7 * 7 * c1, use_bias=False, dtype=dtype)(x)
    x = layers.BatchNormalization(dtype=dtype)(x)
    x = layers.LeakyReLU(dtype=dtype)(x)
    x = layers.Reshape((7, 7, c1), dtype=dtype)(x)
    assert tuple(x.shape) == (None, 7, 7, c1)
    x = layers.Conv2DTranspose(c2, 5, strides=1, padding="same", use_bias=False, dtype=dtype)(x)
    assert tuple(x.shape) == (None, 7, 7, c2)
    x = layers.BatchNormalization(dtype=dtype)(x)
    x = layers.LeakyReLU(dtype=dtype)(x)
    x = layers.Conv2DTranspose(c3, 5, strides=2, padding="same", use_bias=False, dtype=dtype)(x)
    assert tuple(x.shape) == (None, 14, 14, c3)
    x = layers.BatchNormalization(dtype=dtype)(x)
    x = layers.LeakyReLU(dtype=dtype)(x)
    # float32 at the output: tanh saturates visibly in bfloat16's 8-bit mantissa
    img = layers.Conv2DTranspose(
        1, 5, strides=2, padding="same", use_bias=False, activation="tanh", name="images",
        dtype="float32",
    )(x)  # fmt: skip
    assert tuple(img.shape) == (None, *IMAGE_SHAPE)
    if num_classes:
        return keras.Model(inputs, img, name="conditional_generator")
    return keras.Model(z, img, name="generator")


def build_discriminator(
    width: float = 1.0,
    dtype: str | None = None,
    *,
    dropout: float = 0.3,
    norm: str = "none",
    augment: str = "none",
    seed: int = 0,
    num_classes: int = 0,
) -> keras.Model:
    """image (28, 28, 1) -> real/fake logit (1,). Training only: never exported.

    The seed's layers (Conv2D 28->14->7, LeakyReLU, Dropout, Dense logit); a recipe may put
    DiffAugment in front (``augment``), wrap every layer in spectral normalisation (``norm``)
    or change the dropout.

    ``num_classes`` > 0: [image, category ()] -> logit, conditioned by projection (Miyato &
    Koyama 2018): logit = psi(h) + <embed(category), h>, h the flattened features, so the
    discriminator asks both "is it real?" and "is it this category?" in one number."""
    c1, c2 = _w(64, width), _w(128, width)

    def normed(layer: layers.Layer) -> layers.Layer:
        if norm == "spectral":
            return layers.SpectralNormalization(layer, dtype=dtype)
        return layer

    img = keras.Input(IMAGE_SHAPE, name="image")
    x = img
    if augment != "none":
        x = DiffAugment(augment, seed=seed, dtype=dtype)(x)
    x = normed(layers.Conv2D(c1, 5, strides=2, padding="same", dtype=dtype))(x)
    assert tuple(x.shape) == (None, 14, 14, c1)
    x = layers.LeakyReLU(dtype=dtype)(x)
    if dropout:
        x = layers.Dropout(dropout, dtype=dtype)(x)
    x = normed(layers.Conv2D(c2, 5, strides=2, padding="same", dtype=dtype))(x)
    assert tuple(x.shape) == (None, 7, 7, c2)
    x = layers.LeakyReLU(dtype=dtype)(x)
    if dropout:
        x = layers.Dropout(dropout, dtype=dtype)(x)
    x = layers.Flatten(dtype=dtype)(x)
    logit = normed(layers.Dense(1, dtype="float32"))(x)  # losses in float32
    if not num_classes:
        return keras.Model(img, logit, name="discriminator")
    category = keras.Input((), dtype="int32", name=CATEGORY)
    # embed(y): one vector per category, as long as h (7*7*c2), looked up as one_hot(y) @ W so
    # that spectral normalisation can wrap it (Keras' wrapper casts an Embedding's output to
    # its integer input's dtype: every vector would read 0)
    one_hot = layers.CategoryEncoding(num_classes, output_mode="one_hot", dtype="float32")
    embed = layers.Dense(x.shape[-1], use_bias=False, dtype="float32", name="category_embed")
    embedded = normed(embed)(one_hot(category))
    projection = layers.Dot(axes=1, dtype="float32")([embedded, x])
    assert tuple(projection.shape) == (None, 1)
    logit = layers.Add(dtype="float32")([logit, projection])
    return keras.Model([img, category], logit, name="conditional_discriminator")
