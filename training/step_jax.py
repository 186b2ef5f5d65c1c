"""The train step under JAX: ``steps_per_execution`` steps per jitted call,
each batch sharded across the devices of a ``keras.distribution.DataParallel`` mesh.

The same step as ``training.step_tf``, written statelessly: the networks run through
``stateless_call``, the optimizers through ``stateless_apply``, and the state (weights,
BatchNorm statistics, dropout seeds, optimizer slots, EMA) stays on the devices between calls.
``sync`` writes it back into the Keras variables for sheets, checkpoints and saving.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from training.config import TrainConfig
from training.losses import LOSSES
from training.parts import Parts, all_variables, ema_decay_at


class JaxRunner:
    def __init__(self, parts: Parts, cfg: TrainConfig, data_sharding: Any | None) -> None:
        self.parts = parts
        self._groups = _groups(parts)
        self._state = [[v.value for v in group] for group in self._groups]
        self._sharding = data_sharding
        self._run = jax.jit(_make_step_chunk(parts, cfg), donate_argnums=0)

    def run(self, *batches: np.ndarray) -> tuple[float, float]:
        """Train on ``len(real)`` batches of (real, noise), a conditional run's with (labels,
        categories) too; returns the mean (generator, discriminator) loss."""
        if self._sharding is not None:
            batches = tuple(jax.device_put(batches, self._sharding))
        self._state, g, d = self._run(self._state, *batches)
        return float(g), float(d)

    def sync(self) -> None:
        for group, values in zip(self._groups, self._state, strict=True):
            for var, value in zip(group, values, strict=True):
                var.assign(value)


def _groups(parts: Parts) -> list[list[Any]]:
    g, d = parts.generator, parts.discriminator
    return [
        list(g.trainable_variables),
        list(g.non_trainable_variables),
        list(d.trainable_variables),
        list(d.non_trainable_variables),
        list(parts.g_opt.variables),
        list(parts.d_opt.variables),
        all_variables(parts.ema) if parts.ema is not None else [],
    ]


def _make_step_chunk(parts: Parts, cfg: TrainConfig) -> Any:
    g_net, d_net = parts.generator, parts.discriminator
    loss_fn = LOSSES[cfg.loss]
    with_ema = parts.ema is not None
    one = jnp.ones((), jnp.float32)
    zero = jnp.zeros((), jnp.float32)
    r1_weight = 0.5 * cfg.r1_gamma * cfg.r1_every  # lazy: every r1_every steps, scaled up

    def r1_loss(d_tv: Any, d_ntv: Any, real: Any, *labels: Any) -> Any:
        """gamma/2 E|grad_x D(x)|^2 on real images (with a conditional run's labels), as
        step_tf's."""

        def total(x: Any) -> Any:
            inputs = [x, *labels] if labels else x
            return jnp.sum(d_net.stateless_call(d_tv, d_ntv, inputs, training=True)[0])

        grad = jax.grad(total)(real)
        return r1_weight * jnp.mean(jnp.sum(jnp.square(grad), axis=(1, 2, 3)))

    def step(state: list[Any], batch: tuple[Any, ...]) -> tuple[list[Any], tuple[Any, Any]]:
        g_tv, g_ntv, d_tv, d_ntv, g_ov, d_ov, ema = state
        # a conditional run's batch adds the real images' labels and the categories asked of G
        real, noise, *classes = batch
        labels = classes[:1]
        g_in = [noise, classes[1]] if classes else noise

        def d_in(images: Any, which: int) -> Any:  # which: 0 the labels, 1 the categories
            return [images, classes[which]] if classes else images

        def forward(g_tv: Any, d_tv: Any) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
            fake, g_ntv2 = g_net.stateless_call(g_tv, g_ntv, g_in, training=True)
            # two calls, as in step_tf: the generator's gradient runs back through the fakes only
            real_in, fake_in = d_in(real, 0), d_in(fake, 1)
            real_logits, d_ntv2 = d_net.stateless_call(d_tv, d_ntv, real_in, training=True)
            fake_logits, d_ntv2 = d_net.stateless_call(d_tv, d_ntv2, fake_in, training=True)
            return loss_fn(real_logits, fake_logits), (g_ntv2, d_ntv2)

        # one forward pass, two backward passes: each network's gradient of its own loss
        (g_loss, d_loss), vjp, (g_ntv, d_ntv) = jax.vjp(forward, g_tv, d_tv, has_aux=True)
        g_grads, _ = vjp((one, zero))
        _, d_grads = vjp((zero, one))
        if r1_weight:
            due = d_ov[0] % cfg.r1_every == 0  # the optimizer's iteration count, as below
            r1_grads = jax.lax.cond(
                due,
                lambda: jax.grad(r1_loss)(d_tv, d_ntv, real, *labels),
                lambda: [jnp.zeros_like(v) for v in d_tv],
            )
            d_grads = [a + b for a, b in zip(d_grads, r1_grads, strict=True)]
        g_tv, g_ov = parts.g_opt.stateless_apply(g_ov, g_grads, g_tv)
        d_tv, d_ov = parts.d_opt.stateless_apply(d_ov, d_grads, d_tv)
        if with_ema:
            # the optimizer's iteration count is its first variable
            rate = 1.0 - ema_decay_at(cfg, g_ov[0].astype(jnp.float32))
            ema = [a + rate * (b - a) for a, b in zip(ema, [*g_tv, *g_ntv], strict=True)]
        return [g_tv, g_ntv, d_tv, d_ntv, g_ov, d_ov, ema], (g_loss, d_loss)

    def chunk(state: list[Any], reals: Any, *rest: Any) -> tuple[list[Any], Any, Any]:
        # unrolled, not lax.scan: XLA:CPU runs these convolutions ~10x slower inside a while
        # loop (measured: 7.4 s against 0.73 s a step); compile time grows with the chunk
        g_sum, d_sum = zero, zero
        for i in range(reals.shape[0]):
            state, (g, d) = step(state, (reals[i], *(a[i] for a in rest)))
            g_sum, d_sum = g_sum + g, d_sum + d
        return state, g_sum / reals.shape[0], d_sum / reals.shape[0]

    return chunk
