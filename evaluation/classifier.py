"""The evaluator's Fashion-MNIST classifier: built, trained once, saved, loaded, and used to
embed images (features for FID, predicted classes for coverage)."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evaluation import EvaluateError
from fashion_core import atomic
from fashion_core.contract import IMAGE_SHAPE
from fashion_core.dataset import NUM_CLASSES, FashionMNIST, to_unit_range

if TYPE_CHECKING:
    import keras  # untyped (follow_imports = skip): keras.Model reads as Any to mypy

FEATURES_LAYER = "features"
# the evaluator's name, written into every figure set it measures: figures compare only when
# they name the same evaluator (model cards, the rollout gate, the trainer's gate)
EVALUATOR = "fmnist-fullres-v2"
EPOCHS = 8
BATCH = 128


def default_path(environ: dict[str, str] | None = None) -> Path:
    """$FASHION_GAN_CLASSIFIER, else artifacts/fmnist_classifier_v2.keras."""
    env = os.environ if environ is None else environ
    return Path(env.get("FASHION_GAN_CLASSIFIER") or "artifacts/fmnist_classifier_v2.keras")


def info_path(path: Path) -> Path:
    """The classifier's sidecar: how it was trained and how well it reads the test images."""
    return path.with_suffix(".json")


def build_classifier() -> keras.Model:
    """image (28, 28, 1) in [-1, 1] -> 10 logits; the 128-unit "features" layer feeds FID and
    precision/recall.

    The first two convolutions run at the full 28x28 with 3x3 kernels and stride 1: edges,
    seams and textures one pixel wide are what blur, smears and speckle change, and a first
    layer that strides by 2 (the previous evaluator's) never sees them."""
    import keras
    from keras import layers

    # fixed seeds everywhere: a deleted artifact retrains to (nearly) the same classifier, so
    # figures stay comparable with those already written into model cards
    def init(seed: int) -> Any:
        return keras.initializers.GlorotUniform(seed=seed)

    def conv(x: Any, filters: int, seed: int) -> Any:
        return layers.Conv2D(filters, 3, padding="same", activation="relu",
                             kernel_initializer=init(seed))(x)  # fmt: skip

    img = keras.Input(IMAGE_SHAPE, name="image")
    x = conv(conv(img, 32, 1), 32, 2)
    assert tuple(x.shape) == (None, 28, 28, 32)
    x = layers.MaxPooling2D()(conv(conv(layers.MaxPooling2D()(x), 64, 3), 64, 4))
    assert tuple(x.shape) == (None, 7, 7, 64)
    x = layers.Flatten()(conv(x, 128, 5))
    x = layers.Dropout(0.4, seed=6)(x)
    features = layers.Dense(128, "relu", kernel_initializer=init(7), name=FEATURES_LAYER)(x)
    x = layers.Dropout(0.3, seed=8)(features)
    logits = layers.Dense(NUM_CLASSES, kernel_initializer=init(9), name="logits")(x)
    return keras.Model(img, logits, name=EVALUATOR.replace("-", "_"))


def _problem(model: keras.Model) -> str | None:
    """Why a loaded model cannot serve as the classifier, or None if it can."""
    if model.name != EVALUATOR.replace("-", "_"):
        return f"it is {model.name!r}, not this evaluator's {EVALUATOR!r} network"
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
    epochs: int = EPOCHS,
    train_samples: int | None = None,
) -> keras.Model:
    """Load the classifier from ``path``; train, test and save it there if absent or unusable.

    ``train_samples`` (None = all 60,000) keeps tests fast. The file is written atomically, so
    an interrupted run never leaves a half-written classifier for the next one to load. Beside
    it, ``<name>.json`` records its test accuracy, overall and per class.
    """
    import keras

    if path.is_file():
        try:
            model = keras.models.load_model(path, compile=False)
        except Exception as exc:  # a corrupt or foreign file: keras raises many types
            log(f"Classifier {path} could not be loaded ({type(exc).__name__}); training anew.")
        else:
            problem = _problem(model)
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
    for epoch in range(epochs):
        # numpy shuffles with a seed; fit's own shuffle would draw from TF's global seed
        order = idx[rng.permutation(n)]
        x, y = to_unit_range(data.x_train[order]), data.y_train[order].astype(np.int32)
        # mirrored garments are still garments of the same class: twice the images for free
        flip = rng.random(n) < 0.5
        x[flip] = x[flip][:, :, ::-1]
        if epoch == epochs - 1 and epochs > 2:  # a last, slower epoch settles the weights
            model.optimizer.learning_rate.assign(2e-4)
        model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    seconds = time.perf_counter() - start
    accuracy, per_class = test_accuracy(model, data)
    log(
        f"Trained classifier on {n} images for {epochs} epoch(s) in {seconds:.0f} s: "
        f"test accuracy {accuracy:.4f}."
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    # the accuracy first: whoever sees the classifier appear (a training job waiting for it)
    # finds its figures beside it
    atomic.write_json(
        info_path(path),
        {
            "evaluator": EVALUATOR,
            "test_accuracy": round(accuracy, 4),
            "test_accuracy_per_class": [round(a, 4) for a in per_class],
            "epochs": epochs,
            "train_samples": n,
            "seconds": round(seconds, 1),
        },
    )
    _save(model, path)
    log(f"Saved classifier to {path}.")
    return model


def test_accuracy(model: keras.Model, data: FashionMNIST) -> tuple[float, list[float]]:
    """(accuracy on the 10,000 test images, accuracy on each class's test images)."""
    _, predicted = embed(model, to_unit_range(data.x_test))
    right = predicted == data.y_test
    per_class = [float(np.mean(right[data.y_test == k])) for k in range(NUM_CLASSES)]
    return float(np.mean(right)), per_class


def _save(model: keras.Model, path: Path) -> None:
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
        atomic.replace(Path(tmp_name), path)
    except OSError as exc:
        raise EvaluateError(f"Could not save the classifier to {path} ({exc}).") from None
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def embed(
    classifier: keras.Model, images: np.ndarray, batch_size: int = 500
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


def main(argv: list[str] | None = None) -> int:
    """``python -m evaluation.classifier [--path P] [--data-dir D]``: train the classifier once
    (a progressive training job runs this beside itself), or check the one at ``--path``."""
    import argparse
    import sys

    from fashion_core.dataset import DataError, load
    from fashion_core.quiet import quiet_tensorflow

    p = argparse.ArgumentParser(prog="python -m evaluation.classifier", description=main.__doc__)
    p.add_argument(
        "--path", type=Path, default=None, help="default: $FASHION_GAN_CLASSIFIER, else artifacts/"
    )
    p.add_argument("--data-dir", type=Path, default=os.environ.get("FASHION_MNIST_DIR") or None)
    args = p.parse_args(argv)
    quiet_tensorflow()
    try:
        load_or_train_classifier(args.path or default_path(), load(args.data_dir))
    except (DataError, EvaluateError) as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
