"""Quality along a run: train one recipe and keep its shown generator every so many steps
(``train``), then score every kept generator with the evaluator (``score``).

    python -m benchmarks.timeline train --profile seed --seed 1 --out runs/timeline/seed_s1 \
        --every 180 --until 10800 --epochs 5,10,20,50
    python -m benchmarks.timeline score runs/timeline/seed_s1 --samples 10000

Training and scoring are apart so that a run's clock holds training only, and so that the
same snapshots can be scored again by another evaluator. A snapshot is the generator's weights
(``snap_<step>.npz``) plus one line of ``snapshots.jsonl``: step, images seen and the seconds
of training since the first step (compiling included). ``benchmarks.quality_per_minute`` turns
the lines of several runs into the quality-per-minute table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import time
from pathlib import Path
from typing import Any

from fashion_core.quiet import quiet_tensorflow

INDEX = "snapshots.jsonl"
RECIPE = "recipe.json"


def snapshot_name(step: int) -> str:
    return f"snap_{step:07d}.npz"


def read_index(out: Path) -> list[dict[str, Any]]:
    path = out / INDEX
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def train_cmd(args: argparse.Namespace) -> int:
    import numpy as np

    from fashion_core.dataset import load
    from training.config import make_config
    from training.train import train

    cfg = make_config(args.profile, [*args.overrides, f"seed={args.seed}"])
    data = load(args.data_dir)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    recipe = {"profile": args.profile, "overrides": args.overrides, "config": cfg.to_dict()}
    if not (args.resume and (out / RECIPE).is_file()):
        (out / RECIPE).write_text(json.dumps(recipe, indent=2))
    images = len(data.x_train[: cfg.train_samples]) if cfg.train_samples else len(data.x_train)
    per_epoch = min(cfg.epoch_images or images, images)
    wanted = set(range(args.every, args.until + 1, args.every))
    wanted |= {cfg.steps_before(int(e), per_epoch) for e in args.epochs.split(",") if e}
    # --resume: go on from the run's last finished epoch, keeping the snapshots taken so far
    # and continuing their clocks
    earlier = read_index(out) if args.resume else []
    done = max((r["step"] for r in earlier), default=0)
    wanted = {w for w in wanted if w > done}
    offset_s = max((r["train_s"] for r in earlier), default=0.0)
    offset_cpu = max((r.get("cpu_s", 0.0) for r in earlier), default=0.0)
    clock: dict[str, float] = {}
    paused = 0.0  # time spent writing snapshots, left out of the training clock

    def on_chunk(step: int, shown: Any) -> None:
        nonlocal paused
        # chunks are steps_per_execution steps: keep the first chunk end at or past each mark
        due = [w for w in wanted if w <= step]
        if not due:
            return
        for w in due:
            wanted.discard(w)
        t0 = time.perf_counter()
        weights = shown().get_weights()
        np.savez(out / snapshot_name(step), *weights)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        line = {
            "step": step,
            "images": cfg.images_at_step(step, per_epoch),
            "epochs": round(cfg.images_at_step(step, per_epoch) / per_epoch, 4),
            "train_s": round(offset_s + t0 - clock["start"] - paused, 2),
            # CPU seconds of the process: unlike train_s, hardly moved by other work
            "cpu_s": round(offset_cpu + usage.ru_utime + usage.ru_stime, 2),
        }
        with (out / INDEX).open("a") as fh:
            fh.write(json.dumps(line) + "\n")
        paused += time.perf_counter() - t0

    # the clock starts before the networks are built: compiling the step is part of the cost
    clock["start"] = time.perf_counter()
    last = max(wanted) if wanted else 0
    # as many epochs as the last snapshot needs, whatever the profile's own length
    epochs = 1
    while cfg.steps_before(epochs, per_epoch) < last:
        epochs += 1
    cfg = dataclasses.replace(cfg, epochs=epochs)
    state_file = out / "run" / "state.json"
    if args.resume and state_file.is_file():
        # the run's config differs from this one only in its number of epochs
        state = json.loads(state_file.read_text())
        state["config"]["epochs"] = cfg.epochs
        state_file.write_text(json.dumps(state))
    train(cfg, data, out / "run", log=print, fresh=not args.resume, verbose=0, on_chunk=on_chunk)
    return 0


def score_cmd(args: argparse.Namespace) -> int:
    import numpy as np

    from evaluation.classifier import default_path, load_or_train_classifier
    from evaluation.figures import Evaluator
    from fashion_core.dataset import NUM_CLASSES, load
    from training.model import build_generator

    data = load(args.data_dir)
    classifier = load_or_train_classifier(args.classifier or default_path(), data, log=print)
    evaluator = Evaluator(data, classifier)
    for out in args.runs:
        recipe = json.loads((out / RECIPE).read_text())
        cfg = recipe["config"]
        conditional = bool(cfg.get("conditional", False))
        generator = build_generator(
            cfg["latent_dim"], cfg["width"], num_classes=NUM_CLASSES if conditional else 0
        )
        scored_path = out / f"scores_{args.tag}.jsonl"
        done = {r["step"] for r in read_index_file(scored_path)}
        for line in read_index(out):
            if line["step"] in done:
                continue
            if args.steps and line["step"] not in args.steps:
                continue
            with np.load(out / snapshot_name(line["step"])) as f:
                generator.set_weights([f[f"arr_{i}"] for i in range(len(f.files))])
            if conditional:  # FID over all designs, and per category (evaluation/figures.py)
                figures = evaluator.figures_by_category(
                    generate_with(generator), args.samples, args.eval_seed
                )
            else:
                figures = evaluator.figures(generate_with(generator), args.samples, args.eval_seed)
            row = {**line, **figures}
            with scored_path.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(
                f"{out.name} step {line['step']} ({line['train_s']:.0f} s): "
                + " ".join(f"{k} {v:.3f}" for k, v in figures.items() if isinstance(v, float)),
                flush=True,
            )
    return 0


def generate_with(generator: Any) -> Any:
    """z (and, for a conditional generator, categories) -> images, in inference mode."""
    import numpy as np

    def generate(z: Any, *categories: Any) -> Any:
        inputs = [z, *categories] if categories else z
        return np.asarray(generator(inputs, training=False))

    return generate


def read_index_file(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.timeline", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train one recipe, keeping snapshots")
    t.add_argument("--profile", default="seed")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--every", type=int, default=200, help="keep a snapshot every N steps")
    t.add_argument("--until", type=int, default=2000, help="... up to this step")
    t.add_argument("--epochs", default="", help="also at the end of these epochs, e.g. 5,10")
    t.add_argument("--resume", action="store_true", help="go on with a run of this --out")
    s = sub.add_parser("score", help="score the snapshots of runs")
    s.add_argument("runs", type=Path, nargs="+")
    s.add_argument("--samples", type=int, default=10000)
    s.add_argument("--eval-seed", type=int, default=0)
    s.add_argument("--classifier", type=Path, default=None)
    s.add_argument("--tag", default="eval", help="name of the scores file: scores_<tag>.jsonl")
    s.add_argument("--steps", type=int, nargs="*", default=[], help="only these steps")
    for sp in (t, s):
        sp.add_argument(
            "--data-dir", type=Path, default=os.environ.get("FASHION_MNIST_DIR") or None
        )
    args = p.parse_args(argv)
    quiet_tensorflow()
    return train_cmd(args) if args.cmd == "train" else score_cmd(args)


if __name__ == "__main__":
    raise SystemExit(main())
