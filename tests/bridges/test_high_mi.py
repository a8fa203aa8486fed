"""minGRU as the posterior recursion under high mutual information (docs/theory.md 2.3).

References computed independently of the code under test:

- ``I(u; z)``: adaptive ``scipy.integrate.quad`` of the mixture entropy ``H(u) - H(u|z)``
  (a different formula from the module's ``H(z) - E[H(z|u)]`` trapezoid rule), the small-``d``
  closed form ``rho (1 - rho) d^2 / 2`` and ``scipy.stats.bernoulli.entropy``;
- beliefs: plain NumPy loops over time with ``scipy.stats.norm`` cue densities;
- the exact filter: a NumPy forward recursion over ``(z_t, s_t)``; KL: ``scipy.special.rel_entr``.

Exact identities use ``EXACT = 1e-12`` (float64, rounding only). Statistical statements use
common random numbers across separations and a paired 3-standard-error margin.
"""

import numpy as np
import pytest
import scipy.integrate as si
import scipy.special as sps
import scipy.stats as st

from switchssm.bridges.high_mi import binary_entropy
from switchssm.bridges.high_mi import cue_mutual_information
from switchssm.bridges.high_mi import logit_mingru_belief
from switchssm.bridges.high_mi import selective_belief
from switchssm.models import CategoricalEmission
from switchssm.models import GaussianCue
from switchssm.models import SwitchingParams
from switchssm.verify.high_mi import default_mi_params
from switchssm.verify.high_mi import mi_sweep_sequences
from tests.bridges.references import naive_beliefs
from tests.bridges.references import numpy_filter

EXACT = 1e-12
T, N = 200, 48  # the checks below reuse these shapes, so nothing compiles twice


def reference_mi(rho, d):
    """``H(u) - H(u | z)`` with ``H(u)`` by adaptive quadrature of the mixture density."""

    def neg_plogp(x):
        p = (1 - rho) * st.norm.pdf(x) + rho * st.norm.pdf(x, loc=d)
        return -p * np.log(p) if p > 0 else 0.0

    pts = sorted({0.0, d / 2, d})
    h_u = si.quad(neg_plogp, -15, d + 15, points=pts, limit=500, epsabs=1e-14, epsrel=1e-13)[0]
    return h_u - 0.5 * np.log(2 * np.pi * np.e)


@pytest.mark.parametrize(
    "rho, d",
    [
        (0.05, 0.0),
        (0.05, 0.7),
        (0.05, 3.0),
        (0.5, 1.0),
        (0.5, 4.0),
        (0.9, 2.5),
        (0.2, 8.0),
        (0.01, 15.0),
        (0.3, 25.0),
    ],
)
def test_mutual_information_matches_scipy_quadrature(rho, d):
    assert abs(cue_mutual_information(rho, d) - reference_mi(rho, d)) < 1e-10


def test_mutual_information_limits_and_monotone():
    for rho in (0.05, 0.5, 0.8):
        h = binary_entropy(rho)
        assert h == pytest.approx(float(st.bernoulli(rho).entropy()), abs=EXACT)
        grid = np.linspace(0.0, 10.0, 41)
        mi = np.array([cue_mutual_information(rho, d) for d in grid])
        assert mi[0] == 0.0
        assert np.all(np.diff(mi) > 0)  # strictly increasing while H - I is resolved
        assert np.all(mi <= h)
        assert h - cue_mutual_information(rho, 40.0) < EXACT
        # Small separations: I = rho (1 - rho) d^2 / 2 + O(d^4).
        d = 1e-2
        assert cue_mutual_information(rho, d) / (rho * (1 - rho) * d**2 / 2) == pytest.approx(
            1.0, abs=1e-3
        )
    assert cue_mutual_information(0.0, 3.0) == 0.0 == binary_entropy(1.0)


@pytest.mark.parametrize("gated", [True, False])
def test_beliefs_match_naive_loop(gated):
    params, (y, u, _, _) = mi_sweep_sequences(
        separation=2.5, gated=gated, num_timesteps=T, num_sequences=N
    )
    y, u = y[0], u[0]
    ref_min, ref_sel = naive_beliefs(params, np.asarray(y), np.asarray(u))
    np.testing.assert_allclose(logit_mingru_belief(params, y, u), ref_min, atol=1e-10, rtol=0)
    np.testing.assert_allclose(selective_belief(params, y, u), ref_sel, atol=1e-10, rtol=0)


@pytest.mark.parametrize("rho", [0.0, 1.0])
def test_degenerate_switch_probabilities_are_exact(rho):
    """``rho in {0, 1}`` makes every gate hard: softmax(h_t) is the exact filter."""
    B = np.array([[0.6, 0.3, 0.1], [0.1, 0.3, 0.6]])
    params = SwitchingParams(
        np.array([0.3, 0.7]),
        rho,
        CategoricalEmission(B),
        GaussianCue(np.array([0.0, 1.0]), 1.0),
        gated=True,
    )
    y = np.array([0, 2, 2, 1, 0, 2])
    u = np.linspace(-1, 2, 6)
    q = sps.softmax(np.asarray(logit_mingru_belief(params, y, u)), axis=-1)
    np.testing.assert_allclose(q, numpy_filter(params, y, u), atol=EXACT)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: cue_mutual_information(1.5, 1.0), "switch_prob"),
        (lambda: cue_mutual_information(0.5, -1.0), "separation"),
        (lambda: cue_mutual_information(0.5, np.nan), "separation"),
        (lambda: cue_mutual_information(0.5, [1.0, 2.0]), "separation"),
        (lambda: binary_entropy(-0.1), "switch_prob"),
        (lambda: logit_mingru_belief(default_mi_params(), np.zeros(4, int)), "u"),
    ],
)
def test_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()
