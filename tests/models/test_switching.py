"""The NumPyro switching models: Predictive samples with the right statistics, NumPyro's
own enumeration sums the latents to the exact likelihood, NUTS runs on both the
enumerated and the marginalized forms and they agree."""

import jax
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.contrib.funsor import config_enumerate
from numpyro.contrib.funsor import enum
from numpyro.contrib.funsor import log_density
from numpyro.infer import MCMC
from numpyro.infer import NUTS
from numpyro.infer import Predictive

from switchssm.fit import marginal_switching_model
from switchssm.inference import log_likelihood
from switchssm.models import sample
from switchssm.models import switching_model
from tests.switching_models import EMISSION_PROBS
from tests.switching_models import three_state_params

B = EMISSION_PROBS


@pytest.mark.parametrize("gated", [False, True])
@pytest.mark.parametrize("emission", ["categorical", "gaussian"])
def test_numpyro_enumeration_equals_exact_likelihood(gated, emission):
    """funsor-backed enumeration of switching_model sums out s_0, z, s (and r) exactly."""
    params = three_state_params(gated, emission)
    # T = 4: NumPyro unrolls the first steps and scans the rest; the rest is what broke.
    y, u, _, _ = sample(jax.random.PRNGKey(1), params, 4)
    model = enum(config_enumerate(switching_model), first_available_dim=-1)
    ld, _ = log_density(model, (params,), dict(y=y, u=u), {})
    np.testing.assert_allclose(ld, log_likelihood(params, y, u), rtol=1e-10)


def test_sample_statistics():
    """Predictive/sample draw from the stated generative law (checks that can fail)."""
    params = three_state_params(gated=False)
    T = 20000
    y, u, s, z = sample(jax.random.PRNGKey(2), params, T)
    y, u, s, z = map(np.asarray, (y, u, s, z))
    rho = 0.25
    assert abs(z.mean() - rho) < 4 * np.sqrt(rho * (1 - rho) / T)
    # no switch: state copied exactly
    assert np.all(s[1:][z[1:] == 0] == s[:-1][z[1:] == 0])
    # after a switch: fresh draw from pi (chi-square would be stricter; 4-sigma per state)
    fresh = s[z == 1]
    freq = np.bincount(fresh, minlength=3) / len(fresh)
    pi = np.array([0.2, 0.5, 0.3])
    assert np.all(np.abs(freq - pi) < 4 * np.sqrt(pi * (1 - pi) / len(fresh)))
    # emission frequencies per state
    for k in range(3):
        f = np.bincount(y[s == k], minlength=3) / np.sum(s == k)
        n = np.sum(s == k)
        assert np.all(np.abs(f - B[k]) < 5 * np.sqrt(B[k] * (1 - B[k]) / n))
    # cue means per switch value
    for zz, m in ((0, -0.3), (1, 1.1)):
        assert abs(u[z == zz].mean() - m) < 5 * 0.6 / np.sqrt(np.sum(z == zz))


def test_gated_emission_is_background_when_no_switch():
    params = three_state_params(gated=True, cue=False)
    T = 20000
    y, _, s, z = map(np.asarray, sample(jax.random.PRNGKey(3), params, T)[::1])
    pbar = np.array([0.2, 0.5, 0.3]) @ B
    f = np.bincount(y[z == 0], minlength=3) / np.sum(z == 0)
    assert np.all(np.abs(f - pbar) < 5 * np.sqrt(pbar * (1 - pbar) / np.sum(z == 0)))
    # y is independent of s when no switch: frequencies within state 0 match Pbar too
    sel = (z == 0) & (s == 0)
    f0 = np.bincount(y[sel], minlength=3) / sel.sum()
    assert np.all(np.abs(f0 - pbar) < 5 * np.sqrt(pbar * (1 - pbar) / sel.sum()))


def test_predictive_runs_the_model():
    params = three_state_params(gated=False, emission="gaussian")
    out = Predictive(switching_model, num_samples=4)(jax.random.PRNGKey(4), params, 12)
    assert out["y"].shape == (4, 12, 2) and out["u"].shape == (4, 12)
    assert set(out) >= {"s_0", "z", "s", "y", "u"}


def _with_prior(inner):
    def model(y, u):
        rho = numpyro.sample("rho", dist.Beta(2.0, 2.0))
        p = three_state_params(gated=False).replace(switch_prob=rho)
        inner(p, y, u)

    return model


def test_nuts_enumerated_and_marginalized_agree():
    """NUTS over rho with the discrete chain enumerated by NumPyro vs marginalized by the
    exact forward pass: same posterior (a comparison that fails if either is wrong)."""
    params = three_state_params(gated=False)
    y, u, _, _ = sample(jax.random.PRNGKey(5), params, 30)

    def run(model, key):
        mcmc = MCMC(NUTS(model), num_warmup=200, num_samples=600, progress_bar=False)
        mcmc.run(key, y, u)
        return np.asarray(mcmc.get_samples()["rho"])

    enum_model = config_enumerate(_with_prior(lambda p, y, u: switching_model(p, y=y, u=u)))
    marg_model = _with_prior(lambda p, y, u: marginal_switching_model(p, y, u))
    r_enum = run(enum_model, jax.random.PRNGKey(6))
    r_marg = run(marg_model, jax.random.PRNGKey(7))
    # exact posterior of rho on a grid (prior x exact likelihood) as the third reference
    grid = np.linspace(0.005, 0.995, 199)
    ll = np.array([float(log_likelihood(params.replace(switch_prob=r), y, u)) for r in grid])
    lp = ll + np.log(grid) + np.log1p(-grid)
    w = np.exp(lp - lp.max())
    w /= w.sum()
    mean = np.sum(w * grid)
    sd = np.sqrt(np.sum(w * (grid - mean) ** 2))
    for r in (r_enum, r_marg):
        # Monte Carlo error of a NUTS mean with ~300+ effective draws is < sd / 10
        assert abs(r.mean() - mean) < 0.25 * sd
        assert abs(r.std() - sd) < 0.25 * sd
