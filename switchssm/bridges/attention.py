r"""Linear attention accumulates sufficient statistics: a count model and the no-switch row.

Causal linear attention (:func:`switchssm.rnn.linear_attention`) keeps two memories,
:math:`S_t = S_0 + \sum_{j \le t} \phi(k_j) v_j^\top` and
:math:`z_t = z_0 + \sum_{j \le t} \phi(k_j)`: running sums, i.e. sufficient statistics.
Two readings, each an exact identity:

- **Count model** (:func:`count_attention`). With one-hot keys and queries over ``K``
  categories and the identity feature map, :math:`z_t[c]` counts the steps with key ``c``
  and :math:`S_t[c]` sums their values, so the normalized layer returns

  .. math:: h_t = \frac{\alpha m + \sum_{j \le t,\, k_j = q_t} v_j}{\alpha + N_t(q_t)},

  the empirical conditional mean of the values given the query's key, shrunk toward ``m``
  by ``alpha`` pseudo-observations (``S_0[c] = alpha m``, ``z_0[c] = alpha``). For one-hot
  values this is the posterior mean of ``P(v | key = q_t)`` under a ``Dirichlet(alpha m)``
  prior; ``alpha = 0`` gives the maximum-likelihood estimate (undefined before the first
  occurrence of the key: ``0 / 0``).
- **No switch** (:func:`attention_from_model`). The ``rho = 0`` always-emitting filter
  ``h_t = log pi + sum_{tau <= t} l_tau`` (docs/theory.md section 5, the row computed by
  :func:`switchssm.bridges.cumulative_evidence`) is the *unnormalized* layer (the lecture's
  eq. 19-20) with a constant key and query and values ``v_t = l_t = Q T(y_t)``: one memory
  row accumulating the log-likelihoods, started at ``S_0 = log pi'``. The dual reading, keys
  ``phi(k_t) = T(y_t)`` and values 1 (:func:`switchssm.bridges.linear_attention_memory`),
  accumulates the statistics ``sum T(y_tau)`` themselves, read out by the fixed queries
  ``Q``; both are naive Bayes over the sequence.
"""

# ruff: noqa: F722  (jaxtyping shape strings such as "T K" are not forward references)

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from switchssm import _validation as V
from switchssm.bridges.evidence import evidence_queries
from switchssm.bridges.evidence import sufficient_statistics
from switchssm.models.params import SwitchingParams
from switchssm.rnn.attention import AttentionMemory
from switchssm.rnn.attention import LinearAttentionParams
from switchssm.rnn.attention import linear_attention
from switchssm.types import Array
from switchssm.types import ArrayLike
from switchssm.types import Float

__all__ = [
    "AttentionBridge",
    "attention_from_model",
    "attention_posterior",
    "count_attention",
    "count_attention_inputs",
    "evidence_attention_inputs",
]


class AttentionBridge(NamedTuple):
    """A linear-attention layer with its starting memory and how to run it.

    Attributes:
        params: :class:`~switchssm.rnn.LinearAttentionParams`.
        memory0: :class:`~switchssm.rnn.AttentionMemory` before the first step.
        normalize: the ``normalize`` argument to run it with (feature map ``"identity"``).
    """

    params: LinearAttentionParams
    memory0: AttentionMemory
    normalize: bool

    def __call__(self, x, *, form: str = "recurrent", chunk_size: int = 64):
        """Run the layer on ``x`` (``(T, D_in)``)."""
        return linear_attention(
            self.params,
            x,
            self.memory0,
            form=form,
            feature_map="identity",
            normalize=self.normalize,
            chunk_size=chunk_size,
        )


def _selector(rows, cols, offset, dtype):
    w = np.zeros((rows, cols))
    w[np.arange(rows), offset + np.arange(rows)] = 1.0
    return jnp.asarray(w, dtype)


def count_attention(
    num_keys: int,
    value_dim: int,
    *,
    prior_strength: float = 0.0,
    prior_mean: Float[ArrayLike, " Dv"] | None = None,
    dtype=None,
) -> AttentionBridge:
    r"""Normalized linear attention computing conditional means of values given a key.

    Input layout ``x_t = [onehot(q_t), onehot(k_t), v_t]`` (:func:`count_attention_inputs`):
    ``W_q`` and ``W_k`` select the two one-hot blocks, ``W_v`` the values, the feature map
    is the identity, and the memories start at ``S_0[c] = alpha m``, ``z_0[c] = alpha``, so
    (module docstring) ``h_t = (alpha m + sum_{j <= t, k_j = q_t} v_j) / (alpha + N_t(q_t))``.

    Args:
        num_keys: ``K`` categories of keys (and queries).
        value_dim: ``Dv``.
        prior_strength: ``alpha >= 0`` pseudo-observations per key.
        prior_mean: ``(Dv,)`` ``m`` (default ``1 / Dv`` in every entry, the uniform
            distribution for one-hot values).
        dtype: float dtype (default: JAX's default float).

    Returns:
        :class:`AttentionBridge` (``normalize=True``).

    Example:
        >>> bridge = count_attention(2, 2, prior_strength=1.0)
        >>> x = count_attention_inputs([0, 0], [0, 0], [[1.0, 0.0], [1.0, 0.0]], 2)
        >>> [round(float(v), 4) for v in bridge(x)[-1]]  # (1/2 + 2) / (1 + 2), (1/2) / 3
        [0.8333, 0.1667]
    """
    K = V.check_int(num_keys, "num_keys")
    Dv = V.check_int(value_dim, "value_dim")
    alpha = V.check_float(prior_strength, "prior_strength", low=0.0)
    dtype = jnp.result_type(float) if dtype is None else dtype
    m = np.full(Dv, 1.0 / Dv) if prior_mean is None else np.asarray(prior_mean, np.float64)
    V.check_shape(m, "prior_mean", (Dv,), "(value_dim,)")
    V.check_finite(m, "prior_mean")
    D = 2 * K + Dv
    params = LinearAttentionParams(
        _selector(K, D, 0, dtype),
        _selector(K, D, K, dtype),
        _selector(Dv, D, 2 * K, dtype),
        jnp.zeros((1, K), dtype),  # unused by the identity feature map
    )
    memory0 = AttentionMemory(
        jnp.asarray(alpha * np.tile(m, (K, 1)), dtype), jnp.full((K,), alpha, dtype)
    )
    return AttentionBridge(params, memory0, True)


def count_attention_inputs(
    queries: ArrayLike, keys: ArrayLike, values: Float[ArrayLike, "T Dv"], num_keys: int
) -> Float[Array, "T D"]:
    """``x_t = [onehot(q_t), onehot(k_t), v_t]``, the input of :func:`count_attention`.

    Args:
        queries: ``(T,)`` integer query keys in ``[0, K)``.
        keys: ``(T,)`` integer keys in ``[0, K)``.
        values: ``(T, Dv)`` values.
        num_keys: ``K``.

    Returns:
        ``(T, 2 K + Dv)``.

    Example:
        >>> count_attention_inputs([1], [0], [[5.0]], 2).tolist()
        [[0.0, 1.0, 1.0, 0.0, 5.0]]
    """
    K = V.check_int(num_keys, "num_keys")
    V.check_ndim(queries, "queries", 1, "(T,)")
    V.check_ndim(keys, "keys", 1, "(T,)")
    V.check_ndim(values, "values", 2, "(T, value_dim)")
    T = np.shape(keys)[0]
    if np.shape(queries)[0] != T or np.shape(values)[0] != T:
        raise ValueError(
            f"`queries`, `keys` and `values` must have one length, got {np.shape(queries)[0]}, "
            f"{T} and {np.shape(values)[0]}"
        )
    V.check_length(T, "keys")
    V.check_int_range(queries, "queries", 0, K)
    V.check_int_range(keys, "keys", 0, K)
    V.check_finite(values, "values")
    eye = np.eye(K)
    x = np.concatenate(
        [eye[np.asarray(queries, int)], eye[np.asarray(keys, int)], np.asarray(values, float)],
        axis=1,
    )
    return jnp.asarray(x, jnp.result_type(float))


def attention_from_model(params: SwitchingParams) -> AttentionBridge:
    r"""The no-switch (``rho = 0``) filter as an unnormalized linear-attention layer.

    Input ``x_t = [T(y_t), 1]`` (:func:`evidence_attention_inputs`; ``T`` the sufficient
    statistics of :func:`~switchssm.bridges.sufficient_statistics`). Key and query read the
    constant column (``phi(k_t) = phi(q_t) = 1``, identity map), the values are the
    log-likelihoods ``v_t = Q T(y_t) = l_t + const``, and ``S_0 = log pi'``:

    .. math:: h_t = \phi(q_t)^\top S_t = \log\pi + \sum_{\tau \le t} l_\tau,

    which is :func:`~switchssm.bridges.cumulative_evidence`, i.e. ``log P(s | y_{1:t})`` up
    to a constant. ``params.switch_prob`` is ignored (the construction is the ``rho = 0``
    filter).

    Args:
        params: a :class:`~switchssm.models.SwitchingParams` (strictly positive ``pi``).

    Returns:
        :class:`AttentionBridge` (``normalize=False``); belief ``softmax(h_t)``
        (:func:`attention_posterior`).

    Example:
        >>> import numpy as np
        >>> from switchssm.models import SwitchingParams, CategoricalEmission
        >>> B = np.array([[0.9, 0.1], [0.5, 0.5]])
        >>> p = SwitchingParams(np.ones(2) / 2, 0.0, CategoricalEmission(B))
        >>> bridge = attention_from_model(p)
        >>> h = bridge(evidence_attention_inputs(p, np.array([0, 0])))
        >>> np.asarray(h[-1], float).round(4).tolist()  # log(1/2) + 2 log(0.9), + 2 log(0.5)
        [-0.9039, -2.0794]
    """
    if not isinstance(params, SwitchingParams):
        raise ValueError(f"`params` must be SwitchingParams, got {type(params).__name__}")
    Q = evidence_queries(params)  # (K, F)
    K, F = Q.shape
    pi = np.asarray(params.initial_probs, np.float64)
    if np.any(pi <= 0):
        raise ValueError("`params.initial_probs` must be strictly positive (log pi is the memory)")
    dtype = params.initial_probs.dtype
    const = np.zeros((1, F + 1))
    const[0, F] = 1.0
    wv = np.concatenate([Q, np.zeros((K, 1))], axis=1)
    layer = LinearAttentionParams(
        jnp.asarray(const, dtype),
        jnp.asarray(const, dtype),
        jnp.asarray(wv, dtype),
        jnp.zeros((1, 1), dtype),
    )
    memory0 = AttentionMemory(jnp.asarray(np.log(pi)[None, :], dtype), jnp.zeros((1,), dtype))
    return AttentionBridge(layer, memory0, False)


def evidence_attention_inputs(params: SwitchingParams, y: ArrayLike) -> Float[Array, "T F1"]:
    """``x_t = [T(y_t), 1]``, the input of :func:`attention_from_model`.

    Args:
        params: the model.
        y: ``(T,)`` symbols or ``(T, D)`` reals.

    Returns:
        ``(T, F + 1)``.

    Example:
        >>> import numpy as np
        >>> from switchssm.models import SwitchingParams, CategoricalEmission
        >>> p = SwitchingParams(np.ones(2) / 2, 0.0, CategoricalEmission(np.full((2, 3), 1 / 3)))
        >>> np.asarray(evidence_attention_inputs(p, np.array([2]))).tolist()
        [[0.0, 0.0, 1.0, 1.0]]
    """
    stats = sufficient_statistics(params, y)
    return jnp.concatenate([stats, jnp.ones((stats.shape[0], 1), stats.dtype)], axis=-1)


def attention_posterior(
    bridge: AttentionBridge, x: Float[ArrayLike, "T D"], *, form: str = "recurrent"
) -> Float[Array, "T K"]:
    """``softmax`` of an :func:`attention_from_model` layer's output: the belief over ``s_t``.

    Args:
        bridge: from :func:`attention_from_model`.
        x: from :func:`evidence_attention_inputs`.
        form: ``"parallel"``, ``"recurrent"`` or ``"chunked"``.

    Returns:
        ``(T, K)`` probabilities.

    Example:
        >>> import numpy as np
        >>> from switchssm.models import SwitchingParams, CategoricalEmission
        >>> p = SwitchingParams(np.ones(2) / 2, 0.0, CategoricalEmission(np.eye(2) * 0.8 + 0.1))
        >>> b = attention_from_model(p)
        >>> probs = attention_posterior(b, evidence_attention_inputs(p, np.array([0])))
        >>> [round(float(v), 4) for v in probs[0]]  # 0.9 / (0.9 + 0.1)
        [0.9, 0.1]
    """
    if not isinstance(bridge, AttentionBridge):
        raise ValueError(f"`bridge` must be an AttentionBridge, got {type(bridge).__name__}")
    return jax.nn.softmax(bridge(x, form=form), axis=-1)
