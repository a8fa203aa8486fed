"""Tests for switchssm.scan against a naive NumPy loop, closed forms and autodiff.

Tolerance policy (float64): values and gradients agree to RTOL = 1e-10 relative
(ATOL = 1e-12 for entries near zero); both forms do O(T) well-conditioned
arithmetic on tiny problems, so anything looser would hide a bug. Float32 long
sequences get an error bound derived in the test that uses it.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from switchssm import scan
from switchssm.scan import block_diagonal_scan
from switchssm.scan import default_mode
from switchssm.scan import dense_scan
from switchssm.scan import diagonal_scan
from switchssm.scan import linear_recurrence
from switchssm.scan import log_diagonal_scan

RTOL, ATOL = 1e-10, 1e-12
MODES = ("sequential", "parallel")
KINDS = ("diagonal", "block_diagonal", "dense")
B, T, D = 3, 7, 4  # T odd and not a power of two: exercises associative_scan's odd tail


# ---------------------------------------------------------------------------
# Independent references: plain Python loops over time in NumPy
# ---------------------------------------------------------------------------


def ref_dense(A, b, h0, reverse=False):
    """``h_t = A_t @ h_{t-1} + b_t`` one step at a time; A (..., T, D, D)."""
    A, b = np.asarray(A, np.float64), np.asarray(b, np.float64)
    batch = np.broadcast_shapes(A.shape[:-3], b.shape[:-2], np.shape(h0)[:-1])
    n_t, n_d = b.shape[-2:]
    A = np.broadcast_to(A, batch + (n_t, n_d, n_d))
    b = np.broadcast_to(b, batch + (n_t, n_d))
    h = np.broadcast_to(np.asarray(h0, np.float64), batch + (n_d,))
    out = np.empty(batch + (n_t, n_d))
    steps = range(n_t - 1, -1, -1) if reverse else range(n_t)
    for t in steps:
        h = np.einsum("...ij,...j->...i", A[..., t, :, :], h) + b[..., t, :]
        out[..., t, :] = h
    return out


def ref_diagonal(a, b, h0, reverse=False):
    """``h_t = a_t * h_{t-1} + b_t`` one step at a time (no matrices involved)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    shape = np.broadcast_shapes(a.shape, b.shape)
    a, b = np.broadcast_to(a, shape), np.broadcast_to(b, shape)
    h = np.broadcast_to(np.asarray(h0, np.float64), shape[:-2] + shape[-1:])
    out = np.empty(shape)
    steps = range(shape[-2] - 1, -1, -1) if reverse else range(shape[-2])
    for t in steps:
        h = a[..., t, :] * h + b[..., t, :]
        out[..., t, :] = h
    return out


def blocks_to_dense(blocks):
    """(..., D//2, 2, 2) blocks -> (..., D, D) block-diagonal matrices."""
    blocks = np.asarray(blocks)
    n = blocks.shape[-3]
    dense = np.zeros(blocks.shape[:-3] + (2 * n, 2 * n))
    for i in range(n):
        dense[..., 2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = blocks[..., i, :, :]
    return dense


def ref_dense_grads(A, b, h0, w, reverse=False):
    """Gradients of ``sum(w * h)`` by the adjoint recurrence (no autodiff).

    Forward in time: ``lam_T = w_T``, ``lam_t = w_t + A_{t+1}^T lam_{t+1}``; then
    ``d/db_t = lam_t``, ``d/dA_t = lam_t h_{t-1}^T`` and ``d/dh0 = A_1^T lam_1``.
    ``reverse`` runs on time-flipped inputs and flips the gradients back. All arrays
    are unbatched: A (T, D, D), b and w (T, D), h0 (D,).
    """
    if reverse:
        g_a, g_b, g_h0 = ref_dense_grads(A[::-1], b[::-1], h0, w[::-1])
        return g_a[::-1], g_b[::-1], g_h0
    h = ref_dense(A, b, h0)
    h_prev = np.concatenate([np.asarray(h0)[None], h[:-1]])
    lam = np.empty_like(h)
    lam[-1] = w[-1]
    for t in range(len(b) - 2, -1, -1):
        lam[t] = w[t] + A[t + 1].T @ lam[t + 1]
    return np.einsum("ti,tj->tij", lam, h_prev), lam, A[0].T @ lam[0]


def reference_grads(kind, a, b, h0, w, reverse=False):
    """``ref_dense_grads`` per batch element, mapped back to the parameterization of ``a``."""
    out = []
    for i in range(len(b)):
        A = {
            "diagonal": lambda x: np.einsum("ti,ij->tij", x, np.eye(x.shape[-1])),
            "block_diagonal": blocks_to_dense,
            "dense": lambda x: x,
        }[kind](a[i])
        g_A, g_b, g_h0 = ref_dense_grads(A, b[i], h0[i], w[i], reverse)
        if kind == "diagonal":
            g_a = np.diagonal(g_A, axis1=-2, axis2=-1)
        elif kind == "block_diagonal":
            n = g_A.shape[-1] // 2
            g_a = np.stack([g_A[:, 2 * j : 2 * j + 2, 2 * j : 2 * j + 2] for j in range(n)], 1)
        else:
            g_a = g_A
        out.append((g_a, g_b, g_h0))
    return tuple(np.stack(g) for g in zip(*out, strict=True))


def random_problem(rng, kind, batch=(B,), n_t=T, n_d=D):
    """Stable random transitions (spectral radius < 1) and Gaussian inputs."""
    if kind == "diagonal":
        a = rng.uniform(-0.95, 0.95, batch + (n_t, n_d))
    elif kind == "block_diagonal":
        a = 0.6 * rng.standard_normal(batch + (n_t, n_d // 2, 2, 2))
    else:
        a = 0.8 * rng.standard_normal(batch + (n_t, n_d, n_d)) / np.sqrt(n_d)
    b = rng.standard_normal(batch + (n_t, n_d))
    h0 = rng.standard_normal(batch + (n_d,))
    return a, b, h0


def reference(kind, a, b, h0, reverse=False):
    if kind == "diagonal":
        return ref_diagonal(a, b, h0, reverse)
    if kind == "block_diagonal":
        return ref_dense(blocks_to_dense(a), b, h0, reverse)
    return ref_dense(a, b, h0, reverse)


SCANS = {"diagonal": diagonal_scan, "block_diagonal": block_diagonal_scan, "dense": dense_scan}


# ---------------------------------------------------------------------------
# Linear-space recurrences
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_values_and_gradients_match_references(rng, kind, reverse):
    """Both forms: values equal the naive loop, autodiff equals the hand-derived adjoint.

    One jit per case holds both modes' values and gradients (few compilations).
    Values go through the ``linear_recurrence`` dispatcher.
    """
    a, b, h0 = random_problem(rng, kind)
    w = rng.standard_normal((B, T, D))  # a random linear functional of the states

    @jax.jit
    def run(a, b, h0):
        def loss(mode):
            def f(*args):
                h = linear_recurrence(*args, kind=kind, mode=mode, reverse=reverse)
                return jnp.sum(w * h), h

            return f

        return [jax.grad(loss(m), argnums=(0, 1, 2), has_aux=True)(a, b, h0) for m in MODES]

    expected_h = reference(kind, a, b, h0, reverse)
    expected_g = reference_grads(kind, a, b, h0, w, reverse)
    for mode, (grads, h) in zip(MODES, run(a, b, h0), strict=True):
        assert h.shape == (B, T, D)
        np.testing.assert_allclose(h, expected_h, rtol=RTOL, atol=ATOL, err_msg=mode)
        for name, g, e in zip(("a", "b", "h0"), grads, expected_g, strict=True):
            np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL, err_msg=f"{mode} d/d{name}")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_broadcast_batch_axes(rng, kind, mode):
    """Transitions shared across a (2, 3) batch of inputs; h0 shared too."""
    a, _, _ = random_problem(rng, kind, batch=())
    if kind == "diagonal":
        a = a[..., :1]  # (T, 1): one factor for every unit
    b = rng.standard_normal((2, B, T, D))
    h0 = rng.standard_normal(D)
    got = SCANS[kind](a, b, h0, mode=mode)
    assert got.shape == (2, B, T, D)
    np.testing.assert_allclose(got, reference(kind, a, b, h0), rtol=RTOL, atol=ATOL)


def _diagonal_loop(a, b, h0, reverse=False):
    """``h_t = a_t h_{t-1} + b_t`` as a Python loop of jnp operations (plain autodiff)."""
    a = jnp.broadcast_to(a, b.shape)
    steps = range(b.shape[-2] - 1, -1, -1) if reverse else range(b.shape[-2])
    h, out = h0, {}
    for t in steps:
        h = a[..., t, :] * h + b[..., t, :]
        out[t] = h
    return jnp.stack([out[t] for t in range(b.shape[-2])], axis=-2)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("reverse", [False, True])
def test_diagonal_sequential_derivatives_with_shared_factors(rng, reverse, dtype):
    """The sequential diagonal scan's own derivative rule (a tangent scan, transposed for
    the gradient) against autodiff of a Python loop: a (T, 1) factor shared by every unit
    and a (2, B) batch (its gradient sums over both), reverse and forward mode, complex
    coefficients (JAX's unconjugated transpose)."""

    def draw(*shape):
        x = rng.standard_normal(shape)
        return (x + 1j * rng.standard_normal(shape) if dtype == np.complex128 else x) * 0.7

    a, b, h0 = draw(T, 1), draw(2, B, T, D), draw(2, B, D)
    w = draw(2, B, T, D)

    def loss(fn):
        return lambda a, b, h0: jnp.real(jnp.sum(w * fn(a, b, h0)))

    def scan_fn(a, b, h0):
        return diagonal_scan(a, b, h0, mode="sequential", reverse=reverse)

    def loop_fn(a, b, h0):
        return _diagonal_loop(a, b, h0, reverse)

    got = jax.grad(loss(scan_fn), argnums=(0, 1, 2))(a, b, h0)
    want = jax.grad(loss(loop_fn), argnums=(0, 1, 2))(a, b, h0)
    for name, g, e in zip(("a", "b", "h0"), got, want, strict=True):
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL, err_msg=f"d/d{name}")
    tangents = (draw(T, 1), draw(2, B, T, D), draw(2, B, D))
    _, got_t = jax.jvp(scan_fn, (a, b, h0), tangents)
    _, want_t = jax.jvp(loop_fn, (a, b, h0), tangents)
    np.testing.assert_allclose(got_t, want_t, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_single_step_and_zero_h0(rng, kind, mode):
    """T = 1 works; h0 = None means zeros."""
    a, b, _ = random_problem(rng, kind, batch=(), n_t=1)
    got = SCANS[kind](a, b, None, mode=mode)
    assert got.shape == (1, D)
    np.testing.assert_allclose(got, reference(kind, a, b, np.zeros(D)), rtol=RTOL, atol=ATOL)


def test_jit_and_vmap(rng):
    """vmap over a leading axis equals the loop; parallel form, the one with axis logic."""
    a, b, h0 = random_problem(rng, "dense")
    f = jax.jit(jax.vmap(lambda a, b, h0: dense_scan(a, b, h0, mode="parallel", reverse=True)))
    np.testing.assert_allclose(
        f(a, b, h0), reference("dense", a, b, h0, reverse=True), rtol=RTOL, atol=ATOL
    )


def test_default_mode(monkeypatch, rng):
    assert default_mode() == ("sequential" if jax.default_backend() == "cpu" else "parallel")
    a, b, h0 = random_problem(rng, "diagonal")
    np.testing.assert_allclose(
        diagonal_scan(a, b, h0), diagonal_scan(a, b, h0, mode=default_mode()), rtol=0, atol=0
    )
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert default_mode() == "parallel"
    monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
    assert default_mode() == "sequential"


# ---------------------------------------------------------------------------
# Log space
# ---------------------------------------------------------------------------


def positive_problem(rng, batch=(B,)):
    a = rng.uniform(0.05, 1.3, batch + (T, D))  # some a > 1: growth is fine too
    b = rng.uniform(0.01, 2.0, batch + (T, D))
    h0 = rng.uniform(0.1, 3.0, batch + (D,))
    return a, b, h0


@pytest.mark.parametrize("mode", MODES)
def test_log_scan_broadcast_and_zero_h0(rng, mode):
    """log_a (T, 1) shared by a (2, 3) batch, log_h0 None (h0 = 0): log of the naive loop."""
    a, b, _ = positive_problem(rng, batch=(2, B))
    a1 = a[0, 0, :, :1]
    got = log_diagonal_scan(np.log(a1), np.log(b), None, mode=mode)
    assert got.shape == (2, B, T, D)
    np.testing.assert_allclose(got, np.log(ref_diagonal(a1, b, np.zeros(D))), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("reverse", [False, True])
def test_log_scan_gradients_and_zeros(rng, reverse):
    """Both log forms differentiate like log(linear scan); b = 0 (-inf) gives no NaN.

    Batch element 3 is all positive; 0-2 hold zeros: b_t = 0 at the first step and
    mid-sequence, h_0 = 0 (so log h_1 = -inf), a reset a_t = 0, and a unit that is
    never driven (h = 0 forever).
    """
    a, b, h0 = positive_problem(rng, batch=(4,))
    la, lb, lh0 = np.log(a), np.log(b), np.log(h0)
    lb[0, [-1 if reverse else 0, 3], :] = -np.inf
    lh0[0, :2] = -np.inf
    la[1, 2, 1] = -np.inf
    lb[2, :, 3] = -np.inf
    lh0[2, 3] = -np.inf
    with np.errstate(divide="ignore"):
        ref = np.log(ref_diagonal(np.exp(la), np.exp(lb), np.exp(lh0), reverse))
    mask = np.isfinite(ref)  # the loss skips log h = -inf, where no gradient exists
    assert not mask[0].all() and not mask[2].all() and mask[3].all()
    w = rng.standard_normal(ref.shape)

    def via_log(mode):
        def loss(la, lb, lh0):
            lh = log_diagonal_scan(la, lb, lh0, mode=mode, reverse=reverse)
            return jnp.sum(jnp.where(mask, w * jnp.where(mask, lh, 0.0), 0.0)), lh

        return loss

    def via_linear(la, lb, lh0):
        # Independent path: exponentiate, run the linear scan, take logs (double
        # where so that log(0) at masked entries never enters the gradient).
        h = diagonal_scan(
            jnp.exp(la), jnp.exp(lb), jnp.exp(lh0), mode="sequential", reverse=reverse
        )
        return jnp.sum(jnp.where(mask, w * jnp.log(jnp.where(mask, h, 1.0)), 0.0))

    @jax.jit
    def run(la, lb, lh0):
        grad = lambda f, **kw: jax.grad(f, argnums=(0, 1, 2), **kw)(la, lb, lh0)
        return [grad(via_log(m), has_aux=True) for m in MODES], grad(via_linear)

    per_mode, g_lin = run(la, lb, lh0)
    for mode, (g_log, lh) in zip(MODES, per_mode, strict=True):
        assert not np.any(np.isnan(lh)), mode
        np.testing.assert_allclose(lh, ref, rtol=RTOL, atol=ATOL, err_msg=mode)
        for name, g, gl in zip(("log_a", "log_b", "log_h0"), g_log, g_lin, strict=True):
            assert np.all(np.isfinite(g)), (mode, name)
            np.testing.assert_allclose(g, gl, rtol=RTOL, atol=ATOL, err_msg=f"{mode} {name}")


def _geometric_log_closed_form(log_a, log_b, log_h0, n_t):
    """log h_t for constant a, b: h_t = b (1 - a^t) / (1 - a) + a^t h0, in float64."""
    t = np.arange(1, n_t + 1, dtype=np.float64)[:, None]
    with np.errstate(divide="ignore"):
        geometric = np.log(-np.expm1(t * log_a)) - np.log(-np.expm1(log_a))  # a < 1
        return np.logaddexp(log_b + geometric, t * log_a + log_h0)


@pytest.mark.parametrize(
    "dtype, mode, n_t",
    [
        (np.float64, "sequential", 10**6),
        (np.float32, "sequential", 10**6),
        # Compiling the associative scan at T = 10^6 takes ~8 s on 2 cores (it passes,
        # max error 0.2 u |log h| per tree level); 2^12 + 1 steps (13 levels, odd
        # length) test the same bound and keep the suite fast.
        (np.float32, "parallel", 2**12 + 1),
    ],
)
def test_log_scan_long_sequence_matches_closed_form(dtype, mode, n_t):
    """Constant gates over up to T = 10^6 steps: finite, and equal to the geometric series.

    Unit 0: a = 0.999 (slow forgetting, h -> 500) from h0 = 3. Unit 1: a = 0.9 and
    b = e^-200, which underflows float32 in linear space, from h0 = 0.
    """
    log_a = np.log(np.array([0.999, 0.9])).astype(dtype)
    log_b = np.array([np.log(0.5), -200.0], dtype)
    log_h0 = np.array([np.log(3.0), -np.inf], dtype)
    lh = log_diagonal_scan(
        np.broadcast_to(log_a, (n_t, 2)), np.broadcast_to(log_b, (n_t, 2)), log_h0, mode=mode
    )
    assert lh.dtype == dtype and lh.shape == (n_t, 2)
    lh = np.asarray(lh, np.float64)
    assert np.all(np.isfinite(lh))
    # The closed form uses the inputs as rounded to `dtype`, so only scan error is measured.
    ref = _geometric_log_closed_form(*(x.astype(np.float64) for x in (log_a, log_b, log_h0)), n_t)
    # Error bounds in units of u |log h| (u = unit roundoff of `dtype`), measured
    # constants in brackets; the bounds leave 5x or more. Sequential: near the fixed
    # point each step repeats the same rounding and the recurrence keeps a fraction
    # a of past error, so errors add up to ~ u |log h| / (1 - a) [0.4 in float32,
    # 1.0 in float64]. Parallel: the tree combines neighbours only, so error grows
    # like log2(T) instead [0.35 log2 T].
    u = np.finfo(dtype).eps / 2
    scale = u * np.maximum(1.0, np.abs(ref))
    if mode == "sequential":
        tol = 10 * scale / (1 - np.exp(log_a.astype(np.float64)))
    else:
        tol = 2 * scale * np.log2(n_t)
    err = np.abs(lh - ref)
    assert np.all(err <= tol), f"max error {err.max(axis=0)}, tolerance {tol.min(axis=0)}"


# ---------------------------------------------------------------------------
# The log-space scan's custom VJP and the linear-space positive scan
# ---------------------------------------------------------------------------


def _plain_log_scan(log_a, log_b, log_h0, mode, reverse):
    """The log-space scan differentiated by JAX step by step (no custom VJP)."""
    # Same broadcasting as log_diagonal_scan (log_a keeps its size-1 batch axes).
    log_b = jnp.broadcast_to(log_b, np.broadcast_shapes(log_a.shape, log_b.shape))
    return scan._affine_scan(
        log_a,
        log_b,
        jnp.broadcast_to(log_h0, log_b.shape[:-2] + log_b.shape[-1:]),
        ops="log",
        t_axis=log_b.ndim - 2,
        parallel=mode == "parallel",
        reverse=reverse,
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("reverse", [False, True])
def test_log_scan_vjp_matches_autodiff_and_finite_differences(rng, mode, reverse):
    """The adjoint-recurrence VJP against JAX autodiff of the plain scan and central
    differences, float64; log_a (1, T, D) broadcast over a batch of 3 (its gradient
    is summed over the batch), cotangents of both signs."""
    a, b, h0 = positive_problem(rng)
    la = np.log(a[:1])
    lb, lh0 = np.log(b), np.log(h0)
    w = rng.standard_normal(b.shape)

    def loss(f):
        return lambda la, lb, lh0: jnp.sum(w * f(la, lb, lh0))

    custom = loss(lambda *args: scan._log_scan(*args, 1, mode == "parallel", reverse))
    plain = loss(lambda *args: _plain_log_scan(*args, mode, reverse))
    grad = lambda f: jax.jit(jax.grad(f, argnums=(0, 1, 2)))(la, lb, lh0)  # noqa: E731
    g_custom, g_plain = grad(custom), grad(plain)
    for gc, gp in zip(g_custom, g_plain, strict=True):
        assert gc.shape == gp.shape
        np.testing.assert_allclose(gc, gp, rtol=RTOL, atol=ATOL)
    # Central differences on a few entries of each argument (float64: error ~ eps^2).
    f = jax.jit(custom)
    eps = 1e-6
    for i, arg in enumerate((la, lb, lh0)):
        for idx in [(0,) * arg.ndim, tuple(n - 1 for n in arg.shape)]:
            args = [la, lb, lh0]
            up, down = arg.copy(), arg.copy()
            up[idx] += eps
            down[idx] -= eps
            fd = (f(*args[:i], up, *args[i + 1 :]) - f(*args[:i], down, *args[i + 1 :])) / (2 * eps)
            np.testing.assert_allclose(g_custom[i][idx], fd, rtol=1e-7, atol=1e-9)


def test_positive_scan_takes_the_linear_form_unless_it_cannot(rng):
    """The branch choice, seen through a log-space input that differs on purpose.

    ``log_inputs`` returns log b + 1 (i.e. e * b): its result differs from the linear
    one, so the output shows which branch ran. Normal states: linear (log of the
    naive loop). A state that underflows (a <= 0.9, b = e^-800 in float64, from
    h0 = 0) or overflows (a = 3, b >= 0.01 e^708: h_7 >= 7.29 e^708 > e^709.8, the
    largest float64): the log-space branch, exactly.
    """
    from switchssm.scan import positive_diagonal_scan

    a, b, h0 = positive_problem(rng)
    logs = lambda b: lambda: (np.log(a), np.log(b) + 1.0, np.log(h0))  # noqa: E731
    got = positive_diagonal_scan(a, b, h0, logs(b))
    np.testing.assert_allclose(got, np.log(ref_diagonal(a, b, h0)), rtol=RTOL, atol=ATOL)
    h = positive_diagonal_scan(a, b, h0, logs(b), log_output=False)
    np.testing.assert_allclose(h, ref_diagonal(a, b, h0), rtol=RTOL, atol=ATOL)
    for shift, a2 in ((-800.0, np.minimum(a, 0.9)), (708.0, np.full_like(a, 3.0))):
        lb = np.log(b) + shift
        want = log_diagonal_scan(np.log(a2), lb + 1.0, None, mode="parallel")
        got = positive_diagonal_scan(
            a2, np.exp(lb), None, lambda a2=a2, lb=lb: (np.log(a2), lb + 1.0, None)
        )
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


# ---------------------------------------------------------------------------
# Argument checking
# ---------------------------------------------------------------------------

ones = np.ones
BAD_CALLS = [
    (lambda: diagonal_scan(ones((5, 3)), ones((4, 3))), r"`a` must have shape \(\.\.\., 4, D\)"),
    (lambda: diagonal_scan(ones(3), ones(3)), r"`b` must have shape \(\.\.\., T, D\)"),
    (lambda: diagonal_scan(ones((5, 3)), ones((5, 3)), ones(2)), "`h0`"),
    (lambda: diagonal_scan(ones((2, 5, 3)), ones((3, 5, 3))), "do not broadcast.*`a`"),
    (lambda: diagonal_scan(ones((0, 3)), ones((0, 3))), "`b` is empty"),
    (lambda: dense_scan(ones((5, 3, 2)), ones((5, 3))), r"`a` must have shape \(\.\.\., 5, 3, 3\)"),
    (
        lambda: dense_scan(ones((5, 3, 3)), ones((5, 3)), ones(2)),
        r"`h0` must have shape \(\.\.\., 3\)",
    ),
    (lambda: block_diagonal_scan(ones((5, 1, 2, 2)), ones((5, 3))), "`b` must have an even"),
    (
        lambda: block_diagonal_scan(ones((5, 2, 2, 2)), ones((5, 2))),
        r"`a` must have shape \(\.\.\., 5, 1, 2, 2\)",
    ),
    (lambda: diagonal_scan(ones((5, 3)), ones((5, 3)), mode="fast"), "`mode` must be one of"),
    (lambda: dense_scan(ones((5, 3, 3)), ones((5, 3)), reverse="yes"), "`reverse`"),
    (lambda: linear_recurrence(ones((5, 3)), ones((5, 3)), kind="sparse"), "`kind` must be one of"),
    (lambda: log_diagonal_scan(ones((5, 3)), ones((4, 3))), "`log_a` must have shape"),
    (lambda: log_diagonal_scan(ones((5, 3)), ones((5, 3)), ones(2)), "`log_h0`"),
    (lambda: scan.positive_diagonal_scan(ones((5, 3)), ones((5, 3)), None, 0), "`log_inputs`"),
    (
        lambda: scan.positive_diagonal_scan(ones((5, 3)), ones((4, 3)), None, lambda: None),
        "`a` must have shape",
    ),
    # Under jit the shapes are still static, so the same checks fire.
    (lambda: jax.jit(diagonal_scan)(ones((5, 3)), ones((4, 3))), "`a` must have shape"),
]


@pytest.mark.parametrize("call, match", BAD_CALLS)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_module_exports():
    assert set(scan.__all__) == {
        "diagonal_scan",
        "block_diagonal_scan",
        "dense_scan",
        "log_diagonal_scan",
        "positive_diagonal_scan",
        "linear_recurrence",
        "default_mode",
        "resolve_mode",
    }


def test_resolve_mode_is_the_one_default():
    """Every ``mode=None`` in the package resolves here: the backend's default."""
    assert scan.resolve_mode(None) == scan.default_mode()
    assert scan.resolve_mode("log", ("sequential", "parallel", "log")) == "log"
    with pytest.raises(ValueError, match="`mode` must be one of"):
        scan.resolve_mode("log")
    with pytest.raises(ValueError, match="`mode`"):
        scan.resolve_mode(0)
