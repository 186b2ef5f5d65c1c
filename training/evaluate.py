"""Quality figures for an exported generator: FID, mode coverage, memorisation, real floors.

    python -m training.evaluate --model-base-path models/fashion_gan            # newest version
    python -m training.evaluate --model-base-path models/fashion_gan --version 3 --samples 2000

The figures are measured with a small Fashion-MNIST CNN that the project trains once (about a
minute on 2 CPU cores) and keeps outside git at ``artifacts/fmnist_classifier.keras``; every
version is scored with the same file, so figures are comparable across versions:

- ``fid``: Fréchet distance between generated and test images in the classifier's 128-unit
  ``features`` layer (Inception features would need a download and 299x299 inputs).
- ``class_kl_to_uniform``: KL(predicted-class histogram || uniform); 0 = all ten classes equally
  often, log(10) = 2.303 = one class only (mode collapse).
- ``nn_distance_mean`` / ``_median``: L2 distance in [-1, 1] pixel space from a generated image to
  its nearest training image; near 0 = the generator copies training images.

Each comes with a real floor (train subset vs test images) so a reader can tell "good" from "as
good as real data gets" with this classifier. The exporter writes the same dict into the model
card under "quality".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from training.config import LATENT_DIM
from training.data import NUM_CLASSES, DataError, FashionMNIST, load, to_unit_range

if TYPE_CHECKING:
    import keras  # untyped (follow_imports = skip): keras.Model reads as Any to mypy

DEFAULT_CLASSIFIER_PATH = Path("artifacts/fmnist_classifier.keras")
FEATURES_LAYER = "features"
IMAGE_SHAPE = (28, 28, 1)
NN_MAX_QUERIES = 1000  # memorisation is a mean/median: 1000 images pin it down, 10000 cost 10x
NN_TRAIN_CHUNK = 10000  # training rows per matrix product: (1000, 784) @ (784, 10000) float32


class EvaluateError(Exception):
    """A version, model base path or classifier that cannot be used (message: one sentence)."""


# --- the classifier ------------------------------------------------------------------------------


def build_classifier() -> keras.Model:
    """image (28, 28, 1) in [-1, 1] -> 10 logits; the 128-unit "features" layer feeds FID."""
    import keras
    from keras import layers

    # fixed seeds everywhere: a deleted artifact retrains to (nearly) the same classifier, so
    # figures stay comparable with those already written into model cards
    def init(seed: int) -> Any:
        return keras.initializers.GlorotUniform(seed=seed)

    img = keras.Input(IMAGE_SHAPE, name="image")
    # strided convolutions instead of conv + max-pool: a quarter of the work on 2 CPU cores
    x = layers.Conv2D(32, 3, 2, "same", activation="relu", kernel_initializer=init(1))(img)
    assert tuple(x.shape) == (None, 14, 14, 32)
    x = layers.Conv2D(64, 3, 2, "same", activation="relu", kernel_initializer=init(2))(x)
    assert tuple(x.shape) == (None, 7, 7, 64)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.3, seed=3)(x)
    features = layers.Dense(128, "relu", kernel_initializer=init(4), name=FEATURES_LAYER)(x)
    logits = layers.Dense(NUM_CLASSES, kernel_initializer=init(5), name="logits")(features)
    return keras.Model(img, logits, name="fmnist_classifier")


def _classifier_problem(model: keras.Model) -> str | None:
    """Why a loaded model cannot serve as the classifier, or None if it can."""
    if tuple(model.input_shape) != (None, *IMAGE_SHAPE):
        return f"input shape {model.input_shape} is not (None, 28, 28, 1)"
    if tuple(model.output_shape) != (None, NUM_CLASSES):
        return f"output shape {model.output_shape} is not (None, 10)"
    if FEATURES_LAYER not in {layer.name for layer in model.layers}:
        return f'it has no layer named "{FEATURES_LAYER}"'
    return None


def load_or_train_classifier(
    path: Path,
    data: FashionMNIST,
    log: Callable[[str], None] = print,
    epochs: int = 3,
    train_samples: int | None = None,
) -> keras.Model:
    """Load the classifier from ``path``; train, test and save it there if absent or unusable.

    ``train_samples`` (None = all 60,000) keeps tests fast. The file is written atomically, so
    an interrupted run never leaves a half-written classifier for the next one to load.
    """
    import keras

    if path.is_file():
        try:
            model = keras.models.load_model(path, compile=False)
        except Exception as exc:  # a corrupt or foreign file: keras raises many types
            log(f"Classifier {path} could not be loaded ({type(exc).__name__}); training anew.")
        else:
            problem = _classifier_problem(model)
            if problem is None:
                log(f"Loaded classifier {path}.")
                return model
            log(f"Classifier {path} does not fit: {problem}; training anew.")

    n = len(data.x_train) if train_samples is None else min(train_samples, len(data.x_train))
    rng = np.random.default_rng(0)
    # a fixed subset, so a test's small classifier is the same on every run
    idx = rng.permutation(len(data.x_train))[:n]
    model = build_classifier()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    for _ in range(epochs):
        # numpy shuffles with a seed; fit's own shuffle would draw from TF's global seed
        order = idx[rng.permutation(n)]
        x, y = to_unit_range(data.x_train[order]), data.y_train[order].astype(np.int32)
        model.fit(x, y, batch_size=128, epochs=1, shuffle=False, verbose=0)
    seconds = time.perf_counter() - start
    _, accuracy = model.evaluate(
        to_unit_range(data.x_test), data.y_test.astype(np.int32), batch_size=500, verbose=0
    )
    log(
        f"Trained classifier on {n} images for {epochs} epoch(s) in {seconds:.0f} s: "
        f"test accuracy {accuracy:.4f}."
    )

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # keras insists on the .keras suffix; the temp file sits in the same folder so that
        # os.replace is an atomic rename on the same file system
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".keras", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise EvaluateError(f"Could not save the classifier to {path} ({exc}).") from None
    try:
        model.save(tmp_name)
        os.replace(tmp_name, path)
    except OSError as exc:
        raise EvaluateError(f"Could not save the classifier to {path} ({exc}).") from None
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    log(f"Saved classifier to {path}.")
    return model


# --- the figures ---------------------------------------------------------------------------------


def _embed(
    classifier: keras.Model, images: np.ndarray, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """images (N, 28, 28, 1) -> (features (N, 128) float64, predicted classes (N,) int)."""
    import keras

    two_heads = keras.Model(
        classifier.input, [classifier.get_layer(FEATURES_LAYER).output, classifier.output]
    )
    feats, classes = [], []
    for start in range(0, len(images), batch_size):
        f, logits = two_heads(images[start : start + batch_size], training=False)
        feats.append(np.asarray(f, dtype=np.float64))
        classes.append(np.argmax(np.asarray(logits), axis=1))
    return np.concatenate(feats), np.concatenate(classes)


def _stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrt(S1 S2)), as in Heusel et al. / pytorch-fid."""
    from scipy import linalg

    # dead ReLU units make the covariances singular; sqrtm still returns a usable root
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            # S1 S2 is singular (fewer samples than features, or dead units): a small ridge
            # makes the product square-rootable without moving FID noticeably
            ridge = np.eye(len(sigma1)) * 1e-6
            covmean = linalg.sqrtm((sigma1 + ridge) @ (sigma2 + ridge))
    # round-off gives sqrtm tiny imaginary parts; the true root of a product of PSD matrices
    # has real eigenvalues, so the imaginary part is noise
    covmean = np.real(covmean)
    diff = mu1 - mu2
    fid = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))
    if not math.isfinite(fid):
        raise EvaluateError("FID came out non-finite; the features hold NaN or Inf values.")
    return max(fid, 0.0)  # round-off can push identical distributions a hair below zero


def class_kl_to_uniform(classes: np.ndarray) -> float:
    """KL(histogram of predicted classes || uniform over 10): 0 = balanced, log(10) = one class."""
    p = np.bincount(classes, minlength=NUM_CLASSES) / len(classes)
    p = p[p > 0]
    return float(np.sum(p * np.log(p * NUM_CLASSES)))


def nearest_train_distances(images: np.ndarray, x_train: np.ndarray) -> np.ndarray:
    """L2 distance in [-1, 1] pixel space from each of ``images`` to its nearest training image.

    images: (M, 28, 28, 1) float in [-1, 1]; x_train: (N, 28, 28) uint8. Returns (M,) float64.
    """
    q = images.reshape(len(images), -1).astype(np.float32)  # (M, 784)
    q_sq = np.sum(q * q, axis=1)
    best_sq = np.full(len(q), np.inf, dtype=np.float32)
    best_idx = np.zeros(len(q), dtype=np.int64)
    for start in range(0, len(x_train), NN_TRAIN_CHUNK):
        # converted per chunk: 60000 x 784 float32 at once would be 188 MB
        t = to_unit_range(x_train[start : start + NN_TRAIN_CHUNK]).reshape(-1, q.shape[1])
        # ||q - t||^2 = ||q||^2 + ||t||^2 - 2 q.t, one matrix product per chunk
        d_sq = q_sq[:, None] + np.sum(t * t, axis=1)[None, :] - 2.0 * (q @ t.T)  # (M, chunk)
        j = np.argmin(d_sq, axis=1)
        d_min = d_sq[np.arange(len(q)), j]
        better = d_min < best_sq
        best_sq[better], best_idx[better] = d_min[better], j[better] + start
    # the expansion loses ~1e-2 to float32 cancellation; the exact distance to the winner
    # makes a copied training image read 0.0, not 0.03
    nearest = to_unit_range(x_train[best_idx]).reshape(len(q), -1).astype(np.float64)
    return np.asarray(np.linalg.norm(q.astype(np.float64) - nearest, axis=1))


# real-data statistics per (classifier weights, data, samples, seed): they do not depend on
# the version, so scoring several versions in one process computes them once
_REAL_CACHE: dict[tuple[str, str, int, int], dict[str, Any]] = {}


def _weights_digest(classifier: keras.Model) -> str:
    h = hashlib.sha256()
    for w in classifier.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()


def _real_stats(
    data: FashionMNIST, classifier: keras.Model, samples: int, seed: int, batch_size: int
) -> dict[str, Any]:
    key = (_weights_digest(classifier), data.sha256, samples, seed)
    if key in _REAL_CACHE:
        return _REAL_CACHE[key]
    n_test = min(samples, len(data.x_test))
    test = to_unit_range(data.x_test[:n_test])
    test_feats, test_classes = _embed(classifier, test, batch_size)
    rng = np.random.default_rng(seed + 1)  # not the generator's z stream
    train_idx = rng.choice(len(data.x_train), size=min(samples, len(data.x_train)), replace=False)
    train_feats, _ = _embed(classifier, to_unit_range(data.x_train[train_idx]), batch_size)
    mu_test, sigma_test = _stats(test_feats)
    # test images are not in the training set: their distances are what "not copied" looks like
    nn = nearest_train_distances(test[:NN_MAX_QUERIES], data.x_train)
    stats = {
        "mu_test": mu_test,
        "sigma_test": sigma_test,
        "floors": {
            "fid_real_floor": frechet_distance(*_stats(train_feats), mu_test, sigma_test),
            "class_kl_real_floor": class_kl_to_uniform(test_classes),
            "nn_distance_real_floor_mean": float(np.mean(nn)),
            "nn_distance_real_floor_median": float(np.median(nn)),
        },
    }
    _REAL_CACHE[key] = stats
    return stats


def quality_figures(
    generate: Callable[[np.ndarray], np.ndarray],
    data: FashionMNIST,
    classifier: keras.Model,
    samples: int = 10000,
    seed: int = 0,
    batch_size: int = 500,
    *,
    latent_dim: int = LATENT_DIM,
) -> dict[str, float]:
    """Score ``generate`` (z float32 (n, latent_dim) -> images (n, 28, 28, 1) in [-1, 1]).

    Returns fid, class_kl_to_uniform, nn_distance_mean/median and samples, plus the same
    figures for real data (keys ending in _real_floor...) measured with the same classifier.
    """
    if samples < 2:
        raise EvaluateError(f"samples must be at least 2 for a covariance, got {samples}.")
    z = np.random.default_rng(seed).standard_normal((samples, latent_dim)).astype(np.float32)
    fake = np.concatenate(
        [
            np.asarray(generate(z[start : start + batch_size]), dtype=np.float32)
            for start in range(0, samples, batch_size)
        ]
    )
    if fake.shape != (samples, *IMAGE_SHAPE):
        raise EvaluateError(
            f"The generator returned shape {fake.shape}, expected {(samples, *IMAGE_SHAPE)}."
        )
    if not np.isfinite(fake).all():
        raise EvaluateError("The generator returned NaN or Inf pixels.")

    real = _real_stats(data, classifier, samples, seed, batch_size)
    feats, classes = _embed(classifier, fake, batch_size)
    nn = nearest_train_distances(fake[:NN_MAX_QUERIES], data.x_train)
    return {
        "fid": frechet_distance(*_stats(feats), real["mu_test"], real["sigma_test"]),
        "class_kl_to_uniform": class_kl_to_uniform(classes),
        "nn_distance_mean": float(np.mean(nn)),
        "nn_distance_median": float(np.median(nn)),
        "samples": samples,
        **real["floors"],
    }


def figures_for_version(
    version_dir: Path, data: FashionMNIST, classifier: keras.Model, samples: int, seed: int = 0
) -> dict[str, float]:
    """quality_figures for the SavedModel in ``version_dir`` (its serving_default signature)."""
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(version_dir))
        signature = loaded.signatures["serving_default"]
    except (OSError, KeyError, ValueError) as exc:
        raise EvaluateError(
            f"{version_dir} holds no loadable SavedModel with a serving_default signature "
            f"({type(exc).__name__})."
        ) from None
    inputs = signature.structured_input_signature[1]  # ((), {"z": TensorSpec((None, latent))})
    if "z" not in inputs or inputs["z"].shape.rank != 2 or inputs["z"].shape[1] is None:
        raise EvaluateError(f"{version_dir}'s serving_default takes no z of shape (None, latent).")
    latent_dim = int(inputs["z"].shape[1])

    def generate(z: np.ndarray) -> np.ndarray:
        return np.asarray(signature(z=tf.constant(z))["images"])

    return quality_figures(generate, data, classifier, samples, seed, latent_dim=latent_dim)


# --- CLI -----------------------------------------------------------------------------------------

ROWS = [  # (figure, generated key, real floor key)
    ("fid", "fid", "fid_real_floor"),
    ("class_kl_to_uniform", "class_kl_to_uniform", "class_kl_real_floor"),
    ("nn_distance_mean", "nn_distance_mean", "nn_distance_real_floor_mean"),
    ("nn_distance_median", "nn_distance_median", "nn_distance_real_floor_median"),
]


def _versions(base: Path) -> dict[int, Path]:
    if not base.is_dir():
        raise EvaluateError(f"Model base path {base} does not exist or is not a folder.")
    # TF Serving's rule: a version is a folder whose name is all digits
    return {int(p.name): p for p in base.iterdir() if p.is_dir() and p.name.isdigit()}


def _pick_version(base: Path, version: int | None) -> tuple[int, Path]:
    versions = _versions(base)
    if not versions:
        raise EvaluateError(f"{base} holds no numeric version folders; export a model first.")
    if version is None:
        version = max(versions)
    if version not in versions:
        known = ", ".join(str(v) for v in sorted(versions))
        raise EvaluateError(f"Version {version} is not in {base}; it holds {known}.")
    return version, versions[version]


def format_table(figures: dict[str, float]) -> str:
    """figure | generated | real floor, aligned."""
    lines = [f"{'figure':<22}{'generated':>12}{'real floor':>12}"]
    for name, gen_key, real_key in ROWS:
        gen = f"{figures[gen_key]:.4f}" if gen_key in figures else "-"
        real = f"{figures[real_key]:.4f}" if real_key in figures else "-"
        lines.append(f"{name:<22}{gen:>12}{real:>12}")
    return "\n".join(lines)


def _card_quality(version_dir: Path) -> str | None:
    card = version_dir / "assets.extra" / "model_card.json"
    if not card.is_file():
        return None
    try:
        quality = json.loads(card.read_text()).get("quality")
    except (OSError, ValueError, AttributeError) as exc:
        return f"(unreadable: {type(exc).__name__})"
    if not isinstance(quality, dict):
        return "(no quality figures)"
    return "\n".join(
        f"{key:<34}{value:>12.4f}" if isinstance(value, int | float) else f"{key:<34}{value!s:>12}"
        for key, value in quality.items()
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.evaluate",
        description="Print an exported version's quality figures (FID, mode coverage, "
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
        default=None,
        metavar="DIR",
        help="folder with the four Fashion-MNIST IDX gzip files (default: $FASHION_MNIST_DIR, "
        "else Keras' downloader and cache)",
    )
    parser.add_argument(
        "--classifier",
        type=Path,
        default=DEFAULT_CLASSIFIER_PATH,
        metavar="PATH",
        help=f"classifier .keras file; trained and saved there if missing "
        f"(default: {DEFAULT_CLASSIFIER_PATH})",
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
    if args.samples < 2:
        parser.error("--samples must be at least 2")
    data_dir = args.data_dir
    if data_dir is None and os.environ.get("FASHION_MNIST_DIR"):
        data_dir = Path(os.environ["FASHION_MNIST_DIR"])
    try:
        version, version_dir = _pick_version(args.model_base_path, args.version)
        data = load(data_dir)
        classifier = load_or_train_classifier(args.classifier, data, log=print)
        figures = figures_for_version(version_dir, data, classifier, args.samples, args.seed)
    except (EvaluateError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{version_dir} (version {version}), {args.samples} samples, seed {args.seed}")
    print(format_table(figures))
    stored = _card_quality(version_dir)
    if stored is not None:
        print(f"\nstored in {version_dir / 'assets.extra' / 'model_card.json'} (quality):")
        print(stored)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
