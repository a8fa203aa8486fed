"""Input checks run at the public API boundary, before any jit.

Every check raises :class:`ValueError` naming the argument and what was expected.
Checks are skipped for abstract values (tracers under ``jit``/``grad``/``vmap``),
so validated functions stay usable inside JAX transformations; validate concrete
inputs once at the boundary instead.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

import jax
import jax.numpy as jnp
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


#: The largest condition number ``max eig / min eig`` a covariance may have (relative, so a
#: covariance's scale never matters: ``1e-12 * I`` is as good as ``I``). Beyond it float64
#: Cholesky factors and log-determinants lose most of their digits.
MAX_CONDITION = 1e12


def check_covariance(S, name: str, dim: int | None = None) -> None:
    """Symmetric positive definite matrix (shape ``(dim, dim)`` if given) whose condition
    number is at most :data:`MAX_CONDITION` (a relative test: any positive scale passes)."""
    if not is_concrete(S):
        return
    a = np.asarray(S, dtype=np.float64)
    check_ndim(a, name, 2, "(a covariance matrix)")
    if a.shape[0] != a.shape[1] or (dim is not None and a.shape[0] != dim):
        d = dim if dim is not None else "D"
        raise ValueError(f"`{name}` must be a ({d}, {d}) covariance matrix, got shape {a.shape}")
    check_finite(a, name)
    if not np.allclose(a, a.T, rtol=0, atol=1e-8 * np.abs(a).max()):  # relative too
        raise ValueError(f"`{name}` must be symmetric")
    eig = np.linalg.eigvalsh(a)
    if eig.min() <= 0 or eig.max() > MAX_CONDITION * eig.min():
        cond = "" if eig.min() <= 0 else f", condition number {eig.max() / eig.min():.3g}"
        raise ValueError(
            f"`{name}` must be positive definite with condition number at most "
            f"{MAX_CONDITION:.0e} (eigenvalues in [{eig.min():.3g}, {eig.max():.3g}]{cond}); "
            "it is singular, nearly singular or has negative variance"
        )


def check_length(T: int, name: str) -> None:
    if T < 1:
        raise ValueError(f"`{name}` is empty: a sequence needs at least one time step")


def check_int_range(x, name: str, low: int, high: int, hint: str = "") -> None:
    """Integer-valued entries in ``[low, high)`` (``hint`` says where ``high`` comes from)."""
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
            f"`{name}` must hold symbols in [{low}, {high - 1}]{' (' + hint + ')' if hint else ''}"
            f", found range [{a.min()}, {a.max()}]"
        )


# --------------------------------------------------------------------------------------
# Python scalars (options): one checker per kind, used by every public entry point.


def check_int(value, name: str, *, low: int | None = 1, high: int | None = None) -> int:
    """A Python or NumPy integer (never a bool) in ``[low, high]``; returns an ``int``.

    Integral floats are refused: an option such as ``num_steps=2.5`` is a mistake, not a
    request. NumPy integer scalars (``np.int64(2)``) are accepted.
    """
    if high is not None:
        want = "an integer" + ("" if low is None else f" in [{low}, {high}]")
        want = want if low is not None else f"an integer <= {high}"
    else:
        want = {None: "an integer", 0: "a nonnegative integer", 1: "a positive integer"}.get(
            low, f"an integer >= {low}"
        )
    if isinstance(value, bool | np.bool_):
        raise ValueError(f"`{name}` must be {want}, got the bool {value!r}")
    try:
        n = operator.index(value)
    except TypeError:
        raise ValueError(f"`{name}` must be {want}, got {value!r}") from None
    if (low is not None and n < low) or (high is not None and n > high):
        raise ValueError(f"`{name}` must be {want}, got {n}")
    return int(n)


def check_float(
    value,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite real number (never a bool or a string) in the given interval; a ``float``.

    ``low_open``/``high_open`` exclude the end points, e.g. ``low=0, low_open=True`` for a
    strictly positive step size.
    """
    if isinstance(value, bool | np.bool_) or not isinstance(
        value, int | float | np.integer | np.floating
    ):
        if not (isinstance(value, np.ndarray | jax.Array) and np.ndim(value) == 0):
            raise ValueError(f"`{name}` must be a real number, got {value!r}")
        if np.asarray(value).dtype.kind not in "iuf":
            raise ValueError(f"`{name}` must be a real number, got {value!r}")
    v = float(value)
    bad = not math.isfinite(v)
    bad |= low is not None and (v <= low if low_open else v < low)
    bad |= high is not None and (v >= high if high_open else v > high)
    if bad:
        lb = "" if low is None else (f" > {low:g}" if low_open else f" >= {low:g}")
        hb = "" if high is None else (f" < {high:g}" if high_open else f" <= {high:g}")
        both = " and" if lb and hb else ""
        raise ValueError(f"`{name}` must be a finite number{lb}{both}{hb}, got {value!r}")
    return v


def check_bool(value, name: str) -> bool:
    """A Python or NumPy bool (``"no"``, ``1`` and ``None`` are refused); returns a ``bool``."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"`{name}` must be True or False, got {value!r}")
    return bool(value)


def check_choice(value, name: str, choices: Sequence):
    """``value`` is one of ``choices`` (compared with ``==``, strings only match strings)."""
    for c in choices:
        if type(value) is type(c) and value == c:
            return value
    raise ValueError(f"`{name}` must be one of {tuple(choices)}, got {value!r}")


# --------------------------------------------------------------------------------------
# Arrays held by parameter classes.


def as_float(x, name: str, *, promote: bool = True):
    """A real floating-point array for a parameter field, or a clear error.

    Tracers pass through (non-float tracers are cast). Concrete values must hold real
    numbers: bools, complex numbers, strings, objects and 16-bit floats are refused
    naming ``name``; non-native byte order (a big-endian file) is converted; integers
    become the default float.

    Args:
        x: array-like.
        name: the argument's name in error messages (``"emission.probs"``).
        promote: ``True``: a JAX array of the default float dtype (float64 with
            ``jax_enable_x64``, else float32), except JAX float arrays, which pass
            unchanged. ``False``: float32/float64 keep their dtype (NumPy stays NumPy).
    """
    if isinstance(x, jax.core.Tracer):
        return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.result_type(float))
    if isinstance(x, jax.Array):
        kind = np.dtype(x.dtype).kind if x.dtype != jnp.bfloat16 else "V"
        if kind == "f" and x.dtype.itemsize >= 4:
            return x
        a = x
    else:
        try:
            a = np.asarray(x)
        except Exception:
            raise ValueError(f"`{name}` must be an array of real numbers, got {x!r}") from None
    dt = np.dtype(a.dtype) if not isinstance(a, jax.Array) else a.dtype
    kind = "V" if dt == jnp.bfloat16 else np.dtype(dt).kind
    if kind == "b":
        raise ValueError(f"`{name}` must hold real numbers, got a bool array")
    if kind == "c":
        raise ValueError(f"`{name}` must hold real numbers, got complex dtype {dt}")
    if kind not in "iuf":
        raise ValueError(f"`{name}` must hold real numbers, got dtype {dt}")
    if kind == "f" and np.dtype(dt).itemsize < 4:
        raise ValueError(
            f"`{name}` has dtype {dt}: 16-bit floats are not supported, use float32 or float64"
        )
    a = np.asarray(a)
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    if a.dtype.kind != "f":
        a = a.astype(np.float64)
    if promote:
        return jnp.asarray(a, dtype=jnp.result_type(float))
    return a


def as_key(key, name: str = "key"):
    """A ``jax.random`` PRNG key from a key or an integer seed (``0`` -> ``PRNGKey(0)``).

    Raises ``ValueError`` naming ``name`` for anything else (``None`` included).
    """
    if isinstance(key, int | np.integer) and not isinstance(key, bool | np.bool_):
        if key < 0:
            raise ValueError(f"`{name}` as an integer seed must be >= 0, got {key}")
        return jax.random.PRNGKey(int(key))
    if key is None:
        raise ValueError(f"`{name}` is required: a jax.random key or an integer seed")
    try:
        jax.random.split(key)
    except Exception:
        raise ValueError(
            f"`{name}` must be a jax.random key (jax.random.PRNGKey(0)) or an integer seed, "
            f"got {key!r}"
        ) from None
    return key


def check_nonnegative(x, name: str, what: str = "", *, scalar: bool = False) -> None:
    """Finite entries ``>= 0`` (one scalar if ``scalar``); ``what`` says what they are."""
    if scalar:
        check_ndim(x, name, 0, f"(a scalar{' ' + what if what else ''})")
    a = np.asarray(x, dtype=np.float64)
    check_finite(a, name)
    if np.any(a < 0):
        raise ValueError(f"`{name}` must be nonnegative{' ' + what if what else ''}, got {x!r}")


def check_one_precision(params, where: str = "") -> None:
    """Every float array of a parameter pytree in one dtype: a float32 field among float64
    ones reaches the scans with mismatched carries (a ``TypeError`` deep inside ``lax.scan``).

    Raises ``ValueError`` naming one field of each dtype.
    """
    first = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        dt = np.dtype(getattr(leaf, "dtype", np.float64))
        if dt.kind == "f":
            first.setdefault(str(dt), where + jax.tree_util.keystr(path).lstrip("."))
    if len(first) > 1:
        found = ", ".join(f"`{name}` is {dt}" for dt, name in first.items())
        raise ValueError(
            f"the parameters mix float precisions ({found}): build every array in one dtype "
            "(float64 with jax_enable_x64, else float32)"
        )
