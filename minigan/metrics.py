"""Cheap numbers that say whether a GAN is learning or collapsing.

- ``mean_pairwise_cosine`` and ``pixel_std``: diversity of a batch of samples. Mode collapse
  shows up as cosine similarity climbing towards 1 and per-pixel spread falling towards 0.
- ``d_scores``: what the discriminator thinks of real and fake batches. D winning outright
  (accuracy near 1, D(fake) near 0) starves the generator of gradient.
- ``feature_distance``: a Fréchet distance between Gaussian fits of real and fake samples in a
  fixed random feature space, a rough, dependency-free stand-in for FID to compare runs.

Inputs may be NumPy/CuPy arrays or minigan Tensors; results are Python floats.
"""
import numpy as np

from .io import as_numpy


def _flat(samples):
    samples = as_numpy(samples).astype(np.float64)
    return samples.reshape(len(samples), -1)


def mean_pairwise_cosine(samples):
    """Mean cosine similarity over all pairs of distinct samples (flattened).

    Uses sum_{i != j} <u_i, u_j> = |sum_i u_i|^2 - N for unit vectors u_i: O(N D), not O(N^2 D).
    """
    flat = _flat(samples)
    n = len(flat)
    if n < 2:
        raise ValueError("mean_pairwise_cosine needs at least two samples")
    # scale each row by its largest magnitude first: the norms then lie in [1, sqrt(D)] and
    # can neither underflow (values near 1e-160) nor overflow (values near 1e160)
    peaks = np.abs(flat).max(axis=1, keepdims=True)
    flat = flat / np.where(peaks == 0, 1, peaks)
    norms = np.linalg.norm(flat, axis=1, keepdims=True)
    units = flat / np.where(norms == 0, 1, norms)
    total = units.sum(axis=0)
    return float((total @ total - (norms > 0).sum()) / (n * (n - 1)))


def pixel_std(samples):
    """Per-pixel standard deviation across samples, averaged over pixels (0 = all identical)."""
    return float(_flat(samples).std(axis=0).mean())


def d_scores(d_real_probs, d_fake_probs):
    """Summaries of D's probabilities on real and fake batches.

    Returns real_mean/std, fake_mean/std, and accuracy at a 0.5 threshold for real, fake and both.
    """
    real = as_numpy(d_real_probs).astype(np.float64).ravel()
    fake = as_numpy(d_fake_probs).astype(np.float64).ravel()
    real_correct, fake_correct = real > 0.5, fake < 0.5
    return {
        "real_mean": float(real.mean()),
        "real_std": float(real.std()),
        "fake_mean": float(fake.mean()),
        "fake_std": float(fake.std()),
        "real_accuracy": float(real_correct.mean()),
        "fake_accuracy": float(fake_correct.mean()),
        "accuracy": float(np.concatenate([real_correct, fake_correct]).mean()),
    }


def random_features(samples, dim=64, seed=0):
    """Random ReLU features of flattened samples, fixed by ``seed`` (same seed, same projection)."""
    flat = _flat(samples)
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal((flat.shape[1], dim)) / np.sqrt(flat.shape[1])
    bias = rng.uniform(-0.5, 0.5, dim)
    return np.maximum(flat @ weights + bias, 0)


def frechet_distance(features_a, features_b):
    """|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) between Gaussian fits of two sets.

    Tr((S_a S_b)^(1/2)) is the sum of square roots of the eigenvalues of the symmetric
    S_a^(1/2) S_b S_a^(1/2), which avoids a general matrix square root.
    """
    mean_a, mean_b = features_a.mean(0), features_b.mean(0)
    cov_a = np.cov(features_a, rowvar=False)
    cov_b = np.cov(features_b, rowvar=False)
    root_a = _psd_sqrt(cov_a)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0, None)).sum()
    return float(((mean_a - mean_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * cross)


def _psd_sqrt(matrix):
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def feature_distance(real, fake, dim=64, seed=0):
    """Fréchet distance between real and fake samples in a fixed random feature space.

    Comparable between runs that use the same ``dim``, ``seed`` and sample counts; lower is
    closer. Needs more samples than ``dim`` on each side for stable covariances.
    """
    return frechet_distance(random_features(real, dim, seed), random_features(fake, dim, seed))


def compare_to_real(samples, real):
    """The numbers every GAN lesson reports for its final samples beside real images: the
    diversity of each (mean pairwise cosine, per-pixel std) and the feature distance between them."""
    return {
        "mean_pairwise_cosine": mean_pairwise_cosine(samples),
        "pixel_std": pixel_std(samples),
        "real_mean_pairwise_cosine": mean_pairwise_cosine(real),
        "real_pixel_std": pixel_std(real),
        "feature_distance": feature_distance(real, samples),
    }
