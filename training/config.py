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
D_NORMS = ("none", "spectral")
AUGMENTS = ("none", "translation", "translation,cutout")
LR_DECAYS = ("none", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    profile: str
    epochs: int
    batch_size: int = 64
    # a batch that grows: "32@4,64@8" trains epochs 4-7 with batches of 32 and epochs from 8
    # on with 64 (epochs before the first mark use batch_size); "" = batch_size throughout
    batch_growth: str = ""
    gen_lr: float = 1e-4
    disc_lr: float = 1e-4
    beta_1: float = 0.9  # Keras' Adam defaults, as in the seed
    beta_2: float = 0.999
    # "nonsat": the seed's binary cross-entropy (non-saturating for the generator); "hinge"
    loss: str = "nonsat"
    # exponential moving average of the generator's weights and BatchNorm statistics; the EMA
    # generator is the one sheets show and export publishes. 0 = off (the seed's recipe)
    ema_decay: float = 0.0
    # or an EMA by half-life in images (StyleGAN2's ema_kimg), growing with training as
    # ema_rampup x the images seen until it reaches ema_kimg thousand: the average then always
    # spans the last few per cent of the run, early (fast progress) and late (fine detail)
    ema_kimg: float = 0.0
    ema_rampup: float = 0.0
    latent_dim: int = LATENT_DIM
    # class-conditional (issue 19): the generator also takes a category (0-9), embedded and
    # joined to the noise; the discriminator judges (image, category) pairs by projection.
    # Published as a model of its own (fashion_core.contract.COND_MODEL_NAME)
    conditional: bool = False
    # the first model from conditional networks (export/zcategory.py): trained with the labels
    # like a conditional run, published with the first model's signature (z alone picks the
    # category, a tenth of N(0, 1) latents each), to the first model's paths. Far cleaner
    # garments per minute of training than unconditional networks (docs/benchmarks.md)
    category_from_z: bool = False
    # filters of every layer relative to the seed's (1.0 = 256/128/64 and 64/128)
    width: float = 1.0
    # the discriminator's own width (None = ``width``)
    d_width: float | None = None
    # the seed's discriminator: dropout 0.3 after each convolution, no normalisation
    d_dropout: float = 0.3
    # "spectral": spectral normalisation of every discriminator layer (Miyato et al. 2018)
    d_norm: str = "none"
    # DiffAugment (Zhao et al. 2020): the same random, differentiable shifts (and cut-outs) of
    # real and generated images in front of the discriminator, never in front of the generator
    augment: str = "none"
    # lazy R1 (Mescheder et al. 2018; StyleGAN2's lazy form): gamma/2 |grad D(real)|^2, every
    # r1_every steps with its weight multiplied by r1_every; 0 = off
    r1_gamma: float = 0.0
    r1_every: int = 16
    # learning rates: linear warm-up over lr_warmup_steps, then optionally a cosine decay to
    # lr_floor x the rate at lr_decay_steps (0 = over the whole run)
    lr_warmup_steps: int = 0
    lr_decay: str = "none"
    lr_decay_steps: int = 0
    lr_floor: float = 0.1
    # None = all 60,000 training images; smaller numbers make the smoke profile fast
    train_samples: int | None = None
    # images per epoch, drawn afresh from the (train_samples) images each epoch; None = all
    # of them once. Shorter epochs mean more frequent checkpoints and publish points.
    epoch_images: int | None = None
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
    # a progressive job (training.progressive) when > 0: train until this many seconds of job
    # time, judging a candidate at each publish point; `epochs` is then only an upper bound
    time_budget_s: float = 0.0
    # publish points, seconds of job time: the listed ones, then one every publish_every_s
    publish_at_s: str = ""
    publish_every_s: float = 0.0
    # also a candidate every this many epochs (0 = off): points that do not depend on the
    # machine's speed, for tests and for comparing runs
    publish_every_epochs: int = 0
    # a progressive job keeps the newest this many versions (and every labelled one)
    keep_versions: int = 3

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def growth(self) -> list[tuple[int, int]]:
        """(first epoch, batch) of each phase of ``batch_growth``, in order of epoch."""
        marks = []
        for item in filter(None, (p.strip() for p in self.batch_growth.split(","))):
            batch, sep, epoch = item.partition("@")
            if not sep or not batch.isdigit() or not epoch.isdigit():
                raise ConfigError(
                    f"batch_growth must be batch@epoch pairs like 32@4,64@8, got {item!r}."
                )
            marks.append((int(epoch), int(batch)))
        return sorted(marks)

    def batch_at(self, epoch: int) -> int:
        """The batch size of epoch ``epoch`` (0-based)."""
        batch = self.batch_size
        for first, size in self.growth():
            if epoch >= first:
                batch = size
        return batch

    def steps_before(self, epoch: int, images_per_epoch: int) -> int:
        """Optimizer steps of epochs 0 .. epoch-1 (each drops its last short batch)."""
        return sum(images_per_epoch // self.batch_at(e) for e in range(epoch))

    def images_at_step(self, step: int, images_per_epoch: int) -> int:
        """Images seen after ``step`` optimizer steps, the batch growing as the run does."""
        images, epoch = 0, 0
        while step > (steps := images_per_epoch // self.batch_at(epoch)):
            images, step, epoch = images + steps * self.batch_at(epoch), step - steps, epoch + 1
        return images + step * self.batch_at(epoch)

    @property
    def labelled(self) -> bool:
        """Whether the networks take categories (and the feed carries the labels)."""
        return self.conditional or self.category_from_z

    @property
    def exports_ema(self) -> bool:
        return self.ema_decay > 0 or self.ema_kimg > 0


PROFILES: dict[str, TrainConfig] = {
    # exactly the seed's recipe, kept as the baseline
    "seed": TrainConfig(profile="seed", epochs=50),
    # end to end in seconds on 2 CPU cores: for tests and CI only, sheets are noise
    "smoke": TrainConfig(profile="smoke", epochs=2, train_samples=256, eval_samples=256),
    # a job that keeps improving (training/progressive.py), tuned for quality per minute of
    # 2 CPU cores (docs/benchmarks.md): the seed's layers at half width, batch 16, Adam 4e-4
    # with beta_1 0 and beta_2 0.99 (no momentum: FID 0.65x beta_1 0.5's after 1 minute and
    # 0.78x after 5, two seeds each), a discriminator without dropout held by lazy R1 (gamma 1,
    # every 16 steps), conditional networks trained with the labels and served with z alone
    # picking the category (category_from_z: FID about a quarter of the unconditional
    # networks' at 5 minutes), the EMA generator (0.999) published; a first version after
    # 45 s of job time, another at 225 s (with `make run`'s install and start-up: within 2
    # and 5 minutes of typing it), a candidate every 5 minutes after that, each published
    # only if the evaluator rates it better than the version being served, for 60 minutes of
    # job time
    "quick": TrainConfig(
        profile="quick",
        epochs=100000,  # an upper bound only: the time budget ends the job
        batch_size=16,
        gen_lr=4e-4,
        disc_lr=4e-4,
        beta_1=0.0,
        beta_2=0.99,
        ema_decay=0.999,
        width=0.5,
        d_dropout=0.0,
        r1_gamma=1.0,
        r1_every=16,
        category_from_z=True,
        epoch_images=8000,
        steps_per_execution=8,
        eval_samples=10000,
        time_budget_s=3600.0,
        publish_at_s="45,225",
        publish_every_s=300.0,
        keep_versions=3,
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
    if cfg.ema_kimg < 0 or cfg.ema_rampup < 0:
        raise ConfigError("ema_kimg and ema_rampup must not be negative.")
    if not 0 <= cfg.ema_decay < 1:
        raise ConfigError(f"ema_decay must be in [0, 1), got {cfg.ema_decay}.")
    for name, allowed in (("d_norm", D_NORMS), ("augment", AUGMENTS), ("lr_decay", LR_DECAYS)):
        if getattr(cfg, name) not in allowed:
            raise ConfigError(
                f"{name} must be one of {', '.join(allowed)}, got {getattr(cfg, name)!r}."
            )
    try:
        points = [float(p) for p in cfg.publish_at_s.split(",") if p.strip()]
    except ValueError:
        raise ConfigError(
            f"publish_at_s must be seconds separated by commas, got {cfg.publish_at_s!r}."
        ) from None
    if cfg.time_budget_s < 0 or cfg.publish_every_s < 0 or any(p < 0 for p in points):
        raise ConfigError("time_budget_s, publish_every_s and publish_at_s must not be negative.")
    if cfg.publish_every_epochs < 0:
        raise ConfigError("publish_every_epochs must not be negative.")
    if cfg.time_budget_s and cfg.eval_samples < 16:  # its gate scores each candidate
        raise ConfigError(
            f"eval_samples must be at least 16 with a time budget, got {cfg.eval_samples}."
        )
    if cfg.keep_versions < 1:
        raise ConfigError(f"keep_versions must be at least 1, got {cfg.keep_versions}.")
    if cfg.r1_gamma < 0 or cfg.r1_every < 1 or not 0 <= cfg.d_dropout < 1:
        raise ConfigError("r1_gamma must be >= 0, r1_every >= 1 and d_dropout in [0, 1).")
    for batch in (cfg.batch_size, *(size for _, size in cfg.growth())):
        if batch < 1 or batch % cfg.devices:
            raise ConfigError(
                f"batch sizes ({batch}) must be positive multiples of devices ({cfg.devices})."
            )
