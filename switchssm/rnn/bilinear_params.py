"""Parameters and initializers of the bilinear cells (:mod:`switchssm.rnn.bilinear`).

One frozen pytree per structure of ``A(x)``; the additive term ``B x_t`` and the rotation
blocks' log-scale are optional :class:`InputTerm` children. Initializations are documented
in :mod:`switchssm.rnn.bilinear`.
"""

# ruff: noqa: F722  (jaxtyping shape strings such as "H D" are not forward references)

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from switchssm import _validation as V
from switchssm._pytree import params_pytree
from switchssm._pytree import shape_dim
from switchssm.rnn import _common as C
from switchssm.types import Array
from switchssm.types import Float
from switchssm.types import PRNGKeyArray

__all__ = [
    "BILINEAR_KINDS",
    "BilinearParams",
    "BlockBilinearParams",
    "CPBilinearParams",
    "ComplexDiagonalParams",
    "DiagonalBilinearParams",
    "InputTerm",
    "RotationParams",
    "init_bilinear",
    "init_block_bilinear",
    "init_complex_diagonal",
    "init_cp_bilinear",
    "init_diagonal_bilinear",
    "init_rotation",
]

#: The structures of ``A(x)``, most expressive first.
BILINEAR_KINDS = ("bilinear", "cp", "block", "rotation", "complex", "diagonal")

# ---------------------------------------------------------------------------
# parameters
# ---------------------------------------------------------------------------


@params_pytree(promote=False)
class InputTerm:
    """A linear map of the input, ``x -> W x`` (the additive term ``B x_t``, or the
    log-scale of the rotation blocks).

    Args:
        weight: ``(out, D_in)``.
    """

    weight: Float[Array, "O D"]

    def _validate(self):
        V.check_ndim(self.weight, "InputTerm.weight", 2, "(out_dim, input_dim)")
        V.check_finite(self.weight, "InputTerm.weight")


def _check_initial_state(params, hidden_dim: int) -> None:
    name = C.field_name(params, "initial_state")
    V.check_shape(params.initial_state, name, (hidden_dim,), "(hidden_dim,)")
    V.check_finite(params.initial_state, name)


def _check_term(params, field: str, out_dim: int, input_dim: int) -> None:
    term = getattr(params, field)
    if term is None:
        return
    if not isinstance(term, InputTerm):
        raise ValueError(
            f"`{C.field_name(params, field)}` must be an InputTerm or None, "
            f"got {type(term).__name__}"
        )
    V.check_shape(
        term.weight,
        f"{C.field_name(params, field)}.weight",
        (out_dim, input_dim),
        f"({out_dim}, input_dim)",
    )


@params_pytree(promote=False)
class BilinearParams:
    """Full bilinear cell: ``A(x)_{ij} = sum_k W_{ijk} x_k``.

    Args:
        weight: ``(H, H, D_in)``, ``W``.
        initial_state: ``(H,)``, the state before the first step.
        additive: :class:`InputTerm` with ``(H, D_in)`` weights (``+ B x_t``) or ``None``.
    """

    weight: Float[Array, "H H D"]
    initial_state: Float[Array, " H"]
    additive: InputTerm | None = None
    _children: ClassVar[tuple] = ("additive",)

    def _validate(self):
        H, D = _check_3d(self, "weight", "(hidden_dim, hidden_dim, input_dim)")
        if self.weight.shape[1] != H:
            raise ValueError(
                f"`BilinearParams.weight` must be (hidden_dim, hidden_dim, input_dim), got "
                f"shape {tuple(self.weight.shape)}"
            )
        _check_initial_state(self, H)
        _check_term(self, "additive", H, D)

    input_dim = shape_dim("weight", 2)
    hidden_dim = shape_dim("weight", 0)


@params_pytree(promote=False)
class CPBilinearParams:
    """CP-factorized bilinear cell: ``A(x) = U diag(V' x) W'``, rank ``R``.

    Args:
        left: ``(H, R)``, ``U``.
        input_factor: ``(D_in, R)``, ``V``.
        right: ``(H, R)``, ``W``.
        initial_state: ``(H,)``.
        additive: :class:`InputTerm` (``(H, D_in)``) or ``None``.
    """

    left: Float[Array, "H R"]
    input_factor: Float[Array, "D R"]
    right: Float[Array, "H R"]
    initial_state: Float[Array, " H"]
    additive: InputTerm | None = None
    _children: ClassVar[tuple] = ("additive",)

    def _validate(self):
        H, R = _check_2d(self, "left", "(hidden_dim, rank)")
        D, _ = _check_2d(self, "input_factor", "(input_dim, rank)", cols=R)
        _check_2d(self, "right", "(hidden_dim, rank)", rows=H, cols=R)
        _check_initial_state(self, H)
        _check_term(self, "additive", H, D)

    input_dim = shape_dim("input_factor", 0)
    hidden_dim = shape_dim("left", 0)
    rank = shape_dim("left", 1)


@params_pytree(promote=False)
class BlockBilinearParams:
    """Block-diagonal bilinear cell: ``H / b`` free ``b x b`` blocks, each linear in ``x``.

    ``b = weight.shape[1]``; ``b = 1`` is the real diagonal, ``b = H`` the full cell.

    Args:
        weight: ``(H / b, b, b, D_in)``: block ``n`` is ``sum_k weight[n, :, :, k] x_k``.
        initial_state: ``(H,)``.
        additive: :class:`InputTerm` (``(H, D_in)``) or ``None``.
    """

    weight: Float[Array, "N b b D"]
    initial_state: Float[Array, " H"]
    additive: InputTerm | None = None
    _children: ClassVar[tuple] = ("additive",)

    def _validate(self):
        name = C.field_name(self, "weight")
        V.check_ndim(self.weight, name, 4, "(num_blocks, block_size, block_size, input_dim)")
        n, b, b2, D = self.weight.shape
        if b != b2 or n < 1 or b < 1:
            raise ValueError(
                f"`{name}` must be (num_blocks, block_size, block_size, input_dim), got shape "
                f"{tuple(self.weight.shape)}"
            )
        V.check_finite(self.weight, name)
        _check_initial_state(self, n * b)
        _check_term(self, "additive", n * b, D)

    input_dim = shape_dim("weight", 3)

    @property
    def hidden_dim(self) -> int:
        return self.weight.shape[0] * self.weight.shape[1]

    block_size = shape_dim("weight", 1)


@params_pytree(promote=False)
class RotationParams:
    """Rotation-block (R2) cell: block ``n`` rotates ``(h_{2n}, h_{2n+1})`` by
    ``theta_n(x) = (Theta x)_n``, optionally scaled by ``exp((S x)_n)``.

    Args:
        angle_weight: ``(H / 2, D_in)``, ``Theta``.
        initial_state: ``(H,)``.
        scale: :class:`InputTerm` with ``(H / 2, D_in)`` log-scale weights ``S``, or ``None``
            (pure rotations: the norm of ``h`` never changes).
        additive: :class:`InputTerm` (``(H, D_in)``) or ``None``.
    """

    angle_weight: Float[Array, "N D"]
    initial_state: Float[Array, " H"]
    scale: InputTerm | None = None
    additive: InputTerm | None = None
    _children: ClassVar[tuple] = ("scale", "additive")

    def _validate(self):
        n, D = _check_2d(self, "angle_weight", "(hidden_dim / 2, input_dim)")
        _check_initial_state(self, 2 * n)
        _check_term(self, "scale", n, D)
        _check_term(self, "additive", 2 * n, D)

    input_dim = shape_dim("angle_weight", 1)

    @property
    def hidden_dim(self) -> int:
        return 2 * self.angle_weight.shape[0]


@params_pytree(promote=False)
class ComplexDiagonalParams:
    """Complex-diagonal cell: ``h_n <- lambda_n(x) h_n`` with ``lambda(x) = (W_re + i W_im) x``.

    The ``H / 2`` complex state entries are stored as interleaved pairs ``(Re, Im)``.

    Args:
        real_weight, imag_weight: ``(H / 2, D_in)`` each.
        initial_state: ``(H,)`` (pairs ``(Re h_n, Im h_n)``).
        additive: :class:`InputTerm` (``(H, D_in)``) or ``None``.
    """

    real_weight: Float[Array, "N D"]
    imag_weight: Float[Array, "N D"]
    initial_state: Float[Array, " H"]
    additive: InputTerm | None = None
    _children: ClassVar[tuple] = ("additive",)

    def _validate(self):
        n, D = _check_2d(self, "real_weight", "(hidden_dim / 2, input_dim)")
        _check_2d(self, "imag_weight", "(hidden_dim / 2, input_dim)", rows=n, cols=D)
        _check_initial_state(self, 2 * n)
        _check_term(self, "additive", 2 * n, D)

    input_dim = shape_dim("real_weight", 1)

    @property
    def hidden_dim(self) -> int:
        return 2 * self.real_weight.shape[0]


@params_pytree(promote=False)
class DiagonalBilinearParams:
    """Real-diagonal cell: ``A(x) = diag(W x)`` (entries may be negative).

    Args:
        weight: ``(H, D_in)``.
        initial_state: ``(H,)``.
        additive: :class:`InputTerm` (``(H, D_in)``) or ``None``.
    """

    weight: Float[Array, "H D"]
    initial_state: Float[Array, " H"]
    additive: InputTerm | None = None
    _children: ClassVar[tuple] = ("additive",)

    def _validate(self):
        H, D = _check_2d(self, "weight", "(hidden_dim, input_dim)")
        _check_initial_state(self, H)
        _check_term(self, "additive", H, D)

    input_dim = shape_dim("weight", 1)
    hidden_dim = shape_dim("weight", 0)


def _check_2d(params, field, what, rows=None, cols=None):
    name = C.field_name(params, field)
    a = getattr(params, field)
    V.check_ndim(a, name, 2, what)
    r, c = a.shape
    if (rows is not None and r != rows) or (cols is not None and c != cols) or r < 1 or c < 1:
        raise ValueError(f"`{name}` must be {what}, got shape {tuple(a.shape)}")
    V.check_finite(a, name)
    return r, c


def _check_3d(params, field, what):
    name = C.field_name(params, field)
    a = getattr(params, field)
    V.check_ndim(a, name, 3, what)
    if min(a.shape) < 1:
        raise ValueError(f"`{name}` must be {what}, got shape {tuple(a.shape)}")
    V.check_finite(a, name)
    return a.shape[0], a.shape[2]


_PARAMS = {
    "bilinear": BilinearParams,
    "cp": CPBilinearParams,
    "block": BlockBilinearParams,
    "rotation": RotationParams,
    "complex": ComplexDiagonalParams,
    "diagonal": DiagonalBilinearParams,
}
_KIND_OF = {cls: kind for kind, cls in _PARAMS.items()}


def kind_of(params) -> str:
    """The kind (:data:`BILINEAR_KINDS`) of a bilinear parameter object (ValueError if none)."""
    kind = _KIND_OF.get(type(params))
    if kind is None:
        names = ", ".join(c.__name__ for c in _PARAMS.values())
        raise ValueError(f"`params` must be one of {names}, got {type(params).__name__}")
    return kind


# ---------------------------------------------------------------------------
# initializers
# ---------------------------------------------------------------------------


def _dtype(dtype):
    return jnp.result_type(float) if dtype is None else dtype


def _unit_vector(key, n, dtype):
    v = jax.random.normal(key, (n,), dtype)
    return v / jnp.linalg.norm(v)


def _additive(key, hidden_dim, input_dim, additive, dtype):
    if not V.check_bool(additive, "additive"):
        return None
    return InputTerm(C.uniform(key, (hidden_dim, input_dim), input_dim, dtype))


def _even(hidden_dim, kind):
    if hidden_dim % 2:
        raise ValueError(f"`hidden_dim` must be even for the {kind} cell (pairs), got {hidden_dim}")


def init_bilinear(
    key: PRNGKeyArray, input_dim: int, hidden_dim: int, *, additive: bool = False, dtype=None
) -> BilinearParams:
    """Random full bilinear weights: ``W_{ijk} ~ N(0, 1/H)`` (each ``A(e_k)`` has spectral
    radius about 1), a random unit initial state.

    Args:
        key: PRNG key.
        input_dim: ``D_in``.
        hidden_dim: ``H``.
        additive: add a learned input term ``B x_t``.
        dtype: float dtype (default: JAX's default float).

    Returns:
        :class:`BilinearParams`.

    Example:
        >>> init_bilinear(jax.random.PRNGKey(0), 3, 4).weight.shape
        (4, 4, 3)
    """
    C.check_dims(input_dim, hidden_dim)
    dtype = _dtype(dtype)
    k = jax.random.split(key, 3)
    w = jax.random.normal(k[0], (hidden_dim, hidden_dim, input_dim), dtype) / np.sqrt(hidden_dim)
    return BilinearParams(
        w,
        _unit_vector(k[1], hidden_dim, dtype),
        _additive(k[2], hidden_dim, input_dim, additive, dtype),
    )


def init_cp_bilinear(
    key: PRNGKeyArray,
    input_dim: int,
    hidden_dim: int,
    *,
    rank: int | None = None,
    additive: bool = False,
    dtype=None,
) -> CPBilinearParams:
    """Random CP factors (rank ``R``, default ``H``), scaled so ``A(e_k)`` has entries of
    variance about ``1/H``, like the full cell.

    Args:
        key: PRNG key.
        input_dim: ``D_in``.
        hidden_dim: ``H``.
        rank: ``R`` (default ``H``).
        additive: add a learned input term ``B x_t``.
        dtype: float dtype.

    Returns:
        :class:`CPBilinearParams`.

    Example:
        >>> init_cp_bilinear(jax.random.PRNGKey(0), 3, 4, rank=2).rank
        2
    """
    C.check_dims(input_dim, hidden_dim)
    rank = hidden_dim if rank is None else V.check_int(rank, "rank")
    dtype = _dtype(dtype)
    k = jax.random.split(key, 5)
    # (U diag(v) W')_{ij} = sum_r U_ir v_r W_jr: variance R s^6 = 1/H for factors N(0, s^2)
    s = (1.0 / (hidden_dim * rank)) ** (1.0 / 6.0)
    n = lambda kk, shape: s * jax.random.normal(kk, shape, dtype)
    return CPBilinearParams(
        n(k[0], (hidden_dim, rank)),
        n(k[1], (input_dim, rank)),
        n(k[2], (hidden_dim, rank)),
        _unit_vector(k[3], hidden_dim, dtype),
        _additive(k[4], hidden_dim, input_dim, additive, dtype),
    )


def init_block_bilinear(
    key: PRNGKeyArray,
    input_dim: int,
    hidden_dim: int,
    *,
    block_size: int = 2,
    additive: bool = False,
    dtype=None,
) -> BlockBilinearParams:
    """Random ``b x b`` blocks with entries ``N(0, 1/b)``.

    Args:
        key: PRNG key.
        input_dim: ``D_in``.
        hidden_dim: ``H``, a multiple of ``block_size``.
        block_size: ``b`` (2 is the paper's main case; 1 is the real diagonal).
        additive: add a learned input term ``B x_t``.
        dtype: float dtype.

    Returns:
        :class:`BlockBilinearParams`.

    Example:
        >>> init_block_bilinear(jax.random.PRNGKey(0), 3, 4).weight.shape
        (2, 2, 2, 3)
    """
    C.check_dims(input_dim, hidden_dim)
    b = V.check_int(block_size, "block_size")
    if hidden_dim % b:
        raise ValueError(f"`hidden_dim` ({hidden_dim}) must be a multiple of `block_size` ({b})")
    dtype = _dtype(dtype)
    k = jax.random.split(key, 3)
    w = jax.random.normal(k[0], (hidden_dim // b, b, b, input_dim), dtype) / np.sqrt(b)
    return BlockBilinearParams(
        w,
        _unit_vector(k[1], hidden_dim, dtype),
        _additive(k[2], hidden_dim, input_dim, additive, dtype),
    )


def init_rotation(
    key: PRNGKeyArray,
    input_dim: int,
    hidden_dim: int,
    *,
    scale: bool = False,
    additive: bool = False,
    dtype=None,
) -> RotationParams:
    """Random rotation angles ``U(-pi, pi)`` per block and input unit; zero log-scales.

    Args:
        key: PRNG key.
        input_dim: ``D_in``.
        hidden_dim: ``H`` (even).
        scale: learn an input-dependent scale ``exp(S x)`` per block.
        additive: add a learned input term ``B x_t``.
        dtype: float dtype.

    Returns:
        :class:`RotationParams`.

    Example:
        >>> init_rotation(jax.random.PRNGKey(0), 3, 4).angle_weight.shape
        (2, 3)
    """
    C.check_dims(input_dim, hidden_dim)
    _even(hidden_dim, "rotation")
    dtype = _dtype(dtype)
    k = jax.random.split(key, 3)
    n = hidden_dim // 2
    angles = jax.random.uniform(k[0], (n, input_dim), dtype, -np.pi, np.pi)
    log_scale = (
        InputTerm(jnp.zeros((n, input_dim), dtype)) if V.check_bool(scale, "scale") else None
    )
    return RotationParams(
        angles,
        _unit_vector(k[1], hidden_dim, dtype),
        log_scale,
        _additive(k[2], hidden_dim, input_dim, additive, dtype),
    )


def init_complex_diagonal(
    key: PRNGKeyArray, input_dim: int, hidden_dim: int, *, additive: bool = False, dtype=None
) -> ComplexDiagonalParams:
    """Random complex eigenvalues per input unit, uniform in the unit disc.

    Args:
        key: PRNG key.
        input_dim: ``D_in``.
        hidden_dim: ``H`` (even: ``H / 2`` complex entries).
        additive: add a learned input term ``B x_t``.
        dtype: float dtype.

    Returns:
        :class:`ComplexDiagonalParams`.

    Example:
        >>> init_complex_diagonal(jax.random.PRNGKey(0), 3, 4).real_weight.shape
        (2, 3)
    """
    C.check_dims(input_dim, hidden_dim)
    _even(hidden_dim, "complex")
    dtype = _dtype(dtype)
    k = jax.random.split(key, 4)
    n = hidden_dim // 2
    radius = jnp.sqrt(jax.random.uniform(k[0], (n, input_dim), dtype))
    angle = jax.random.uniform(k[1], (n, input_dim), dtype, -np.pi, np.pi)
    return ComplexDiagonalParams(
        radius * jnp.cos(angle),
        radius * jnp.sin(angle),
        _unit_vector(k[2], hidden_dim, dtype),
        _additive(k[3], hidden_dim, input_dim, additive, dtype),
    )


def init_diagonal_bilinear(
    key: PRNGKeyArray, input_dim: int, hidden_dim: int, *, additive: bool = False, dtype=None
) -> DiagonalBilinearParams:
    """Random diagonal entries ``U(-1, 1)`` per input unit (negative entries allowed: a
    sign flip is what parity needs).

    Args:
        key: PRNG key.
        input_dim: ``D_in``.
        hidden_dim: ``H``.
        additive: add a learned input term ``B x_t``.
        dtype: float dtype.

    Returns:
        :class:`DiagonalBilinearParams`.

    Example:
        >>> init_diagonal_bilinear(jax.random.PRNGKey(0), 3, 4).weight.shape
        (4, 3)
    """
    C.check_dims(input_dim, hidden_dim)
    dtype = _dtype(dtype)
    k = jax.random.split(key, 3)
    w = jax.random.uniform(k[0], (hidden_dim, input_dim), dtype, -1.0, 1.0)
    return DiagonalBilinearParams(
        w,
        _unit_vector(k[1], hidden_dim, dtype),
        _additive(k[2], hidden_dim, input_dim, additive, dtype),
    )
