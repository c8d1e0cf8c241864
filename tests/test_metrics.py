import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigan
from minigan.metrics import (
    compare_to_real, d_scores, feature_distance, frechet_distance, mean_pairwise_cosine, pixel_std,
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
