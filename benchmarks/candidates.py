"""The recipes compared for quality per CPU minute (docs/benchmarks.md): each is the seed
profile plus ``TrainConfig`` overrides, spelled out in full so that a name keeps meaning the
same recipe when a profile is retuned.

``seed`` is the original recipe, the baseline every table holds the others against;
``quick-2025`` is the previous round's ``quick`` (half width, Adam 2e-4 beta_1 0.5, EMA 0.999,
batch 16) on all 60,000 images; every other candidate changes one thing of it, or of the
best so far (``r1+lr4``, which the ``quick`` profile now trains).
"""

from __future__ import annotations

PREVIOUS_QUICK = [
    "width=0.5", "batch_size=16", "gen_lr=2e-4", "disc_lr=2e-4", "beta_1=0.5",
    "ema_decay=0.999", "steps_per_execution=8", "epoch_images=30000",
]  # fmt: skip
R1 = ["r1_gamma=1", "r1_every=16", "d_dropout=0"]
LR4 = ["gen_lr=4e-4", "disc_lr=4e-4"]
B0 = ["beta_1=0.0", "beta_2=0.99"]

# name (as runs/timeline/<name>_s<seed>) -> (profile, overrides)
CANDIDATES: dict[str, tuple[str, list[str]]] = {
    "seed": ("seed", []),
    "quick": ("seed", PREVIOUS_QUICK),
    # the discriminator
    "r1nodrop": ("seed", [*PREVIOUS_QUICK, *R1]),
    "spectral": ("seed", [*PREVIOUS_QUICK, "d_norm=spectral"]),
    "diffaug": ("seed", [*PREVIOUS_QUICK, "augment=translation"]),
    "r1dw1": ("seed", [*PREVIOUS_QUICK, *R1, "d_width=1.0"]),
    # the learning rate and the average
    "warmup": ("seed", [*PREVIOUS_QUICK, *LR4, "lr_warmup_steps=2000"]),
    "ema50": ("seed", [*PREVIOUS_QUICK, "ema_kimg=50", "ema_rampup=0.1"]),
    "r1lr4": ("seed", [*PREVIOUS_QUICK, *R1, *LR4]),
    "r1lr8": ("seed", [*PREVIOUS_QUICK, *R1, "gen_lr=8e-4", "disc_lr=8e-4"]),
    "r1lr4b0": ("seed", [*PREVIOUS_QUICK, *R1, *LR4, *B0]),
    # a cosine decay of both rates to a tenth by the 5-minute mark (18,750 steps of 16)
    "r1lr4cos": (
        "seed",
        [*PREVIOUS_QUICK, *R1, *LR4, "lr_decay=cosine", "lr_decay_steps=18750", "lr_floor=0.1"],
    ),
    # a batch that grows: 16 for 3 epochs of 30,000 images, 32 for 3, then 64
    "r1lr4grow": ("seed", [*PREVIOUS_QUICK, *R1, *LR4, "batch_growth=32@3,64@6"]),
    # (the speeds of its phases: benchmarks.training --recipe r1lr4 r1lr4b32 r1lr4b64)
    "r1lr4b32": ("seed", [*PREVIOUS_QUICK, *R1, *LR4, "batch_size=32"]),
    "r1lr4b64": ("seed", [*PREVIOUS_QUICK, *R1, *LR4, "batch_size=64"]),
    # the class-conditional model of issue 19 with the same recipe (its rate: side by side)
    "r1lr4cond": ("seed", [*PREVIOUS_QUICK, *R1, *LR4, "conditional=true"]),
    # the same networks served as the first model, z alone picking the category (the quick
    # profile now); it trains exactly as r1lr4cond, so runs/timeline shares its snapshots
    "r1lr4zcat": ("seed", [*PREVIOUS_QUICK, *R1, *LR4, "category_from_z=true"]),
    # Adam's beta_1 at 0 (r1lr4b0's gain on the unconditional networks) on the same networks
    "r1lr4condb0": ("seed", [*PREVIOUS_QUICK, *R1, *LR4, *B0, "conditional=true"]),
    "r1lr4zcatb0": ("seed", [*PREVIOUS_QUICK, *R1, *LR4, *B0, "category_from_z=true"]),
    "r1lr4diffaug": ("seed", [*PREVIOUS_QUICK, *R1, *LR4, "augment=translation"]),
    # the widths of the networks
    "r1lr4w0375": ("seed", [*PREVIOUS_QUICK, *R1, *LR4, "width=0.375"]),
    "r1lr4w075": ("seed", [*PREVIOUS_QUICK, *R1, *LR4, "width=0.75"]),
}
