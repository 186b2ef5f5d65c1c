"""Command-line options shared by ``python -m export`` and ``python -m training`` (which releases
what it trains), so both read the data and the evaluator from the same places."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from evaluation.classifier import default_path
from fashion_core.contract import COND_MODEL_NAME, MODEL_NAME


def add_release_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model-name",
        default=None,
        help=f"model name used in warmup requests (default: {MODEL_NAME}, or "
        f"{COND_MODEL_NAME} for a conditional generator)",
    )
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


def model_name(args: argparse.Namespace, conditional: bool) -> str:
    """``--model-name``, else the contract's name for this kind of generator."""
    return str(args.model_name or (COND_MODEL_NAME if conditional else MODEL_NAME))
