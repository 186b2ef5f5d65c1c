"""Quality figures of a generator beside the same figures for real data ("floors"), measured
with one classifier. An ``Evaluator`` keeps the real-data statistics it computed, so scoring
several generators (versions, recipes) in one process computes them once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evaluation import EvaluateError
from evaluation.classifier import EVALUATOR, embed
from evaluation.metrics import (
    class_kl_to_uniform,
    class_shares,
    frechet_distance,
    knn_radii,
    mean_cov,
    nearest_train_distances,
    precision_recall,
)
from fashion_core.contract import IMAGE_SHAPE, INPUT, LATENT_DIM, OUTPUT, SIGNATURE
from fashion_core.dataset import FashionMNIST, to_unit_range

if TYPE_CHECKING:
    import keras

Generate = Callable[[np.ndarray], np.ndarray]
NN_MAX_QUERIES = 1000  # memorisation is a mean/median: 1000 images pin it down, 10000 cost 10x
PR_K = 3  # the k of precision and recall's k-NN balls (Kynkäänniemi et al. use 3)


class Evaluator:
    def __init__(self, data: FashionMNIST, classifier: keras.Model, batch_size: int = 500):
        self.data, self.classifier, self.batch_size = data, classifier, batch_size
        self._real: dict[tuple[int, int], dict[str, Any]] = {}  # (samples, seed) -> stats

    def floor_index(self, samples: int, seed: int = 0) -> np.ndarray:
        """Which training images the floors score against the test images."""
        rng = np.random.default_rng(seed + 1)  # not the generator's z stream
        n = min(samples, len(self.data.x_train))
        return rng.choice(len(self.data.x_train), size=n, replace=False)

    def floor_images(self, samples: int, seed: int = 0) -> np.ndarray:
        """The real training images of the floors, in [-1, 1]."""
        return to_unit_range(self.data.x_train[self.floor_index(samples, seed)])

    def _real_stats(self, samples: int, seed: int) -> dict[str, Any]:
        key = (samples, seed)
        if key in self._real:
            return self._real[key]
        data = self.data
        n_test = min(samples, len(data.x_test))
        test = to_unit_range(data.x_test[:n_test])
        test_feats, test_classes = embed(self.classifier, test, self.batch_size)
        train = self.floor_images(samples, seed)
        train_feats, _ = embed(self.classifier, train, self.batch_size)
        mu_test, sigma_test = mean_cov(test_feats)
        radii = knn_radii(test_feats, PR_K)
        precision, recall = precision_recall(test_feats, train_feats, PR_K, real_radii=radii)
        # test images are not in the training set: their distances are what "not copied" is
        nn = nearest_train_distances(test[:NN_MAX_QUERIES], data.x_train)
        self._real[key] = {
            "mu_test": mu_test,
            "sigma_test": sigma_test,
            "test_feats": test_feats,
            "test_radii": radii,
            "floors": {
                "fid_real_floor": frechet_distance(*mean_cov(train_feats), mu_test, sigma_test),
                "precision_real_floor": precision,
                "recall_real_floor": recall,
                "class_kl_real_floor": class_kl_to_uniform(test_classes),
                "nn_distance_real_floor_mean": float(np.mean(nn)),
                "nn_distance_real_floor_median": float(np.median(nn)),
            },
        }
        return self._real[key]

    def figures(
        self, generate: Generate, samples: int = 10000, seed: int = 0, latent_dim: int = LATENT_DIM
    ) -> dict[str, Any]:
        """Score ``generate`` (z float32 (n, latent_dim) -> images (n, 28, 28, 1) in [-1, 1]).

        Returns fid, precision, recall, class_kl_to_uniform, class_shares,
        nn_distance_mean/median, samples and the evaluator's name, plus the real-data floors
        (keys ending in _real_floor...) with the same classifier.
        """
        if samples < 2:
            raise EvaluateError(f"samples must be at least 2 for a covariance, got {samples}.")
        z = np.random.default_rng(seed).standard_normal((samples, latent_dim)).astype(np.float32)
        fake = np.concatenate(
            [
                np.asarray(generate(z[start : start + self.batch_size]), dtype=np.float32)
                for start in range(0, samples, self.batch_size)
            ]
        )
        if fake.shape != (samples, *IMAGE_SHAPE):
            raise EvaluateError(
                f"The generator returned shape {fake.shape}, expected {(samples, *IMAGE_SHAPE)}."
            )
        if not np.isfinite(fake).all():
            raise EvaluateError("The generator returned NaN or Inf pixels.")
        return self.figures_of_images(fake, seed)

    def figures_of_images(
        self, fake: np.ndarray, seed: int = 0, reference: int | None = None
    ) -> dict[str, Any]:
        """The figures of a set of images (generated, or real ones degraded on purpose),
        against ``reference`` test images (default: as many as ``fake`` has)."""
        real = self._real_stats(reference or len(fake), seed)
        feats, classes = embed(self.classifier, fake, self.batch_size)
        nn = nearest_train_distances(fake[:NN_MAX_QUERIES], self.data.x_train)
        precision, recall = precision_recall(
            real["test_feats"], feats, PR_K, real_radii=real["test_radii"]
        )
        return {
            "evaluator": EVALUATOR,
            "fid": frechet_distance(*mean_cov(feats), real["mu_test"], real["sigma_test"]),
            "precision": precision,
            "recall": recall,
            "class_kl_to_uniform": class_kl_to_uniform(classes),
            "class_shares": class_shares(classes),
            "nn_distance_mean": float(np.mean(nn)),
            "nn_distance_median": float(np.median(nn)),
            "samples": len(fake),
            **real["floors"],
        }

    def figures_for_version(self, version_dir: Path, samples: int, seed: int = 0) -> dict[str, Any]:
        """``figures`` for the SavedModel in ``version_dir`` (its serving signature)."""
        import tensorflow as tf

        try:
            loaded = tf.saved_model.load(str(version_dir))
            signature = loaded.signatures[SIGNATURE]
        except (OSError, KeyError, ValueError) as exc:
            raise EvaluateError(
                f"{version_dir} holds no loadable SavedModel with a {SIGNATURE} signature "
                f"({type(exc).__name__})."
            ) from None
        inputs = signature.structured_input_signature[1]  # {"z": TensorSpec((None, latent))}
        if INPUT not in inputs or inputs[INPUT].shape.rank != 2 or inputs[INPUT].shape[1] is None:
            raise EvaluateError(
                f"{version_dir}'s {SIGNATURE} takes no {INPUT} of shape (None, latent)."
            )

        def generate(z: np.ndarray) -> np.ndarray:
            return np.asarray(signature(**{INPUT: tf.constant(z)})[OUTPUT])

        return self.figures(generate, samples, seed, latent_dim=int(inputs[INPUT].shape[1]))


def quality_figures(
    generate: Generate,
    data: FashionMNIST,
    classifier: keras.Model,
    samples: int = 10000,
    seed: int = 0,
    *,
    latent_dim: int = LATENT_DIM,
) -> dict[str, Any]:
    """One-off ``Evaluator(data, classifier).figures(...)``."""
    return Evaluator(data, classifier).figures(generate, samples, seed, latent_dim)
