"""The train step under TensorFlow: ``steps_per_execution`` steps per ``tf.function`` call, a
``tf.distribute`` strategy splitting each batch across its replicas.

Both networks step on the same batch, as in the seed: one generator forward pass, a
discriminator pass over the real and one over the generated images, two gradients. Variables live in
Keras variables, so there is nothing to sync back.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from training.config import TrainConfig
from training.losses import LOSSES
from training.parts import Parts, all_variables, ema_decay_at


class TFRunner:
    def __init__(self, parts: Parts, cfg: TrainConfig, strategy: tf.distribute.Strategy) -> None:
        self.parts = parts
        self._run = _make_run(parts, cfg, strategy)

    def run(self, *batches: np.ndarray) -> tuple[float, float]:
        """Train on ``len(real)`` batches of (real, noise), a conditional run's with (labels,
        categories) too; returns the mean (generator, discriminator) loss."""
        g, d = self._run(*(tf.constant(a) for a in batches))
        return float(g), float(d)

    def sync(self) -> None:
        """Nothing to do: the step updates the Keras variables in place."""


def _make_run(parts: Parts, cfg: TrainConfig, strategy: tf.distribute.Strategy) -> Any:
    g_net, d_net, ema = parts.generator, parts.discriminator, parts.ema
    loss_fn = LOSSES[cfg.loss]
    g_vars, d_vars = g_net.trainable_variables, d_net.trainable_variables
    pairs = list(zip(all_variables(ema), all_variables(g_net), strict=True)) if ema else []
    r1_weight = 0.5 * cfg.r1_gamma * cfg.r1_every  # lazy: every r1_every steps, scaled up

    def r1_penalty(real: tf.Tensor, *labels: tf.Tensor) -> tf.Tensor:
        """gamma/2 E|grad_x D(x)|^2 on real images (recorded by the caller's tape too); a
        conditional run's discriminator sees them with their ``labels``."""
        x = tf.identity(real)  # this branch's own tensor, not the captured outer one
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(d_net([x, *labels] if labels else x, training=True))
        grad = tape.gradient(total, x)
        return r1_weight * tf.reduce_mean(tf.reduce_sum(tf.square(grad), axis=[1, 2, 3]))

    def replica_step(
        real: tf.Tensor, noise: tf.Tensor, *classes: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """One step; ``classes``: a conditional run's (labels of ``real``, categories asked of
        the generator), both (B,) int32."""
        ctx = tf.distribute.get_replica_context()
        n = ctx.num_replicas_in_sync
        if n > 1:  # every replica is handed the whole batch and takes its own slice of it
            per = tf.shape(real)[0] // n
            first = ctx.replica_id_in_sync_group * per
            real, noise = real[first : first + per], noise[first : first + per]
            classes = tuple(c[first : first + per] for c in classes)
        labels = classes[:1]  # () for the unconditional networks, which take one input
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            # two discriminator calls, not one on real and fake concatenated: the generator's
            # gradient then runs back through the fake half only (measured: the concatenated
            # call was 0.9x the seed's loop on 2 cores)
            if classes:  # real images with their labels, fakes with the categories asked
                fake = g_net([noise, classes[1]], training=True)
                real_logits = d_net([real, classes[0]], training=True)
                fake_logits = d_net([fake, classes[1]], training=True)
            else:
                fake = g_net(noise, training=True)
                real_logits = d_net(real, training=True)
                fake_logits = d_net(fake, training=True)
            g_loss, d_loss = loss_fn(real_logits, fake_logits)
            d_total = d_loss
            if r1_weight:
                due = tf.equal(parts.d_opt.iterations % cfg.r1_every, 0)
                d_total += tf.cond(due, lambda: r1_penalty(real, *labels), lambda: tf.constant(0.0))
            # the optimizers sum gradients over replicas: each contributes 1/n of the mean
            g_scaled, d_scaled = g_loss / n, d_total / n
        parts.g_opt.apply_gradients(zip(g_tape.gradient(g_scaled, g_vars), g_vars, strict=True))
        parts.d_opt.apply_gradients(zip(d_tape.gradient(d_scaled, d_vars), d_vars, strict=True))
        return g_loss, d_loss

    def update_ema() -> None:
        rate = 1.0 - ema_decay_at(cfg, tf.cast(parts.g_opt.iterations, tf.float32))
        for avg, live in pairs:
            avg.assign(avg + rate * (live - avg))

    batch = cfg.batch_size
    spec = [
        tf.TensorSpec([None, batch, *g_net.output_shape[1:]], tf.float32),
        tf.TensorSpec([None, batch, cfg.latent_dim], tf.float32),
    ]

    def chunk(reals: tf.Tensor, *rest: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        k = tf.shape(reals)[0]
        g_sum, d_sum = tf.constant(0.0), tf.constant(0.0)
        for i in tf.range(k):
            g, d = strategy.run(replica_step, args=(reals[i], *(a[i] for a in rest)))
            g_sum += strategy.reduce("MEAN", g, axis=None)
            d_sum += strategy.reduce("MEAN", d, axis=None)
            if pairs:
                update_ema()
        steps = tf.cast(k, tf.float32)
        return g_sum / steps, d_sum / steps

    if cfg.labelled:  # the labels of the real images, the categories asked of G
        classes = tf.TensorSpec([None, batch], tf.int32)

        @tf.function(input_signature=[*spec, classes, classes], jit_compile=cfg.jit_compile)  # type: ignore[untyped-decorator]
        def run_conditional(
            reals: tf.Tensor, noises: tf.Tensor, labels: tf.Tensor, categories: tf.Tensor
        ) -> tuple[tf.Tensor, tf.Tensor]:
            return chunk(reals, noises, labels, categories)

        return run_conditional

    @tf.function(input_signature=spec, jit_compile=cfg.jit_compile)  # type: ignore[untyped-decorator]
    def run(reals: tf.Tensor, noises: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return chunk(reals, noises)

    return run
