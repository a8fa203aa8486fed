"""Exact inference at the edges, in every mode, against independent references.

References: a plain NumPy enumeration of every path over the raw factors (pi, rho, B), which
needs no valid model and so also gives finite differences across a boundary (a zero
probability, rho = 1); a 60-digit :mod:`decimal` forward-backward for outliers whose log
evidence is far beyond float64's resolution; float64 sequential inference for float32 runs.
"""

import itertools
from decimal import Decimal
from decimal import localcontext

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from switchssm.inference import batch_log_likelihood
from switchssm.inference import filter
from switchssm.inference import log_likelihood
from switchssm.inference import posterior_sample
from switchssm.inference import smooth
from switchssm.models import CategoricalEmission
from switchssm.models import GaussianCue
from switchssm.models import GaussianEmission
from switchssm.models import SwitchingParams

MODES = ("sequential", "log", "parallel")


def cat_params(B, rho=0.3, pi=(0.6, 0.4), gated=False):
    """A categorical model; ``B``, ``rho`` and ``pi`` may be traced (for gradients)."""
    return SwitchingParams(
        jnp.asarray(pi, jnp.float64), jnp.asarray(rho, jnp.float64),
        CategoricalEmission(jnp.asarray(B, jnp.float64)), gated=gated,
    )  # fmt: skip


def enumerate_ll(pi, rho, B, y, gated=False):
    """log P(y) by summing every path (s_0, z_1..T, s_1..T) of the model over raw factors."""
    pi, B = np.asarray(pi, float), np.asarray(B, float)
    K, T = len(pi), len(y)
    background = pi @ B  # P(y | z = 0) of the gated model, per symbol
    total = 0.0
    for s0 in range(K):
        for z in itertools.product((0, 1), repeat=T):
            for s in itertools.product(range(K), repeat=T):
                w, prev = pi[s0], s0
                for t in range(T):
                    if z[t] == 0:
                        w *= (1 - rho) * (s[t] == prev)
                        w *= background[y[t]] if gated else B[s[t], y[t]]
                    else:
                        w *= rho * pi[s[t]] * B[s[t], y[t]]
                    prev = s[t]
                total += w
    return np.log(total) if total > 0 else -np.inf


# --------------------------------------------------------------------------------------
# Item 1: every array-like


@pytest.mark.parametrize("convert", [list, tuple])
def test_lists_and_tuples_are_accepted(convert):
    params = cat_params([[0.5, 0.2, 0.3], [0.1, 0.6, 0.3]])
    y = np.array([0, 1, 2, 1, 0])
    for mode in MODES:
        ref = smooth(params, y, mode=mode)
        got = smooth(params, convert(y.tolist()), mode=mode)
        np.testing.assert_array_equal(got.smoothed_s, ref.smoothed_s)
        np.testing.assert_array_equal(filter(params, convert(y.tolist()), mode=mode).filtered_s,
                                      ref.filtered_s)  # fmt: skip
        assert log_likelihood(params, convert(y.tolist()), mode=mode) == pytest.approx(
            float(ref.log_likelihood), rel=1e-12
        )
    s, z = posterior_sample(0, params, convert(y.tolist()), num_samples=3)
    assert s.shape == z.shape == (3, 5)
    # NumPy integers are integers (np.int64(2) was once refused)
    s2, _ = posterior_sample(0, params, convert(y.tolist()), num_samples=np.int64(2))
    assert s2.shape == (2, 5)


# --------------------------------------------------------------------------------------
# Item 3: impossible observations


@pytest.mark.parametrize("gated", [False, True])
def test_impossible_sequence_is_minus_inf_in_every_mode(gated):
    B = [[0.5, 0.0, 0.5], [0.3, 0.0, 0.7]]  # symbol 1 is never emitted
    params = cat_params(B, gated=gated)
    y = [0, 2, 1, 0]
    assert enumerate_ll(params.initial_probs, 0.3, np.asarray(B), y, gated) == -np.inf
    for mode in MODES:
        assert log_likelihood(params, y, mode=mode) == -np.inf
        for fn in (smooth, filter):
            with pytest.raises(ValueError, match=r"step 2 \(y\[2\] = 1\)"):
                fn(params, y, mode=mode)
    with pytest.raises(ValueError, match="step 2"):
        posterior_sample(0, params, y)
    lls = batch_log_likelihood(params, np.array([[0, 2, 1, 0], [0, 2, 2, 0]]))
    assert lls[0] == -np.inf
    assert lls[1] == pytest.approx(enumerate_ll(params.initial_probs, 0.3, B, [0, 2, 2, 0], gated))


def test_impossible_under_jit_is_minus_inf_not_nan():
    params = cat_params([[0.5, 0.0, 0.5], [0.3, 0.0, 0.7]])
    for mode in MODES:
        f = jax.jit(lambda y, m=mode: log_likelihood(params, y, mode=m))
        assert f(jnp.array([0, 2, 1, 0])) == -np.inf


# --------------------------------------------------------------------------------------
# Item 4: outliers, against a 60-digit decimal forward-backward


def decimal_smoother(y, means, rho, pi):
    """Smoothed P(s_t | y) and log P(y) of the always-emitting model with 1-D unit-variance
    Gaussian emissions, in 60-digit decimal arithmetic (exponents to 1e17)."""
    with localcontext() as c:
        c.prec, c.Emin, c.Emax = 60, -(10**17), 10**17
        rho = Decimal(rho)
        pi = [Decimal(p) for p in pi]
        K = len(pi)
        e = [[(-((Decimal(v) - Decimal(m)) ** 2) / 2).exp() for m in means] for v in y]
        alphas, alpha, log_p = [], pi, Decimal(0)
        for et in e:
            a = [((1 - rho) * alpha[k] + rho * pi[k]) * et[k] for k in range(K)]
            n = sum(a)
            log_p += n.ln()
            alpha = [x / n for x in a]
            alphas.append(alpha)
        beta = [Decimal(1)] * K
        out = [None] * len(y)
        for t in reversed(range(len(y))):
            post = [alphas[t][k] * beta[k] for k in range(K)]
            n = sum(post)
            out[t] = [float(p / n) for p in post]
            # beta_{t-1}(j) = sum_k P(s_t = k | s_{t-1} = j) e_t(k) beta_t(k)
            w = [e[t][k] * beta[k] for k in range(K)]
            mix = sum(pi[k] * w[k] for k in range(K))
            beta = [(1 - rho) * w[j] + rho * mix for j in range(K)]
            m = max(beta)
            beta = [b / m for b in beta]
        # the unit-variance normal constant, -T log(2 pi) / 2, is left out of log_p
        return np.array(out), log_p


@pytest.mark.parametrize("outlier", [1e3, 1e7, 1e8])
def test_gaussian_outlier_every_mode_matches_decimal_reference(outlier):
    y = np.array([[0.1], [0.9], [outlier], [0.2], [1.1], [-0.3]])
    means, rho, pi = (0.0, 1.0), 0.2, (0.5, 0.5)
    ref_s, _ = decimal_smoother(y[:, 0].tolist(), means, "0.2", ("0.5", "0.5"))
    params = SwitchingParams(
        np.array(pi), rho, GaussianEmission(np.array([[0.0], [1.0]]), np.eye(1))
    )
    for mode in MODES:
        got = smooth(params, y, mode=mode)
        np.testing.assert_allclose(got.smoothed_s, ref_s, atol=1e-12, err_msg=mode)


def test_outlier_gradient_in_rho_matches_decimal_differences():
    y = np.array([[0.1], [0.9], [1e8], [0.2], [1.1]])
    h = Decimal("1e-25")
    with localcontext() as c:
        c.prec = 60
        lo = decimal_smoother(y[:, 0].tolist(), (0, 1), Decimal("0.2") - h, ("0.5", "0.5"))[1]
        hi = decimal_smoother(y[:, 0].tolist(), (0, 1), Decimal("0.2") + h, ("0.5", "0.5"))[1]
        ref = float((hi - lo) / (2 * h))

    def ll(rho, mode):
        em = GaussianEmission(jnp.array([[0.0], [1.0]]), jnp.eye(1))
        return log_likelihood(SwitchingParams(jnp.array([0.5, 0.5]), rho, em), y, mode=mode)

    for mode in MODES:
        assert jax.grad(ll)(0.2, mode) == pytest.approx(ref, rel=1e-10), mode


@pytest.mark.parametrize("gated", [False, True])
def test_float32_cue_outlier_matches_float64(gated):
    """One cue 1e8 cue-sds from both means (1e3 separations): float32 log density -5e15,
    whose float32 spacing is 5e8; each factor is normalized on its own, so every mode keeps
    the posteriors to float32 precision."""

    def make(dtype):
        return SwitchingParams(
            np.array([0.5, 0.5], dtype), np.asarray(0.2, dtype),
            CategoricalEmission(np.array([[0.7, 0.3], [0.2, 0.8]], dtype)),
            GaussianCue(np.array([0.0, 1.0], dtype), np.asarray(1e-3, dtype)), gated=gated,
        )  # fmt: skip

    y = np.array([0, 1, 1, 0, 1])
    u = np.array([0.1, 0.9, 1e5, 0.0, 1.0])
    ref = smooth(make(np.float64), y, u, mode="sequential")
    for mode in MODES:
        got = smooth(make(np.float32), y, u.astype(np.float32), mode=mode)
        np.testing.assert_allclose(got.smoothed_z, ref.smoothed_z, atol=1e-6, err_msg=mode)
        np.testing.assert_allclose(got.smoothed_s, ref.smoothed_s, atol=1e-6, err_msg=mode)


# --------------------------------------------------------------------------------------
# Item 5: finite gradients at the boundary, against one-sided finite differences

H = 1e-7  # one-sided differences of a polynomial: error h * (second derivative), ~1e-6


def _fd(f, x, index, direction):
    x = np.array(x, float)
    step = np.zeros_like(x)
    step[index] = direction * H
    return direction * (f(x + step) - f(x)) / H


Y = [0, 2, 0, 2, 0]


@pytest.mark.parametrize("gated", [False, True])
def test_gradient_with_zero_emission_probabilities(gated):
    B = np.array([[0.5, 0.0, 0.5], [0.3, 0.1, 0.6]])
    B[0] = [0.7, 0.3, 0.0]  # state 0 never emits symbol 2, which y holds
    pi, rho = np.array([0.6, 0.4]), 0.3

    def ref(b):
        return enumerate_ll(pi, rho, b, Y, gated)

    for mode in MODES:
        g = jax.grad(lambda b, m=mode: log_likelihood(cat_params(b, rho, pi, gated), Y, mode=m))(
            jnp.asarray(B)
        )
        assert np.all(np.isfinite(g)), mode
        for index in [(0, 2), (0, 0), (1, 2), (1, 1)]:
            want = _fd(ref, B, index, +1)
            assert g[index] == pytest.approx(want, rel=1e-5, abs=1e-6), (mode, index)


@pytest.mark.parametrize("rho,direction", [(1.0, -1), (0.0, +1)])
def test_gradient_at_rho_boundary(rho, direction):
    B = np.array([[0.5, 0.2, 0.3], [0.3, 0.1, 0.6]])
    pi = np.array([0.6, 0.4])
    want = _fd(lambda r: enumerate_ll(pi, r[0], B, Y), [rho], 0, direction)
    for mode in MODES:
        g = jax.grad(lambda r, m=mode: log_likelihood(cat_params(B, r, pi), Y, mode=m))(rho)
        assert g == pytest.approx(want, rel=1e-5), mode


def test_gradient_with_a_zero_initial_probability():
    """pi = (1, 0): the derivative along the simplex, toward (1 - h, h), one-sided.

    Only directions inside the simplex are compared: off it the recursion (whose normalized
    filter sums to 1) and the path sum (a polynomial in pi) are different extensions of the
    same function, so their gradients differ by a multiple of (1, ..., 1)."""
    B = np.array([[0.5, 0.2, 0.3], [0.3, 0.1, 0.6]])
    pi = np.array([1.0, 0.0])
    d = np.array([-1.0, 1.0])
    want = (enumerate_ll(pi + H * d, 0.3, B, Y) - enumerate_ll(pi, 0.3, B, Y)) / H
    for mode in MODES:
        g = jax.grad(lambda p, m=mode: log_likelihood(cat_params(B, 0.3, p), Y, mode=m))(
            jnp.asarray(pi)
        )
        assert np.all(np.isfinite(g)), mode
        assert float(g @ d) == pytest.approx(want, rel=1e-5), mode


def test_gradient_with_tiny_emission_probabilities():
    """B entries of 1e-300 (representable, their products underflow): every mode's gradient
    is finite and they agree; the sequential mode's is the scaled forward-backward's."""
    B = np.array([[1.0 - 1e-300, 1e-300], [1e-300, 1.0 - 1e-300]])
    y = [0, 1, 1, 0, 1, 0]

    def grad(mode):
        return jax.grad(lambda b: log_likelihood(cat_params(b, 0.3), y, mode=mode))(jnp.asarray(B))

    ref = grad("sequential")
    for mode in ("log", "parallel"):
        g = grad(mode)
        assert np.all(np.isfinite(g)), mode
        np.testing.assert_allclose(g, ref, rtol=1e-9, err_msg=mode)


# Where the probability-space kernel underflows (no switching, and a run of observations
# that leaves one state's filter weight below 1e-308), the sequential gradient falls back to
# the log-space forward-backward. Means (0, 40), unit variance, rho = 0: the first two
# observations put state 1 at exp(-788) (0 in float64), the third gives state 0 evidence
# exp(-720) relative to state 1, so the scaled normalizer is below the smallest normal float.
# (Observations that favour a switch by e^800 would make d log P / d rho overflow instead.)
UNDERFLOW_Y = np.array([[0.3], [-0.2], [38.0], [0.1]])
TINY = np.finfo(np.float64).tiny


def _scaled_normalizers(y, means, rho, pi):
    """The probability-space forward pass in plain NumPy (evidence rescaled per step)."""
    alpha, out = np.asarray(pi, float), []
    for v in y[:, 0]:
        lp = -((v - np.asarray(means)) ** 2) / 2
        e = np.exp(lp - lp.max())
        a = ((1 - rho) * alpha + rho * np.asarray(pi)) * e
        out.append(a.sum())
        alpha = a / a.sum() if a.sum() > 0 else a
    return np.array(out)


def _no_switch_reference(y, means, pi):
    """Closed forms at rho = 0 (unit variance; the normal constant cancels in gradients):
    log P = log sum_k pi_k L_k, d/dm_k = w_k sum_t (y_t - m_k) with w_k the posterior weight
    of state k, and the one-sided d/drho = (sum_t sum_{j,k} pi_j pi_k L_{j..t-1, k t..T}
    - T P) / P, a switch at step t from path j to path k."""
    y = y[:, 0]
    T, means, pi = len(y), np.asarray(means, float), np.asarray(pi, float)
    lp = -((y[None, :] - means[:, None]) ** 2) / 2  # (K, T)
    log_L = lp.sum(1)
    log_P = np.logaddexp.reduce(np.log(pi) + log_L)
    w = np.exp(np.log(pi) + log_L - log_P)
    g_means = w * (y[None, :] - means[:, None]).sum(1)
    head = np.concatenate([np.zeros((len(pi), 1)), np.cumsum(lp, 1)[:, :-1]], 1)  # steps < t
    tail = np.cumsum(lp[:, ::-1], 1)[:, ::-1]  # steps >= t
    switch = [
        np.log(pi[j]) + np.log(pi[k]) + head[j, t] + tail[k, t]
        for t in range(T) for j in range(len(pi)) for k in range(len(pi))
    ]  # fmt: skip
    g_rho = np.exp(np.logaddexp.reduce(switch) - log_P) - T
    return log_P, g_means, g_rho


def test_sequential_gradient_where_the_scaled_kernel_underflows():
    means, pi = (0.0, 40.0), (0.5, 0.5)
    assert np.any(_scaled_normalizers(UNDERFLOW_Y, means, 0.0, pi) < TINY)  # the fallback runs
    log_P, g_means, g_rho = _no_switch_reference(UNDERFLOW_Y, means, pi)

    def ll(m, rho, mode):
        em = GaussianEmission(m[:, None], jnp.eye(1))
        return log_likelihood(SwitchingParams(jnp.asarray(pi), rho, em), UNDERFLOW_Y, mode=mode)

    for mode in MODES:
        value, (gm, gr) = jax.value_and_grad(ll, argnums=(0, 1))(jnp.asarray(means), 0.0, mode)
        # the unit-variance normal constant, -T log(2 pi) / 2, is not in log_P
        assert float(value) + len(UNDERFLOW_Y) * np.log(2 * np.pi) / 2 == pytest.approx(log_P)
        np.testing.assert_allclose(gm, g_means, rtol=1e-10, err_msg=mode)
        assert float(gr) == pytest.approx(g_rho, rel=1e-10), mode
        # no switching: the smoothed state is the posterior weight w_k = g_means_k / sum(y - m_k)
        em = GaussianEmission(jnp.asarray(means)[:, None], jnp.eye(1))
        post = smooth(SwitchingParams(jnp.asarray(pi), 0.0, em), UNDERFLOW_Y, mode=mode)
        w = g_means / (UNDERFLOW_Y[:, 0][None, :] - np.asarray(means)[:, None]).sum(1)
        np.testing.assert_allclose(post.smoothed_s, np.broadcast_to(w, (4, 2)), atol=1e-12)


def test_sequential_gradient_where_the_scaled_kernel_underflows_every_leaf():
    """Every leaf (pi, rho, means, cov, cue), with a cue: the fallback against the log-space
    mode's probability-space derivative, itself checked against the references above."""
    u = np.array([0.1, -0.3, 2.2, 1.7])
    assert np.any(_scaled_normalizers(UNDERFLOW_Y, (0.0, 40.0), 0.0, (0.5, 0.5)) < TINY)

    def grad(mode):
        def ll(pi, rho, m, cov, cue_means):
            params = SwitchingParams(
                pi, rho, GaussianEmission(m, cov), cue=GaussianCue(cue_means, 1.0)
            )
            return log_likelihood(params, UNDERFLOW_Y, u, mode=mode)

        args = (jnp.array([0.5, 0.5]), 0.0, jnp.array([[0.0], [40.0]]), jnp.eye(1),
                jnp.array([0.0, 2.0]))  # fmt: skip
        return jax.grad(ll, argnums=tuple(range(5)))(*args)

    ref = grad("log")
    got = grad("sequential")
    for name, a, b in zip(["pi", "rho", "means", "cov", "cue"], got, ref, strict=True):
        assert np.all(np.isfinite(a)), name
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=name)


def test_gradient_with_an_ill_conditioned_covariance():
    rng = np.random.default_rng(7)
    D, T = 50, 12
    Q, _ = np.linalg.qr(rng.normal(size=(D, D)))
    cov = Q @ np.diag(np.logspace(0, -11, D)) @ Q.T
    cov = (cov + cov.T) / 2
    means = rng.normal(size=(2, D)) * 1e-3
    y = rng.multivariate_normal(np.zeros(D), cov, size=T)

    def grad(mode):
        def ll(m):
            params = SwitchingParams(jnp.array([0.5, 0.5]), 0.2, GaussianEmission(m, cov))
            return log_likelihood(params, y, mode=mode)

        return jax.grad(ll)(jnp.asarray(means))

    ref = grad("sequential")
    assert np.all(np.isfinite(ref))
    for mode in ("log", "parallel"):
        np.testing.assert_allclose(grad(mode), ref, rtol=1e-6, atol=1e-6 * np.abs(ref).max())


# --------------------------------------------------------------------------------------
# Item 8: skipped validation never gives a plausible number


def test_traced_out_of_range_symbols_give_nan():
    params = cat_params([[0.5, 0.2, 0.3], [0.3, 0.1, 0.6]])
    for bad in ([0, 7, 1], [0, -1, 1]):
        for mode in MODES:
            f = jax.jit(lambda y, m=mode: log_likelihood(params, y, mode=m))
            assert np.isnan(f(jnp.array(bad))), (mode, bad)
        assert np.all(np.isnan(jax.jit(lambda y: smooth(params, y).smoothed_s)(jnp.array(bad))))


def test_traced_nan_data_give_nan_results():
    """NaN observations or cues inside jit/vmap (where validation is skipped) come out as NaN
    in every mode, never as a plausible number (docs/numerics.md, "Validation under jit")."""
    em = GaussianEmission(np.array([[0.0], [1.5]]), np.eye(1))
    params = SwitchingParams(np.array([0.4, 0.6]), 0.2, em, GaussianCue(np.array([-0.5, 0.5]), 0.7))
    y = jnp.array([[0.1], [np.nan], [1.2]])
    u = jnp.array([0.3, -0.2, 0.1])
    for mode in MODES:
        f = jax.jit(lambda y, u, m=mode: log_likelihood(params, y, u, mode=m))
        assert np.isnan(f(y, u)), mode
        assert np.isnan(f(jnp.nan_to_num(y), u.at[1].set(np.nan))), mode
    filt = jax.jit(lambda y, u: smooth(params, y, u).filtered_s)
    assert np.all(np.isnan(filt(y, u)[1:]))  # from the NaN step on
    batch = jax.vmap(lambda y: log_likelihood(params, y, u))(jnp.stack([y, jnp.nan_to_num(y)]))
    assert np.isnan(batch[0]) and np.isfinite(batch[1])


def test_eager_log_likelihood_validates():
    params = cat_params([[0.5, 0.2, 0.3], [0.3, 0.1, 0.6]])
    with pytest.raises(ValueError, match="integer symbols"):
        log_likelihood(params, np.array([0.0, 1.5, 1.0]))
    with pytest.raises(ValueError, match="`y`"):
        log_likelihood(params, [0, 3, 1])


def test_float32_values_whose_square_overflows_are_refused():
    f32 = jnp.float32  # jax arrays keep their dtype (NumPy float32 is promoted under x64)
    em = GaussianEmission(jnp.zeros((2, 1), f32), jnp.eye(1, dtype=f32))
    params = SwitchingParams(jnp.array([0.5, 0.5], f32), jnp.array(0.2, f32), em)
    y = np.array([[0.1], [1e20]], np.float32)
    with pytest.raises(ValueError, match="`y` holds values up to 1e\\+20.*float64"):
        smooth(params, y)
    # the same data in float64 is fine: its log density, -5e39, is representable
    p64 = SwitchingParams(np.array([0.5, 0.5]), 0.2, GaussianEmission(np.zeros((2, 1)), np.eye(1)))
    assert np.isfinite(smooth(p64, y.astype(np.float64)).log_likelihood)
