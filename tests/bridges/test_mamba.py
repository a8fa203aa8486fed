"""Mamba's S6 as a switching filter: exact identities and the measured gap.

Independent sides: the closed form of the logistic function (keep gate), the existing
logit-space minGRU bridge, the exact filter of the switching model (forward recursion,
``switchssm.inference.filter``), and the existing selective cell. Data are drawn with the
NumPy sampler of tests/switching_models.py, written from the model's definition
(docs/theory.md section 2).
"""

import numpy as np
import pytest

from switchssm.bridges import mamba as M
from switchssm.bridges import mingru_from_model
from switchssm.bridges import mingru_posterior
from switchssm.bridges import model_inputs
from switchssm.bridges import selective_from_model
from switchssm.bridges import selective_posterior
from switchssm.inference import filter as exact_filter
from switchssm.models import CategoricalEmission
from switchssm.models import GaussianCue
from switchssm.models import GaussianEmission
from switchssm.models import SwitchingParams
from tests.switching_models import np_sample as sample

EXACT = 1e-9  # float64 identities (as in the cell-to-model table)


def model(rng, separation, gated, K=3, V=4, rho=0.2, tau=0.8):
    cue = GaussianCue(np.array([-0.5, 0.5]) * separation * tau, tau)
    B = rng.dirichlet(np.full(V, 2.0), size=K)
    return SwitchingParams(rng.dirichlet(np.full(K, 3.0)), rho, CategoricalEmission(B), cue, gated)


def mean_kl(p, q):
    p, q = np.asarray(p), np.asarray(q)
    with np.errstate(divide="ignore"):  # q = 0 where p > 0 gives an infinite KL, kept
        return float(np.mean(np.sum(np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0), -1)))


def test_keep_gate_is_the_switch_posterior_complement():
    k = np.linspace(-30, 30, 121)
    np.testing.assert_allclose(
        M.keep_gate(np.logaddexp(0.0, k)), 1.0 / (1.0 + np.exp(k)), rtol=1e-13
    )


@pytest.mark.parametrize("mode", ["sequential", "parallel"])
def test_zoh_s6_equals_the_logit_mingru_at_every_gate(mode):
    rng = np.random.default_rng(0)
    p = model(rng, separation=1.5, gated=True)  # soft gates
    y, u = sample(rng, p, 60)
    x = model_inputs(p, y, u)
    got = M.s6_posterior(M.s6_from_model(p), x, mode=mode)
    ref = mingru_posterior(mingru_from_model(p, space="logit"), x, mode="sequential")
    np.testing.assert_allclose(got, ref, rtol=0, atol=EXACT)
    # and the gates are soft indeed: the logit minGRU (hence S6) is not the exact filter
    assert mean_kl(exact_filter(p, y, u).filtered_s, got) > 1e-3


def test_zoh_s6_is_the_exact_filter_of_the_gated_model_with_hard_gates():
    rng = np.random.default_rng(1)
    p = model(rng, separation=60.0, gated=True)
    y, u = sample(rng, p, 80)
    got = M.s6_posterior(M.s6_from_model(p), model_inputs(p, y, u))
    np.testing.assert_allclose(got, exact_filter(p, y, u).filtered_s, rtol=0, atol=EXACT)


def test_always_emitting_model_exact_for_the_selective_cell_not_for_s6():
    rng = np.random.default_rng(2)
    p = model(rng, separation=60.0, gated=False)
    y, u = sample(rng, p, 80)
    x = model_inputs(p, y, u)
    exact = exact_filter(p, y, u).filtered_s
    np.testing.assert_allclose(selective_posterior(selective_from_model(p), x), exact, atol=EXACT)
    gaps = {
        d: mean_kl(exact, M.s6_posterior(M.s6_from_model(p), x, discretization=d))
        for d in ("zoh", "euler")
    }
    # S6 drops l_t at every step without a switch (80% of steps at rho = 0.2): a gap of
    # order the per-step evidence, far from rounding. (Euler's drive Delta_t x_t with
    # Delta ~ 1800 at a switch is wildly overconfident: its KL may be infinite.)
    assert gaps["zoh"] > 0.05 and gaps["euler"] > 0.05


def test_gaussian_emission_is_refused():
    p = SwitchingParams(np.ones(2) / 2, 0.2, GaussianEmission(np.zeros((2, 1)), np.eye(1)))
    with pytest.raises(ValueError, match="categorical"):
        M.s6_from_model(p)
    with pytest.raises(ValueError, match="S6Bridge"):
        M.s6_posterior(None, np.zeros((2, 1)))
