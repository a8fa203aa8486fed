"""Bayesian fitting of the globals (NUTS, SVI) with the discrete chain marginalized exactly.

One NUTS fit and one SVI fit of a small categorical problem are shared by the tests of this
module (compilation dominates the cost on 2 CPU cores). Data are simulated here with NumPy,
independently of the package's samplers.
"""

import math

import jax
import numpy as np
import numpyro
import pytest
from numpyro.infer.util import log_density
from scipy import stats
from scipy.optimize import linear_sum_assignment

from switchssm.fit import Prior
from switchssm.fit import bayesian_switching_model
from switchssm.fit import fit_em
from switchssm.fit import fit_nuts
from switchssm.fit import fit_svi
from switchssm.fit import site_values
from switchssm.fit import to_switching_params
from switchssm.fit.bayes import _OrderedNormal  # the prior of ordered means: no public route
from switchssm.inference import batch_log_likelihood
from switchssm.inference import log_likelihood
from switchssm.io import load_inference_data
from switchssm.io import save_inference_data
from switchssm.models import CategoricalEmission
from switchssm.models import GaussianCue
from switchssm.models import GaussianEmission
from switchssm.models import SwitchingParams

PI = np.array([0.35, 0.65])
RHO = 0.04
B = np.array([[0.75, 0.15, 0.10], [0.10, 0.25, 0.65]])
T = 400


def simulate(rng, pi, rho, T, emit, u_means=None, u_scale=1.0):
    """NumPy sampler of the always-emitting model: s_0 ~ pi; z_t ~ Bern(rho); s_t = s_{t-1}
    or a fresh draw from pi; y_t = emit(rng, s_t); optional cue u_t ~ N(m_{z_t}, scale^2)."""
    K = len(pi)
    s_prev = rng.choice(K, p=pi)
    z = (rng.random(T) < rho).astype(int)
    s = np.empty(T, int)
    for t in range(T):
        s_prev = rng.choice(K, p=pi) if z[t] else s_prev
        s[t] = s_prev
    y = np.array([emit(rng, k) for k in s])
    u = None if u_means is None else rng.normal(np.asarray(u_means)[z], u_scale)
    return y, u, s, z


def categorical_data(seed=0, T=T):
    rng = np.random.default_rng(seed)
    return simulate(rng, PI, RHO, T, lambda r, k: r.choice(B.shape[1], p=B[k]))


@pytest.fixture(scope="module")
def data():
    return categorical_data()[0]


def fit_two_states(fit, data, seed, **options):
    """``fit`` (fit_nuts or fit_svi) with two states, key ``seed``, no progress bar."""
    return fit(data, num_states=2, key=jax.random.PRNGKey(seed), progress=False, **options)


@pytest.fixture(scope="module")
def nuts_fit(data):
    options = {"num_warmup": 300, "num_samples": 300, "num_chains": 2}
    return fit_two_states(fit_nuts, data, 3, chain_method="sequential", **options)


@pytest.fixture(scope="module")
def svi_fit(data):
    options = {"num_steps": 1500, "learning_rate": 0.02, "num_posterior_samples": 400}
    return fit_two_states(fit_svi, data, 4, **options)


def match_states(est_emission, true_emission):
    """Permutation ``perm`` with ``est[perm[k]]`` matching true state ``k`` (Hungarian)."""
    cost = ((true_emission[:, None, :] - est_emission[None, :, :]) ** 2).sum(-1)
    _, perm = linear_sum_assignment(cost)
    return perm


# --------------------------------------------------------------------------------------
# The model's log density


def _jit_log_density(**kwargs):
    """``log p(theta, x)`` at constrained values, jitted (one compilation, not op by op)."""
    y = kwargs.pop("y")
    u = kwargs.pop("u", None)
    return jax.jit(lambda v: log_density(bayesian_switching_model, (y, u), kwargs, v)[0])


def _scipy_dirichlet(x, a):
    return stats.dirichlet.logpdf(np.asarray(x, np.float64), np.full(len(x), a))


def test_log_density_categorical_with_cue_is_prior_plus_exact_likelihood():
    """numpyro log_density == scipy prior log pdfs + exact forward-pass log-likelihood."""
    rng = np.random.default_rng(1)
    pr = Prior(switch_beta=(1.5, 9.0), emission_concentration=1.3)
    Bx = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.3, 0.4, 0.3]])
    emit = lambda r, k: r.choice(3, p=Bx[k])
    y, u, _, _ = simulate(rng, np.array([0.2, 0.5, 0.3]), 0.2, 60, emit, [-0.5, 1.0], 0.7)
    v = {
        "initial_probs": np.array([0.25, 0.45, 0.30]),
        "switch_prob": np.array(0.15),
        "emission_probs": np.array([[0.5, 0.3, 0.2], [0.1, 0.3, 0.6], [0.3, 0.3, 0.4]]),
        "cue_means": np.array([-0.4, 0.8]),
        "cue_scale": np.array(0.9),
    }
    got = _jit_log_density(y=y, u=u, num_states=3, prior=pr)(v)
    prior = (
        _scipy_dirichlet(v["initial_probs"], pr.initial_concentration)
        + stats.beta.logpdf(0.15, *pr.switch_beta)
        + sum(_scipy_dirichlet(row, pr.emission_concentration) for row in v["emission_probs"])
        + stats.norm.logpdf(v["cue_means"], 0.0, pr.cue_mean_scale).sum()
        + stats.halfnorm.logpdf(0.9, scale=pr.cue_scale_scale)
    )
    em, cue = CategoricalEmission(v["emission_probs"]), GaussianCue(v["cue_means"], 0.9)
    params = SwitchingParams(v["initial_probs"], 0.15, em, cue)
    np.testing.assert_allclose(got, prior + log_likelihood(params, y, u), rtol=1e-10)


def test_log_density_gaussian_gated_padded_batch():
    """Gaussian emission (K=3 ordered means, D=2 LKJ covariance), gated, two sequences
    padded with NaN: prior + sum of the per-sequence exact (closed-form gated)
    log-likelihoods, so padded steps contribute 0. A list of the same sequences is the same
    padded batch internally."""
    rng = np.random.default_rng(2)
    mu = np.array([[-2.0, 0.5], [0.0, -1.0], [2.0, 1.0]])
    seqs = [simulate(rng, np.array([0.3, 0.3, 0.4]), 0.2, n,
                     lambda r, k: r.normal(mu[k], 0.8))[0] for n in (30, 12)]  # fmt: skip
    r = 0.3  # correlation
    L = np.array([[1.0, 0.0], [r, math.sqrt(1 - r**2)]])
    sd = np.array([0.7, 1.2])
    v = {
        "initial_probs": np.array([0.3, 0.3, 0.4]),
        "switch_prob": np.array(0.2),
        "means_ordered": np.array([-1.5, 0.2, 1.9]),
        "means_rest": np.array([[0.4], [-0.8], [1.1]]),
        "stddevs": sd,
        "corr_cholesky": L,
    }
    pr = Prior()
    prior = (
        _scipy_dirichlet(v["initial_probs"], pr.initial_concentration)
        + stats.beta.logpdf(0.2, *pr.switch_beta)
        # order statistics of 3 iid normals: 3! prod N(x_k)
        + stats.norm.logpdf(v["means_ordered"], pr.mean_loc, pr.mean_scale).sum()
        + math.log(6.0)
        + stats.norm.logpdf(v["means_rest"], pr.mean_loc, pr.mean_scale).sum()
        + stats.halfnorm.logpdf(sd, scale=pr.stddev_scale).sum()
        # LKJ(eta) for D = 2: (r + 1) / 2 ~ Beta(eta, eta), and L[1, 0] = r
        + stats.beta.logpdf((r + 1) / 2, pr.lkj_concentration, pr.lkj_concentration)
        - math.log(2.0)
    )
    means = np.concatenate([v["means_ordered"][:, None], v["means_rest"]], axis=1)
    cov = np.diag(sd) @ L @ L.T @ np.diag(sd)
    params = SwitchingParams(v["initial_probs"], 0.2, GaussianEmission(means, cov), gated=True)
    expected = prior + sum(float(log_likelihood(params, s)) for s in seqs)

    kw = dict(num_states=3, emission="gaussian", gated=True)
    padded = np.full((2, 30, 2), np.nan)
    for n, s in enumerate(seqs):
        padded[n, : len(s)] = s
    lengths = np.array([30, 12])

    def f(values):
        ld, tr = log_density(bayesian_switching_model, (padded,), dict(kw, lengths=lengths), values)
        return ld, tr["means"]["value"], tr["cov"]["value"]

    got, got_means, got_cov = jax.jit(f)(v)
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    np.testing.assert_allclose(got_means, means, rtol=1e-12)
    np.testing.assert_allclose(got_cov, cov, rtol=1e-12)
    # a list of the same sequences: the same log density
    got_list = jax.jit(lambda values: log_density(bayesian_switching_model, (seqs,), kw, values)[0])
    np.testing.assert_allclose(got_list(v), expected, rtol=1e-10)


@pytest.mark.parametrize(
    "kwargs, sites",
    [
        (dict(y=np.array([0, 1, 1, 0]), num_states=1), {"switch_prob", "emission_probs"}),
        (
            dict(y=np.ones((5, 1)), num_states=2, emission="gaussian"),
            {"initial_probs", "switch_prob", "means_ordered", "stddevs", "means", "cov"},
        ),
        (
            dict(y=[np.ones((4, 2)), np.ones((2, 2))], u=[np.ones((4, 3)), np.ones((2, 3))],
                 num_states=3, emission="gaussian", gated=True),
            {"initial_probs", "switch_prob", "means_ordered", "means_rest", "stddevs",
             "corr_cholesky", "means", "cov", "cue_means", "cue_scale"},
        ),
        (
            dict(y=np.zeros((2, 6), int), u=np.zeros((2, 6)), lengths=np.array([6, 3]),
                 num_states=2, num_symbols=4),
            {"initial_probs", "switch_prob", "emission_probs", "cue_means", "cue_scale"},
        ),
    ],
)  # fmt: skip
def test_model_configurations_trace(kwargs, sites):
    """Every configuration builds (abstract evaluation: nothing is compiled) with the
    documented sites and shapes, and a scalar log density."""
    kwargs = dict(kwargs)
    y, u = kwargs.pop("y"), kwargs.pop("u", None)
    model = lambda: bayesian_switching_model(y, u, **kwargs)

    def run():
        tr = numpyro.handlers.trace(numpyro.handlers.seed(model, 0)).get_trace()
        values = {k: v["value"] for k, v in tr.items() if k != "log_likelihood"}
        return log_density(model, (), {}, values)[0], values

    ld, values = jax.eval_shape(run)
    assert ld.shape == ()
    assert set(values) == sites
    K = kwargs["num_states"]
    for name in ("means", "emission_probs", "initial_probs", "means_ordered"):
        if name in values:
            assert values[name].shape[0] == K
    if "cue_means" in values:
        assert values["cue_means"].shape == ((2, 3) if kwargs.get("gated") else (2,))


def test_ordered_normal_is_a_normalized_density():
    """The ordered-means prior (K=2) integrates to 1 over {x1 < x2} (grid quadrature) and its
    samples are increasing with the marginals of the min/max of two iid normals."""
    d = _OrderedNormal(0.5, 2.0, 2)
    g = np.linspace(-12.0, 13.0, 801)
    x1, x2 = np.meshgrid(g, g, indexing="ij")
    dens = np.exp(np.asarray(d.log_prob(np.stack([x1, x2], -1)))) * (x1 < x2)
    h = g[1] - g[0]
    assert abs(dens.sum() * h * h - 1.0) < 1e-2  # grid error O(h): the diagonal cut
    xs = np.asarray(d.sample(jax.random.PRNGKey(0), (20000,)))
    assert np.all(np.diff(xs, axis=-1) >= 0)
    # E[max of two iid N(m, s^2)] = m + s / sqrt(pi); MC standard error about 0.012
    assert abs(xs[:, 1].mean() - (0.5 + 2.0 / math.sqrt(math.pi))) < 0.05


# --------------------------------------------------------------------------------------
# NUTS


def test_nuts_covers_true_values_and_converges(nuts_fit):
    post = nuts_fit.samples
    assert post["emission_probs"].shape == (600, 2, 3)
    perm = match_states(post["emission_probs"].mean(0), B)
    truth = {
        "initial_probs": (post["initial_probs"][:, perm], PI),
        "switch_prob": (post["switch_prob"], RHO),
        "emission_probs": (post["emission_probs"][:, perm], B),
    }
    for name, (draws, true) in truth.items():
        lo, hi = np.quantile(draws, [0.005, 0.995], axis=0)
        inside = (lo <= true) & (true <= hi)
        assert np.all(inside), f"{name}: true {true} outside 99% intervals [{lo}, {hi}]"
    summ = nuts_fit.summary
    assert set(summ.index) >= {"switch_prob", "initial_probs[0]", "emission_probs[1, 2]"}
    assert summ["r_hat"].max() < 1.05, summ
    assert summ["ess_bulk"].min() > 100, summ
    stats_ = nuts_fit.idata.sample_stats
    assert int(stats_["diverging"].sum()) <= 3
    assert nuts_fit.idata.posterior.sizes["chain"] == 2


def test_nuts_relabeling_makes_chains_agree(nuts_fit, data):
    """After pivotal relabeling both chains sit in the same labeling: per-chain emission
    means agree within a few Monte Carlo standard errors (vs. 0.5+ apart when swapped)."""
    e = nuts_fit.idata.posterior["emission_probs"].values  # (chain, draw, K, V)
    m = e.mean(axis=1)
    se = e.std(axis=1).max(axis=0) / np.sqrt(50)  # ESS per chain >= 50 (ess_bulk > 100 total)
    assert np.all(np.abs(m[0] - m[1]) < 5 * se + 1e-3)
    # the point estimate is the posterior mean, with its exact log-likelihood
    p = to_switching_params({k: v.mean(0) for k, v in nuts_fit.samples.items()})
    np.testing.assert_allclose(p.emission.probs, nuts_fit.params.emission.probs, rtol=1e-12)
    ll = float(batch_log_likelihood(p, data)[0])
    np.testing.assert_allclose(nuts_fit.log_likelihood, ll, rtol=1e-12)
    assert nuts_fit.converged and nuts_fit.metadata["diagnostics"]["num_divergent"] <= 3


# --------------------------------------------------------------------------------------
# SVI


def test_svi_loss_decreases_and_median_near_nuts(svi_fit, nuts_fit):
    losses = np.asarray(svi_fit.losses)
    assert losses.shape == (1500,) and np.all(np.isfinite(losses))
    assert losses[-200:].mean() < losses[:100].mean() - 10.0
    nuts = nuts_fit.samples
    med = site_values(svi_fit.params)  # the guide's median, as site values
    # SVI state perm[k] <-> NUTS state k
    perm = match_states(med["emission_probs"], nuts["emission_probs"].mean(0))
    # Tolerance: |mean - median| <= sd holds for any distribution, and the mean-field guide
    # (Gaussian in logit/stick-breaking space) adds a small bias on top (measured: at most
    # 0.3 posterior sd here); one posterior sd plus 0.005 for SVI's step noise.
    for name, sv in (
        ("initial_probs", med["initial_probs"][perm]),
        ("switch_prob", med["switch_prob"]),
        ("emission_probs", med["emission_probs"][perm]),
    ):
        mean, sd = nuts[name].mean(0), nuts[name].std(0)
        assert np.all(np.abs(sv - mean) < sd + 0.005), (name, sv, mean, sd)
    post = svi_fit.idata.posterior
    assert post.sizes["chain"] == 1 and post.sizes["draw"] == 400
    assert to_switching_params(med).num_states == 2
    assert svi_fit.metadata["method"] == "svi" and svi_fit.converged


def test_elbo_convergence_test_on_known_traces():
    """A flat noisy trace has converged, a still-falling one has not (the test compares the
    mean loss over the last tenth with the tenth before it)."""
    from switchssm.fit.svi import elbo_converged

    rng = np.random.default_rng(0)
    flat = 1000.0 + rng.normal(0.0, 2.0, 2000)
    falling = np.linspace(3000.0, 1000.0, 2000) + rng.normal(0.0, 2.0, 2000)
    assert elbo_converged(flat, 400, 1e-3)[0]
    ok, change = elbo_converged(falling, 400, 1e-3)
    # last tenth mean 1100, the tenth before 1300: |1100 - 1300| / max(1100, 400)
    assert not ok and change == pytest.approx(200.0 / 1100.0, rel=0.02)
    assert not elbo_converged(flat[:10], 400, 1e-3)[0]  # too short to tell


def test_svi_and_nuts_started_at_an_em_fit(data):
    """Started at the EM fit, a short SVI run is already at the EM optimum's rho and NUTS's
    chains start where the EM fit is (the first draw of warm-up is near it)."""
    em = fit_em(data, num_states=2, num_restarts=2, num_iters=200, key=0, progress=False)
    svi = fit_svi(data, num_states=2, num_steps=300, init=em.params, key=5, progress=False)
    # the guide starts at the EM fit (scale 0.1 in unconstrained space) and the posterior
    # mode is near the MLE with 400 steps: rho moves by much less than its posterior sd
    assert abs(float(svi.params.switch_prob) - float(em.params.switch_prob)) < 0.02
    assert svi.metadata["init"] == "given"
    bad = em.params.replace(gated=True)
    with pytest.raises(ValueError, match="init"):
        fit_svi(data, num_states=2, num_steps=10, init=bad, key=0, progress=False)


# --------------------------------------------------------------------------------------
# ArviZ I/O


def test_inference_data_round_trips_through_netcdf(nuts_fit, svi_fit, tmp_path):
    for i, idata in enumerate((nuts_fit.idata, svi_fit.idata)):
        path = save_inference_data(idata, tmp_path / f"fit{i}.nc")
        back = load_inference_data(path)
        assert set(back.groups()) == set(idata.groups())
        for group in idata.groups():
            a, b = idata[group], back[group]
            assert set(a.data_vars) == set(b.data_vars)
            for name in a.data_vars:
                np.testing.assert_array_equal(a[name].values, b[name].values)
                assert a[name].dims == b[name].dims


# --------------------------------------------------------------------------------------
# Validation (before any jit)

_Y = np.array([0, 1, 2, 1, 0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_states=0), "num_states"),
        (dict(num_states=2.0), "num_states"),
        (dict(num_states=True), "num_states"),
        (dict(num_states=2, emission="poisson"), "emission"),
        (dict(num_states=2, y=np.zeros((2, 3, 4), int)), "`y`"),
        (dict(num_states=2, y=np.array([0.5, 1.0])), "`y`"),
        (dict(num_states=2, y=np.array([0, -1])), "`y`"),
        (dict(num_states=2, y=np.array(["a", "b"])), "`y`"),
        (dict(num_states=2, y=np.array([], int)), "`y`"),
        (dict(num_states=2, y=[]), "`y`"),
        (dict(num_states=2, num_symbols=2), "num_symbols"),
        (dict(num_states=2, emission="gaussian", y=np.ones(5)), "`y`"),
        (dict(num_states=2, emission="gaussian", y=np.array([[0.0], [np.nan]])), "`y`"),
        (dict(num_states=2, emission="gaussian", y=[np.ones((3, 2)), np.ones((3, 1))]), "y"),
        (dict(num_states=2, cue=True), "`u`"),
        (dict(num_states=2, cue=False, u=np.ones(5)), "`u`"),
        (dict(num_states=2, u=np.ones(4)), "`u`"),
        (dict(num_states=2, y=np.zeros((2, 5), int), lengths=np.array([5, 6])), "lengths"),
        (dict(num_states=2, y=np.zeros((2, 5), int), lengths=np.array([5])), "lengths"),
        (dict(num_states=2, y=[_Y, _Y], lengths=np.array([5, 4])), "lengths"),
        (dict(num_states=2, gated="yes"), "gated"),
        (dict(num_states=2, prior=dict(switch_beta=(1.0, 1.0))), "prior"),
    ],
)
def test_bad_input_raises_naming_the_argument(kwargs, match):
    kwargs = dict(kwargs)
    y = kwargs.pop("y", _Y)
    for fn in (bayesian_switching_model, fit_nuts, fit_svi):
        extra = {} if fn is bayesian_switching_model else {"key": jax.random.PRNGKey(0)}
        with pytest.raises(ValueError, match=match):
            fn(y, **kwargs, **extra)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("switch_beta", (0.0, 1.0), "prior.switch_beta\\[0\\]"),
        ("switch_beta", (1.0,), "prior.switch_beta"),
        ("mean_scale", -1.0, "prior.mean_scale"),
        ("lkj_concentration", np.nan, "prior.lkj_concentration"),
        ("initial_concentration", True, "prior.initial_concentration"),
    ],
)
def test_bad_priors_raise(field, value, match):
    with pytest.raises(ValueError, match=match):
        Prior(**{field: value})


@pytest.mark.parametrize(
    "fn, kwargs, match",
    [
        (fit_nuts, dict(num_chains=0), "num_chains"),
        (fit_nuts, dict(num_samples=0), "num_samples"),
        (fit_nuts, dict(chain_method="threads"), "chain_method"),
        (fit_nuts, dict(target_accept_prob=1.0), "target_accept_prob"),
        (fit_nuts, dict(key=None), "key"),
        (fit_nuts, dict(init="params"), "init"),
        (fit_svi, dict(guide="auto_flow"), "guide"),
        (fit_svi, dict(num_steps=0), "num_steps"),
        (fit_svi, dict(learning_rate=0.0), "learning_rate"),
        (fit_svi, dict(key="seed"), "key"),
    ],
)
def test_bad_fit_options_raise(fn, kwargs, match):
    kwargs = {"key": jax.random.PRNGKey(0), **kwargs}
    with pytest.raises(ValueError, match=match):
        fn(_Y, num_states=2, **kwargs)
