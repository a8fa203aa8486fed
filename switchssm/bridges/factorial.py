r"""One switch per hidden unit: D independent binary chains as one minGRU (docs/theory.md 3).

Each unit ``d`` is the logit of a binary latent ``s_{t,d}`` with its own switch, emission and
cue; the weights are block-diagonal. Exact (in logit space) when every gate is hard, and
log-linear pooling otherwise (fact 2.3, per unit).
"""

# ruff: noqa: F722  (jaxtyping shape strings such as "T K" are not forward references)

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from switchssm.bridges._inputs import cast_like
from switchssm.bridges._inputs import check_switching
from switchssm.bridges._inputs import emission_map
from switchssm.bridges._inputs import gate_map
from switchssm.bridges._inputs import input_layout
from switchssm.bridges._inputs import model_inputs
from switchssm.rnn import MinGRUParams
from switchssm.rnn import mingru
from switchssm.rnn import mingru_log
from switchssm.types import Array
from switchssm.types import ArrayLike
from switchssm.types import Float

__all__ = [
    "FactorialBridge",
    "factorial_mingru_from_models",
    "factorial_model_inputs",
    "factorial_posterior",
]

_SPACES = ("log", "logit")


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
        check_switching(m, f"models[{d}]")
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
    r"""A minGRU with one gate per unit for ``D`` independent binary chains (docs/theory.md 3).

    Chain ``d`` is a ``K = 2`` switching model (its own ``y^(d)``, cue ``u^(d)``, ``rho_d``);
    the input is the concatenation of the chains' inputs (:func:`factorial_model_inputs`).
    Unit ``d`` has chain ``d``'s gate (a logistic regression of ``u^(d)``) and candidate
    log-odds ``a_{t,d} = (W_1 - W_0) phi(y_t^(d)) + b_1 - b_0 = logit q_{t,d}``, both reading
    only chain ``d``'s columns: the weights are block-diagonal.

    What is exact (tested): for gated chains, the positive form
    ``P(s_{t,d} = 1 | x) = (1 - g_{t,d}) P(s_{t-1,d} = 1 | x) + g_{t,d} sigmoid(a_{t,d})``
    (:func:`factorial_posterior` with ``space="log"``) at every cue strength; the logit
    form ``h_{t,d} = (1 - g) h_{t-1,d} + g a_{t,d}`` is the exact log-odds of ``s_{t,d}`` when
    gates are hard, and log-linear pooling otherwise (docs/theory.md 2.3, per unit).

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
        w, c = gate_map(m)
        W, b = emission_map(m)
        cols = slice(start, start + lay.input_dim)
        gate_w[d, cols] = np.concatenate([np.zeros(lay.obs_dim), w])
        cand_w[d, cols] = np.concatenate([W[1] - W[0], np.zeros(lay.cue_dim)])
        gate_b[d], cand_b[d] = c, b[1] - b[0]
        pi = np.asarray(m.initial_probs, dtype=np.float64)
        log_odds[d] = np.log(pi[1]) - np.log(pi[0])
        start += lay.input_dim
    cell = MinGRUParams(*cast_like(models[0], gate_w, gate_b, cand_w, cand_b))
    return FactorialBridge(cell, layouts, *cast_like(models[0], log_odds))


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
