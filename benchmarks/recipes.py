"""Recipe comparison: train each recipe with several seeds on the same image budget and score
every result with this project's evaluator (FID in the classifier's features against the test
images, class shares), beside the seed's recipe trained on the same budget.

    python -m benchmarks.recipes --profile quick --seeds 1 2 --recipe seed --recipe adam

A recipe is a list of ``TrainConfig`` overrides applied on top of ``--profile`` (so the width,
epochs and images per epoch, i.e. the image budget, are the profile's unless ``--set`` changes
them for every recipe). Runs go in a scratch folder that is removed afterwards. Prints one row
per run and a summary per recipe (mean FID over seeds, worst class share), as markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.procs import machine
from fashion_core.quiet import quiet_tensorflow

# the seed's optimizer, loss and batch, nothing else changed: every recipe is held against it
SEED = ["gen_lr=1e-4", "disc_lr=1e-4", "beta_1=0.9", "beta_2=0.999", "ema_decay=0"]
SEED += ["loss=nonsat", "batch_size=64"]
ADAM = [*SEED, "gen_lr=2e-4", "disc_lr=2e-4", "beta_1=0.5"]  # the DCGAN paper's Adam
ADAM_EMA = [*ADAM, "ema_decay=0.999"]
RECIPES: dict[str, list[str]] = {
    "seed": SEED,
    "profile": [],  # the --profile's own recipe, unchanged
    "adam": ADAM,
    "adam+ema": ADAM_EMA,
    "adam+ema+hinge": [*ADAM_EMA, "loss=hinge"],
    # same images, more steps: on these CPUs images/s hardly depends on the batch size
    "adam+ema+batch32": [*ADAM_EMA, "batch_size=32"],
    "adam+ema+batch16": [*ADAM_EMA, "batch_size=16"],
    "adam3e-4+ema+batch32": [*ADAM_EMA, "gen_lr=3e-4", "disc_lr=3e-4", "batch_size=32"],
    "ttur+ema": [*ADAM_EMA, "gen_lr=1e-4", "disc_lr=4e-4"],
}


def run_one(
    profile: str,
    overrides: list[str],
    data: Any,
    evaluator: Any,
    scratch: Path,
    samples: int,
    eval_at: set[int],
    keep: Path | None = None,
) -> list[dict[str, Any]]:
    """Train one recipe; score its (EMA) generator after each epoch in ``eval_at`` and after
    the last, saving it to ``keep`` (.keras) each time, so a run cut short still leaves its
    latest scored generator. Returns one dict per scored epoch, with images and seconds."""
    from fashion_core import atomic
    from training.config import make_config
    from training.parts import float32_generator
    from training.train import train

    cfg = make_config(profile, overrides)
    per_epoch = len(data.x_train[: cfg.train_samples]) // cfg.batch_size * cfg.batch_size
    started = time.perf_counter()
    scored: list[dict[str, Any]] = []
    paused = 0.0  # scoring time, left out of the training seconds

    def on_epoch(epoch: int, generator: Any) -> None:
        nonlocal paused
        if epoch not in eval_at and epoch != cfg.epochs:
            return
        t0 = time.perf_counter()
        seconds = t0 - started - paused
        figures = evaluator.figures(lambda z: generator(z, training=False), samples, seed=0)
        if keep is not None:
            keep.parent.mkdir(parents=True, exist_ok=True)
            tmp = keep.with_name(f".{keep.stem}.tmp.keras")
            float32_generator(generator, cfg).save(tmp)
            atomic.replace(tmp, keep)
        paused += time.perf_counter() - t0
        scored.append({"epoch": epoch, "images": epoch * per_epoch, "seconds": seconds, **figures})

    result = train(
        cfg, data, scratch / "run", log=lambda _: None, fresh=True, verbose=0, on_epoch=on_epoch
    )
    for row in scored:
        row["backend"], row["devices"] = result.state["backend"], result.state["devices"]
    return scored


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.recipes", description=__doc__)
    p.add_argument("--profile", default="quick", help="the profile every recipe starts from")
    p.add_argument("--recipe", action="append", default=[], choices=list(RECIPES))
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    p.add_argument("--set", dest="common", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--samples", type=int, default=10000, help="designs scored per run")
    p.add_argument("--data-dir", type=Path, default=os.environ.get("FASHION_MNIST_DIR") or None)
    p.add_argument("--classifier", type=Path, default=None)
    p.add_argument("--eval-at", default="", help="also score after these epochs, e.g. 10,20")
    p.add_argument("--keras-dir", type=Path, default=None, help="save each final generator here")
    p.add_argument("--json-out", type=Path, default=None, help="append one JSON line per score")
    args = p.parse_args(argv)
    quiet_tensorflow()
    from evaluation.classifier import default_path, load_or_train_classifier
    from evaluation.figures import Evaluator
    from fashion_core.dataset import load

    data = load(args.data_dir)
    classifier = load_or_train_classifier(args.classifier or default_path(), data, log=print)
    evaluator = Evaluator(data, classifier)
    m = machine()
    print(f"machine: {m.nproc} cores ({m.cpu_model}), {m.mem_gb} GB; profile {args.profile}")
    rows: dict[tuple[str, int], list[dict[str, Any]]] = {}
    print("\n| recipe | seed | epoch | images | train s | FID | real floor | class % min–max |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    eval_at = {int(e) for e in args.eval_at.split(",") if e}
    for name in args.recipe or list(RECIPES):
        for seed in args.seeds:
            with tempfile.TemporaryDirectory() as scratch:
                overrides = [*RECIPES[name], *args.common, f"seed={seed}"]
                keep = None
                if args.keras_dir:
                    keep = args.keras_dir / f"{args.profile}_{name}_s{seed}.keras"
                scored = run_one(
                    args.profile,
                    overrides,
                    data,
                    evaluator,
                    Path(scratch),
                    args.samples,
                    eval_at,
                    keep,
                )
            for r in scored:
                rows.setdefault((name, r["epoch"]), []).append(r)
                shares = [100 * s for s in r["class_shares"]]
                print(
                    f"| {name} | {seed} | {r['epoch']} | {r['images']} | {r['seconds']:.0f} |"
                    f" {r['fid']:.2f} | {r['fid_real_floor']:.2f} |"
                    f" {min(shares):.1f}–{max(shares):.1f} |",
                    flush=True,
                )
                if args.json_out:
                    with args.json_out.open("a") as fh:
                        record = {"recipe": name, "seed": seed, "profile": args.profile, **r}
                        fh.write(json.dumps(record) + "\n")
    print("\n| recipe | epoch | images | mean FID | vs seed recipe | class % min–max |")
    print("|---|---:|---:|---:|---:|---|")
    for (name, epoch), runs in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        fid = statistics.mean(r["fid"] for r in runs)
        base_runs = rows.get(("seed", epoch))
        ratio = f"{fid / statistics.mean(r['fid'] for r in base_runs):.2f}x" if base_runs else "-"
        lo = min(100 * min(r["class_shares"]) for r in runs)
        hi = max(100 * max(r["class_shares"]) for r in runs)
        print(
            f"| {name} | {epoch} | {runs[0]['images']} | {fid:.2f} | {ratio} | {lo:.1f}–{hi:.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
