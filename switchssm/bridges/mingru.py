r"""Switching models <-> minGRU and selective SSM cells (theory.md sections 2, 3 and 5).

The categorical switching model (``switchssm.models.SwitchingParams``) has a filter that is,
row by row of theory.md section 5, an RNN cell whose weights are read off the model:

======================================  =====================================================
generative assumption                   cell built here
======================================  =====================================================
gated emission                          :func:`mingru_from_model`, positive states, exact
same, log-linear pooling                :func:`mingru_from_model` run in logit space,
                                        exact iff the gates are hard (``g_t in {0, 1}``)
always emitting, hard gates             :func:`selective_from_model`, exact
no switch (``rho = 0``), always         :func:`cumulative_evidence`, :func:`evidence_attention`
D independent binary chains             :func:`factorial_mingru_from_models`, per-unit gates
======================================  =====================================================

and :func:`model_from_mingru` reads a minGRU back as a switching model (seed 000's
"reverse engineering").

**Input layout.** A cell reads ``x_t = [phi(y_t), u_t]`` (:func:`model_inputs`):
``phi(y_t)`` is ``onehot(y_t)`` (``V`` columns) for a categorical emission or ``y_t``
itself (``D`` columns) for a Gaussian one, followed by the cue ``u_t`` (1 column for a
scalar cue, ``Du`` for a vector cue, none without a cue). :class:`InputLayout` records the
widths. With this layout every pre-activation the filter needs is linear in ``x_t``:

- the gate is the switch posterior of the cue, a logistic regression of ``u_t``
  (theory.md 2.1; :func:`~switchssm.bridges.gaussian_nb_to_logistic` with class prior
  ``(1 - rho, rho)``, class means ``(m_0, m_1)`` and covariance ``diag(tau^2)``):
  ``logit g_t = w' u_t + c`` with ``w = (m_1 - m_0) / tau^2`` and
  ``c = logit rho + (|m_0|^2 - |m_1|^2) / (2 tau^2)`` (per dimension for a vector
  ``tau``). Every unit reads the same gate row: the switch is one scalar.
- the candidate is the naive-Bayes posterior of ``s_t`` given ``y_t``:
  ``log pi + l_t = W_h phi(y_t) + b_h + const`` with ``W_h = log B``, ``b_h = log pi``
  (categorical, :func:`~switchssm.bridges.categorical_nb_to_softmax`) or
  ``W_h = S^-1 mu``, ``b_h = log pi - diag(mu S^-1 mu') / 2``
  (Gaussian, :func:`~switchssm.bridges.gaussian_nb_to_softmax`).

All builders run on concrete parameters (they validate them) and return plain arrays.
"""

# ruff: noqa: F722  (jaxtyping shape strings such as "T K" are not forward references)

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from switchssm import _validation as V
from switchssm import scan as _scan
from switchssm.bridges.naive_bayes import (
    categorical_nb_to_softmax,
    gaussian_nb_to_logistic,
    gaussian_nb_to_softmax,
    softmax_to_categorical_nb,
    softmax_to_gaussian_nb,
)
from switchssm.inference import validate_inputs
from switchssm.models.params import (
    CategoricalEmission,
    GaussianCue,
    GaussianEmission,
    SwitchingParams,
)
from switchssm.rnn import MinGRUParams, SelectiveParams, mingru, mingru_log, selective
from switchssm.types import Array, ArrayLike, Float

__all__ = [
    "FactorialBridge",
    "InputLayout",
    "MinGRUBridge",
    "SelectiveBridge",
    "cumulative_evidence",
    "evidence_attention",
    "factorial_model_inputs",
    "factorial_mingru_from_models",
    "factorial_posterior",
    "input_layout",
    "linear_attention_memory",
    "mingru_from_model",
    "mingru_posterior",
    "model_from_mingru",
    "model_inputs",
    "selective_from_model",
    "selective_posterior",
    "sufficient_statistics",
]

_SPACES = ("log", "logit")
_EMISSIONS = ("categorical", "gaussian")


# ---------------------------------------------------------------------------------------
# Input layout
# ---------------------------------------------------------------------------------------


class InputLayout(NamedTuple):
    """Column layout of the cell input ``x_t = [phi(y_t), u_t]``.

    Attributes:
        emission: ``"categorical"`` (``phi(y) = onehot(y)``) or ``"gaussian"`` (``phi(y) = y``).
        obs_dim: width of ``phi(y_t)``: ``V`` symbols or ``D`` dimensions.
        cue_dim: width of ``u_t``: 0 without a cue, 1 for a scalar cue, ``Du`` for a vector.
        scalar_cue: ``True`` when the cue is a scalar (``u`` of shape ``(T,)``).
    """

    emission: str
    obs_dim: int
    cue_dim: int = 0
    scalar_cue: bool = False

    @property
    def input_dim(self) -> int:
        """``D_in = obs_dim + cue_dim``."""
        return self.obs_dim + self.cue_dim

    @property
    def obs_slice(self) -> slice:
        return slice(0, self.obs_dim)

    @property
    def cue_slice(self) -> slice:
        return slice(self.obs_dim, self.obs_dim + self.cue_dim)


def _check_params(params, name: str = "params") -> SwitchingParams:
    if not isinstance(params, SwitchingParams):
        raise ValueError(f"`{name}` must be a SwitchingParams, got {type(params).__name__}")
    if not V.all_concrete(params):
        raise ValueError(f"`{name}` must hold concrete arrays (the bridges are not traced)")
    return params


def input_layout(params: SwitchingParams) -> InputLayout:
    """The :class:`InputLayout` of the cells built from ``params``.

    Example:
        >>> import numpy as np
        >>> from switchssm.models import SwitchingParams, CategoricalEmission, GaussianCue
        >>> p = SwitchingParams(np.ones(2) / 2, 0.1, CategoricalEmission(np.full((2, 3), 1 / 3)),
        ...                     cue=GaussianCue(np.array([0.0, 1.0]), 1.0))
        >>> input_layout(p)
        InputLayout(emission='categorical', obs_dim=3, cue_dim=1, scalar_cue=True)
    """
    _check_params(params)
    em = params.emission
    if isinstance(em, CategoricalEmission):
        kind, obs_dim = "categorical", em.num_symbols
    else:
        kind, obs_dim = "gaussian", em.dim
    cue = params.cue
    if cue is None:
        return InputLayout(kind, obs_dim, 0, False)
    return InputLayout(kind, obs_dim, cue.dim, bool(cue.is_scalar))


def model_inputs(
    params: SwitchingParams, y: ArrayLike, u: ArrayLike | None = None
) -> Float[Array, "T Din"]:
    """The cell input ``x_t = [phi(y_t), u_t]`` for the cells built from ``params``.

    ``phi(y) = onehot(y)`` for a categorical emission, ``y`` for a Gaussian one; the cue
    columns follow (a scalar cue becomes one column). See :class:`InputLayout`.

    Args:
        params: the :class:`~switchssm.models.SwitchingParams` the cell was built from.
        y: ``(T,)`` integer symbols or ``(T, D)`` reals.
        u: the cue, ``(T,)`` or ``(T, Du)``; required iff ``params.cue`` is set.

    Returns:
        ``x``, ``(T, D_in)`` with ``D_in = input_layout(params).input_dim``.

    Example:
        >>> import numpy as np
        >>> from switchssm.models import SwitchingParams, CategoricalEmission
        >>> p = SwitchingParams(np.ones(2) / 2, 0.1, CategoricalEmission(np.full((2, 3), 1 / 3)))
        >>> np.asarray(model_inputs(p, np.array([2, 0]))).tolist()
        [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    _check_params(params)
    validate_inputs(params, y, u)
    layout = input_layout(params)
    dtype = params.initial_probs.dtype
    # Concrete inputs are assembled in NumPy: no per-shape compilation of small ops.
    xp = np if V.all_concrete(y, u) else jnp
    if layout.emission == "categorical":
        obs = xp.eye(layout.obs_dim)[xp.asarray(y).astype(np.int32)]
    else:
        obs = xp.asarray(y)
    if params.cue is not None:
        u = xp.asarray(u)
        obs = xp.concatenate([obs, u.reshape(obs.shape[0], layout.cue_dim)], axis=-1)
    return jnp.asarray(obs, dtype=dtype)


# ---------------------------------------------------------------------------------------
# Model -> linear maps (the naive-Bayes readings of theory.md section 1)
# ---------------------------------------------------------------------------------------


def _gate_map(params: SwitchingParams) -> tuple[np.ndarray, float]:
    """``(w, c)`` with ``P(z_t = 1 | u_t) = sigmoid(w' u_t + c)``; ``w`` has ``cue_dim`` entries."""
    rho = float(params.switch_prob)
    if not 0.0 < rho < 1.0:
        raise ValueError(
            f"`params.switch_prob` must lie in (0, 1) for a minGRU gate, got {rho}: the gate "
            "logit would be infinite. For rho = 0 (no switch) the always-emitting filter is "
            "cumulative evidence (see cumulative_evidence); for rho = 1 every step is fresh"
        )
    cue = params.cue
    if cue is None:
        return np.zeros((0,)), float(np.log(rho) - np.log1p(-rho))
    means = np.asarray(cue.means, dtype=np.float64)
    means = means[:, None] if cue.is_scalar else means
    scale = np.broadcast_to(np.asarray(cue.scale, dtype=np.float64), (means.shape[1],))
    lr = gaussian_nb_to_logistic(np.array([1.0 - rho, rho]), means, np.diag(scale**2))
    return np.asarray(lr.weight, dtype=np.float64), float(lr.bias)


def _emission_map(params: SwitchingParams) -> tuple[np.ndarray, np.ndarray]:
    """``(W, b)`` with ``softmax(W phi(y) + b) = P(s | y)`` under prior ``pi``."""
    em = params.emission
    pi = np.asarray(params.initial_probs, dtype=np.float64)
    if isinstance(em, CategoricalEmission):
        if np.any(pi <= 0) or np.any(np.asarray(em.probs) <= 0):
            raise ValueError(
                "`params.initial_probs` and `params.emission.probs` must be strictly positive "
                "for a finite minGRU: a zero probability is a weight of log 0 = -inf"
            )
        sm = categorical_nb_to_softmax(pi, np.asarray(em.probs, dtype=np.float64))
    else:
        if np.any(pi <= 0):
            raise ValueError("`params.initial_probs` must be strictly positive (bias log pi)")
        sm = gaussian_nb_to_softmax(
            pi, np.asarray(em.means, dtype=np.float64), np.asarray(em.cov, dtype=np.float64)
        )
    return np.asarray(sm.weights, dtype=np.float64), np.asarray(sm.bias, dtype=np.float64)


def _cast(params: SwitchingParams, *arrays):
    dtype = params.initial_probs.dtype
    return tuple(jnp.asarray(a, dtype=dtype) for a in arrays)


# ---------------------------------------------------------------------------------------
# Gated model <-> minGRU
# ---------------------------------------------------------------------------------------


class MinGRUBridge(NamedTuple):
    """A minGRU built from a switching model, with what is needed to run it.

    Attributes:
        cell: :class:`~switchssm.rnn.MinGRUParams` with ``H = K`` units.
        layout: :class:`InputLayout` of ``x_t`` (build ``x`` with :func:`model_inputs`).
        initial_log_state: ``(K,)`` ``log pi``: ``log_h0`` of the positive-state cell,
            ``h0`` of the logit-state cell.
        space: ``"log"`` (positive states, candidate ``"log_softmax"``; exact) or
            ``"logit"`` (real states read out with a softmax; exact iff gates are hard).
    """

    cell: MinGRUParams
    layout: InputLayout
    initial_log_state: Float[Array, " K"]
    space: str = "log"

    @property
    def candidate(self) -> str | None:
        """The ``candidate`` argument of :func:`~switchssm.rnn.mingru_log` (``None`` for logit)."""
        return "log_softmax" if self.space == "log" else None


def mingru_from_model(params: SwitchingParams, *, space: str = "log") -> MinGRUBridge:
    r"""minGRU weights computing the filter of the gated switching model (theory.md 2.1-2.3).

    With ``x_t = [phi(y_t), u_t]`` (:func:`model_inputs`), every unit gets the same gate
    row and the candidate is the naive-Bayes posterior of ``s_t`` given ``y_t``:

    .. math::

        g_t = \sigma(w^\top u_t + c) = P(z_t = 1 \mid x_{1:t}), \qquad
        \tilde h_t = \mathrm{softmax}(W_h \phi(y_t) + b_h) = q_t
        = \mathrm{softmax}(\log\pi + l_t),

    so the positive-state minGRU ``p_t = (1 - g_t) p_{t-1} + g_t q_t`` with ``p_0 = pi``
    (``mingru_log(cell, x, log pi, candidate="log_softmax")``) *is* the exact filter
    ``P(s_t | x_{1:t})`` of the gated model, at every cue strength.

    ``space="logit"`` uses the same weights in the logit-state minGRU,
    ``h_t = (1 - g_t) h_{t-1} + g_t (W_h \phi(y_t) + b_h)``, ``h_0 = \log\pi``, read out as
    ``softmax(h_t)``: geometric (log-linear) pooling of the same two beliefs. It equals
    ``log p_t`` up to a constant when every ``g_t`` is 0 or 1 and differs otherwise
    (theory.md 2.3). For an always-emitting model (``params.gated = False``) the weights are
    the same construction, which is then an approximation (see :func:`selective_from_model`
    for the exact hard-gate cell).

    Args:
        params: a :class:`~switchssm.models.SwitchingParams` with ``0 < rho < 1`` and strictly
            positive ``pi`` (and ``B`` for a categorical emission).
        space: ``"log"`` (positive states) or ``"logit"``.

    Returns:
        :class:`MinGRUBridge`; run it with :func:`mingru_posterior`.

    Example:
        >>> import numpy as np
        >>> from switchssm.models import SwitchingParams, CategoricalEmission, GaussianCue
        >>> from switchssm.inference import filter
        >>> B = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
        >>> p = SwitchingParams(np.array([0.4, 0.6]), 0.2, CategoricalEmission(B),
        ...                     cue=GaussianCue(np.array([0.0, 2.0]), 1.0), gated=True)
        >>> y, u = np.array([0, 2, 2, 1]), np.array([0.1, 1.9, -0.3, 2.5])
        >>> bridge = mingru_from_model(p)
        >>> probs = mingru_posterior(bridge, model_inputs(p, y, u))
        >>> bool(np.allclose(probs, filter(p, y, u).filtered_s, atol=1e-6))
        True
    """
    _check_params(params)
    if space not in _SPACES:
        raise ValueError(f"`space` must be one of {_SPACES}, got {space!r}")
    layout = input_layout(params)
    w, c = _gate_map(params)
    W, b = _emission_map(params)
    K = params.num_states
    gate_row = np.concatenate([np.zeros(layout.obs_dim), w])
    cand = np.concatenate([W, np.zeros((K, layout.cue_dim))], axis=1)
    cell = MinGRUParams(*_cast(params, np.tile(gate_row, (K, 1)), np.full((K,), c), cand, b))
    (log_pi,) = _cast(params, np.log(np.asarray(params.initial_probs, dtype=np.float64)))
    return MinGRUBridge(cell, layout, log_pi, space)


def mingru_posterior(
    bridge: MinGRUBridge, x: Float[ArrayLike, "T Din"], *, mode: str | None = None
) -> Float[Array, "T K"]:
    """Run a :class:`MinGRUBridge` and return its belief over ``s_t``, ``(T, K)``.

    ``space="log"``: ``exp(mingru_log(cell, x, log pi, candidate="log_softmax"))``;
    ``space="logit"``: ``softmax(mingru(cell, x, log pi, space="logit"))``.

    Args:
        bridge: from :func:`mingru_from_model`.
        x: ``(T, D_in)`` inputs from :func:`model_inputs`.
        mode: scan mode (``"sequential"``, ``"parallel"`` or ``None``).

    Returns:
        ``(T, K)`` probabilities.
    """
    if not isinstance(bridge, MinGRUBridge):
        raise ValueError(f"`bridge` must be a MinGRUBridge, got {type(bridge).__name__}")
    if bridge.space == "log":
        log_h = mingru_log(
            bridge.cell, x, bridge.initial_log_state, mode=mode, candidate="log_softmax"
        )
        return jnp.exp(log_h)
    h = mingru(bridge.cell, x, bridge.initial_log_state, mode=mode, space="logit")
    return jax.nn.softmax(h, axis=-1)


def _spread(a: np.ndarray) -> float:
    return float(np.max(np.abs(a))) if a.size else 0.0


def _read_gate(w_u, c, layout: InputLayout, switch_prob, dtype):
    """``(rho, cue)`` whose switch posterior is ``sigmoid(w_u' u + c)`` (see model_from_mingru)."""
    if switch_prob is not None:
        rho = float(switch_prob)
        if not 0.0 < rho < 1.0:
            raise ValueError(f"`switch_prob` must lie in (0, 1), got {switch_prob!r}")
        logit = np.log(rho) - np.log1p(-rho)
        norm2 = float(w_u @ w_u) if layout.cue_dim else 0.0
        if norm2 == 0.0 and abs(logit - c) > 1e-12 * (1.0 + abs(c)):
            raise ValueError(
                f"`switch_prob` = {rho} needs gate bias logit(rho) = {logit:.6g}, but the cell's "
                f"gate bias is {c:.6g} and its gate reads no cue that could absorb the difference"
            )
    if layout.cue_dim == 0:
        value = c if switch_prob is None else logit
        rho, cue = jax.nn.sigmoid(jnp.asarray(value, dtype=dtype)), None
    else:
        mid = np.zeros_like(w_u) if switch_prob is None else (logit - c) * w_u / norm2
        # Rows (mid - w/2, mid + w/2) differ by w: the common shift `mid` is the softmax gauge.
        nb = softmax_to_gaussian_nb(np.stack([mid - w_u / 2, mid + w_u / 2]), np.array([0.0, c]))
        rho = nb.class_probs[1] if switch_prob is None else jnp.asarray(rho, dtype=dtype)
        means = np.asarray(nb.means)
        cue = GaussianCue(means[:, 0] if layout.scalar_cue else means, np.ones((), dtype))
    if not 0.0 < float(rho) < 1.0:
        raise ValueError(
            f"the gate bias c = {c:.6g} gives rho = sigmoid(c) = {float(rho)}, which is not in "
            "(0, 1) in floating point (a strong cue whose midpoint is far from 0): pass "
            "switch_prob= to fix rho and move the bias into the cue means"
        )
    return rho, cue


def model_from_mingru(
    cell: MinGRUParams | MinGRUBridge,
    layout: InputLayout | None = None,
    *,
    cov: Float[ArrayLike, "D D"] | None = None,
    symbol_probs: Float[ArrayLike, " V"] | None = None,
    switch_prob: float | None = None,
    gated: bool = True,
    atol: float = 1e-10,
) -> SwitchingParams:
    r"""Read a minGRU with one shared gate as a gated switching model (seed 000, reversed).

    The cell must have the structure :func:`mingru_from_model` produces, else ``ValueError``:

    - every unit has the same gate row and bias (one scalar switch). Different unit gates
      mean one switch per unit: a factorial model (theory.md section 3; build those cells
      with :func:`factorial_mingru_from_models`);
    - the gate reads only the cue columns (in the gated model the ``y`` terms cancel in
      the switch posterior, theory.md 2.1), the candidate only the ``phi(y)`` columns.

    **Gate -> cue.** ``logit g = w' u + c`` is a logistic regression of ``u``; it is the
    switch posterior of every cue ``N(m_z, tau^2 I)`` with
    ``m_1 - m_0 = tau^2 w`` and ``logit rho = c + (|m_1|^2 - |m_0|^2) / (2 tau^2)``: the scale
    ``tau``, and ``rho`` against the midpoint ``mid = (m_0 + m_1) / 2``
    (``logit rho = c + w' mid``), are not identified. Canonical choice: ``tau = 1`` and
    means symmetric about 0, ``m_{0,1} = -+w / 2``, which gives ``rho = sigmoid(c)``
    (computed with :func:`~switchssm.bridges.softmax_to_gaussian_nb` on the centred rows
    ``(-w/2, w/2)``). The choice ``m_0 = 0`` would give ``rho = sigmoid(c + |w|^2 / 2)``,
    which rounds to 1 as soon as the cue is strong (``|w|`` about 9) and loses the gate.
    A strong cue whose midpoint is far from 0 still has a large ``|c|`` (e.g. ``c = -1750``),
    and ``sigmoid(c)`` then rounds to 0 or 1: that raises ``ValueError``; pass
    ``switch_prob`` to fix ``rho`` instead and put the bias into the cue midpoint,
    ``mid = (logit rho - c) w / |w|^2``. (``SwitchingParams`` stores ``rho``, not its
    logit, so for ``c`` above about 10 the gate bias survives a round trip only to about
    ``1e-16 / (1 - rho)``.) Without cue columns, ``rho = sigmoid(c)`` (``switch_prob``
    must then agree with it).

    **Candidate -> emission.** ``softmax(W_h phi(y) + b_h)`` is read as naive Bayes with the
    canonical inverses of :mod:`switchssm.bridges.naive_bayes`:
    categorical ``B = rowsoftmax(W_h)``, ``pi = softmax(b_h + logsumexp_v W_h)``
    (:func:`~switchssm.bridges.softmax_to_categorical_nb`; ``symbol_probs`` fixes the free
    symbol marginal); Gaussian with ``S = cov`` (identity by default) and the rows of
    ``W_h`` centred first (a common shift of all rows is a gauge of the softmax), so
    ``mu_c = S (W_c - mean_c W_c)`` and
    ``pi_c ∝ exp(b_c + mu_c' S^-1 mu_c / 2)`` (:func:`~switchssm.bridges.softmax_to_gaussian_nb`).

    **Gauges and round trips.** The candidate pre-activation is identified only up to
    (categorical) ``W[c, v] + b_c + k_v + const`` and (Gaussian) a common row shift of ``W``
    plus a constant on ``b``: all give the same ``log_softmax`` candidate and the same
    ``softmax`` readout in either state space. The gate has no gauge. Hence
    model -> cell -> model -> cell returns the cell in the canonical gauge (same gate, same
    candidate up to these shifts, the same outputs from the same ``h_0``), and
    cell -> model -> cell is the identity on canonical cells: categorical ``W_h = log B``
    (rows log-normalized) with ``b_h = log pi`` (log-normalized); Gaussian with centred
    rows and ``sum_c exp(b_c + W_c' S W_c / 2) = 1``. The initial state is not part of
    the cell: the returned model's ``pi`` gives ``h_0 = log pi``, which for a Gaussian cell
    can differ from the ``h_0`` it was run with (only the first steps before a switch see it).

    Args:
        cell: :class:`~switchssm.rnn.MinGRUParams`, or a :class:`MinGRUBridge` (its layout
            is then used when ``layout`` is ``None``).
        layout: :class:`InputLayout` of the cell's input columns.
        cov: Gaussian emission only: the covariance ``S`` to fix (identity if ``None``).
        symbol_probs: categorical emission only: the symbol marginal to fix.
        switch_prob: ``rho`` to fix (the cue midpoint absorbs the rest of the gate bias);
            ``None`` for the canonical ``rho = sigmoid(c)``.
        gated: the emission variant of the returned model (``True``: the model whose exact
            filter the positive-state cell computes).
        atol: tolerance of the structural checks (shared gate, zero blocks), relative to
            ``1 + max |weight|``.

    Returns:
        :class:`~switchssm.models.SwitchingParams` with ``K = H`` states.

    Example:
        >>> import numpy as np
        >>> from switchssm.rnn import MinGRUParams
        >>> cell = MinGRUParams(np.array([[0, 0, 2.0], [0, 0, 2.0]]), np.array([-1.0, -1.0]),
        ...                     np.log(np.array([[0.9, 0.1, 0], [0.2, 0.8, 0]]) + [0, 0, 1]),
        ...                     np.log(np.array([0.5, 0.5])))
        >>> p = model_from_mingru(cell, InputLayout("categorical", 2, 1, True))
        >>> np.asarray(p.cue.means).tolist(), round(float(p.switch_prob), 4)
        ([-1.0, 1.0], 0.2689)
    """
    if isinstance(cell, MinGRUBridge):
        layout = cell.layout if layout is None else layout
        cell = cell.cell
    if not isinstance(cell, MinGRUParams):
        raise ValueError(
            f"`cell` must be a MinGRUParams or MinGRUBridge, got {type(cell).__name__}"
        )
    if not isinstance(layout, InputLayout):
        raise ValueError(f"`layout` must be an InputLayout, got {type(layout).__name__}")
    if layout.emission not in _EMISSIONS:
        raise ValueError(f"`layout.emission` must be one of {_EMISSIONS}, got {layout.emission!r}")
    if layout.input_dim != cell.input_dim:
        raise ValueError(
            f"`layout` describes {layout.input_dim} input columns ({layout.obs_dim} for y, "
            f"{layout.cue_dim} for the cue) but the cell reads {cell.input_dim}"
        )
    if layout.scalar_cue and layout.cue_dim != 1:
        raise ValueError(f"`layout.scalar_cue` needs cue_dim = 1, got {layout.cue_dim}")
    if not V.all_concrete(cell):
        raise ValueError("`cell` must hold concrete arrays (model_from_mingru is not traced)")
    G = np.asarray(cell.gate_weight, dtype=np.float64)
    gb = np.asarray(cell.gate_bias, dtype=np.float64)
    W = np.asarray(cell.candidate_weight, dtype=np.float64)
    b = np.asarray(cell.candidate_bias, dtype=np.float64)
    tol = atol * (1.0 + max(_spread(G), _spread(gb), _spread(W), _spread(b)))
    gate_dev = max(_spread(G - G[0]), _spread(gb - gb[0]))
    if gate_dev > tol:
        raise ValueError(
            f"the units' gates differ (rows of `gate_weight`/`gate_bias` differ by up to "
            f"{gate_dev:.3g}): a minGRU with one switch per unit is not one switching model but "
            "a factorial model of independent chains (theory.md section 3); see "
            "factorial_mingru_from_models for the cells that model computes"
        )
    w_y, w_u, c = G[0, layout.obs_slice], G[0, layout.cue_slice], float(gb[0])
    if _spread(w_y) > tol:
        raise ValueError(
            f"the gate reads the observation columns (|weight| up to {_spread(w_y):.3g}): in "
            "the gated switching model the switch posterior depends on the cue alone "
            "(theory.md 2.1), so the gate must read only the cue columns"
        )
    if _spread(W[:, layout.cue_slice]) > tol:
        raise ValueError(
            "the candidate reads the cue columns: in the switching model the cue informs only "
            "the switch z, never the state s, so the candidate must read only phi(y)"
        )
    W = W[:, layout.obs_slice]
    dtype = cell.gate_weight.dtype

    rho, cue = _read_gate(w_u, c, layout, switch_prob, dtype)

    if layout.emission == "categorical":
        cat = softmax_to_categorical_nb(W, b, symbol_probs)
        pi, emission = cat.class_probs, CategoricalEmission(cat.emission_probs)
    else:
        gauss = softmax_to_gaussian_nb(W - W.mean(axis=0, keepdims=True), b, cov)
        pi, emission = gauss.class_probs, GaussianEmission(gauss.means, gauss.cov)
    return SwitchingParams(pi, rho, emission, cue, gated=gated)


# ---------------------------------------------------------------------------------------
# Always-emitting model with hard gates <-> selective diagonal SSM
# ---------------------------------------------------------------------------------------


class SelectiveBridge(NamedTuple):
    """A selective diagonal SSM built from an always-emitting switching model.

    Attributes:
        cell: :class:`~switchssm.rnn.SelectiveParams` (run with ``decay="sigmoid"``, ``h_0 = 0``).
        layout: :class:`InputLayout` of ``x_t``.
        readout_bias: ``(K,)`` ``log pi``; the belief is ``softmax(h_t + log pi)``.
    """

    cell: SelectiveParams
    layout: InputLayout
    readout_bias: Float[Array, " K"]


def selective_from_model(params: SwitchingParams) -> SelectiveBridge:
    r"""Selective diagonal SSM computing the always-emitting filter when gates are hard.

    With hard gates (``g_t in {0, 1}``) the exact filter of the always-emitting model obeys
    (theory.md 2.4)

    .. math:: \log p_t = (1 - g_t) \log p_{t-1} + g_t \log\pi + l_t + \mathrm{const}_t,

    a diagonal recurrence whose input term ``l_t`` is *not* gated (minGRU gates it). The
    term ``g_t log pi`` is not linear in ``x_t``, but the shifted state
    ``h_t = log p_t - log pi`` removes it:

    .. math::

        h_t = (1 - g_t)\, h_{t-1} + l_t, \qquad h_0 = 0, \qquad
        p_t = \mathrm{softmax}(h_t + \log\pi),

    which :func:`switchssm.rnn.selective` expresses exactly: decay
    ``a(x) = sigmoid(-k(x)) = 1 - g`` (``decay_weight = -w_gate``, ``decay_bias = -c``) and
    drive ``b(x) = W phi(y) + b_0 = l_t + const`` (``W = log B``, ``b_0 = 0``; Gaussian
    ``W = S^-1 mu``, ``b_0 = -diag(mu S^-1 mu') / 2``). With soft gates the cell is an
    approximation (the exact filter mixes ``p_{t-1}`` and ``pi`` arithmetically before
    multiplying by the likelihood, and its switch posterior depends on ``p_{t-1}``).

    Args:
        params: a :class:`~switchssm.models.SwitchingParams` (the ``gated`` flag is ignored:
            the construction is the always-emitting filter) with ``0 < rho < 1``.

    Returns:
        :class:`SelectiveBridge`; run it with :func:`selective_posterior`.

    Example:
        >>> import numpy as np
        >>> from switchssm.models import SwitchingParams, CategoricalEmission
        >>> p = SwitchingParams(np.ones(2) / 2, 0.1, CategoricalEmission(np.full((2, 3), 1 / 3)))
        >>> selective_from_model(p).cell.hidden_dim
        2
    """
    _check_params(params)
    layout = input_layout(params)
    w, c = _gate_map(params)
    W, b = _emission_map(params)
    log_pi = np.log(np.asarray(params.initial_probs, dtype=np.float64))
    K = params.num_states
    decay_row = np.concatenate([np.zeros(layout.obs_dim), -w])
    drive = np.concatenate([W, np.zeros((K, layout.cue_dim))], axis=1)
    cell = SelectiveParams(
        *_cast(params, np.tile(decay_row, (K, 1)), np.full((K,), -c), drive, b - log_pi)
    )
    return SelectiveBridge(cell, layout, *_cast(params, log_pi))


def selective_posterior(
    bridge: SelectiveBridge, x: Float[ArrayLike, "T Din"], *, mode: str | None = None
) -> Float[Array, "T K"]:
    """Run a :class:`SelectiveBridge`: ``softmax(selective(cell, x, 0) + log pi)``, ``(T, K)``."""
    if not isinstance(bridge, SelectiveBridge):
        raise ValueError(f"`bridge` must be a SelectiveBridge, got {type(bridge).__name__}")
    h = selective(bridge.cell, x, mode=mode, decay="sigmoid")
    return jax.nn.softmax(h + bridge.readout_bias, axis=-1)


# ---------------------------------------------------------------------------------------
# No switch (rho = 0): cumulative evidence, and linear attention's memory
# ---------------------------------------------------------------------------------------


def sufficient_statistics(params: SwitchingParams, y: ArrayLike) -> Float[Array, "T F"]:
    """Per-step sufficient statistics ``T(y_t)`` of the emission, with ``l_t = Q T(y_t) + const``.

    Categorical: ``onehot(y_t)`` (``F = V``). Gaussian with shared covariance:
    ``(y_t, 1)`` (``F = D + 1``); the matching queries ``Q`` are ``log B`` and
    ``[S^-1 mu, -diag(mu S^-1 mu')/2]``.

    Example:
        >>> import numpy as np
        >>> from switchssm.models import SwitchingParams, CategoricalEmission
        >>> p = SwitchingParams(np.ones(2) / 2, 0.0, CategoricalEmission(np.full((2, 3), 1 / 3)))
        >>> np.asarray(sufficient_statistics(p, np.array([1]))).tolist()
        [[0.0, 1.0, 0.0]]
    """
    _check_params(params)
    params.emission.validate_observations(y, "y")
    dtype = params.initial_probs.dtype
    if isinstance(params.emission, CategoricalEmission):
        return jax.nn.one_hot(
            jnp.asarray(y, dtype=jnp.int32), params.emission.num_symbols, dtype=dtype
        )
    y = jnp.asarray(y, dtype=dtype)
    return jnp.concatenate([y, jnp.ones((y.shape[0], 1), dtype)], axis=-1)


def _queries(params: SwitchingParams) -> np.ndarray:
    """``Q`` with ``l_t = Q T(y_t) + const(y_t)``: the drive of the cumulative-evidence cell."""
    pi = np.asarray(params.initial_probs, dtype=np.float64)
    em = params.emission
    if isinstance(em, CategoricalEmission):
        # l_t(s) = log B[s, y_t]: the weights of categorical_nb_to_softmax (any prior).
        return np.asarray(
            categorical_nb_to_softmax(np.full_like(pi, 1.0 / pi.size), em.probs).weights
        )
    sm = gaussian_nb_to_softmax(np.full_like(pi, 1.0 / pi.size), em.means, em.cov)
    bias = np.asarray(sm.bias) + np.log(pi.size)  # drop log(1/K): bias_s = -mu_s' S^-1 mu_s / 2
    return np.concatenate([np.asarray(sm.weights), bias[:, None]], axis=1)


def cumulative_evidence(params: SwitchingParams, y: ArrayLike) -> Float[Array, "T K"]:
    r"""The ``rho = 0`` filter as a cell: ``h_t = h_{t-1} + W T(y_t)``, ``h_0 = log pi``.

    With no switch the always-emitting model is naive Bayes over the whole sequence,
    ``P(s | y_{1:t}) ∝ pi(s) prod_{tau <= t} P(y_tau | s)``, so
    ``h_t = log pi + sum_{tau <= t} l_tau`` equals ``log P(s | y_{1:t})`` up to a constant:
    the diagonal recurrence with ``a_t = 1`` (run by :func:`switchssm.scan.diagonal_scan`).
    The weights ``W`` are those of :func:`sufficient_statistics` (``log B``, or
    ``[S^-1 mu, -diag(mu S^-1 mu')/2]``). ``params.switch_prob`` is ignored.

    Args:
        params: a :class:`~switchssm.models.SwitchingParams` (strictly positive ``pi`` and,
            categorical, ``B``).
        y: ``(T,)`` symbols or ``(T, D)`` reals.

    Returns:
        ``h``, ``(T, K)`` unnormalized log posteriors; ``softmax(h)`` is the belief.

    Example:
        >>> import numpy as np
        >>> from switchssm.models import SwitchingParams, CategoricalEmission
        >>> B = np.array([[0.9, 0.1], [0.5, 0.5]])
        >>> p = SwitchingParams(np.ones(2) / 2, 0.0, CategoricalEmission(B))
        >>> np.asarray(cumulative_evidence(p, np.array([0, 0]))[-1], float).round(4).tolist()
        [-0.9039, -2.0794]
    """
    stats = sufficient_statistics(params, y)
    _emission_map(params)  # validates positivity
    Q, log_pi = _cast(params, _queries(params), np.log(np.asarray(params.initial_probs)))
    drive = stats @ Q.T
    return _scan.diagonal_scan(jnp.ones_like(drive), drive, log_pi)


def linear_attention_memory(
    keys: Float[ArrayLike, "T F"],
    values: Float[ArrayLike, "T Dv"],
    memory0: Float[ArrayLike, "F Dv"] | None = None,
) -> Float[Array, "T F Dv"]:
    r"""Linear attention's memory ``S_t = S_{t-1} + phi(k_t) v_t'``, one outer product per step.

    Written as the attention update (a ``lax.scan`` adding outer products), not as a
    cumulative sum, so that the identity with cumulative evidence is a check and not a
    definition: with ``phi(k_t) = T(y_t)`` (:func:`sufficient_statistics`) and
    ``v_t = 1``, ``S_t = sum_{tau <= t} T(y_tau)``: the accumulated sufficient statistics,
    and ``Q S_t`` is the cumulative evidence (see :func:`evidence_attention`).

    Args:
        keys: ``(T, F)`` feature-mapped keys ``phi(k_t)``.
        values: ``(T, Dv)`` values ``v_t``.
        memory0: ``(F, Dv)`` initial memory (zeros if ``None``).

    Returns:
        ``(T, F, Dv)`` memories ``S_1..S_T``.

    Example:
        >>> import numpy as np
        >>> S = linear_attention_memory(np.eye(2), np.ones((2, 1)))
        >>> np.asarray(S[-1, :, 0]).tolist()
        [1.0, 1.0]
    """
    V.check_ndim(keys, "keys", 2, "(T, F)")
    V.check_ndim(values, "values", 2, "(T, Dv)")
    if np.shape(keys)[0] != np.shape(values)[0]:
        raise ValueError(
            f"`keys` and `values` must have the same length, got {np.shape(keys)[0]} and "
            f"{np.shape(values)[0]}"
        )
    V.check_length(np.shape(keys)[0], "keys")
    keys = jnp.asarray(keys)
    values = jnp.asarray(values)
    dtype = jnp.result_type(keys, values, float)
    shape = (keys.shape[1], values.shape[1])
    if memory0 is None:
        memory0 = jnp.zeros(shape, dtype)
    else:
        V.check_shape(memory0, "memory0", shape, "(F, Dv)")
    return _attention_scan(keys.astype(dtype), values.astype(dtype), jnp.asarray(memory0, dtype))


@jax.jit
def _attention_scan(keys, values, memory0):
    def step(S, kv):
        S = S + jnp.outer(kv[0], kv[1])
        return S, S

    return lax.scan(step, memory0, (keys, values))[1]


def evidence_attention(params: SwitchingParams, y: ArrayLike) -> Float[Array, "T K"]:
    r"""The ``rho = 0`` filter read out of linear attention's memory.

    Keys ``phi(k_t) = T(y_t)``, values ``v_t = 1``, fixed queries ``Q`` (one per state):
    ``h_t = log pi + Q S_t 1 = log pi + sum_{tau <= t} l_tau + const``, the same numbers as
    :func:`cumulative_evidence` (theory.md section 5, row "no switch").

    Returns:
        ``(T, K)`` unnormalized log posteriors.
    """
    keys = sufficient_statistics(params, y)
    _emission_map(params)
    Q, log_pi = _cast(params, _queries(params), np.log(np.asarray(params.initial_probs)))
    memory = linear_attention_memory(keys, jnp.ones((keys.shape[0], 1), keys.dtype))
    return log_pi + memory[..., 0] @ Q.T


# ---------------------------------------------------------------------------------------
# One switch per unit: factorial model of independent binary chains (theory.md section 3)
# ---------------------------------------------------------------------------------------


class FactorialBridge(NamedTuple):
    """A per-unit-gated minGRU for ``D`` independent binary switching chains.

    Attributes:
        cell: :class:`~switchssm.rnn.MinGRUParams` with ``H = D`` units; unit ``d`` reads only
            chain ``d``'s columns (block-diagonal gate and candidate weights); its candidate is
            the log-odds ``log q_{t,d}(1) / q_{t,d}(0)``.
        layouts: one :class:`InputLayout` per chain, in column order.
        initial_log_odds: ``(D,)`` ``logit pi_d(1)``.
    """

    cell: MinGRUParams
    layouts: tuple
    initial_log_odds: Float[Array, " D"]


def _check_models(models) -> list:
    models = list(models)
    if not models:
        raise ValueError("`models` must be a non-empty sequence of SwitchingParams")
    for d, m in enumerate(models):
        _check_params(m, f"models[{d}]")
        if m.num_states != 2:
            raise ValueError(
                f"`models[{d}]` has K = {m.num_states} states; the per-unit reading (one "
                "log-odds unit per chain) needs binary chains, K = 2"
            )
    return models


def factorial_model_inputs(models, ys, us=None) -> Float[Array, "T Din"]:
    """Concatenate :func:`model_inputs` of every chain: ``x_t = [x_t^(1), ..., x_t^(D)]``."""
    models = _check_models(models)
    us = [None] * len(models) if us is None else list(us)
    if len(ys) != len(models) or len(us) != len(models):
        raise ValueError(f"`ys` and `us` must have one entry per model ({len(models)})")
    xs = [model_inputs(m, y, u) for m, y, u in zip(models, ys, us, strict=True)]
    lengths = {x.shape[0] for x in xs}
    if len(lengths) != 1:
        raise ValueError(f"all chains must have the same length, got {sorted(lengths)}")
    return jnp.concatenate(xs, axis=-1)


def factorial_mingru_from_models(models) -> FactorialBridge:
    r"""A minGRU with one gate per unit for ``D`` independent binary chains (theory.md 3).

    Chain ``d`` is a ``K = 2`` switching model (its own ``y^(d)``, cue ``u^(d)``, ``rho_d``);
    the input is the concatenation of the chains' inputs (:func:`factorial_model_inputs`).
    Unit ``d`` has chain ``d``'s gate (a logistic regression of ``u^(d)``) and candidate
    log-odds ``a_{t,d} = (W_1 - W_0) phi(y_t^(d)) + b_1 - b_0 = logit q_{t,d}``, both reading
    only chain ``d``'s columns: the weights are block-diagonal.

    What is exact (tested): for gated chains, the positive form
    ``P(s_{t,d} = 1 | x) = (1 - g_{t,d}) P(s_{t-1,d} = 1 | x) + g_{t,d} sigmoid(a_{t,d})``
    (:func:`factorial_posterior` with ``space="log"``) at every cue strength; the logit
    form ``h_{t,d} = (1 - g) h_{t-1,d} + g a_{t,d}`` is the exact log-odds of ``s_{t,d}`` when
    gates are hard, and log-linear pooling otherwise (theory.md 2.3, per unit).

    A dense ``W_h`` (every unit reading all of ``x``) adds to unit ``d``'s candidate the
    log-likelihood ratios of the other chains' observations, as if each of them were
    conditionally independent evidence about ``s_{t,d}`` alone: a product of experts
    (naive Bayes across blocks). That is the exact posterior only of a model in which
    those blocks are emitted by ``s_{t,d}`` and by nothing else; when an observation depends
    on several chains jointly, the exact posterior couples the chains (explaining away),
    is not a product over units, and the per-unit recursion is a factorized (mean-field
    style) approximation whose error is not bounded by anything in the cell. Off-diagonal
    gate weights likewise make unit ``d``'s switch read other cues; exact only if ``z_d``
    emits them.

    Args:
        models: sequence of ``D`` :class:`~switchssm.models.SwitchingParams` with ``K = 2``.

    Returns:
        :class:`FactorialBridge`; run it with :func:`factorial_posterior`.
    """
    models = _check_models(models)
    layouts = tuple(input_layout(m) for m in models)
    Din = sum(lay.input_dim for lay in layouts)
    D = len(models)
    gate_w, cand_w = np.zeros((D, Din)), np.zeros((D, Din))
    gate_b, cand_b, log_odds = np.zeros(D), np.zeros(D), np.zeros(D)
    start = 0
    for d, (m, lay) in enumerate(zip(models, layouts, strict=True)):
        w, c = _gate_map(m)
        W, b = _emission_map(m)
        cols = slice(start, start + lay.input_dim)
        gate_w[d, cols] = np.concatenate([np.zeros(lay.obs_dim), w])
        cand_w[d, cols] = np.concatenate([W[1] - W[0], np.zeros(lay.cue_dim)])
        gate_b[d], cand_b[d] = c, b[1] - b[0]
        pi = np.asarray(m.initial_probs, dtype=np.float64)
        log_odds[d] = np.log(pi[1]) - np.log(pi[0])
        start += lay.input_dim
    cell = MinGRUParams(*_cast(models[0], gate_w, gate_b, cand_w, cand_b))
    return FactorialBridge(cell, layouts, *_cast(models[0], log_odds))


def _unit_cells(bridge: FactorialBridge):
    """Two-unit positive-state cells, one per chain: gates ``(G_d, G_d)``, candidates ``(0, a_d)``.

    Stacked along axis 0 (built with ``tree_map``, so unvalidated ``(D, 2, D_in)`` leaves), for
    ``jax.vmap`` over chains.
    """
    c = bridge.cell
    zeros = jnp.zeros_like(c.candidate_weight)
    return jax.tree_util.tree_map(
        lambda *leaves: jnp.stack(leaves, axis=1),
        MinGRUParams(c.gate_weight, c.gate_bias, zeros, jnp.zeros_like(c.candidate_bias)),
        MinGRUParams(c.gate_weight, c.gate_bias, c.candidate_weight, c.candidate_bias),
    )


def factorial_posterior(
    bridge: FactorialBridge,
    x: Float[ArrayLike, "T Din"],
    *,
    space: str = "log",
    mode: str | None = None,
) -> Float[Array, "T D"]:
    """Run a :class:`FactorialBridge`: ``P(s_{t,d} = 1 | x)`` per chain, ``(T, D)``.

    ``space="log"``: each unit is the positive-state recursion
    ``p_{t,d} = (1 - g_{t,d}) p_{t-1,d} + g_{t,d} sigmoid(a_{t,d})`` with a sigmoid candidate
    (the two-class softmax), computed as ``D`` two-unit ``mingru_log(...,
    candidate="log_softmax")`` cells whose units share unit ``d``'s gate and have
    pre-activations ``(0, a_{t,d})``; exact for gated chains. ``space="logit"``:
    ``sigmoid(mingru(cell, x, logit pi, space="logit"))``; exact iff gates are hard.
    """
    if not isinstance(bridge, FactorialBridge):
        raise ValueError(f"`bridge` must be a FactorialBridge, got {type(bridge).__name__}")
    if space not in _SPACES:
        raise ValueError(f"`space` must be one of {_SPACES}, got {space!r}")
    if space == "logit":
        h = mingru(bridge.cell, x, bridge.initial_log_odds, mode=mode, space="logit")
        return jax.nn.sigmoid(h)
    x = jnp.asarray(x)
    if x.ndim != 2 or x.shape[-1] != bridge.cell.input_dim:
        raise ValueError(
            f"`x` must have shape (T, {bridge.cell.input_dim}), got {tuple(np.shape(x))}"
        )
    log_h0 = jnp.stack(
        [jax.nn.log_sigmoid(-bridge.initial_log_odds), jax.nn.log_sigmoid(bridge.initial_log_odds)],
        axis=-1,
    )  # (D, 2): log (1 - pi_d(1), pi_d(1))
    run = jax.vmap(lambda cell, lh0: mingru_log(cell, x, lh0, mode=mode, candidate="log_softmax"))
    log_h = run(_unit_cells(bridge), log_h0)  # (D, T, 2)
    return jnp.exp(log_h[..., 1]).T
