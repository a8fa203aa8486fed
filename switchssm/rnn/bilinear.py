r"""Bilinear state transitions: ``h_t = A(x_t) h_{t-1}``, the operator selected by the input.

The hidden state is multiplied by a matrix that is a *linear* function of the input
(Ebrahimi & Memisevic 2025, docs/theory.md section 7), so the update is bilinear in
``(h_{t-1}, x_t)``:

.. math:: h_{t,i} = \sum_{j,k} W_{ijk}\, x_{t,k}\, h_{t-1,j} \;(+\; (B x_t)_i).

Six structures of ``A(x)``, from the most to the least expressive (parameters of ``A``):

- ``bilinear``: ``A(x)_{ij} = sum_k W_{ijk} x_k``, the full cell (``H^2 D``);
- ``cp``: ``U diag(V' x) W'``, CP-factorized with rank ``R`` (``R (2H + D)``);
- ``block``: ``H / b`` free ``b x b`` blocks, each linear in ``x`` (``H b D``);
- ``rotation``: ``H / 2`` rotations by ``theta(x) = Theta x`` (R2 blocks), optionally scaled
  by ``exp(S x)`` (``H D / 2``, or ``H D`` scaled);
- ``complex``: ``H / 2`` complex eigenvalues ``lambda(x) = (W_re + i W_im) x`` (``H D``);
- ``diagonal``: ``diag(W x)``, real (``H D``).

A complex state is stored as interleaved real pairs ``(Re, Im)``, so every kind returns
``H`` real features. Each kind may add an input term ``B x_t`` (``additive=True`` at
initialization; off by default). Without it the update is linear, not affine, in ``h``:
scaling ``h_0`` scales every ``h_t``, so the state may be renormalized at any step without
changing its direction. ``normalize=True`` does that at every step and returns unit vectors
``h_t / ||h_t||_2``; the unnormalized state is ``exp(sum of the log norms) * h_t``. A purely
multiplicative state grows or decays geometrically (``||h_t|| ~ r^t``), so at ``T = 10^5``
only the normalized form stays finite in float32; with an additive term it is refused.

The state before the first step is a parameter (``initial_state``, learned with the rest);
a multiplicative recurrence started at zero stays at zero.

Forms (``mode``): ``"sequential"`` (one :func:`jax.lax.scan` step per input, ``A(x_t)``
built inside the step: ``O(T H^2 D)`` time and ``O(H^2)`` memory for the full kind) and
``"parallel"`` (the operators of all steps built first and composed by
:func:`jax.lax.associative_scan`: ``O(T b^3 H / b)`` work for ``b x b`` blocks, ``O(T H^3)``
and ``O(T H^2)`` memory for the dense kinds; normalized by a running scale factor so
products of 10^5 operators stay finite). Both agree in values and gradients.

Gradients over very long sequences: the normalized states are finite at any length, but
their gradient need not be in float32. For the diagonal (and complex-diagonal) kinds, a
channel whose eigenvalues are on average smaller than the dominant channel's decays
geometrically relative to it, while its cotangent grows at the same rate backwards; the
parameter gradient multiplies the two, a moderate number in float64 (on a random diagonal
cell at ``T = 16384``: cotangents to ``3e50``, gradient entries below ``3e3``), but in
float32 the state underflows to 0 and the cotangent overflows, and ``0 * inf`` is NaN. Train
on short sequences, as the state-tracking protocol does, or differentiate long ones in
float64.

Initializations (the paper's are not given in its text; these are documented choices): every
``A(e_k)`` for a one-hot input starts as a random matrix with spectral radius about 1
(entries ``N(0, 1/H)`` for the full kind, each factor scaled so the product is),
rotation angles ``U(-pi, pi)``, diagonal entries ``U(-1, 1)``, complex eigenvalues uniform
in the unit disc, ``B`` as ``U(+-1/sqrt(D))``, and ``initial_state`` a random unit vector.
"""

# ruff: noqa: F722  (jaxtyping shape strings such as "H D" are not forward references)

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from switchssm import _validation as V
from switchssm import scan
from switchssm.rnn import _common as C
from switchssm.rnn.bilinear_params import RotationParams
from switchssm.rnn.bilinear_params import kind_of
from switchssm.types import Array
from switchssm.types import Float

__all__ = [
    "bilinear",
    "bilinear_step",
    "transition_matrices",
]

# ---------------------------------------------------------------------------
# the operators: one step (sequential form) and all steps as blocks (parallel form)
# ---------------------------------------------------------------------------


def _pairs(h):
    return h.reshape(*h.shape[:-1], h.shape[-1] // 2, 2)


def _rotate(re, im, h):
    """Multiply each pair ``(h_{2n}, h_{2n+1})`` by the complex number ``re + i im``."""
    p = _pairs(h)
    a, b = p[..., 0], p[..., 1]
    return jnp.stack([re * a - im * b, im * a + re * b], axis=-1).reshape(h.shape)


def _rotation_coefficients(params: RotationParams, x):
    theta = x @ params.angle_weight.T
    r = 1.0 if params.scale is None else jnp.exp(x @ params.scale.weight.T)
    return r * jnp.cos(theta), r * jnp.sin(theta)


def _apply(kind: str, params, x, h):
    """``A(x) h`` for inputs ``x (..., D)`` and states ``h (..., H)``."""
    if kind == "bilinear":
        return jnp.einsum("ijk,...k,...j->...i", params.weight, x, h)
    if kind == "cp":
        return ((x @ params.input_factor) * (h @ params.right)) @ params.left.T
    if kind == "block":
        n, b = params.weight.shape[:2]
        blocks = jnp.einsum("nabk,...k->...nab", params.weight, x)
        hb = h.reshape(*h.shape[:-1], n, b)
        return jnp.einsum("...nab,...nb->...na", blocks, hb).reshape(h.shape)
    if kind == "rotation":
        return _rotate(*_rotation_coefficients(params, x), h)
    if kind == "complex":
        return _rotate(x @ params.real_weight.T, x @ params.imag_weight.T, h)
    return (x @ params.weight.T) * h  # diagonal


def _blocks(kind: str, params, x):
    """``A(x)`` as blocks ``(..., num_blocks, b, b)`` (one ``H x H`` block for the dense kinds)."""
    if kind == "bilinear":
        return jnp.einsum("ijk,...k->...ij", params.weight, x)[..., None, :, :]
    if kind == "cp":
        v = x @ params.input_factor
        return jnp.einsum("ir,...r,jr->...ij", params.left, v, params.right)[..., None, :, :]
    if kind == "block":
        return jnp.einsum("nabk,...k->...nab", params.weight, x)
    if kind in ("rotation", "complex"):
        if kind == "rotation":
            re, im = _rotation_coefficients(params, x)
        else:
            re, im = x @ params.real_weight.T, x @ params.imag_weight.T
        return jnp.stack([jnp.stack([re, -im], -1), jnp.stack([im, re], -1)], -2)
    return (x @ params.weight.T)[..., None, None]  # diagonal: 1 x 1 blocks


def _block_diag(blocks):
    """``(..., n, b, b)`` blocks -> the ``(..., n b, n b)`` block-diagonal matrix."""
    n, b = blocks.shape[-3], blocks.shape[-1]
    eye = jnp.eye(n, dtype=blocks.dtype)
    dense = jnp.einsum("...nab,nm->...namb", blocks, eye)
    return dense.reshape(*blocks.shape[:-3], n * b, n * b)


def _input_term(params, x):
    return None if params.additive is None else x @ params.additive.weight.T


def _unit(h):
    """``h / ||h||``; a zero state (the padding of a batch: ``A(0) = 0``) stays zero, with a
    zero gradient rather than NaN (the square root is never taken at 0)."""
    sq = jnp.sum(h * h, axis=-1, keepdims=True)
    return h * lax.rsqrt(jnp.where(sq > 0, sq, 1.0))


# ---------------------------------------------------------------------------
# the recurrences
# ---------------------------------------------------------------------------


def _sequential(kind, params, x, h0, normalize):
    xs = jnp.moveaxis(x, -2, 0)
    additive = params.additive is not None

    def step(h, x_t):
        h = _apply(kind, params, x_t, h)
        if additive:
            h = h + _input_term(params, x_t)
        if normalize:
            h = _unit(h)
        return h, h

    _, hs = lax.scan(step, _unit(h0) if normalize else h0, xs)
    return jnp.moveaxis(hs, 0, -2)


def _max_abs(a):
    s = jnp.max(jnp.abs(a), axis=(-3, -2, -1), keepdims=True)
    return jnp.where(s > 0, s, 1.0)


def _parallel_normalized(blocks, h0):
    """Directions of ``A_t ... A_1 h0`` by an associative scan of scale-free products.

    Every partial product is divided by its largest entry (a positive scalar, so the
    direction of the state is unchanged), which keeps products of any length finite. The
    scale factors carry no gradient, exactly: the returned unit vectors do not depend on them,
    so the backward pass skips their quotient-rule terms.
    """
    t_axis = blocks.ndim - 4
    blocks = blocks / lax.stop_gradient(_max_abs(blocks))

    def compose(first, second):  # second after first
        prod = jnp.einsum("...nab,...nbc->...nac", second, first)
        return prod / lax.stop_gradient(_max_abs(prod))

    prods = lax.associative_scan(compose, blocks, axis=t_axis)
    n, b = blocks.shape[-3], blocks.shape[-1]
    hb = h0.reshape(*h0.shape[:-1], n, b)
    hb = jnp.expand_dims(hb, t_axis)
    h = jnp.einsum("...nab,...nb->...na", prods, hb)
    return _unit(h.reshape(*h.shape[:-2], n * b))


def _parallel_affine(blocks, b_add, h0):
    """``h_t = A_t h_{t-1} + b_t`` with block transitions, by :func:`switchssm.scan.dense_scan`
    (the block index becomes a batch axis)."""
    *batch, T, n, b, _ = blocks.shape
    a = jnp.moveaxis(blocks, -3, -4)  # (..., n, T, b, b)
    if b_add is None:
        b_add = jnp.zeros((*batch, T, n * b), blocks.dtype)
    bb = jnp.moveaxis(b_add.reshape(*batch, T, n, b), -2, -3)  # (..., n, T, b)
    hb = jnp.broadcast_to(h0, (*batch, n * b)).reshape(*batch, n, b)
    h = scan.dense_scan(a, bb, hb, mode="parallel")  # (..., n, T, b)
    return jnp.moveaxis(h, -3, -2).reshape(*batch, T, n * b)


@functools.partial(jax.jit, static_argnames=("kind", "mode", "normalize"))
def _run(kind, params, x, h0, mode, normalize):
    if mode == "sequential":
        return _sequential(kind, params, x, h0, normalize)
    blocks = _blocks(kind, params, x)
    if normalize:
        return _parallel_normalized(blocks, h0)
    return _parallel_affine(blocks, _input_term(params, x), h0)


def bilinear(
    params: Any,
    x: Float[Array, "*B T D"],
    h0: Float[Array, "*B H"] | None = None,
    *,
    mode: str | None = None,
    normalize: bool = False,
) -> Float[Array, "*B T H"]:
    r"""Run a bilinear cell of any kind (module docstring) over a sequence.

    .. math:: h_t = A(x_t)\, h_{t-1}\ (+\ B x_t), \qquad
              \hat h_t = h_t / \lVert h_t \rVert_2 \ \text{if normalize}.

    Args:
        params: :class:`BilinearParams`, :class:`CPBilinearParams`,
            :class:`BlockBilinearParams`, :class:`RotationParams`,
            :class:`ComplexDiagonalParams` or :class:`DiagonalBilinearParams`.
        x: ``(T, D_in)`` or ``(B, T, D_in)`` inputs (one-hot symbols for state tracking).
        h0: ``(H,)`` or ``(B, H)`` state before the first step; default
            ``params.initial_state``.
        mode: ``"sequential"``, ``"parallel"`` or ``None`` (backend default).
        normalize: return unit vectors ``h_t / ||h_t||`` (renormalized at every step, so
            they stay finite at any ``T``); only without an additive term, where the
            direction of ``h_t`` does not depend on the scale of ``h_{t-1}``.

    Returns:
        ``(T, H)`` or ``(B, T, H)``: the state after each step (unit vectors if
        ``normalize``).

    Raises:
        ValueError: naming the argument that is malformed, or ``normalize=True`` with an
            additive term.

    Example:
        >>> from switchssm.rnn import init_bilinear
        >>> params = init_bilinear(jax.random.PRNGKey(0), 3, 4)
        >>> x = jax.nn.one_hot(jnp.array([0, 2, 1, 1]), 3)
        >>> h_seq = bilinear(params, x, mode="sequential", normalize=True)
        >>> h_par = bilinear(params, x, mode="parallel", normalize=True)
        >>> bool(jnp.allclose(h_seq, h_par, atol=1e-5)), h_seq.shape
        (True, (4, 4))
    """
    kind = kind_of(params)
    C.check_params(params, type(params))
    C.check_inputs(x, params.input_dim)
    mode = scan.resolve_mode(mode)
    normalize = V.check_bool(normalize, "normalize")
    if normalize and params.additive is not None:
        raise ValueError(
            "`normalize=True` needs a cell without an additive term: with `+ B x_t` the "
            "update is affine in h and its direction depends on the scale of h"
        )
    x = C.as_input(x)
    C.check_state(h0, "h0", params.hidden_dim, x.shape)
    h0 = C.initial_state(
        params.initial_state if h0 is None else h0, x, params.initial_state[:, None]
    )
    if normalize and V.is_concrete(h0) and not np.all(np.any(np.asarray(h0) != 0, axis=-1)):
        raise ValueError(
            "`h0` must be nonzero for `normalize=True` (a zero state has no direction)"
        )
    return _run(kind, params, x, h0, mode, normalize)


def bilinear_step(params: Any, h_prev: Float[Array, "... H"], x_t: Float[Array, "... D"]):
    """One step ``h_t = A(x_t) h_{t-1} (+ B x_t)`` of any bilinear kind (no normalization).

    Args:
        params: a bilinear parameter class (see :func:`bilinear`).
        h_prev: ``(..., H)`` previous state.
        x_t: ``(..., D_in)`` input.

    Returns:
        ``h_t``, ``(..., H)``.

    Example:
        >>> from switchssm.rnn import init_diagonal_bilinear
        >>> params = init_diagonal_bilinear(jax.random.PRNGKey(0), 2, 3)
        >>> h = bilinear_step(params, jnp.ones(3), jnp.array([1.0, 0.0]))
        >>> bool(jnp.allclose(h, params.weight[:, 0]))
        True
    """
    kind = kind_of(params)
    h = _apply(kind, params, x_t, h_prev)
    return h if params.additive is None else h + _input_term(params, x_t)


def transition_matrices(params: Any, x: Float[Array, "... D"]) -> Float[Array, "... H H"]:
    """The dense operators ``A(x)`` (``(..., H, H)``) of any bilinear kind.

    Args:
        params: a bilinear parameter class (see :func:`bilinear`).
        x: ``(..., D_in)`` inputs.

    Returns:
        ``(..., H, H)`` matrices: ``A(x) h`` is one step of the cell without its additive
        term.

    Example:
        >>> from switchssm.rnn import init_rotation
        >>> params = init_rotation(jax.random.PRNGKey(0), 2, 4)
        >>> A = transition_matrices(params, jnp.eye(2))
        >>> bool(jnp.allclose(A[0] @ A[0].T, jnp.eye(4), atol=1e-6))  # rotations
        True
    """
    kind = kind_of(params)
    C.check_params(params, type(params))
    x = C.as_input(x)
    if x.shape[-1] != params.input_dim:
        raise ValueError(
            f"`x` must have last dimension input_dim = {params.input_dim}, got {x.shape}"
        )
    return _block_diag(_blocks(kind, params, x))
