"""Training throughput: the seed's own ``tf.function`` loop against this trainer's step, side by
side in one process, rounds interleaved so that a noisy machine hits every variant alike.

    python -m benchmarks.training --steps 40 --rounds 3

The seed's loop is the blueprint's code: ``tf.data`` shuffle and batch, one ``tf.function``
step with two discriminator calls and two tapes. Each trainer variant is a ``TrainConfig``
override of the seed profile (same networks, batch, optimizer) run through ``training.devices``
with the NumPy feed, exactly as ``python -m training`` runs it. Every variant is compiled and
warmed up first; a round times ``--steps`` steps of each. Prints a table of images/s (median
over rounds) and the ratio to the seed loop.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.candidates import CANDIDATES
from benchmarks.procs import machine
from fashion_core.quiet import quiet_tensorflow

# name -> overrides of the seed profile; "seed loop" is the blueprint's loop itself
VARIANTS: dict[str, list[str]] = {
    "trainer, float32, 1 step/call": ["steps_per_execution=1"],
    "trainer, float32, 8 steps/call": ["steps_per_execution=8"],
}
# measured 20x (XLA) and 12x (bfloat16, emulated) slower on AVX2-only CPUs: minutes per round
# there, so only with --all (docs/benchmarks.md)
SLOW_VARIANTS: dict[str, list[str]] = {
    "trainer, float32, XLA, 8 steps/call": ["steps_per_execution=8", "jit_compile=true"],
    "trainer, bfloat16, 8 steps/call": ["steps_per_execution=8", "precision=mixed_bfloat16"],
}
Timed = Callable[[int], float]  # run n steps, return seconds


@dataclass
class Row:
    name: str
    batch: int
    rates: list[float]

    @property
    def images_per_s(self) -> float:
        return statistics.median(self.rates)


def seed_loop(images: np.ndarray, batch: int, bfloat16: bool = False) -> Timed:
    """The blueprint's training loop, unchanged but for the timing."""
    import keras
    import tensorflow as tf

    from training.model import build_discriminator, build_generator

    policy = "mixed_bfloat16" if bfloat16 else None
    generator, discriminator = build_generator(dtype=policy), build_discriminator(dtype=policy)
    cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)
    g_opt, d_opt = keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4)

    @tf.function  # type: ignore[untyped-decorator]
    def train_step(batch_images: tf.Tensor) -> None:
        noise = tf.random.normal([batch, 100])
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated = generator(noise, training=True)
            real_output = discriminator(batch_images, training=True)
            fake_output = discriminator(generated, training=True)
            gen_loss = cross_entropy(tf.ones_like(fake_output), fake_output)
            disc_loss = cross_entropy(tf.ones_like(real_output), real_output) + cross_entropy(
                tf.zeros_like(fake_output), fake_output
            )
        g_grads = gen_tape.gradient(gen_loss, generator.trainable_variables)
        d_grads = disc_tape.gradient(disc_loss, discriminator.trainable_variables)
        g_opt.apply_gradients(zip(g_grads, generator.trainable_variables, strict=True))
        d_opt.apply_gradients(zip(d_grads, discriminator.trainable_variables, strict=True))

    x = (images.astype(np.float32) - 127.5) / 127.5
    dataset = tf.data.Dataset.from_tensor_slices(x[..., None]).shuffle(60000).batch(batch)
    batches: Iterator[tf.Tensor] = iter(dataset.repeat())

    def timed(n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            train_step(next(batches))
        return time.perf_counter() - started

    return timed


def trainer(
    images: np.ndarray,
    overrides: list[str],
    profile: str = "seed",
    labels: np.ndarray | None = None,
) -> tuple[Timed, int]:
    """This trainer's step for ``profile`` with ``overrides``; (timed, batch size). A
    conditional recipe's feed carries ``labels``, as ``python -m training`` feeds it."""
    from training.config import make_config
    from training.data import Feed, prefetched
    from training.devices import place
    from training.parts import build_parts

    cfg = make_config(profile, overrides)
    placement = place(cfg)
    with placement.scope():
        parts = build_parts(cfg)
    runner = placement.runner(parts, cfg)
    feed = Feed.from_uint8(
        images,
        cfg.batch_size,
        cfg.latent_dim,
        cfg.steps_per_execution,
        0,
        labels=labels if cfg.conditional else None,
    )
    epoch = 0
    chunks = prefetched(feed.chunks(epoch))

    def timed(n: int) -> float:
        nonlocal chunks, epoch
        started = time.perf_counter()
        done = 0
        while done < n:
            chunk = next(chunks, None)
            if chunk is None:
                epoch += 1
                chunks = prefetched(feed.chunks(epoch))
                continue
            runner.run(*chunk)
            done += len(chunk[0])
        return time.perf_counter() - started

    return timed, cfg.batch_size


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.training", description=__doc__)
    p.add_argument("--steps", type=int, default=48, help="steps per variant per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--only", action="append", default=[], help="run only variants whose name contains this"
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=os.environ.get("FASHION_MNIST_DIR") or None,
        help="Fashion-MNIST IDX folder (default: $FASHION_MNIST_DIR, else Keras' cache)",
    )
    p.add_argument("--seed-bfloat16", action="store_true", help="also the seed loop in bfloat16")
    p.add_argument("--all", action="store_true", help="also the XLA and bfloat16 variants")
    p.add_argument(
        "--recipe",
        action="append",
        default=[],
        choices=list(CANDIDATES),
        help="also a candidate recipe of benchmarks.candidates (its own batch and widths)",
    )
    p.add_argument(
        "--seconds", type=float, default=0.0, help="per round: time this long, not --steps steps"
    )
    args = p.parse_args(argv)
    quiet_tensorflow()
    from fashion_core.dataset import load

    data = load(args.data_dir)
    images = data.x_train
    m = machine()
    print(f"machine: {m.nproc} cores ({m.cpu_model}), {m.mem_gb} GB, load {m.loadavg}")
    contenders: dict[str, tuple[Timed, int]] = {
        "seed loop (tf.function)": (seed_loop(images, 64), 64)
    }
    if args.seed_bfloat16:
        contenders["seed loop, bfloat16"] = (seed_loop(images, 64, bfloat16=True), 64)
    for name, overrides in (VARIANTS | SLOW_VARIANTS if args.all else VARIANTS).items():
        if not args.only or any(o in name for o in args.only):
            contenders[name] = trainer(images, overrides)
    for name in args.recipe:
        profile, overrides = CANDIDATES[name]
        contenders[f"recipe {name}"] = trainer(images, overrides, profile, data.y_train)
    steps: dict[str, int] = {}
    for name, (timed, _batch) in contenders.items():
        print(f"warming up: {name}", file=sys.stderr, flush=True)
        timed(max(args.steps // 4, 16) + 16)  # compile, then let the thread pools settle
        # with --seconds, each variant gets the number of steps that takes that long
        per_step = timed(16) / 16
        steps[name] = max(16, round(args.seconds / per_step)) if args.seconds else args.steps
    rows = {name: Row(name, batch, []) for name, (_, batch) in contenders.items()}
    for n in range(args.rounds):
        for name, (timed, batch) in contenders.items():
            rows[name].rates.append(steps[name] * batch / timed(steps[name]))
            print(f"round {n + 1}: {name} {rows[name].rates[-1]:.0f} images/s", file=sys.stderr)
    base = rows["seed loop (tf.function)"].images_per_s
    each = f"{args.seconds:.0f} s" if args.seconds else f"{args.steps} steps"
    print(f"\n{each} x {args.rounds} rounds each, interleaved; median images/s\n")
    print(f"| {'variant':<42} | batch | images/s | vs seed loop |")
    print(f"|{'-' * 44}|------:|---------:|-------------:|")
    for row in rows.values():
        print(
            f"| {row.name:<42} | {row.batch:>5} | {row.images_per_s:>8.0f} |"
            f" {row.images_per_s / base:>11.2f}x |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
