r"""Finite-state machines, input-driven HMMs and switching models as bilinear cells
(docs/theory.md section 7).

A bilinear cell ``h_t = A(x_t) h_{t-1}`` (:mod:`switchssm.rnn.bilinear`) is the forward
recursion of every model whose transition the input selects:

- a deterministic **finite-state machine** is its one-hot form: ``A(e_k)`` is the 0/1 matrix
  of ``q -> delta(q, k)``, and the state stays one-hot on the machine's state at every step
  (Ebrahimi & Memisevic 2025, Proposition 1): :func:`bilinear_from_fsm`;
- an **input-driven HMM** is its normalized form: with the input ``(x_t, y_t)`` one-hot over
  pairs, ``A = diag(E[:, y]) P_x'`` and the normalized state is the exact forward filter
  ``P(s_t | x_{1:t}, y_{1:t})``: :func:`bilinear_from_iohmm`, :func:`iohmm_filter`;
- the **switching model** is its identity-plus-rank-one corner: the exact filter obeys
  ``p_t ∝ A_t p_{t-1}`` with ``A_t = (1 - rho) diag(e_t(0, .)) + rho (e_t(1, .) * pi) 1'``,
  which in the gated model is exactly ``(1 - g_t) I + g_t q_t 1'`` (the positive-state
  minGRU): :func:`switching_operators`, :func:`bilinear_from_switching`.
"""

# ruff: noqa: F722  (jaxtyping shape strings such as "T K" are not forward references)

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from switchssm import _validation as V
from switchssm.inference import gated_gate_and_candidate
from switchssm.inference import validate_inputs
from switchssm.inference._emissions import normalized_log_evidence
from switchssm.models.iohmm import IOHMMParams
from switchssm.models.params import CategoricalEmission
from switchssm.models.params import SwitchingParams
from switchssm.rnn.bilinear import bilinear
from switchssm.rnn.bilinear_params import BilinearParams
from switchssm.types import Array
from switchssm.types import Float

__all__ = [
    "bilinear_from_fsm",
    "bilinear_from_iohmm",
    "bilinear_from_switching",
    "check_fsm",
    "iohmm_filter",
    "iohmm_inputs",
    "switching_operators",
]


def check_fsm(transition, initial_state=None) -> tuple[np.ndarray, int | None]:
    """Validate a deterministic finite-state machine; return ``(transition, initial_state)``.

    Args:
        transition: ``(num_symbols, num_states)`` integers, ``transition[k, q]`` the state
            after reading symbol ``k`` in state ``q``.
        initial_state: the start state ``q_0`` (or ``None`` to skip).

    Raises:
        ValueError: naming the argument (wrong shape, non-integers, states out of range).
    """
    a = np.asarray(transition)
    if a.ndim != 2 or min(a.shape) < 1:
        raise ValueError(
            f"`transition` must be a (num_symbols, num_states) integer array, got shape {a.shape}"
        )
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)) or (
        a.dtype == bool
    ):
        raise ValueError(f"`transition` must hold integer states, got dtype {a.dtype}")
    if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a) & (a == np.round(a))):
        raise ValueError("`transition` must hold integer states, got non-integral values")
    num_states = a.shape[1]
    if a.min() < 0 or a.max() >= num_states:
        bad = a[(a < 0) | (a >= num_states)].ravel()[0]
        raise ValueError(
            f"`transition` entries must be states in 0..{num_states - 1} (num_states = "
            f"transition.shape[1]), got {bad}"
        )
    q0 = None
    if initial_state is not None:
        q0 = V.check_int(initial_state, "initial_state", low=0, high=num_states - 1)
    return a.astype(np.int64), q0


def bilinear_from_fsm(transition, initial_state: int, *, dtype=None) -> BilinearParams:
    r"""The full bilinear cell that simulates a finite-state machine exactly (Proposition 1).

    .. math:: W_{ijk} = [\,\delta(j, k) = i\,], \qquad h_0 = e_{q_0},

    so on one-hot inputs ``A(e_k) = W[:, :, k]`` maps the one-hot state ``e_q`` to
    ``e_{delta(q, k)}``: the state is one-hot on the machine's state after every prefix, at
    any length and in any float precision (products of 0s and 1s are exact).

    Args:
        transition: ``(num_symbols, num_states)`` integer next states (see :func:`check_fsm`).
        initial_state: ``q_0``.
        dtype: float dtype of the weights (default: JAX's default float).

    Returns:
        :class:`~switchssm.rnn.BilinearParams` with ``H = num_states``, ``D = num_symbols``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from switchssm.rnn import bilinear
        >>> parity = [[0, 1], [1, 0]]  # symbol 0 keeps the state, symbol 1 flips it
        >>> cell = bilinear_from_fsm(parity, 0)
        >>> h = bilinear(cell, jax.nn.one_hot(jnp.array([1, 1, 0, 1]), 2))
        >>> h.argmax(-1).tolist()
        [1, 0, 0, 1]
    """
    a, q0 = check_fsm(transition, initial_state)
    num_symbols, num_states = a.shape
    dtype = jnp.result_type(float) if dtype is None else dtype
    w = np.zeros((num_states, num_states, num_symbols))
    w[a.T, np.arange(num_states)[:, None], np.arange(num_symbols)[None, :]] = 1.0
    h0 = np.zeros(num_states)
    h0[q0] = 1.0
    return BilinearParams(jnp.asarray(w, dtype), jnp.asarray(h0, dtype))


def iohmm_inputs(params: IOHMMParams, x, y) -> Float[Array, "T XY"]:
    """One-hot inputs over ``(x_t, y_t)`` pairs (index ``x * num_outputs + y``), the inputs of
    the cell of :func:`bilinear_from_iohmm`.

    Args:
        params: :class:`~switchssm.models.IOHMMParams` (fixes the alphabet sizes).
        x: ``(T,)`` integer inputs.
        y: ``(T,)`` integer outputs.

    Returns:
        ``(T, num_inputs * num_outputs)`` one-hot rows.
    """
    params.validate_sequences(x, y)
    idx = np.asarray(x, np.int64) * params.num_outputs + np.asarray(y, np.int64)
    return jax.nn.one_hot(
        idx, params.num_inputs * params.num_outputs, dtype=params.initial_probs.dtype
    )


def bilinear_from_iohmm(params: IOHMMParams) -> BilinearParams:
    r"""The bilinear cell whose normalized state is the IOHMM's forward filter.

    .. math::
        \alpha_t(i) \propto E[i, y_t] \sum_j P_{x_t}[j, i]\, \alpha_{t-1}(j)
        \quad\Longleftrightarrow\quad h_t = A(x_t, y_t)\, h_{t-1},\
        A(x, y)_{ij} = W_{ij,(x,y)} = E[i, y]\, P_x[j, i],

    with ``h_0 = pi``, so ``h_t / sum(h_t) = P(s_t | x_{1:t}, y_{1:t})`` (``h_t`` itself is
    the joint ``P(s_t, y_{1:t} | x_{1:t})``, which underflows on long sequences: run the cell
    with ``normalize=True`` and renormalize to sum one, as :func:`iohmm_filter` does).

    Args:
        params: :class:`~switchssm.models.IOHMMParams`.

    Returns:
        :class:`~switchssm.rnn.BilinearParams` with ``H = K`` and
        ``D = num_inputs * num_outputs`` (inputs from :func:`iohmm_inputs`).

    Example:
        >>> import numpy as np
        >>> from switchssm.models import IOHMMParams
        >>> P = np.array([[[.9, .1], [.2, .8]], [[.1, .9], [.7, .3]]])
        >>> params = IOHMMParams(np.array([.5, .5]), P, np.array([[.8, .2], [.3, .7]]))
        >>> bilinear_from_iohmm(params).weight.shape
        (2, 2, 4)
    """
    if not isinstance(params, IOHMMParams):
        raise ValueError(f"`params` must be IOHMMParams, got {type(params).__name__}")
    P = params.transition_probs  # (X, K, K): [x, j, i]
    E = params.emission_probs  # (K, Y)
    # W[i, j, x, y] = E[i, y] P[x, j, i]
    w = jnp.einsum("iy,xji->ijxy", E, P)
    K = params.num_states
    return BilinearParams(w.reshape(K, K, -1), params.initial_probs)


def iohmm_filter(params: IOHMMParams, x, y, *, mode: str | None = None) -> Float[Array, "T K"]:
    """``P(s_t | x_{1:t}, y_{1:t})`` for every ``t``, computed by the normalized bilinear cell
    of :func:`bilinear_from_iohmm` (finite at any length).

    Args:
        params: :class:`~switchssm.models.IOHMMParams`.
        x: ``(T,)`` integer inputs.
        y: ``(T,)`` integer outputs.
        mode: ``"sequential"``, ``"parallel"`` or ``None`` (backend default).

    Returns:
        ``(T, K)`` filtered state probabilities.

    Raises:
        ValueError: an impossible sequence (a step of probability zero), naming the step.

    Example:
        >>> import numpy as np
        >>> from switchssm.models import IOHMMParams
        >>> P = np.array([[[1., 0.], [0., 1.]]])  # one input that keeps the state
        >>> params = IOHMMParams(np.array([.5, .5]), P, np.array([[.9, .1], [.1, .9]]))
        >>> iohmm_filter(params, np.zeros(2, int), np.array([0, 0]))[-1].round(4).tolist()
        [0.9878, 0.0122]
    """
    cell = bilinear_from_iohmm(params)
    h = bilinear(cell, iohmm_inputs(params, x, y), mode=mode, normalize=True)
    total = jnp.sum(h, axis=-1, keepdims=True)
    bad = np.flatnonzero(np.asarray(total[:, 0]) <= 0)
    if bad.size:
        raise ValueError(
            f"the sequence is impossible under the model: P(y_t | ...) = 0 at step {bad[0]}"
        )
    return h / total


def switching_operators(params: SwitchingParams, y, u=None) -> Float[Array, "T K K"]:
    r"""The operators ``A_t`` of the switching model's exact filter, ``p_t ∝ A_t p_{t-1}``.

    .. math::
        A_t = (1-\rho)\,\mathrm{diag}(e_t(0, \cdot)) + \rho\,(e_t(1, \cdot) \odot \pi)\,1^\top,

    identity-like plus rank one, selected by the input, with ``e_t(z, k) = P(y_t, u_t | z,
    s_t = k)`` scaled per step (the normalized recursion does not see the scale). In the gated
    model ``e_t(0, .)`` is constant over states and the operator is, exactly,

    .. math:: A_t = (1 - g_t)\, I + g_t\, q_t 1^\top,

    (``g_t``, ``q_t`` the gate and candidate of the positive-state minGRU,
    :func:`~switchssm.inference.gated_gate_and_candidate``): ``1' A_t = 1'``, so the
    unnormalized recurrence stays on the simplex.

    Args:
        params: :class:`~switchssm.models.SwitchingParams` (gated or always emitting).
        y: ``(T,)`` symbols or ``(T, D)`` observations.
        u: the cue, if the model has one.

    Returns:
        ``(T, K, K)`` operators.

    Example:
        >>> import numpy as np
        >>> from switchssm.models import SwitchingParams, CategoricalEmission
        >>> p = SwitchingParams(np.array([.5, .5]), .1,
        ...                     CategoricalEmission(np.array([[.8, .2], [.3, .7]])), gated=True)
        >>> A = switching_operators(p, np.array([0, 1, 1]))
        >>> np.allclose(A.sum(axis=1), 1.0)  # columns sum to one: the simplex is kept
        True
    """
    y, u = validate_inputs(params, y, u)
    return _operators(params, y, u)


@jax.jit
def _operators(params, y, u):
    K = params.initial_probs.shape[0]
    eye = jnp.eye(K, dtype=params.initial_probs.dtype)
    if params.gated:
        g, q, _ = gated_gate_and_candidate(params, y, u)
        return (1.0 - g)[:, None, None] * eye + g[:, None, None] * q[:, :, None]
    log_e, _ = normalized_log_evidence(params, y, u)
    e = jnp.exp(log_e)  # (T, 2, K), each step scaled by its maximum
    rho, pi = params.switch_prob, params.initial_probs
    keep = (1.0 - rho) * e[:, 0, :, None] * eye
    return keep + (rho * e[:, 1] * pi)[:, :, None] * jnp.ones((K,), eye.dtype)


def bilinear_from_switching(params: SwitchingParams) -> BilinearParams:
    r"""A categorical switching model without a cue as a full bilinear cell over one-hot ``y``.

    Without a cue the operator of :func:`switching_operators` depends on ``y_t`` alone, so
    ``W[:, :, v] = A(v)``; ``h_0 = pi``. Normalized to sum one, the state is the exact filter
    ``P(s_t | y_{1:t})`` (gated model: no normalization needed, the simplex is kept).

    Args:
        params: a :class:`~switchssm.models.SwitchingParams` with a categorical emission and
            no cue (with a cue the operator is a nonlinear function of a real ``u_t``: use
            :func:`switching_operators`).

    Returns:
        :class:`~switchssm.rnn.BilinearParams` with ``H = K``, ``D = V``.

    Example:
        >>> import numpy as np, jax
        >>> from switchssm.models import SwitchingParams, CategoricalEmission
        >>> from switchssm.rnn import bilinear
        >>> p = SwitchingParams(np.array([.5, .5]), .1,
        ...                     CategoricalEmission(np.array([[.8, .2], [.3, .7]])), gated=True)
        >>> cell = bilinear_from_switching(p)
        >>> bilinear(cell, jax.nn.one_hot(np.array([0, 1, 1]), 2)).sum(-1).round(6).tolist()
        [1.0, 1.0, 1.0]
    """
    if not isinstance(params, SwitchingParams):
        raise ValueError(f"`params` must be SwitchingParams, got {type(params).__name__}")
    if not isinstance(params.emission, CategoricalEmission) or params.cue is not None:
        raise ValueError(
            "`params` must have a categorical emission and no cue (with a cue, or Gaussian "
            "observations, the operator is not linear in a one-hot input: use "
            "switching_operators)"
        )
    V_ = params.emission.num_symbols
    A = _operators(params, jnp.arange(V_, dtype=jnp.int32), None)  # (V, K, K)
    return BilinearParams(jnp.moveaxis(A, 0, -1), params.initial_probs)
