"""Run-length filter and Gaussian-latent model (docs/theory.md section 4).

Expected values come from an independent computation: brute-force enumeration of every switch
pattern, each a linear-Gaussian model whose joint covariance is built by direct linear algebra
(numpy/scipy), a closed form (the cue-only gate and the information-form recursion) or sample
statistics of the NumPyro model.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer import Predictive
from numpyro.infer.util import log_density
from scipy import stats
from scipy.special import expit
from scipy.special import logsumexp

from switchssm.inference.changepoint import run_length_filter
from switchssm.models.gaussian_latent import GaussianLatentParams
from switchssm.models.gaussian_latent import gaussian_latent_model
from switchssm.models.gaussian_latent import sample_gaussian_latent
from switchssm.models.params import GaussianCue

# ----------------------------------------------------------------------------- helpers


def _spd(rng, n, scale=1.0):
    A = rng.normal(size=(n, n))
    return scale * (A @ A.T / n + 0.5 * np.eye(n))


def _make_params(rng, K, D, rho=0.3, gated=False, cue=None):
    if cue == "scalar":
        cue = GaussianCue(np.array([-0.4, 0.9]), 0.8)
    elif cue == "vector":
        cue = GaussianCue(np.array([[0.0, 0.5], [1.0, -0.3]]), np.array([0.7, 1.1]))
    return GaussianLatentParams(
        initial_mean=rng.normal(size=K),
        initial_cov=_spd(rng, K),
        emission_matrix=rng.normal(size=(D, K)),
        emission_cov=_spd(rng, D, 0.5),
        switch_prob=rho,
        cue=cue,
        gated=gated,
    )


def _np(p):
    return (
        np.asarray(p.initial_mean),
        np.asarray(p.initial_cov),
        np.asarray(p.emission_matrix),
        np.asarray(p.emission_cov),
        float(p.switch_prob),
    )


def _cue_logpdf(p, u, z):
    """log N(u | m_z, tau^2), summed over cue dimensions (scipy)."""
    m = np.asarray(p.cue.means)[z]
    return float(np.sum(stats.norm.logpdf(u, m, np.asarray(p.cue.scale))))


def _pattern_gaussian(p, z, y, t):
    """Given the switch pattern z_1..z_t, return log p(y_1:t | z) and N(s_t | y_1:t, z).

    Latent variables, all iid N(mu0, S0): one per segment (the s_0 segment, then one per switch)
    plus, in the gated model, one independent background draw w_tau for every step without a
    switch (y_tau = C w_tau + e_tau ~ N(C mu0, C S0 C' + R)).
    """
    mu0, S0, C, R, _ = _np(p)
    K, D = C.shape[1], C.shape[0]
    seg = np.cumsum(z[:t])  # segment index of s_tau (0 = the s_0 segment)
    n_seg = 1 + int(seg[-1])
    src = []  # which latent variable feeds y_tau
    n_var = n_seg
    for tau in range(t):
        if p.gated and z[tau] == 0:
            src.append(n_var)
            n_var += 1
        else:
            src.append(int(seg[tau]))
    mean_x = np.tile(mu0, n_var)
    cov_x = np.kron(np.eye(n_var), S0)
    A_y = np.zeros((t * D, n_var * K))
    for tau in range(t):
        A_y[tau * D : (tau + 1) * D, src[tau] * K : (src[tau] + 1) * K] = C
    A_s = np.zeros((K, n_var * K))
    A_s[:, int(seg[t - 1]) * K : (int(seg[t - 1]) + 1) * K] = np.eye(K)
    m_y = A_y @ mean_x
    S_yy = A_y @ cov_x @ A_y.T + np.kron(np.eye(t), R)
    S_sy = A_s @ cov_x @ A_y.T
    S_ss = A_s @ cov_x @ A_s.T
    yv = np.asarray(y[:t]).reshape(-1)
    logp = stats.multivariate_normal(m_y, S_yy).logpdf(yv)
    gain = np.linalg.solve(S_yy, S_sy.T).T
    m_s = A_s @ mean_x + gain @ (yv - m_y)
    P_s = S_ss - gain @ S_sy.T
    return logp, m_s, P_s


def _brute_force(p, y, u=None):
    """Enumerate all 2^t switch patterns for every prefix t = 1..T."""
    T = y.shape[0]
    rho = float(p.switch_prob)
    out = dict(loglik=[], fz=[], mean=[], cov=[], rl=np.zeros((T, T + 1)))
    for t in range(1, T + 1):
        logws, ms, Ps, zt, rls = [], [], [], [], []
        for pat in itertools.product([0, 1], repeat=t):
            z = np.array(pat)
            lw = np.sum(z * np.log(rho) + (1 - z) * np.log1p(-rho))
            if p.cue is not None:
                lw += sum(_cue_logpdf(p, u[tau], z[tau]) for tau in range(t))
            logp, m, P = _pattern_gaussian(p, z, y, t)
            logws.append(lw + logp)
            ms.append(m)
            Ps.append(P)
            zt.append(z[-1])
            ones = np.flatnonzero(z)
            rls.append(t if ones.size == 0 else t - 1 - ones[-1])
        logws = np.array(logws)
        ll = logsumexp(logws)
        w = np.exp(logws - ll)
        ms, Ps = np.array(ms), np.array(Ps)
        mean = w @ ms
        d = ms - mean
        cov = np.einsum("j,jab->ab", w, Ps) + np.einsum("j,ja,jb->ab", w, d, d)
        out["loglik"].append(ll)
        out["fz"].append(w @ np.array(zt))
        out["mean"].append(mean)
        out["cov"].append(cov)
        np.add.at(out["rl"][t - 1], np.array(rls), w)
    return {k: np.array(v) for k, v in out.items()}


def _cue_only_gate(p, u):
    rho = float(p.switch_prob)
    lc = np.asarray(p.cue.log_prob(jnp.asarray(u)))
    return expit(np.log(rho) - np.log1p(-rho) + lc[:, 1] - lc[:, 0])


# ----------------------------------------------------------------------------- exactness


CASES = [
    # gated, cue, K, D: both variants, with and without a cue (scalar and vector), K and D in
    # {1, 2}; the cue enters both variants through the same code, so four cases cover the grid
    # at four compilations.
    (False, None, 1, 1),
    (False, "vector", 2, 2),
    (True, None, 2, 1),
    (True, "scalar", 1, 2),
]


@pytest.mark.parametrize("gated,cue,K,D", CASES)
def test_matches_brute_force_enumeration(gated, cue, K, D, rng):
    T = 5
    p = _make_params(rng, K, D, rho=0.3, gated=gated, cue=cue)
    y = 1.5 * rng.normal(size=(T, D))
    u = None
    if cue == "scalar":
        u = rng.normal(size=T) * 1.2
    elif cue == "vector":
        u = rng.normal(size=(T, 2)) * 1.2
    bf = _brute_force(p, y, u)
    post = run_length_filter(p, y, u)

    np.testing.assert_allclose(post.log_likelihood, bf["loglik"][-1], rtol=0, atol=1e-8)
    np.testing.assert_allclose(np.cumsum(post.log_normalizers), bf["loglik"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(post.filtered_z, bf["fz"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(post.filtered_mean, bf["mean"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(post.filtered_cov, bf["cov"], rtol=0, atol=1e-8)
    # exact filter: T + 1 slots, slot r holds run length r
    assert post.run_length_probs.shape == (T, T + 1)
    np.testing.assert_allclose(post.run_length_probs, bf["rl"], rtol=0, atol=1e-8)
    valid = np.arange(T + 1)[None, :] <= np.arange(1, T + 1)[:, None]
    expected_rl = np.where(valid, np.arange(T + 1), -1)
    np.testing.assert_array_equal(np.asarray(post.run_lengths), expected_rl)
    np.testing.assert_array_equal(post.discarded_mass, 0.0)


def test_log_likelihood_gradient_matches_brute_force_differences(rng):
    """Gradients through the filter (for fitting by marginal likelihood, docs/theory.md section 6)
    against central differences of the brute-force log-likelihood."""
    p = _make_params(rng, 2, 1, rho=0.3, gated=False, cue="scalar")
    y, u = 1.5 * rng.normal(size=(5, 1)), rng.normal(size=5)

    def loglik(rho, C):
        return run_length_filter(p.replace(switch_prob=rho, emission_matrix=C), y, u).log_likelihood

    C0 = np.asarray(p.emission_matrix)
    g_rho, g_C = jax.grad(loglik, argnums=(0, 1))(0.3, jnp.asarray(C0))
    h = 1e-5

    def bf(rho, C):
        return _brute_force(p.replace(switch_prob=rho, emission_matrix=C), y, u)["loglik"][-1]

    fd_rho = (bf(0.3 + h, C0) - bf(0.3 - h, C0)) / (2 * h)
    dC = np.zeros_like(C0)
    dC[0, 1] = h
    fd_C = (bf(0.3, C0 + dC) - bf(0.3, C0 - dC)) / (2 * h)
    # central differences: truncation error O(h^2) ~ 1e-10, rounding ~ 1e-16 / h ~ 1e-11
    np.testing.assert_allclose(g_rho, fd_rho, rtol=1e-7)
    np.testing.assert_allclose(g_C[0, 1], fd_C, rtol=1e-7)


# ----------------------------------------------------------------------------- sequences


@pytest.fixture(scope="module")
def sequences():
    """One T = 2000 draw per variant (K = 2, D = 1, informative cue, rho = 0.1), shared by the
    pruning, theory, long-sequence and sampler-statistics tests to keep compilations few."""
    out = {}
    for gated in (False, True):
        p = GaussianLatentParams(
            np.zeros(2),
            np.eye(2),
            np.array([[1.0, 0.5]]),
            0.3 * np.eye(1),
            0.1,
            cue=GaussianCue(np.array([0.0, 1.0]), 0.35),
            gated=gated,
        )
        y, u, s, z = sample_gaussian_latent(jax.random.PRNGKey(1), p, 2000)
        out[gated] = (p, *(np.asarray(a) for a in (y, u, s, z)))
    return out


# ----------------------------------------------------------------------------- pruning


@pytest.fixture(scope="module")
def pruning_problem(sequences):
    # Always-emitting with an informative cue: the run-length posterior concentrates, so a few
    # slots hold nearly all the mass (4 switches in the first 40 steps of this draw).
    p, y, u, _, _ = sequences[False]
    return p, y[:40], u[:40]


def test_pruning_error_shrinks_and_is_reported(pruning_problem):
    p, y, u = pruning_problem
    T = y.shape[0]
    exact = run_length_filter(p, y, u)
    errs = []
    for R in (1, 5, T + 1):  # T + 1 slots: exact (and compiled once, shared with `exact`)
        pr = run_length_filter(p, y, u, max_run_lengths=R)
        assert pr.run_length_probs.shape == (T, R)
        np.testing.assert_allclose(pr.run_length_probs.sum(-1), 1.0, atol=1e-12)
        eps = np.asarray(pr.discarded_mass)
        assert np.all(eps >= 0) and np.all(eps <= 0.5)  # the least probable of >= 2 candidates
        # Pruning deletes nonnegative terms of a positive linear recursion, so the pruned
        # unnormalized message is below the exact one (proof in the module docstring):
        # loglik_pruned + sum_{t<T} log(1 - eps_t) <= loglik_exact.
        assert pr.log_likelihood + np.sum(np.log1p(-eps[:-1])) <= exact.log_likelihood + 1e-10
        # slots hold distinct run lengths in increasing order, empty slots (-1) last
        rl = np.asarray(pr.run_lengths)
        held = np.where(rl < 0, T + 1, rl)
        assert np.all((np.diff(held, axis=1) > 0) | (held[:, 1:] == T + 1))
        err = max(
            float(np.max(np.abs(pr.filtered_z - exact.filtered_z))),
            float(np.max(np.abs(pr.filtered_mean - exact.filtered_mean))),
            abs(float(pr.log_likelihood - exact.log_likelihood)),
        )
        errs.append((err, float(eps.sum())))
    assert errs[0][0] > 1e-2  # R = 1 is a real approximation here
    assert 0 < errs[1][0] < errs[0][0] and 0 < errs[1][1] < errs[0][1], errs
    assert errs[2] == (0.0, 0.0), errs


def test_enough_slots_reproduce_exact(pruning_problem):
    p, y, u = pruning_problem
    T = y.shape[0]
    exact = run_length_filter(p, y, u)
    for R in (T + 1, T + 7):
        pr = run_length_filter(p, y, u, max_run_lengths=R)
        for a, b in zip(pr, exact, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# ------------------------------------------------------------------------ docs/theory.md section 4


def test_gated_gate_is_cue_only_posterior_and_infoform_mean_is_exact(sequences):
    """docs/theory.md section 4 verify: gated + marginal background.

    (a) P(z_t=1 | x_1:t) = sigmoid(logit rho + log N(u|m1) - log N(u|m0)), also under pruning;
    (b) the information-form minGRU eta_t = (1-g_t) eta_{t-1} + g_t eta~_t, eta_0 = J~ mu0,
        read out through J~^-1, is the exact filtered mean;
    (c) the exact filtered covariance dominates J~^-1 (PSD order).
    """
    p, y_long, u_long, _, _ = sequences[True]
    pruned = run_length_filter(p, y_long, u_long, max_run_lengths=20)  # as in the long test
    np.testing.assert_allclose(pruned.filtered_z, _cue_only_gate(p, u_long), rtol=0, atol=1e-12)
    y, u = y_long[:60], u_long[:60]
    g = _cue_only_gate(p, u)
    exact = run_length_filter(p, y, u)
    np.testing.assert_allclose(exact.filtered_z, g, rtol=0, atol=1e-12)

    mu0, S0, C, R, _ = _np(p)
    S0i, Ri = np.linalg.inv(S0), np.linalg.inv(R)
    Jt = S0i + C.T @ Ri @ C
    eta = Jt @ mu0
    means = []
    for t in range(len(y)):
        eta = (1 - g[t]) * eta + g[t] * (S0i @ mu0 + C.T @ Ri @ y[t])
        means.append(np.linalg.solve(Jt, eta))
    np.testing.assert_allclose(exact.filtered_mean, np.array(means), rtol=0, atol=1e-10)
    gap = np.linalg.eigvalsh(np.asarray(exact.filtered_cov) - np.linalg.inv(Jt))
    assert gap.min() >= -1e-10


# ----------------------------------------------------------------------------- long sequences


@pytest.mark.parametrize("gated", [False, True])
def test_long_sequence_pruned_stays_finite(sequences, gated):
    p, y, u, _, _ = sequences[gated]
    T = y.shape[0]
    post = run_length_filter(p, y, u, max_run_lengths=20)
    for leaf in post:
        assert np.all(np.isfinite(np.asarray(leaf)))
    np.testing.assert_allclose(post.run_length_probs.sum(-1), 1.0, atol=1e-10)
    assert np.all((post.filtered_z >= 0) & (post.filtered_z <= 1))
    assert np.all(np.linalg.eigvalsh(np.asarray(post.filtered_cov)) > 0)
    assert np.max(post.run_lengths) <= T


# ----------------------------------------------------------------------------- validation


def test_bad_inputs_raise(rng):
    p = _make_params(rng, 2, 2, cue="scalar")
    y = rng.normal(size=(6, 2))
    u = rng.normal(size=6)
    ok = dict(max_run_lengths=None)
    bad_y = y.copy()
    bad_y[2, 1] = np.nan
    bad_u = u.copy()
    bad_u[0] = np.inf
    cases = [
        ((p, bad_y, u), ok, "`y`"),
        ((p, y, bad_u), ok, "`u`"),
        ((p, y[:, :1], u), ok, "`y`"),
        ((p, y[0], u), ok, "`y`"),
        ((p, np.zeros((0, 2)), u[:0]), ok, "`y`"),
        ((p, y, u[:5]), ok, "`u`"),
        ((p, y, None), ok, "`u`"),
        ((p.replace(cue=None), y, u), ok, "`u`"),
        ((p, y, u), dict(max_run_lengths=0), "`max_run_lengths`"),
        ((p, y, u), dict(max_run_lengths=2.5), "`max_run_lengths`"),
        ((p, y, u), dict(max_run_lengths=True), "`max_run_lengths`"),
        (("params", y, u), ok, "`params`"),
    ]
    for args, kw, name in cases:
        with pytest.raises(ValueError, match=name):
            run_length_filter(*args, **kw)


def test_params_validation_names_the_field(rng):
    good = dict(
        initial_mean=np.zeros(2),
        initial_cov=np.eye(2),
        emission_matrix=np.ones((3, 2)),
        emission_cov=np.eye(3),
        switch_prob=0.2,
    )
    GaussianLatentParams(**good)
    bad = [
        ("initial_mean", np.zeros((2, 1))),
        ("initial_mean", np.array([0.0, np.nan])),
        ("initial_cov", -np.eye(2)),
        ("initial_cov", np.eye(3)),
        ("emission_matrix", np.ones((3, 3))),
        ("emission_cov", np.eye(2)),
        ("emission_cov", np.array([[1.0, 2.0], [0.0, 1.0]])),
        ("switch_prob", 1.5),
        ("switch_prob", np.array([0.1, 0.2])),
        ("cue", "not a cue"),
    ]
    for field, value in bad:
        with pytest.raises(ValueError, match=f"`{field}"):
            GaussianLatentParams(**{**good, field: value})
    # tracers skip validation; the pytree round-trips through jit
    p = GaussianLatentParams(**good, gated=True)
    q = jax.jit(lambda q: q)(p)
    assert q.gated and np.allclose(q.emission_matrix, 1.0)
    with pytest.raises(ValueError, match="num_timesteps"):
        sample_gaussian_latent(jax.random.PRNGKey(0), p, 0)


# ----------------------------------------------------------------------------- NumPyro model


def test_predictive_runs_and_sampler_shapes(rng, sequences):
    p = _make_params(rng, 3, 2, rho=0.2, gated=True, cue="vector")
    predictive = Predictive(gaussian_latent_model, num_samples=4)
    draws = jax.jit(lambda k: predictive(k, p, num_timesteps=30))(jax.random.PRNGKey(0))
    assert draws["y"].shape == (4, 30, 2)
    assert draws["u"].shape == (4, 30, 2)
    assert draws["s"].shape == (4, 30, 3)
    assert draws["s_fresh"].shape == (4, 30, 3)
    assert draws["z"].shape == (4, 30)
    assert draws["s0"].shape == (4, 3)
    _, y, u, s, z = sequences[True]
    assert y.shape == (2000, 1) and u.shape == (2000,) and s.shape == (2000, 2)
    assert z.shape == (2000,) and z.dtype == np.int32
    y, u, s, z = sample_gaussian_latent(jax.random.PRNGKey(1), p.replace(cue=None), 30)
    assert y.shape == (30, 2) and u is None and s.shape == (30, 3) and z.shape == (30,)
    assert z.dtype == jnp.int32


def test_model_log_density_matches_scipy(rng):
    """The NumPyro joint density, evaluated at given latents, against scipy."""
    for gated in (False, True):
        p = _make_params(rng, 2, 2, rho=0.3, gated=gated, cue="scalar")
        mu0, S0, C, R, rho = _np(p)
        T = 4
        z = np.array([0, 1, 0, 1])
        s0 = rng.normal(size=2)
        fresh = rng.normal(size=(T, 2))
        y = rng.normal(size=(T, 2))
        u = rng.normal(size=T)
        lp = jax.jit(  # one compilation instead of many eager dispatches
            lambda p, y, u, v: log_density(gaussian_latent_model, (p,), dict(y=y, u=u), v)[0]
        )(p, y, u, dict(s0=s0, z=z, s_fresh=fresh))
        ref = stats.multivariate_normal(mu0, S0).logpdf(s0)
        s = s0
        for t in range(T):
            ref += np.log(rho) if z[t] else np.log1p(-rho)
            ref += stats.multivariate_normal(mu0, S0).logpdf(fresh[t])
            s = fresh[t] if z[t] else s
            if gated and not z[t]:
                ref += stats.multivariate_normal(C @ mu0, C @ S0 @ C.T + R).logpdf(y[t])
            else:
                ref += stats.multivariate_normal(C @ s, R).logpdf(y[t])
            ref += _cue_logpdf(p, u[t], z[t])
        np.testing.assert_allclose(lp, ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("gated", [False, True])
def test_sampler_statistics(sequences, gated):
    p, y, u, s, z = sequences[gated]
    mu0, S0, C, R, rho = _np(p)
    T = len(z)
    # switch rate ~ rho within 4 standard errors
    assert abs(z.mean() - rho) < 4 * np.sqrt(rho * (1 - rho) / T)
    # no switch: exact copy; switch: fresh N(mu0, S0) draws
    stay = np.flatnonzero(z[1:] == 0) + 1
    np.testing.assert_array_equal(s[stay], s[stay - 1])
    fresh = s[z == 1]
    n = len(fresh)
    se = np.sqrt(np.diag(S0) / n)
    assert np.all(np.abs(fresh.mean(0) - mu0) < 4 * se)
    # cue: u | z ~ N(m_z, tau^2)
    m, tau = np.asarray(p.cue.means), float(p.cue.scale)
    for zz in (0, 1):
        uz = u[z == zz]
        assert abs(uz.mean() - m[zz]) < 4 * tau / np.sqrt(len(uz))
    # emission: residual of y given s on emitting steps ~ N(0, R); gated background on z = 0
    emit = (z == 1) if gated else np.ones(T, bool)
    res = y[emit] - s[emit] @ C.T
    assert abs(res.mean()) < 4 * np.sqrt(R[0, 0] / emit.sum())
    assert abs(res.var() / R[0, 0] - 1) < 4 * np.sqrt(2 / emit.sum())
    if gated:
        bg = y[z == 0]
        v = (C @ S0 @ C.T + R).item()
        assert abs(bg.mean() - (C @ mu0).item()) < 4 * np.sqrt(v / len(bg))
        assert abs(bg.var() / v - 1) < 4 * np.sqrt(2 / len(bg))
        # background y is independent of s_t
        assert abs(np.corrcoef(bg[:, 0], s[z == 0] @ C[0])[0, 1]) < 4 / np.sqrt(len(bg))
