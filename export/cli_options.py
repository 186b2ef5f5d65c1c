"""Command-line options shared by ``python -m export`` and ``python -m training`` (which releases
what it trains), so both read the data and the evaluator from the same places."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from evaluation.classifier import default_path
from fashion_core.contract import MODEL_NAME


def add_release_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-name", default=MODEL_NAME, help="model name used in warmup requests")
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
        default=default_path(),
        help="evaluator classifier, trained once when missing ($FASHION_GAN_CLASSIFIER)",
    )
