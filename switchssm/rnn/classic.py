"""Sequential baseline cells: GRU, LSTM, Elman, light GRU.

Their gates read the previous state ``h_{t-1}``, so the recurrence is nonlinear in
``h`` and runs step by step with :func:`jax.lax.scan` (no ``mode`` argument).
All functions take ``x`` of shape ``(T, D_in)`` or ``(B, T, D_in)`` and return
states for every step, ``(T, H)`` or ``(B, T, H)``; the state before the first
step defaults to zeros.

Weights follow one naming pattern: ``<part>_weight (H, D_in)`` reads the input,
``<part>_recurrent (H, H)`` reads the previous state and ``<part>_bias (H,)``.
``gate`` is the update gate ``z`` (as in :class:`~switchssm.rnn.MinGRUParams`),
``candidate`` the proposed state ``h~``.
"""

# ruff: noqa: F722  (jaxtyping shape strings such as "H D" are not forward references)

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from switchssm import _validation as V
from switchssm._pytree import params_pytree
from switchssm._pytree import shape_dim
from switchssm.rnn import _common as C
from switchssm.types import Array
from switchssm.types import Float
from switchssm.types import PRNGKeyArray

__all__ = [
    "ElmanParams",
    "GRUParams",
    "LSTMParams",
    "LSTMState",
    "LiGRUParams",
    "elman",
    "elman_step",
    "gru",
    "gru_step",
    "init_elman",
    "init_gru",
    "init_ligru",
    "init_lstm",
    "ligru",
    "ligru_step",
    "lstm",
    "lstm_step",
]

LIGRU_ACTIVATIONS = ("relu", "tanh")


def _rec(h: Array, u: Array) -> Array:
    return h @ u.T


def _scan_time(step, state0, x: Array):
    """Run ``step(state, x_t) -> (state, out)`` over the time axis (-2) of ``x``."""
    xs = jnp.moveaxis(x, -2, 0)
    _, out = jax.lax.scan(step, state0, xs)
    return jax.tree_util.tree_map(lambda o: jnp.moveaxis(o, 0, -2), out)


def _check_parts(params, parts: tuple[str, ...], recurrent: tuple[str, ...]):
    hidden_dim, input_dim = C.check_linear(params, parts[0], None, None)
    for p in parts[1:]:
        C.check_linear(params, p, hidden_dim, input_dim)
    for p in recurrent:
        C.check_recurrent(params, p, hidden_dim)


def _prepare_x(x):
    return C.as_input(x)


# ---------------------------------------------------------------------------
# GRU
# ---------------------------------------------------------------------------


@params_pytree(promote=False)
class GRUParams:
    """GRU weights (docs/theory.md section 0).

    Args:
        gate_weight, gate_recurrent, gate_bias: update gate ``z``, shapes ``(H, D_in)``,
            ``(H, H)``, ``(H,)``.
        reset_weight, reset_recurrent, reset_bias: reset gate ``r``.
        candidate_weight, candidate_recurrent, candidate_bias: candidate ``h~``.
    """

    gate_weight: Float[Array, "H D"]
    gate_recurrent: Float[Array, "H H"]
    gate_bias: Float[Array, " H"]
    reset_weight: Float[Array, "H D"]
    reset_recurrent: Float[Array, "H H"]
    reset_bias: Float[Array, " H"]
    candidate_weight: Float[Array, "H D"]
    candidate_recurrent: Float[Array, "H H"]
    candidate_bias: Float[Array, " H"]

    def _validate(self):
        _check_parts(self, ("gate", "reset", "candidate"), ("gate", "reset", "candidate"))

    input_dim = shape_dim("gate_weight", 1)
    hidden_dim = shape_dim("gate_weight", 0)


def init_gru(key: PRNGKeyArray, input_dim: int, hidden_dim: int, *, dtype=None) -> GRUParams:
    """Random GRU weights, ``U(+-1/sqrt(fan_in))``, zero biases.

    Args:
        key: PRNG key.
        input_dim: ``D_in``.
        hidden_dim: ``H``.
        dtype: float dtype (default: JAX's default float).

    Returns:
        :class:`GRUParams`.

    Example:
        >>> params = init_gru(jax.random.PRNGKey(0), 3, 4)
        >>> params.gate_recurrent.shape
        (4, 4)
    """
    C.check_dims(input_dim, hidden_dim)
    k = jax.random.split(key, 6)
    w = lambda kk: C.uniform(kk, (hidden_dim, input_dim), input_dim, dtype)
    u = lambda kk: C.uniform(kk, (hidden_dim, hidden_dim), hidden_dim, dtype)
    zero = jnp.zeros((hidden_dim,), dtype or jnp.result_type(float))
    return GRUParams(w(k[0]), u(k[1]), zero, w(k[2]), u(k[3]), zero, w(k[4]), u(k[5]), zero)


def gru_step(params: GRUParams, h_prev: Float[Array, "... H"], x_t: Float[Array, "... D"]):
    r"""One GRU step.

    .. math::
        z = \sigma(W_z x_t + U_z h_{t-1} + b_z),\quad r = \sigma(W_r x_t + U_r h_{t-1} + b_r),\\
        \tilde h = \tanh(W_h x_t + U_h (r \odot h_{t-1}) + b_h),\quad
        h_t = (1 - z) h_{t-1} + z \tilde h.

    Args:
        params: :class:`GRUParams`.
        h_prev: ``(..., H)`` previous state.
        x_t: ``(..., D_in)`` input.

    Returns:
        ``h_t``, ``(..., H)``.

    Example:
        >>> params = init_gru(jax.random.PRNGKey(0), 3, 4)
        >>> gru_step(params, jnp.zeros(4), jnp.ones(3)).shape
        (4,)
    """
    p = params
    z = jax.nn.sigmoid(C.linear(x_t, p.gate_weight, p.gate_bias) + _rec(h_prev, p.gate_recurrent))
    r = jax.nn.sigmoid(
        C.linear(x_t, p.reset_weight, p.reset_bias) + _rec(h_prev, p.reset_recurrent)
    )
    cand = jnp.tanh(
        C.linear(x_t, p.candidate_weight, p.candidate_bias)
        + _rec(r * h_prev, p.candidate_recurrent)
    )
    return (1.0 - z) * h_prev + z * cand


@jax.jit
def _gru(params, x, h0):
    def step(h, x_t):
        h = gru_step(params, h, x_t)
        return h, h

    return _scan_time(step, h0, x)


def gru(
    params: GRUParams, x: Float[Array, "*B T D"], h0: Float[Array, "*B H"] | None = None
) -> Float[Array, "*B T H"]:
    """Run a GRU over a sequence (see :func:`gru_step` for the equations).

    Args:
        params: :class:`GRUParams`.
        x: ``(T, D_in)`` or ``(B, T, D_in)`` inputs.
        h0: ``(H,)`` or ``(B, H)`` state before the first step; zeros if ``None``.

    Returns:
        ``h``: ``(T, H)`` or ``(B, T, H)``, the state after each step.

    Example:
        >>> params = init_gru(jax.random.PRNGKey(0), 3, 4)
        >>> gru(params, jnp.ones((5, 3))).shape
        (5, 4)
    """
    C.check_params(params, GRUParams)
    C.check_inputs(x, params.input_dim)
    C.check_state(h0, "h0", params.hidden_dim, np.shape(x))
    x = _prepare_x(x)
    return _gru(params, x, C.initial_state(h0, x, params.gate_weight))


# ---------------------------------------------------------------------------
# LSTM
# ---------------------------------------------------------------------------


class LSTMState(NamedTuple):
    """LSTM output and cell states (each ``(..., H)``, or ``(..., T, H)`` over a sequence)."""

    hidden: Array
    cell: Array


@params_pytree(promote=False)
class LSTMParams:
    """LSTM weights.

    Args:
        forget_weight, forget_recurrent, forget_bias: forget gate ``f``.
        input_weight, input_recurrent, input_bias: input gate ``i``.
        output_weight, output_recurrent, output_bias: output gate ``o``.
        candidate_weight, candidate_recurrent, candidate_bias: cell candidate ``c~``.
    """

    forget_weight: Float[Array, "H D"]
    forget_recurrent: Float[Array, "H H"]
    forget_bias: Float[Array, " H"]
    input_weight: Float[Array, "H D"]
    input_recurrent: Float[Array, "H H"]
    input_bias: Float[Array, " H"]
    output_weight: Float[Array, "H D"]
    output_recurrent: Float[Array, "H H"]
    output_bias: Float[Array, " H"]
    candidate_weight: Float[Array, "H D"]
    candidate_recurrent: Float[Array, "H H"]
    candidate_bias: Float[Array, " H"]

    def _validate(self):
        parts = ("forget", "input", "output", "candidate")
        _check_parts(self, parts, parts)

    input_dim = shape_dim("forget_weight", 1)
    hidden_dim = shape_dim("forget_weight", 0)


def init_lstm(
    key: PRNGKeyArray, input_dim: int, hidden_dim: int, *, forget_bias: float = 1.0, dtype=None
) -> LSTMParams:
    """Random LSTM weights, ``U(+-1/sqrt(fan_in))``; biases zero except the forget gate.

    A positive forget bias (default 1, Jozefowicz et al. 2015) makes the initial cell
    remember rather than forget.

    Args:
        key: PRNG key.
        input_dim: ``D_in``.
        hidden_dim: ``H``.
        forget_bias: initial forget-gate bias.
        dtype: float dtype (default: JAX's default float).

    Returns:
        :class:`LSTMParams`.

    Example:
        >>> init_lstm(jax.random.PRNGKey(0), 3, 4).forget_bias.tolist()
        [1.0, 1.0, 1.0, 1.0]
    """
    C.check_dims(input_dim, hidden_dim)
    k = jax.random.split(key, 8)
    w = lambda kk: C.uniform(kk, (hidden_dim, input_dim), input_dim, dtype)
    u = lambda kk: C.uniform(kk, (hidden_dim, hidden_dim), hidden_dim, dtype)
    zero = jnp.zeros((hidden_dim,), dtype or jnp.result_type(float))
    return LSTMParams(
        w(k[0]),
        u(k[1]),
        zero + forget_bias,
        w(k[2]),
        u(k[3]),
        zero,
        w(k[4]),
        u(k[5]),
        zero,
        w(k[6]),
        u(k[7]),
        zero,
    )


def lstm_step(params: LSTMParams, state: LSTMState, x_t: Float[Array, "... D"]) -> LSTMState:
    r"""One LSTM step.

    .. math::
        f, i, o = \sigma(W_\cdot x_t + U_\cdot h_{t-1} + b_\cdot),\quad
        \tilde c = \tanh(W_c x_t + U_c h_{t-1} + b_c),\\
        c_t = f c_{t-1} + i \tilde c,\quad h_t = o \tanh(c_t).

    Args:
        params: :class:`LSTMParams`.
        state: :class:`LSTMState` ``(h_{t-1}, c_{t-1})``, each ``(..., H)``.
        x_t: ``(..., D_in)`` input.

    Returns:
        :class:`LSTMState` ``(h_t, c_t)``.

    Example:
        >>> params = init_lstm(jax.random.PRNGKey(0), 3, 4)
        >>> lstm_step(params, LSTMState(jnp.zeros(4), jnp.zeros(4)), jnp.ones(3)).cell.shape
        (4,)
    """
    p = params
    h, c = state
    pre = lambda part: (
        C.linear(x_t, getattr(p, f"{part}_weight"), getattr(p, f"{part}_bias"))
        + _rec(h, getattr(p, f"{part}_recurrent"))
    )
    f = jax.nn.sigmoid(pre("forget"))
    i = jax.nn.sigmoid(pre("input"))
    o = jax.nn.sigmoid(pre("output"))
    c = f * c + i * jnp.tanh(pre("candidate"))
    return LSTMState(o * jnp.tanh(c), c)


@jax.jit
def _lstm(params, x, state0):
    def step(state, x_t):
        state = lstm_step(params, state, x_t)
        return state, state

    return LSTMState(*_scan_time(step, state0, x))


def lstm(
    params: LSTMParams,
    x: Float[Array, "*B T D"],
    h0: Float[Array, "*B H"] | None = None,
    c0: Float[Array, "*B H"] | None = None,
    *,
    return_cell: bool = False,
):
    """Run an LSTM over a sequence (see :func:`lstm_step` for the equations).

    Args:
        params: :class:`LSTMParams`.
        x: ``(T, D_in)`` or ``(B, T, D_in)`` inputs.
        h0: ``(H,)`` or ``(B, H)`` output state before the first step; zeros if ``None``.
        c0: same for the cell state.
        return_cell: also return the cell states.

    Returns:
        ``h``: ``(T, H)`` or ``(B, T, H)``; with ``return_cell=True`` an
        :class:`LSTMState` ``(hidden, cell)`` of such arrays.

    Example:
        >>> params = init_lstm(jax.random.PRNGKey(0), 3, 4)
        >>> lstm(params, jnp.ones((2, 5, 3))).shape
        (2, 5, 4)
    """
    C.check_params(params, LSTMParams)
    C.check_inputs(x, params.input_dim)
    C.check_state(h0, "h0", params.hidden_dim, np.shape(x))
    C.check_state(c0, "c0", params.hidden_dim, np.shape(x))
    x = _prepare_x(x)
    w = params.forget_weight
    out = _lstm(params, x, LSTMState(C.initial_state(h0, x, w), C.initial_state(c0, x, w)))
    return out if return_cell else out.hidden


# ---------------------------------------------------------------------------
# Elman
# ---------------------------------------------------------------------------


@params_pytree(promote=False)
class ElmanParams:
    """Elman (vanilla tanh) RNN weights.

    Args:
        candidate_weight: ``(H, D_in)``.
        candidate_recurrent: ``(H, H)``.
        candidate_bias: ``(H,)``.

    The new state is the candidate itself (no gate), hence the names.
    """

    candidate_weight: Float[Array, "H D"]
    candidate_recurrent: Float[Array, "H H"]
    candidate_bias: Float[Array, " H"]

    def _validate(self):
        _check_parts(self, ("candidate",), ("candidate",))

    input_dim = shape_dim("candidate_weight", 1)
    hidden_dim = shape_dim("candidate_weight", 0)


def init_elman(key: PRNGKeyArray, input_dim: int, hidden_dim: int, *, dtype=None) -> ElmanParams:
    """Random Elman weights, ``U(+-1/sqrt(fan_in))``, zero bias.

    Args:
        key: PRNG key.
        input_dim: ``D_in``.
        hidden_dim: ``H``.
        dtype: float dtype (default: JAX's default float).

    Returns:
        :class:`ElmanParams`.

    Example:
        >>> init_elman(jax.random.PRNGKey(0), 3, 4).hidden_dim
        4
    """
    C.check_dims(input_dim, hidden_dim)
    k1, k2 = jax.random.split(key)
    return ElmanParams(
        C.uniform(k1, (hidden_dim, input_dim), input_dim, dtype),
        C.uniform(k2, (hidden_dim, hidden_dim), hidden_dim, dtype),
        jnp.zeros((hidden_dim,), dtype or jnp.result_type(float)),
    )


def elman_step(params: ElmanParams, h_prev: Float[Array, "... H"], x_t: Float[Array, "... D"]):
    r"""One Elman step: :math:`h_t = \tanh(W x_t + U h_{t-1} + b)`.

    Args:
        params: :class:`ElmanParams`.
        h_prev: ``(..., H)`` previous state.
        x_t: ``(..., D_in)`` input.

    Returns:
        ``h_t``, ``(..., H)``.

    Example:
        >>> params = init_elman(jax.random.PRNGKey(0), 3, 4)
        >>> elman_step(params, jnp.zeros(4), jnp.ones(3)).shape
        (4,)
    """
    p = params
    return jnp.tanh(
        C.linear(x_t, p.candidate_weight, p.candidate_bias) + _rec(h_prev, p.candidate_recurrent)
    )


@jax.jit
def _elman(params, x, h0):
    def step(h, x_t):
        h = elman_step(params, h, x_t)
        return h, h

    return _scan_time(step, h0, x)


def elman(
    params: ElmanParams, x: Float[Array, "*B T D"], h0: Float[Array, "*B H"] | None = None
) -> Float[Array, "*B T H"]:
    """Run an Elman RNN over a sequence (see :func:`elman_step`).

    Args:
        params: :class:`ElmanParams`.
        x: ``(T, D_in)`` or ``(B, T, D_in)`` inputs.
        h0: ``(H,)`` or ``(B, H)`` state before the first step; zeros if ``None``.

    Returns:
        ``h``: ``(T, H)`` or ``(B, T, H)``.

    Example:
        >>> params = init_elman(jax.random.PRNGKey(0), 3, 4)
        >>> elman(params, jnp.ones((5, 3))).shape
        (5, 4)
    """
    C.check_params(params, ElmanParams)
    C.check_inputs(x, params.input_dim)
    C.check_state(h0, "h0", params.hidden_dim, np.shape(x))
    x = _prepare_x(x)
    return _elman(params, x, C.initial_state(h0, x, params.candidate_weight))


# ---------------------------------------------------------------------------
# Light GRU
# ---------------------------------------------------------------------------


@params_pytree(promote=False)
class LiGRUParams:
    """Light GRU weights (Ravanelli et al. 2018): no reset gate.

    Args:
        gate_weight, gate_recurrent, gate_bias: update gate ``z``.
        candidate_weight, candidate_recurrent, candidate_bias: candidate ``h~``.

    Note the Li-GRU convention: ``z`` weighs the *previous* state,
    ``h_t = z h_{t-1} + (1 - z) h~``, the mirror image of :func:`gru_step`.
    """

    gate_weight: Float[Array, "H D"]
    gate_recurrent: Float[Array, "H H"]
    gate_bias: Float[Array, " H"]
    candidate_weight: Float[Array, "H D"]
    candidate_recurrent: Float[Array, "H H"]
    candidate_bias: Float[Array, " H"]

    def _validate(self):
        _check_parts(self, ("gate", "candidate"), ("gate", "candidate"))

    input_dim = shape_dim("gate_weight", 1)
    hidden_dim = shape_dim("gate_weight", 0)


def init_ligru(key: PRNGKeyArray, input_dim: int, hidden_dim: int, *, dtype=None) -> LiGRUParams:
    """Random Li-GRU weights, ``U(+-1/sqrt(fan_in))``, zero biases.

    Args:
        key: PRNG key.
        input_dim: ``D_in``.
        hidden_dim: ``H``.
        dtype: float dtype (default: JAX's default float).

    Returns:
        :class:`LiGRUParams`.

    Example:
        >>> init_ligru(jax.random.PRNGKey(0), 3, 4).input_dim
        3
    """
    C.check_dims(input_dim, hidden_dim)
    k = jax.random.split(key, 4)
    w = lambda kk: C.uniform(kk, (hidden_dim, input_dim), input_dim, dtype)
    u = lambda kk: C.uniform(kk, (hidden_dim, hidden_dim), hidden_dim, dtype)
    zero = jnp.zeros((hidden_dim,), dtype or jnp.result_type(float))
    return LiGRUParams(w(k[0]), u(k[1]), zero, w(k[2]), u(k[3]), zero)


def ligru_step(
    params: LiGRUParams,
    h_prev: Float[Array, "... H"],
    x_t: Float[Array, "... D"],
    *,
    activation: str = "relu",
):
    r"""One light-GRU step.

    .. math::
        z = \sigma(W_z x_t + U_z h_{t-1} + b_z),\quad
        \tilde h = \mathrm{act}(W_h x_t + U_h h_{t-1} + b_h),\quad
        h_t = z h_{t-1} + (1 - z) \tilde h.

    Args:
        params: :class:`LiGRUParams`.
        h_prev: ``(..., H)`` previous state.
        x_t: ``(..., D_in)`` input.
        activation: ``"relu"`` (the paper's choice) or ``"tanh"``.

    Returns:
        ``h_t``, ``(..., H)``.

    Example:
        >>> params = init_ligru(jax.random.PRNGKey(0), 3, 4)
        >>> ligru_step(params, jnp.zeros(4), jnp.ones(3)).shape
        (4,)
    """
    p = params
    act = {"relu": jax.nn.relu, "tanh": jnp.tanh}[activation]
    z = jax.nn.sigmoid(C.linear(x_t, p.gate_weight, p.gate_bias) + _rec(h_prev, p.gate_recurrent))
    cand = act(
        C.linear(x_t, p.candidate_weight, p.candidate_bias) + _rec(h_prev, p.candidate_recurrent)
    )
    return z * h_prev + (1.0 - z) * cand


@functools.partial(jax.jit, static_argnames=("activation",))
def _ligru(params, x, h0, activation):
    def step(h, x_t):
        h = ligru_step(params, h, x_t, activation=activation)
        return h, h

    return _scan_time(step, h0, x)


def ligru(
    params: LiGRUParams,
    x: Float[Array, "*B T D"],
    h0: Float[Array, "*B H"] | None = None,
    *,
    activation: str = "relu",
) -> Float[Array, "*B T H"]:
    """Run a light GRU over a sequence (see :func:`ligru_step`).

    Args:
        params: :class:`LiGRUParams`.
        x: ``(T, D_in)`` or ``(B, T, D_in)`` inputs.
        h0: ``(H,)`` or ``(B, H)`` state before the first step; zeros if ``None``.
        activation: candidate activation, ``"relu"`` or ``"tanh"``.

    Returns:
        ``h``: ``(T, H)`` or ``(B, T, H)``.

    Example:
        >>> params = init_ligru(jax.random.PRNGKey(0), 3, 4)
        >>> ligru(params, jnp.ones((5, 3))).shape
        (5, 4)
    """
    C.check_params(params, LiGRUParams)
    V.check_choice(activation, "activation", LIGRU_ACTIVATIONS)
    C.check_inputs(x, params.input_dim)
    C.check_state(h0, "h0", params.hidden_dim, np.shape(x))
    x = _prepare_x(x)
    return _ligru(params, x, C.initial_state(h0, x, params.gate_weight), activation)
