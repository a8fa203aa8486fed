r"""Switching model <-> minGRU: the exact filter of the gated model, and the way back.

:func:`mingru_from_model` builds the minGRU whose positive states are the exact filter of the
gated switching model (docs/theory.md, facts 2.1-2.2) and whose logit states pool the same
beliefs geometrically (fact 2.3: exact iff the gates are hard); :func:`model_from_mingru`
reads a minGRU back as a switching model (seed 000's "reverse engineering"). Inputs follow
:func:`~switchssm.bridges.model_inputs`. All builders run on concrete parameters (they
validate them) and return plain arrays.
"""

# ruff: noqa: F722  (jaxtyping shape strings such as "T K" are not forward references)

from __future__ import annotations

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from switchssm import _validation as V
from switchssm.bridges._inputs import InputLayout
from switchssm.bridges._inputs import cast_like
from switchssm.bridges._inputs import check_switching
from switchssm.bridges._inputs import emission_map
from switchssm.bridges._inputs import gate_map
from switchssm.bridges._inputs import input_layout
from switchssm.bridges.naive_bayes import softmax_to_categorical_nb
from switchssm.bridges.naive_bayes import softmax_to_gaussian_nb
from switchssm.models.params import CategoricalEmission
from switchssm.models.params import GaussianCue
from switchssm.models.params import GaussianEmission
from switchssm.models.params import SwitchingParams
from switchssm.rnn import MinGRUParams
from switchssm.rnn import mingru
from switchssm.rnn import mingru_log
from switchssm.types import Array
from switchssm.types import ArrayLike
from switchssm.types import Float

__all__ = [
    "AlwaysEmittingWarning",
    "MinGRUBridge",
    "mingru_from_model",
    "mingru_posterior",
    "model_from_mingru",
]

_SPACES = ("log", "logit")


_EMISSIONS = ("categorical", "gaussian")


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


class AlwaysEmittingWarning(UserWarning):
    """A minGRU was built from an always-emitting model, whose filter it only approximates."""


def mingru_from_model(params: SwitchingParams, *, space: str = "log") -> MinGRUBridge:
    r"""minGRU weights computing the filter of the gated switching model (docs/theory.md 2.1-2.3).

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
    (docs/theory.md 2.3). For an always-emitting model (``params.gated = False``) the weights are
    the same construction, which is then only an approximation (measured: a mean KL of about
    0.6 nats from the exact filter on the demo model), and an :class:`AlwaysEmittingWarning`
    says so; :func:`~switchssm.bridges.selective_from_model` is the cell that is exact there
    when the gates are hard.

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
        >>> from switchssm.bridges import model_inputs
        >>> bridge = mingru_from_model(p)
        >>> probs = mingru_posterior(bridge, model_inputs(p, y, u))
        >>> bool(np.allclose(probs, filter(p, y, u).filtered_s, atol=1e-6))
        True
    """
    check_switching(params)
    if space not in _SPACES:
        raise ValueError(f"`space` must be one of {_SPACES}, got {space!r}")
    if not params.gated:
        warnings.warn(
            "mingru_from_model: this model is always-emitting, where the minGRU is not its "
            "filter (only an approximation); selective_from_model builds the cell that is "
            "exact when the gates are hard",
            AlwaysEmittingWarning,
            stacklevel=2,
        )
    layout = input_layout(params)
    w, c = gate_map(params)
    W, b = emission_map(params)
    K = params.num_states
    gate_row = np.concatenate([np.zeros(layout.obs_dim), w])
    cand = np.concatenate([W, np.zeros((K, layout.cue_dim))], axis=1)
    cell = MinGRUParams(*cast_like(params, np.tile(gate_row, (K, 1)), np.full((K,), c), cand, b))
    (log_pi,) = cast_like(params, np.log(np.asarray(params.initial_probs, dtype=np.float64)))
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
      mean one switch per unit: a factorial model (docs/theory.md section 3; build those cells
      with :func:`factorial_mingru_from_models`);
    - the gate reads only the cue columns (in the gated model the ``y`` terms cancel in
      the switch posterior, docs/theory.md 2.1), the candidate only the ``phi(y)`` columns.

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
            "a factorial model of independent chains (docs/theory.md section 3); see "
            "factorial_mingru_from_models for the cells that model computes"
        )
    w_y, w_u, c = G[0, layout.obs_slice], G[0, layout.cue_slice], float(gb[0])
    if _spread(w_y) > tol:
        raise ValueError(
            f"the gate reads the observation columns (|weight| up to {_spread(w_y):.3g}): in "
            "the gated switching model the switch posterior depends on the cue alone "
            "(docs/theory.md 2.1), so the gate must read only the cue columns"
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
