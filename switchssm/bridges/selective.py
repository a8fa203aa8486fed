r"""Always-emitting switching model -> selective diagonal SSM (docs/theory.md, fact 2.4).

With hard gates the exact filter of the always-emitting model is
:math:`\log p_t = (1 - g_t) \log p_{t-1} + g_t \log\pi + l_t + \text{const}`: a selective
diagonal SSM whose input term is not gated (the Mamba form), not a minGRU.
"""

# ruff: noqa: F722  (jaxtyping shape strings such as "T K" are not forward references)

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np

from switchssm.bridges._inputs import InputLayout
from switchssm.bridges._inputs import cast_like
from switchssm.bridges._inputs import check_switching
from switchssm.bridges._inputs import emission_map
from switchssm.bridges._inputs import gate_map
from switchssm.bridges._inputs import input_layout
from switchssm.models.params import SwitchingParams
from switchssm.rnn import SelectiveParams
from switchssm.rnn import selective
from switchssm.types import Array
from switchssm.types import ArrayLike
from switchssm.types import Float

__all__ = [
    "SelectiveBridge",
    "selective_from_model",
    "selective_posterior",
]


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
    (docs/theory.md 2.4)

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
    check_switching(params)
    layout = input_layout(params)
    w, c = gate_map(params)
    W, b = emission_map(params)
    log_pi = np.log(np.asarray(params.initial_probs, dtype=np.float64))
    K = params.num_states
    decay_row = np.concatenate([np.zeros(layout.obs_dim), -w])
    drive = np.concatenate([W, np.zeros((K, layout.cue_dim))], axis=1)
    cell = SelectiveParams(
        *cast_like(params, np.tile(decay_row, (K, 1)), np.full((K,), -c), drive, b - log_pi)
    )
    return SelectiveBridge(cell, layout, *cast_like(params, log_pi))


def selective_posterior(
    bridge: SelectiveBridge, x: Float[ArrayLike, "T Din"], *, mode: str | None = None
) -> Float[Array, "T K"]:
    """Run a :class:`SelectiveBridge`: ``softmax(selective(cell, x, 0) + log pi)``, ``(T, K)``."""
    if not isinstance(bridge, SelectiveBridge):
        raise ValueError(f"`bridge` must be a SelectiveBridge, got {type(bridge).__name__}")
    h = selective(bridge.cell, x, mode=mode, decay="sigmoid")
    return jax.nn.softmax(h + bridge.readout_bias, axis=-1)
