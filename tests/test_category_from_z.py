"""The first model from conditional networks (``category_from_z``, the ``quick`` profile's):
trained with the labels, published with the first model's signature (z alone), to the first
model's paths; z's first coordinate picks the category, a tenth of N(0, 1) latents each."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fashion_core.contract import COND_MODEL_NAME, MODEL_NAME
from tests.conftest import ENV, REPO


def test_z_picks_each_category_for_a_tenth_of_normal_latents() -> None:
    from export.zcategory import CategoryFromZ

    z = np.random.default_rng(3).standard_normal((40000, 100)).astype(np.float32)
    picked = np.asarray(CategoryFromZ(10)(z))
    shares = np.bincount(picked, minlength=10) / len(z)
    assert picked.min() == 0 and picked.max() == 9
    assert np.all(np.abs(shares - 0.1) < 0.008), shares  # 40,000 draws: sd of a share 0.0015
    # only the first coordinate picks, and the quantiles cut N(0, 1) in tenths
    moved = z.copy()
    moved[:, 1:] = 0.0
    assert np.array_equal(np.asarray(CategoryFromZ(10)(moved)), picked)
    edges = np.array([[-9.0], [-1.2816], [-1.28], [0.0], [1.2816], [9.0]], np.float32)
    got = np.asarray(CategoryFromZ(10)(np.pad(edges, ((0, 0), (0, 99)))))
    assert got.tolist() == [0, 0, 1, 5, 9, 9]


def test_the_quick_profile_trains_conditional_networks_for_the_first_model() -> None:
    from training.__main__ import fill_defaults, parse_args
    from training.config import make_config

    quick = make_config("quick")
    assert quick.category_from_z and quick.labelled and not quick.conditional
    args = parse_args([])
    assert fill_defaults(args, quick) == Path("runs/quick")
    assert (args.model_base_path, args.model_name) == (Path("models/fashion_gan"), MODEL_NAME)
    # the same job publishes the class-conditional model beside the first, unless told not to
    assert (args.cond_model_base_path, args.cond_model_name) == (
        Path("models/fashion_gan_cond"),
        COND_MODEL_NAME,
    )
    elsewhere = parse_args(["--model-base-path", "/models/fashion_gan"])
    fill_defaults(elsewhere, quick)
    assert elsewhere.cond_model_base_path == Path("/models/fashion_gan_cond")
    alone = parse_args(["--no-cond-model"])
    fill_defaults(alone, quick)
    assert alone.cond_model_base_path is None
    # asked for the conditional model, the same profile publishes that one instead
    cond = make_config("quick", ["conditional=true"])
    assert cond.conditional and cond.labelled
    assert fill_defaults(parse_args([]), cond) == Path("runs/quick_cond")


@pytest.fixture(scope="module")
def zcat_version(tmp_path_factory: pytest.TempPathFactory, classifier_path: Path) -> Path:
    root = tmp_path_factory.mktemp("zcat")
    base = root / "models" / MODEL_NAME
    proc = subprocess.run(
        [
            sys.executable, "-m", "training", "--profile", "smoke",
            "--set", "category_from_z=true", "--set", "train_samples=128",
            "--set", "eval_samples=40", "--model-base-path", str(base),
            "--run-dir", str(root / "run"), "--keras-out", str(root / "g.keras"),
            "--classifier", str(classifier_path), "--quiet",
        ],
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Publicada la versión 1" in proc.stdout
    return base / "1"


def test_published_with_the_first_models_signature(zcat_version: Path) -> None:
    import keras
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    fn = tf.saved_model.load(str(zcat_version)).signatures["serving_default"]
    assert list(fn.structured_input_signature[1]) == ["z"]
    z = np.random.default_rng(5).standard_normal((30, 100)).astype(np.float32)
    served = fn(z=tf.constant(z))["images"].numpy()
    assert served.shape == (30, 28, 28, 1)
    # the .keras file holds the same wrapper: it loads (the layer is registered) and agrees
    import export.zcategory

    saved = keras.models.load_model(zcat_version.parents[2] / "g.keras", compile=False)
    assert len(saved.inputs) == 1
    np.testing.assert_allclose(np.asarray(saved(z, training=False)), served, atol=1e-5)
    # the category really is drawn by z: the networks behind it take one
    inner = export.zcategory.inner(saved)
    assert len(inner.inputs) == 2
    card = json.loads((zcat_version / "assets.extra" / "model_card.json").read_text())
    assert "conditional" not in card and card["quality"]["samples"] == 40
    assert card["training"]["config"]["category_from_z"] is True
    warmup = zcat_version / "assets.extra" / "tf_serving_warmup_requests"
    raw = next(iter(tf.data.TFRecordDataset(str(warmup))))
    request = prediction_log_pb2.PredictionLog.FromString(raw.numpy()).predict_log.request
    assert request.model_spec.name == MODEL_NAME and list(request.inputs) == ["z"]


def test_run_sheet_shows_every_category(zcat_version: Path) -> None:
    """The run's own sheets show the networks as trained: one row per category."""
    from PIL import Image

    sheets = sorted((zcat_version.parents[2] / "run" / "sheets").glob("*.png"))
    assert sheets
    with Image.open(sheets[-1]) as sheet:
        assert sheet.height > sheet.width  # 10 rows of a few columns
