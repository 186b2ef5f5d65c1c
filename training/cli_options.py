"""Command-line options shared by ``python -m training`` and ``python -m export``, so both read
the data and the evaluator from the same places with the same defaults."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_release_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-name", default="fashion_gan", help="model name used in warmup requests")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=os.environ.get("FASHION_MNIST_DIR") or None,
        help="folder with the four Fashion-MNIST IDX gzip files (default: $FASHION_MNIST_DIR, "
        "else keras.datasets' KERAS_HOME cache or download)",
    )
    p.add_argument(
        "--classifier",
        type=Path,
        default=Path(
            os.environ.get("FASHION_GAN_CLASSIFIER") or "artifacts/fmnist_classifier.keras"
        ),
        help="evaluator classifier, trained once when missing ($FASHION_GAN_CLASSIFIER)",
    )
