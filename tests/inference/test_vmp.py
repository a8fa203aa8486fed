"""VMP for the categorical switching model (docs/theory.md section 2, item 5) against independent
computations: the ELBO written out by enumerating every path of Q (autodiff and scipy
optimizers on it), the exact filter/smoother, and minGRU's gate and recursion from scipy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize
from scipy.special import expit
from scipy.special import logit
from scipy.special import logsumexp
from scipy.special import softmax

from switchssm.inference import filter
from switchssm.inference import smooth
from switchssm.inference.vmp import vmp_filter
from switchssm.inference.vmp import vmp_smooth
from switchssm.models import CategoricalEmission
from switchssm.models import GaussianCue
from switchssm.models import GaussianEmission
from switchssm.models import SwitchingParams
from switchssm.verify.brute_force import cue_loglik
from switchssm.verify.brute_force import emission_loglik
from switchssm.verify.brute_force import path_log_joint
from tests.switching_models import np_sample


def make_params(rng, K=2, gated=False, emission="categorical", cue="scalar", sep=1.5, rho=0.3):
    pi = rng.dirichlet(np.ones(K) * 3)
    if emission == "categorical":
        em = CategoricalEmission(rng.dirichlet(np.ones(3), size=K))
    else:
        em = GaussianEmission(rng.normal(size=(K, 2)), np.array([[1.0, 0.3], [0.3, 0.8]]))
    if cue == "scalar":
        c = GaussianCue(np.array([0.0, sep]), 1.0)
    elif cue == "vector":
        c = GaussianCue(np.array([[0.0, 0.5], [1.0, -0.5]]), np.array([0.7, 1.2]))
    else:
        c = None
    return SwitchingParams(pi, rho, em, c, gated=gated)


# --------------------------------------------------------------------------------------
# The ELBO of Q(s_0:T, z_1:T) = r_0(s_0) prod_t Q(z_t) Q(s_t | s_{t-1}, z_t) written out by
# enumerating every path: sum_paths Q(path) [log P(x, path) - log Q(path)], with log P from
# the brute-force enumerator. Natural parameters: lam (T,) log-odds of Q(z_t = 1), eta
# (T, K) logits of Q(s_t | z_t = 1), eta0 (K,) logits of Q(s_0).


def _explicit_elbo(lam, eta, eta0, logp, S, Z, valid):
    log_r = jax.nn.log_softmax(eta, axis=-1)
    logq = jax.nn.log_softmax(eta0)[S[:, 0]]
    for t in range(Z.shape[1]):
        on = Z[:, t] == 1
        logq = logq + jnp.where(on, jax.nn.log_sigmoid(lam[t]), jax.nn.log_sigmoid(-lam[t]))
        logq = logq + jnp.where(on, log_r[t, S[:, t + 1]], 0.0)  # copies have Q = 1
    q = jnp.where(valid, jnp.exp(logq), 0.0)
    return jnp.sum(jnp.where(valid, q * (logp - logq), 0.0)), q


_elbo_and_grad = jax.jit(jax.value_and_grad(lambda *a: _explicit_elbo(*a)[0], argnums=(0, 1, 2)))
_elbo_and_q = jax.jit(_explicit_elbo)


class Enumeration:
    """Every path of the model for a short sequence, and the explicit ELBO on it."""

    def __init__(self, params, y, u):
        S, Z, logp = path_log_joint(params, y, u)
        # paths where some z_t = 0 but s_t != s_{t-1} have P = Q = 0: leave them out
        valid = np.all((Z == 1) | (S[:, 1:] == S[:, :-1]), axis=1)
        self.S, self.Z, self.logp, self.valid = S, Z, logp, valid
        self.K = np.asarray(params.initial_probs).shape[0]

    def elbo(self, lam, eta, eta0):
        v, g = _elbo_and_grad(lam, eta, eta0, self.logp, self.S, self.Z, self.valid)
        return float(v), [np.asarray(x) for x in g]

    def marginals(self, lam, eta, eta0):
        """Q(s_t) (T, K) and Q(z_t = 1) (T,) summed over the enumerated paths."""
        _, q = _elbo_and_q(lam, eta, eta0, self.logp, self.S, self.Z, self.valid)
        q = np.asarray(q)
        T = self.Z.shape[1]
        qs = np.stack([np.bincount(self.S[:, t + 1], q, self.K) for t in range(T)])
        return qs, (q[:, None] * self.Z).sum(0)


def _natural(post):
    z = np.asarray(post[2])  # filtered_z / smoothed_z
    return logit(z), np.log(np.asarray(post.candidate_s))


GRAD_TOL = 1e-8  # gradients of an O(1)-valued float64 ELBO at an exact coordinate optimum

STRUCTURES = [(False, "scalar"), (False, None), (True, "vector")]


@pytest.mark.parametrize("gated,cue", STRUCTURES)
def test_filter_updates_zero_the_elbo_gradient(gated, cue):
    """Section 3: (lambda_t, eta_t) from the filter maximize the ELBO of x_{1:t} in that factor
    (autodiff gradient 0), and BFGS on that factor from zero lands on the same point."""
    rng = np.random.default_rng(11 + gated)
    params = make_params(rng, gated=gated, cue=cue)
    T = 3
    y, u = np_sample(rng, params, T)
    post = vmp_filter(params, y, u)
    lam, eta = _natural(post)
    eta0 = np.log(np.asarray(params.initial_probs))  # the filter keeps Q(s_0) = pi
    for t in range(1, T + 1):
        en = Enumeration(params, y[:t], None if u is None else u[:t])
        _, (g_lam, g_eta, _) = en.elbo(lam[:t], eta[:t], eta0)
        assert abs(g_lam[t - 1]) < GRAD_TOL and np.max(np.abs(g_eta[t - 1])) < GRAD_TOL
    # the scalar ELBO and Q's marginals, from the enumeration of the whole sequence
    value, _ = en.elbo(lam, eta, eta0)
    np.testing.assert_allclose(post.elbo, value, rtol=1e-12)
    qs, qz = en.marginals(lam, eta, eta0)
    np.testing.assert_allclose(post.filtered_s, qs, atol=1e-12)
    np.testing.assert_allclose(post.filtered_z, qz, atol=1e-12)

    def neg(x):
        lam2, eta2 = lam.copy(), eta.copy()
        lam2[-1], eta2[-1] = x[0], x[1:]
        v, (gl, ge, _) = en.elbo(lam2, eta2, eta0)
        return -v, -np.concatenate([[gl[-1]], ge[-1]])

    res = optimize.minimize(
        neg, np.zeros(1 + en.K), jac=True, method="BFGS", options=dict(gtol=1e-11)
    )
    np.testing.assert_allclose(expit(res.x[0]), post.filtered_z[-1], atol=1e-7)
    np.testing.assert_allclose(softmax(res.x[1:]), post.candidate_s[-1], atol=1e-7)
    np.testing.assert_allclose(-res.fun, post.elbo, atol=1e-10)


def test_smoother_fixed_point_is_stationary():
    """Section 4: at convergence every factor (every r_t and Q(z_t); r_0 found by BFGS) has
    zero ELBO gradient; BFGS on one factor from zero lands on the smoother's factor."""
    rng = np.random.default_rng(5)
    params = make_params(rng, cue="scalar")
    T = 3
    y, u = np_sample(rng, params, T)
    post = vmp_smooth(params, y, u, num_iters=300)
    lam, eta = _natural(post)
    en = Enumeration(params, y, u)

    # Q(s_0) is not returned: it is the coordinate optimum softmax(log pi + v_0), found here
    # by BFGS over eta0 with everything else held
    def neg0(x):
        v, (_, _, g0) = en.elbo(lam, eta, x)
        return -v, -g0

    eta0 = optimize.minimize(
        neg0, np.zeros(en.K), jac=True, method="BFGS", options=dict(gtol=1e-12)
    ).x
    value, (g_lam, g_eta, _) = en.elbo(lam, eta, eta0)
    np.testing.assert_allclose(post.elbo, value, rtol=1e-12)
    assert np.max(np.abs(g_lam)) < GRAD_TOL
    assert np.max(np.abs(g_eta)) < GRAD_TOL
    qs, qz = en.marginals(lam, eta, eta0)
    np.testing.assert_allclose(post.smoothed_s, qs, atol=1e-10)
    np.testing.assert_allclose(post.smoothed_z, qz, atol=1e-12)
    for t in (0, T - 1):

        def neg(x, t=t):
            lam2, eta2 = lam.copy(), eta.copy()
            lam2[t], eta2[t] = x[0], x[1:]
            v, (gl, ge, _) = en.elbo(lam2, eta2, eta0)
            return -v, -np.concatenate([[gl[t]], ge[t]])

        res = optimize.minimize(
            neg, np.zeros(1 + en.K), jac=True, method="BFGS", options=dict(gtol=1e-11)
        )
        np.testing.assert_allclose(expit(res.x[0]), post.smoothed_z[t], atol=1e-7)
        np.testing.assert_allclose(softmax(res.x[1:]), post.candidate_s[t], atol=1e-7)
    hist = np.asarray(post.elbo_history)
    assert np.all(np.diff(hist) >= -1e-12) and hist[-1] > hist[0]  # -1e-12: float64 rounding


CASES = [
    (False, "categorical", None),
    (False, "gaussian", "scalar"),
    (True, "categorical", "vector"),
    (True, "gaussian", None),
]


@pytest.mark.parametrize("gated,emission,cue", CASES)
def test_elbo_bounds_and_gated_exactness(gated, emission, cue):
    """F <= log P(x) for the filter and the smoother (whose history never decreases); in the
    gated model the s-term vanishes and VMP is the exact filter and smoother."""
    rng = np.random.default_rng(100 + CASES.index((gated, emission, cue)))
    params = make_params(rng, K=3, gated=gated, emission=emission, cue=cue)
    y, u = np_sample(rng, params, 40)
    exact = smooth(params, y, u)
    vf = vmp_filter(params, y, u)
    vs = vmp_smooth(params, y, u, num_iters=15)
    ll = float(exact.log_likelihood)
    hist = np.asarray(vs.elbo_history)
    np.testing.assert_allclose(hist[0], vf.elbo, rtol=1e-12)
    assert np.all(np.diff(hist) >= -1e-10)  # rounding of a sum of 40 O(1) terms
    if gated:
        np.testing.assert_allclose(vf.gate_s_term, 0.0, atol=1e-12)
        np.testing.assert_allclose(vs.gate_s_term, 0.0, atol=1e-12)
        for value in (vf.elbo, vs.elbo):
            np.testing.assert_allclose(value, ll, rtol=1e-12)
        np.testing.assert_allclose(vf.filtered_s, exact.filtered_s, atol=1e-12)
        np.testing.assert_allclose(vf.filtered_z, exact.filtered_z, atol=1e-12)
        np.testing.assert_allclose(vs.smoothed_s, exact.smoothed_s, atol=1e-12)
        np.testing.assert_allclose(vs.smoothed_z, exact.smoothed_z, atol=1e-12)
    else:
        assert vf.elbo < ll - 1e-3 and vs.elbo < ll - 1e-6
        assert hist[-1] > hist[0] + 1e-3
        assert np.max(np.abs(np.asarray(vf.gate_s_term))) > 1e-2


def _mingru_from_scipy(params, y, u):
    """Cue-only gate and positive-state minGRU recursion, from scipy densities."""
    pi = np.asarray(params.initial_probs)
    cl = cue_loglik(params, u)
    g = expit(logit(float(params.switch_prob)) + cl[:, 1] - cl[:, 0])
    q = softmax(np.log(pi) + emission_loglik(params, y), axis=1)
    p, ps = pi, []
    for t in range(len(g)):
        p = (1 - g[t]) * p + g[t] * q[t]
        ps.append(p)
    return g, q, np.array(ps)


@pytest.mark.parametrize("emission,cue", [("gaussian", "scalar"), ("categorical", "vector")])
def test_drop_s_term_is_mingru(emission, cue):
    """drop_s_term=True: g_t = sigmoid(logit rho + log N(u|m1) - log N(u|m0)), candidate
    q_t = softmax(log pi + l_t), p_t = (1 - g_t) p_{t-1} + g_t q_t. Without dropping it,
    the log-odds is that plus gate_s_term = log Pbar(y_t) - sum_s p_{t-1}(s) log P(y_t|s)."""
    rng = np.random.default_rng(3)
    params = make_params(rng, K=3, emission=emission, cue=cue)
    y, u = np_sample(rng, params, 40)
    g, q, p = _mingru_from_scipy(params, y, u)
    post = vmp_filter(params, y, u, drop_s_term=True)
    np.testing.assert_allclose(post.filtered_z, g, atol=1e-12)
    np.testing.assert_allclose(post.candidate_s, q, atol=1e-12)
    np.testing.assert_allclose(post.filtered_s, p, atol=1e-12)

    full = vmp_filter(params, y, u)
    pi = np.asarray(params.initial_probs)
    ll = emission_loglik(params, y)
    prev = np.vstack([pi, np.asarray(full.filtered_s)[:-1]])
    s_term = logsumexp(np.log(pi) + ll, axis=1) - np.sum(prev * ll, axis=1)
    np.testing.assert_allclose(full.gate_s_term, s_term, atol=1e-10)
    cl = cue_loglik(params, u)
    lam = logit(float(params.switch_prob)) + cl[:, 1] - cl[:, 0] + s_term
    np.testing.assert_allclose(full.filtered_z, expit(lam), atol=1e-12)
    assert np.max(np.abs(np.asarray(full.filtered_z) - g)) > 1e-2  # the s-term matters here


SEPARATIONS = (0.5, 1.0, 2.0, 4.0, 8.0)


def test_cue_separation_removes_s_term_and_smoother_gap():
    """Always-emitting model, cue separation d = |m1 - m0| / tau growing:
    - the gate with and without the s-term converge (minGRU's gate becomes VMP's);
    - the filter's gate approaches the exact P(z_t = 1 | x_{1:t});
    - the smoother approaches the exact smoother (hard gates: r at a segment start
      collects the whole segment's evidence), KL -> 0;
    - the filter's KL from the exact filter does not vanish: its copy branch never
      updates on y_t (docs/theory.md fact 4: the always model's input is not gated)."""
    rng = np.random.default_rng(0)
    base = make_params(rng, K=3, cue="scalar")
    rows = []
    for d in SEPARATIONS:
        params = base.replace(cue=GaussianCue(np.array([0.0, d]), 1.0))
        y, u = np_sample(np.random.default_rng(1), params, 150)
        exact = smooth(params, y, u)
        vf = vmp_filter(params, y, u)
        vd = vmp_filter(params, y, u, drop_s_term=True)
        vs = vmp_smooth(params, y, u, num_iters=20)

        def kl(a, b):
            a, b = np.asarray(a), np.asarray(b)
            return float(np.mean(np.sum(a * (np.log(a) - np.log(b)), axis=1)))

        rows.append(
            dict(
                d=d,
                gate_drop=float(np.mean(np.abs(np.asarray(vf.filtered_z - vd.filtered_z)))),
                gate_exact=float(np.mean(np.abs(np.asarray(vf.filtered_z - exact.filtered_z)))),
                kl_filter=kl(exact.filtered_s, vf.filtered_s),
                kl_smooth=kl(exact.smoothed_s, vs.smoothed_s),
                elbo_gap=float(exact.log_likelihood - vs.elbo),
            )
        )
    for r in rows:
        print(
            "d={d:4.1f} |g-g_drop|={gate_drop:.2e} |g-g_exact|={gate_exact:.2e} "
            "KL_filter={kl_filter:.3e} KL_smooth={kl_smooth:.3e} "
            "logP-F_smooth={elbo_gap:.3e}".format(**r)
        )
    col = lambda k: np.array([r[k] for r in rows])
    assert np.all(np.diff(col("gate_drop")) < 0) and col("gate_drop")[-1] < 1e-6
    assert np.all(np.diff(col("gate_exact")) < 0) and col("gate_exact")[-1] < 1e-6
    assert np.all(np.diff(col("kl_smooth")[1:]) < 0) and col("kl_smooth")[-1] < 1e-6
    assert col("elbo_gap")[-1] < 1e-3
    assert col("kl_filter")[-1] > 0.05


def test_rho_extremes():
    """rho = 1 (no copies): filter and smoother exact. rho = 0 (one segment): the smoother's
    Q(s_0) is the exact naive-Bayes posterior after one sweep, while the filter's belief never
    leaves pi (its copy branch ignores y)."""
    rng = np.random.default_rng(7)
    for rho in (0.0, 1.0):
        params = make_params(rng, K=3, cue=None, rho=rho)
        y, _ = np_sample(rng, params, 40)
        exact = smooth(params, y)
        vf = vmp_filter(params, y)
        vs = vmp_smooth(params, y, num_iters=1)
        np.testing.assert_allclose(vs.elbo, exact.log_likelihood, rtol=1e-12)
        np.testing.assert_allclose(vs.smoothed_s, exact.smoothed_s, atol=1e-12)
        if rho == 1.0:
            np.testing.assert_allclose(vf.elbo, exact.log_likelihood, rtol=1e-12)
            np.testing.assert_allclose(vf.filtered_s, exact.filtered_s, atol=1e-12)
        else:
            pi = np.asarray(params.initial_probs)
            np.testing.assert_allclose(vf.filtered_s, np.broadcast_to(pi, (40, 3)), atol=1e-12)
            assert vf.elbo < exact.log_likelihood - 1.0


def test_long_sequence_stays_finite():
    # long segments (rho = 1e-4): the future values v_t sum thousands of log-likelihoods
    rng = np.random.default_rng(1)
    params = make_params(rng, K=3, cue=None, rho=1e-4)
    y, _ = np_sample(rng, params, 20_000)
    vs = vmp_smooth(params, y, num_iters=2)
    for arr in (vs.smoothed_s, vs.smoothed_z, vs.elbo_history):
        assert np.all(np.isfinite(np.asarray(arr)))
    assert np.all(np.diff(np.asarray(vs.elbo_history)) >= -1e-8)  # rounding of 2e4 terms
    assert vs.elbo <= float(filter(params, y).log_likelihood)


def test_bad_input_raises():
    rng = np.random.default_rng(0)
    params = make_params(rng, cue="scalar")
    y, u = np_sample(rng, params, 5)
    with pytest.raises(ValueError, match="u"):
        vmp_filter(params, y)
    with pytest.raises(ValueError, match="u"):
        vmp_smooth(params, y, np.zeros(4))
    with pytest.raises(ValueError, match="y"):
        vmp_filter(params, np.zeros((5, 2), int), u)
    with pytest.raises(ValueError, match="y"):
        vmp_smooth(params, np.array([0, 1, 7, 0, 1]), u)
    with pytest.raises(ValueError, match="num_iters"):
        vmp_smooth(params, y, u, num_iters=0)
    with pytest.raises(ValueError, match="num_iters"):
        vmp_smooth(params, y, u, num_iters=2.0)
    with pytest.raises(ValueError, match="drop_s_term"):
        vmp_filter(params, y, u, drop_s_term=1)
    with pytest.raises(ValueError, match="params"):
        vmp_filter({"pi": 1}, y, u)
    no_cue = params.replace(cue=None)
    with pytest.raises(ValueError, match="u"):
        vmp_filter(no_cue, y, u)


@pytest.mark.parametrize("gated", [True, False])
def test_smoother_initial_factor(gated):
    """Q(s_0) = r_0: p_1 = (1 - g_1) r_0 + g_1 r_1 always, and in the gated model (where VMP
    is exact) r_0 is the posterior P(s_0 | x) summed over every path by brute force."""
    rng = np.random.default_rng(7)
    params = make_params(rng, K=3, gated=gated, cue="scalar")
    y, u = np_sample(rng, params, 6)
    vs = vmp_smooth(params, y, u, num_iters=50)
    r0, g, r = np.asarray(vs.initial_s), np.asarray(vs.smoothed_z), np.asarray(vs.candidate_s)
    np.testing.assert_allclose(r0.sum(), 1.0, rtol=1e-14)
    np.testing.assert_allclose(vs.smoothed_s[0], (1 - g[0]) * r0 + g[0] * r[0], atol=1e-14)
    S, _, logp = path_log_joint(params, y, u)
    w = np.exp(logp - logsumexp(logp))
    post_s0 = np.bincount(S[:, 0], weights=w, minlength=3)
    if gated:
        np.testing.assert_allclose(r0, post_s0, atol=1e-12)
    else:  # VMP is not exact here: a real, but small, difference
        assert 1e-6 < np.max(np.abs(r0 - post_s0)) < 0.2
