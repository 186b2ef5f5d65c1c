"""Quality figures of a generator beside the same figures for real data ("floors"), measured
with one classifier; for a class-conditional generator, per category too (FID against that
class's test images, and agreement: how often the classifier sees the category asked for).
An ``Evaluator`` keeps the real-data statistics it computed, so scoring several generators
(versions, recipes) in one process computes them once."""

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
from fashion_core.contract import CATEGORY, IMAGE_SHAPE, INPUT, LATENT_DIM, OUTPUT, SIGNATURE
from fashion_core.dataset import NUM_CLASSES, FashionMNIST, to_unit_range

if TYPE_CHECKING:
    import keras

Generate = Callable[[np.ndarray], np.ndarray]
# a conditional generator: (z (n, latent_dim) float32, categories (n,) int) -> images
GenerateByCategory = Callable[[np.ndarray, np.ndarray], np.ndarray]
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
        train_labels = data.y_train[self.floor_index(samples, seed)]
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
            # per class (figures_by_category): the reference images' labels and predictions
            "test_labels": data.y_test[:n_test],
            "test_classes": test_classes,
            "train_feats": train_feats,
            "train_labels": train_labels,
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
        return self.figures_of_images(self._generated(generate, z), seed)

    def figures_by_category(
        self,
        generate: GenerateByCategory,
        samples: int = 10000,
        seed: int = 0,
        latent_dim: int = LATENT_DIM,
    ) -> dict[str, Any]:
        """Score a conditional ``generate`` ((z, categories int) -> images): ``figures`` over
        all designs, the categories drawn uniformly (each as often, in a seeded order, the
        same z as ``figures``), plus per category k (lists indexed by k):

        - ``fid_per_class``: FID of the designs asked as k against the reference test images
          of class k, beside ``fid_real_floor_per_class`` (training images of class k);
        - ``agreement_per_class``: the share of designs asked as k that the classifier assigns
          to k (``agreement``: over all designs), beside ``classifier_accuracy_per_class``, the
          classifier's accuracy on the reference test images of class k (``classifier_accuracy``:
          on all of them). A per-class figure with fewer than 2 images on a side is None."""
        if samples < 2 * NUM_CLASSES:
            raise EvaluateError(
                f"samples must be at least {2 * NUM_CLASSES} for per-category figures, "
                f"got {samples}."
            )
        z = np.random.default_rng(seed).standard_normal((samples, latent_dim)).astype(np.float32)
        categories = balanced_categories(samples, seed)
        fake = self._generated(generate, z, categories)
        figures, feats, classes = self._scored(fake, seed)
        real = self._real_stats(len(fake), seed)
        test_labels, test_feats, test_classes = (
            real["test_labels"], real["test_feats"], real["test_classes"]
        )  # fmt: skip
        train_labels, train_feats = real["train_labels"], real["train_feats"]

        def fid(a: np.ndarray, ref: tuple[np.ndarray, np.ndarray] | None) -> float | None:
            if len(a) < 2 or ref is None:
                return None
            return round(frechet_distance(*mean_cov(a), *ref), 4)

        def share(hits: np.ndarray) -> float | None:
            return round(float(np.mean(hits)), 4) if len(hits) else None

        if "per_class" not in real:  # the real side of each class once per evaluator, not per call
            refs = [test_feats[test_labels == k] for k in range(NUM_CLASSES)]
            stats = [mean_cov(r) if len(r) >= 2 else None for r in refs]
            real["per_class"] = {
                "stats": stats,
                "floors": [
                    fid(train_feats[train_labels == k], stats[k]) for k in range(NUM_CLASSES)
                ],
                "accuracy": [
                    share(test_classes[test_labels == k] == k) for k in range(NUM_CLASSES)
                ],
            }
        cached = real["per_class"]
        per_class: dict[str, list[Any]] = {
            "fid_per_class": [],
            "fid_real_floor_per_class": list(cached["floors"]),
            "agreement_per_class": [],
            "classifier_accuracy_per_class": list(cached["accuracy"]),
            "samples_per_class": [],
        }
        for k in range(NUM_CLASSES):
            asked = categories == k
            per_class["fid_per_class"].append(fid(feats[asked], cached["stats"][k]))
            per_class["agreement_per_class"].append(share(classes[asked] == k))
            per_class["samples_per_class"].append(int(np.sum(asked)))
        return {
            **figures,
            "conditional": True,
            "agreement": share(classes == categories),
            "classifier_accuracy": share(test_classes == test_labels),
            **per_class,
        }

    def _generated(self, generate: Callable[..., np.ndarray], *inputs: np.ndarray) -> np.ndarray:
        """``generate`` over ``inputs`` (z, and categories) in batches, checked."""
        samples = len(inputs[0])
        fake = np.concatenate(
            [
                np.asarray(
                    generate(*(a[start : start + self.batch_size] for a in inputs)),
                    dtype=np.float32,
                )
                for start in range(0, samples, self.batch_size)
            ]
        )
        if fake.shape != (samples, *IMAGE_SHAPE):
            raise EvaluateError(
                f"The generator returned shape {fake.shape}, expected {(samples, *IMAGE_SHAPE)}."
            )
        if not np.isfinite(fake).all():
            raise EvaluateError("The generator returned NaN or Inf pixels.")
        return fake

    def figures_of_images(
        self, fake: np.ndarray, seed: int = 0, reference: int | None = None
    ) -> dict[str, Any]:
        """The figures of a set of images (generated, or real ones degraded on purpose),
        against ``reference`` test images (default: as many as ``fake`` has)."""
        return self._scored(fake, seed, reference)[0]

    def _scored(
        self, fake: np.ndarray, seed: int = 0, reference: int | None = None
    ) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
        """``figures_of_images``, and the images' features and predicted classes."""
        real = self._real_stats(reference or len(fake), seed)
        feats, classes = embed(self.classifier, fake, self.batch_size)
        nn = nearest_train_distances(fake[:NN_MAX_QUERIES], self.data.x_train)
        precision, recall = precision_recall(
            real["test_feats"], feats, PR_K, real_radii=real["test_radii"]
        )
        figures = {
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
        return figures, feats, classes

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
        latent_dim = int(inputs[INPUT].shape[1])

        if CATEGORY in inputs:  # a conditional version: figures per category too

            def generate_by_category(z: np.ndarray, categories: np.ndarray) -> np.ndarray:
                feed = {INPUT: tf.constant(z), CATEGORY: tf.constant(categories, tf.int64)}
                return np.asarray(signature(**feed)[OUTPUT])

            return self.figures_by_category(generate_by_category, samples, seed, latent_dim)

        def generate(z: np.ndarray) -> np.ndarray:
            return np.asarray(signature(**{INPUT: tf.constant(z)})[OUTPUT])

        return self.figures(generate, samples, seed, latent_dim=latent_dim)


def balanced_categories(samples: int, seed: int = 0) -> np.ndarray:
    """``samples`` categories, each of the ten as often as can be, in a seeded order: the
    categories ``figures_by_category`` asks for (uniform, and every class measured)."""
    rng = np.random.default_rng([seed, NUM_CLASSES])  # not the z stream
    return rng.permutation(np.resize(np.arange(NUM_CLASSES, dtype=np.int32), samples))


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
