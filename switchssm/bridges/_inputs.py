r"""The input layout shared by the model-to-cell bridges: ``x_t = [phi(y_t), u_t]``.

A cell reads ``x_t = [phi(y_t), u_t]`` (:func:`model_inputs`): ``phi(y_t)`` is
``onehot(y_t)`` (``V`` columns) for a categorical emission or ``y_t`` itself (``D`` columns)
for a Gaussian one, followed by the cue ``u_t`` (1 column for a scalar cue, ``Du`` for a
vector cue, none without a cue). :class:`InputLayout` records the widths. With this layout
every pre-activation a filter needs is linear in ``x_t``:

- the gate is the switch posterior of the cue, a logistic regression of ``u_t``
  (docs/theory.md, fact 2.1; :func:`~switchssm.bridges.gaussian_nb_to_logistic` with class
  prior ``(1 - rho, rho)``, class means ``(m_0, m_1)`` and covariance ``diag(tau^2)``):
  ``logit g_t = w' u_t + c`` with ``w = (m_1 - m_0) / tau^2`` and
  ``c = logit rho + (|m_0|^2 - |m_1|^2) / (2 tau^2)`` (per dimension for a vector ``tau``)
  (:func:`gate_map`). Every unit reads the same gate row: the switch is one scalar.
- the candidate is the naive-Bayes posterior of ``s_t`` given ``y_t``:
  ``log pi + l_t = W_h phi(y_t) + b_h + const`` with ``W_h = log B``, ``b_h = log pi``
  (categorical, :func:`~switchssm.bridges.categorical_nb_to_softmax`) or
  ``W_h = S^-1 mu``, ``b_h = log pi - diag(mu S^-1 mu') / 2``
  (Gaussian, :func:`~switchssm.bridges.gaussian_nb_to_softmax`) (:func:`emission_map`).
"""

# ruff: noqa: F722  (jaxtyping shape strings such as "T K" are not forward references)

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from switchssm import _validation as V
from switchssm.bridges.naive_bayes import categorical_nb_to_softmax
from switchssm.bridges.naive_bayes import gaussian_nb_to_logistic
from switchssm.bridges.naive_bayes import gaussian_nb_to_softmax
from switchssm.inference import validate_inputs
from switchssm.models.params import CategoricalEmission
from switchssm.models.params import SwitchingParams
from switchssm.types import Array
from switchssm.types import ArrayLike
from switchssm.types import Float

__all__ = [
    "InputLayout",
    "input_layout",
    "model_inputs",
]


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


def check_switching(params, name: str = "params") -> SwitchingParams:
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
    check_switching(params)
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
    check_switching(params)
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


def gate_map(params: SwitchingParams) -> tuple[np.ndarray, float]:
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


def emission_map(params: SwitchingParams) -> tuple[np.ndarray, np.ndarray]:
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


def cast_like(params: SwitchingParams, *arrays):
    dtype = params.initial_probs.dtype
    return tuple(jnp.asarray(a, dtype=dtype) for a in arrays)
