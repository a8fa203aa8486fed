"""Input checks run at the public API boundary, before any jit.

Every check raises :class:`ValueError` naming the argument and what was expected.
Checks are skipped for abstract values (tracers under ``jit``/``grad``/``vmap``),
so validated functions stay usable inside JAX transformations; validate concrete
inputs once at the boundary instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np


def is_concrete(x) -> bool:
    """True when ``x`` holds values we can inspect (not a JAX tracer)."""
    return not isinstance(x, jax.core.Tracer)


def all_concrete(*xs) -> bool:
    leaves = jax.tree_util.tree_leaves(xs)
    return all(is_concrete(x) for x in leaves)


def as_numpy(x, name: str) -> np.ndarray:
    try:
        return np.asarray(x)
    except Exception as exc:  # pragma: no cover - defensive
        raise ValueError(f"`{name}` must be array-like, got {type(x).__name__}") from exc


def check_ndim(x, name: str, ndims: int | Sequence[int], what: str = "") -> None:
    ndims = (ndims,) if isinstance(ndims, int) else tuple(ndims)
    if np.ndim(x) not in ndims:
        exp = " or ".join(str(n) for n in ndims)
        raise ValueError(
            f"`{name}` must have {exp} dimension(s){' ' + what if what else ''}, "
            f"got shape {tuple(np.shape(x))}"
        )


def check_shape(x, name: str, shape: tuple, what: str = "") -> None:
    got = tuple(np.shape(x))
    ok = len(got) == len(shape) and all(
        s is None or s == g for s, g in zip(shape, got, strict=True)
    )
    if not ok:
        exp = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"`{name}` must have shape {exp}{' ' + what if what else ''}, got {got}")


def check_finite(x, name: str) -> None:
    if not is_concrete(x):
        return
    a = np.asarray(x)
    if a.dtype.kind in "fc" and not np.all(np.isfinite(a)):
        bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
        raise ValueError(
            f"`{name}` contains {bad} NaN or infinite value(s); switchssm does not treat NaN as "
            "missing data: drop or impute missing steps (or split the sequence) first"
        )


def check_probability_vector(p, name: str, axis: int = -1, atol: float = 1e-6) -> None:
    """Nonnegative entries that sum to one along ``axis``."""
    if not is_concrete(p):
        return
    a = np.asarray(p, dtype=np.float64)
    check_finite(a, name)
    if np.any(a < 0):
        raise ValueError(f"`{name}` must be nonnegative probabilities, found min {a.min():.3g}")
    sums = a.sum(axis=axis)
    if not np.allclose(sums, 1.0, atol=atol, rtol=0):
        worst = float(np.max(np.abs(sums - 1.0)))
        raise ValueError(f"`{name}` must sum to 1 along axis {axis}, off by up to {worst:.3g}")


def check_unit_interval(x, name: str, open_left=False, open_right=False) -> None:
    if not is_concrete(x):
        return
    a = np.asarray(x, dtype=np.float64)
    check_finite(a, name)
    lo_bad = np.any(a <= 0) if open_left else np.any(a < 0)
    hi_bad = np.any(a >= 1) if open_right else np.any(a > 1)
    if lo_bad or hi_bad:
        lb = "(0" if open_left else "[0"
        rb = "1)" if open_right else "1]"
        raise ValueError(f"`{name}` must lie in {lb}, {rb}, got {a.tolist() if a.size < 8 else a}")


def check_positive(x, name: str) -> None:
    if not is_concrete(x):
        return
    a = np.asarray(x, dtype=np.float64)
    check_finite(a, name)
    if np.any(a <= 0):
        raise ValueError(f"`{name}` must be strictly positive, found min {a.min():.3g}")


def check_covariance(S, name: str, dim: int | None = None) -> None:
    """Symmetric positive definite matrix (shape ``(dim, dim)`` if given)."""
    if not is_concrete(S):
        return
    a = np.asarray(S, dtype=np.float64)
    check_ndim(a, name, 2, "(a covariance matrix)")
    if a.shape[0] != a.shape[1] or (dim is not None and a.shape[0] != dim):
        d = dim if dim is not None else "D"
        raise ValueError(f"`{name}` must be a ({d}, {d}) covariance matrix, got shape {a.shape}")
    check_finite(a, name)
    if not np.allclose(a, a.T, atol=1e-8 * max(1.0, np.abs(a).max())):
        raise ValueError(f"`{name}` must be symmetric")
    eig = np.linalg.eigvalsh(a)
    if eig.min() <= 1e-12 * max(1.0, eig.max()):
        raise ValueError(
            f"`{name}` must be positive definite (smallest eigenvalue {eig.min():.3g}); "
            "it is singular or has negative variance"
        )


def check_length(T: int, name: str) -> None:
    if T < 1:
        raise ValueError(f"`{name}` is empty: a sequence needs at least one time step")


def check_int_range(x, name: str, low: int, high: int) -> None:
    """Integer-valued entries in ``[low, high)``."""
    if not is_concrete(x):
        return
    a = np.asarray(x)
    if a.dtype.kind == "f":
        check_finite(a, name)
        if not np.all(a == np.round(a)):
            raise ValueError(f"`{name}` must hold integer symbols, found non-integer values")
    elif a.dtype.kind not in "iub":
        raise ValueError(f"`{name}` must hold integer symbols, got dtype {a.dtype}")
    if a.size and (a.min() < low or a.max() >= high):
        raise ValueError(
            f"`{name}` must hold symbols in [{low}, {high - 1}], found range [{a.min()}, {a.max()}]"
        )
