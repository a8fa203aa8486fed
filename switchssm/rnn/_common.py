"""Shared pieces of the RNN cells: boundary checks, activations.

Nothing here knows about probability. Every public cell function validates its
concrete inputs here, before any ``jit``, and skips the checks for tracers so the
cells stay usable inside ``jit``, ``grad`` and ``vmap``.
"""

# ruff: noqa: F722  (jaxtyping shape strings such as "H D" are not forward references)

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from switchssm import _validation as V
from switchssm.types import Array
from switchssm.types import ArrayLike
from switchssm.types import Float

__all__ = [
    "g_activation",
    "log_g_activation",
]

SPACES = ("logit", "log")
CANDIDATES = ("g", "exp", "log_softmax")


# ---------------------------------------------------------------------------
# parameters (the classes are switchssm._pytree.params_pytree dataclasses)
# ---------------------------------------------------------------------------


def as_input(x, name: str = "x"):
    """Cell inputs as a JAX float array (float32 stays float32; complex, bool refused)."""
    return jnp.asarray(V.as_float(x, name, promote=False))


def check_params(params, cls) -> None:
    """``params`` is a ``cls`` with consistent shapes and finite values (when concrete)."""
    if not isinstance(params, cls):
        raise ValueError(f"`params` must be {cls.__name__}, got {type(params).__name__}")
    if V.all_concrete(params):
        params._validate()


def check_linear(params, prefix: str, out_dim: int | None, in_dim: int | None) -> tuple[int, int]:
    """Check ``<prefix>_weight (out, in)`` and ``<prefix>_bias (out,)``; return ``(out, in)``."""
    cls = type(params).__name__
    w = getattr(params, f"{prefix}_weight")
    b = getattr(params, f"{prefix}_bias")
    V.check_ndim(w, f"{cls}.{prefix}_weight", 2, "(hidden_dim, input_dim)")
    out_dim = w.shape[0] if out_dim is None else out_dim
    in_dim = w.shape[1] if in_dim is None else in_dim
    V.check_shape(w, f"{cls}.{prefix}_weight", (out_dim, in_dim), "(hidden_dim, input_dim)")
    V.check_shape(b, f"{cls}.{prefix}_bias", (out_dim,), "(hidden_dim,)")
    V.check_finite(w, f"{cls}.{prefix}_weight")
    V.check_finite(b, f"{cls}.{prefix}_bias")
    return out_dim, in_dim


def check_recurrent(params, prefix: str, hidden_dim: int) -> None:
    """Check ``<prefix>_recurrent (H, H)``."""
    name = f"{type(params).__name__}.{prefix}_recurrent"
    u = getattr(params, f"{prefix}_recurrent")
    V.check_shape(u, name, (hidden_dim, hidden_dim), "(hidden_dim, hidden_dim)")
    V.check_finite(u, name)


def uniform(key, shape, fan_in: int, dtype=None) -> Array:
    """Draw from ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (the PyTorch RNN default scale)."""
    dtype = jnp.result_type(float) if dtype is None else dtype
    bound = 1.0 / np.sqrt(fan_in)
    return jax.random.uniform(key, shape, dtype=dtype, minval=-bound, maxval=bound)


def check_dims(input_dim, hidden_dim, names=("input_dim", "hidden_dim")) -> None:
    for name, d in zip(names, (input_dim, hidden_dim), strict=True):
        V.check_int(d, name)


# ---------------------------------------------------------------------------
# boundary checks for sequences and states
# ---------------------------------------------------------------------------


def check_inputs(x, input_dim: int, name: str = "x") -> None:
    """``x`` is ``(T, D_in)`` or ``(B, T, D_in)`` with ``T >= 1`` and finite values."""
    V.check_ndim(x, name, (2, 3), "((T, input_dim) or (B, T, input_dim))")
    shape = np.shape(x)
    if shape[-1] != input_dim:
        raise ValueError(
            f"`{name}` must have last dimension input_dim = {input_dim} (the parameters' "
            f"input dimension), got shape {tuple(shape)}"
        )
    V.check_length(shape[-2], name)
    V.check_finite(x, name)


def check_state(
    h0, name: str, hidden_dim: int, x_shape: tuple, *, log: bool = False, positive: bool = False
) -> None:
    """``h0`` is ``(H,)`` or, for batched ``x``, ``(B, H)``.

    ``log=True`` allows ``-inf`` (a zero state) but no NaN or ``+inf``;
    ``positive=True`` requires strictly positive finite entries.
    """
    if h0 is None:
        return
    batch = tuple(x_shape[:-2])
    allowed = [(hidden_dim,)] + ([batch + (hidden_dim,)] if batch else [])
    got = tuple(np.shape(h0))
    if got not in allowed:
        exp = " or ".join(str(s) for s in allowed)
        raise ValueError(f"`{name}` must have shape {exp}, got {got}")
    if not V.is_concrete(h0):
        return
    if log:
        a = np.asarray(h0)
        if np.any(np.isnan(a)) or np.any(a == np.inf):
            raise ValueError(f"`{name}` must be a log state: no NaN or +inf (-inf means zero)")
    elif positive:
        V.check_positive(h0, name)
    else:
        V.check_finite(h0, name)


def initial_state(h0, x: Array, weight: Array, default: float = 0.0) -> Array:
    """The full ``(*batch, H)`` initial state in the cell's dtype, built before ``jit``.

    ``h0=None`` gives ``default``; an ``(H,)`` state broadcasts over ``x``'s batch axes.
    Concrete values are built with NumPy, so every call of a cell with the same
    ``x`` shape reuses one compiled program whatever ``h0`` is; tracers use ``jnp``.

    Args:
        h0: ``None``, ``(H,)`` or ``(*batch, H)``.
        x: ``(*batch, T, D_in)`` inputs (a JAX array).
        weight: any ``(H, D_in)`` weight of the cell (fixes ``H`` and the dtype).
        default: the value of every entry when ``h0`` is ``None``.
    """
    dtype = jnp.result_type(x, weight)
    shape = tuple(x.shape[:-2]) + (weight.shape[0],)
    h0 = default if h0 is None else h0
    xp = np if V.is_concrete(h0) else jnp
    return xp.broadcast_to(xp.asarray(h0, dtype=dtype), shape)


def log_of(h0):
    """``log h0`` keeping ``None``; NumPy for concrete (validated positive) values."""
    if h0 is None:
        return None
    return np.log(np.asarray(h0)) if V.is_concrete(h0) else jnp.log(h0)


# ---------------------------------------------------------------------------
# activations
# ---------------------------------------------------------------------------


def linear(x: Float[Array, "... D"], weight: Float[Array, "H D"], bias: Float[Array, " H"]):
    """``x W' + b`` over the last axis (any leading axes)."""
    return x @ weight.T + bias


def g_activation(x: ArrayLike) -> Array:
    r"""The positive activation of the log-space minGRU (Feng et al. 2024, appendix).

    .. math:: g(x) = x + 1/2 \ (x \ge 0), \qquad g(x) = \sigma(x) \ (x < 0).

    Continuous at 0 (both pieces give 1/2; the slope jumps from 1/4 to 1), strictly
    positive, and linear for large ``x``, so states neither vanish nor saturate.

    Args:
        x: any array.

    Returns:
        ``g(x) > 0``, same shape.

    Example:
        >>> float(g_activation(2.0)), float(g_activation(0.0))
        (2.5, 0.5)
    """
    x = jnp.asarray(x)
    # where(x >= 0, x, 0) rather than relu: relu has zero slope at 0, g has slope 1.
    return jnp.where(x >= 0, jnp.where(x >= 0, x, 0.0) + 0.5, jax.nn.sigmoid(x))


def log_g_activation(x: ArrayLike) -> Array:
    r"""``log g(x)`` computed without forming ``g``: ``log(relu(x) + 1/2)`` or ``-softplus(-x)``.

    Both branches are finite for every finite ``x`` (clipping at 0 keeps the unused
    branch away from ``log 0``), so gradients through ``where`` stay finite; the slope
    at 0 is the right derivative, 2.

    Args:
        x: any array.

    Returns:
        ``log g(x)``, same shape.

    Example:
        >>> round(float(log_g_activation(-50.0)), 6)  # log sigmoid(-50), no underflow
        -50.0
    """
    x = jnp.asarray(x)
    return jnp.where(x >= 0, jnp.log(jnp.where(x >= 0, x, 0.0) + 0.5), -jax.nn.softplus(-x))


def log_candidate(pre: Array, candidate: str) -> Array:
    """``log h~`` for a positive-state cell from the candidate pre-activation."""
    if candidate == "g":
        return log_g_activation(pre)
    if candidate == "exp":
        return pre
    if candidate == "log_softmax":
        return jax.nn.log_softmax(pre, axis=-1)
    raise ValueError(f"`candidate` must be one of {CANDIDATES}, got {candidate!r}")


def positive_candidate(pre: Array, candidate: str) -> Array:
    """``h~ = exp(log_candidate(pre, candidate))`` computed in linear space."""
    if candidate == "g":
        return g_activation(pre)
    if candidate == "exp":
        return jnp.exp(pre)
    if candidate == "log_softmax":
        return jax.nn.softmax(pre, axis=-1)
    raise ValueError(f"`candidate` must be one of {CANDIDATES}, got {candidate!r}")


def default_log_state(candidate: str, hidden_dim: int) -> float:
    """``log h0`` by default: the candidate at zero pre-activation.

    ``g(0) = 1/2``, ``exp(0) = 1``, ``softmax(0) = 1/H`` (the uniform distribution).
    """
    return {"g": np.log(0.5), "exp": 0.0, "log_softmax": -np.log(hidden_dim)}[candidate]


def field_name(params, field: str) -> str:
    """``"ClassName.field"``, the name errors give for one parameter leaf."""
    return f"{type(params).__name__}.{field}"


def check_field(params, field: str, shape, what: str) -> tuple[int, ...]:
    """Check one leaf's rank, shape and finiteness; return its shape."""
    a = getattr(params, field)
    V.check_ndim(a, field_name(params, field), len(shape), what)
    V.check_shape(a, field_name(params, field), shape, what)
    V.check_finite(a, field_name(params, field))
    return np.shape(a)


def prepare(params, cls, x):
    """Validate a layer's parameters and inputs; return the inputs as an array."""
    check_params(params, cls)
    check_inputs(x, params.input_dim)
    return as_input(x)
