"""Cheap numbers that say whether a GAN is learning or collapsing.

- ``mean_pairwise_cosine`` and ``pixel_std``: diversity of a batch of samples. Mode collapse
  shows up as cosine similarity climbing towards 1 and per-pixel spread falling towards 0.
- ``d_scores``: what the discriminator thinks of real and fake batches. D winning outright
  (accuracy near 1, D(fake) near 0) starves the generator of gradient.
- ``feature_distance``: a Fréchet distance between Gaussian fits of real and fake samples in a
  fixed random feature space, a rough stand-in for FID where no classifier is at hand.

Measured with a classifier trained on the real data (``minigan.classifier``, lesson 10), on its
penultimate features and its softmax:

- ``frechet_distance``: FID's formula, the distance between Gaussian fits of two feature sets.
- ``inception_score``: how confident and how evenly spread over classes the predictions are.
- ``class_coverage`` / ``class_histogram``: how many classes a generator draws, and how often.
- ``precision_recall``: realism and diversity, from k-nearest-neighbour balls in feature space.
- ``RealReference`` / ``real_reference(dataset)`` / ``evaluate(samples, dataset)``: all of these
  for a run's samples against the real test images.

``mode_coverage`` counts the modes of a 2-D Gaussian mixture a toy generator reaches.

Inputs may be NumPy/CuPy arrays or minigan Tensors; results are Python floats.
"""
import copy

import numpy as np

from .classifier import load_or_train
from .data import load_dataset
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


def gaussian_moments(features):
    """Mean vector and covariance matrix (rows are samples) of a set of feature vectors."""
    features = np.asarray(features, dtype=np.float64)
    return features.mean(axis=0), np.atleast_2d(np.cov(features, rowvar=False))


def sqrtm_psd(matrix):
    """The symmetric square root of a symmetric positive semi-definite matrix, without SciPy.

    Such a matrix is V diag(lambda) V^T with orthonormal eigenvectors V and eigenvalues
    lambda >= 0 (``numpy.linalg.eigh``), so V diag(sqrt(lambda)) V^T squares back to it:
    the V^T V in the middle is the identity. Eigenvalues a hair below zero, left by rounding
    in a singular covariance, are taken as 0."""
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance_from_moments(mean_a, cov_a, mean_b, cov_b):
    """|mu_a - mu_b|^2 + Tr(S_a) + Tr(S_b) - 2 Tr((S_a S_b)^(1/2)).

    S_a S_b is not symmetric, so its square root is awkward. But with R = S_a^(1/2),
    S_a S_b = R (R S_b), and a product XY has the same eigenvalues as YX: those of
    M = R S_b R, which is symmetric PSD. So Tr((S_a S_b)^(1/2)) = sum_i sqrt(eig_i(M)),
    and only symmetric eigenproblems are solved."""
    root_a = sqrtm_psd(cov_a)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0, None)).sum()
    shift = np.asarray(mean_a, np.float64) - np.asarray(mean_b, np.float64)
    return float(shift @ shift + np.trace(cov_a) + np.trace(cov_b) - 2 * cross)


def frechet_distance(features_a, features_b):
    """The Fréchet (2-Wasserstein) distance between Gaussian fits of two sets of feature vectors
    (rows are samples): 0 for identical fits, |shift|^2 for a set and its shifted copy."""
    return frechet_distance_from_moments(*gaussian_moments(features_a), *gaussian_moments(features_b))


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


# --- measures on a classifier's readings (lesson 10) ----------------------------------------

COVERAGE_THRESHOLD = 0.02  # a class (or mode) counts as covered when it holds >= 2% of samples
NEIGHBOURS = 3  # k of precision/recall: 1,000 real images read against the 10,000 test images score ~0.9, noise < 0.1


def inception_score(probs):
    """exp(E_x KL(p(y|x) || p(y))) from class probabilities (N, C), p(y) their mean.

    High when each sample is classified confidently (p(y|x) peaked) and the classes are used
    evenly (p(y) flat): C for confident predictions spread evenly over C classes, 1 when every
    prediction is the same distribution. Terms with p = 0 count as 0 (the limit of p log p)."""
    probs = np.asarray(probs, dtype=np.float64)
    marginal = probs.mean(axis=0, keepdims=True)
    positive = probs > 0
    ratio = np.where(positive, probs, 1) / np.where(positive, marginal, 1)
    kl = (probs * np.log(ratio)).sum(axis=1)
    return float(np.exp(kl.mean()))


def class_histogram(labels, num_classes):
    """The fraction of samples in each class: (num_classes,) summing to 1."""
    labels = np.asarray(labels).ravel()
    return np.bincount(labels, minlength=num_classes)[:num_classes] / max(1, len(labels))


def class_coverage(labels, num_classes, threshold=COVERAGE_THRESHOLD):
    """How many classes hold at least ``threshold`` of the samples (10 of 10 for a healthy digit
    generator, 1 for one that draws a single digit)."""
    return int((class_histogram(labels, num_classes) >= threshold).sum())


def _squared_distances(a, b, chunk=1024):
    """Rows of squared Euclidean distances between the rows of ``a`` and of ``b``, ``chunk`` rows
    of ``a`` at a time, via |x|^2 + |y|^2 - 2 x.y. That expansion leaves rounding noise of about
    1e-16 (|x|^2 + |y|^2) where x = y, so values below 1e-12 of it are set to exactly 0."""
    b = np.asarray(b, dtype=np.float64)
    b_norms = (b * b).sum(axis=1)
    for start in range(0, len(a), chunk):
        part = np.asarray(a[start:start + chunk], dtype=np.float64)
        part_norms = (part * part).sum(axis=1)[:, None]
        scale = part_norms + b_norms
        d2 = scale - 2 * part @ b.T
        d2[d2 <= 1e-12 * scale] = 0.0
        yield d2


def knn_radii(features, k=NEIGHBOURS):
    """Distance from each row to its k-th nearest neighbour among the other rows."""
    if not 1 <= k < len(features):
        raise ValueError(f"knn_radii: k must lie in [1, {len(features) - 1}] for {len(features)} rows, got {k}")
    # each row's own distance 0 is the smallest in its row, so the k-th neighbour sits at index k
    return np.sqrt(np.concatenate([np.partition(d2, k, axis=1)[:, k]
                                   for d2 in _squared_distances(features, features)]))


def _inside_manifold(points, centres, radii):
    """For each point: does it fall within some centre's ball (|point - centre| <= radius)?"""
    r2 = np.square(radii)[None, :]
    return np.concatenate([(d2 <= r2).any(axis=1) for d2 in _squared_distances(points, centres)])


def precision_recall(real_features, fake_features, k=NEIGHBOURS):
    """Precision and recall of generated samples (Kynkäänniemi et al. 2019), from feature rows.

    Each set stands for its manifold: the union of balls around its points, each ball reaching
    to that point's k-th nearest neighbour in the same set. Precision is the fraction of fake
    points inside the real manifold (are the samples realistic?); recall is the fraction of real
    points inside the fake manifold (is every kind of real image produced?). A collapsed
    generator can have perfect precision and a recall near 0."""
    precision = _inside_manifold(fake_features, real_features, knn_radii(real_features, k)).mean()
    recall = _inside_manifold(real_features, fake_features, knn_radii(fake_features, k)).mean()
    return float(precision), float(recall)


def mode_coverage(points, centres, std, within=3.0, threshold=COVERAGE_THRESHOLD):
    """Modes of a Gaussian mixture a generator reproduces (for 2-D toys).

    A sample is *high quality* when it lies within ``within`` standard deviations of its
    nearest centre; a mode is covered when it holds at least ``threshold`` of all samples as
    high-quality ones. Returns {"modes": covered count, "high_quality": fraction, "counts":
    high-quality samples per mode}."""
    points, centres = np.asarray(points, np.float64), np.asarray(centres, np.float64)
    d2 = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    nearest = d2.argmin(axis=1)
    good = d2[np.arange(len(points)), nearest] <= (within * std) ** 2
    counts = np.bincount(nearest[good], minlength=len(centres))
    return {"modes": int((counts >= threshold * len(points)).sum()),
            "high_quality": float(good.mean()), "counts": counts.tolist()}


class RealReference:
    """Real images as a classifier sees them, prepared once to score many sets of samples:
    their features, the Gaussian fit of those and each one's k-NN radius.

    ``judge`` is a ``minigan.classifier.Classifier`` (anything with ``features`` and ``probs``).
    The Fréchet distance and precision/recall depend on how many samples are compared, so
    compare runs at equal sample counts against the same reference."""

    def __init__(self, judge, real_images, k=NEIGHBOURS):
        self.judge, self.k = judge, k
        self.features = judge.features(real_images)
        self.moments = gaussian_moments(self.features)
        self.radii = knn_radii(self.features, k)

    def with_neighbours(self, k):
        """The same reference with another k of precision/recall (the features are reused)."""
        other = copy.copy(self)
        other.k, other.radii = k, knn_radii(self.features, k)
        return other

    def score(self, samples):
        """Every classifier-based measure of ``samples`` (N, C, H, W) against the reference."""
        features, probs = self.judge.features(samples), self.judge.probs(samples)
        classes = probs.shape[1]
        predicted = probs.argmax(axis=1)
        precision = _inside_manifold(features, self.features, self.radii).mean()
        recall = _inside_manifold(self.features, features, knn_radii(features, self.k)).mean()
        return {
            "frechet_distance": frechet_distance_from_moments(*self.moments, *gaussian_moments(features)),
            "inception_score": inception_score(probs),
            "coverage": class_coverage(predicted, classes),
            "class_fractions": class_histogram(predicted, classes).tolist(),
            "precision": float(precision),
            "recall": float(recall),
        }


def real_reference(dataset="digits", root=None, k=NEIGHBOURS):
    """The RealReference of a dataset's whole test set, judged by the classifier trained on its
    training set (trained on first use, then read from the cache; see minigan.classifier)."""
    judge = load_or_train(dataset, root=root)
    return RealReference(judge, load_dataset(dataset, root=root, train=False).images, k)


def evaluate(samples, dataset="digits", root=None, k=NEIGHBOURS):
    """Score generated images (N, C, H, W) in [-1, 1] against the real test images of
    ``dataset``: RealReference.score plus the judge's test accuracy and k."""
    reference = real_reference(dataset, root, k)
    return {**reference.score(as_numpy(samples)), "classifier_accuracy": reference.judge.accuracy,
            "neighbours": k}
