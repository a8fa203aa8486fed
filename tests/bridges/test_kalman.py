"""The Kalman filter as a linear recurrence, against dynamax and closed forms.

Independent sides: dynamax's ``lgssm_filter`` (means and covariances), scipy's discrete
algebraic Riccati solver for the steady state, and the linearized Riccati map for the
convergence rates. float64 throughout; tolerances are commented where not at rounding.
"""

import functools

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from switchssm import rnn
from switchssm.bridges import kalman


def random_model(rng, N=3, M=2, radius=0.95):
    A = rng.standard_normal((N, N))
    A = radius * A / np.max(np.abs(np.linalg.eigvals(A)))
    L = rng.standard_normal((N, N))
    Q = L @ L.T / N + 0.1 * np.eye(N)
    L = rng.standard_normal((M, M))
    R = L @ L.T / M + 0.3 * np.eye(M)
    return kalman.LGSSMParams(
        rng.standard_normal(N), 2.0 * np.eye(N), A, Q, rng.standard_normal((M, N)), R
    )


def dynamax_filter(p, y):
    import dynamax.linear_gaussian_ssm.inference as DI

    N, M = p.state_dim, p.emission_dim
    dp = DI.ParamsLGSSM(
        DI.ParamsLGSSMInitial(jnp.asarray(p.initial_mean), jnp.asarray(p.initial_cov)),
        DI.ParamsLGSSMDynamics(
            jnp.asarray(p.dynamics), jnp.zeros(N), jnp.zeros((N, 0)), jnp.asarray(p.dynamics_cov)
        ),
        DI.ParamsLGSSMEmissions(
            jnp.asarray(p.emission), jnp.zeros(M), jnp.zeros((M, 0)), jnp.asarray(p.emission_cov)
        ),
    )
    return DI.lgssm_filter(dp, jnp.asarray(y))


@pytest.fixture
def model_and_data():
    rng = np.random.default_rng(0)
    p = random_model(rng)
    return p, rng.standard_normal((120, p.emission_dim))


def test_time_varying_recurrence_equals_dynamax_to_float64_precision(model_and_data, monkeypatch):
    import dynamax.linear_gaussian_ssm.inference as DI
    from dynamax.utils.utils import psd_solve

    p, y = model_and_data
    # dynamax adds 1e-9 I to the innovation covariance before every solve (psd_solve's
    # diagonal_boost): a deliberate perturbation of ~1e-9. With it set to 0 the two filters
    # must agree to rounding.
    monkeypatch.setattr(DI, "psd_solve", functools.partial(psd_solve, diagonal_boost=0.0))
    post = dynamax_filter(p, y)
    rec = kalman.kalman_recurrence(p, len(y))
    for mode in ("sequential", "parallel"):
        m = kalman.kalman_filter_means(p, y, mode=mode)
        np.testing.assert_allclose(m, post.filtered_means, rtol=0, atol=1e-12)
    np.testing.assert_allclose(rec.filtered_covs, post.filtered_covariances, rtol=0, atol=1e-12)


def test_agreement_with_dynamax_as_shipped(model_and_data):
    p, y = model_and_data
    # With dynamax's 1e-9 boost the gain moves by ~1e-9 |S^-1| |K|: 1e-8 bounds it here.
    post = dynamax_filter(p, y)
    np.testing.assert_allclose(
        kalman.kalman_filter_means(p, y), post.filtered_means, rtol=0, atol=1e-8
    )


def test_coefficients_do_not_read_the_observations(model_and_data):
    p, y = model_and_data
    rec = kalman.kalman_recurrence(p, len(y))
    # the filter is linear in (mu_0, y): doubling both doubles every mean
    m = np.asarray(kalman.kalman_filter_means(p, y))
    p2 = p.replace(initial_mean=2.0 * np.asarray(p.initial_mean))
    np.testing.assert_allclose(kalman.kalman_filter_means(p2, 2.0 * y), 2.0 * m, atol=1e-12)
    # and its coefficients are the documented ones: a_1 = I - K_1 C, a_t = (I - K_t C) A
    Cm, A = np.asarray(p.emission), np.asarray(p.dynamics)
    I = np.eye(p.state_dim)
    np.testing.assert_allclose(rec.transitions[0], I - rec.gains[0] @ Cm, atol=1e-14)
    np.testing.assert_allclose(rec.transitions[5], (I - rec.gains[5] @ Cm) @ A, atol=1e-14)


def test_steady_state_solves_the_riccati_equation(model_and_data):
    p, _ = model_and_data
    ss = kalman.steady_state(p)
    A, Q = np.asarray(p.dynamics), np.asarray(p.dynamics_cov)
    Cm, R = np.asarray(p.emission), np.asarray(p.emission_cov)
    P = scipy.linalg.solve_discrete_are(A.T, Cm.T, Q, R)  # the predicted (prior) covariance
    np.testing.assert_allclose(ss.predicted_cov, P, rtol=1e-9)
    K = P @ Cm.T @ np.linalg.inv(Cm @ P @ Cm.T + R)
    np.testing.assert_allclose(ss.gain, K, rtol=1e-9, atol=1e-12)
    assert ss.contraction == pytest.approx(
        np.max(np.abs(np.linalg.eigvals((np.eye(3) - K @ Cm) @ A))), rel=1e-9
    )


def test_steady_state_layer_converges_at_the_riccati_contraction(model_and_data):
    p, y = model_and_data
    layer = kalman.steady_state_layer(p)
    exact = np.asarray(kalman.kalman_filter_means(p, y))
    for form in ("scan", "convolution"):
        np.testing.assert_allclose(
            rnn.lti(layer, y, form=form)[-1], exact[-1], atol=1e-10
        )  # after 120 steps the gap is ~rho^120 ~ 1e-22: rounding only
    r = kalman.convergence_rates(p, y)
    # Predicted: the mean gap decays like rho(Phi)^t, the gain gap like rho(Phi)^(2t) (the
    # Riccati map linearized at its fixed point is X -> Phi X Phi'). The fitted rates carry
    # the transient of the other eigenvalues of Phi: 3% covers it for this model.
    assert r["mean_rate"] == pytest.approx(r["contraction"], rel=0.03)
    assert r["gain_rate"] == pytest.approx(r["riccati_contraction"], rel=0.03)
    # and the gap really is geometric: every 10 steps it shrinks by rho^10, within 2x
    gap = r["mean_gap"]
    ratio = gap[30] / gap[20]
    assert r["contraction"] ** 10 / 2 < ratio < 2 * r["contraction"] ** 10


def test_bad_input():
    rng = np.random.default_rng(1)
    p = random_model(rng)
    with pytest.raises(ValueError, match="emission_cov"):
        p.replace(emission_cov=-np.eye(2))
    with pytest.raises(ValueError, match="y"):
        kalman.kalman_filter_means(p, np.zeros((5, 3)))
    # an unstable mode the observations cannot see: no stabilizing steady state
    bad = kalman.LGSSMParams(
        np.zeros(2),
        np.eye(2),
        np.diag([1.2, 0.5]),
        0.1 * np.eye(2),
        np.array([[0.0, 1.0]]),
        np.eye(1),
    )
    with pytest.raises(ValueError, match="Riccati"):
        kalman.steady_state(bad, max_iter=2000)
