"""What a run trains: both networks, the EMA generator, one Adam per network.

Built inside the device placement's scope (``training.devices``), so a data-parallel run
creates its variables replicated on every device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras

from training.config import TrainConfig
from training.model import build_discriminator, build_generator


@dataclass
class Parts:
    generator: keras.Model
    discriminator: keras.Model
    ema: keras.Model | None  # the exponential moving average of ``generator``, when enabled
    g_opt: keras.optimizers.Optimizer
    d_opt: keras.optimizers.Optimizer

    @property
    def shown(self) -> keras.Model:
        """The generator that sheets show and export publishes: the EMA one when there is one."""
        return self.ema if self.ema is not None else self.generator

    def state_variables(self) -> list[Any]:
        """Every variable a checkpoint must hold, in a fixed order."""
        nets = [self.generator, self.discriminator] + ([self.ema] if self.ema else [])
        out: list[Any] = []
        for net in nets:
            out += all_variables(net)
        return out + list(self.g_opt.variables) + list(self.d_opt.variables)


def all_variables(net: keras.Model) -> list[Any]:
    """Trainable then non-trainable (BatchNorm statistics, dropout seeds): the order the EMA
    pairs the generator's variables with its own, and the JAX step splits its state by."""
    return list(net.trainable_variables) + list(net.non_trainable_variables)


def build_parts(cfg: TrainConfig) -> Parts:
    policy = cfg.precision if cfg.precision != "float32" else None
    generator = build_generator(cfg.latent_dim, cfg.width, dtype=policy)
    discriminator = build_discriminator(cfg.width, dtype=policy)
    ema = None
    if cfg.exports_ema:
        ema = build_generator(cfg.latent_dim, cfg.width, dtype=policy)
        ema.set_weights(generator.get_weights())
    g_opt = keras.optimizers.Adam(cfg.gen_lr, beta_1=cfg.beta_1, beta_2=cfg.beta_2)
    d_opt = keras.optimizers.Adam(cfg.disc_lr, beta_1=cfg.beta_1, beta_2=cfg.beta_2)
    g_opt.build(generator.trainable_variables)
    d_opt.build(discriminator.trainable_variables)
    return Parts(generator, discriminator, ema, g_opt, d_opt)


def ema_decay_at(decay: float, step: Any) -> Any:
    """The EMA's decay after ``step`` updates: small at first, so the average does not drag the
    random initial weights along for thousands of steps (the warm-up of TensorFlow's
    ExponentialMovingAverage with num_updates)."""
    return keras.ops.minimum(decay, (1.0 + step) / (10.0 + step))


def float32_generator(net: keras.Model, cfg: TrainConfig) -> keras.Model:
    """A float32 copy of ``net`` for saving and export, whatever precision trained it."""
    out = build_generator(cfg.latent_dim, cfg.width, dtype="float32")
    out.set_weights(net.get_weights())  # variables are float32 under mixed precision too
    return out
