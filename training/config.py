"""Training profiles: typed defaults plus overrides that reject unknown keys.

The chosen config is saved with every run and copied into the exported model card, so a
version can always say how it was made.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from fashion_core.contract import LATENT_DIM
from fashion_core.contract import PROFILES as PROFILE_NAMES

LOSSES = ("nonsat", "hinge")
PRECISIONS = ("float32", "mixed_bfloat16")


@dataclass(frozen=True)
class TrainConfig:
    profile: str
    epochs: int
    batch_size: int = 64
    gen_lr: float = 1e-4
    disc_lr: float = 1e-4
    beta_1: float = 0.9  # Keras' Adam defaults, as in the seed
    beta_2: float = 0.999
    # "nonsat": the seed's binary cross-entropy (non-saturating for the generator); "hinge"
    loss: str = "nonsat"
    # exponential moving average of the generator's weights and BatchNorm statistics; the EMA
    # generator is the one sheets show and export publishes. 0 = off (the seed's recipe)
    ema_decay: float = 0.0
    latent_dim: int = LATENT_DIM
    # filters of every layer relative to the seed's (1.0 = 256/128/64 and 64/128)
    width: float = 1.0
    # None = all 60,000 training images; smaller numbers make the smoke profile fast
    train_samples: int | None = None
    seed: int = 1234
    # "mixed_bfloat16" computes in bfloat16 and keeps float32 weights; the export is float32.
    # Only where the hardware has bfloat16 arithmetic (GPUs, CPUs with AVX512-BF16 or AMX):
    # elsewhere it is emulated, measured 12x slower on an AVX2-only EPYC (docs/benchmarks.md)
    precision: str = "float32"
    # train steps per compiled call: the Python loop runs once per this many steps
    steps_per_execution: int = 1
    # XLA for the TensorFlow step (the JAX step is always XLA): measured 20x slower than
    # TensorFlow's own kernels on 2 AVX2 CPU cores (docs/benchmarks.md); for GPUs
    jit_compile: bool = False
    # data-parallel devices (the batch is split across them); 1 = one device
    devices: int = 1
    # samples used for the quality figures at export (FID, mode coverage, memorisation)
    eval_samples: int = 10000

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def exports_ema(self) -> bool:
        return self.ema_decay > 0


PROFILES: dict[str, TrainConfig] = {
    # exactly the seed's recipe, kept as the baseline
    "seed": TrainConfig(profile="seed", epochs=50),
    # end to end in seconds on 2 CPU cores: for tests and CI only, sheets are noise
    "smoke": TrainConfig(profile="smoke", epochs=2, train_samples=256, eval_samples=256),
    # recognisable garments in under 5 minutes on 2 CPU cores: half width, the default's Adam
    # and EMA, batch 16 (more updates for the same images; measured best of 16/32/64 at this
    # budget, docs/benchmarks.md), 4 epochs of 30,000 images
    "quick": TrainConfig(
        profile="quick",
        epochs=4,
        batch_size=16,
        gen_lr=2e-4,
        disc_lr=2e-4,
        beta_1=0.5,
        ema_decay=0.999,
        width=0.5,
        train_samples=30000,
        steps_per_execution=8,
        eval_samples=2000,
    ),
    # the seed's networks at full width, Adam 2e-4 (beta_1 0.5) and the EMA generator exported
    "default": TrainConfig(
        profile="default",
        epochs=50,
        batch_size=64,
        gen_lr=2e-4,
        disc_lr=2e-4,
        beta_1=0.5,
        ema_decay=0.999,
        steps_per_execution=8,
    ),
}


assert tuple(PROFILES) == PROFILE_NAMES, "fashion_core.contract.PROFILES names these profiles"


class ConfigError(ValueError):
    """A profile name or override that does not exist or does not parse."""


def _coerce(field: dataclasses.Field[Any], raw: str) -> Any:
    text = str(field.type)
    if raw.lower() == "none" and "None" in text:
        return None
    if text == "bool":
        if raw.lower() not in ("true", "false", "1", "0"):
            raise ConfigError(f"{field.name} must be true or false, got {raw!r}.")
        return raw.lower() in ("true", "1")
    try:
        if text.startswith("int"):
            return int(raw)
        if text.startswith("float"):
            return float(raw)
    except ValueError:
        raise ConfigError(f"{field.name} must be a {text.split()[0]}, got {raw!r}.") from None
    return raw


def make_config(profile: str, overrides: list[str] | None = None) -> TrainConfig:
    """Return PROFILES[profile] with ``key=value`` overrides applied; unknown keys are errors."""
    if profile not in PROFILES:
        raise ConfigError(f"Unknown profile {profile!r}; choose one of {', '.join(PROFILES)}.")
    base = PROFILES[profile]
    fields = {f.name: f for f in dataclasses.fields(TrainConfig) if f.name != "profile"}
    changes: dict[str, Any] = {}
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep or key not in fields:
            raise ConfigError(
                f"Override {item!r} is not key=value with a known key ({', '.join(fields)})."
            )
        changes[key] = _coerce(fields[key], raw)
    cfg = dataclasses.replace(base, **changes)
    _check(cfg)
    return cfg


def _check(cfg: TrainConfig) -> None:
    positive = ("epochs", "batch_size", "latent_dim", "steps_per_execution", "devices")
    if any(getattr(cfg, name) < 1 for name in positive):
        raise ConfigError(f"{', '.join(positive)} must be positive integers.")
    if cfg.loss not in LOSSES:
        raise ConfigError(f"loss must be one of {', '.join(LOSSES)}, got {cfg.loss!r}.")
    if cfg.precision not in PRECISIONS:
        raise ConfigError(
            f"precision must be one of {', '.join(PRECISIONS)}, got {cfg.precision!r}."
        )
    if not 0 <= cfg.ema_decay < 1:
        raise ConfigError(f"ema_decay must be in [0, 1), got {cfg.ema_decay}.")
    if cfg.batch_size % cfg.devices:
        raise ConfigError(
            f"batch_size ({cfg.batch_size}) must be a multiple of devices ({cfg.devices})."
        )
