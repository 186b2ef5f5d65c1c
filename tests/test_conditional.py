"""The class-conditional model (issue 19, first slice): networks that take a category, a trainer
that feeds them labels under both backends, a SavedModel that takes ``z`` and ``category``,
warm-up records with both inputs, a card with the categories and per-class figures, resume."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fashion_core.contract import CATEGORIES_EN, CATEGORIES_ES, CATEGORY, COND_MODEL_NAME
from fashion_core.dataset import FashionMNIST
from tests.conftest import ENV, JAX_TWO_CPUS, REPO

LATENT = 100


def _weights(net: Any) -> list[np.ndarray]:
    return [np.array(w) for w in net.get_weights()]


def _png_size(png: bytes) -> tuple[int, int]:
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    return width, height


def test_contract_names_ten_categories_in_two_languages() -> None:
    assert CATEGORY == "category" and COND_MODEL_NAME == "fashion_gan_cond"
    assert len(CATEGORIES_EN) == len(CATEGORIES_ES) == 10
    assert CATEGORIES_EN[3] == "dress" and CATEGORIES_ES[3] == "vestido"
    assert CATEGORIES_ES[1] == "pantalón" and CATEGORIES_ES[9] == "botín"


def test_config_field_with_every_profile_and_old_runs_are_the_same_config() -> None:
    from training.config import PROFILES, make_config
    from training.runs import same_config

    for profile in PROFILES:
        assert not make_config(profile).conditional
        cfg = make_config(profile, ["conditional=true"])
        assert cfg.conditional and cfg.epochs == PROFILES[profile].epochs
    old = make_config("quick").to_dict()
    del old["conditional"]  # a run from before the field
    assert same_config(old, make_config("quick"))
    assert not same_config(old, make_config("quick", ["conditional=true"]))


def test_generator_shapes_and_the_category_changes_the_image() -> None:
    from training.model import CATEGORY_EMBED, build_generator

    g = build_generator(num_classes=10)
    assert [t.name for t in g.inputs] == ["z", "category"]
    assert g.input_shape == [(None, LATENT), (None,)] and g.output_shape == (None, 28, 28, 1)
    names = [type(layer).__name__ for layer in g.layers]
    assert names.count("Conv2DTranspose") == 3 and names.count("BatchNormalization") == 3
    assert names.count("Embedding") == 1
    dense = next(layer for layer in g.layers if type(layer).__name__ == "Dense")
    assert dense.units == 7 * 7 * 256 and not dense.use_bias
    assert dense.kernel.shape == (LATENT + CATEGORY_EMBED, 7 * 7 * 256)
    z = np.tile(np.random.default_rng(0).standard_normal((1, LATENT)).astype(np.float32), (10, 1))
    out = np.asarray(g([z, np.arange(10, dtype=np.int32)], training=False))
    assert out.min() >= -1 and out.max() <= 1
    assert all(not np.allclose(out[0], out[k]) for k in range(1, 10))


@pytest.mark.parametrize("norm", ["none", "spectral"])
def test_discriminator_adds_the_projection_term(norm: str) -> None:
    """logit(x, y) = psi(h(x)) + <embed(y), h(x)>: with psi and h read off the network, the
    logit of every (image, category) pair is rebuilt by hand."""
    import keras

    from training.model import build_discriminator

    d = build_discriminator(num_classes=10, norm=norm, augment="translation")
    assert [t.name for t in d.inputs] == ["image", "category"] and d.output_shape == (None, 1)
    names = [type(layer).__name__ for layer in d.layers]
    assert names.count("Dropout") == 2
    flatten = next(layer for layer in d.layers if type(layer).__name__ == "Flatten")
    features = keras.Model(d.inputs[0], flatten.output)
    rng = np.random.default_rng(1)
    x = np.repeat(rng.uniform(-1, 1, (1, 28, 28, 1)).astype(np.float32), 10, axis=0)
    y = np.arange(10, dtype=np.int32)
    logits = np.asarray(d([x, y], training=False))[:, 0]
    h = np.asarray(features(x, training=False))
    # spectral normalisation wraps the layers; inference uses the inner layers' weights
    inner = [getattr(layer, "layer", layer) for layer in d.layers]
    dense = [layer for layer in inner if type(layer).__name__ == "Dense"]
    psi_layer = next(layer for layer in dense if layer.name != "category_embed")
    kernel, bias = np.asarray(psi_layer.kernel), np.asarray(psi_layer.bias)
    embeddings = np.asarray(next(layer for layer in dense if layer.name == "category_embed").kernel)
    assert embeddings.shape == (10, h.shape[1])
    psi = h @ kernel[:, 0] + bias[0]
    projection = np.sum(embeddings[y] * h, axis=1)
    np.testing.assert_allclose(logits, psi + projection, rtol=1e-4, atol=1e-4)
    assert np.ptp(logits) > 0  # one image, ten categories, ten logits


def test_feed_carries_the_labels_with_their_images() -> None:
    from training.data import Feed

    n = 40
    labels = np.arange(n) % 10
    images = np.broadcast_to((labels * 20).astype(np.uint8)[:, None, None], (n, 28, 28)).copy()
    feed = Feed.from_uint8(images, 8, LATENT, 2, seed=3, labels=labels)
    chunks = list(feed.chunks(0))
    assert [len(c) for c in chunks] == [4, 4, 4] and [c[0].shape[0] for c in chunks] == [2, 2, 1]
    for real, noise, got, categories in chunks:
        assert got.shape == categories.shape == noise.shape[:2] and got.dtype == np.int32
        # the pixel value names the label: the shuffle moved both together
        np.testing.assert_array_equal(np.rint((real[:, :, 0, 0, 0] + 1) * 127.5 / 20), got)
        assert categories.min() >= 0 and categories.max() <= 9
    again = list(feed.chunks(0))
    for a, b in zip(chunks, again, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)  # seeded by (seed, epoch): resumable
    unconditional = Feed.from_uint8(images, 8, LATENT, 2, seed=3)
    assert all(len(c) == 2 for c in unconditional.chunks(0))


def test_one_compiled_call_updates_both_networks_with_labels() -> None:
    """The TensorFlow step of a conditional run (two steps a call, R1 every step, DiffAugment,
    EMA): both networks move, the category embeddings of both among them."""
    from training.config import make_config
    from training.devices import place
    from training.parts import build_parts

    cfg = make_config(
        "smoke",
        ["conditional=true", "batch_size=8", "steps_per_execution=2", "ema_decay=0.99",
         "r1_gamma=1", "r1_every=1", "augment=translation", "width=0.25"],
    )  # fmt: skip
    placement = place(cfg)
    with placement.scope():
        parts = build_parts(cfg)
    g0, d0, e0 = _weights(parts.generator), _weights(parts.discriminator), _weights(parts.ema)
    rng = np.random.default_rng(1)
    real = rng.uniform(-1, 1, (2, 8, 28, 28, 1)).astype(np.float32)
    noise = rng.standard_normal((2, 8, LATENT)).astype(np.float32)
    labels = rng.integers(0, 10, (2, 8), dtype=np.int32)
    categories = rng.integers(0, 10, (2, 8), dtype=np.int32)
    g_loss, d_loss = placement.runner(parts, cfg).run(real, noise, labels, categories)
    assert np.isfinite(g_loss) and np.isfinite(d_loss) and d_loss > 0
    g1, d1, e1 = _weights(parts.generator), _weights(parts.discriminator), _weights(parts.ema)
    assert all(not np.array_equal(a, b) for a, b in zip(g0, g1, strict=True) if a.ndim > 1)
    assert all(not np.array_equal(a, b) for a, b in zip(d0, d1, strict=True) if a.ndim > 1)
    assert any(not np.array_equal(a, b) for a, b in zip(e0, e1, strict=True))
    g_embed = next(w for w in parts.generator.weights if "embedding" in w.path)
    d_embed = next(w for w in parts.discriminator.weights if "category_embed" in w.path)
    assert g_embed.shape[0] == d_embed.shape[0] == 10
    assert int(parts.g_opt.iterations.numpy()) == 2


@pytest.fixture(scope="module")
def cond_version(tmp_path_factory: pytest.TempPathFactory, classifier_path: Path) -> Path:
    """A smoke conditional run of the CLI, data parallel over two CPU devices (each replica
    takes its slice of the labels too), published with a tiny evaluation as version 1."""
    root = tmp_path_factory.mktemp("cond")
    base = root / "models" / "fashion_gan_cond"
    proc = subprocess.run(
        [
            sys.executable, "-m", "training", "--profile", "smoke",
            "--set", "conditional=true", "--set", "train_samples=128", "--set", "eval_samples=40",
            "--set", "devices=2",
            "--model-base-path", str(base), "--run-dir", str(root / "run"),
            "--keras-out", str(root / "g.keras"), "--classifier", str(classifier_path), "--quiet",
        ],
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Publicada la versión 1" in proc.stdout and "acuerdo" in proc.stdout
    return base / "1"


def test_saved_model_takes_z_and_category(cond_version: Path) -> None:
    import tensorflow as tf

    fn = tf.saved_model.load(str(cond_version)).signatures["serving_default"]
    spec = fn.structured_input_signature[1]
    assert sorted(spec) == ["category", "z"]
    assert spec["z"].dtype == tf.float32 and spec["z"].shape.as_list() == [None, LATENT]
    assert spec["category"].dtype == tf.int64 and spec["category"].shape.as_list() == [None]
    assert fn.structured_outputs["images"].shape.as_list() == [None, 28, 28, 1]
    z = np.random.default_rng(0).standard_normal((1, LATENT)).astype(np.float32)
    z10 = tf.constant(np.repeat(z, 10, axis=0))
    out = fn(z=z10, category=tf.constant(np.arange(10), tf.int64))["images"].numpy()
    assert out.shape == (10, 28, 28, 1) and out.min() >= -1 and out.max() <= 1
    # the same z as ten categories: ten different images
    assert all(np.abs(out[0] - out[k]).max() > 1e-3 for k in range(1, 10))
    again = fn(z=z10, category=tf.constant(np.arange(10), tf.int64))["images"].numpy()
    np.testing.assert_array_equal(out, again)
    with pytest.raises(tf.errors.InvalidArgumentError, match="category must be 0-9"):
        fn(z=tf.constant(z), category=tf.constant([10], tf.int64))


def test_card_says_conditional_with_categories_and_per_class_figures(cond_version: Path) -> None:
    card = json.loads((cond_version / "assets.extra" / "model_card.json").read_text())
    assert card["conditional"] is True and card["version"] == 1
    assert card["categories"][3] == {"index": 3, "en": "dress", "es": "vestido"}
    assert [c["es"] for c in card["categories"]] == list(CATEGORIES_ES)
    assert card["signature"]["inputs"]["category"]["dtype"] == "int64"
    assert card["training"]["config"]["conditional"] is True
    q = card["quality"]
    assert q["samples"] == 40 and "fid" in q and 0 <= q["agreement"] <= 1
    assert 0 <= q["classifier_accuracy"] <= 1
    for key in ("fid_per_class", "fid_real_floor_per_class", "agreement_per_class",
                "classifier_accuracy_per_class"):  # fmt: skip
        assert len(q[key]) == 10, key
    assert q["samples_per_class"] == [4] * 10  # the categories drawn each as often


def test_unconditional_card_has_no_conditional_keys() -> None:
    from fashion_core.cards import build_card

    card = build_card(LATENT)
    assert "conditional" not in card and "categories" not in card
    assert list(card["signature"]["inputs"]) == ["z"]


def test_warmup_records_carry_both_inputs(cond_version: Path) -> None:
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    from export.warmup import WARMUP_BATCHES

    path = cond_version / "assets.extra" / "tf_serving_warmup_requests"
    sizes = []
    for raw in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
        request = prediction_log_pb2.PredictionLog.FromString(raw).predict_log.request
        assert request.model_spec.name == COND_MODEL_NAME  # the default name of this kind
        z = tf.make_ndarray(request.inputs["z"])
        category = tf.make_ndarray(request.inputs["category"])
        assert z.dtype == np.float32 and category.dtype == np.int64
        assert category.shape == (z.shape[0],) and 0 <= category.min() <= category.max() <= 9
        sizes.append(z.shape[0])
    assert sizes == list(WARMUP_BATCHES)


def test_run_sheet_has_a_row_per_category(cond_version: Path) -> None:
    from fashion_core.render import sheet_size
    from training.train import COND_SHEET_COLS

    sheets = cond_version.parents[2] / "run" / "sheets"
    assert sorted(p.name for p in sheets.iterdir()) == ["epoch_001.png", "epoch_002.png"]
    png = (sheets / "epoch_002.png").read_bytes()
    assert _png_size(png) == sheet_size(10, COND_SHEET_COLS, spacing=2, scale=2)


class _Stop(Exception):
    pass


def test_resume_of_a_conditional_run(tmp_path: Path, fashion: FashionMNIST) -> None:
    """Stopped after its first epoch's checkpoint, the same config goes on from epoch 1."""
    from training.config import make_config
    from training.train import train

    cfg = make_config(
        "smoke", ["conditional=true", "train_samples=64", "batch_size=16", "width=0.25"]
    )
    run_dir = tmp_path / "run"
    lines: list[str] = []

    def stop(epochs_done: int, _generator: Any) -> None:
        raise _Stop

    with pytest.raises(_Stop):
        train(cfg, fashion, run_dir, log=lines.append, verbose=0, on_epoch=stop)
    state = json.loads((run_dir / "state.json").read_text())
    assert state["completed_epochs"] == 1 and state["config"]["conditional"] is True
    result = train(cfg, fashion, run_dir, log=lines.append, verbose=0)
    assert "Reanudando desde la época 1/2" in "\n".join(lines)
    assert result.resumed_from == 1 and result.state["completed_epochs"] == 2
    assert len(result.generator.inputs) == 2
    assert sorted(p.name for p in (run_dir / "sheets").iterdir()) == [
        "epoch_001.png",
        "epoch_002.png",
    ]


@pytest.fixture
def jax_keras_file(tmp_path: Path) -> Iterator[Path]:
    proc = subprocess.run(
        [
            sys.executable, "-m", "training", "--profile", "smoke",
            "--set", "conditional=true", "--set", "train_samples=64", "--set", "batch_size=16",
            "--set", "width=0.25", "--set", "ema_decay=0.99", "--set", "r1_gamma=1",
            "--set", "r1_every=2", "--set", "steps_per_execution=2", "--set", "devices=2",
            "--run-dir", str(tmp_path / "run"), "--keras-out", str(tmp_path / "g.keras"),
            "--no-publish", "--quiet",
        ],
        cwd=REPO, env={**ENV, **JAX_TWO_CPUS}, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["backend"] == "jax" and len(state["devices"]) == 2
    yield tmp_path / "g.keras"


def test_jax_backend_trains_the_conditional_model(jax_keras_file: Path) -> None:
    """Under JAX (in a process of its own, data parallel over two CPU devices): the step with
    labels, R1 and the EMA runs, and the saved generator takes a category here under
    TensorFlow."""
    import keras

    g = keras.models.load_model(jax_keras_file, compile=False)
    assert [t.name for t in g.inputs] == ["z", "category"]
    z = np.repeat(np.random.default_rng(0).standard_normal((1, LATENT)), 2, axis=0)
    out = np.asarray(g([z.astype(np.float32), np.array([0, 5], np.int32)], training=False))
    assert np.all(np.isfinite(out)) and not np.allclose(out[0], out[1])


def test_a_conditional_version_is_scored_per_category(
    cond_version: Path, classifier_path: Path, fashion: FashionMNIST
) -> None:
    """The evaluator scores a published conditional version through its signature (the
    progressive gate's and ``python -m evaluation``'s path) as the card scored its generator."""
    import keras

    from evaluation.figures import Evaluator

    card = json.loads((cond_version / "assets.extra" / "model_card.json").read_text())
    classifier = keras.models.load_model(classifier_path, compile=False)
    figures = Evaluator(fashion, classifier).figures_for_version(cond_version, 40)
    assert figures["conditional"] is True
    assert figures["fid"] == pytest.approx(card["quality"]["fid"], rel=1e-3)
    assert figures["agreement_per_class"] == card["quality"]["agreement_per_class"]


def test_progressive_candidates_are_scored_per_category(
    tmp_path: Path, classifier_path: Path, fashion: FashionMNIST
) -> None:
    from fashion_core.progress import ProgressFile
    from training.config import make_config
    from training.model import build_generator
    from training.progressive import ProgressiveJob

    cfg = make_config("quick", ["conditional=true", "eval_samples=20"])
    job = ProgressiveJob(
        cfg, data=fashion, run_dir=tmp_path / "run", base_path=tmp_path / "models",
        classifier_path=classifier_path, publish=lambda *_: 1, prune=list,
        log=lambda _: None, progress=ProgressFile(None),
    )  # fmt: skip
    figures = job._figures(build_generator(width=0.5, num_classes=10))
    assert figures["samples_per_class"] == [2] * 10 and len(figures["fid_per_class"]) == 10


def test_export_cli_publishes_a_conditional_generator(cond_version: Path, tmp_path: Path) -> None:
    """``python -m export`` (how a JAX run publishes) keeps the category: signature, card and
    warm-up records under the conditional model's name."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    base = tmp_path / "fashion_gan_cond"
    proc = subprocess.run(
        [sys.executable, "-m", "export", "--generator", str(cond_version.parents[2] / "g.keras"),
         "--model-base-path", str(base), "--no-eval"],
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    fn = tf.saved_model.load(str(base / "1")).signatures["serving_default"]
    assert sorted(fn.structured_input_signature[1]) == ["category", "z"]
    card = json.loads((base / "1" / "assets.extra" / "model_card.json").read_text())
    assert card["conditional"] is True and len(card["categories"]) == 10
    warmup = base / "1" / "assets.extra" / "tf_serving_warmup_requests"
    raw = next(iter(tf.data.TFRecordDataset(str(warmup))))
    request = prediction_log_pb2.PredictionLog.FromString(raw.numpy()).predict_log.request
    assert request.model_spec.name == COND_MODEL_NAME and "category" in request.inputs


@pytest.mark.parametrize(
    ("overrides", "base", "keras_out", "run_dir", "name"),
    [
        ([], "models/fashion_gan", "modelos/moda_generador.keras", "runs/quick", "fashion_gan"),
        (["conditional=true"], "models/fashion_gan_cond", "modelos/moda_generador_cond.keras",
         "runs/quick_cond", "fashion_gan_cond"),
    ],
)  # fmt: skip
def test_a_conditional_run_has_defaults_of_its_own(
    overrides: list[str], base: str, keras_out: str, run_dir: str, name: str
) -> None:
    from training.__main__ import fill_defaults, parse_args
    from training.config import make_config

    args = parse_args([])
    assert fill_defaults(args, make_config("quick", overrides)) == Path(run_dir)
    assert (args.model_base_path, args.keras_out) == (Path(base), Path(keras_out))
    assert args.model_name == name
    given = parse_args(["--model-base-path", "elsewhere", "--model-name", "other"])
    fill_defaults(given, make_config("quick", overrides))
    assert (given.model_base_path, given.model_name) == (Path("elsewhere"), "other")
