"""Exact inference for the categorical switching model against independent references:
brute-force enumeration of every path, dynamax and hmmlearn on the equivalent 2K-state
HMM, closed forms of docs/theory.md section 2, finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from scipy.special import expit
from scipy.special import logit
from scipy.special import logsumexp

from switchssm.inference import filter
from switchssm.inference import log_likelihood
from switchssm.inference import posterior_sample
from switchssm.inference import smooth
from switchssm.models import CategoricalEmission
from switchssm.models import GaussianCue
from switchssm.models import GaussianEmission
from switchssm.models import SwitchingParams
from switchssm.models import sample
from switchssm.verify.brute_force import brute_force
from switchssm.verify.brute_force import cue_loglik
from switchssm.verify.brute_force import emission_loglik

ATOL = 1e-10  # float64 sums of at most a few thousand path weights


def make_params(rng, K=3, gated=False, emission="categorical", cue=None, V=4, D=2, rho=0.3):
    pi = rng.dirichlet(np.ones(K) * 2)
    if emission == "categorical":
        em = CategoricalEmission(rng.dirichlet(np.ones(V), size=K))
    else:
        A = rng.normal(size=(D, D))
        em = GaussianEmission(rng.normal(size=(K, D)) * 1.5, A @ A.T + 0.5 * np.eye(D))
    if cue == "scalar":
        c = GaussianCue(np.array([-0.5, 1.0]), 0.8)
    elif cue == "vector":
        c = GaussianCue(np.array([[0.0, 0.5], [1.0, -0.5]]), np.array([0.7, 1.2]))
    else:
        c = None
    return SwitchingParams(pi, rho, em, c, gated=gated)


CASES = [
    (gated, emission, cue)
    for gated in (False, True)
    for emission in ("categorical", "gaussian")
    for cue in (None, "scalar", "vector")
]


@pytest.mark.parametrize("gated,emission,cue", CASES)
def test_matches_brute_force(gated, emission, cue):
    rng = np.random.default_rng(CASES.index((gated, emission, cue)))  # a fixed seed per case
    params = make_params(rng, gated=gated, emission=emission, cue=cue)
    y, u, _, _ = sample(jax.random.PRNGKey(rng.integers(1000)), params, 4)
    ref = brute_force(params, y, u)
    for mode in ("sequential", "parallel"):
        post = smooth(params, y, u, mode=mode)
        filt = filter(params, y, u, mode=mode)
        for name, value in ref.items():
            np.testing.assert_allclose(post._asdict()[name], value, atol=ATOL, err_msg=name)
            if name in filt._fields:
                np.testing.assert_allclose(filt._asdict()[name], value, atol=ATOL)
    np.testing.assert_allclose(log_likelihood(params, y, u), ref["log_likelihood"], atol=ATOL)


def test_rho_extremes_match_brute_force(rng):
    # rho = 0 (never switch: naive Bayes over the whole sequence) and rho = 1 (iid mixture).
    for rho in (0.0, 1.0):
        params = make_params(rng, rho=rho, cue="scalar")
        y, u, _, _ = sample(jax.random.PRNGKey(3), params, 4)
        ref = brute_force(params, y, u)
        post = smooth(params, y, u, mode="sequential")
        for name, value in ref.items():
            np.testing.assert_allclose(post._asdict()[name], value, atol=ATOL, err_msg=name)


def _cue_only_gate(params, u):
    """docs/theory.md 2.1: g_t = sigmoid(logit rho + log N(u|m1) - log N(u|m0)), via scipy."""
    cl = cue_loglik(params, u)
    return expit(logit(float(params.switch_prob)) + cl[:, 1] - cl[:, 0])


def test_gated_gate_is_cue_only_and_filter_is_mingru_recursion(rng):
    """docs/theory.md 2.1 and 2.2: in the gated model the brute-force switch posterior is the
    cue-only logistic gate, and the brute-force filter is p_t = (1-g)p_{t-1} + g q_t."""
    params = make_params(rng, gated=True, cue="scalar")
    y, u, _, _ = sample(jax.random.PRNGKey(5), params, 5)
    ref = brute_force(params, y, u)
    g = _cue_only_gate(params, u)
    np.testing.assert_allclose(ref["filtered_z"], g, atol=1e-12)
    # y does not enter the gate: other observations, same gate
    y2 = (np.asarray(y) + 1) % params.emission.num_symbols
    np.testing.assert_allclose(brute_force(params, y2, u)["filtered_z"], g, atol=1e-12)
    pi = np.asarray(params.initial_probs)
    ll = emission_loglik(params, y)
    p = pi
    for t in range(len(y)):
        q = pi * np.exp(ll[t])
        p = (1 - g[t]) * p + g[t] * q / q.sum()
        np.testing.assert_allclose(ref["filtered_s"][t], p, atol=1e-12)
    # switches are independent a posteriori: smoothing changes nothing
    np.testing.assert_allclose(ref["smoothed_s"], ref["filtered_s"], atol=1e-12)
    np.testing.assert_allclose(ref["smoothed_z"], g, atol=1e-12)


def test_always_model_filter_and_belief_dependent_gate(rng):
    """docs/theory.md 2.4: p_t ∝ [(1-gc_t) p_{t-1} + gc_t pi] exp(l_t) with gc the cue-only
    posterior, and the exact switch posterior depends on p_{t-1}."""
    params = make_params(rng, gated=False, cue="scalar")
    y, u, _, _ = sample(jax.random.PRNGKey(6), params, 5)
    ref = brute_force(params, y, u)
    gc = _cue_only_gate(params, u)
    pi = np.asarray(params.initial_probs)
    ll = emission_loglik(params, y)
    p = pi
    for t in range(len(y)):
        p = ((1 - gc[t]) * p + gc[t] * pi) * np.exp(ll[t])
        p = p / p.sum()
        np.testing.assert_allclose(ref["filtered_s"][t], p, atol=1e-12)
    # same last observation and cue, different histories: different switch posteriors
    y_a = np.array([0, 0, 0, 1])
    y_b = np.array([1, 1, 1, 1])
    u4 = np.full(4, 0.25)
    za = filter(params, y_a, u4).filtered_z[-1]
    zb = filter(params, y_b, u4).filtered_z[-1]
    assert abs(za - zb) > 1e-3
    gp = params.replace(gated=True)
    np.testing.assert_allclose(filter(gp, y_a, u4).filtered_z, filter(gp, y_b, u4).filtered_z)
    # ... and approaches the cue-only gate as the cue sharpens
    gaps = []
    for sep in (0.5, 2.0, 8.0):
        p_sep = params.replace(cue=GaussianCue(np.array([0.0, sep]), 1.0))
        u_sep = np.array([0.0, sep, 0.0, sep])
        f = filter(p_sep, y_a, u_sep).filtered_z
        gaps.append(np.max(np.abs(np.asarray(f) - _cue_only_gate(p_sep, u_sep))))
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 1e-6


def _hmm_equivalent(params, y, u):
    """The 2K-state HMM over (z_t, s_t), index z * K + s, with scipy log-likelihoods."""
    pi = np.asarray(params.initial_probs)
    rho = float(params.switch_prob)
    K = len(pi)
    w = np.array([1 - rho, rho])
    init = np.concatenate([w[0] * pi, w[1] * pi])
    trans = np.zeros((2 * K, 2 * K))
    for zp in (0, 1):
        for sp in range(K):
            row = zp * K + sp
            trans[row, sp] += w[0]
            trans[row, K:] += w[1] * pi
    ll = emission_loglik(params, y)
    if params.gated:
        l0 = np.repeat(logsumexp(ll + np.log(pi), axis=1)[:, None], K, axis=1)
    else:
        l0 = ll
    lik = np.concatenate([l0, ll], axis=1)
    cl = cue_loglik(params, u)
    if cl is not None:
        lik = lik + np.repeat(cl, K, axis=1)
    return init, trans, lik


@pytest.mark.parametrize("gated", [False, True])
def test_matches_dynamax_and_hmmlearn(gated, rng):
    from dynamax.hidden_markov_model import hmm_smoother
    from hmmlearn.base import BaseHMM

    params = make_params(rng, K=4, gated=gated, emission="gaussian", cue="scalar")
    y, u, _, _ = sample(jax.random.PRNGKey(7), params, 300)
    init, trans, lik = _hmm_equivalent(params, y, u)
    K = 4
    post = smooth(params, y, u)

    ref = hmm_smoother(jnp.asarray(init), jnp.asarray(trans), jnp.asarray(lik))
    np.testing.assert_allclose(post.log_likelihood, ref.marginal_loglik, rtol=1e-10)
    fp = np.asarray(ref.filtered_probs)
    sp = np.asarray(ref.smoothed_probs)
    np.testing.assert_allclose(post.filtered_s, fp[:, :K] + fp[:, K:], atol=1e-9)
    np.testing.assert_allclose(post.filtered_z, fp[:, K:].sum(1), atol=1e-9)
    np.testing.assert_allclose(post.smoothed_s, sp[:, :K] + sp[:, K:], atol=1e-9)
    np.testing.assert_allclose(post.smoothed_z, sp[:, K:].sum(1), atol=1e-9)

    class FixedLikelihoodHMM(BaseHMM):
        def _compute_log_likelihood(self, X):
            return lik

        def _init(self, X, lengths=None):
            pass

        def _check(self):
            pass

    hl = FixedLikelihoodHMM(n_components=2 * K, implementation="scaling")
    hl.startprob_, hl.transmat_ = init, trans
    X = np.zeros((len(lik), 1))
    np.testing.assert_allclose(post.log_likelihood, hl.score(X), rtol=1e-10)
    gamma = hl.predict_proba(X)
    np.testing.assert_allclose(post.smoothed_s, gamma[:, :K] + gamma[:, K:], atol=1e-9)


def test_posterior_samples_match_exact_path_posterior():
    """Forward-filtering backward-sampling: path frequencies vs the brute-force posterior
    over all (s_1:T, z_1:T) paths, chi-square goodness of fit (fails for a wrong sampler)."""
    rng = np.random.default_rng(11)
    params = make_params(rng, K=2, gated=False, cue="scalar", rho=0.4)
    y, u, _, _ = sample(jax.random.PRNGKey(8), params, 4)
    from switchssm.verify.brute_force import path_log_joint

    S, Z, logp = path_log_joint(params, y, u)
    T, K = 4, 2
    code = (S[:, 1:] @ (K ** np.arange(T))) * 2**T + Z @ (2 ** np.arange(T))
    num_codes = K**T * 2**T
    exact = np.bincount(code, weights=np.exp(logp - logsumexp(logp)), minlength=num_codes)
    n = 20000
    s, z = posterior_sample(jax.random.PRNGKey(9), params, y, u, num_samples=n)
    s, z = np.asarray(s), np.asarray(z)
    got = np.bincount(
        (s @ (K ** np.arange(T))) * 2**T + z @ (2 ** np.arange(T)), minlength=num_codes
    )
    assert got[exact == 0].sum() == 0  # never an impossible path
    keep = exact * n >= 5
    obs = np.append(got[keep], got[~keep].sum())
    exp = np.append(exact[keep] * n, exact[~keep].sum() * n)
    _, pval = stats.chisquare(obs, exp)
    assert pval > 1e-4


def test_posterior_sample_marginals_match_smoother():
    rng = np.random.default_rng(12)
    for gated in (False, True):
        params = make_params(rng, K=3, gated=gated, cue="vector")
        y, u, _, _ = sample(jax.random.PRNGKey(10), params, 40)
        post = smooth(params, y, u)
        n = 2000
        s, z = posterior_sample(jax.random.PRNGKey(11), params, y, u, num_samples=n)
        emp_s = np.mean(np.asarray(s)[:, :, None] == np.arange(3), axis=0)
        ps = np.asarray(post.smoothed_s)
        se = np.sqrt(ps * (1 - ps) / n) + 1e-3 / n
        assert np.max(np.abs(emp_s - ps) / se) < 5.0
        pz = np.asarray(post.smoothed_z)
        se_z = np.sqrt(pz * (1 - pz) / n) + 1e-3 / n
        assert np.max(np.abs(np.asarray(z).mean(0) - pz) / se_z) < 5.0


def test_gradient_matches_finite_differences_of_brute_force(rng):
    params = make_params(rng, K=2, gated=False, cue="scalar", V=3)
    y, u, _, _ = sample(jax.random.PRNGKey(12), params, 4)

    def ll_of(rho, b00, m1):
        B = np.array(params.emission.probs)
        B[0, 0], B[0, 1] = b00, B[0, 1] + (B[0, 0] - b00)
        p = params.replace(
            switch_prob=rho,
            emission=CategoricalEmission(B),
            cue=GaussianCue(np.array([-0.5, m1]), 0.8),
        )
        return p

    x0 = (0.3, float(params.emission.probs[0, 0]), 1.0)
    g = jax.grad(
        lambda x: log_likelihood(
            SwitchingParams(
                params.initial_probs,
                x[0],
                CategoricalEmission(
                    params.emission.probs.at[0, 0]
                    .set(x[1])
                    .at[0, 1]
                    .add(params.emission.probs[0, 0] - x[1])
                ),
                GaussianCue(jnp.array([-0.5, x[2]]), 0.8),
            ),
            y,
            u,
        )
    )(jnp.array(x0))
    h = 1e-5
    for i in range(3):
        xp, xm = list(x0), list(x0)
        xp[i] += h
        xm[i] -= h
        fd = (
            brute_force(ll_of(*xp), y, u)["log_likelihood"]
            - brute_force(ll_of(*xm), y, u)["log_likelihood"]
        ) / (2 * h)
        np.testing.assert_allclose(g[i], fd, rtol=1e-6, atol=1e-8)


def test_vmap_over_sequences(rng):
    params = make_params(rng, K=3, cue="scalar")
    ys, us = [], []
    for i in range(3):
        y, u, _, _ = sample(jax.random.PRNGKey(20 + i), params, 25)
        ys.append(y)
        us.append(u)
    batched = jax.vmap(lambda y, u: smooth(params, y, u))(jnp.stack(ys), jnp.stack(us))
    for i in range(3):
        one = smooth(params, ys[i], us[i])
        np.testing.assert_allclose(batched.smoothed_s[i], one.smoothed_s, atol=1e-12)
        np.testing.assert_allclose(batched.log_likelihood[i], one.log_likelihood, atol=1e-10)


def _random_observations(params, T, seed):
    """Observations drawn directly with NumPy (cheap at T = 10^6; any data will do here)."""
    r = np.random.default_rng(seed)
    em = params.emission
    if isinstance(em, CategoricalEmission):
        y = r.integers(0, em.num_symbols, size=T)
    else:
        y = r.normal(size=(T, em.dim)) * 2.0
    u = None if params.cue is None else r.normal(size=T) + r.integers(0, 2, size=T)
    return y, u


def test_million_steps_stay_finite_and_match_dynamax_filter():
    """T = 10^6: no underflow or overflow; log-likelihood agrees with dynamax's filter."""
    from dynamax.hidden_markov_model import hmm_filter

    rng = np.random.default_rng(13)
    params = make_params(rng, K=2, gated=False, emission="categorical", V=3)
    T = 1_000_000
    y, _ = _random_observations(params, T, 14)
    post = filter(params, y, mode="sequential")
    assert np.isfinite(post.log_likelihood)
    assert np.all(np.isfinite(post.filtered_s))
    np.testing.assert_allclose(np.sum(post.filtered_s, axis=1), 1.0, atol=1e-12)
    init, trans, lik = _hmm_equivalent(params, y, None)
    ref = hmm_filter(jnp.asarray(init), jnp.asarray(trans), jnp.asarray(lik))
    np.testing.assert_allclose(post.log_likelihood, ref.marginal_loglik, rtol=1e-9)


def test_million_steps_float32():
    rng = np.random.default_rng(15)
    params = make_params(rng, K=3, gated=False, emission="gaussian", cue="scalar")
    y, u = _random_observations(params, 1_000_000, 16)
    ll64 = log_likelihood(params, y, u)
    with jax.enable_x64(False):
        p32 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), params)
        post = smooth(p32, y.astype(np.float32), u.astype(np.float32), mode="sequential")
        assert post.smoothed_s.dtype == jnp.float32
        assert np.isfinite(post.log_likelihood)
        assert np.all(np.isfinite(post.smoothed_s)) and np.all(np.isfinite(post.filtered_z))
    np.testing.assert_allclose(np.sum(post.smoothed_s, axis=1), 1.0, atol=1e-4)
    # float32 per-step normalizers are summed pairwise by jnp.sum: relative error ~1e-6
    # (a running float32 sum would drift; docs/numerics.md)
    np.testing.assert_allclose(post.log_likelihood, ll64, rtol=1e-5)


# ---------------------------------------------------------------------------------------
# Bad input


def _good(rng):
    return make_params(rng, K=2, cue="scalar", V=3)


@pytest.mark.parametrize(
    "y,u,match",
    [
        (np.array([0, 1, 3]), np.zeros(3), "symbols in \\[0, 2\\]"),
        (np.array([0, -1, 1]), np.zeros(3), "symbols in"),
        (np.array([[0, 1]]), np.zeros(1), "dimension"),
        (np.array([], dtype=int), np.zeros(0), "empty"),
        (np.array([0, 1, 2]), np.array([0.0, np.nan, 1.0]), "NaN"),
        (np.array([0, 1, 2]), np.zeros(4), "`u` must have shape"),
        (np.array([0, 1, 2]), None, "cue `u`"),
        (np.array([0.5, 1, 2]), np.zeros(3), "integer"),
    ],
)
def test_bad_observations_raise(y, u, match, rng):
    params = _good(rng)
    for fn in (filter, smooth):
        with pytest.raises(ValueError, match=match):
            fn(params, y, u)


def test_bad_parameters_raise():
    B = np.array([[0.9, 0.1], [0.2, 0.8]])
    with pytest.raises(ValueError, match="initial_probs"):
        SwitchingParams(np.array([0.5, 0.6]), 0.1, CategoricalEmission(B))
    with pytest.raises(ValueError, match="switch_prob"):
        SwitchingParams(np.array([0.5, 0.5]), 1.5, CategoricalEmission(B))
    with pytest.raises(ValueError, match="switch_prob"):
        SwitchingParams(np.array([0.5, 0.5]), np.nan, CategoricalEmission(B))
    with pytest.raises(ValueError, match="emission.probs"):
        CategoricalEmission(np.array([[0.9, 0.2], [0.2, 0.8]]))
    with pytest.raises(ValueError, match="emission.cov"):
        GaussianEmission(np.zeros((2, 2)), np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="emission.cov"):
        GaussianEmission(np.zeros((2, 2)), np.array([[1.0, 1.0], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="cue.scale"):
        GaussianCue(np.array([0.0, 1.0]), -1.0)
    with pytest.raises(ValueError, match="3 states"):
        SwitchingParams(np.array([0.5, 0.5]), 0.1, CategoricalEmission(np.full((3, 2), 0.5)))
    params = SwitchingParams(np.array([0.5, 0.5]), 0.1, CategoricalEmission(B))
    with pytest.raises(ValueError, match="mode"):
        filter(params, np.array([0, 1]), mode="fast")
    with pytest.raises(ValueError, match="`u` was given"):
        filter(params, np.array([0, 1]), np.zeros(2))
    with pytest.raises(ValueError, match="num_samples"):
        posterior_sample(jax.random.PRNGKey(0), params, np.array([0, 1]), num_samples=0)
    ge = GaussianEmission(np.zeros((2, 3)), np.eye(3))
    gp = SwitchingParams(np.array([0.5, 0.5]), 0.1, ge)
    with pytest.raises(ValueError, match=r"\(T, 3\)"):
        filter(gp, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="infinite"):
        filter(gp, np.full((4, 3), np.inf))


def test_probability_path_falls_back_to_log_space_on_underflow():
    """rho = 0 with outliers: the filtered belief underflows in probability space (the state
    that becomes right has relative probability exp(-1800)); the sequential path must detect
    it and give the brute-force answer, gradients included."""
    means = np.array([[0.0], [60.0]])
    params = SwitchingParams(np.array([0.5, 0.5]), 0.0, GaussianEmission(means, np.eye(1)))
    y = np.array([[0.0], [60.0], [0.0]])
    ref = brute_force(params, y)
    for mode in ("sequential", "log"):
        post = smooth(params, y, mode=mode)
        for name, value in ref.items():
            np.testing.assert_allclose(post._asdict()[name], value, atol=ATOL, err_msg=name)

    def ll(m):
        return log_likelihood(params.replace(emission=GaussianEmission(m, np.eye(1))), y)

    g = np.asarray(jax.grad(ll)(jnp.asarray(means)))
    h = 1e-6
    for k in range(2):
        d = np.zeros_like(means)
        d[k, 0] = h
        fd = (
            brute_force(params.replace(emission=GaussianEmission(means + d, np.eye(1))), y)[
                "log_likelihood"
            ]
            - brute_force(params.replace(emission=GaussianEmission(means - d, np.eye(1))), y)[
                "log_likelihood"
            ]
        ) / (2 * h)
        np.testing.assert_allclose(g[k, 0], fd, rtol=1e-6, atol=1e-6)


def test_probability_and_log_space_paths_agree(rng):
    params = make_params(rng, K=5, gated=False, emission="gaussian", cue="scalar")
    y, u, _, _ = sample(jax.random.PRNGKey(30), params, 500)
    a = smooth(params, y, u, mode="sequential")
    b = smooth(params, y, u, mode="log")
    for name in a._fields:
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), atol=1e-10, rtol=1e-10)
