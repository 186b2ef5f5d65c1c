"""What a run trains: both networks, the EMA generator, one Adam per network.

Built inside the device placement's scope (``training.devices``), so a data-parallel run
creates its variables replicated on every device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras

from export.zcategory import category_from_z, inner
from fashion_core.dataset import NUM_CLASSES
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


def num_classes(cfg: TrainConfig) -> int:
    """The categories a conditional run's networks take; 0 = unconditional."""
    return NUM_CLASSES if cfg.labelled else 0


def build_parts(cfg: TrainConfig) -> Parts:
    policy = cfg.precision if cfg.precision != "float32" else None
    classes = num_classes(cfg)
    generator = build_generator(cfg.latent_dim, cfg.width, dtype=policy, num_classes=classes)
    discriminator = build_discriminator(
        cfg.width if cfg.d_width is None else cfg.d_width,
        dtype=policy,
        dropout=cfg.d_dropout,
        norm=cfg.d_norm,
        augment=cfg.augment,
        seed=cfg.seed,
        num_classes=classes,
    )
    ema = None
    if cfg.exports_ema:
        ema = build_generator(cfg.latent_dim, cfg.width, dtype=policy, num_classes=classes)
        ema.set_weights(generator.get_weights())
    g_opt = keras.optimizers.Adam(learning_rate(cfg.gen_lr, cfg), cfg.beta_1, cfg.beta_2)
    d_opt = keras.optimizers.Adam(learning_rate(cfg.disc_lr, cfg), cfg.beta_1, cfg.beta_2)
    g_opt.build(generator.trainable_variables)
    d_opt.build(discriminator.trainable_variables)
    return Parts(generator, discriminator, ema, g_opt, d_opt)


def learning_rate(peak: float, cfg: TrainConfig) -> Any:
    """A constant rate (the seed's), or a warm-up and/or cosine decay over optimizer steps."""
    if not cfg.lr_warmup_steps and cfg.lr_decay == "none":
        return peak
    warmup = max(cfg.lr_warmup_steps, 0)
    if cfg.lr_decay == "cosine":
        decay = cfg.lr_decay_steps or max(1, run_steps(cfg) - warmup)
        return keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else peak,
            decay,
            alpha=cfg.lr_floor,
            warmup_target=peak if warmup else None,
            warmup_steps=warmup,
        )
    # warm-up only: CosineDecay with alpha=1 stays at the peak after the warm-up
    return keras.optimizers.schedules.CosineDecay(
        0.0, 1, alpha=1.0, warmup_target=peak, warmup_steps=warmup
    )


def run_steps(cfg: TrainConfig) -> int:
    """Optimizer steps in the whole run."""
    images = cfg.epoch_images or cfg.train_samples or 60000
    return cfg.epochs * (images // cfg.batch_size)


def ema_decay_at(cfg: TrainConfig, step: Any) -> Any:
    """The EMA's decay after ``step`` updates.

    With ``ema_kimg``: a half-life of ema_kimg thousand images, or ema_rampup x the images
    seen while that is shorter (StyleGAN2-ADA's G_ema). Otherwise ``ema_decay``, small at
    first so the average does not drag the random initial weights along for thousands of steps
    (the warm-up of TensorFlow's ExponentialMovingAverage with num_updates)."""
    if cfg.ema_kimg > 0:
        batch = float(cfg.batch_size)
        half_life = keras.ops.convert_to_tensor(cfg.ema_kimg * 1000.0)
        if cfg.ema_rampup > 0:
            half_life = keras.ops.minimum(half_life, cfg.ema_rampup * batch * (step + 1.0))
        return keras.ops.power(0.5, batch / keras.ops.maximum(half_life, batch))
    return keras.ops.minimum(cfg.ema_decay, (1.0 + step) / (10.0 + step))


def float32_generator(net: keras.Model, cfg: TrainConfig) -> keras.Model:
    """A float32 copy of ``net`` for saving and export, whatever precision trained it."""
    out = build_generator(cfg.latent_dim, cfg.width, dtype="float32", num_classes=num_classes(cfg))
    out.set_weights(inner(net).get_weights())  # variables are float32 under mixed precision too
    return served(out, cfg)


def served(net: keras.Model, cfg: TrainConfig) -> keras.Model:
    """``net`` as its model serves it: a ``category_from_z`` run's conditional generator behind
    the first model's signature, z alone (export/zcategory.py); any other generator as it is."""
    if cfg.category_from_z and not cfg.conditional and inner(net) is net:
        return category_from_z(net, NUM_CLASSES)
    return net
