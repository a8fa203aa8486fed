r"""Composing sequence layers: a bidirectional wrapper and residual stacks with token-wise MLPs.

- :func:`bidirectional` runs one causal layer left to right and a second one (separate
  parameters) right to left and concatenates their outputs:
  ``h_t = [f(x)_t ; reverse(g(reverse(x)))_t]``, so ``h_t`` reads the whole sequence.
- :func:`stack` is a small multi-layer model: an input embedding ``u = W_e x + b_e``, then
  ``L`` blocks ``u <- u + layer(u)``, ``u <- u + MLP(u)`` (a token-wise two-layer GELU
  network), the output ``u`` of width ``H``. Linear recurrences are "less expressive" than
  nonlinear ones; the token-wise MLPs between them restore it (Orvieto et al. 2023).
"""

# ruff: noqa: F722  (jaxtyping shape strings such as "H D" are not forward references)

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from switchssm import _validation as V
from switchssm import scan
from switchssm._pytree import params_pytree
from switchssm._pytree import shape_dim
from switchssm.rnn import _common as C
from switchssm.rnn import attention as _attention
from switchssm.rnn import selective_ssm as _selective
from switchssm.rnn import ssm as _ssm
from switchssm.types import Array
from switchssm.types import Float
from switchssm.types import PRNGKeyArray

__all__ = [
    "STACK_LAYERS",
    "BidirectionalParams",
    "MLPParams",
    "StackParams",
    "bidirectional",
    "init_bidirectional",
    "init_mlp",
    "init_stack",
    "mlp",
    "stack",
]


# ---------------------------------------------------------------------------
# Bidirectional wrapper
# ---------------------------------------------------------------------------


@params_pytree(promote=False)
class BidirectionalParams:
    """Two parameter sets of one layer type: ``forward`` (left to right), ``backward``."""

    _children = ("forward", "backward")

    forward: object
    backward: object

    def _validate(self):
        if type(self.forward) is not type(self.backward):
            raise ValueError(
                "`BidirectionalParams.forward` and `.backward` must be parameters of one layer "
                f"type, got {type(self.forward).__name__} and {type(self.backward).__name__}"
            )


def init_bidirectional(init: Callable, key: PRNGKeyArray, *args, **kwargs) -> BidirectionalParams:
    """Two independent draws of ``init(key_i, *args, **kwargs)``.

    Args:
        init: a layer initializer, e.g. :func:`switchssm.rnn.init_lru`.
        key: PRNG key (split in two).
        *args: passed to ``init``.
        **kwargs: passed to ``init``.

    Returns:
        :class:`BidirectionalParams`.

    Example:
        >>> from switchssm.rnn import init_lru
        >>> p = init_bidirectional(init_lru, jax.random.PRNGKey(0), 2, 3)
        >>> type(p.backward).__name__
        'LRUParams'
    """
    if not callable(init):
        raise ValueError(f"`init` must be a layer initializer, got {init!r}")
    k1, k2 = jax.random.split(key)
    return BidirectionalParams(init(k1, *args, **kwargs), init(k2, *args, **kwargs))


def bidirectional(
    layer: Callable,
    params: BidirectionalParams,
    x: Float[Array, "*B T D"],
    **kwargs,
) -> Float[Array, "*B T H2"]:
    r"""Run a causal layer in both directions and concatenate the outputs.

    .. math:: h_t = \big[f_{\theta_1}(x)_t \,;\, f_{\theta_2}(\overleftarrow x)_{T+1-t}\big],
              \qquad \overleftarrow x_t = x_{T+1-t},

    so ``h_t`` depends on every ``x_j`` (the layer is no longer causal).

    Args:
        layer: a sequence function ``layer(params, x, **kwargs)`` of this package (e.g.
            :func:`switchssm.rnn.lru`, :func:`switchssm.rnn.linear_attention`).
        params: :class:`BidirectionalParams` of that layer.
        x: ``(T, D_in)`` or ``(B, T, D_in)`` inputs.
        **kwargs: passed to both calls (``mode=``, ``form=``, ...).

    Returns:
        ``(..., T, H_forward + H_backward)``.

    Example:
        >>> from switchssm.rnn import init_lru, lru
        >>> p = init_bidirectional(init_lru, jax.random.PRNGKey(0), 2, 3)
        >>> bidirectional(lru, p, jnp.ones((5, 2))).shape
        (5, 6)
    """
    if not callable(layer):
        raise ValueError(f"`layer` must be a sequence function such as lru, got {layer!r}")
    if not isinstance(params, BidirectionalParams):
        raise ValueError(f"`params` must be BidirectionalParams, got {type(params).__name__}")
    V.check_ndim(x, "x", (2, 3), "((T, input_dim) or (B, T, input_dim))")
    x = C.as_input(x)
    fwd = layer(params.forward, x, **kwargs)
    bwd = jnp.flip(layer(params.backward, jnp.flip(x, axis=-2), **kwargs), axis=-2)
    return jnp.concatenate([fwd, bwd], axis=-1)


# ---------------------------------------------------------------------------
# Token-wise MLP
# ---------------------------------------------------------------------------


@params_pytree(promote=False)
class MLPParams:
    """A token-wise two-layer network ``W_2 gelu(W_1 u + b_1) + b_2``.

    Args:
        hidden_weight, hidden_bias: ``(M, H)``, ``(M,)``.
        output_weight, output_bias: ``(H, M)``, ``(H,)``.
    """

    hidden_weight: Float[Array, "M H"]
    hidden_bias: Float[Array, " M"]
    output_weight: Float[Array, "H M"]
    output_bias: Float[Array, " H"]

    def _validate(self):
        m, h = C.check_linear(self, "hidden", None, None)
        C.check_linear(self, "output", h, m)

    input_dim = shape_dim("hidden_weight", 1)


def init_mlp(key: PRNGKeyArray, width: int, hidden: int, *, dtype=None) -> MLPParams:
    """Random MLP weights, ``U(+-1/sqrt(fan_in))``, zero biases.

    Args:
        key: PRNG key.
        width: ``H`` (input = output width).
        hidden: ``M``.
        dtype: float dtype.

    Returns:
        :class:`MLPParams`.

    Example:
        >>> init_mlp(jax.random.PRNGKey(0), 3, 6).hidden_weight.shape
        (6, 3)
    """
    C.check_dims(width, hidden, ("width", "hidden"))
    k1, k2 = jax.random.split(key)
    w1 = C.uniform(k1, (hidden, width), width, dtype)
    w2 = C.uniform(k2, (width, hidden), hidden, dtype)
    return MLPParams(w1, jnp.zeros((hidden,), w1.dtype), w2, jnp.zeros((width,), w2.dtype))


def _mlp(p, u):
    return C.linear(
        jax.nn.gelu(C.linear(u, p.hidden_weight, p.hidden_bias)), p.output_weight, p.output_bias
    )


def mlp(params: MLPParams, u: Float[Array, "... H"]) -> Float[Array, "... H"]:
    r"""Apply a token-wise MLP: :math:`W_2\, \mathrm{gelu}(W_1 u + b_1) + b_2` at every step.

    Args:
        params: :class:`MLPParams`.
        u: ``(..., H)``.

    Returns:
        ``(..., H)``.

    Example:
        >>> p = init_mlp(jax.random.PRNGKey(0), 3, 6)
        >>> mlp(p, jnp.ones((5, 3))).shape
        (5, 3)
    """
    C.check_params(params, MLPParams)
    if np.shape(u)[-1:] != (params.input_dim,):
        raise ValueError(f"`u` must have last dimension {params.input_dim}, got {np.shape(u)}")
    return _mlp(params, C.as_input(u, "u"))


# ---------------------------------------------------------------------------
# Stacks
# ---------------------------------------------------------------------------


def _init_layer(kind, key, width, dtype):
    if kind == "linear_attention":
        return _attention.init_linear_attention(key, width, width, dtype=dtype)
    if kind == "lti":
        return _ssm.init_lti(key, width, width, dtype=dtype)
    if kind == "lru":
        return _ssm.init_lru(key, width, width, r_min=0.5, r_max=0.99, dtype=dtype)
    if kind == "s6":
        return _selective.init_s6(key, width, 8, dtype=dtype)
    return _selective.init_mamba(key, width, width, dtype=dtype)


_LAYER_TYPES = {
    "linear_attention": _attention.LinearAttentionParams,
    "lti": _ssm.LTIParams,
    "lru": _ssm.LRUParams,
    "s6": _selective.S6Params,
    "mamba": _selective.MambaParams,
}

#: Layer kinds :func:`stack` can hold.
STACK_LAYERS = tuple(_LAYER_TYPES)


def _run_layer(kind, p, u, mode):
    # The private (unvalidated, unjitted) forms: the stack validates once and is jitted whole.
    if kind == "linear_attention":
        fq, fk, v = _attention._qkv(p, u, "elu")
        e, h = fq.shape[-1], v.shape[-1]
        S0 = jnp.zeros(u.shape[:-2] + (e, h), u.dtype)
        z0 = jnp.zeros(u.shape[:-2] + (e,), u.dtype)
        return _attention._chunked(fq, fk, v, S0, z0, True, 0.0, 64)
    if kind == "lti":
        return _ssm._lti_scan(p, u, mode == "parallel")
    if kind == "lru":
        lam, b_in, c_out = _ssm._lru_parts(p)
        return _ssm._diagonal_run(lam, b_in, c_out, p.feedthrough, u, mode)
    if kind == "s6":
        return _selective._s6(p, u, mode, "zoh")
    return _selective._mamba(p, u, mode, "zoh")


@params_pytree(promote=False)
class StackParams:
    """A residual stack of ``L`` sequence layers of one kind with token-wise MLPs.

    Args:
        layer: the layer kind (static), one of :data:`STACK_LAYERS`.
        embed_weight, embed_bias: ``(H, D_in)``, ``(H,)``: ``u = W_e x + b_e``.
        layers: tuple of ``L`` layer parameters (width ``H`` to ``H``).
        mlps: tuple of ``L`` :class:`MLPParams`.
    """

    _static = ("layer",)
    _children = ("layers", "mlps")

    layer: str
    embed_weight: Float[Array, "H D"]
    embed_bias: Float[Array, " H"]
    layers: tuple
    mlps: tuple

    def _validate(self):
        V.check_choice(self.layer, "StackParams.layer", STACK_LAYERS)
        h, _ = C.check_linear(self, "embed", None, None)
        if not isinstance(self.layers, tuple) or not isinstance(self.mlps, tuple):
            raise ValueError("`StackParams.layers` and `.mlps` must be tuples")
        if len(self.layers) != len(self.mlps) or not self.layers:
            raise ValueError(
                "`StackParams.layers` and `.mlps` must be non-empty and of one length, got "
                f"{len(self.layers)} and {len(self.mlps)}"
            )
        cls = _LAYER_TYPES[self.layer]
        for i, (lp, mp) in enumerate(zip(self.layers, self.mlps, strict=True)):
            if not isinstance(lp, cls) or not isinstance(mp, MLPParams):
                raise ValueError(
                    f"`StackParams.layers[{i}]` must be {cls.__name__} and `.mlps[{i}]` "
                    f"MLPParams, got {type(lp).__name__} and {type(mp).__name__}"
                )
            if lp.input_dim != h or lp.hidden_dim != h or mp.input_dim != h:
                raise ValueError(f"`StackParams.layers[{i}]` must map width {h} to {h}")

    input_dim = shape_dim("embed_weight", 1)
    hidden_dim = shape_dim("embed_weight", 0)


def init_stack(
    key: PRNGKeyArray,
    input_dim: int,
    hidden_dim: int,
    *,
    layer: str = "s6",
    num_layers: int = 2,
    mlp_ratio: int = 2,
    dtype=None,
) -> StackParams:
    """Random stack weights: embedding ``U(+-1/sqrt(D_in))``, each layer's own initializer.

    Args:
        key: PRNG key.
        input_dim: ``D_in``.
        hidden_dim: ``H``, the width of every layer and of the output.
        layer: one of :data:`STACK_LAYERS`.
        num_layers: ``L >= 1``.
        mlp_ratio: MLP hidden width ``M = mlp_ratio * H``.
        dtype: float dtype.

    Returns:
        :class:`StackParams`.

    Example:
        >>> p = init_stack(jax.random.PRNGKey(0), 3, 4, layer="lru", num_layers=2)
        >>> len(p.layers), p.hidden_dim
        (2, 4)
    """
    C.check_dims(input_dim, hidden_dim)
    V.check_choice(layer, "layer", STACK_LAYERS)
    num_layers = V.check_int(num_layers, "num_layers")
    mlp_ratio = V.check_int(mlp_ratio, "mlp_ratio")
    keys = jax.random.split(key, 2 * num_layers + 1)
    w = C.uniform(keys[0], (hidden_dim, input_dim), input_dim, dtype)
    layers = tuple(_init_layer(layer, keys[1 + i], hidden_dim, w.dtype) for i in range(num_layers))
    mlps = tuple(
        init_mlp(keys[1 + num_layers + i], hidden_dim, mlp_ratio * hidden_dim, dtype=w.dtype)
        for i in range(num_layers)
    )
    return StackParams(layer, w, jnp.zeros((hidden_dim,), w.dtype), layers, mlps)


@functools.partial(jax.jit, static_argnames=("mode",))
def _stack(params, x, mode):
    u = C.linear(x, params.embed_weight, params.embed_bias)
    for lp, mp in zip(params.layers, params.mlps, strict=True):
        u = u + _run_layer(params.layer, lp, u, mode)
        u = u + _mlp(mp, u)
    return u


def stack(
    params: StackParams, x: Float[Array, "*B T D"], *, mode: str | None = None
) -> Float[Array, "*B T H"]:
    r"""Run a residual stack: :math:`u^{(0)} = W_e x + b_e`, then for each block
    :math:`u \leftarrow u + f_\ell(u)`, :math:`u \leftarrow u + \mathrm{MLP}_\ell(u)`.

    The layers run in their default forms (linear attention: ``elu`` features, normalized,
    chunks of 64; LTI: scan; S6 and Mamba: zero-order hold); ``mode`` selects the scans.

    Args:
        params: :class:`StackParams`.
        x: ``(T, D_in)`` or ``(B, T, D_in)`` inputs.
        mode: ``"sequential"``, ``"parallel"`` or ``None`` (backend default).

    Returns:
        ``(T, H)`` or ``(B, T, H)``.

    Example:
        >>> p = init_stack(jax.random.PRNGKey(0), 3, 4, layer="s6")
        >>> stack(p, jnp.ones((2, 5, 3))).shape
        (2, 5, 4)
    """
    mode = scan.resolve_mode(mode)
    C.check_params(params, StackParams)
    C.check_inputs(x, params.input_dim)
    return _stack(params, C.as_input(x), mode)
