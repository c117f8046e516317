"""The Frechet distance between two sets of feature vectors, each summarised by a Gaussian (FID).

FID (Heusel et al., 2017) fits a Gaussian N(mu, Sigma) to a network's features of real images and another to
those of generated images, and measures ||mu_1 - mu_2||^2 + Tr(Sigma_1 + Sigma_2 - 2 (Sigma_1 Sigma_2)^(1/2)):
0 for identical Gaussians, larger as the sets differ in where their features lie or how they spread. The
published score uses Inception-v3's pool features; any feature extractor works the same way, and scores
compare only between sets measured with the same extractor and the same number of images (the estimate is
biased upwards for small sets). Checked against torchmetrics' FrechetInceptionDistance in the tests.
"""

from __future__ import annotations

import numpy as np


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of features (N, D), in float64."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need (N, D) features with N >= 2, got shape {features.shape}")
    if not np.isfinite(features).all():
        raise ValueError("features contain NaN or infinity: the images (or the network) are broken")
    return features.mean(0), np.cov(features, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(sigma1) + Tr(sigma2) - 2 Tr((sigma1 sigma2)^(1/2)).

    Tr((S1 S2)^(1/2)) is the sum of the square roots of the eigenvalues of S1 S2, which are those of the
    symmetric S1^(1/2) S2 S1^(1/2): eigh on symmetric matrices stays real and stable where features are
    rank-deficient (dead ReLUs give zero-variance dimensions, where scipy's sqrtm of S1 S2 can fail).
    """
    values, vectors = np.linalg.eigh(sigma1)
    root1 = (vectors * np.sqrt(values.clip(min=0))) @ vectors.T  # S1^(1/2)
    product = np.linalg.eigvalsh(root1 @ sigma2 @ root1)
    diff = mu1 - mu2
    trace_root = np.sqrt(product.clip(min=0)).sum()
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_root)


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """FID between two sets of features (N_a, D) and (N_b, D)."""
    return frechet_distance(*gaussian_stats(features_a), *gaussian_stats(features_b))


def class_entropy(predicted: np.ndarray, n_classes: int) -> float:
    """Entropy (nats) of the histogram of predicted classes: ln(n_classes) when every class is drawn
    equally often, 0 when a generator collapses onto one class (mode coverage)."""
    counts = np.bincount(np.asarray(predicted), minlength=n_classes).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())
