"""Saving and loading parameters and fits, without pickle.

File format (version 1): one NumPy ``.npz`` archive (``numpy.savez``), read back with
``allow_pickle=False``, so loading a file never runs code. It holds

- ``__switchssm__``: a 0-d unicode array with a JSON header::

      {"format": "switchssm", "version": 1, "kind": "params" | "fit",
       "switchssm_version": "0.1.0", "params": <node>, "fit": {...}}   # "fit" for kind "fit"

- one array per leaf, named by its path in the tree (``params.initial_probs``,
  ``params.emission.probs``, ``fit.history``, ...), with its dtype and shape as saved.

A parameter tree is encoded as nodes::

    {"class": "SwitchingParams", "fields": {"initial_probs": <node>, ..., "gated": <node>}}
    {"array": "params.initial_probs"}      an array leaf
    {"value": false}                       a static field (a JSON scalar, e.g. ``gated``)
    null                                   ``None`` (no cue)

Only the parameter classes of :mod:`switchssm.models` are recognized
(:class:`~switchssm.models.SwitchingParams`, :class:`~switchssm.models.CategoricalEmission`,
:class:`~switchssm.models.GaussianEmission`, :class:`~switchssm.models.GaussianCue`,
:class:`~switchssm.models.GaussianLatentParams`): a file cannot name arbitrary classes.
Loading rebuilds each object through its constructor, so its values are validated, then puts
back the stored arrays unchanged: the round trip is bitwise exact, dtypes included (leaves
come back as JAX arrays; an array whose dtype JAX cannot hold in the current configuration,
such as float64 without ``jax_enable_x64``, comes back as the stored NumPy array).

A fit (:class:`~switchssm.inference.learn.FitResult`) adds ``fit.log_likelihood``,
``fit.history``, ``fit.converged`` and ``fit.restart_log_likelihoods`` as arrays and its
``metadata`` as JSON (JSON types only: tuples come back as lists; no NaN or infinity).

Any problem with a file's content raises :class:`ValueError` naming the file and the
problem; a missing file raises :class:`FileNotFoundError`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import zipfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from switchssm.inference.learn import FitResult
from switchssm.models.gaussian_latent import GaussianLatentParams
from switchssm.models.params import (
    CategoricalEmission,
    GaussianCue,
    GaussianEmission,
    SwitchingParams,
)

__all__ = ["FORMAT_VERSION", "load_fit", "load_params", "save_fit", "save_params"]

FORMAT_VERSION = 1
_HEADER = "__switchssm__"
_CLASSES = {
    cls.__name__: cls
    for cls in (
        SwitchingParams,
        CategoricalEmission,
        GaussianEmission,
        GaussianCue,
        GaussianLatentParams,
    )
}
_FIT_ARRAYS = ("log_likelihood", "history", "converged", "restart_log_likelihoods")


class _FormatError(Exception):
    """A problem with a file's content (re-raised as ValueError naming the file)."""


# --------------------------------------------------------------------------------------
# Encoding


def _encode(obj, prefix: str, arrays: dict, name: str):
    """JSON node for ``obj``; its arrays are added to ``arrays`` under ``prefix``."""
    if obj is None:
        return None
    cls = type(obj)
    if cls.__name__ in _CLASSES and _CLASSES[cls.__name__] is cls:
        static = set(getattr(cls, "_static", ()))
        fields = {}
        for f in dataclasses.fields(cls):
            value = getattr(obj, f.name)
            if f.name in static:
                if not isinstance(value, bool | int | float | str | type(None)):
                    raise ValueError(
                        f"`{name}.{f.name}` is a static field and must be a JSON scalar, "
                        f"got {type(value).__name__}"
                    )
                fields[f.name] = {"value": value}
            else:
                fields[f.name] = _encode(value, f"{prefix}.{f.name}", arrays, f"{name}.{f.name}")
        return {"class": cls.__name__, "fields": fields}
    if isinstance(obj, jax.core.Tracer):
        raise ValueError(f"`{name}` is a JAX tracer: save concrete values, outside jit")
    if isinstance(obj, jax.Array | np.ndarray | np.generic | bool | int | float):
        a = np.asarray(obj)
        if a.dtype.kind not in "biufc":
            raise ValueError(f"`{name}` must be a numeric array, got dtype {a.dtype}")
        arrays[prefix] = a
        return {"array": prefix}
    raise ValueError(
        f"`{name}` must be one of {sorted(_CLASSES)}, an array or None, got {cls.__name__}"
    )


def _write(path, header: dict, arrays: dict) -> None:
    """Write the archive atomically (a temporary file in the same folder, then a rename)."""
    path = Path(path)
    arrays = {_HEADER: np.array(json.dumps(header, allow_nan=False)), **arrays}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _header(kind: str) -> dict:
    import switchssm

    return {
        "format": "switchssm",
        "version": FORMAT_VERSION,
        "kind": kind,
        "switchssm_version": getattr(switchssm, "__version__", None),
    }


def save_params(path: str | os.PathLike, params) -> None:
    """Save a parameter pytree to a ``.npz`` file (format in the module docstring).

    Args:
        path: destination (conventionally ending in ``.npz``; written as given, atomically).
        params: a :class:`~switchssm.models.SwitchingParams` or
            :class:`~switchssm.models.GaussianLatentParams` (or one of their parts).

    Returns:
        None.

    Example:
        >>> import numpy as np, tempfile, os
        >>> from switchssm.models import SwitchingParams, CategoricalEmission
        >>> p = SwitchingParams(np.array([.5, .5]), .1, CategoricalEmission(np.eye(2) * .6 + .2))
        >>> path = os.path.join(tempfile.mkdtemp(), "params.npz")
        >>> save_params(path, p)
        >>> round(float(load_params(path).switch_prob), 6)
        0.1
    """
    if type(params).__name__ not in _CLASSES:
        raise ValueError(f"`params` must be one of {sorted(_CLASSES)}, got {type(params).__name__}")
    arrays: dict = {}
    header = _header("params")
    header["params"] = _encode(params, "params", arrays, "params")
    _check_decodable(header["params"], arrays, "params")
    _write(path, header, arrays)


def save_fit(path: str | os.PathLike, fit: FitResult) -> None:
    """Save a :class:`~switchssm.inference.learn.FitResult` (params, history, metadata).

    Args:
        path: destination (conventionally ending in ``.npz``; written as given, atomically).
        fit: the result of :func:`~switchssm.inference.learn.fit_mle` or
            :func:`~switchssm.inference.learn.fit_em`; ``metadata`` must be JSON-serializable.

    Returns:
        None.

    Example:
        >>> import numpy as np, tempfile, os
        >>> from switchssm.models import SwitchingParams, CategoricalEmission
        >>> from switchssm.inference.learn import FitResult
        >>> p = SwitchingParams(np.array([.5, .5]), .1, CategoricalEmission(np.eye(2) * .6 + .2))
        >>> fit = FitResult(p, -3.0, np.zeros((1, 2)), np.array([True]), np.array([-3.0]), {})
        >>> path = os.path.join(tempfile.mkdtemp(), "fit.npz")
        >>> save_fit(path, fit)
        >>> load_fit(path).log_likelihood
        -3.0
    """
    if not isinstance(fit, FitResult):
        raise ValueError(f"`fit` must be a FitResult, got {type(fit).__name__}")
    arrays: dict = {}
    header = _header("fit")
    header["params"] = _encode(fit.params, "params", arrays, "fit.params")
    _check_decodable(header["params"], arrays, "fit.params")
    body = {}
    for name in _FIT_ARRAYS:
        body[name] = _encode(np.asarray(getattr(fit, name)), f"fit.{name}", arrays, f"fit.{name}")
    try:
        json.dumps(fit.metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`fit.metadata` must be JSON-serializable (no NaN/inf): {exc}") from exc
    if not isinstance(fit.metadata, dict):
        raise ValueError(f"`fit.metadata` must be a dict, got {type(fit.metadata).__name__}")
    body["metadata"] = fit.metadata
    header["fit"] = body
    _write(path, header, arrays)


# --------------------------------------------------------------------------------------
# Decoding


def _as_leaf(a: np.ndarray):
    """A JAX array with exactly ``a``'s dtype and bits, or ``a`` if JAX cannot hold it."""
    if jax.dtypes.canonicalize_dtype(a.dtype) != a.dtype:
        return a
    return jnp.asarray(a)


def _decode(node, arrays: dict, where: str):
    if node is None:
        return None
    if not isinstance(node, dict):
        raise _FormatError(f"`{where}`: expected a node (object or null), got {node!r}")
    if "array" in node:
        key = node["array"]
        if not isinstance(key, str) or key not in arrays:
            raise _FormatError(f"`{where}`: array {key!r} is missing from the archive")
        a = arrays[key]
        if a.dtype.kind not in "biufc":
            raise _FormatError(f"`{where}`: array {key!r} has non-numeric dtype {a.dtype}")
        return a
    if "value" in node:
        return node["value"]
    cls_name = node.get("class")
    if cls_name not in _CLASSES:
        raise _FormatError(f"`{where}`: unknown class {cls_name!r} (known: {sorted(_CLASSES)})")
    cls = _CLASSES[cls_name]
    fields = node.get("fields")
    names = [f.name for f in dataclasses.fields(cls)]
    if not isinstance(fields, dict) or set(fields) != set(names):
        got = sorted(fields) if isinstance(fields, dict) else fields
        raise _FormatError(f"`{where}`: {cls_name} needs fields {names}, the file has {got}")
    values = {n: _decode(fields[n], arrays, f"{where}.{n}") for n in names}
    static = set(getattr(cls, "_static", ()))
    for n in static:
        if not isinstance(values[n], bool | int | float | str | type(None)):
            raise _FormatError(f"`{where}.{n}`: a static field must be a JSON scalar")
    try:
        obj = cls(**values)
    except (ValueError, TypeError) as exc:
        raise _FormatError(f"`{where}`: invalid {cls_name}: {exc}") from exc
    for n in names:  # the stored arrays themselves, not the constructor's conversions
        if n not in static and isinstance(values[n], np.ndarray):
            object.__setattr__(obj, n, _as_leaf(values[n]))
    return obj


def _check_decodable(node, arrays, name):
    try:
        _decode(node, arrays, name)
    except _FormatError as exc:
        raise ValueError(f"`{name}` cannot be saved: {exc}") from exc


def _read(path, kind: str):
    """``(header, arrays)`` of a switchssm archive, or ValueError naming the file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not a switchssm .npz file")
    try:
        # Open the file here: np.load leaks its own handle when the archive is corrupt.
        with open(path, "rb") as fh:
            z = np.load(fh, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ValueError(f"{path}: not a switchssm file (a plain .npy array, not an .npz)")
            with z:
                arrays = {k: z[k] for k in z.files}
    except ValueError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{path}: not a readable switchssm .npz file ({exc})") from exc
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ValueError(
            f"{path}: not a readable switchssm .npz file ({type(exc).__name__}: {exc})"
        ) from exc
    if _HEADER not in arrays:
        raise ValueError(f"{path}: not a switchssm file (no {_HEADER!r} header entry)")
    h = arrays.pop(_HEADER)
    if h.dtype.kind != "U" or h.ndim != 0:
        raise ValueError(
            f"{path}: corrupt header (expected a JSON string, got {h.dtype} {h.shape})"
        )
    try:
        header = json.loads(str(h))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: corrupt header (invalid JSON: {exc})") from exc
    if not isinstance(header, dict) or header.get("format") != "switchssm":
        raise ValueError(f"{path}: not a switchssm file (header format is not 'switchssm')")
    version = header.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"{path}: corrupt header (format version {version!r})")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path}: written in format version {version}, newer than this switchssm reads "
            f"({FORMAT_VERSION}); upgrade switchssm"
        )
    if kind == "fit" and header.get("kind") != "fit":
        raise ValueError(f"{path}: holds {header.get('kind')!r}, not a fit (use load_params)")
    if header.get("kind") not in ("params", "fit"):
        raise ValueError(f"{path}: corrupt header (unknown kind {header.get('kind')!r})")
    return header, arrays


def load_params(path: str | os.PathLike):
    """Load a parameter pytree saved by :func:`save_params` (or the params of a saved fit).

    Args:
        path: a file written by :func:`save_params` or :func:`save_fit`.

    Returns:
        The parameter object, validated, with the stored arrays bitwise unchanged.

    Raises:
        ValueError: the file is not a switchssm archive, is corrupt, or holds invalid
            parameters (the message names the file and the problem).

    Example:
        >>> import numpy as np, tempfile, os
        >>> from switchssm.models import SwitchingParams, CategoricalEmission
        >>> p = SwitchingParams(np.array([.5, .5]), .1, CategoricalEmission(np.eye(2) * .6 + .2),
        ...                     gated=True)
        >>> path = os.path.join(tempfile.mkdtemp(), "params.npz")
        >>> save_params(path, p)
        >>> load_params(path).gated
        True
    """
    header, arrays = _read(path, "params")
    try:
        return _decode(header.get("params"), arrays, "params")
    except _FormatError as exc:
        raise ValueError(f"{Path(path)}: {exc}") from exc


def load_fit(path: str | os.PathLike) -> FitResult:
    """Load a :class:`~switchssm.inference.learn.FitResult` saved by :func:`save_fit`.

    Args:
        path: a file written by :func:`save_fit`.

    Returns:
        The :class:`~switchssm.inference.learn.FitResult`: ``params`` as in
        :func:`load_params`, ``log_likelihood`` a float, the arrays as saved (NumPy),
        ``metadata`` the JSON object.

    Raises:
        ValueError: not a switchssm fit file, or corrupt (the message names the file).

    Example:
        >>> import numpy as np, tempfile, os
        >>> from switchssm.models import SwitchingParams, CategoricalEmission
        >>> from switchssm.inference.learn import FitResult
        >>> p = SwitchingParams(np.array([.5, .5]), .1, CategoricalEmission(np.eye(2) * .6 + .2))
        >>> path = os.path.join(tempfile.mkdtemp(), "fit.npz")
        >>> save_fit(path, FitResult(p, -1.5, np.zeros((1, 3)), np.array([True]),
        ...                          np.array([-1.5]), {"method": "em"}))
        >>> load_fit(path).metadata
        {'method': 'em'}
    """
    header, arrays = _read(path, "fit")
    try:
        params = _decode(header.get("params"), arrays, "params")
        body = header.get("fit")
        if not isinstance(body, dict):
            raise _FormatError("`fit`: missing the fit section of the header")
        values = {}
        for name in _FIT_ARRAYS:
            node = body.get(name)
            if not isinstance(node, dict) or "array" not in node:
                raise _FormatError(f"`fit.{name}`: missing")
            values[name] = _decode(node, arrays, f"fit.{name}")
        ll = values["log_likelihood"]
        if ll.ndim != 0 or ll.dtype.kind != "f":
            raise _FormatError(f"`fit.log_likelihood`: expected a float scalar, got {ll.dtype}")
        metadata = body.get("metadata")
        if not isinstance(metadata, dict):
            raise _FormatError("`fit.metadata`: expected a JSON object")
    except _FormatError as exc:
        raise ValueError(f"{Path(path)}: {exc}") from exc
    return FitResult(
        params,
        float(ll),
        values["history"],
        values["converged"],
        values["restart_log_likelihoods"],
        metadata,
    )
