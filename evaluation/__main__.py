"""Print a published version's quality figures beside the real-data floors.

python -m evaluation --model-base-path models/fashion_gan            # newest version
python -m evaluation --model-base-path models/fashion_gan --version 3 --samples 2000
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from evaluation import EvaluateError
from fashion_core.cards import read_card
from fashion_core.dataset import DataError, load
from fashion_core.quiet import quiet_tensorflow
from fashion_core.versions import list_versions, version_dir

ROWS = [  # (figure, generated key, real floor key)
    ("fid", "fid", "fid_real_floor"),
    ("precision", "precision", "precision_real_floor"),
    ("recall", "recall", "recall_real_floor"),
    ("class_kl_to_uniform", "class_kl_to_uniform", "class_kl_real_floor"),
    ("nn_distance_mean", "nn_distance_mean", "nn_distance_real_floor_mean"),
    ("nn_distance_median", "nn_distance_median", "nn_distance_real_floor_median"),
]


def pick_version(base: Path, version: int | None) -> tuple[int, Path]:
    if not base.is_dir():
        raise EvaluateError(f"Model base path {base} does not exist or is not a folder.")
    versions = list_versions(base)
    if not versions:
        raise EvaluateError(f"{base} holds no numeric version folders; export a model first.")
    if version is None:
        version = versions[-1]
    if version not in versions:
        known = ", ".join(str(v) for v in versions)
        raise EvaluateError(f"Version {version} is not in {base}; it holds {known}.")
    return version, version_dir(base, version)


def format_table(figures: dict[str, Any]) -> str:
    """figure | generated | real floor, aligned."""
    lines = [f"{'figure':<22}{'generated':>12}{'real floor':>12}"]
    for name, gen_key, real_key in ROWS:
        gen = f"{figures[gen_key]:.4f}" if gen_key in figures else "-"
        real = f"{figures[real_key]:.4f}" if real_key in figures else "-"
        lines.append(f"{name:<22}{gen:>12}{real:>12}")
    if "class_shares" in figures:
        shares = " ".join(f"{100 * s:.1f}" for s in figures["class_shares"])
        lines.append(f"{'class shares %':<22}{shares}")
    return "\n".join(lines)


def _stored(version_path: Path) -> str | None:
    card = read_card(version_path)
    if not card:
        return None
    quality = card.get("quality")
    if not isinstance(quality, dict):
        return "(no quality figures)"
    return "\n".join(
        f"{key:<34}{value:>12.4f}" if isinstance(value, int | float) else f"{key:<34}{value!s:>12}"
        for key, value in quality.items()
    )


def build_parser() -> argparse.ArgumentParser:
    from evaluation.classifier import default_path

    parser = argparse.ArgumentParser(
        prog="python -m evaluation",
        description="Print a published version's quality figures (FID, mode coverage, "
        "memorisation) beside the real-data floors, measured with the project's classifier.",
    )
    parser.add_argument(
        "--model-base-path",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder with numeric version folders (as TF Serving's --model_base_path)",
    )
    parser.add_argument(
        "--version",
        type=int,
        default=None,
        metavar="N",
        help="version number to score (default: the highest numeric version folder)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=os.environ.get("FASHION_MNIST_DIR") or None,
        metavar="DIR",
        help="folder with the four Fashion-MNIST IDX gzip files (default: $FASHION_MNIST_DIR, "
        "else Keras' downloader and cache)",
    )
    parser.add_argument(
        "--classifier",
        type=Path,
        default=default_path(),
        metavar="PATH",
        help="classifier .keras file; trained and saved there if missing "
        "(default: $FASHION_GAN_CLASSIFIER, else artifacts/fmnist_classifier.keras)",
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=10000,
        metavar="N",
        help="generated images to score, and real images per floor (default: 10000)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, metavar="N", help="seed of the noise vectors z (default: 0)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet_tensorflow()  # no CUDA probing noise on a CPU machine
    if args.samples < 2:
        parser.error("--samples must be at least 2")
    from evaluation.classifier import load_or_train_classifier
    from evaluation.figures import Evaluator

    try:
        version, path = pick_version(args.model_base_path, args.version)
        data = load(args.data_dir)
        classifier = load_or_train_classifier(args.classifier, data, log=print)
        figures = Evaluator(data, classifier).figures_for_version(path, args.samples, args.seed)
    except (EvaluateError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{path} (version {version}), {args.samples} samples, seed {args.seed}")
    print(format_table(figures))
    stored = _stored(path)
    if stored is not None:
        print(f"\nstored in {path / 'assets.extra' / 'model_card.json'} (quality):")
        print(stored)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
