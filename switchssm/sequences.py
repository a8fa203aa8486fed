r"""One container for many sequences of different lengths: :class:`Sequences`.

Every part of the package that takes several sequences (EM, MLE, NUTS/SVI, sharding, cell
training, comparison, the command line) takes them in one of three layouts and turns them
into a :class:`Sequences` with :func:`as_sequences`:

- one sequence: an array ``(T, *step_shape)`` (a batch of one);
- a list (or tuple) of sequences of any lengths, ``[(T_1, *step_shape), ...]``;
- a padded array ``(N, T_max, *step_shape)`` with ``lengths`` (``(N,)`` integers in
  ``[1, T_max]``; all ``T_max`` if omitted); values past a sequence's length are ignored,
  whatever they are (NaN and out-of-range symbols included).

:class:`Sequences` holds the values padded at the end to the longest sequence, with zeros
at padded steps (valid symbols, finite numbers: a padded step can never produce NaN), the
optional cue in the same layout, the lengths and the mask of real steps. Computations on
the batch ``vmap`` over its rows and mask per-step terms with :attr:`Sequences.mask`;
:meth:`Sequences.unpad` cuts any per-step result back into one array per sequence, and
:func:`pad` does the inverse for per-sequence results.

The values are validated at the real steps only: finite reals, or integer symbols in
``[0, num_symbols)``. Shape problems and bad values raise :class:`ValueError` naming the
argument (``y``, ``y[2]``, ``lengths``), before any jit.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from switchssm import _validation as V
from switchssm.types import Array
from switchssm.types import Bool
from switchssm.types import Int

__all__ = ["Sequences", "as_sequences", "pad"]

_KINDS = ("real", "integer")


class Sequences(NamedTuple):
    """Sequences padded at the end to a common length, with a mask of the real steps.

    Attributes:
        values: ``(N, T_max, *step_shape)``: int32 symbols or floats; 0 at padded steps.
        cue: ``(N, T_max)`` or ``(N, T_max, Du)`` floats (0 at padded steps), or ``None``.
        lengths: ``(N,)`` number of real steps of each sequence (0 only for the filler rows
            of a sharded batch, see :func:`switchssm.fit.shard_sequences`).
        mask: ``(N, T_max)``, ``True`` at real steps.

    Example:
        >>> import numpy as np
        >>> data = as_sequences([np.array([0, 1, 1]), np.array([2, 0])], kind="integer")
        >>> data.values.tolist(), data.lengths.tolist(), data.num_timesteps
        ([[0, 1, 1], [2, 0, 0]], [3, 2], 5)
        >>> [s.tolist() for s in data.unpad(data.values)]
        [[0, 1, 1], [2, 0]]
    """

    values: Array
    cue: Array | None
    lengths: Int[Array, " N"]
    mask: Bool[Array, "N T"]

    @property
    def num_sequences(self) -> int:
        """``N`` (filler rows of a sharded batch included)."""
        return int(self.mask.shape[0])

    @property
    def max_length(self) -> int:
        """``T_max``, the padded length."""
        return int(self.mask.shape[1])

    @property
    def num_timesteps(self) -> int:
        """Total number of real steps over all sequences."""
        return int(np.sum(np.asarray(self.lengths)))

    def unpad(self, x) -> list[np.ndarray]:
        """Cut an ``(N, T_max, ...)`` array aligned with this batch into one array per
        sequence (``x[n, :lengths[n]]``, NumPy).

        Args:
            x: any per-step array of the batch (values, filter outputs, hidden states).

        Returns:
            A list of ``N`` NumPy arrays.
        """
        a = np.asarray(x)
        if a.shape[:2] != self.mask.shape:
            raise ValueError(
                f"`x` must start with the batch's shape (N, T_max) = {tuple(self.mask.shape)}, "
                f"got {a.shape}"
            )
        return [a[n, :L] for n, L in enumerate(np.asarray(self.lengths).tolist())]

    def split(self) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        """The values and the cue as lists of per-sequence NumPy arrays (cue ``None`` if
        absent)."""
        return self.unpad(self.values), None if self.cue is None else self.unpad(self.cue)


def pad(arrays, *, dtype=None, fill=0) -> np.ndarray:
    """Stack per-sequence arrays ``[(T_n, ...)]`` into ``(N, T_max, ...)``, padding the end.

    Args:
        arrays: a non-empty list of arrays whose trailing shapes agree.
        dtype: of the result (default: the arrays' common dtype).
        fill: the value of padded entries.

    Returns:
        A NumPy array.

    Example:
        >>> pad([np.array([1, 2]), np.array([3])]).tolist()
        [[1, 2], [3, 0]]
    """
    arrays = [np.asarray(a) for a in arrays]
    if not arrays:
        raise ValueError("`arrays` is empty: give at least one sequence")
    tail = arrays[0].shape[1:]
    for i, a in enumerate(arrays):
        if a.ndim < 1 or a.shape[1:] != tail:
            raise ValueError(
                f"`arrays[{i}]` has shape {a.shape}; every array must be (T_n, *{tail})"
            )
    dtype = np.result_type(*arrays) if dtype is None else dtype
    T = max(a.shape[0] for a in arrays)
    out = np.full((len(arrays), T, *tail), fill, dtype=dtype)
    for i, a in enumerate(arrays):
        out[i, : a.shape[0]] = a
    return out


def _check_lengths(lengths, num_sequences: int, max_len: int) -> np.ndarray:
    a = np.asarray(lengths)
    if a.ndim == 0:
        a = a.reshape(1)
    if a.ndim != 1 or a.shape[0] != num_sequences:
        raise ValueError(
            f"`lengths` must have shape ({num_sequences},), one length per sequence, "
            f"got shape {np.shape(lengths)}"
        )
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
            raise ValueError("`lengths` must hold integers")
    elif a.dtype.kind not in "iu":
        raise ValueError(f"`lengths` must hold integers, got dtype {a.dtype}")
    a = a.astype(np.int64)
    if np.any(a < 1):
        raise ValueError(
            f"`lengths` must be >= 1 (a sequence needs at least one step), found {a.min()}"
        )
    if np.any(a > max_len):
        raise ValueError(f"`lengths` must be <= the padded length {max_len}, found {a.max()}")
    return a


def _real_array(x, name: str) -> np.ndarray:
    try:
        a = np.asarray(x)
    except Exception:
        raise ValueError(f"`{name}` must be an array of numbers, got {type(x).__name__}") from None
    if a.dtype.kind not in "biuf":
        raise ValueError(f"`{name}` must hold real numbers, got dtype {a.dtype}")
    return a


def _split(x, name: str, step_ndim: int | None, lengths, allow_single: bool):
    """``(list of per-sequence arrays, lengths, batched)`` from any of the three layouts."""
    if isinstance(x, list | tuple):
        if len(x) == 0:
            raise ValueError(f"`{name}` is an empty list: give at least one sequence")
        seqs = [_real_array(a, f"{name}[{i}]") for i, a in enumerate(x)]
        if step_ndim is None:
            ndims = {a.ndim for a in seqs}
            if len(ndims) != 1 or not ndims <= {1, 2}:
                raise ValueError(
                    f"`{name}` must be a list of (T_i,) or (T_i, D) arrays, all of one rank, "
                    f"got shapes {sorted({a.shape for a in seqs})}"
                )
            step_ndim = seqs[0].ndim - 1
        for i, a in enumerate(seqs):
            if a.ndim != step_ndim + 1:
                raise ValueError(
                    f"`{name}[{i}]` must have {step_ndim + 1} dimension(s) (one sequence), "
                    f"got shape {a.shape}"
                )
            V.check_length(a.shape[0], f"{name}[{i}]")
            if a.shape[1:] != seqs[0].shape[1:]:
                raise ValueError(
                    f"`{name}[{i}]` has per-step shape {a.shape[1:]} but `{name}[0]` has "
                    f"{seqs[0].shape[1:]}"
                )
        actual = np.array([a.shape[0] for a in seqs])
        if lengths is not None:
            lens = _check_lengths(lengths, len(seqs), int(actual.max()))
            if not np.array_equal(lens, actual):
                raise ValueError(
                    f"`lengths` {lens.tolist()} disagree with the lengths of the sequences in "
                    f"`{name}` {actual.tolist()} (a list gives each length: leave `lengths` out)"
                )
        return seqs, actual, True
    a = _real_array(x, name)
    if step_ndim is None:
        if allow_single:
            raise ValueError(f"`{name}`: the per-step rank is ambiguous for an array input")
        step_ndim = a.ndim - 2
        if step_ndim not in (0, 1):
            raise ValueError(
                f"`{name}` must be a padded array (N, T) or (N, T, D), or a list of sequences, "
                f"got shape {a.shape}"
            )
    if a.ndim == step_ndim + 2:
        N, T_max = a.shape[:2]
        if N < 1:
            raise ValueError(f"`{name}` holds no sequence (shape {a.shape})")
        V.check_length(T_max, name)
        lens = np.full(N, T_max) if lengths is None else _check_lengths(lengths, N, T_max)
        return [a[i, : lens[i]] for i in range(N)], lens, True
    if a.ndim == step_ndim + 1 and allow_single:
        V.check_length(a.shape[0], name)
        if lengths is not None:
            lens = _check_lengths(lengths, 1, a.shape[0])
            a = a[: lens[0]]
        return [a], np.array([a.shape[0]]), False
    one = {0: "(T,)", 1: "(T, D)"}.get(step_ndim, f"(T, ...) with {step_ndim} step axes")
    batch = {0: "(N, T_max)", 1: "(N, T_max, D)"}.get(step_ndim, "(N, T_max, ...)")
    layouts = f"one sequence {one}, a list of them, or " if allow_single else "a list of "
    layouts += f"sequences {one}, or " if not allow_single else ""
    raise ValueError(
        f"`{name}` must be {layouts}a padded array {batch} (with `lengths`), got shape {a.shape}"
    )


def _check_values(seqs, names, kind: str, num_symbols: int | None):
    for a, nm in zip(seqs, names, strict=True):
        if kind == "integer":
            if num_symbols is None:
                V.check_int_range(a, nm, 0, np.iinfo(np.int32).max)
            else:
                V.check_int_range(a, nm, 0, num_symbols, f"num_symbols = {num_symbols}")
        else:
            V.check_finite(a, nm)


def as_sequences(
    values,
    cue=None,
    *,
    lengths=None,
    step_ndim: int | None = 0,
    kind: str = "real",
    num_symbols: int | None = None,
    names: tuple[str, str] = ("y", "u"),
    allow_single: bool = True,
) -> Sequences:
    """Validate and pad sequences given in any of the three layouts (module docstring).

    Args:
        values: one sequence, a list of sequences, or a padded array with ``lengths``.
        cue: a second per-step array in the same layout (``(T,)`` or ``(T, Du)`` per
            sequence), or ``None``.
        lengths: ``(N,)`` integers for a padded array (a list gives its own lengths).
        step_ndim: axes per step of ``values``: 0 for scalars (symbols), 1 for vectors, or
            ``None`` to read it off a list or a padded array (not with ``allow_single``).
        kind: ``"real"`` (finite numbers, stored in the default float dtype) or
            ``"integer"`` (symbols ``>= 0``, stored as int32).
        num_symbols: for ``kind="integer"``, symbols must lie in ``[0, num_symbols)``.
        names: the names of ``values`` and ``cue`` in error messages.
        allow_single: accept one unbatched sequence (a batch of one).

    Returns:
        :class:`Sequences` of NumPy arrays (host memory; padded entries are 0). Pass it to
        jitted code as is, or place it on a device once with :func:`jax.device_put`.

    Example:
        >>> import numpy as np
        >>> y = np.array([[0, 1, 2, 9], [3, 9, 9, 9]])  # 9: padding, ignored
        >>> data = as_sequences(y, lengths=[3, 1], kind="integer", num_symbols=4)
        >>> data.values.tolist(), data.mask.tolist()
        ([[0, 1, 2], [3, 0, 0]], [[True, True, True], [True, False, False]])
    """
    V.check_choice(kind, "kind", _KINDS)
    yname, uname = names
    seqs, lens, batched = _split(values, yname, step_ndim, lengths, allow_single)
    labels = [f"{yname}[{i}]" if batched else yname for i in range(len(seqs))]
    _check_values(seqs, labels, kind, num_symbols)
    T_max = int(lens.max())
    fdtype = jnp.result_type(float)
    vdtype = np.int32 if kind == "integer" else fdtype
    v_pad = pad([a.astype(vdtype) for a in seqs], dtype=vdtype)
    mask = np.arange(T_max)[None, :] < lens[:, None]
    c_pad = None
    if cue is not None:
        if isinstance(cue, list | tuple) != isinstance(values, list | tuple):
            raise ValueError(
                f"`{uname}` must be a list exactly when `{yname}` is, with one cue per sequence"
            )
        if isinstance(cue, list | tuple):
            us = [_real_array(a, f"{uname}[{i}]") for i, a in enumerate(cue)]
            if len(us) != len(seqs):
                raise ValueError(f"`{uname}` has {len(us)} sequences but `{yname}` has {len(seqs)}")
        else:
            a = _real_array(cue, uname)
            if batched:
                if a.ndim not in (2, 3) or a.shape[0] != len(seqs) or a.shape[1] < T_max:
                    raise ValueError(
                        f"`{uname}` must be padded like `{yname}`: shape ({len(seqs)}, "
                        f">= {T_max}) or ({len(seqs)}, >= {T_max}, Du), got {a.shape}"
                    )
                us = [a[i, : lens[i]] for i in range(len(seqs))]
            else:
                us = [a]
        for i, (a, T) in enumerate(zip(us, lens, strict=True)):
            nm = f"{uname}[{i}]" if batched else uname
            if a.ndim not in (1, 2) or a.shape[0] != T:
                raise ValueError(
                    f"`{nm}` must have shape ({T},) or ({T}, Du), one cue per step of "
                    f"`{yname}`, got {a.shape}"
                )
            if a.shape[1:] != us[0].shape[1:]:
                raise ValueError(f"`{nm}` has shape {a.shape}, unlike `{uname}[0]` {us[0].shape}")
            V.check_finite(a, nm)
        c_pad = pad([a.astype(fdtype) for a in us], dtype=fdtype)
    return Sequences(v_pad, c_pad, lens.astype(np.int32), mask)
