"""Emission and cue densities against scipy.stats, and their gradients against finite
differences of scipy's density."""

import jax
import numpy as np
import pytest
from scipy import stats

from switchssm.models import GaussianCue
from switchssm.models import GaussianEmission


def test_gaussian_emission_log_prob_matches_scipy(rng):
    K, D, T = 4, 3, 50
    A = rng.normal(size=(D, D))
    cov = A @ A.T + 0.3 * np.eye(D)
    means = rng.normal(size=(K, D)) * 2.0
    # observations far from the origin but near the means: the whitened-difference form
    # must not lose digits to |a|^2 - 2ab + |b|^2 cancellation
    offset = 1e4
    y = means[rng.integers(0, K, T)] + rng.normal(size=(T, D)) + offset
    em = GaussianEmission(means + offset, cov)
    ref = np.stack(
        [stats.multivariate_normal(m, cov).logpdf(y) for m in np.asarray(means + offset)], -1
    )
    np.testing.assert_allclose(em.log_prob(y), ref, rtol=1e-12, atol=1e-9)


def test_gaussian_emission_log_prob_gradient_matches_finite_differences(rng):
    K, D, T = 3, 2, 20
    A = rng.normal(size=(D, D))
    cov = A @ A.T + 0.5 * np.eye(D)
    means = rng.normal(size=(K, D))
    y = rng.normal(size=(T, D))

    def scipy_total(m, c):
        return sum(stats.multivariate_normal(mk, c).logpdf(y).sum() for mk in m)

    g_m, g_c = jax.grad(lambda m, c: GaussianEmission(m, c).log_prob(y).sum(), argnums=(0, 1))(
        means, cov
    )
    h = 1e-6
    for idx in np.ndindex(means.shape):
        e = np.zeros_like(means)
        e[idx] = h
        fd = (scipy_total(means + e, cov) - scipy_total(means - e, cov)) / (2 * h)
        np.testing.assert_allclose(g_m[idx], fd, rtol=1e-6, atol=1e-6)
    # symmetric perturbation of the covariance: the gradient's symmetric part
    for i, j in [(0, 0), (0, 1), (1, 1)]:
        e = np.zeros_like(cov)
        e[i, j] = e[j, i] = h
        fd = (scipy_total(means, cov + e) - scipy_total(means, cov - e)) / (2 * h)
        directional = float(np.sum(np.asarray(g_c) * e)) / h
        np.testing.assert_allclose(directional, fd, rtol=1e-6, atol=1e-6)


def test_gaussian_cue_log_prob_matches_scipy(rng):
    u = rng.normal(size=30)
    cue = GaussianCue(np.array([-0.5, 1.5]), 0.7)
    ref = np.stack([stats.norm(m, 0.7).logpdf(u) for m in (-0.5, 1.5)], -1)
    np.testing.assert_allclose(cue.log_prob(u), ref, rtol=1e-13)


def test_covariance_check_is_relative_to_scale(rng):
    """A covariance is refused for its condition number, never for its scale: 1e-12 * I
    (condition number 1) is accepted, and a matrix of condition number 1e13 is refused at
    every scale. The condition number is recomputed here from numpy's eigenvalues."""
    GaussianEmission(np.zeros((2, 1)), 1e-12 * np.eye(1))
    A = rng.normal(size=(3, 3))
    good = A @ A.T + 3 * np.eye(3)
    Q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    bad = Q @ np.diag([1.0, 1e-6, 1e-13]) @ Q.T
    bad = 0.5 * (bad + bad.T)
    ev = np.linalg.eigvalsh(bad)
    assert ev.max() / ev.min() > 1e12  # beyond the documented limit (MAX_CONDITION)
    for scale in (1e-150, 1e-12, 1.0, 1e12, 1e150):
        GaussianEmission(np.zeros((2, 3)), scale * good)
        with pytest.raises(ValueError, match="emission.cov.*condition number"):
            GaussianEmission(np.zeros((2, 3)), scale * bad)
    with pytest.raises(ValueError, match="emission.cov.*positive definite"):
        GaussianEmission(np.zeros((2, 1)), np.zeros((1, 1)))
