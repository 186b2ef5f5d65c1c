"""Validate the evaluator before trusting it: known degradations of real images, and the seed's
recipe along its own training, each scored as generated designs are.

    python -m benchmarks.evaluator --snapshots runs/timeline/seed_s1 --epochs 5,10,20,50

The real images are the 10,000 training images of the real floor; each degradation is applied
to them and the result is scored against the 10,000 test images, exactly like a generator's
designs. A metric worth gating on is clearly worse than the floor for every degradation, worse
as a degradation grows, and ranks more training above less. With ``--legacy`` the previous
evaluator's FID (a 2-convolution classifier whose first layer strides by 2) is printed beside
it as a history column, to show what it could not see.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.procs import machine
from fashion_core.quiet import quiet_tensorflow

DROPPED = (5, 8)  # sandal and bag: two classes with shapes no other class has
Degrade = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def blur(sigma: float) -> Degrade:
    def apply(x: np.ndarray, _rng: np.random.Generator) -> np.ndarray:
        from scipy.ndimage import gaussian_filter

        return np.asarray(gaussian_filter(x, sigma=(0, sigma, sigma, 0)), dtype=np.float32)

    return apply


def noise(sigma: float) -> Degrade:
    def apply(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.clip(x + rng.normal(0.0, sigma, x.shape), -1.0, 1.0).astype(np.float32)

    return apply


def half_duplicated(x: np.ndarray, _rng: np.random.Generator) -> np.ndarray:
    half = x[: len(x) // 2]
    return np.concatenate([half, half])


# (family, name, degradation); within a family each row is a stronger dose of the one above
DEGRADATIONS: list[tuple[str, str, Degrade]] = [
    ("blur", "Gaussian blur sigma 0.5 px", blur(0.5)),
    ("blur", "Gaussian blur sigma 1.0 px", blur(1.0)),
    ("blur", "Gaussian blur sigma 1.5 px", blur(1.5)),
    ("noise", "additive noise sigma 0.05", noise(0.05)),
    ("noise", "additive noise sigma 0.1", noise(0.1)),
    ("noise", "additive noise sigma 0.2", noise(0.2)),
    ("dup", "half the set duplicated", half_duplicated),
]


def without_classes(evaluator: Any, samples: int, dropped: tuple[int, ...]) -> np.ndarray:
    """``samples`` real training images of the other classes only (as many as the floor)."""
    from fashion_core.dataset import to_unit_range

    data = evaluator.data
    keep = np.flatnonzero(~np.isin(data.y_train, dropped))
    idx = np.random.default_rng(3).choice(keep, size=samples, replace=False)
    return to_unit_range(data.x_train[idx])


def legacy_classifier(path: Path, data: Any) -> Any:
    """The previous evaluator's network (kept here only for the history column)."""
    import keras
    from keras import layers

    if path.is_file():
        return keras.models.load_model(path, compile=False)
    img = keras.Input((28, 28, 1))
    x = layers.Conv2D(32, 3, 2, "same", activation="relu")(img)
    x = layers.Conv2D(64, 3, 2, "same", activation="relu")(x)
    x = layers.Dropout(0.3)(layers.Flatten()(x))
    features = layers.Dense(128, "relu", name="features")(x)
    model = keras.Model(img, layers.Dense(10, name="logits")(features))
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    from fashion_core.dataset import to_unit_range

    model.fit(to_unit_range(data.x_train), data.y_train.astype(np.int32), 128, 3, verbose=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return model


def snapshot_generator(run: Path, epochs: int) -> tuple[Any, int]:
    """The generator a ``benchmarks.timeline`` run kept at the end of ``epochs``."""
    from benchmarks.timeline import RECIPE, read_index, snapshot_name
    from training.model import build_generator

    cfg = json.loads((run / RECIPE).read_text())["config"]
    line = next(r for r in read_index(run) if abs(r["epochs"] - epochs) < 1e-3)
    generator = build_generator(cfg["latent_dim"], cfg["width"])
    with np.load(run / snapshot_name(line["step"])) as f:
        generator.set_weights([f[f"arr_{i}"] for i in range(len(f.files))])
    return generator, line["images"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.evaluator", description=__doc__)
    p.add_argument("--samples", type=int, default=10000)
    p.add_argument("--classifier", type=Path, default=None)
    p.add_argument("--legacy", type=Path, default=None, help="previous evaluator's classifier")
    p.add_argument("--snapshots", type=Path, nargs="*", default=[], help="timeline runs")
    p.add_argument("--epochs", default="5,10,20,50")
    p.add_argument("--data-dir", type=Path, default=os.environ.get("FASHION_MNIST_DIR") or None)
    p.add_argument("--json-out", type=Path, default=None)
    args = p.parse_args(argv)
    quiet_tensorflow()
    from evaluation.classifier import default_path, info_path, load_or_train_classifier
    from evaluation.figures import Evaluator
    from fashion_core.dataset import load

    data = load(args.data_dir)
    path = args.classifier or default_path()
    evaluator = Evaluator(data, load_or_train_classifier(path, data, log=print))
    legacy = Evaluator(data, legacy_classifier(args.legacy, data)) if args.legacy else None
    info = json.loads(info_path(path).read_text()) if info_path(path).is_file() else {}
    m = machine()
    print(f"machine: {m.nproc} cores ({m.cpu_model}); classifier {path}: {info}")
    n, rng = args.samples, np.random.default_rng(0)
    real = evaluator.floor_images(n)
    cases: list[tuple[str, str, Callable[[], np.ndarray]]] = [
        ("floor", "real training images (the floor)", lambda: real)
    ]

    def degraded(fn: Degrade) -> Callable[[], np.ndarray]:
        return lambda: fn(real, rng)

    cases += [(fam, name, degraded(fn)) for fam, name, fn in DEGRADATIONS]
    cases.append(("drop", "two classes dropped", lambda: without_classes(evaluator, n, DROPPED)))
    for run in args.snapshots:
        for e in (int(v) for v in args.epochs.split(",") if v):
            generator, _ = snapshot_generator(run, e)

            def draw(g: Any = generator) -> np.ndarray:
                z = np.random.default_rng(0).standard_normal((n, 100)).astype(np.float32)
                return np.concatenate(
                    [np.asarray(g(z[i : i + 500], training=False)) for i in range(0, n, 500)]
                )

            cases.append((f"seed:{run.name}", f"seed's recipe {run.name}, {e} epochs", draw))
    header = "| images | FID | precision | recall | class % min–max |"
    print(f"\n{header}{' old FID (history) |' if legacy else ''}")
    print("|---|---:|---:|---:|---|" + ("---:|" if legacy else ""))
    rows = []
    for family, name, make in cases:
        images = make()
        fig = evaluator.figures_of_images(images, reference=n)
        shares = [100 * s for s in fig["class_shares"]]
        row = {"family": family, "case": name, **fig}
        line = (
            f"| {name} | {fig['fid']:.2f} | {fig['precision']:.3f} | {fig['recall']:.3f} |"
            f" {min(shares):.1f}–{max(shares):.1f} |"
        )
        if legacy is not None:
            row["old_fid"] = legacy.figures_of_images(images, reference=n)["fid"]
            line += f" {row['old_fid']:.2f} |"
        print(line, flush=True)
        rows.append(row)
    if args.json_out:
        args.json_out.write_text(json.dumps(rows, indent=1))
    print()
    for check, ok in verdicts(rows):
        print(f"{'PASS' if ok else 'FAIL'}  {check}")
    return 0


def verdicts(rows: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    """What the evaluator must show to be trusted: every degradation clearly worse than the
    floor (FID at least twice the floor's, or precision or recall 0.1 below it), each family
    worse as the dose grows, and more training of the seed's recipe ranked better, each step
    by at least 10%."""
    floor = next(r for r in rows if r["family"] == "floor")
    out = []
    for r in rows:
        if r["family"] in ("floor",) or r["family"].startswith("seed:"):
            continue
        fid_x = r["fid"] / floor["fid"]
        drop = max(floor["precision"] - r["precision"], floor["recall"] - r["recall"])
        out.append(
            (
                f"{r['case']}: FID {fid_x:.1f}x the floor, P/R down {drop:.2f}",
                fid_x >= 2 or drop >= 0.1,
            )
        )
    families: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        families.setdefault(r["family"], []).append(r)
    for family, members in families.items():
        if len(members) < 2 or family in ("floor",):
            continue
        fids = [m["fid"] for m in members]
        if family.startswith("seed:"):  # listed by growing epochs: FID must fall, by 10% a step
            ok = all(b < 0.9 * a for a, b in itertools.pairwise(fids))
            out.append(
                (f"{family} ranks more epochs better: {', '.join(f'{f:.1f}' for f in fids)}", ok)
            )
        else:  # listed by growing dose: FID must grow
            ok = all(b > a for a, b in itertools.pairwise(fids))
            out.append(
                (f"{family} worse as the dose grows: {', '.join(f'{f:.1f}' for f in fids)}", ok)
            )
    return out


if __name__ == "__main__":
    raise SystemExit(main())
