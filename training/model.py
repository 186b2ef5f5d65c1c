"""The seed's DCGAN: generator and discriminator builders and the GAN train step.

Follows keras-io's dcgan_overriding_train_step: a ``GAN(keras.Model)`` compiled with one Adam
per network; ``train_step`` runs in a compiled TF graph and returns the two losses.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf
from keras import layers

from fashion_core.contract import IMAGE_SHAPE, LATENT_DIM


def _w(filters: int, width: float) -> int:
    return max(1, round(filters * width))


def build_generator(latent_dim: int = LATENT_DIM, width: float = 1.0) -> keras.Model:
    """z (latent_dim,) -> image (28, 28, 1) in [-1, 1]. ``width`` scales every layer's filters
    (1.0 = the seed's 256/128/64); the layer structure never changes."""
    c1, c2, c3 = _w(256, width), _w(128, width), _w(64, width)
    z = keras.Input((latent_dim,), name="z")
    x = layers.Dense(7 * 7 * c1, use_bias=False)(z)
    x = layers.BatchNormalization()(x)
    x = layers.LeakyReLU()(x)
    x = layers.Reshape((7, 7, c1))(x)
    assert tuple(x.shape) == (None, 7, 7, c1)
    x = layers.Conv2DTranspose(c2, 5, strides=1, padding="same", use_bias=False)(x)
    assert tuple(x.shape) == (None, 7, 7, c2)
    x = layers.BatchNormalization()(x)
    x = layers.LeakyReLU()(x)
    x = layers.Conv2DTranspose(c3, 5, strides=2, padding="same", use_bias=False)(x)
    assert tuple(x.shape) == (None, 14, 14, c3)
    x = layers.BatchNormalization()(x)
    x = layers.LeakyReLU()(x)
    img = layers.Conv2DTranspose(
        1, 5, strides=2, padding="same", use_bias=False, activation="tanh", name="images"
    )(x)
    assert tuple(img.shape) == (None, *IMAGE_SHAPE)
    return keras.Model(z, img, name="generator")


def build_discriminator(width: float = 1.0) -> keras.Model:
    """image (28, 28, 1) -> real/fake logit (1,). Training only: never exported."""
    c1, c2 = _w(64, width), _w(128, width)
    img = keras.Input(IMAGE_SHAPE, name="image")
    x = layers.Conv2D(c1, 5, strides=2, padding="same")(img)
    assert tuple(x.shape) == (None, 14, 14, c1)
    x = layers.LeakyReLU()(x)
    x = layers.Dropout(0.3)(x)
    x = layers.Conv2D(c2, 5, strides=2, padding="same")(x)
    assert tuple(x.shape) == (None, 7, 7, c2)
    x = layers.LeakyReLU()(x)
    x = layers.Dropout(0.3)(x)
    x = layers.Flatten()(x)
    logit = layers.Dense(1)(x)
    return keras.Model(img, logit, name="discriminator")


_bce = keras.losses.BinaryCrossentropy(from_logits=True)


def disc_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    """Real images should score 1, generated ones 0."""
    return _bce(tf.ones_like(real_logits), real_logits) + _bce(
        tf.zeros_like(fake_logits), fake_logits
    )


def gen_loss(fake_logits: tf.Tensor) -> tf.Tensor:
    """Non-saturating generator loss: make the discriminator score fakes as real."""
    return _bce(tf.ones_like(fake_logits), fake_logits)


class GAN(keras.Model):  # type: ignore[misc]
    def __init__(
        self, generator: keras.Model, discriminator: keras.Model, latent_dim: int, seed: int
    ) -> None:
        super().__init__()
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = latent_dim
        # owned by the model so a resumed run continues the same noise stream
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.gen_loss_tracker = keras.metrics.Mean(name="gen_loss")
        self.disc_loss_tracker = keras.metrics.Mean(name="disc_loss")

    @property
    def metrics(self) -> list[Any]:
        return [self.gen_loss_tracker, self.disc_loss_tracker]

    def compile(  # type: ignore[override]
        self,
        g_optimizer: keras.optimizers.Optimizer,
        d_optimizer: keras.optimizers.Optimizer,
        jit_compile: bool | str = "auto",
    ) -> None:
        super().compile(jit_compile=jit_compile)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer

    def build_for_checkpoint(self) -> None:
        """Create the optimizers' slots now, so a checkpoint restores into existing variables."""
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)

    def train_step(self, real: tf.Tensor) -> dict[str, tf.Tensor]:
        # real: (B, 28, 28, 1) in [-1, 1]; both networks step on the same batch, as the seed.
        # fit() on a dataset passes the batch itself, train_on_batch() an (x, y, w) tuple
        real, _, _ = keras.utils.unpack_x_y_sample_weight(real)
        batch = tf.shape(real)[0]
        z = keras.random.normal((batch, self.latent_dim), seed=self.seed_generator)
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self.generator(z, training=True)
            real_logits = self.discriminator(real, training=True)
            fake_logits = self.discriminator(fake, training=True)
            g_loss = gen_loss(fake_logits)
            d_loss = disc_loss(real_logits, fake_logits)
        g_grads = g_tape.gradient(g_loss, self.generator.trainable_weights)
        d_grads = d_tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.g_optimizer.apply_gradients(
            zip(g_grads, self.generator.trainable_weights, strict=True)
        )
        self.d_optimizer.apply_gradients(
            zip(d_grads, self.discriminator.trainable_weights, strict=True)
        )
        self.gen_loss_tracker.update_state(g_loss)
        self.disc_loss_tracker.update_state(d_loss)
        return {m.name: m.result() for m in self.metrics}
