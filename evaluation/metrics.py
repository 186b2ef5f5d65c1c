"""The maths of the figures, on plain arrays: Fréchet distance, class coverage, nearest
training image. No model, no cache."""

from __future__ import annotations

import math
import warnings

import numpy as np

from evaluation import EvaluateError
from fashion_core.dataset import NUM_CLASSES, to_unit_range

NN_TRAIN_CHUNK = 10000  # training rows per matrix product: (1000, 784) @ (784, 10000) float32


def mean_cov(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def class_shares(classes: np.ndarray) -> list[float]:
    """Share of each of the 10 classes among the predictions."""
    counts = np.bincount(classes, minlength=NUM_CLASSES)
    return [round(float(c) / len(classes), 4) for c in counts]


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


def _pairwise_sq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances (len(a), len(b)), float32, clipped at 0."""
    d = np.sum(a * a, axis=1)[:, None] + np.sum(b * b, axis=1)[None, :] - 2.0 * (a @ b.T)
    return np.asarray(np.maximum(d, 0.0))


def knn_radii(features: np.ndarray, k: int, chunk: int = 1000) -> np.ndarray:
    """Squared distance from each row to its k-th nearest other row (the k-NN ball)."""
    f = features.astype(np.float32)
    out = np.empty(len(f), dtype=np.float32)
    for start in range(0, len(f), chunk):
        d = _pairwise_sq(f[start : start + chunk], f)
        # the row itself is at distance 0: the (k+1)-th smallest is the k-th other row
        out[start : start + chunk] = np.partition(d, k, axis=1)[:, k]
    return out


def _covered(queries: np.ndarray, centres: np.ndarray, radii: np.ndarray, chunk: int) -> float:
    """Share of ``queries`` inside at least one ball (centre, radius)."""
    q, c = queries.astype(np.float32), centres.astype(np.float32)
    inside = 0
    for start in range(0, len(q), chunk):
        d = _pairwise_sq(q[start : start + chunk], c)
        inside += int(np.count_nonzero((d <= radii[None, :]).any(axis=1)))
    return inside / len(q)


def precision_recall(
    real: np.ndarray,
    fake: np.ndarray,
    k: int = 3,
    chunk: int = 1000,
    real_radii: np.ndarray | None = None,
) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) in a feature space.

    Precision: the share of generated samples inside the k-NN ball of some real sample (how
    many designs look like real ones: fidelity). Recall: the share of real samples inside the
    k-NN ball of some generated sample (how much of the real variety is drawn: diversity).
    FID folds both into one number; these two tell blur (precision falls) from a missing class
    (recall falls) apart. ``real_radii``: ``knn_radii(real, k)`` when already computed."""
    if min(len(real), len(fake)) <= k:
        raise EvaluateError(f"precision and recall need more than k={k} samples on each side.")
    radii = knn_radii(real, k, chunk) if real_radii is None else real_radii
    precision = _covered(fake, real, radii, chunk)
    recall = _covered(real, fake, knn_radii(fake, k, chunk), chunk)
    return precision, recall
