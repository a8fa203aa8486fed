"""Linear recurrences ``h_t = A_t h_{t-1} + b_t``, sequential and parallel.

Three shapes of transition ``A_t``:

- :func:`diagonal_scan`: elementwise ``h_t = a_t * h_{t-1} + b_t`` (minGRU, Mamba);
- :func:`block_diagonal_scan`: 2x2 blocks acting on pairs ``(h_{2i}, h_{2i+1})``
  (rotations, complex diagonals written as real pairs);
- :func:`dense_scan`: full ``(D, D)`` matrices (Kalman-style information recursions);

plus :func:`log_diagonal_scan`, the positive-state diagonal recurrence computed in
log space (``log h_t = logaddexp(log a_t + log h_{t-1}, log b_t)``), which stays
finite where ``h`` would overflow or underflow, and :func:`positive_diagonal_scan`,
the same recurrence run sequentially in linear space (a multiply-add per step) with
the log-space scan as fallback where a state leaves the normal float range; the
sequential form of :func:`log_diagonal_scan` is that. :func:`linear_recurrence`
dispatches on ``kind``.

The log-space scan has a custom VJP: the adjoint of a positive linear recurrence is
a positive-coefficient recurrence run backwards, computed by the same log-space
scan (cotangents split by sign) instead of differentiating every ``logaddexp``.

Each comes in two forms, chosen by ``mode``:

- ``"sequential"``: one :func:`jax.lax.scan` step per time step, ``O(T)`` work and
  depth. On CPU this is the fast path: measured at 1.2-2.4x a fused elementwise
  floor, against 2.7-16x (and 10-20x longer compilation) for the parallel form
  (``docs/numerics.md``).
- ``"parallel"``: :func:`jax.lax.associative_scan` over the affine maps
  ``h -> A h + b``, composed with the associative operator
  ``(A, b) . (A', b') = (A' A, A' b + b')`` (``(a a', a' b + b')`` for diagonals),
  ``O(log T)`` depth and ``O(T)`` operator applications (``O(T D)`` work for diagonals,
  ``O(T D^3)`` for dense matrices). It pays on accelerators (GPU/TPU).

``mode=None`` picks :func:`default_mode`: sequential on CPU, parallel elsewhere.
Both forms are plain JAX, so ``jit``, ``grad`` and ``vmap`` go through them, and
both support ``reverse=True`` (``h_t = A_t h_{t+1} + b_t``, for smoothing passes).
``unroll`` is deliberately not used: it measured 3-5x slower on CPU.

The log-space form never builds cumulative sums of ``log a`` (the minGRU
``cumsum`` + ``logcumsumexp`` formulation loses accuracy in float32 as ``T`` grows:
8.8e-2 relative error at ``T = 10^6``); both of its forms combine only neighbouring
terms, with a ``logaddexp`` that keeps ``-inf`` (``b_t = 0``) free of NaN in values
and gradients.

Shapes: time is axis ``-2`` of ``b`` (``(..., T, D)``); any leading axes are batch
axes and broadcast between ``a``, ``b`` and ``h0``. Shapes are checked statically
(also under ``jit``) and a mismatch raises ``ValueError`` naming the argument.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from switchssm.types import Array
from switchssm.types import ArrayLike
from switchssm.types import Float

__all__ = [
    "block_diagonal_scan",
    "default_mode",
    "dense_scan",
    "diagonal_scan",
    "linear_recurrence",
    "log_diagonal_scan",
    "positive_diagonal_scan",
    "resolve_mode",
]

MODES = ("sequential", "parallel")
KINDS = ("diagonal", "block_diagonal", "dense")


def default_mode() -> str:
    """The scan form that is fastest on the default JAX backend.

    ``"sequential"`` on CPU (where :func:`jax.lax.scan` beats
    :func:`jax.lax.associative_scan`), ``"parallel"`` on GPU/TPU.

    Returns:
        ``"sequential"`` or ``"parallel"``.

    Example:
        >>> default_mode() in ("sequential", "parallel")
        True
    """
    return "sequential" if jax.default_backend() == "cpu" else "parallel"


# ---------------------------------------------------------------------------
# Validation (static shape information only, so it also runs under jit)
# ---------------------------------------------------------------------------


def resolve_mode(mode: str | None, choices: tuple[str, ...] = MODES) -> str:
    """Validate a ``mode=`` argument; ``None`` picks :func:`default_mode`.

    Every function of the package that takes ``mode=`` resolves it here, so the default
    is the same everywhere: ``"sequential"`` on CPU, ``"parallel"`` on accelerators.

    Args:
        mode: ``None`` or one of ``choices``.
        choices: the modes the caller supports (``("sequential", "parallel")``; exact
            inference adds ``"log"``).

    Returns:
        The mode to run.

    Example:
        >>> resolve_mode("parallel")
        'parallel'
    """
    if mode is None:
        return default_mode()
    if not isinstance(mode, str) or mode not in choices:
        raise ValueError(f"`mode` must be one of {tuple(choices)} or None, got {mode!r}")
    return mode


def _check_reverse(reverse) -> bool:
    # A static flag: it selects the compiled program, so it cannot be a traced value.
    if not isinstance(reverse, bool | np.bool_):
        raise ValueError(f"`reverse` must be a bool, got {reverse!r}")
    return bool(reverse)


def _fail(name: str, expected: str, x) -> None:
    raise ValueError(f"`{name}` must have shape {expected}, got {tuple(jnp.shape(x))}")


def _broadcast(names_shapes, expected: str) -> tuple:
    """Broadcast shapes, raising ValueError naming every argument involved."""
    try:
        return tuple(jnp.broadcast_shapes(*[s for _, s in names_shapes]))
    except ValueError:
        desc = ", ".join(f"`{n}` {tuple(s)}" for n, s in names_shapes)
        raise ValueError(
            f"batch axes do not broadcast: {desc}; expected shapes {expected}"
        ) from None


def _dtype(*xs):
    # A Python float is weakly typed: float32 inputs stay float32, integers become
    # the default float.
    return jnp.result_type(*[x for x in xs if x is not None], 1.0)


def _align(x, ndim: int):
    """Prepend size-1 axes so that ``x`` has ``ndim`` axes (broadcast-ready, no copy)."""
    return jnp.reshape(x, (1,) * (ndim - x.ndim) + x.shape)


def _prepare_diagonal(a, b, h0, names):
    """Check and align diagonal inputs: returns a, b, h0 with one batch layout."""
    na, nb, nh = names
    expected = f"`{na}` (..., T, D) or (..., T, 1), `{nb}` (..., T, D), `{nh}` (..., D)"
    a, b = jnp.asarray(a), jnp.asarray(b)
    if b.ndim < 2:
        _fail(nb, "(..., T, D)", b)
    T = b.shape[-2]
    if T < 1:
        raise ValueError(f"`{nb}` is empty: a sequence needs at least one time step")
    if a.ndim < 2 or a.shape[-2] != T:
        _fail(na, f"(..., {T}, D) (T = {T} from `{nb}`)", a)
    pairs = [(na, a.shape), (nb, b.shape)]
    if h0 is not None:
        h0 = jnp.asarray(h0)
        if h0.ndim < 1:
            _fail(nh, "(..., D)", h0)
        pairs.append((nh, h0.shape[:-1] + (1,) + h0.shape[-1:]))
    out_shape = _broadcast(pairs, expected)
    return a, b, h0, out_shape


def _prepare_matrix(a, b, h0, names, block: bool):
    """Check dense or 2x2-block inputs; returns a, b, h0 and the output shape."""
    na, nb, nh = names
    a, b = jnp.asarray(a), jnp.asarray(b)
    if b.ndim < 2:
        _fail(nb, "(..., T, D)", b)
    T, D = b.shape[-2:]
    if T < 1:
        raise ValueError(f"`{nb}` is empty: a sequence needs at least one time step")
    if block:
        if D % 2:
            raise ValueError(
                f"`{nb}` must have an even last axis D (pairs of units), got shape {b.shape}"
            )
        tail = (T, D // 2, 2, 2)
    else:
        tail = (T, D, D)
    tail_str = "(..., " + ", ".join(map(str, tail)) + ")"
    if a.ndim < len(tail) or a.shape[-len(tail) :] != tail:
        _fail(na, f"{tail_str} (T = {T}, D = {D} from `{nb}`)", a)
    pairs = [(na, a.shape[: -len(tail)]), (nb, b.shape[:-2])]
    if h0 is not None:
        h0 = jnp.asarray(h0)
        if h0.ndim < 1 or h0.shape[-1] != D:
            _fail(nh, f"(..., {D}) (D from `{nb}`)", h0)
        pairs.append((nh, h0.shape[:-1]))
    expected = f"`{na}` {tail_str}, `{nb}` (..., {T}, {D}), `{nh}` (..., {D})"
    batch = _broadcast(pairs, expected)
    return a, b, h0, batch + (T, D)


# ---------------------------------------------------------------------------
# The shared core: an affine recurrence given its three operations
# ---------------------------------------------------------------------------


def _diag_apply(a, h):
    return a * h


def _diag_compose(first, second):
    return first * second


def _mat_apply(a, h):
    return jnp.matmul(a, h[..., None])[..., 0]


def _mat_compose(first, second):
    # Apply `first`, then `second`: h -> second @ (first @ h).
    return jnp.matmul(second, first)


def _logaddexp(x, y):
    """``log(exp(x) + exp(y))`` with zero (not NaN) gradient where both are ``-inf``.

    :func:`jnp.logaddexp` returns the right value at ``(-inf, -inf)`` but its
    gradient there is NaN. The double ``where`` keeps the differentiated branch
    finite; with one argument ``-inf`` the ``exp`` term and its gradient are 0.
    """
    m = jnp.maximum(x, y)
    ok = jnp.isfinite(m)
    xs = jnp.where(ok, x, 0.0)
    ys = jnp.where(ok, y, 0.0)
    out = jnp.maximum(xs, ys) + jnp.log1p(jnp.exp(-jnp.abs(xs - ys)))
    return jnp.where(ok, out, lax.stop_gradient(m))


_OPS = {
    # name: (apply A to h, compose two A's, add b)
    "diagonal": (_diag_apply, _diag_compose, jnp.add),
    "matrix": (_mat_apply, _mat_compose, jnp.add),
    "log": (jnp.add, jnp.add, _logaddexp),
}


@partial(jax.jit, static_argnames=("ops", "t_axis", "parallel", "reverse"))
def _affine_scan(a, b, h0, *, ops: str, t_axis: int, parallel: bool, reverse: bool):
    """``h_t = add(apply(a_t, h_{t-1}), b_t)`` along ``t_axis`` of ``a`` and ``b``.

    ``b`` has the full output shape; ``a`` has as many axes as its full shape but
    may have size 1 on batch axes; ``h0`` is ``b`` without the time axis.
    """
    apply, compose, add = _OPS[ops]
    if not parallel:
        a_t = jnp.moveaxis(a, t_axis, 0)
        b_t = jnp.moveaxis(b, t_axis, 0)

        def step(h, ab):
            h = add(apply(ab[0], h), ab[1])
            return h, h

        _, hs = lax.scan(step, h0, (a_t, b_t), reverse=reverse)
        return jnp.moveaxis(hs, 0, t_axis)

    # Fold h0 into the first element applied (b_1, or b_T when reversed).
    first = (slice(None),) * t_axis + (-1 if reverse else 0,)
    b = b.at[first].set(add(apply(a[first], h0), b[first]))

    def combine(x, y):
        # x is applied first, then y (associative_scan reverses the inputs itself
        # when reverse=True, so the same operator serves both directions).
        return compose(x[0], y[0]), add(apply(y[0], x[1]), y[1])

    _, hs = lax.associative_scan(combine, (a, b), reverse=reverse, axis=t_axis)
    return hs


def _shift_in(x, first, t_axis: int, reverse: bool):
    """``x`` moved one step along the recursion (``x_{t-1}``), ``first`` entering at step 1.

    ``first`` has ``x``'s shape without the time axis; with ``reverse=True`` the
    recursion runs from ``T`` down, so the result is ``x_{t+1}`` with ``first`` at ``T``.
    """
    first = jnp.expand_dims(first, t_axis)
    n = x.shape[t_axis]
    if reverse:
        return jnp.concatenate([lax.slice_in_dim(x, 1, n, axis=t_axis), first], axis=t_axis)
    return jnp.concatenate([first, lax.slice_in_dim(x, 0, n - 1, axis=t_axis)], axis=t_axis)


@partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5))
def _log_scan(log_a, log_b, log_h0, t_axis: int, parallel: bool, reverse: bool):
    """The log-space scan (``ops="log"``) with the adjoint recurrence as its VJP.

    Autodiff of the scan would differentiate every ``logaddexp`` (and, for the parallel
    form, every level of the tree). The adjoint of ``h_t = a_t h_{t-1} + b_t`` is
    another positive-coefficient recurrence run the other way,
    ``lam_t = g_t / h_t + a_{t+1} lam_{t+1}`` for the cotangent ``g`` of ``log h``;
    it is computed here with the same log-space scan, splitting ``g`` by sign
    (``lam = lam+ - lam-``, each a positive recurrence), and the gradients follow
    elementwise: ``d log b_t = b_t lam_t``, ``d log a_t = a_t h_{t-1} lam_t``,
    ``d log h0 = a_1 h_0 lam_1``. Each is bounded by ``sum |g|``, so its ``exp`` stays
    finite where ``h`` itself would not be.
    """
    return _affine_scan(
        log_a, log_b, log_h0, ops="log", t_axis=t_axis, parallel=parallel, reverse=reverse
    )


def _log_scan_fwd(log_a, log_b, log_h0, t_axis, parallel, reverse):
    log_h = _log_scan(log_a, log_b, log_h0, t_axis, parallel, reverse)
    return log_h, (log_a, log_b, log_h0, log_h)


def _log_scan_bwd(t_axis, parallel, reverse, res, g):
    log_a, log_b, log_h0, log_h = res
    dtype = log_h.dtype
    neg_inf = jnp.asarray(-jnp.inf, dtype)
    # Inputs of the adjoint recurrence, log(|g_t| / h_t) for each sign; where h_t = 0
    # (log h_t = -inf) nothing reaches h_t, so no gradient flows through it.
    finite = log_h > -jnp.inf
    log_h_safe = jnp.where(finite, log_h, 0.0)

    def log_part(x):
        pos = x > 0
        return jnp.where(pos & finite, jnp.log(jnp.where(pos, x, 1.0)) - log_h_safe, neg_inf)

    u = jnp.stack([log_part(g), log_part(-g)])
    # Its decay at step t is a_{t+1} (a_{t-1} reversed); the value past the end is unused.
    edge = jnp.zeros(log_a.shape[:t_axis] + log_a.shape[t_axis + 1 :], dtype)
    log_a_next = _shift_in(log_a, edge, t_axis, not reverse)
    lam0 = jnp.full(u.shape[: t_axis + 1] + u.shape[t_axis + 2 :], -jnp.inf, dtype)
    log_lam = _affine_scan(
        log_a_next[None],
        u,
        lam0,
        ops="log",
        t_axis=t_axis + 1,
        parallel=parallel,
        reverse=not reverse,
    )

    def signed(log_weight):
        # log_weight + log lam+- <= log sum |g|: the exponentials cannot overflow.
        return jnp.exp(log_weight + log_lam[0]) - jnp.exp(log_weight + log_lam[1])

    d_log_b = signed(log_b)
    d_log_a = signed(log_a + _shift_in(log_h, log_h0, t_axis, reverse))
    first = -1 if reverse else 0
    d_log_h0 = lax.index_in_dim(d_log_a, first, axis=t_axis, keepdims=False)
    # log_a may have size-1 (broadcast) batch axes: sum its gradient over them.
    axes = tuple(
        i for i, (n, m) in enumerate(zip(log_a.shape, d_log_a.shape, strict=True)) if n != m
    )
    if axes:
        d_log_a = jnp.sum(d_log_a, axis=axes, keepdims=True)
    return d_log_a, d_log_b, d_log_h0


_log_scan.defvjp(_log_scan_fwd, _log_scan_bwd)


@partial(jax.custom_jvp, nondiff_argnums=(3, 4))
def _diagonal_sequential(a, b, h0, t_axis: int, reverse: bool):
    """The sequential diagonal scan with its tangent as another diagonal scan.

    The tangent of ``h_t = a_t h_{t-1} + b_t`` is ``dh_t = a_t dh_{t-1} + u_t`` with
    ``u_t = da_t h_{t-1} + db_t`` computed for all steps at once, and its transpose (the
    gradient) is the adjoint scan ``lam_t = g_t + a_{t+1} lam_{t+1}`` run the other way. Left
    to autodiff, the reverse pass of the scan carries every residual through one loop body,
    which XLA:CPU runs operation by operation once it touches more than about 1 kB per step
    (``docs/numerics.md``); these two scans each touch two arrays and a carry.
    """
    return _affine_scan(a, b, h0, ops="diagonal", t_axis=t_axis, parallel=False, reverse=reverse)


@_diagonal_sequential.defjvp
def _diagonal_sequential_jvp(t_axis, reverse, primals, tangents):
    a, b, h0 = primals
    da, db, dh0 = tangents
    h = _diagonal_sequential(a, b, h0, t_axis, reverse)
    u = da * _shift_in(h, h0, t_axis, reverse) + db
    return h, _diagonal_sequential(a, u, dh0, t_axis, reverse)


def _linear_or_log(a, b, h0, log_inputs, log_output: bool, reverse: bool):
    """Sequential ``h_t = a_t h_{t-1} + b_t`` in linear space, else in log space.

    ``log_inputs()`` returns ``(log_a, log_b, log_h0)`` aligned like ``(a, b, h0)``; it
    is called (and the sequential log-space scan run) inside the ``lax.cond`` branch
    that is taken only when some linear state is not a normal positive float
    (underflow, a true zero or overflow), so the log form costs nothing otherwise.
    """
    t_axis = b.ndim - 2
    h = _affine_scan(a, b, h0, ops="diagonal", t_axis=t_axis, parallel=False, reverse=reverse)
    finfo = jnp.finfo(h.dtype)
    ok = jnp.all((h >= finfo.tiny) & (h <= finfo.max))

    def linear(h):
        return jnp.log(h) if log_output else h

    def log_space(h):
        log_h = _log_scan(*log_inputs(), t_axis, False, reverse)
        return log_h if log_output else jnp.exp(log_h)

    return lax.cond(ok, linear, log_space, h)


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def diagonal_scan(
    a: Float[Array, "*batch T D"] | ArrayLike,
    b: Float[Array, "*batch T D"] | ArrayLike,
    h0: Float[Array, "*batch D"] | ArrayLike | None = None,
    *,
    mode: str | None = None,
    reverse: bool = False,
) -> Float[Array, "*batch T D"]:
    """Elementwise linear recurrence ``h_t = a_t * h_{t-1} + b_t``.

    For ``t = 1..T`` with ``h_0 = h0`` (or, with ``reverse=True``,
    ``h_t = a_t * h_{t+1} + b_t`` for ``t = T..1`` with ``h_{T+1} = h0``).

    Args:
        a: ``(..., T, D)`` decay factors; may broadcast against ``b`` (e.g.
            ``(..., T, 1)`` shares one factor across units, or no batch axes).
        b: ``(..., T, D)`` inputs.
        h0: ``(..., D)`` initial state; ``None`` means zeros.
        mode: ``"sequential"`` (:func:`jax.lax.scan`), ``"parallel"``
            (:func:`jax.lax.associative_scan`) or ``None`` for :func:`default_mode`.
        reverse: run the recurrence backwards in time.

    Returns:
        ``(..., T, D)`` states ``h_1..h_T`` in the original time order.

    Example:
        >>> import jax.numpy as jnp
        >>> h = diagonal_scan(jnp.full((3, 1), 0.5), jnp.ones((3, 1)), jnp.zeros(1))
        >>> h[:, 0].tolist()
        [1.0, 1.5, 1.75]
    """
    parallel = resolve_mode(mode) == "parallel"
    reverse = _check_reverse(reverse)
    a, b, h0, out_shape = _prepare_diagonal(a, b, h0, ("a", "b", "h0"))
    dtype = _dtype(a, b, h0)
    a = _align(a.astype(dtype), len(out_shape))
    b = jnp.broadcast_to(b.astype(dtype), out_shape)
    state_shape = out_shape[:-2] + out_shape[-1:]
    if h0 is None:
        h0 = jnp.zeros(state_shape, dtype)
    else:
        h0 = jnp.broadcast_to(h0.astype(dtype), state_shape)
    t_axis = len(out_shape) - 2
    if not parallel:
        return _diagonal_sequential(a, b, h0, t_axis, reverse)
    return _affine_scan(a, b, h0, ops="diagonal", t_axis=t_axis, parallel=True, reverse=reverse)


def log_diagonal_scan(
    log_a: Float[Array, "*batch T D"] | ArrayLike,
    log_b: Float[Array, "*batch T D"] | ArrayLike,
    log_h0: Float[Array, "*batch D"] | ArrayLike | None = None,
    *,
    mode: str | None = None,
    reverse: bool = False,
) -> Float[Array, "*batch T D"]:
    """Positive-state diagonal recurrence in log space.

    ``log h_t = logaddexp(log a_t + log h_{t-1}, log b_t)``, i.e.
    ``h_t = a_t h_{t-1} + b_t`` for ``a, b, h >= 0``, so it stays finite and
    accurate for ``T = 10^6`` even in float32. ``mode="parallel"`` never leaves log
    space; ``mode="sequential"`` runs in linear space where every state is a normal
    float and in log space otherwise (see :func:`positive_diagonal_scan`). Gradients
    come from the adjoint recurrence, itself a log-space scan. ``log_b = -inf``
    (``b_t = 0``) is allowed; values and gradients stay free of NaN (a gradient
    that is mathematically ``0`` comes out ``0``). The parallel form uses the
    operator ``(la, lb) . (la', lb') = (la + la', logaddexp(la' + lb, lb'))``.

    Args:
        log_a: ``(..., T, D)`` log decay factors (may broadcast like ``a`` in
            :func:`diagonal_scan`).
        log_b: ``(..., T, D)`` log inputs; ``-inf`` entries mean ``b_t = 0``.
        log_h0: ``(..., D)`` log initial state; ``None`` means ``h_0 = 0``
            (``log h_0 = -inf``).
        mode: ``"sequential"``, ``"parallel"`` or ``None`` for :func:`default_mode`.
        reverse: run the recurrence backwards in time (``h_{T+1} = h0``).

    Returns:
        ``(..., T, D)`` values ``log h_1..log h_T`` in the original time order.

    Example:
        >>> import jax.numpy as jnp
        >>> lh = log_diagonal_scan(jnp.log(jnp.full((3, 1), 0.5)), jnp.zeros((3, 1)))
        >>> jnp.round(jnp.exp(lh[:, 0]), 6).tolist()
        [1.0, 1.5, 1.75]
    """
    parallel = resolve_mode(mode) == "parallel"
    reverse = _check_reverse(reverse)
    log_a, log_b, log_h0, out_shape = _prepare_diagonal(
        log_a, log_b, log_h0, ("log_a", "log_b", "log_h0")
    )
    dtype = _dtype(log_a, log_b, log_h0)
    log_a = _align(log_a.astype(dtype), len(out_shape))
    log_b = jnp.broadcast_to(log_b.astype(dtype), out_shape)
    state_shape = out_shape[:-2] + out_shape[-1:]
    if log_h0 is None:
        log_h0 = jnp.full(state_shape, -jnp.inf, dtype)
    else:
        log_h0 = jnp.broadcast_to(log_h0.astype(dtype), state_shape)
    return _log_diagonal(log_a, log_b, log_h0, len(out_shape) - 2, parallel, reverse)


@partial(jax.jit, static_argnums=(3, 4, 5))
def _log_diagonal(log_a, log_b, log_h0, t_axis, parallel, reverse):
    if parallel:
        return _log_scan(log_a, log_b, log_h0, t_axis, True, reverse)
    return _linear_or_log(
        jnp.exp(log_a),
        jnp.exp(log_b),
        jnp.exp(log_h0),
        lambda: (log_a, log_b, log_h0),
        True,
        reverse,
    )


def positive_diagonal_scan(
    a: Float[Array, "*batch T D"] | ArrayLike,
    b: Float[Array, "*batch T D"] | ArrayLike,
    h0: Float[Array, "*batch D"] | ArrayLike | None,
    log_inputs,
    *,
    log_output: bool = True,
    reverse: bool = False,
) -> Float[Array, "*batch T D"]:
    """Sequential positive recurrence ``h_t = a_t h_{t-1} + b_t`` in linear space.

    The fast sequential form of :func:`log_diagonal_scan` for callers that have
    ``a, b, h0 >= 0`` in linear space (a gated cell's ``1 - z`` and ``z h~``). For a
    convex combination ``h_t = (1 - z_t) h_{t-1} + z_t h~_t`` the state lies between
    the smallest and largest of ``h_0`` and the candidates ``h~``, so linear space
    neither overflows nor underflows at any ``T`` (unless the candidates themselves
    do), and a step costs one multiply-add instead of a ``logaddexp``.

    Where linear space cannot represent the states (some ``h_t`` below the smallest
    normal float, a true zero, or above the largest), the whole result is computed
    by the sequential log-space scan of :func:`log_diagonal_scan` instead, on
    ``log_inputs()``. The choice is a :func:`jax.lax.cond`: ``log_inputs`` is called
    only inside the log-space branch, so under ``jit`` it costs nothing unless taken
    (under ``vmap`` both branches run). Gradients flow through whichever branch runs.

    Args:
        a: ``(..., T, D)`` nonnegative decay factors (may broadcast as in
            :func:`diagonal_scan`).
        b: ``(..., T, D)`` nonnegative inputs.
        h0: ``(..., D)`` nonnegative initial state; ``None`` means zeros.
        log_inputs: a function of no arguments returning ``(log a, log b, log h0)``,
            shaped like ``a``, ``b`` and ``h0`` (``log h0`` may be ``None`` when
            ``h0`` is).
        log_output: return ``log h`` (``True``) or ``h``.
        reverse: run the recurrence backwards in time (``h_{T+1} = h0``).

    Returns:
        ``(..., T, D)``: ``log h_1..log h_T`` (or ``h``) in the original time order.

    Example:
        >>> import jax.numpy as jnp
        >>> a, b = jnp.full((3, 1), 0.5), jnp.ones((3, 1))
        >>> logs = lambda: (jnp.log(a), jnp.log(b), None)
        >>> positive_diagonal_scan(a, b, None, logs, log_output=False)[:, 0].tolist()
        [1.0, 1.5, 1.75]
    """
    if not callable(log_inputs):
        raise ValueError(f"`log_inputs` must be a function of no arguments, got {log_inputs!r}")
    if not isinstance(log_output, bool | np.bool_):
        raise ValueError(f"`log_output` must be a bool, got {log_output!r}")
    reverse = _check_reverse(reverse)
    a, b, h0, out_shape = _prepare_diagonal(a, b, h0, ("a", "b", "h0"))
    dtype = _dtype(a, b, h0)
    ndim = len(out_shape)
    state_shape = out_shape[:-2] + out_shape[-1:]

    def inputs(a, b, h0, fill):
        a = _align(jnp.asarray(a).astype(dtype), ndim)
        b = jnp.broadcast_to(jnp.asarray(b).astype(dtype), out_shape)
        h0 = jnp.full(state_shape, fill, dtype) if h0 is None else h0
        return a, b, jnp.broadcast_to(jnp.asarray(h0).astype(dtype), state_shape)

    def log_form():
        log_a, log_b, log_h0 = log_inputs()
        if jnp.shape(log_a) != a.shape or jnp.shape(log_b) != b.shape:
            raise ValueError(
                "`log_inputs` must return (log a, log b, log h0) shaped like `a`, `b`, `h0`, "
                f"got {jnp.shape(log_a)}, {jnp.shape(log_b)}"
            )
        return inputs(log_a, log_b, log_h0, -jnp.inf)

    return _linear_or_log(*inputs(a, b, h0, 0.0), log_form, bool(log_output), reverse)


def _matrix_scan(a, b, h0, mode, reverse, block: bool):
    parallel = resolve_mode(mode) == "parallel"
    reverse = _check_reverse(reverse)
    a, b, h0, out_shape = _prepare_matrix(a, b, h0, ("a", "b", "h0"), block=block)
    dtype = _dtype(a, b, h0)
    *batch, T, D = out_shape
    # Blocks are a dense 2x2 recurrence with one more batch axis (the block index)
    # after time: b (..., T, D) -> (..., T, D//2, 2).
    n = 2 if block else D
    post = (D // 2,) if block else ()
    b = jnp.broadcast_to(b.astype(dtype), out_shape).reshape(*batch, T, *post, n)
    a = _align(a.astype(dtype), len(batch) + 3 + len(post))
    state_shape = (*batch, *post, n)
    if h0 is None:
        h0 = jnp.zeros(state_shape, dtype)
    else:
        h0 = jnp.broadcast_to(h0.astype(dtype).reshape(*h0.shape[:-1], *post, n), state_shape)
    h = _affine_scan(a, b, h0, ops="matrix", t_axis=len(batch), parallel=parallel, reverse=reverse)
    return h.reshape(out_shape)


def block_diagonal_scan(
    a: Float[Array, "*batch T Dhalf 2 2"] | ArrayLike,
    b: Float[Array, "*batch T D"] | ArrayLike,
    h0: Float[Array, "*batch D"] | ArrayLike | None = None,
    *,
    mode: str | None = None,
    reverse: bool = False,
) -> Float[Array, "*batch T D"]:
    """Linear recurrence with 2x2 block-diagonal transitions.

    ``h_t = A_t h_{t-1} + b_t`` where ``A_t = blockdiag(a_t[0], ..., a_t[D/2 - 1])``:
    the pair ``(h_{t,2i}, h_{t,2i+1})`` is multiplied by the block ``a_t[i]``.

    Args:
        a: ``(..., T, D//2, 2, 2)`` blocks (batch axes may broadcast).
        b: ``(..., T, D)`` inputs, ``D`` even.
        h0: ``(..., D)`` initial state; ``None`` means zeros.
        mode: ``"sequential"``, ``"parallel"`` or ``None`` for :func:`default_mode`.
        reverse: run the recurrence backwards in time (``h_{T+1} = h0``).

    Returns:
        ``(..., T, D)`` states ``h_1..h_T`` in the original time order.

    Example:
        >>> import jax.numpy as jnp
        >>> rot = jnp.array([[0.0, -1.0], [1.0, 0.0]])  # quarter turn
        >>> h = block_diagonal_scan(jnp.broadcast_to(rot, (2, 1, 2, 2)), jnp.zeros((2, 2)),
        ...                         jnp.array([1.0, 0.0]))
        >>> h.tolist()
        [[0.0, 1.0], [-1.0, 0.0]]
    """
    return _matrix_scan(a, b, h0, mode, reverse, block=True)


def dense_scan(
    a: Float[Array, "*batch T D D"] | ArrayLike,
    b: Float[Array, "*batch T D"] | ArrayLike,
    h0: Float[Array, "*batch D"] | ArrayLike | None = None,
    *,
    mode: str | None = None,
    reverse: bool = False,
) -> Float[Array, "*batch T D"]:
    """Linear recurrence with dense transitions ``h_t = A_t @ h_{t-1} + b_t``.

    The parallel form composes ``(A, b) . (A', b') = (A' A, A' b + b')``, which costs
    ``O(T D^3)`` work against ``O(T D^2)`` sequentially.

    Args:
        a: ``(..., T, D, D)`` transition matrices (batch axes may broadcast, e.g. one
            ``(T, D, D)`` shared by a batch of inputs).
        b: ``(..., T, D)`` inputs.
        h0: ``(..., D)`` initial state; ``None`` means zeros.
        mode: ``"sequential"``, ``"parallel"`` or ``None`` for :func:`default_mode`.
        reverse: run the recurrence backwards in time (``h_{T+1} = h0``).

    Returns:
        ``(..., T, D)`` states ``h_1..h_T`` in the original time order.

    Example:
        >>> import jax.numpy as jnp
        >>> A = jnp.broadcast_to(jnp.array([[1.0, 1.0], [0.0, 1.0]]), (3, 2, 2))
        >>> dense_scan(A, jnp.zeros((3, 2)), jnp.array([0.0, 1.0]))[:, 0].tolist()
        [1.0, 2.0, 3.0]
    """
    return _matrix_scan(a, b, h0, mode, reverse, block=False)


def linear_recurrence(
    a: Array | ArrayLike,
    b: Float[Array, "*batch T D"] | ArrayLike,
    h0: Float[Array, "*batch D"] | ArrayLike | None = None,
    *,
    kind: str = "diagonal",
    mode: str | None = None,
    reverse: bool = False,
) -> Float[Array, "*batch T D"]:
    """Linear recurrence ``h_t = A_t h_{t-1} + b_t`` for a transition of shape ``kind``.

    Dispatches to :func:`diagonal_scan` (``a`` is ``(..., T, D)``),
    :func:`block_diagonal_scan` (``a`` is ``(..., T, D//2, 2, 2)``) or
    :func:`dense_scan` (``a`` is ``(..., T, D, D)``).

    Args:
        a: transitions, shaped as ``kind`` requires.
        b: ``(..., T, D)`` inputs.
        h0: ``(..., D)`` initial state; ``None`` means zeros.
        kind: ``"diagonal"``, ``"block_diagonal"`` or ``"dense"``.
        mode: ``"sequential"``, ``"parallel"`` or ``None`` for :func:`default_mode`.
        reverse: run the recurrence backwards in time (``h_{T+1} = h0``).

    Returns:
        ``(..., T, D)`` states ``h_1..h_T`` in the original time order.

    Example:
        >>> import jax.numpy as jnp
        >>> h = linear_recurrence(jnp.full((2, 1), 2.0), jnp.ones((2, 1)), kind="diagonal")
        >>> h[:, 0].tolist()
        [1.0, 3.0]
    """
    fns = {"diagonal": diagonal_scan, "block_diagonal": block_diagonal_scan, "dense": dense_scan}
    if kind not in fns:
        raise ValueError(f"`kind` must be one of {KINDS}, got {kind!r}")
    return fns[kind](a, b, h0, mode=mode, reverse=reverse)
