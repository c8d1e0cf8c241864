import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigan
from minigan.metrics import (
    RealReference, class_coverage, class_histogram, compare_to_real, d_scores, feature_distance,
    frechet_distance, frechet_distance_from_moments, inception_score, knn_radii,
    mean_pairwise_cosine, mode_coverage, pixel_std, precision_recall, sqrtm_psd,
)


@given(hnp.arrays(np.float64, st.tuples(st.integers(2, 8), st.integers(1, 6)),
                  elements=st.floats(-10, 10)))
def test_mean_pairwise_cosine_matches_the_pairwise_definition(samples):
    def cosine(a, b):  # in exact rational arithmetic: no underflow or overflow at any scale
        a, b = [Fraction(v) for v in a], [Fraction(v) for v in b]
        dot, aa, bb = sum(x * y for x, y in zip(a, b)), sum(x * x for x in a), sum(y * y for y in b)
        if aa == 0 or bb == 0:
            return 0.0
        return math.copysign(math.sqrt(dot * dot / (aa * bb)), dot)

    n = len(samples)
    expected = np.mean([cosine(samples[i], samples[j]) for i in range(n) for j in range(n) if i != j])
    assert mean_pairwise_cosine(samples) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("scale", [4.2e-162, 1e-300, 1.0, 1e154, 1e300])
def test_mean_pairwise_cosine_of_identical_vectors_is_one_at_any_scale(scale):
    # the norms of tiny vectors underflow and of huge ones overflow unless rows are rescaled
    assert mean_pairwise_cosine(np.array([[scale], [scale]])) == pytest.approx(1.0)
    assert mean_pairwise_cosine(np.array([[scale, -scale], [-scale, scale]])) == pytest.approx(-1.0)


def test_collapsed_samples_have_cosine_one_and_no_spread():
    collapsed = np.tile(np.arange(1.0, 13.0).reshape(1, 3, 2, 2), (6, 1, 1, 1))
    assert mean_pairwise_cosine(collapsed) == pytest.approx(1.0)
    assert pixel_std(collapsed) == 0
    assert mean_pairwise_cosine(np.eye(4)) == pytest.approx(0.0)


def test_pixel_std_averages_the_per_pixel_spread():
    samples = minigan.tensor(np.array([[0.0, 0.0], [2.0, 4.0]]))
    assert pixel_std(samples) == pytest.approx((1.0 + 2.0) / 2)


def test_d_scores_summarise_real_and_fake_probabilities():
    scores = d_scores(np.array([0.9, 0.7, 0.4]), minigan.tensor([0.1, 0.6]))
    assert scores["real_mean"] == pytest.approx(2 / 3)
    assert scores["fake_mean"] == pytest.approx(0.35)
    assert scores["real_std"] == pytest.approx(np.std([0.9, 0.7, 0.4]))
    assert scores["real_accuracy"] == pytest.approx(2 / 3)
    assert scores["fake_accuracy"] == pytest.approx(0.5)
    assert scores["accuracy"] == pytest.approx(3 / 5)


def test_frechet_distance_of_diagonal_gaussians_matches_the_closed_form():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((200_000, 2)) * [1.0, 2.0]
    b = rng.standard_normal((200_000, 2)) * [3.0, 1.0] + [1.0, -1.0]
    # For diagonal covariances: |mu_a - mu_b|^2 + sum_i (sigma_a,i - sigma_b,i)^2.
    expected = 2.0 + (1 - 3) ** 2 + (2 - 1) ** 2
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.02)


def test_feature_distance_is_small_for_the_same_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(1)
    real = rng.uniform(-1, 1, (2000, 1, 8, 8))
    same = rng.uniform(-1, 1, (2000, 1, 8, 8))
    shifted = np.clip(same + 0.5, -1, 1)
    assert feature_distance(real, real) == pytest.approx(0, abs=1e-6)
    assert feature_distance(real, shifted) > 10 * feature_distance(real, same)


def test_compare_to_real_reports_both_sides():
    rng = np.random.default_rng(0)
    real = rng.uniform(-1, 1, (20, 1, 4, 4)).astype(np.float32)
    same = compare_to_real(real, real)
    assert same["mean_pairwise_cosine"] == same["real_mean_pairwise_cosine"]
    assert abs(same["feature_distance"]) < 1e-6
    collapsed = compare_to_real(np.repeat(real[:1], 20, axis=0), real)
    assert collapsed["pixel_std"] == 0 and collapsed["mean_pairwise_cosine"] > same["mean_pairwise_cosine"]


# --- the classifier-based measures ------------------------------------------------------------


def random_covariance(dim, rank, seed):
    """A symmetric PSD matrix of the given rank (singular when rank < dim)."""
    factor = np.random.default_rng(seed).standard_normal((dim, rank))
    return factor @ factor.T


@pytest.mark.parametrize("rank", [5, 3, 0])
def test_sqrtm_psd_squares_back_and_is_symmetric(rank):
    matrix = random_covariance(5, rank, seed=rank)
    root = sqrtm_psd(matrix)
    np.testing.assert_allclose(root @ root, matrix, atol=1e-10 * max(1.0, np.abs(matrix).max()))
    np.testing.assert_allclose(root, root.T, rtol=0, atol=1e-15 * np.abs(root).max())
    assert np.linalg.eigvalsh(root).min() > -1e-10


def test_sqrtm_psd_of_a_rotated_diagonal_is_the_rotated_root():
    rotation, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((3, 3)))
    matrix = rotation @ np.diag([9.0, 4.0, 0.25]) @ rotation.T
    np.testing.assert_allclose(sqrtm_psd(matrix), rotation @ np.diag([3.0, 2.0, 0.5]) @ rotation.T,
                               atol=1e-12)


def test_frechet_distance_of_identical_gaussians_is_zero():
    mean, cov = np.array([1.0, -2.0, 0.5, 3.0]), random_covariance(4, 4, seed=1)
    assert frechet_distance_from_moments(mean, cov, mean, cov) == pytest.approx(0, abs=1e-10 * np.trace(cov))
    features = np.random.default_rng(2).standard_normal((500, 6))
    assert frechet_distance(features, features.copy()) == pytest.approx(0, abs=1e-10 * 6)


def test_frechet_distance_of_a_shifted_copy_is_the_squared_shift():
    features = np.random.default_rng(3).standard_normal((400, 5)) @ random_covariance(5, 5, seed=4)
    shift = np.array([0.5, -1.0, 2.0, 0.0, 3.0])
    assert frechet_distance(features, features + shift) == pytest.approx(shift @ shift, rel=1e-9)


def test_frechet_distance_of_diagonal_covariances_is_the_sum_of_squared_std_differences():
    # commuting covariances: Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) = sum_i (sigma_a,i - sigma_b,i)^2
    distance = frechet_distance_from_moments(np.zeros(2), np.diag([1.0, 4.0]), np.array([1.0, 1.0]),
                                             np.diag([9.0, 1.0]))
    assert distance == pytest.approx(2 + (1 - 3) ** 2 + (2 - 1) ** 2, rel=1e-12)


def test_frechet_distance_matches_the_eigenvalues_of_the_nonsymmetric_product():
    cov_a, cov_b = random_covariance(4, 4, seed=5), random_covariance(4, 4, seed=6)
    mean_a, mean_b = np.arange(4.0), np.ones(4)
    # an independent route: eigenvalues of S_a S_b itself (real and >= 0, though it is not symmetric)
    cross = np.sqrt(np.linalg.eigvals(cov_a @ cov_b).real).sum()
    expected = ((mean_a - mean_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * cross
    assert frechet_distance_from_moments(mean_a, cov_a, mean_b, cov_b) == pytest.approx(expected, rel=1e-9)


def test_inception_score_of_uniform_predictions_is_one():
    assert inception_score(np.full((50, 10), 0.1)) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("classes", [2, 10])
def test_inception_score_of_confident_balanced_predictions_is_the_number_of_classes(classes):
    probs = np.eye(classes)[np.arange(5 * classes) % classes]
    assert inception_score(probs) == pytest.approx(classes, rel=1e-12)


def test_inception_score_of_one_confident_class_is_one():
    assert inception_score(np.eye(10)[np.full(30, 7)]) == pytest.approx(1.0, abs=1e-12)


def test_inception_score_matches_a_hand_computed_case():
    probs = np.array([[1.0, 0.0], [0.5, 0.5]])  # p(y) = (0.75, 0.25)
    kl = [math.log(1 / 0.75), 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)]
    assert inception_score(probs) == pytest.approx(math.exp(np.mean(kl)), rel=1e-12)


def test_class_coverage_counts_classes_at_or_above_the_threshold():
    collapsed = np.full(100, 3)
    assert class_coverage(collapsed, 10) == 1
    assert class_coverage(np.arange(100) % 10, 10) == 10
    labels = np.array([0] * 98 + [1] * 2 + [2] * 1)
    assert class_coverage(labels[:100], 10) == 2  # 98% and exactly 2% count
    assert class_coverage(labels, 10) == 1  # of 101 samples, 2 and 1 fall below 2%
    assert class_coverage(labels, 10, threshold=0.005) == 3


def test_class_histogram_gives_fractions_that_sum_to_one():
    histogram = class_histogram(np.array([0, 0, 2, 2, 2, 1]), 4)
    np.testing.assert_allclose(histogram, [2 / 6, 1 / 6, 3 / 6, 0])


def test_knn_radii_on_a_line():
    points = np.array([[0.0], [1.0], [3.0], [7.0]])
    np.testing.assert_allclose(knn_radii(points, 1), [1, 1, 2, 4])
    np.testing.assert_allclose(knn_radii(points, 2), [3, 2, 3, 6])
    with pytest.raises(ValueError, match="k must lie in"):
        knn_radii(points, 4)


def test_precision_and_recall_of_a_set_against_itself_are_one():
    features = np.random.default_rng(7).standard_normal((300, 8))
    assert precision_recall(features, features.copy(), k=3) == (1.0, 1.0)
    collapsed = np.ones((20, 8))  # all radii 0: every point still lies in its own ball
    assert precision_recall(collapsed, collapsed.copy(), k=3) == (1.0, 1.0)


def test_precision_and_recall_of_far_apart_sets_are_zero():
    rng = np.random.default_rng(8)
    real, fake = rng.standard_normal((200, 4)), rng.standard_normal((200, 4)) + 100
    assert precision_recall(real, fake, k=3) == (0.0, 0.0)


def test_precision_and_recall_on_a_hand_made_case():
    real = np.array([[0.0], [1.0], [2.0], [3.0]])  # k = 1: every real ball has radius 1
    fake = np.array([[0.5], [10.0]])  # fake radii: 9.5 each, which reach every real point
    assert precision_recall(real, fake, k=1) == (0.5, 1.0)


def test_a_collapsed_generator_keeps_its_precision_and_loses_its_recall():
    # ten far-apart clusters; the "generator" draws the real points of one of them
    rng = np.random.default_rng(9)
    real = 10 * np.eye(10)[np.arange(1000) % 10] + rng.standard_normal((1000, 10)) * 0.1
    collapsed = real[::10]
    # every sample is a real point; the fake balls are the cluster's own, so its 100 real
    # points (a tenth of all) are inside and the other nine clusters are not
    assert precision_recall(real, collapsed, k=3) == (1.0, 0.1)


def test_mode_coverage_counts_modes_and_high_quality_samples():
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = np.array([[0.0, 0.1]] * 50 + [[10.0, 0.0]] * 49 + [[0.0, 10.0]] * 1)
    result = mode_coverage(points, centres, std=0.1)  # within 3 std = 0.3 of a centre
    assert result == {"modes": 2, "high_quality": 1.0, "counts": [50, 49, 1]}
    # 100 samples far from every mode: half the samples are not high quality, and the modes'
    # shares halve (25%, 24.5% and 0.5%)
    result = mode_coverage(np.concatenate([points, [[5.0, 5.0]] * 100]), centres, std=0.1)
    assert result == {"modes": 2, "high_quality": 0.5, "counts": [50, 49, 1]}
    assert mode_coverage(points, centres, std=0.1, threshold=0.01)["modes"] == 3


class TableJudge:
    """A stand-in classifier: the features are the flattened images, the class is the index
    of the largest pixel."""

    def features(self, images):
        return np.asarray(images, np.float64).reshape(len(images), -1)

    def probs(self, images):
        flat = self.features(images)
        return np.eye(flat.shape[1])[flat.argmax(axis=1)]


def test_real_reference_scores_samples_with_every_measure():
    rng = np.random.default_rng(10)
    real = np.eye(4)[np.arange(400) % 4] + rng.normal(0, 0.05, (400, 4))
    reference = RealReference(TableJudge(), real.reshape(400, 1, 2, 2), k=3)
    scores = reference.score(real.reshape(400, 1, 2, 2))
    assert scores["frechet_distance"] == pytest.approx(0, abs=1e-12)
    assert scores["precision"] == scores["recall"] == 1.0
    assert scores["coverage"] == 4 and scores["class_fractions"] == [0.25] * 4
    assert scores["inception_score"] == pytest.approx(4)
    collapsed = reference.score(real[::4].reshape(100, 1, 2, 2))
    assert collapsed["coverage"] == 1 and collapsed["inception_score"] == pytest.approx(1)
    assert collapsed["precision"] == 1.0 and collapsed["recall"] == pytest.approx(0.25)
    expected = frechet_distance(real, real[::4])
    assert collapsed["frechet_distance"] == pytest.approx(expected, rel=1e-12)


def test_a_reference_with_other_neighbours_matches_a_fresh_one():
    rng = np.random.default_rng(11)
    real, fake = rng.standard_normal((300, 1, 2, 3)), rng.standard_normal((200, 1, 2, 3)) + 0.3
    reference = RealReference(TableJudge(), real, k=3)
    other = reference.with_neighbours(7)
    assert other.k == 7 and reference.k == 3
    assert other.score(fake) == RealReference(TableJudge(), real, k=7).score(fake)
    assert other.score(fake)["precision"] != reference.score(fake)["precision"]
