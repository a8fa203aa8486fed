"""A linear readout with a softmax: hidden states to class probabilities."""

# ruff: noqa: F722  (jaxtyping shape strings such as "H D" are not forward references)

from __future__ import annotations

import jax
import jax.numpy as jnp

from switchssm import _validation as V
from switchssm._pytree import params_pytree
from switchssm._pytree import shape_dim
from switchssm.rnn import _common as C
from switchssm.types import Array
from switchssm.types import Float
from switchssm.types import PRNGKeyArray

__all__ = ["ReadoutParams", "init_readout", "readout", "readout_log"]


@params_pytree(promote=False)
class ReadoutParams:
    """Readout weights.

    Args:
        weight: ``(C, H)`` maps ``H`` hidden units to ``C`` class logits.
        bias: ``(C,)``.
    """

    weight: Float[Array, "C H"]
    bias: Float[Array, " C"]

    def _validate(self):
        V.check_ndim(self.weight, "ReadoutParams.weight", 2, "(num_classes, hidden_dim)")
        V.check_shape(self.bias, "ReadoutParams.bias", (self.weight.shape[0],), "(num_classes,)")
        V.check_finite(self.weight, "ReadoutParams.weight")
        V.check_finite(self.bias, "ReadoutParams.bias")

    hidden_dim = shape_dim("weight", 1)
    num_classes = shape_dim("weight", 0)


def init_readout(
    key: PRNGKeyArray, hidden_dim: int, num_classes: int, *, dtype=None
) -> ReadoutParams:
    """Random readout weights, ``U(+-1/sqrt(hidden_dim))``, zero bias.

    Args:
        key: PRNG key.
        hidden_dim: ``H``.
        num_classes: ``C``.
        dtype: float dtype (default: JAX's default float).

    Returns:
        :class:`ReadoutParams`.

    Example:
        >>> init_readout(jax.random.PRNGKey(0), 4, 3).weight.shape
        (3, 4)
    """
    C.check_dims(hidden_dim, num_classes, ("hidden_dim", "num_classes"))
    w = C.uniform(key, (num_classes, hidden_dim), hidden_dim, dtype)
    return ReadoutParams(w, jnp.zeros((num_classes,), w.dtype))


def _check(params, h):
    C.check_params(params, ReadoutParams)
    if h.ndim < 1 or h.shape[-1] != params.hidden_dim:
        raise ValueError(
            f"`h` must have last dimension hidden_dim = {params.hidden_dim}, got shape {h.shape}"
        )
    V.check_finite(h, "h")


def readout_log(params: ReadoutParams, h: Float[Array, "... H"]) -> Float[Array, "... C"]:
    r"""Class log-probabilities :math:`\log \mathrm{softmax}(W h + b)` over the last axis.

    Args:
        params: :class:`ReadoutParams`.
        h: ``(..., H)`` hidden states (any leading axes).

    Returns:
        ``(..., C)`` log-probabilities.

    Example:
        >>> params = init_readout(jax.random.PRNGKey(0), 4, 3)
        >>> readout_log(params, jnp.ones((5, 4))).shape
        (5, 3)
    """
    h = C.as_input(h, "h")
    _check(params, h)
    return jax.nn.log_softmax(C.linear(h, params.weight, params.bias), axis=-1)


def readout(params: ReadoutParams, h: Float[Array, "... H"]) -> Float[Array, "... C"]:
    r"""Class probabilities :math:`\mathrm{softmax}(W h + b)` over the last axis.

    Args:
        params: :class:`ReadoutParams`.
        h: ``(..., H)`` hidden states (any leading axes).

    Returns:
        ``(..., C)`` probabilities, each row summing to one.

    Example:
        >>> params = init_readout(jax.random.PRNGKey(0), 4, 3)
        >>> jnp.allclose(readout(params, jnp.ones(4)).sum(), 1.0).item()
        True
    """
    return jnp.exp(readout_log(params, h))
