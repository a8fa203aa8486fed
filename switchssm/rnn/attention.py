r"""Causal linearized attention (Katharopoulos et al. 2020) in three equivalent forms.

Attention with a kernel :math:`\alpha(q, k) = \phi(q)^\top \phi(k)` (feature map
:math:`\phi: \mathbb R^F \to \mathbb R^E`), masked so that step ``i`` reads steps
``j <= i``:

.. math::

    h_i = \frac{\phi(q_i)^\top S_i}{\phi(q_i)^\top z_i}, \qquad
    S_i = S_{i-1} + \phi(k_i) v_i^\top, \quad z_i = z_{i-1} + \phi(k_i),

with ``q_i = W_q x_i``, ``k_i = W_k x_i``, ``v_i = W_v x_i`` and ``S_0 = 0``, ``z_0 = 0``
(or a given :class:`AttentionMemory`). ``normalize=False`` drops the denominator,
``h_i = phi(q_i)' S_i``: the form in which linear attention is a state-space layer whose
readout ``phi(q_i)'`` depends on the input. Three ways to compute the same numbers
(``form=``):

- ``"parallel"``: the masked ``(T, T)`` score matrix :math:`M_{ij} = \phi(q_i)^\top
  \phi(k_j) [j \le i]`, then ``M V`` and ``M 1``: ``O(T^2 (E + H))`` work, no recurrence;
- ``"recurrent"``: the memories ``(S_i, z_i)`` carried by :func:`jax.lax.scan`:
  ``O(T E H)`` work, ``O(E H)`` state, ``T`` sequential steps;
- ``"chunked"``: parallel inside chunks of ``chunk_size`` steps, recurrent across chunks
  (``O(T C (E + H) + T E H)`` work, ``T / C`` sequential steps).

Feature maps (``feature_map=``): ``"elu"`` (:math:`\mathrm{elu}(x) + 1`, the paper's),
``"relu"``, ``"identity"`` and ``"random"``: positive random features
:math:`\phi(x) = \exp(\Omega x - \|x\|^2 / 2) / \sqrt M` (Choromanski et al. 2021) with
``E(phi(q)' phi(k)) = exp(q' k)`` over ``Omega`` with standard normal rows, an unbiased
approximation of the softmax kernel. ``Omega`` is the parameter ``feature_projection``,
drawn once by :func:`init_linear_attention` and never trained (gradients are stopped).

Only causal masks are offered: ``causal=False`` raises (a two-sided layer is
:func:`switchssm.rnn.bidirectional` of two causal ones).
"""

# ruff: noqa: F722  (jaxtyping shape strings such as "H D" are not forward references)

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from switchssm import _validation as V
from switchssm._pytree import params_pytree
from switchssm._pytree import shape_dim
from switchssm.rnn import _common as C
from switchssm.types import Array
from switchssm.types import Float
from switchssm.types import PRNGKeyArray

__all__ = [
    "FEATURE_MAPS",
    "FORMS",
    "AttentionMemory",
    "LinearAttentionParams",
    "attention_features",
    "init_linear_attention",
    "linear_attention",
]

FEATURE_MAPS = ("elu", "relu", "identity", "random")
FORMS = ("parallel", "recurrent", "chunked")


@params_pytree(promote=False)
class LinearAttentionParams:
    """Linear attention weights (no biases: a constant input column gives one).

    Args:
        query_weight: ``(F, D_in)``, ``q = W_q x``.
        key_weight: ``(F, D_in)``, ``k = W_k x``.
        value_weight: ``(H, D_in)``, ``v = W_v x``; ``H`` is the output width.
        feature_projection: ``(M, F)`` rows ``omega_m`` of the ``"random"`` feature map
            (unused by the other maps; never trained).
    """

    query_weight: Float[Array, "F D"]
    key_weight: Float[Array, "F D"]
    value_weight: Float[Array, "H D"]
    feature_projection: Float[Array, "M F"]

    def _validate(self):
        cls = type(self).__name__
        V.check_ndim(self.query_weight, f"{cls}.query_weight", 2, "(feature_dim, input_dim)")
        f, d = np.shape(self.query_weight)
        V.check_shape(self.key_weight, f"{cls}.key_weight", (f, d), "(feature_dim, input_dim)")
        V.check_ndim(self.value_weight, f"{cls}.value_weight", 2, "(hidden_dim, input_dim)")
        V.check_shape(
            self.value_weight, f"{cls}.value_weight", (None, d), "(hidden_dim, input_dim)"
        )
        V.check_ndim(self.feature_projection, f"{cls}.feature_projection", 2)
        V.check_shape(
            self.feature_projection, f"{cls}.feature_projection", (None, f), "(M, feature_dim)"
        )
        for n in ("query_weight", "key_weight", "value_weight", "feature_projection"):
            V.check_finite(getattr(self, n), f"{cls}.{n}")

    input_dim = shape_dim("query_weight", 1)
    hidden_dim = shape_dim("value_weight", 0)

    def feature_dim(self, feature_map: str) -> int:
        """``E``, the width of ``phi(q)``: ``M`` for ``"random"``, else ``F``."""
        return (
            self.feature_projection.shape[0]
            if feature_map == "random"
            else self.query_weight.shape[0]
        )


class AttentionMemory(NamedTuple):
    """The two memories of causal linear attention (before the first step, or after the last).

    Attributes:
        values: ``(*B, E, H)`` ``S = sum_j phi(k_j) v_j'``.
        normalizer: ``(*B, E)`` ``z = sum_j phi(k_j)``.
    """

    values: Array
    normalizer: Array


def init_linear_attention(
    key: PRNGKeyArray,
    input_dim: int,
    hidden_dim: int,
    *,
    feature_dim: int | None = None,
    num_random_features: int | None = None,
    dtype=None,
) -> LinearAttentionParams:
    """Random linear-attention weights, ``U(+-1/sqrt(input_dim))``; ``Omega ~ N(0, I)``.

    Args:
        key: PRNG key.
        input_dim: ``D_in``.
        hidden_dim: ``H`` (value and output width).
        feature_dim: ``F``, the query/key width (default ``hidden_dim``).
        num_random_features: ``M`` rows of ``feature_projection`` (default ``2 F``).
        dtype: float dtype (default: JAX's default float).

    Returns:
        :class:`LinearAttentionParams`.

    Example:
        >>> p = init_linear_attention(jax.random.PRNGKey(0), 3, 4)
        >>> p.query_weight.shape, p.feature_projection.shape, p.hidden_dim
        ((4, 3), (8, 4), 4)
    """
    C.check_dims(input_dim, hidden_dim)
    f = hidden_dim if feature_dim is None else V.check_int(feature_dim, "feature_dim")
    m = (
        2 * f
        if num_random_features is None
        else V.check_int(num_random_features, "num_random_features")
    )
    kq, kk, kv, ko = jax.random.split(key, 4)
    wq = C.uniform(kq, (f, input_dim), input_dim, dtype)
    return LinearAttentionParams(
        wq,
        C.uniform(kk, (f, input_dim), input_dim, dtype),
        C.uniform(kv, (hidden_dim, input_dim), input_dim, dtype),
        jax.random.normal(ko, (m, f), wq.dtype),
    )


def _features(x, projection, feature_map):
    if feature_map == "elu":
        return jax.nn.elu(x) + 1.0
    if feature_map == "relu":
        return jax.nn.relu(x)
    if feature_map == "identity":
        return x
    omega = lax.stop_gradient(projection)
    m = omega.shape[0]
    return jnp.exp(x @ omega.T - 0.5 * jnp.sum(x * x, axis=-1, keepdims=True)) / np.sqrt(m)


def attention_features(
    x: Float[Array, "... F"],
    feature_map: str = "elu",
    projection: Float[Array, "M F"] | None = None,
) -> Float[Array, "... E"]:
    r"""A feature map :math:`\phi` of linear attention, applied over the last axis.

    ``"elu"``: :math:`\mathrm{elu}(x) + 1 > 0`; ``"relu"``: :math:`\max(x, 0)`;
    ``"identity"``: ``x``; ``"random"``: :math:`\exp(\Omega x - \|x\|^2/2) / \sqrt M`,
    for which :math:`\mathbb E_\Omega[\phi(q)^\top \phi(k)] = \exp(q^\top k)` when the rows
    of ``Omega`` are standard normal (because
    :math:`\mathbb E[e^{\omega^\top (q + k)}] = e^{\|q + k\|^2 / 2}`).

    Args:
        x: ``(..., F)`` queries or keys.
        feature_map: one of :data:`FEATURE_MAPS`.
        projection: ``(M, F)`` ``Omega`` (``"random"`` only).

    Returns:
        ``(..., E)`` features (``E = M`` for ``"random"``, else ``F``).

    Example:
        >>> phi = attention_features(jnp.array([-1.0, 0.0, 2.0]))  # elu(x) + 1
        >>> [round(float(v), 4) for v in phi]
        [0.3679, 1.0, 3.0]
    """
    V.check_choice(feature_map, "feature_map", FEATURE_MAPS)
    if feature_map == "random":
        if projection is None:
            raise ValueError("`projection` (M, F) is required for feature_map='random'")
        V.check_shape(projection, "projection", (None, np.shape(x)[-1]), "(M, F)")
    x = jnp.asarray(x)
    return _features(x, None if projection is None else jnp.asarray(projection), feature_map)


def _qkv(params, x, feature_map):
    q = x @ params.query_weight.T
    k = x @ params.key_weight.T
    v = x @ params.value_weight.T
    proj = params.feature_projection
    return _features(q, proj, feature_map), _features(k, proj, feature_map), v


def _finish(num, den, normalize, eps):
    return num / (den + eps) if normalize else num


def _parallel(fq, fk, v, S0, z0, normalize, eps):
    T = fq.shape[-2]
    mask = jnp.tril(jnp.ones((T, T), dtype=bool))
    scores = jnp.where(mask, jnp.einsum("...ie,...je->...ij", fq, fk), 0.0)
    if S0 is None:
        num = scores @ v
        den = jnp.sum(scores, axis=-1)
    else:
        # The memory as E extra "steps" every query reads: one product [M, phi(Q)] [V; S_0].
        # (Adding phi(Q) S_0 to M V as a separate product made XLA:CPU return garbage at
        # T = 4096, E = H = 64 when S_0 was a compile-time constant, jax 0.10.2.)
        scores = jnp.concatenate([scores, fq], axis=-1)
        vals = jnp.concatenate([v, jnp.broadcast_to(S0, v.shape[:-2] + S0.shape[-2:])], axis=-2)
        num = scores @ vals
        den = jnp.sum(scores[..., :T], axis=-1) + jnp.einsum("...ie,...e->...i", fq, z0)
    return _finish(num, den[..., None], normalize, eps)


def _recurrent(fq, fk, v, S0, z0, normalize, eps):
    xs = tuple(jnp.moveaxis(a, -2, 0) for a in (fq, fk, v))

    def step(carry, inp):
        S, z = carry
        q, k, vv = inp
        S = S + k[..., :, None] * vv[..., None, :]
        z = z + k
        num = jnp.einsum("...e,...eh->...h", q, S)
        den = jnp.einsum("...e,...e->...", q, z)[..., None]
        return (S, z), _finish(num, den, normalize, eps)

    _, h = lax.scan(step, (S0, z0), xs)
    return jnp.moveaxis(h, 0, -2)


def _chunked(fq, fk, v, S0, z0, normalize, eps, chunk_size):
    T = fq.shape[-2]
    c = min(chunk_size, T)
    n = -(-T // c)
    pad = n * c - T

    def split(a):
        # Zero padding at the end: later steps never reach earlier outputs (causal), and
        # the padded outputs are dropped below.
        a = jnp.pad(a, [(0, 0)] * (a.ndim - 2) + [(0, pad), (0, 0)])
        a = a.reshape(*a.shape[:-2], n, c, a.shape[-1])
        return jnp.moveaxis(a, -3, 0)

    mask = jnp.tril(jnp.ones((c, c), dtype=bool))
    valid = split(jnp.ones(fq.shape[:-1] + (1,), fq.dtype))[..., 0]

    def step(carry, inp):
        S, z = carry
        q, k, vv, ok = inp
        scores = jnp.where(mask, jnp.einsum("...ie,...je->...ij", q, k), 0.0)
        num = scores @ vv + jnp.einsum("...ie,...eh->...ih", q, S)
        den = jnp.sum(scores, axis=-1) + jnp.einsum("...ie,...e->...i", q, z)
        # Padded steps have q = 0 and den = 0: give them den = 1 so that neither their
        # values nor the gradients through them are NaN.
        den = jnp.where(ok > 0, den, 1.0)
        S = S + jnp.einsum("...ie,...ih->...eh", k, vv)
        z = z + jnp.sum(k, axis=-2)
        return (S, z), _finish(num, den[..., None], normalize, eps)

    _, h = lax.scan(step, (S0, z0), (split(fq), split(fk), split(v), valid))
    h = jnp.moveaxis(h, 0, -3)
    h = h.reshape(*h.shape[:-3], n * c, h.shape[-1])
    return h[..., :T, :]


@functools.partial(jax.jit, static_argnames=("form", "feature_map", "normalize", "chunk_size"))
def _linear_attention(params, x, S0, z0, eps, form, feature_map, normalize, chunk_size):
    fq, fk, v = _qkv(params, x, feature_map)
    if form == "parallel":
        return _parallel(fq, fk, v, S0, z0, normalize, eps)
    if S0 is None:  # no memory given: the scans start from zeros
        S0 = jnp.zeros(fk.shape[:-2] + (fk.shape[-1], v.shape[-1]), v.dtype)
        z0 = jnp.zeros(fk.shape[:-2] + (fk.shape[-1],), fk.dtype)
    if form == "recurrent":
        return _recurrent(fq, fk, v, S0, z0, normalize, eps)
    return _chunked(fq, fk, v, S0, z0, normalize, eps, chunk_size)


def _memory0(memory0, x, params, feature_map):
    batch = tuple(x.shape[:-2])
    e, h = params.feature_dim(feature_map), params.hidden_dim
    dtype = jnp.result_type(x, params.query_weight)
    if memory0 is None:
        return None, None
    if not isinstance(memory0, AttentionMemory | tuple) or len(memory0) != 2:
        raise ValueError("`memory0` must be an AttentionMemory (values (E, H), normalizer (E,))")
    S0, z0 = memory0
    for a, name, tail in ((S0, "memory0.values", (e, h)), (z0, "memory0.normalizer", (e,))):
        got = tuple(np.shape(a))
        if got not in (tail, batch + tail):
            raise ValueError(f"`{name}` must have shape {tail} or {batch + tail}, got {got}")
        V.check_finite(a, name)
    S0 = jnp.broadcast_to(jnp.asarray(S0, dtype), batch + (e, h))
    z0 = jnp.broadcast_to(jnp.asarray(z0, dtype), batch + (e,))
    return S0, z0


def linear_attention(
    params: LinearAttentionParams,
    x: Float[Array, "*B T D"],
    memory0: AttentionMemory | None = None,
    *,
    form: str = "chunked",
    feature_map: str = "elu",
    normalize: bool = True,
    chunk_size: int = 64,
    causal: bool = True,
    eps: float = 0.0,
) -> Float[Array, "*B T H"]:
    r"""Run causal linear attention over a sequence (module docstring for the three forms).

    .. math::

        h_i = \frac{\phi(q_i)^\top (S_0 + \sum_{j \le i} \phi(k_j) v_j^\top)}
                   {\phi(q_i)^\top (z_0 + \sum_{j \le i} \phi(k_j)) + \epsilon}
        \quad(\texttt{normalize=True}), \qquad
        h_i = \phi(q_i)^\top \Big(S_0 + \sum_{j \le i} \phi(k_j) v_j^\top\Big)
        \quad(\texttt{normalize=False}).

    With ``"relu"`` or ``"identity"`` the normalizer can be 0 or negative; ``eps`` (or a
    positive ``memory0.normalizer``) keeps it away from 0 where that matters.

    Args:
        params: :class:`LinearAttentionParams`.
        x: ``(T, D_in)`` or ``(B, T, D_in)`` inputs.
        memory0: :class:`AttentionMemory` before the first step (``(E, H)`` and ``(E,)``,
            or with the batch axes); zeros if ``None``.
        form: ``"parallel"``, ``"recurrent"`` or ``"chunked"`` (same values).
        feature_map: one of :data:`FEATURE_MAPS`.
        normalize: divide by ``phi(q_i)' z_i`` (eq. 4 of the lecture form) or not.
        chunk_size: ``C >= 1``, steps per chunk of the ``"chunked"`` form.
        causal: must be ``True`` (this layer is causal).
        eps: added to the normalizer (``>= 0``).

    Returns:
        ``h``: ``(T, H)`` or ``(B, T, H)``.

    Example:
        >>> p = init_linear_attention(jax.random.PRNGKey(0), 3, 4)
        >>> x = jax.random.normal(jax.random.PRNGKey(1), (6, 3))
        >>> a = linear_attention(p, x, form="parallel")
        >>> b = linear_attention(p, x, form="chunked", chunk_size=4)
        >>> bool(jnp.allclose(a, b, atol=1e-5)), a.shape
        (True, (6, 4))
    """
    V.check_bool(causal, "causal")
    if not causal:
        raise ValueError(
            "`causal` must be True: linear_attention is a causal layer (step i reads j <= i); "
            "for a two-sided layer wrap two causal ones with switchssm.rnn.bidirectional"
        )
    V.check_choice(form, "form", FORMS)
    V.check_choice(feature_map, "feature_map", FEATURE_MAPS)
    normalize = V.check_bool(normalize, "normalize")
    chunk_size = V.check_int(chunk_size, "chunk_size", low=1)
    eps = V.check_float(eps, "eps", low=0.0)
    C.check_params(params, LinearAttentionParams)
    C.check_inputs(x, params.input_dim)
    x = C.as_input(x)
    S0, z0 = _memory0(memory0, x, params, feature_map)
    return _linear_attention(
        params,
        x,
        S0,
        z0,
        eps,
        form=form,
        feature_map=feature_map,
        normalize=normalize,
        chunk_size=chunk_size,
    )
