"""EM and maximum likelihood (switchssm.fit) against independent references: per-sequence
exact log-likelihoods for the masked batch, brute-force enumeration for the E-step
posteriors, autodiff of a bijection written here for EM fixed points, known parameters for
recovery.

Compilation dominates the cost on CPU, so the expensive fits are module fixtures shared by
several tests, and the per-sequence references are jitted (one compilation per length)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp

from switchssm.fit import Prior
from switchssm.fit import fit_em
from switchssm.fit import fit_mle
from switchssm.inference import batch_log_likelihood
from switchssm.inference import log_likelihood
from switchssm.inference import smooth
from switchssm.inference._recursions import forward_log
from switchssm.inference.batch import log_likelihoods
from switchssm.inference.batch import sequences_for
from switchssm.inference.batch import smoothed_joint
from switchssm.models import CategoricalEmission
from switchssm.models import GaussianCue
from switchssm.models import GaussianEmission
from switchssm.models import SwitchingParams
from switchssm.models import sample
from switchssm.verify.brute_force import brute_force
from switchssm.verify.brute_force import path_log_joint

B_TRUE = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.7, 0.1, 0.1], [0.1, 0.1, 0.1, 0.7]])
CAT = SwitchingParams(
    np.array([0.5, 0.3, 0.2]),
    0.1,
    CategoricalEmission(B_TRUE),
    GaussianCue(np.array([0.0, 2.0]), 1.0),
)
GAUSS_GATED = SwitchingParams(
    np.array([0.6, 0.4]),
    0.15,
    GaussianEmission(np.array([[-1.5, 0.0], [1.5, 1.0]]), np.array([[1.0, 0.3], [0.3, 0.5]])),
    GaussianCue(np.array([[0.0, 0.0], [1.5, -1.0]]), 1.0),
    gated=True,
)
CAT_LENGTHS = [1500, 1200, 1000, 800]
GAUSS_LENGTHS = [1600, 1400, 1000]
GAUSS_PRIOR = Prior(initial_concentration=2.0, switch_beta=(2.0, 5.0))
# prior=None in EM and MLE: maximum likelihood, a flat conjugate part
FLAT = Prior(initial_concentration=1.0, emission_concentration=1.0, switch_beta=(1.0, 1.0))
# fit_em's default floor on categorical emissions: emission_pseudocount=1e-3 is the MAP under a
# Dirichlet(1 + 1e-3) factor on each row of B (the docstring), so its objective is this one.
EM_FLOOR = 1e-3
CAT_EM_PRIOR = Prior(initial_concentration=1.0, emission_concentration=1.0 + EM_FLOOR,
                     switch_beta=(1.0, 1.0))  # fmt: skip

_ll_jit = jax.jit(log_likelihood)


def _draw(params, lengths, seed):
    """Independent sequences of the given lengths: prefixes of draws of length max(lengths)
    (the model is causal, so a prefix of a draw is a draw); one compilation of the sampler."""
    T = max(lengths)
    ys, us = [], []
    for i, L in enumerate(lengths):
        y, u, _, _ = sample(jax.random.PRNGKey(seed + i), params, T)
        ys.append(np.asarray(y)[:L])
        us.append(np.asarray(u)[:L])
    return ys, us


# The unconstrained coordinates of the stationarity test, written here (independent of the
# package's own bijection): softmax logits for pi and the rows of B, a logit for rho, a
# Cholesky factor with a log diagonal for the Gaussian covariance, a log cue scale.
def _to_theta(p: SwitchingParams) -> dict:
    th = {"pi": jnp.log(p.initial_probs), "rho": jnp.log(p.switch_prob / (1 - p.switch_prob))}
    if isinstance(p.emission, CategoricalEmission):
        th["B"] = jnp.log(p.emission.probs)
    else:
        L = jnp.linalg.cholesky(p.emission.cov)
        th["means"] = p.emission.means
        th["L"] = jnp.tril(L, -1) + jnp.diag(jnp.log(jnp.diag(L)))
    th["cue_means"], th["log_tau"] = p.cue.means, jnp.log(p.cue.scale)
    return th


def _from_theta(th: dict, gated: bool) -> SwitchingParams:
    if "B" in th:
        em = CategoricalEmission(jax.nn.softmax(th["B"], axis=-1))
    else:
        L = jnp.tril(th["L"], -1) + jnp.diag(jnp.exp(jnp.diag(th["L"])))
        em = GaussianEmission(th["means"], L @ L.T)
    cue = GaussianCue(th["cue_means"], jnp.exp(th["log_tau"]))
    return SwitchingParams(
        jax.nn.softmax(th["pi"]), jax.nn.sigmoid(th["rho"]), em, cue, gated=gated
    )


def _objective(th, data, gated, prior):
    p = _from_theta(th, gated)
    return jnp.sum(log_likelihoods(p, data)) + prior.log_density(p)


# --------------------------------------------------------------------------------------
# Masked multi-sequence log-likelihood


def test_padded_steps_with_zero_evidence_have_unit_normalizer(rng):
    """log c_t = log((1-rho) sum alpha + rho sum pi) = 0 where the log evidence is 0."""
    K = 3
    log_pi = np.log(rng.dirichlet(np.ones(K)))
    log_e = rng.normal(size=(6, 2, K))
    log_e[3:] = 0.0
    _, log_norms = forward_log(log_pi, np.log([0.7, 0.3]), log_e)
    np.testing.assert_allclose(log_norms[3:], 0.0, atol=1e-15)


@pytest.mark.parametrize("which", ["categorical", "gaussian_gated"])
def test_batch_log_likelihood_is_sum_of_sequences(which, rng):
    params = CAT if which == "categorical" else GAUSS_GATED
    lengths = [7, 3, 5]
    if which == "categorical":
        ys = [rng.integers(0, 4, size=L) for L in lengths]
        us = [rng.normal(size=L) for L in lengths]
    else:
        ys = [rng.normal(size=(L, 2)) for L in lengths]
        us = [rng.normal(size=(L, 2)) for L in lengths]
    per_seq = [float(_ll_jit(params, y, u)) for y, u in zip(ys, us, strict=True)]
    np.testing.assert_allclose(batch_log_likelihood(params, ys, us), per_seq, rtol=1e-12)
    # the same data padded with garbage (out-of-range symbols, NaN) past `lengths`
    T = max(lengths) + 2
    y_pad = np.full((3, T, *ys[0].shape[1:]), -1 if which == "categorical" else np.nan)
    u_pad = np.full((3, T, *us[0].shape[1:]), np.nan)
    for i, L in enumerate(lengths):
        y_pad[i, :L], u_pad[i, :L] = ys[i], us[i]
    if which == "categorical":
        y_pad = y_pad.astype(int)
    got = batch_log_likelihood(params, y_pad, u_pad, lengths=np.array(lengths))
    np.testing.assert_allclose(got, per_seq, rtol=1e-12)
    # one unbatched sequence is a batch of one
    np.testing.assert_allclose(batch_log_likelihood(params, ys[0], us[0]), per_seq[:1])


def test_mle_with_no_steps_returns_its_start():
    """No optimizer steps: the start goes through the unconstrained coordinates and back
    unchanged (the bijection round trip), and the reported objective is its likelihood."""
    for params, y, u in (
        (CAT, np.array([0, 1, 3, 3, 2]), np.linspace(-1, 2, 5)),
        # (data in general position: a line or a constant cue is refused as degenerate)
        (
            GAUSS_GATED,
            np.random.default_rng(0).normal(size=(5, 2)),
            np.random.default_rng(1).normal(size=(5, 2)),
        ),  # fmt: skip
    ):
        fit = fit_mle(y, u, init=params, num_restarts=1, num_steps=0, num_lbfgs_steps=0,
                      progress=False)  # fmt: skip
        assert fit.params.gated == params.gated
        for a, b in zip(
            jax.tree_util.tree_leaves(fit.params), jax.tree_util.tree_leaves(params), strict=True
        ):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(
            fit.log_likelihood, float(batch_log_likelihood(params, y, u)[0]), rtol=1e-12
        )


# --------------------------------------------------------------------------------------
# E-step against brute-force enumeration


@pytest.mark.parametrize("gated", [False, True])
def test_smoothed_joint_and_initial_state_posterior_match_brute_force(gated, rng):
    params = CAT.replace(gated=gated, initial_probs=np.array([0.2, 0.5, 0.3]), switch_prob=0.35)
    K, T = 3, 4
    y, u = rng.integers(0, 4, size=T), rng.normal(size=T)
    S, Z, logp = path_log_joint(params, y, u)
    w = np.exp(logp - logsumexp(logp))
    xi_ref = np.zeros((T, 2, K))
    for t in range(T):
        np.add.at(xi_ref[t], (Z[:, t], S[:, t + 1]), w)
    s0_ref = np.bincount(S[:, 0], weights=w, minlength=K)
    # one real sequence padded by two steps: padding must not change anything
    mask = np.array([True] * T + [False] * 2)
    y_pad = np.concatenate([y, [0, 0]])
    u_pad = np.concatenate([u, [0.0, 0.0]])
    for log_space in (False, True):  # the probability-space kernel and the log-space one
        xi, s0, ll, ok = jax.jit(smoothed_joint, static_argnums=4)(
            params, y_pad, u_pad, mask, log_space
        )
        assert ok
        np.testing.assert_allclose(xi[:T], xi_ref, atol=1e-12)
        np.testing.assert_allclose(xi[T:], 0.0)
        np.testing.assert_allclose(s0, s0_ref, atol=1e-12)
        np.testing.assert_allclose(ll, logsumexp(logp), rtol=1e-12)


def test_gated_closed_form_e_step_equals_forward_backward(rng):
    """The gated model's scan-free E-step (cue-only gate, background state) gives the same
    expected statistics as the general forward-backward route (checked above by brute force)."""
    # a private function of switchssm.fit.em: no public route selects the E-step
    from switchssm.fit.em import _sequence_stats

    stats = jax.jit(_sequence_stats, static_argnums=(4, 5))
    mask = np.array([True] * 6 + [False] * 2)
    for params in (GAUSS_GATED, CAT.replace(gated=True)):
        if isinstance(params.emission, CategoricalEmission):
            y, u = rng.integers(0, 4, size=8), rng.normal(size=8)
        else:
            y, u = rng.normal(size=(8, 2)), rng.normal(size=(8, 2))
        fast, ll_fast, _ = stats(params, y, u, mask, True, False)
        # the scan E-step by the probability-space kernel and by the log-space recursions
        for log_space in (False, True):
            slow, ll_slow, ok = stats(params, y, u, mask, False, log_space)
            assert ok
            np.testing.assert_allclose(ll_fast, ll_slow, rtol=1e-12)
            for name, a, b in zip(fast._fields, fast, slow, strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=name)


# --------------------------------------------------------------------------------------
# Shared fits


@pytest.fixture(scope="module")
def cat_fit():
    ys, us = _draw(CAT, CAT_LENGTHS, seed=100)  # n = 4500 steps, about 450 switches
    em = fit_em(ys, us, num_states=3, num_restarts=3, num_iters=300, tol=1e-11,
                key=jax.random.PRNGKey(1), progress=False)  # fmt: skip
    mle = fit_mle(ys, us, num_states=3, num_restarts=2, num_steps=150, num_lbfgs_steps=25,
                  key=jax.random.PRNGKey(2), progress=False)  # fmt: skip
    return ys, us, em, mle


@pytest.fixture(scope="module")
def gauss_fit():
    ys, us = _draw(GAUSS_GATED, GAUSS_LENGTHS, seed=200)  # n = 4000 steps
    em = fit_em(ys, us, num_states=2, emission="gaussian", gated=True, num_restarts=1,
                num_iters=300, tol=1e-11, prior=GAUSS_PRIOR, key=jax.random.PRNGKey(3),
                progress=False)  # fmt: skip
    return ys, us, em


# --------------------------------------------------------------------------------------
# EM: monotone, and its fixed points are stationary points of the exact objective


_objective_and_grad = jax.jit(jax.value_and_grad(_objective), static_argnums=(2, 3))


def _check_em_fit(fit, ys, us, prior):
    h = fit.history
    # EM never decreases the objective (log-likelihood, plus log prior for MAP); float64
    # rounding of sums over n steps allows ~1e-11 relative.
    assert np.all(np.diff(h, axis=1) >= -1e-11 * np.abs(h[:, 1:])), np.diff(h, axis=1).min()
    best = fit.metadata["best_restart"]
    assert fit.converged[best] and fit.metadata["method"] == "em"
    # An EM fixed point is a stationary point of the objective: the autodiff gradient of
    # (exact log-likelihood + log prior) in unconstrained coordinates vanishes. EM converges
    # linearly, so after stopping at a 1e-11 relative change it is small, not zero (measured
    # <= 3e-7 per step); we ask for 1e-5 per step. Dropping the s_0 term from the pi M-step,
    # a one-count error among ~450, leaves 2e-4 per step: caught with a 20x margin.
    data = sequences_for(fit.params, ys, us)
    value, g = _objective_and_grad(_to_theta(fit.params), data, fit.params.gated, prior)
    gmax = max(float(jnp.max(jnp.abs(x))) for x in jax.tree_util.tree_leaves(g))
    assert gmax / data.num_timesteps < 1e-5, gmax / data.num_timesteps
    np.testing.assert_allclose(h[best, -1], value, rtol=1e-10)
    lp = float(prior.log_density(fit.params))
    np.testing.assert_allclose(fit.log_likelihood, float(value) - lp, rtol=1e-10)


def test_em_categorical_monotone_and_stationary(cat_fit):
    ys, us, em, _ = cat_fit
    assert em.metadata["emission_pseudocount"] == EM_FLOOR
    _check_em_fit(em, ys, us, CAT_EM_PRIOR)


def test_em_gaussian_gated_map_monotone_and_stationary(gauss_fit):
    ys, us, em = gauss_fit
    _check_em_fit(em, ys, us, GAUSS_PRIOR)


def test_em_gaussian_always_emitting_monotone_and_stationary(gauss_fit):
    # Data need not come from the fitted model for these two properties: the first 200 steps
    # of the gated data, fitted by the always-emitting Gaussian model.
    ys, us, _ = gauss_fit
    ys, us = [y[:200] for y in ys], [u[:200] for u in us]
    fit = fit_em(ys, us, num_states=2, emission="gaussian", num_restarts=2, num_iters=500,
                 tol=1e-11, key=jax.random.PRNGKey(4), progress=False)  # fmt: skip
    _check_em_fit(fit, ys, us, FLAT)


def test_convergence_flags_init_and_progress(cat_fit, capsys):
    ys, us, em, _ = cat_fit
    # Same shapes and restarts as the fixture (no new compilation). `init` is restart 0.
    short = fit_em(ys, us, init=CAT, num_restarts=3, num_iters=2, tol=1e-11,
                   key=jax.random.PRNGKey(1), progress=True)  # fmt: skip
    assert "fit_em" in capsys.readouterr().err
    assert not np.any(short.converged) and short.history.shape == (3, 3)
    true_ll = float(np.sum(batch_log_likelihood(CAT, ys, us)))
    floor = EM_FLOOR * np.sum(np.log(B_TRUE))  # the default pseudo-count's log-prior term
    np.testing.assert_allclose(short.history[0, 0], true_ll + floor, rtol=1e-12)
    fit_em(ys, us, init=CAT, num_restarts=3, num_iters=1, key=jax.random.PRNGKey(1),
           progress=False)  # fmt: skip
    assert capsys.readouterr().err == ""
    with pytest.raises(ValueError, match="`key`"):
        fit_em(ys, us, init=CAT, num_restarts=3, num_iters=1, progress=False)


# --------------------------------------------------------------------------------------
# Parameter recovery


def _match(true_rows, fit_rows):
    """Hungarian matching of fitted states to true ones by L1 distance of emission rows."""
    cost = np.abs(true_rows[:, None, :] - fit_rows[None, :, :]).sum(-1)
    _, perm = linear_sum_assignment(cost)
    return perm


# Tolerances: about 4-5 standard errors (the errors are maxima over several entries). The
# standard errors are those of the MLE with the latents marginalized: square roots of the
# diagonal of the inverse observed information, the autodiff Hessian of the exact
# log-likelihood of these very samples at the true parameters (computed once, offline):
#   pi <= 0.030, B <= 0.015, rho 0.0069, m0 0.018, m1 0.066, tau 0.014
# for n = 4500 steps (~450 switches). Measured errors of the fit: pi 0.017, B 0.042,
# rho 0.010, m0 0.001, m1 0.109, tau 0.004 (EM and MLE reach the same optimum).
CAT_TOL = {"pi": 0.12, "B": 0.075, "rho": 0.03, "m0": 0.08, "m1": 0.3, "tau": 0.06}


@pytest.mark.parametrize("method", ["em", "mle"])
def test_categorical_recovery(method, cat_fit):
    ys, us, em, mle = cat_fit
    p = em.params if method == "em" else mle.params
    perm = _match(B_TRUE, np.asarray(p.emission.probs))
    err = {
        "pi": np.abs(np.asarray(p.initial_probs)[perm] - np.asarray(CAT.initial_probs)).max(),
        "B": np.abs(np.asarray(p.emission.probs)[perm] - B_TRUE).max(),
        "rho": abs(float(p.switch_prob) - 0.1),
        "m0": abs(float(p.cue.means[0]) - 0.0),
        "m1": abs(float(p.cue.means[1]) - 2.0),
        "tau": abs(float(p.cue.scale) - 1.0),
    }
    for name, tol in CAT_TOL.items():
        assert err[name] < tol, (name, err[name], tol)
    # the fit explains the data at least as well as the truth (it maximizes the likelihood)
    fit = em if method == "em" else mle
    assert fit.log_likelihood >= float(np.sum(batch_log_likelihood(CAT, ys, us)))


def test_mle_reaches_em_likelihood(cat_fit):
    _, _, em, mle = cat_fit
    # Same data, same model, different algorithms and starts: Adam + L-BFGS must reach EM's
    # optimum within 1e-6 nats per step (0.0045 in total), far below the gap to any other
    # local optimum met (several nats).
    n = em.metadata["num_timesteps"]
    assert abs(mle.log_likelihood - em.log_likelihood) < 1e-6 * n
    assert mle.history.shape[0] == 2 and mle.converged.dtype == bool
    assert mle.metadata["method"] == "mle" and mle.metadata["lengths"] == CAT_LENGTHS
    assert json.loads(json.dumps(em.metadata)) == em.metadata  # JSON, for switchssm.io
    np.testing.assert_allclose(np.max(mle.restart_log_likelihoods), mle.log_likelihood)
    np.testing.assert_allclose(mle.history[mle.metadata["best_restart"], -1], mle.log_likelihood)


# Gaussian gated recovery (EM, MAP with a weak prior: at most 5 pseudo-counts against 4000
# steps, a bias below 0.002). In the gated model the likelihood is an iid mixture in y times an
# iid 2-mixture in u (switchssm.fit.em, fit_em), so the switch labels are identified only up to
# (rho, m0, m1) -> (1 - rho, m1, m0): match them too. Standard errors as above (inverse
# observed information at the truth, n = 4000): means <= 0.033, cov <= 0.029, pi 0.0097,
# rho 0.019, cue means <= 0.085, tau 0.010; tolerances about 4-5 of them. Measured errors:
# means 0.019, cov 0.023, pi 0.002, rho 0.040, cue means 0.142, tau 0.009 (labels swapped).
GAUSS_TOL = {"means": 0.15, "cov": 0.13, "pi": 0.05, "rho": 0.08, "cue": 0.35, "tau": 0.05}


def test_gaussian_gated_recovery_em(gauss_fit):
    ys, us, fit = gauss_fit
    p, t = fit.params, GAUSS_GATED
    perm = _match(np.asarray(t.emission.means), np.asarray(p.emission.means))
    cue_means, rho = np.asarray(p.cue.means), float(p.switch_prob)
    true_cue = np.asarray(t.cue.means)
    if np.abs(cue_means[::-1] - true_cue).sum() < np.abs(cue_means - true_cue).sum():
        cue_means, rho = cue_means[::-1], 1.0 - rho
    err = {
        "means": np.abs(np.asarray(p.emission.means)[perm] - np.asarray(t.emission.means)).max(),
        "cov": np.abs(np.asarray(p.emission.cov) - np.asarray(t.emission.cov)).max(),
        "pi": np.abs(np.asarray(p.initial_probs)[perm] - np.asarray(t.initial_probs)).max(),
        "rho": abs(rho - 0.15),
        "cue": np.abs(cue_means - true_cue).max(),
        "tau": abs(float(p.cue.scale) - 1.0),
    }
    for name, tol in GAUSS_TOL.items():
        assert err[name] < tol, (name, err[name], tol)
    # the MAP estimate has at least the log posterior of the truth
    post_fit = fit.log_likelihood + float(GAUSS_PRIOR.log_density(p))
    post_true = float(np.sum(batch_log_likelihood(t, ys, us)) + GAUSS_PRIOR.log_density(t))
    assert post_fit >= post_true


# --------------------------------------------------------------------------------------
# Validation


def _bad_calls():
    y = [np.array([0, 1, 2, 1]), np.array([1, 0])]
    pad = np.zeros((2, 4), int)
    k = jax.random.PRNGKey(0)
    base = dict(num_states=2, key=k, progress=False)
    return [
        ("lengths", lambda f: f(pad, lengths=[4, 5], **base)),
        ("lengths", lambda f: f(pad, lengths=[4, 0], **base)),
        ("lengths", lambda f: f(pad, lengths=[4, -1], **base)),
        ("lengths", lambda f: f(pad, lengths=[4, 2, 1], **base)),
        ("lengths", lambda f: f(pad, lengths=[4.5, 2], **base)),
        ("lengths", lambda f: f(y, lengths=[4, 3], **base)),
        ("num_states", lambda f: f(y, num_states=0, key=k, progress=False)),
        ("num_states", lambda f: f(y, num_states=2.0, key=k, progress=False)),
        ("num_states", lambda f: f(y, key=k, progress=False)),
        ("emission", lambda f: f(y, emission="poisson", **base)),
        ("y\\[1\\]", lambda f: f([np.array([0, 1]), np.array([0, -1])], **base)),
        ("y\\[1\\]", lambda f: f([np.array([0, 1]), np.array([], int)], **base)),
        ("`y`", lambda f: f(np.zeros((2, 3, 4), int), **base)),
        ("`y`", lambda f: f([], **base)),
        ("`u`", lambda f: f(y, [np.zeros(4)], **base)),
        ("u\\[1\\]", lambda f: f(y, [np.zeros(4), np.zeros(3)], **base)),
        ("`u`", lambda f: f(y, [np.zeros(4), np.zeros(2)], cue=False, **base)),
        ("`cue`", lambda f: f(y, [np.zeros(4), np.zeros(2)], cue="vector", **base)),
        ("`cue`", lambda f: f(y, cue="sometimes", **base)),
        ("`cue`", lambda f: f(y, cue=True, **base)),
        ("y\\[0\\]", lambda f: f([np.array([[0.0, np.nan]])], emission="gaussian", **base)),
        ("num_symbols", lambda f: f(y, num_symbols=0, **base)),
        ("y\\[0\\]", lambda f: f(y, num_symbols=2, **base)),
        ("num_restarts", lambda f: f(y, num_restarts=0, **base)),
        ("prior", lambda f: f(y, prior=Prior(0.5), **base)),
        ("prior", lambda f: f(y, prior=Prior(switch_beta=(0.5, 1.0)), **base)),
        ("prior", lambda f: f(y, prior={"initial_concentration": 2.0}, **base)),
        (
            "prior.emission",
            lambda f: f(
                [np.arange(4.0)[:, None]], emission="gaussian", prior=Prior(1.0, 2.0), **base
            ),
        ),  # fmt: skip
        ("init", lambda f: f(y, init="params", **base)),
        ("num_states", lambda f: f(y, init=CAT, num_states=2, key=k, progress=False)),
        ("gated", lambda f: f(y, init=CAT, gated=True, key=k, progress=False)),
        ("`cue`", lambda f: f(y, init=CAT, cue=False, key=k, progress=False)),
        ("emission", lambda f: f(y, init=CAT, emission="gaussian", key=k, progress=False)),
        ("tol", lambda f: f(y, tol=-1.0, **base)),
    ]


@pytest.mark.parametrize("fit", [fit_em, fit_mle], ids=["em", "mle"])
def test_bad_input_raises_value_error_naming_the_argument(fit):
    for name, call in _bad_calls():
        with pytest.raises(ValueError, match=name):
            call(fit)


def test_bad_input_other_entry_points():
    y = [np.array([0, 1])]
    with pytest.raises(ValueError, match="learning_rate"):
        fit_mle(y, num_states=2, learning_rate=0.0, progress=False)
    with pytest.raises(ValueError, match="num_steps"):
        fit_mle(y, num_states=2, num_steps=-1, progress=False)
    with pytest.raises(ValueError, match="num_iters"):
        fit_em(y, num_states=2, num_iters=-1, progress=False)
    with pytest.raises(ValueError, match="`u`"):
        batch_log_likelihood(CAT, y)
    with pytest.raises(ValueError, match="params"):
        batch_log_likelihood("params", y)
    with pytest.raises(ValueError, match="y\\[0\\]"):
        batch_log_likelihood(CAT, [np.array([0, 4])], [np.zeros(2)])


def test_em_keeps_unseen_symbols_possible_by_default():
    """A symbol absent from the training data (1 in a sequence of 0s and 2s): by default the
    M-step's pseudo-count keeps B[:, 1] positive, so a sequence holding it has a finite
    log-likelihood, equal to brute-force enumeration; ``emission_pseudocount=0`` is the plain
    maximum likelihood, whose B[:, 1] is exactly zero."""
    y = np.random.default_rng(0).choice([0, 2], 300)
    for num_symbols in (3, None):  # V given, and inferred as max(y) + 1 = 3
        fit = fit_em(y, num_states=2, num_symbols=num_symbols, num_restarts=2, num_iters=30,
                     key=0, progress=False)  # fmt: skip
        B = np.asarray(fit.params.emission.probs)
        assert B.shape == (2, 3) and np.all(B[:, 1] > 0), B
        test = np.array([0, 2, 1])
        ll = float(smooth(fit.params, test).log_likelihood)
        ref = float(brute_force(fit.params, test)["log_likelihood"])
        assert np.isfinite(ll)
        np.testing.assert_allclose(ll, ref, rtol=1e-10)
    # The floor is what keeps it positive: the MLE drives B[:, 1] to 0.
    mle = fit_em(y, num_states=2, num_symbols=3, num_restarts=2, num_iters=30, key=0,
                 emission_pseudocount=0.0, progress=False)  # fmt: skip
    assert np.all(np.asarray(mle.params.emission.probs)[:, 1] == 0)
    assert mle.metadata["emission_pseudocount"] == 0.0
    with pytest.raises(ValueError, match="emission_pseudocount"):
        fit_em(y, num_states=2, key=0, emission_pseudocount=-1.0, progress=False)


def test_fits_switch_to_log_space_when_the_kernel_underflows():
    """rho = 0 and observations 60 sd apart: the probability-space kernel underflows at the
    first step. fit_em and fit_mle must detect it and continue with the exact log-space
    recursions: EM's first objective is the brute-force log-likelihood, and both stay
    finite."""
    means = np.array([[0.0], [60.0]])
    init = SwitchingParams(np.array([0.5, 0.5]), 0.0, GaussianEmission(means, np.eye(1)))
    y = np.array([[0.0], [60.0], [0.0], [0.1], [59.0]])
    ref = float(brute_force(init, y)["log_likelihood"])
    assert np.isfinite(ref)
    em = fit_em(y, emission="gaussian", init=init, num_restarts=1, num_iters=3, progress=False)
    np.testing.assert_allclose(em.history[0, 0], ref, rtol=1e-12)
    assert np.all(np.isfinite(em.history))
    mle = fit_mle(y, emission="gaussian", init=init.replace(switch_prob=1e-300), num_restarts=1,
                  num_steps=3, num_lbfgs_steps=0, progress=False)  # fmt: skip
    assert np.all(np.isfinite(mle.history))


def test_em_on_tiny_scale_data_is_scale_equivariant_and_saves(tmp_path):
    """Data with standard deviation about 1e-7: EM is equivariant under y -> c y (means scale
    by c, the covariance by c^2, pi and rho unchanged), so the fit of c y from the scaled
    start equals the scaled fit of y; its covariance (about 1e-14) is a valid one and the fit
    survives save_fit / load_fit exactly."""
    from switchssm.io import load_fit
    from switchssm.io import save_fit

    y, _, _, _ = sample(jax.random.PRNGKey(11), GAUSS_GATED.replace(cue=None), 300)
    y = np.asarray(y)
    means = np.array([[-1.0, 0.0], [1.0, 0.5]])
    start = SwitchingParams(np.array([0.5, 0.5]), 0.2, GaussianEmission(means, np.eye(2)))
    c = 1e-7
    start_c = start.replace(emission=GaussianEmission(c * start.emission.means, c**2 * np.eye(2)))
    kw = dict(emission="gaussian", num_restarts=1, num_iters=20, tol=0.0, progress=False)
    ref = fit_em(y, init=start, **kw)
    tiny = fit_em(c * y, init=start_c, **kw)
    got, want = tiny.params.emission, ref.params.emission
    np.testing.assert_allclose(got.means, c * np.asarray(want.means), rtol=1e-8, atol=1e-20)
    np.testing.assert_allclose(got.cov, c**2 * np.asarray(want.cov), rtol=1e-8)
    np.testing.assert_allclose(tiny.params.initial_probs, ref.params.initial_probs, rtol=1e-8)
    # the log-density shifts by -D log c per step: log-likelihoods differ by -n D log c
    shift = -300 * 2 * np.log(c)
    np.testing.assert_allclose(tiny.log_likelihood, ref.log_likelihood + shift, rtol=1e-10)
    path = tmp_path / "fit.npz"
    save_fit(path, tiny)
    back = load_fit(path)
    assert np.asarray(back.params.emission.cov).tobytes() == np.asarray(got.cov).tobytes()


@pytest.mark.parametrize("fit", [fit_em, fit_mle], ids=["em", "mle"])
def test_degenerate_data_stop_with_a_message_naming_the_problem(fit):
    """Data whose maximum-likelihood covariance or cue scale is 0 (a constant series, a single
    point, no more distinct values than states, a constant cue, points on a line) stop before
    fitting with a ValueError naming the data, not a FloatingPointError or a message about an
    `emission.cov` the user never passed."""
    base = dict(num_states=2, key=0, progress=False)
    rng = np.random.default_rng(1)
    x = rng.normal(size=50)
    cases = [
        (np.full((40, 1), 3.0), {}, "`y` is constant"),
        (np.array([[1.5]]), {}, "`y` holds 1 step"),
        (np.array([[0.0], [1.0]] * 20), {}, "`y` holds only 2 distinct values"),
        (np.stack([x, np.full(50, 2.0)], 1), {}, r"`y` \(dimension 1\) is constant"),
        (np.stack([x, 2 * x + 1], 1), {}, "lower-dimensional subspace"),
    ]
    for y, extra, msg in cases:
        with pytest.raises(ValueError, match=msg):
            fit(y, emission="gaussian", **base, **extra)
    with pytest.raises(ValueError, match="`u` is constant"):
        fit(np.array([0, 1, 1, 0, 1]), np.zeros(5), **base)
    # the data's scale is not the problem: std 1e-7 passes the checks
    short = {"num_iters": 1} if fit is fit_em else {"num_steps": 1, "num_lbfgs_steps": 0}
    fit(1e-7 * x[:, None], emission="gaussian", num_restarts=1, **base, **short)


def test_em_accepts_an_integer_seed():
    """key=0 is jax.random.PRNGKey(0): the same restarts, the same fit."""
    y = np.random.default_rng(2).integers(0, 3, 60)
    kw = dict(num_states=2, num_restarts=2, num_iters=3, progress=False)
    a, b = fit_em(y, key=0, **kw), fit_em(y, key=jax.random.PRNGKey(0), **kw)
    np.testing.assert_array_equal(a.history, b.history)
    with pytest.raises(ValueError, match="`key`"):
        fit_em(y, key="seed", **kw)
