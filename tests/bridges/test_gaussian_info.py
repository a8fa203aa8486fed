"""minGRU on information vectors for the Gaussian-latent switching model (docs/theory.md section 4).

Independent references:

- the information-form recursion: a NumPy loop with ``numpy.linalg.inv`` and scipy cue
  densities;
- the exact posterior: :func:`switchssm.inference.run_length_filter` (moment-form Kalman
  updates over run lengths, itself tested against enumeration in tests/inference), and NumPy
  for ``tr(S0 - J~^-1)``.

Exact identities: ``EXACT = 1e-9`` (float64; the two sides are computed in different forms,
information vs Joseph-form moments, so rounding reaches ~1e-14 on these well-conditioned
random parameters; 1e-9 is the brief's bound). Approximations are measured and their
direction tested.
"""

import numpy as np
import pytest
import scipy.special as sps
import scipy.stats as st

from switchssm.bridges.gaussian_info import information_form_inputs
from switchssm.bridges.gaussian_info import information_form_mingru
from switchssm.bridges.gaussian_info import information_form_selective
from switchssm.bridges.gaussian_info import mingru_from_gaussian_latent
from switchssm.inference import run_length_filter
from switchssm.models import GaussianCue
from switchssm.models import GaussianLatentParams
from switchssm.rnn import mingru
from switchssm.verify.gaussian import default_gaussian_params

EXACT = 1e-9
T, N = 40, 16  # the checks below reuse these shapes, so nothing compiles twice
TR = T  # random-input sequences: the shapes of the checks, so their programs are reused


def random_spd(rng, n, ridge):
    A = rng.normal(size=(n, n))
    return A @ A.T / n + ridge * np.eye(n)


def random_params(rng, K, D, cue, d, gated=True):
    """Random model with a cue of separation ``d`` ("scalar", "vector" or None)."""
    if cue == "scalar":
        tau = 0.7
        c = GaussianCue(np.array([0.3, 0.3 + d * tau]), tau)
    elif cue == "vector":
        scale = np.array([0.5, 1.5])
        m0 = np.array([0.1, -0.2])
        c = GaussianCue(np.stack([m0, m0 + d * scale * np.array([0.6, 0.8])]), scale)
    else:
        c = None
    r = np.random.default_rng(rng)  # same model for every d
    return GaussianLatentParams(
        initial_mean=r.normal(size=K),
        initial_cov=random_spd(r, K, 0.5),
        emission_matrix=r.normal(size=(D, K)),
        emission_cov=random_spd(r, D, 0.3),
        switch_prob=0.15,
        cue=c,
        gated=gated,
    )


def random_inputs(seed, params, T_):
    r = np.random.default_rng(seed)
    y = r.normal(size=(T_, params.emission_dim)) * 2.0
    if params.cue is None:
        return y, None
    m = np.asarray(params.cue.means)
    z = r.random(T_) < 0.3
    u = m[z.astype(int)] + np.asarray(params.cue.scale) * r.normal(size=m[0].shape + (T_,)).T
    return y, u


def naive_info_form(params, y, u):
    """``(eta, J, mean)`` by a NumPy loop over time."""
    mu0 = np.asarray(params.initial_mean)
    S0inv = np.linalg.inv(np.asarray(params.initial_cov))
    C = np.asarray(params.emission_matrix)
    Rinv = np.linalg.inv(np.asarray(params.emission_cov))
    Jt = S0inv + C.T @ Rinv @ C
    rho = float(params.switch_prob)
    llr = np.zeros(len(y))
    if params.cue is not None:
        m = np.asarray(params.cue.means).reshape(2, -1)
        tau = np.asarray(params.cue.scale)
        uu = np.asarray(u).reshape(len(y), -1)
        llr = (st.norm.logpdf(uu, m[1], tau) - st.norm.logpdf(uu, m[0], tau)).sum(-1)
    g = sps.expit(np.log(rho / (1 - rho)) + llr)
    eta, J = Jt @ mu0, Jt.copy()
    out = []
    for t in range(len(y)):
        eta = (1 - g[t]) * eta + g[t] * (S0inv @ mu0 + C.T @ Rinv @ y[t])
        J = (1 - g[t]) * J + g[t] * Jt
        out.append((eta, J, np.linalg.solve(Jt, eta)))
    return tuple(np.array(a) for a in zip(*out, strict=True)), Jt


CASES = [(11, 2, 2, "scalar"), (12, 3, 1, "vector"), (13, 2, 3, None)]


@pytest.mark.parametrize("seed, K, D, cue", CASES)
def test_information_form_matches_naive_loop_and_mingru(seed, K, D, cue):
    params = random_params(seed, K, D, cue, 1.7)
    y, u = random_inputs(seed, params, TR)
    (eta, J, mean), Jt = naive_info_form(params, y, u)
    got = information_form_mingru(params, y, u)
    scale = np.abs(eta).max()
    np.testing.assert_allclose(got.eta, eta, atol=1e-12 * scale, rtol=0)
    np.testing.assert_allclose(got.precision, J, atol=1e-12 * np.abs(Jt).max(), rtol=0)
    np.testing.assert_allclose(got.precision, np.broadcast_to(Jt, J.shape), atol=1e-12 * scale)
    np.testing.assert_allclose(got.mean, mean, atol=1e-12 * max(1, np.abs(mean).max()))
    # The same recursion as a logit-state minGRU on x_t = [y_t, u_t].
    w = mingru_from_gaussian_latent(params)
    x = information_form_inputs(params, y, u)
    assert w.hidden_dim == K and x.shape == (TR, D + (0 if cue is None else params.cue.dim))
    h = mingru(w, x, h0=Jt @ np.asarray(params.initial_mean), space="logit", mode="sequential")
    np.testing.assert_allclose(h, eta, atol=1e-12 * scale, rtol=0)


@pytest.mark.parametrize("seed, K, D, cue", CASES[:2])
def test_gated_mean_is_exact_at_every_cue_strength(seed, K, D, cue):
    for d in (0.0, 0.7, 2.0, 5.0, 40.0):
        params = random_params(seed, K, D, cue, d, gated=True)
        assert float(params.cue.separation) == pytest.approx(d, abs=1e-12)
        y, u = random_inputs(seed + 100, params, TR)
        post = run_length_filter(params, y, u)
        info = information_form_mingru(params, y, u)
        np.testing.assert_allclose(info.mean, post.filtered_mean, atol=EXACT, rtol=0)
        # The exact mixture covariance exceeds J~^-1 (PSD difference).
        Jt_inv = np.linalg.inv(np.asarray(info.precision[0]))
        eig = np.linalg.eigvalsh(np.asarray(post.filtered_cov) - Jt_inv)
        assert eig.min() > -EXACT


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: information_form_mingru("p", np.zeros((3, 2)), np.zeros(3)), "params"),
        (
            lambda: information_form_mingru(
                default_gaussian_params(), np.zeros((3, 5)), np.zeros(3)
            ),
            "y",
        ),
        (lambda: information_form_mingru(default_gaussian_params(), np.zeros((3, 2))), "u"),
        (
            lambda: information_form_selective(
                default_gaussian_params(), np.zeros((3, 2)), np.zeros(4)
            ),
            "u",
        ),
        (
            lambda: mingru_from_gaussian_latent(default_gaussian_params().replace(switch_prob=0.0)),
            "switch_prob",
        ),
        (lambda: mingru_from_gaussian_latent(None), "params"),
    ],
)
def test_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()
