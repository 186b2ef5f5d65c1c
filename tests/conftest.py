"""Shared fixtures: the real Fashion-MNIST files, a small evaluator classifier, and two real
versions published by the smoke profile through the training command line."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(
    os.environ.get("FASHION_MNIST_DIR") or REPO.parent / "shared" / "datasets" / "fashion-mnist"
)
# every child process reads the local copy of the data: tests never download anything
ENV = {
    **os.environ,
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "PYTHONUNBUFFERED": "1",
    "FASHION_MNIST_DIR": str(DATA_DIR),
}


def run_cli(
    *args: str, timeout: float = 300, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m <args>`` from the repo root, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO,
        env={**ENV, **(env_extra or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.fail(f"Fashion-MNIST not found at {DATA_DIR}; set FASHION_MNIST_DIR")
    return DATA_DIR


@pytest.fixture(scope="session")
def classifier_path(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A one-epoch evaluator classifier on a subset: enough to exercise the figures quickly."""
    from training.data import load_from_dir
    from training.evaluate import load_or_train_classifier

    path = tmp_path_factory.mktemp("classifier") / "fmnist_classifier.keras"
    load_or_train_classifier(
        path, load_from_dir(data_dir), log=lambda _: None, epochs=1, train_samples=5000
    )
    return path


@pytest.fixture(scope="session")
def smoke_base(tmp_path_factory: pytest.TempPathFactory, classifier_path: Path) -> Iterator[Path]:
    """models/fashion_gan with versions 1 and 2, each from a smoke training run of the CLI."""
    root = tmp_path_factory.mktemp("models")
    base = root / "fashion_gan"
    for n in (1, 2):
        proc = run_cli(
            "training",
            "--profile",
            "smoke",
            "--model-base-path",
            str(base),
            "--run-dir",
            str(root / f"run{n}"),
            "--keras-out",
            str(root / f"g{n}.keras"),
            "--classifier",
            str(classifier_path),
            "--set",
            f"seed={n}",
            "--quiet",
        )
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert f"Publicada la versión {n}" in proc.stdout
    yield base
