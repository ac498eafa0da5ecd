"""FD is zero for a set against itself and grows with added noise; it matches the closed form for
Gaussians; KID is unbiased (drawn twice from one distribution it averages to zero) and exact on a case
computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from training.metrics.frechet import fd, frechet_distance, kid, polynomial_mmd2_unbiased, split_floor


def test_fd_of_a_set_with_itself_is_zero_and_grows_with_noise():
    x = np.random.default_rng(0).normal(size=(500, 16))
    assert fd(x, x) == pytest.approx(0, abs=1e-6)
    noise = np.random.default_rng(1).normal(size=x.shape)
    values = [fd(x, x + s * noise) for s in (0.1, 0.3, 1.0, 3.0)]
    assert values == sorted(values) and values[0] > 0, values


def test_fd_matches_the_closed_form_for_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    v1, v2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-9)


def test_kid_of_constant_sets_is_the_kernel_distance_of_their_points():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 2.0])
    k = lambda x, y: (x @ y / 2 + 1) ** 3  # noqa: E731
    expected = k(a, a) + k(b, b) - 2 * k(a, b)
    assert polynomial_mmd2_unbiased(np.tile(a, (5, 1)), np.tile(b, (7, 1))) == pytest.approx(expected)


def test_kid_is_unbiased_for_two_draws_of_one_distribution():
    rng = np.random.default_rng(3)
    # Small sets, where the biased estimate (diagonal kept) sits clearly above zero.
    values = [polynomial_mmd2_unbiased(rng.normal(size=(10, 4)), rng.normal(size=(10, 4))) for _ in range(2000)]
    mean, se = np.mean(values), np.std(values) / np.sqrt(len(values))
    assert abs(mean) < 3 * se, (mean, se)
    assert min(values) < 0  # an unbiased estimator must be allowed below zero


def test_kid_separates_shifted_sets_and_split_floor_stays_below():
    rng = np.random.default_rng(4)
    real = rng.normal(size=(400, 8))
    kid_same, _ = kid(real[:200], real[200:], subsets=20, subset_size=100)
    kid_far, _ = kid(real, real + 1.0, subsets=20, subset_size=100)
    assert kid_far > 10 * abs(kid_same)
    assert split_floor(real) < fd(real, real + 1.0)


def test_mismatched_features_are_refused():
    with pytest.raises(ValueError, match="D"):
        kid(np.zeros((4, 3)), np.zeros((4, 2)))
