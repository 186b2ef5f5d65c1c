"""The evaluator on the real Fashion-MNIST files, with the session's 1-epoch classifier.

.venv/bin/python -m pytest tests/test_evaluate.py
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from evaluation import EvaluateError
from evaluation.__main__ import main
from evaluation.classifier import EVALUATOR, info_path, load_or_train_classifier
from evaluation.figures import Evaluator, quality_figures
from evaluation.metrics import (
    class_kl_to_uniform,
    class_shares,
    frechet_distance,
    precision_recall,
)
from fashion_core.dataset import FashionMNIST, to_unit_range
from tests.conftest import REPO

TROUSER = 1  # the class a 1-epoch classifier gets most nearly right
SAMPLES = 500  # enough for a stable FID ordering, small enough for 2 CPU cores

Generate = Callable[[np.ndarray], np.ndarray]


@pytest.fixture(scope="module")
def data(fashion: FashionMNIST) -> FashionMNIST:
    return fashion


@pytest.fixture(scope="module")
def classifier(classifier_path: Path, data: FashionMNIST) -> object:
    return load_or_train_classifier(classifier_path, data, log=lambda _: None)


def finite(figures: dict[str, object]) -> bool:
    numbers = [v for v in figures.values() if isinstance(v, int | float)]
    return len(numbers) >= 8 and all(math.isfinite(v) for v in numbers)


def noise_generator(seed: int = 0) -> Generate:
    rng = np.random.default_rng(seed)
    return lambda z: rng.uniform(-1.0, 1.0, (len(z), 28, 28, 1)).astype(np.float32)


def copying_generator(data: FashionMNIST, label: int) -> Generate:
    """A 'generator' that returns training images of one class: memorised and mode-collapsed."""
    pool = to_unit_range(data.x_train[data.y_train == label])

    def generate(z: np.ndarray) -> np.ndarray:
        # z picks the copy, so different noise gives different (but still memorised) images
        idx = (np.abs(z[:, 0]) * 1e6).astype(np.int64) % len(pool)
        return np.asarray(pool[idx])

    return generate


# --- the classifier ------------------------------------------------------------------------------


def test_classifier_round_trips_through_its_file(classifier_path: Path, data: FashionMNIST) -> None:
    mtime = classifier_path.stat().st_mtime_ns
    messages: list[str] = []
    first = load_or_train_classifier(classifier_path, data, log=messages.append)
    second = load_or_train_classifier(classifier_path, data, log=messages.append)
    assert messages == [f"Loaded classifier {classifier_path}."] * 2
    assert classifier_path.stat().st_mtime_ns == mtime  # loaded, not retrained and saved
    x = to_unit_range(data.x_test[:8])
    np.testing.assert_allclose(first(x).numpy(), second(x).numpy(), rtol=1e-6)
    assert first.get_layer("features").units == 128
    # the atomic save leaves no temp file beside it; the sidecar says how well it reads
    names = sorted(p.name for p in classifier_path.parent.iterdir())
    assert names == sorted([classifier_path.name, info_path(classifier_path).name])
    info = json.loads(info_path(classifier_path).read_text())
    assert info["evaluator"] == EVALUATOR and info["train_samples"] == 5000
    assert 0.5 < info["test_accuracy"] <= 1 and len(info["test_accuracy_per_class"]) == 10


def test_classifier_that_does_not_fit_is_retrained(tmp_path: Path, data: FashionMNIST) -> None:
    import keras

    path = tmp_path / "clf.keras"
    inp = keras.Input((28, 28, 1))
    keras.Model(inp, keras.layers.Dense(3)(keras.layers.Flatten()(inp))).save(path)
    messages: list[str] = []
    model = load_or_train_classifier(path, data, log=messages.append, epochs=1, train_samples=256)
    assert "does not fit" in messages[0]
    assert any(m.startswith("Trained classifier") for m in messages)
    assert model.output_shape == (None, 10)


def test_the_previous_evaluators_classifier_is_not_reused(
    tmp_path: Path, data: FashionMNIST
) -> None:
    """A cached classifier of the previous evaluator (first layer strided by 2) fits every
    shape check, but its figures are on another scale: it is retrained, not loaded."""
    import keras

    path = tmp_path / "clf.keras"
    img = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(32, 3, 2, "same", activation="relu")(img)
    x = keras.layers.Dense(128, name="features")(keras.layers.Flatten()(x))
    keras.Model(img, keras.layers.Dense(10)(x), name="fmnist_classifier").save(path)
    messages: list[str] = []
    model = load_or_train_classifier(path, data, log=messages.append, epochs=1, train_samples=256)
    assert "not this evaluator's" in messages[0]
    assert model.name == EVALUATOR.replace("-", "_")


# --- the figures ---------------------------------------------------------------------------------


def test_frechet_distance_is_zero_for_equal_and_finite_for_singular() -> None:
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(50, 8))
    mu, sigma = feats.mean(axis=0), np.cov(feats, rowvar=False)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-6)
    dead = np.zeros((8, 8))  # all-identical images: zero covariance
    fid = frechet_distance(mu + 1.0, dead, mu, sigma)
    assert math.isfinite(fid)
    assert fid == pytest.approx(8.0 + float(np.trace(sigma)), rel=1e-6)


def test_precision_and_recall_tell_fidelity_from_diversity() -> None:
    rng = np.random.default_rng(1)
    real = rng.normal(size=(600, 16))
    assert precision_recall(real, real.copy()) == (1.0, 1.0)
    # a few designs repeated: each lies among the real ones (fidelity), little variety
    collapsed = np.repeat(real[:10], 60, axis=0) + rng.normal(scale=1e-3, size=(600, 16))
    precision, recall = precision_recall(real, collapsed)
    assert precision > 0.95 and recall < 0.2
    # designs far from every real image, with all their variety: neither
    assert precision_recall(real, real + 25.0) == (0.0, 0.0)
    with pytest.raises(EvaluateError, match="more than k=3"):
        precision_recall(real[:3], real)


def test_blur_is_seen(data: FashionMNIST, classifier: object) -> None:
    """Even the session's one-epoch classifier sees blur: the evaluator's reason to exist."""
    from scipy.ndimage import gaussian_filter

    evaluator = Evaluator(data, classifier)
    real = evaluator.floor_images(SAMPLES)
    sharp = evaluator.figures_of_images(real)
    blurred = evaluator.figures_of_images(gaussian_filter(real, sigma=(0, 1.0, 1.0, 0)))
    assert sharp["fid"] == pytest.approx(sharp["fid_real_floor"])
    assert blurred["fid"] > 5 * sharp["fid"] and blurred["recall"] < sharp["recall"] - 0.2
    assert blurred["evaluator"] == sharp["evaluator"] == EVALUATOR


def test_class_kl_spans_zero_to_log10() -> None:
    assert class_kl_to_uniform(np.arange(1000) % 10) == pytest.approx(0.0, abs=1e-12)
    assert class_kl_to_uniform(np.full(100, 4)) == pytest.approx(math.log(10))


def test_class_shares_count_each_class() -> None:
    assert class_shares(np.array([0, 0, 1, 9])) == [0.5, 0.25, 0, 0, 0, 0, 0, 0, 0, 0.25]


def test_real_data_scores_far_better_than_noise(data: FashionMNIST, classifier: object) -> None:
    figures = quality_figures(noise_generator(), data, classifier, samples=SAMPLES, seed=0)
    print("noise vs real floor:", figures)
    assert finite(figures), figures
    assert figures["samples"] == SAMPLES
    # the train-vs-test floor is near 0; uniform noise is nowhere near a garment
    assert figures["fid"] > 20 * figures["fid_real_floor"]
    assert figures["fid"] > 10.0
    # test images are balanced over the classes; the classifier sees them nearly so
    assert figures["class_kl_real_floor"] < 0.3
    # unseen real images are a few units from their nearest training image, noise far more
    assert 2.0 < figures["nn_distance_real_floor_mean"] < figures["nn_distance_mean"]


def test_copied_single_class_is_caught(data: FashionMNIST, classifier: object) -> None:
    figures = quality_figures(copying_generator(data, TROUSER), data, classifier, samples=SAMPLES)
    print("copied trousers:", figures)
    assert finite(figures), figures
    assert max(figures["class_shares"]) > 0.6  # almost everything lands in one class
    assert figures["nn_distance_mean"] < 1e-3  # memorisation: every image is a training image
    assert figures["nn_distance_median"] < 1e-3
    # one mode only: near log(10) = 2.303; a 1-epoch classifier misreads a few trousers
    assert figures["class_kl_to_uniform"] > 0.6 * math.log(10)
    assert figures["class_kl_real_floor"] < 0.3


def test_bad_generator_output_is_one_sentence(data: FashionMNIST, classifier: object) -> None:
    with pytest.raises(EvaluateError, match="shape"):
        quality_figures(lambda z: np.zeros((len(z), 28, 28)), data, classifier, samples=10)
    with pytest.raises(EvaluateError, match="NaN"):
        quality_figures(
            lambda z: np.full((len(z), 28, 28, 1), np.nan), data, classifier, samples=10
        )


# --- the CLI -------------------------------------------------------------------------------------


def save_tiny_generator(version_dir: Path, quality: dict[str, float] | None = None) -> None:
    """A SavedModel with the exporter's signature: z float32 (None, 100) -> {"images": ...}."""
    import tensorflow as tf

    module = tf.Module()
    weights = np.random.default_rng(0).normal(0.0, 0.1, (100, 784)).astype(np.float32)
    module.w = tf.Variable(weights)

    def serve(z: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"images": tf.reshape(tf.tanh(z @ module.w), (-1, 28, 28, 1))}

    module.serve = tf.function(serve, input_signature=[tf.TensorSpec((None, 100), tf.float32)])
    tf.saved_model.save(module, str(version_dir), signatures={"serving_default": module.serve})
    if quality is not None:
        (version_dir / "assets.extra").mkdir()
        card = {"latent_dim": 100, "quality": quality}
        (version_dir / "assets.extra" / "model_card.json").write_text(json.dumps(card))


def test_cli_prints_a_versions_figures(
    tmp_path: Path, classifier_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = tmp_path / "fashion_gan"
    save_tiny_generator(base / "1", quality={"fid": 123.5, "fid_real_floor": 0.5})
    argv = ["--model-base-path", str(base), "--data-dir", str(data_dir)]
    argv += ["--classifier", str(classifier_path), "--samples", "300", "--seed", "3"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    print(out)
    assert "(version 1), 300 samples, seed 3" in out
    lines = out.splitlines()
    top = next(i for i, line in enumerate(lines) if line.startswith("figure"))
    assert lines[top].split() == ["figure", "generated", "real", "floor"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[top + 1 : top + 7]}
    names = ["fid", "precision", "recall", "class_kl_to_uniform", "nn_distance_mean"]
    for name in [*names, "nn_distance_median"]:
        generated, floor = (float(v) for v in rows[name])
        assert math.isfinite(generated) and math.isfinite(floor)
    assert float(rows["fid"][0]) > float(rows["fid"][1])
    shares = next(line for line in lines if line.startswith("class shares %")).split()[3:]
    assert len(shares) == 10 and sum(map(float, shares)) == pytest.approx(100, abs=0.1)
    # the card's stored figures, printed back below the table
    card = lines.index(next(line for line in lines if line.endswith("model_card.json (quality):")))
    assert [line.split() for line in lines[card + 1 :]] == [
        ["fid", "123.5000"],
        ["fid_real_floor", "0.5000"],
    ]


def test_cli_help_documents_every_option() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "evaluation", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    options = ["--model-base-path", "--version", "--data-dir", "--classifier", "--samples"]
    for option in [*options, "--seed"]:
        assert option in result.stdout


@pytest.mark.parametrize("case", ["missing", "empty", "unknown-version", "bad-data", "not-saved"])
def test_cli_errors_are_one_sentence_and_exit_2(
    case: str,
    tmp_path: Path,
    classifier_path: Path,
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = tmp_path / "fashion_gan"
    version: list[str] = []
    if case != "missing":
        base.mkdir()
    if case in ("unknown-version", "bad-data", "not-saved"):
        (base / "1").mkdir()  # a version folder; for "not-saved" it holds no SavedModel
    if case == "unknown-version":
        version = ["--version", "7"]
    if case == "bad-data":
        data_dir = tmp_path / "no-data"
    argv = ["--model-base-path", str(base), "--data-dir", str(data_dir)]
    argv += ["--classifier", str(classifier_path), "--samples", "50", *version]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.endswith(".\n"), err
    assert err.count("\n") == 1 and "Traceback" not in err, err


def test_cli_reads_fashion_mnist_dir_from_the_environment(
    tmp_path: Path,
    classifier_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = tmp_path / "fashion_gan"
    (base / "1").mkdir(parents=True)
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path / "elsewhere"))
    argv = ["--model-base-path", str(base), "--classifier", str(classifier_path)]
    assert main(argv) == 2
    assert "elsewhere" in capsys.readouterr().err  # the loader looked where the variable says
