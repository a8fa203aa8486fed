r"""Mamba's S6 read as a switching filter: where the parametrization is exact, and the gap.

The selective-SSM row of docs/theory.md section 5 (:func:`switchssm.bridges.selective_from_model`)
runs ``h_t = (1 - g_t) h_{t-1} + l_t`` with the keep gate ``1 - g_t = sigmoid(-k_t)``,
``k_t`` the switch logit of the cue. Mamba's S6 (:func:`switchssm.rnn.s6`) writes its keep
gate as ``exp(Delta_t A)`` with ``Delta_t = softplus(W_Delta x_t + b_Delta)``. Three facts:

1. **The keep gate is exact.** With ``A = -1`` and ``Delta_t = softplus(k_t)``,
   ``exp(-softplus(k)) = 1 / (1 + e^k) = sigmoid(-k) = 1 - g``, for every ``k``
   (:func:`s6_from_model` sets ``log_rate = 0`` and the step rows to the gate map).
2. **The zero-order hold gates the input.** ZOH gives
   ``Bbar = (exp(Delta A) - 1) / A * B = (1 - a_t) B = g_t B``: with ``B = C = 1`` and one
   state per channel, each channel runs ``y_t = (1 - g_t) y_{t-1} + g_t x_t``, the minGRU
   update. Channels share the gate, so the linear readout ``W = log B`` commutes with the
   recurrence and ``W y_t + log pi`` *equals* the logit-space minGRU of
   :func:`~switchssm.bridges.mingru_from_model` for every gate value (exact), hence the
   exact filter of the **gated** model when gates are hard (exact), and its log-linear
   pooling approximation otherwise (the minGRU row's gap).
3. **The always-emitting row is out of reach of S6's drive.** That filter adds the
   evidence ``l_t`` ungated; S6's drive is ``Bbar_t x_t`` with ``Bbar_t = g_t B_t``
   (ZOH) or ``Delta_t B_t`` (Euler), and ``B_t`` is linear in ``x_t``, so no choice of
   weights cancels the gate. With hard gates the S6 filter drops ``l_t`` at every step
   without a switch; :func:`switchssm.verify.layers.layer_checks` measures the resulting KL from the
   exact filter, next to the selective cell (exact there).

Categorical emissions only: a Gaussian emission's likelihood has a constant term that a
gated channel cannot carry (``ValueError``).
"""

# ruff: noqa: F722  (jaxtyping shape strings such as "T K" are not forward references)

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from switchssm.bridges._inputs import InputLayout
from switchssm.bridges._inputs import check_switching
from switchssm.bridges._inputs import emission_map
from switchssm.bridges._inputs import gate_map
from switchssm.bridges._inputs import input_layout
from switchssm.models.params import CategoricalEmission
from switchssm.models.params import SwitchingParams
from switchssm.rnn.selective_ssm import S6Params
from switchssm.rnn.selective_ssm import s6
from switchssm.types import Array
from switchssm.types import ArrayLike
from switchssm.types import Float

__all__ = ["S6Bridge", "keep_gate", "s6_from_model", "s6_posterior"]


class S6Bridge(NamedTuple):
    """An S6 layer built from a switching model, with its linear readout.

    Attributes:
        ssm: :class:`~switchssm.rnn.S6Params` over the ``D_in`` channels of
            ``x_t = [onehot(y_t), u_t]`` (one state each; ``A = -1``; ``B = C = 1``).
        readout_weight: ``(K, D_in)`` ``[log B, 0]``.
        readout_bias: ``(K,)`` ``log pi``.
        layout: :class:`~switchssm.bridges.InputLayout`.
    """

    ssm: S6Params
    readout_weight: Array
    readout_bias: Array
    layout: InputLayout


def keep_gate(step: ArrayLike, rate: ArrayLike = 1.0) -> Array:
    r"""S6's keep gate :math:`\exp(\Delta A) = \exp(-\Delta\, e^{A_{\log}})` with ``rate = -A``.

    Args:
        step: ``Delta >= 0``.
        rate: ``-A > 0``.

    Returns:
        ``exp(-step * rate)``.

    Example:
        >>> import numpy as np
        >>> k = 0.3  # a switch logit: the keep gate of Delta = softplus(k) is sigmoid(-k)
        >>> bool(np.isclose(keep_gate(np.log1p(np.exp(k))), 1 / (1 + np.exp(k))))
        True
    """
    return jnp.exp(-jnp.asarray(step) * jnp.asarray(rate))


def s6_from_model(params: SwitchingParams) -> S6Bridge:
    r"""S6 weights whose keep gate is the switch posterior of the cue (module docstring).

    Channels are the inputs ``x_t = [onehot(y_t), u_t]`` of
    :func:`~switchssm.bridges.model_inputs`; every channel's step reads the cue,
    ``Delta_t = softplus(w' u_t + c)`` (``w, c`` the logistic gate of the cue), ``A = -1``
    (``log_rate = 0``), ``B_t = C_t = 1`` (biases), ``skip = 0``. The belief is
    ``softmax(W y_t + log pi)`` with ``W = [log B, 0]`` (:func:`s6_posterior`).

    Args:
        params: a categorical :class:`~switchssm.models.SwitchingParams` with
            ``0 < rho < 1``.

    Returns:
        :class:`S6Bridge`.

    Raises:
        ValueError: for a Gaussian emission (module docstring).

    Example:
        >>> import numpy as np
        >>> from switchssm.models import SwitchingParams, CategoricalEmission
        >>> p = SwitchingParams(np.ones(2) / 2, 0.1, CategoricalEmission(np.full((2, 3), 1 / 3)))
        >>> s6_from_model(p).ssm.input_dim  # 3 symbols, no cue
        3
    """
    check_switching(params)
    if not isinstance(params.emission, CategoricalEmission):
        raise ValueError(
            "`params.emission` must be categorical: a Gaussian likelihood's constant term "
            "cannot ride on a gated S6 channel (see switchssm.bridges.mamba)"
        )
    layout = input_layout(params)
    D = layout.input_dim
    w, c = gate_map(params)
    W, _ = emission_map(params)  # log B (the bias log pi goes to the readout)
    step_row = np.concatenate([np.zeros(layout.obs_dim), w])
    dtype = params.initial_probs.dtype
    cast = lambda a: jnp.asarray(a, dtype)  # noqa: E731
    ssm = S6Params(
        cast(np.tile(step_row, (D, 1))),
        cast(np.full(D, c)),
        cast(np.zeros((1, D))),
        cast(np.ones(1)),
        cast(np.zeros((1, D))),
        cast(np.ones(1)),
        cast(np.zeros((D, 1))),
        cast(np.zeros(D)),
    )
    readout = np.concatenate([W, np.zeros((W.shape[0], layout.cue_dim))], axis=1)
    log_pi = np.log(np.asarray(params.initial_probs, np.float64))
    return S6Bridge(ssm, cast(readout), cast(log_pi), layout)


def s6_posterior(
    bridge: S6Bridge,
    x: Float[ArrayLike, "T D"],
    *,
    mode: str | None = None,
    discretization: str = "zoh",
) -> Float[Array, "T K"]:
    """Run an :class:`S6Bridge`: ``softmax(readout_weight s6(x) + log pi)``, ``(T, K)``.

    Args:
        bridge: from :func:`s6_from_model`.
        x: ``(T, D_in)`` from :func:`~switchssm.bridges.model_inputs`.
        mode: ``"sequential"``, ``"parallel"`` or ``None``.
        discretization: ``"zoh"`` (the exact identities of the module docstring) or
            ``"euler"`` (``Bbar = Delta B``: an approximation whose gap is measured).

    Returns:
        ``(T, K)`` beliefs.

    Example:
        >>> import numpy as np
        >>> from switchssm.models import SwitchingParams, CategoricalEmission
        >>> B = np.array([[0.9, 0.1], [0.2, 0.8]])
        >>> p = SwitchingParams(np.ones(2) / 2, 0.5, CategoricalEmission(B))
        >>> b = s6_from_model(p)  # no cue: g = rho = 1/2 at every step
        >>> probs = s6_posterior(b, np.eye(2)[[0]])  # h = (1/2) log B[:, 0]
        >>> [round(float(v), 4) for v in probs[0]]  # sqrt(.9) / (sqrt(.9) + sqrt(.2))
        [0.6796, 0.3204]
    """
    if not isinstance(bridge, S6Bridge):
        raise ValueError(f"`bridge` must be an S6Bridge, got {type(bridge).__name__}")
    y = s6(bridge.ssm, x, mode=mode, discretization=discretization)
    return jax.nn.softmax(y @ bridge.readout_weight.T + bridge.readout_bias, axis=-1)
