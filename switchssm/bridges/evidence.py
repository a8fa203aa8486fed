r"""No switch (``rho = 0``): cumulative evidence, and linear attention's memory.

With ``rho = 0`` the always-emitting filter is naive Bayes over the whole sequence,
:math:`h_t = h_{t-1} + W y_t` (the "no switch" row of the cell-to-model table,
docs/theory.md section 5); linear attention's memory
:math:`S_t = S_{t-1} + \phi(k_t) v_t^\top` accumulates the same sufficient statistics.
"""

# ruff: noqa: F722  (jaxtyping shape strings such as "T K" are not forward references)

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from switchssm import _validation as V
from switchssm import scan as _scan
from switchssm.bridges._inputs import cast_like
from switchssm.bridges._inputs import check_switching
from switchssm.bridges._inputs import emission_map
from switchssm.bridges.naive_bayes import categorical_nb_to_softmax
from switchssm.bridges.naive_bayes import gaussian_nb_to_softmax
from switchssm.models.params import CategoricalEmission
from switchssm.models.params import SwitchingParams
from switchssm.types import Array
from switchssm.types import ArrayLike
from switchssm.types import Float

__all__ = [
    "cumulative_evidence",
    "evidence_attention",
    "linear_attention_memory",
    "sufficient_statistics",
]


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
    check_switching(params)
    params.emission.validate_observations(y, "y")
    dtype = params.initial_probs.dtype
    if isinstance(params.emission, CategoricalEmission):
        return jax.nn.one_hot(
            jnp.asarray(y, dtype=jnp.int32), params.emission.num_symbols, dtype=dtype
        )
    y = jnp.asarray(y, dtype=dtype)
    return jnp.concatenate([y, jnp.ones((y.shape[0], 1), dtype)], axis=-1)


def evidence_queries(params: SwitchingParams) -> np.ndarray:
    """``Q`` with ``l_t = Q T(y_t) + const(y_t)``: the drive of the cumulative-evidence cell
    (``T(y)`` the sufficient statistics of :func:`sufficient_statistics`)."""
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
    emission_map(params)  # validates positivity
    Q, log_pi = cast_like(
        params, evidence_queries(params), np.log(np.asarray(params.initial_probs))
    )
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
    :func:`cumulative_evidence` (docs/theory.md section 5, row "no switch").

    Returns:
        ``(T, K)`` unnormalized log posteriors.
    """
    keys = sufficient_statistics(params, y)
    emission_map(params)
    Q, log_pi = cast_like(
        params, evidence_queries(params), np.log(np.asarray(params.initial_probs))
    )
    memory = linear_attention_memory(keys, jnp.ones((keys.shape[0], 1), keys.dtype))
    return log_pi + memory[..., 0] @ Q.T
