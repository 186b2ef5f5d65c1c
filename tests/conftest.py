"""Shared fixtures: the real Fashion-MNIST files, a small evaluator classifier, two real
versions published by the smoke profile through the training command line, and, for the whole
session, one model server (the stand-in or a real TF Serving) serving them with embedded, REST
and gRPC gateways in front (they only read: tests that change versions start their own)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from fashion_core.dataset import FashionMNIST
from gateway.app import create_app
from tests.fashion_data import keras_cache, local_copy
from tests.servers import BACKENDS, ModelServer, model_server, serve, settings_for

if TYPE_CHECKING:
    from tests.standin_support import Models

REPO = Path(__file__).resolve().parents[1]
# the local copy of the data when there is one (tests/fashion_data.py), else Keras' cache
DATA_DIR = local_copy()
# every child process reads the same copy: with a local one, tests download nothing
ENV = {
    **os.environ,
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "PYTHONUNBUFFERED": "1",
    **({"FASHION_MNIST_DIR": str(DATA_DIR)} if DATA_DIR is not None else {}),
}

TENSORFLOW = {"KERAS_BACKEND": "tensorflow"}
# JAX sees as many CPU devices as this flag asks for, set before it starts
JAX_TWO_CPUS = {"KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}


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
    """A folder with the four IDX files: the local copy, else Keras' cache (downloaded once)."""
    folder = DATA_DIR if DATA_DIR is not None else keras_cache()
    if not (folder / "train-images-idx3-ubyte.gz").is_file():
        pytest.fail(f"Fashion-MNIST not found at {folder}; set FASHION_MNIST_DIR")
    return folder


@pytest.fixture(scope="session")
def fashion(data_dir: Path) -> FashionMNIST:
    """The real data set, read and checked once."""
    from fashion_core.dataset import load_from_dir

    return load_from_dir(data_dir)


@pytest.fixture(scope="session")
def classifier_path(tmp_path_factory: pytest.TempPathFactory, fashion: FashionMNIST) -> Path:
    """A one-epoch evaluator classifier on a subset: enough to exercise the figures quickly."""
    from evaluation.classifier import load_or_train_classifier

    path = tmp_path_factory.mktemp("classifier") / "fmnist_classifier.keras"
    messages: list[str] = []
    load_or_train_classifier(path, fashion, log=messages.append, epochs=1, train_samples=5000)
    assert any(m.startswith("Trained classifier") for m in messages), messages
    return path


@pytest.fixture(scope="session")
def smoke_base(tmp_path_factory: pytest.TempPathFactory, classifier_path: Path) -> Iterator[Path]:
    """models/fashion_gan with versions 1 and 2, each from a smoke training run of the CLI.

    The two runs go in parallel (one per core), each publishing version 1 into a base path of
    its own; the second is then moved in as version 2, with its card saying so. Both train data
    parallel over two virtual CPU devices: version 1 under TensorFlow (MirroredStrategy),
    version 2 under JAX (DataParallel, exported by the TensorFlow side), so every export test
    holds for both backends."""
    import json

    root = tmp_path_factory.mktemp("models")
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "training",
                "--profile",
                "smoke",
                "--model-base-path",
                str(root / f"base{n}" / "fashion_gan"),
                "--run-dir",
                str(root / f"run{n}"),
                "--keras-out",
                str(root / f"g{n}.keras"),
                "--classifier",
                str(classifier_path),
                "--set",
                f"seed={n}",
                "--set",
                "devices=2",
                "--quiet",
            ],
            cwd=REPO,
            env={**ENV, **backend},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n, backend in ((1, TENSORFLOW), (2, JAX_TWO_CPUS))
    ]
    base = root / "fashion_gan"
    base.mkdir()
    for n, proc in enumerate(procs, start=1):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, out[-2000:] + err[-2000:]
        assert "Publicada la versión 1" in out
        (root / f"base{n}" / "fashion_gan" / "1").rename(base / str(n))
        card_path = base / str(n) / "assets.extra" / "model_card.json"
        card = json.loads(card_path.read_text())
        card_path.write_text(json.dumps({**card, "version": n}, indent=2))
    yield base


@pytest.fixture(scope="session")
def cond_base(tmp_path_factory: pytest.TempPathFactory, classifier_path: Path) -> Path:
    """models/fashion_gan_cond with versions 1 and 2 of the class-conditional generator, each
    from a smoke conditional run of the CLI (seeds 1 and 2, in parallel, one per core), with
    a small evaluation each, so their cards carry figures per category."""
    import json

    root = tmp_path_factory.mktemp("cond_models")

    def command(n: int) -> list[str]:
        return [
            sys.executable, "-m", "training", "--profile", "smoke",
            "--set", "conditional=true", "--set", f"seed={n}",
            "--set", "train_samples=128", "--set", "eval_samples=40",
            "--model-base-path", str(root / f"base{n}" / "fashion_gan_cond"),
            "--run-dir", str(root / f"run{n}"), "--keras-out", str(root / f"g{n}.keras"),
            "--classifier", str(classifier_path), "--quiet",
        ]  # fmt: skip

    env, pipe = {**ENV, **TENSORFLOW}, subprocess.PIPE
    procs = [
        subprocess.Popen(command(n), cwd=REPO, env=env, stdout=pipe, stderr=pipe, text=True)
        for n in (1, 2)
    ]
    base = root / "fashion_gan_cond"
    base.mkdir()
    for n, proc in enumerate(procs, start=1):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, out[-2000:] + err[-2000:]
        (root / f"base{n}" / "fashion_gan_cond" / "1").rename(base / str(n))
        card_path = base / str(n) / "assets.extra" / "model_card.json"
        card = json.loads(card_path.read_text())
        card_path.write_text(json.dumps({**card, "version": n}, indent=2))
    return base


@pytest.fixture(scope="session")
def server(smoke_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServer]:
    with model_server(smoke_base, tmp_path_factory.mktemp("tfs")) as s:
        yield s


@pytest.fixture(scope="session")
def gateways(server: ModelServer, smoke_base: Path) -> Iterator[dict[str, str]]:
    from tests.servers import labels_config

    (smoke_base.parent / "models.config").write_text(labels_config({"stable": 1, "canary": 2}))
    urls: dict[str, str] = {}
    contexts = [serve(create_app(settings_for(b, server, smoke_base))) for b in BACKENDS]
    try:
        for backend, ctx in zip(BACKENDS, contexts, strict=True):
            urls[backend] = ctx.__enter__()
        yield urls
    finally:
        for ctx in contexts:
            ctx.__exit__(None, None, None)


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    """The stand-in tests' SavedModels (tests/standin_support.py), built once per session."""
    from tests.standin_support import build_models

    return build_models(tmp_path_factory.mktemp("saved"))


@pytest.fixture(scope="session")
def chromium_or_none(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium for the session (tests/browser.py), or None without one."""
    from tests.browser import chromium

    with chromium(tmp_path_factory.mktemp("chromium")) as driver:
        yield driver


# the folders a gateway or the Python API uses with their default settings (relative to the
# working directory, the repository when tests run): no test may start, or even look for, a
# training job there (one left running trains for an hour after the suite has finished)
DEFAULT_STATE = (REPO / "runs" / "jobs", REPO / "models" / "fashion_gan")


def _default_state() -> list[tuple[bool, int]]:
    return [(p.exists(), p.stat().st_mtime_ns if p.exists() else 0) for p in DEFAULT_STATE]


@pytest.fixture(autouse=True)
def _nothing_in_the_default_folders() -> Iterator[None]:
    before = _default_state()
    yield
    assert _default_state() == before, (
        "this test used the repository's own runs/jobs or models/fashion_gan (the default "
        "GATEWAY_JOBS_DIR and MODEL_BASE_PATH): give it folders of its own"
    )
