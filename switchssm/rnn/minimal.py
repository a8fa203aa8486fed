"""Cells whose gates read only the input: minGRU, minLSTM, selective diagonal SSM.

Because nothing inside the gates depends on ``h_{t-1}``, each cell is a diagonal
linear recurrence ``h_t = a_t h_{t-1} + b_t`` with ``(a_t, b_t)`` computed from
``x_t`` for all steps at once, and runs with :func:`switchssm.scan.diagonal_scan`
(or :func:`~switchssm.scan.log_diagonal_scan` for positive states), sequentially
or as a parallel prefix scan (``mode=``; ``None`` picks the backend default:
sequential on CPU, parallel on accelerators).

Two state spaces (Feng et al. 2024, "Were RNNs All We Needed?"):

- ``space="logit"``: real, unconstrained states with a linear candidate
  ``h~ = W_h x + b_h`` (the paper's main form; in this package the state is a vector
  of logits, docs/theory.md section 5).
- ``space="log"``: positive states ``h > 0`` (the paper's appendix). The parallel
  form propagates ``log h`` with the log-space scan (products of ``1 - z`` over long
  spans underflow in linear space); the sequential form runs in linear space, since
  ``h_t = (1 - z_t) h_{t-1} + z_t h~_t`` is a convex combination that stays between
  the smallest and largest candidate at any ``T``, and takes one ``log`` at the end
  when ``log h`` is asked for (falling back to the log-space scan where a state is
  not a normal float: :func:`switchssm.scan.positive_diagonal_scan`). The
  candidate is positive:
  ``candidate="g"`` (the paper's ``g``), ``"exp"`` (``log h~ = W_h x + b_h``) or
  ``"log_softmax"`` (``h~ = softmax(W_h x + b_h)`` over the hidden units; when all
  units share one gate, equal rows of ``gate_weight`` and equal ``gate_bias``, a
  state that starts on the probability simplex stays there, the exact filter of
  docs/theory.md section 2). The default
  ``h0`` is the candidate at zero pre-activation: ``g(0) = 1/2``,
  ``exp(0) = 1``, ``softmax(0) = 1/H``.

Weights are ``<part>_weight (H, D_in)`` and ``<part>_bias (H,)``.
"""

# ruff: noqa: F722  (jaxtyping shape strings such as "H D" are not forward references)

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from switchssm import _validation as V
from switchssm import scan
from switchssm._pytree import params_pytree
from switchssm._pytree import shape_dim
from switchssm.rnn import _common as C
from switchssm.types import Array
from switchssm.types import Float
from switchssm.types import PRNGKeyArray

__all__ = [
    "MinGRUParams",
    "MinLSTMGates",
    "MinLSTMParams",
    "SelectiveParams",
    "init_mingru",
    "init_minlstm",
    "init_selective",
    "mingru",
    "mingru_log",
    "mingru_log_step",
    "mingru_step",
    "minlstm",
    "minlstm_gates",
    "minlstm_log",
    "minlstm_log_step",
    "minlstm_step",
    "selective",
    "selective_step",
]

DECAYS = ("sigmoid", "exp")


def _prepare(params, cls, x, mode):
    C.check_params(params, cls)
    C.check_inputs(x, params.input_dim)
    mode = scan.resolve_mode(mode)
    return C.as_input(x), mode


def _log_state(log_h0, x, weight, candidate):
    default = C.default_log_state(candidate, weight.shape[0])
    return C.initial_state(log_h0, x, weight, default)


def _check_candidate(candidate, space):
    """``candidate`` applies to the log space only; return the effective choice."""
    if space == "logit":
        if candidate is not None:
            raise ValueError(
                "`candidate` applies to space='log' only (the logit-space candidate is the "
                f"linear map W_h x + b_h), got candidate={candidate!r}"
            )
        return None
    candidate = "g" if candidate is None else candidate
    V.check_choice(candidate, "candidate", C.CANDIDATES)
    return candidate


def _init_linear(key, input_dim, hidden_dim, dtype):
    w = C.uniform(key, (hidden_dim, input_dim), input_dim, dtype)
    return w, jnp.zeros((hidden_dim,), w.dtype)


# ---------------------------------------------------------------------------
# minGRU
# ---------------------------------------------------------------------------


@params_pytree(promote=False)
class MinGRUParams:
    """minGRU weights.

    Args:
        gate_weight: ``(H, D_in)`` update-gate weights, ``z = sigmoid(W_z x + b_z)``.
        gate_bias: ``(H,)``.
        candidate_weight: ``(H, D_in)`` candidate weights, pre-activation ``W_h x + b_h``.
        candidate_bias: ``(H,)``.
    """

    gate_weight: Float[Array, "H D"]
    gate_bias: Float[Array, " H"]
    candidate_weight: Float[Array, "H D"]
    candidate_bias: Float[Array, " H"]

    def _validate(self):
        h, d = C.check_linear(self, "gate", None, None)
        C.check_linear(self, "candidate", h, d)

    input_dim = shape_dim("gate_weight", 1)
    hidden_dim = shape_dim("gate_weight", 0)


def init_mingru(key: PRNGKeyArray, input_dim: int, hidden_dim: int, *, dtype=None) -> MinGRUParams:
    """Random minGRU weights, ``U(+-1/sqrt(input_dim))``, zero biases.

    Args:
        key: PRNG key.
        input_dim: ``D_in``.
        hidden_dim: ``H``.
        dtype: float dtype (default: JAX's default float).

    Returns:
        :class:`MinGRUParams`.

    Example:
        >>> params = init_mingru(jax.random.PRNGKey(0), 3, 4)
        >>> params.gate_weight.shape, params.hidden_dim
        ((4, 3), 4)
    """
    C.check_dims(input_dim, hidden_dim)
    k1, k2 = jax.random.split(key)
    return MinGRUParams(
        *_init_linear(k1, input_dim, hidden_dim, dtype),
        *_init_linear(k2, input_dim, hidden_dim, dtype),
    )


def mingru_step(
    params: MinGRUParams, h_prev: Float[Array, "... H"], x_t: Float[Array, "... D"]
) -> Float[Array, "... H"]:
    r"""One minGRU step, logit (real) states.

    .. math:: z = \sigma(W_z x_t + b_z),\quad \tilde h = W_h x_t + b_h,\quad
              h_t = (1 - z) h_{t-1} + z \tilde h.

    Args:
        params: :class:`MinGRUParams`.
        h_prev: ``(..., H)`` previous state.
        x_t: ``(..., D_in)`` input.

    Returns:
        ``h_t``, ``(..., H)``.

    Example:
        >>> params = init_mingru(jax.random.PRNGKey(0), 3, 4)
        >>> mingru_step(params, jnp.zeros(4), jnp.ones(3)).shape
        (4,)
    """
    k = C.linear(x_t, params.gate_weight, params.gate_bias)
    cand = C.linear(x_t, params.candidate_weight, params.candidate_bias)
    return jax.nn.sigmoid(-k) * h_prev + jax.nn.sigmoid(k) * cand


def mingru_log_step(
    params: MinGRUParams,
    log_h_prev: Float[Array, "... H"],
    x_t: Float[Array, "... D"],
    *,
    candidate: str = "g",
) -> Float[Array, "... H"]:
    r"""One minGRU step with positive states, in log space.

    .. math:: \log h_t = \mathrm{logaddexp}(\log(1 - z) + \log h_{t-1},\ \log z + \log \tilde h),
              \quad \log(1-z) = -\mathrm{softplus}(k),\ \log z = -\mathrm{softplus}(-k),

    with ``k = W_z x_t + b_z`` and ``log h~`` from the candidate pre-activation
    ``W_h x_t + b_h`` (``"g"``: ``log g``; ``"exp"``: itself; ``"log_softmax"``).

    Args:
        params: :class:`MinGRUParams`.
        log_h_prev: ``(..., H)`` previous log state (``-inf`` allowed).
        x_t: ``(..., D_in)`` input.
        candidate: ``"g"``, ``"exp"`` or ``"log_softmax"``.

    Returns:
        ``log h_t``, ``(..., H)``.

    Example:
        >>> params = init_mingru(jax.random.PRNGKey(0), 3, 4)
        >>> mingru_log_step(params, jnp.log(0.5 * jnp.ones(4)), jnp.ones(3)).shape
        (4,)
    """
    k = C.linear(x_t, params.gate_weight, params.gate_bias)
    log_cand = C.log_candidate(
        C.linear(x_t, params.candidate_weight, params.candidate_bias), candidate
    )
    return jnp.logaddexp(-jax.nn.softplus(k) + log_h_prev, -jax.nn.softplus(-k) + log_cand)


@functools.partial(jax.jit, static_argnames=("mode",))
def _mingru_logit(params, x, h0, mode):
    k = C.linear(x, params.gate_weight, params.gate_bias)
    cand = C.linear(x, params.candidate_weight, params.candidate_bias)
    # 1 - sigmoid(k) = sigmoid(-k), without cancellation when z is near 1.
    return scan.diagonal_scan(jax.nn.sigmoid(-k), jax.nn.sigmoid(k) * cand, h0, mode=mode)


def _positive_scan(log_inputs, linear_inputs, log_h0, mode, positive):
    """``log h`` (or ``h`` when ``positive``) of a positive-state cell.

    ``log_inputs()`` gives the cell's ``(log a, log b)``, ``linear_inputs()`` its
    ``(a, b)``. Parallel: the log-space scan (long products of ``a`` underflow in
    linear space). Sequential: the step is a convex combination, so it runs in
    linear space, with the log-space scan as the fallback where a state is not a
    normal float (:func:`switchssm.scan.positive_diagonal_scan`).
    """
    if mode == "parallel":
        log_h = scan.log_diagonal_scan(*log_inputs(), log_h0, mode=mode)
        return jnp.exp(log_h) if positive else log_h
    a, b = linear_inputs()
    return scan.positive_diagonal_scan(
        a, b, jnp.exp(log_h0), lambda: (*log_inputs(), log_h0), log_output=not positive
    )


@functools.partial(jax.jit, static_argnames=("mode", "candidate", "positive"))
def _mingru_log(params, x, log_h0, mode, candidate, positive):
    """``log h``, or ``h`` itself when ``positive``."""
    k = C.linear(x, params.gate_weight, params.gate_bias)
    pre = C.linear(x, params.candidate_weight, params.candidate_bias)

    def log_inputs():
        log_cand = C.log_candidate(pre, candidate)
        return -jax.nn.softplus(k), -jax.nn.softplus(-k) + log_cand

    def linear_inputs():
        # 1 - sigmoid(k) = sigmoid(-k), without cancellation when z is near 1.
        return jax.nn.sigmoid(-k), jax.nn.sigmoid(k) * C.positive_candidate(pre, candidate)

    return _positive_scan(log_inputs, linear_inputs, log_h0, mode, positive)


def mingru_log(
    params: MinGRUParams,
    x: Float[Array, "*B T D"],
    log_h0: Float[Array, "*B H"] | None = None,
    *,
    mode: str | None = None,
    candidate: str = "g",
) -> Float[Array, "*B T H"]:
    r"""Run the positive-state minGRU over a sequence and return ``log h``.

    .. math::
        \log h_t = \mathrm{logaddexp}(\log(1 - z_t) + \log h_{t-1},\
                                      \log z_t + \log \tilde h_t)

    (see :func:`mingru_log_step`). ``mode="parallel"``:
    :func:`switchssm.scan.log_diagonal_scan`, no cumulative sums, so float32 stays
    accurate for long sequences. ``mode="sequential"``: the same recursion in linear
    space (a convex combination, so it neither overflows nor underflows) with one
    ``log`` at the end, and the log-space scan as fallback
    (:func:`switchssm.scan.positive_diagonal_scan`).

    Args:
        params: :class:`MinGRUParams`.
        x: ``(T, D_in)`` or ``(B, T, D_in)`` inputs.
        log_h0: ``(H,)`` or ``(B, H)`` log state before the first step (``-inf``
            allowed); default: the candidate at zero pre-activation
            (``log 1/2`` for ``"g"``, ``0`` for ``"exp"``, ``-log H`` for ``"log_softmax"``).
        mode: ``"sequential"``, ``"parallel"`` or ``None`` (backend default).
        candidate: ``"g"`` (paper default), ``"exp"`` or ``"log_softmax"``.

    Returns:
        ``log h``: ``(T, H)`` or ``(B, T, H)``.

    Example:
        >>> p = init_mingru(jax.random.PRNGKey(0), 3, 4)
        >>> shared = MinGRUParams(jnp.ones((4, 3)), jnp.zeros(4), p.candidate_weight,
        ...                       p.candidate_bias)  # one gate for all units
        >>> log_h = mingru_log(shared, jnp.ones((5, 3)), candidate="log_softmax")
        >>> jnp.allclose(jnp.exp(log_h).sum(-1), 1.0, atol=1e-5).item()  # stays a distribution
        True
    """
    x, mode = _prepare(params, MinGRUParams, x, mode)
    V.check_choice(candidate, "candidate", C.CANDIDATES)
    C.check_state(log_h0, "log_h0", params.hidden_dim, x.shape, log=True)
    log_h0 = _log_state(log_h0, x, params.gate_weight, candidate)
    return _mingru_log(params, x, log_h0, mode, candidate, False)


def mingru(
    params: MinGRUParams,
    x: Float[Array, "*B T D"],
    h0: Float[Array, "*B H"] | None = None,
    *,
    mode: str | None = None,
    space: str = "logit",
    candidate: str | None = None,
) -> Float[Array, "*B T H"]:
    r"""Run a minGRU over a sequence.

    .. math:: z_t = \sigma(W_z x_t + b_z),\quad h_t = (1 - z_t) h_{t-1} + z_t \tilde h_t,

    a diagonal linear recurrence with ``a_t = 1 - z_t``, ``b_t = z_t \tilde h_t``.
    ``space="logit"``: ``h~_t = W_h x_t + b_h``, real states, via
    :func:`switchssm.scan.diagonal_scan`. ``space="log"``: positive candidate
    (``candidate``, default ``"g"``) and positive states, computed as
    ``exp(mingru_log(...))`` (see :func:`mingru_log`).

    Args:
        params: :class:`MinGRUParams`.
        x: ``(T, D_in)`` or ``(B, T, D_in)`` inputs.
        h0: ``(H,)`` or ``(B, H)`` state before the first step. Default: zeros for
            ``"logit"``; the candidate at zero pre-activation for ``"log"`` (1/2 for
            ``"g"``, 1 for ``"exp"``, 1/H for ``"log_softmax"``), which must be positive.
        mode: ``"sequential"``, ``"parallel"`` or ``None`` (backend default).
        space: ``"logit"`` or ``"log"``.
        candidate: ``space="log"`` only: ``"g"``, ``"exp"`` or ``"log_softmax"``.

    Returns:
        ``h``: ``(T, H)`` or ``(B, T, H)``, the state after each step.

    Example:
        >>> params = init_mingru(jax.random.PRNGKey(0), 3, 4)
        >>> mingru(params, jnp.ones((2, 5, 3)), mode="parallel").shape
        (2, 5, 4)
        >>> bool((mingru(params, jnp.ones((5, 3)), space="log") > 0).all())
        True
    """
    V.check_choice(space, "space", C.SPACES)
    candidate = _check_candidate(candidate, space)
    x, mode = _prepare(params, MinGRUParams, x, mode)
    if space == "logit":
        C.check_state(h0, "h0", params.hidden_dim, x.shape)
        return _mingru_logit(params, x, C.initial_state(h0, x, params.gate_weight), mode)
    C.check_state(h0, "h0", params.hidden_dim, x.shape, positive=True)
    log_h0 = _log_state(C.log_of(h0), x, params.gate_weight, candidate)
    return _mingru_log(params, x, log_h0, mode, candidate, True)


# ---------------------------------------------------------------------------
# minLSTM
# ---------------------------------------------------------------------------


@params_pytree(promote=False)
class MinLSTMParams:
    """minLSTM weights.

    Args:
        forget_weight, forget_bias: forget gate ``f = sigmoid(W_f x + b_f)``.
        input_weight, input_bias: input gate ``i = sigmoid(W_i x + b_i)``.
        candidate_weight, candidate_bias: candidate pre-activation ``W_h x + b_h``.
    """

    forget_weight: Float[Array, "H D"]
    forget_bias: Float[Array, " H"]
    input_weight: Float[Array, "H D"]
    input_bias: Float[Array, " H"]
    candidate_weight: Float[Array, "H D"]
    candidate_bias: Float[Array, " H"]

    def _validate(self):
        h, d = C.check_linear(self, "forget", None, None)
        C.check_linear(self, "input", h, d)
        C.check_linear(self, "candidate", h, d)

    input_dim = shape_dim("forget_weight", 1)
    hidden_dim = shape_dim("forget_weight", 0)


class MinLSTMGates(NamedTuple):
    """Normalized minLSTM gates (``forget + input = 1``), each ``(..., T, H)``."""

    forget: Array
    input: Array


def init_minlstm(
    key: PRNGKeyArray, input_dim: int, hidden_dim: int, *, dtype=None
) -> MinLSTMParams:
    """Random minLSTM weights, ``U(+-1/sqrt(input_dim))``, zero biases.

    Args:
        key: PRNG key.
        input_dim: ``D_in``.
        hidden_dim: ``H``.
        dtype: float dtype (default: JAX's default float).

    Returns:
        :class:`MinLSTMParams`.

    Example:
        >>> init_minlstm(jax.random.PRNGKey(0), 3, 4).input_weight.shape
        (4, 3)
    """
    C.check_dims(input_dim, hidden_dim)
    k = jax.random.split(key, 3)
    return MinLSTMParams(
        *_init_linear(k[0], input_dim, hidden_dim, dtype),
        *_init_linear(k[1], input_dim, hidden_dim, dtype),
        *_init_linear(k[2], input_dim, hidden_dim, dtype),
    )


def _minlstm_log_gates(params, x):
    """``(log f', log i')`` with ``log f' = -softplus(log i - log f)`` and its mirror."""
    log_f = -jax.nn.softplus(-C.linear(x, params.forget_weight, params.forget_bias))
    log_i = -jax.nn.softplus(-C.linear(x, params.input_weight, params.input_bias))
    diff = log_i - log_f
    return -jax.nn.softplus(diff), -jax.nn.softplus(-diff)


def minlstm_gates(
    params: MinLSTMParams, x: Float[Array, "*B T D"], *, log: bool = False
) -> MinLSTMGates:
    r"""The normalized minLSTM gates for every step.

    .. math:: f = \sigma(W_f x + b_f),\ i = \sigma(W_i x + b_i),\quad
              f' = f / (f + i),\ i' = i / (f + i),

    computed as ``f' = sigmoid(log f - log i)`` (or its log, ``-softplus(log i - log f)``).

    Args:
        params: :class:`MinLSTMParams`.
        x: ``(T, D_in)`` or ``(B, T, D_in)`` inputs.
        log: return ``(log f', log i')`` instead.

    Returns:
        :class:`MinLSTMGates` ``(forget, input)``, each ``(T, H)`` or ``(B, T, H)``.

    Example:
        >>> params = init_minlstm(jax.random.PRNGKey(0), 3, 4)
        >>> g = minlstm_gates(params, jnp.ones((5, 3)))
        >>> jnp.allclose(g.forget + g.input, 1.0).item()
        True
    """
    x, _ = _prepare(params, MinLSTMParams, x, "sequential")
    log_f, log_i = _minlstm_log_gates(params, x)
    return MinLSTMGates(log_f, log_i) if log else MinLSTMGates(jnp.exp(log_f), jnp.exp(log_i))


def minlstm_step(
    params: MinLSTMParams, h_prev: Float[Array, "... H"], x_t: Float[Array, "... D"]
) -> Float[Array, "... H"]:
    r"""One minLSTM step, real states: :math:`h_t = f' h_{t-1} + i' (W_h x_t + b_h)`.

    The gates are normalized, ``f' + i' = 1`` (see :func:`minlstm_gates`).

    Args:
        params: :class:`MinLSTMParams`.
        h_prev: ``(..., H)`` previous state.
        x_t: ``(..., D_in)`` input.

    Returns:
        ``h_t``, ``(..., H)``.

    Example:
        >>> params = init_minlstm(jax.random.PRNGKey(0), 3, 4)
        >>> minlstm_step(params, jnp.zeros(4), jnp.ones(3)).shape
        (4,)
    """
    log_f, log_i = _minlstm_log_gates(params, x_t)
    cand = C.linear(x_t, params.candidate_weight, params.candidate_bias)
    return jnp.exp(log_f) * h_prev + jnp.exp(log_i) * cand


def minlstm_log_step(
    params: MinLSTMParams,
    log_h_prev: Float[Array, "... H"],
    x_t: Float[Array, "... D"],
    *,
    candidate: str = "g",
) -> Float[Array, "... H"]:
    r"""One positive-state minLSTM step in log space.

    .. math:: \log h_t = \mathrm{logaddexp}(\log f' + \log h_{t-1},\ \log i' + \log \tilde h_t).

    Args:
        params: :class:`MinLSTMParams`.
        log_h_prev: ``(..., H)`` previous log state (``-inf`` allowed).
        x_t: ``(..., D_in)`` input.
        candidate: ``"g"``, ``"exp"`` or ``"log_softmax"``.

    Returns:
        ``log h_t``, ``(..., H)``.

    Example:
        >>> params = init_minlstm(jax.random.PRNGKey(0), 3, 4)
        >>> minlstm_log_step(params, jnp.zeros(4), jnp.ones(3)).shape
        (4,)
    """
    log_f, log_i = _minlstm_log_gates(params, x_t)
    log_cand = C.log_candidate(
        C.linear(x_t, params.candidate_weight, params.candidate_bias), candidate
    )
    return jnp.logaddexp(log_f + log_h_prev, log_i + log_cand)


@functools.partial(jax.jit, static_argnames=("mode",))
def _minlstm_logit(params, x, h0, mode):
    log_f, log_i = _minlstm_log_gates(params, x)
    cand = C.linear(x, params.candidate_weight, params.candidate_bias)
    return scan.diagonal_scan(jnp.exp(log_f), jnp.exp(log_i) * cand, h0, mode=mode)


@functools.partial(jax.jit, static_argnames=("mode", "candidate", "positive"))
def _minlstm_log(params, x, log_h0, mode, candidate, positive):
    log_f, log_i = _minlstm_log_gates(params, x)
    pre = C.linear(x, params.candidate_weight, params.candidate_bias)

    def log_inputs():
        return log_f, log_i + C.log_candidate(pre, candidate)

    def linear_inputs():
        return jnp.exp(log_f), jnp.exp(log_i) * C.positive_candidate(pre, candidate)

    return _positive_scan(log_inputs, linear_inputs, log_h0, mode, positive)


def minlstm_log(
    params: MinLSTMParams,
    x: Float[Array, "*B T D"],
    log_h0: Float[Array, "*B H"] | None = None,
    *,
    mode: str | None = None,
    candidate: str = "g",
) -> Float[Array, "*B T H"]:
    r"""Run the positive-state minLSTM over a sequence and return ``log h``.

    .. math:: \log h_t = \mathrm{logaddexp}(\log f'_t + \log h_{t-1},\ \log i'_t + \log \tilde h_t),
              \quad \log f' = -\mathrm{softplus}(\log i - \log f).

    Args:
        params: :class:`MinLSTMParams`.
        x: ``(T, D_in)`` or ``(B, T, D_in)`` inputs.
        log_h0: ``(H,)`` or ``(B, H)`` initial log state; default: the candidate at zero
            pre-activation (as in :func:`mingru_log`).
        mode: ``"sequential"``, ``"parallel"`` or ``None`` (backend default).
        candidate: ``"g"`` (paper default), ``"exp"`` or ``"log_softmax"``.

    Returns:
        ``log h``: ``(T, H)`` or ``(B, T, H)``.

    Example:
        >>> params = init_minlstm(jax.random.PRNGKey(0), 3, 4)
        >>> minlstm_log(params, jnp.ones((5, 3))).shape
        (5, 4)
    """
    x, mode = _prepare(params, MinLSTMParams, x, mode)
    V.check_choice(candidate, "candidate", C.CANDIDATES)
    C.check_state(log_h0, "log_h0", params.hidden_dim, x.shape, log=True)
    log_h0 = _log_state(log_h0, x, params.forget_weight, candidate)
    return _minlstm_log(params, x, log_h0, mode, candidate, False)


def minlstm(
    params: MinLSTMParams,
    x: Float[Array, "*B T D"],
    h0: Float[Array, "*B H"] | None = None,
    *,
    mode: str | None = None,
    space: str = "logit",
    candidate: str | None = None,
) -> Float[Array, "*B T H"]:
    r"""Run a minLSTM over a sequence.

    .. math:: h_t = f'_t h_{t-1} + i'_t \tilde h_t,\quad f' = f/(f+i),\ i' = i/(f+i),

    with ``f, i`` sigmoid gates of ``x_t`` (see :func:`minlstm_gates`).
    ``space="logit"``: ``h~ = W_h x + b_h``, real states. ``space="log"``: positive
    candidate and states, ``exp(minlstm_log(...))``.

    Args:
        params: :class:`MinLSTMParams`.
        x: ``(T, D_in)`` or ``(B, T, D_in)`` inputs.
        h0: ``(H,)`` or ``(B, H)`` initial state; default zeros (``"logit"``) or the
            candidate at zero pre-activation (``"log"``; must be positive).
        mode: ``"sequential"``, ``"parallel"`` or ``None`` (backend default).
        space: ``"logit"`` or ``"log"``.
        candidate: ``space="log"`` only: ``"g"``, ``"exp"`` or ``"log_softmax"``.

    Returns:
        ``h``: ``(T, H)`` or ``(B, T, H)``.

    Example:
        >>> params = init_minlstm(jax.random.PRNGKey(0), 3, 4)
        >>> minlstm(params, jnp.ones((5, 3)), mode="sequential").shape
        (5, 4)
    """
    V.check_choice(space, "space", C.SPACES)
    candidate = _check_candidate(candidate, space)
    x, mode = _prepare(params, MinLSTMParams, x, mode)
    if space == "logit":
        C.check_state(h0, "h0", params.hidden_dim, x.shape)
        return _minlstm_logit(params, x, C.initial_state(h0, x, params.forget_weight), mode)
    C.check_state(h0, "h0", params.hidden_dim, x.shape, positive=True)
    log_h0 = _log_state(C.log_of(h0), x, params.forget_weight, candidate)
    return _minlstm_log(params, x, log_h0, mode, candidate, True)


# ---------------------------------------------------------------------------
# selective diagonal SSM
# ---------------------------------------------------------------------------


@params_pytree(promote=False)
class SelectiveParams:
    """Selective diagonal SSM weights (the Mamba form of seed 002).

    Args:
        decay_weight, decay_bias: ``(H, D_in)``, ``(H,)``: the decay pre-activation
            ``k = W_a x + b_a`` giving ``a(x) in (0, 1)``.
        drive_weight, drive_bias: ``(H, D_in)``, ``(H,)``: the additive input
            ``b(x) = W_b x + b_b`` (not gated, unlike the minGRU candidate).
    """

    decay_weight: Float[Array, "H D"]
    decay_bias: Float[Array, " H"]
    drive_weight: Float[Array, "H D"]
    drive_bias: Float[Array, " H"]

    def _validate(self):
        h, d = C.check_linear(self, "decay", None, None)
        C.check_linear(self, "drive", h, d)

    input_dim = shape_dim("decay_weight", 1)
    hidden_dim = shape_dim("decay_weight", 0)


def init_selective(
    key: PRNGKeyArray, input_dim: int, hidden_dim: int, *, dtype=None
) -> SelectiveParams:
    """Random selective-SSM weights, ``U(+-1/sqrt(input_dim))``, zero biases.

    Args:
        key: PRNG key.
        input_dim: ``D_in``.
        hidden_dim: ``H``.
        dtype: float dtype (default: JAX's default float).

    Returns:
        :class:`SelectiveParams`.

    Example:
        >>> init_selective(jax.random.PRNGKey(0), 3, 4).drive_bias.shape
        (4,)
    """
    C.check_dims(input_dim, hidden_dim)
    k1, k2 = jax.random.split(key)
    return SelectiveParams(
        *_init_linear(k1, input_dim, hidden_dim, dtype),
        *_init_linear(k2, input_dim, hidden_dim, dtype),
    )


def _decay(params, x, decay):
    k = C.linear(x, params.decay_weight, params.decay_bias)
    if decay == "sigmoid":
        return jax.nn.sigmoid(k)
    # Mamba's zero-order hold with A = -1: a = exp(-Delta), step Delta = softplus(k).
    return jnp.exp(-jax.nn.softplus(k))


def selective_step(
    params: SelectiveParams,
    h_prev: Float[Array, "... H"],
    x_t: Float[Array, "... D"],
    *,
    decay: str = "sigmoid",
) -> Float[Array, "... H"]:
    r"""One selective diagonal SSM step: :math:`h_t = a(x_t) h_{t-1} + b(x_t)`.

    ``a(x) = sigmoid(k)`` (``decay="sigmoid"``) or ``exp(-softplus(k))``
    (``decay="exp"``, Mamba's discretization with step ``softplus(k)`` and ``A = -1``;
    it equals ``sigmoid(-k)``), ``k = W_a x + b_a``; ``b(x) = W_b x + b_b``.

    Args:
        params: :class:`SelectiveParams`.
        h_prev: ``(..., H)`` previous state.
        x_t: ``(..., D_in)`` input.
        decay: ``"sigmoid"`` or ``"exp"``.

    Returns:
        ``h_t``, ``(..., H)``.

    Example:
        >>> params = init_selective(jax.random.PRNGKey(0), 3, 4)
        >>> selective_step(params, jnp.zeros(4), jnp.ones(3)).shape
        (4,)
    """
    return _decay(params, x_t, decay) * h_prev + C.linear(
        x_t, params.drive_weight, params.drive_bias
    )


@functools.partial(jax.jit, static_argnames=("mode", "decay"))
def _selective(params, x, h0, mode, decay):
    a = _decay(params, x, decay)
    b = C.linear(x, params.drive_weight, params.drive_bias)
    return scan.diagonal_scan(a, b, h0, mode=mode)


def selective(
    params: SelectiveParams,
    x: Float[Array, "*B T D"],
    h0: Float[Array, "*B H"] | None = None,
    *,
    mode: str | None = None,
    decay: str = "sigmoid",
) -> Float[Array, "*B T H"]:
    r"""Run a selective diagonal SSM over a sequence.

    .. math:: h_t = a(x_t) \odot h_{t-1} + b(x_t)

    (see :func:`selective_step`), via :func:`switchssm.scan.diagonal_scan`.

    Args:
        params: :class:`SelectiveParams`.
        x: ``(T, D_in)`` or ``(B, T, D_in)`` inputs.
        h0: ``(H,)`` or ``(B, H)`` initial state; zeros if ``None``.
        mode: ``"sequential"``, ``"parallel"`` or ``None`` (backend default).
        decay: ``"sigmoid"`` or ``"exp"``.

    Returns:
        ``h``: ``(T, H)`` or ``(B, T, H)``.

    Example:
        >>> params = init_selective(jax.random.PRNGKey(0), 3, 4)
        >>> selective(params, jnp.ones((5, 3)), decay="exp").shape
        (5, 4)
    """
    V.check_choice(decay, "decay", DECAYS)
    x, mode = _prepare(params, SelectiveParams, x, mode)
    C.check_state(h0, "h0", params.hidden_dim, x.shape)
    return _selective(params, x, C.initial_state(h0, x, params.decay_weight), mode, decay)
