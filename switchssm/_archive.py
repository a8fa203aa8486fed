"""The one save format of the package: an ``.npz`` archive with a JSON header, no pickle.

Used by :mod:`switchssm.io` (parameters, fits) and :mod:`switchssm.rnn.checkpoint` (trained
cells). An archive (written with :func:`numpy.savez`, read back with ``allow_pickle=False``,
so loading a file never runs code) holds

- ``__switchssm__``: a 0-d unicode array with the JSON header::

      {"format": "switchssm", "version": 1, "kind": <kind>,
       "switchssm_version": "0.1.0", ...}            # kind-specific entries

- one array per leaf, named by its path (``params.initial_probs``, ``fit.history``, ...),
  with its dtype and shape as saved.

A parameter tree is encoded as nodes::

    {"class": "SwitchingParams", "fields": {"initial_probs": <node>, ..., "gated": <node>}}
    {"array": "params.initial_probs"}      an array leaf
    {"value": false}                       a static field (a JSON scalar, e.g. ``gated``)
    {"tuple": [<node>, ...]}               a tuple of parameter trees (the layers of a stack)
    null                                   ``None`` (no cue)

Only parameter classes of the package (:func:`switchssm._pytree.params_pytree`) are known:
a file cannot name arbitrary classes. Decoding rebuilds each object through its
constructor, so its values are validated (real dtypes only, see
:func:`switchssm._validation.as_float`), then puts back the stored float arrays unchanged:
the round trip is bitwise exact, dtypes included. Headers are bounded (size and nesting), so
a crafted file cannot exhaust the parser.

Writes are atomic (:func:`atomic_write`: a temporary file in the same folder, then a rename).
Any problem with a file's content raises :class:`ValueError` naming the file and the problem;
a missing file raises :class:`FileNotFoundError`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from switchssm import _validation as V
from switchssm._pytree import is_params
from switchssm._pytree import registered

FORMAT_VERSION = 1
HEADER = "__switchssm__"
MAX_HEADER_CHARS = 10_000_000
KINDS = ("params", "fit", "checkpoint")
MAX_DEPTH = 32  # parameter trees nest 3 deep; a header nested deeper is not ours


class FormatError(Exception):
    """A problem with a file's content (re-raised as ValueError naming the file)."""


def atomic_write(path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp)`` on a temporary file next to ``path``, then rename it into place.

    A crash leaves either the old file or the new one, never a partial file.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; outputs are world-readable like the rest
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


# --------------------------------------------------------------------------------------
# Encoding


def encode(obj, prefix: str, arrays: dict, name: str):
    """JSON node for a parameter tree ``obj``; its arrays are added to ``arrays``."""
    if obj is None:
        return None
    if is_params(obj):
        cls = type(obj)
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
                fields[f.name] = encode(value, f"{prefix}.{f.name}", arrays, f"{name}.{f.name}")
        return {"class": cls.__name__, "fields": fields}
    if isinstance(obj, tuple) and not hasattr(obj, "_fields"):  # a tuple of layers
        return {
            "tuple": [encode(v, f"{prefix}.{i}", arrays, f"{name}[{i}]") for i, v in enumerate(obj)]
        }
    if isinstance(obj, jax.core.Tracer):
        raise ValueError(f"`{name}` is a JAX tracer: save concrete values, outside jit")
    if isinstance(obj, jax.Array | np.ndarray | np.generic | bool | int | float):
        a = np.asarray(obj)
        if a.dtype.kind not in "biuf":
            raise ValueError(f"`{name}` must be a real numeric array, got dtype {a.dtype}")
        arrays[prefix] = a
        return {"array": prefix}
    raise ValueError(
        f"`{name}` must be a parameter object, an array or None, got {type(obj).__name__}"
    )


def write_archive(path, kind: str, header: dict, arrays: dict) -> None:
    """Write ``arrays`` and the JSON ``header`` (plus format, version, kind) atomically."""
    import switchssm

    full = {
        "format": "switchssm",
        "version": FORMAT_VERSION,
        "kind": kind,
        "switchssm_version": getattr(switchssm, "__version__", None),
        **header,
    }
    try:
        text = json.dumps(full, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the header must be JSON-serializable (no NaN/inf): {exc}") from exc
    payload = {HEADER: np.array(text), **arrays}

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **payload)

    atomic_write(path, write)


# --------------------------------------------------------------------------------------
# Decoding


def _as_leaf(a: np.ndarray):
    """A JAX array with exactly ``a``'s dtype and bits, or ``a`` if JAX cannot hold it."""
    if jax.dtypes.canonicalize_dtype(a.dtype) != a.dtype:
        return a
    return jnp.asarray(a)


def array(node, arrays: dict, where: str) -> np.ndarray:
    """The array a ``{"array": key}`` node names."""
    if not isinstance(node, dict) or "array" not in node:
        raise FormatError(f"`{where}`: missing")
    key = node["array"]
    if not isinstance(key, str) or key not in arrays:
        raise FormatError(f"`{where}`: array {key!r} is missing from the archive")
    a = arrays[key]
    if a.dtype.kind not in "biuf":
        raise FormatError(f"`{where}`: array {key!r} has non-numeric dtype {a.dtype}")
    return a


def decode(node, arrays: dict, where: str, depth: int = 0):
    """Rebuild the parameter tree of ``node`` (validated by the constructors)."""
    if depth > MAX_DEPTH:
        raise FormatError(f"`{where}`: nested too deeply")
    if node is None:
        return None
    if not isinstance(node, dict):
        raise FormatError(f"`{where}`: expected a node (object or null), got {node!r}")
    if "array" in node:
        return array(node, arrays, where)
    if "value" in node:
        return node["value"]
    if "tuple" in node:
        items = node["tuple"]
        if not isinstance(items, list):
            raise FormatError(f"`{where}`: a tuple node must hold a list")
        return tuple(decode(v, arrays, f"{where}[{i}]", depth + 1) for i, v in enumerate(items))
    classes = registered()
    cls_name = node.get("class")
    if not isinstance(cls_name, str) or cls_name not in classes:
        raise FormatError(f"`{where}`: unknown class {cls_name!r}")
    cls = classes[cls_name]
    fields = node.get("fields")
    names = [f.name for f in dataclasses.fields(cls)]
    if not isinstance(fields, dict) or set(fields) != set(names):
        got = sorted(fields) if isinstance(fields, dict) else fields
        raise FormatError(f"`{where}`: {cls_name} needs fields {names}, the file has {got}")
    values = {n: decode(fields[n], arrays, f"{where}.{n}", depth + 1) for n in names}
    static = set(getattr(cls, "_static", ()))
    for n in static:
        if not isinstance(values[n], bool | int | float | str | type(None)):
            raise FormatError(f"`{where}.{n}`: a static field must be a JSON scalar")
    for n in names:  # the stored float arrays themselves, as JAX arrays: the constructors
        v = values[n]  # keep a JAX float dtype (NumPy input would become the default float)
        if n not in static and isinstance(v, np.ndarray) and v.dtype.kind == "f":
            if v.dtype.isnative and v.dtype.itemsize >= 4:
                values[n] = _as_leaf(v)
    try:
        obj = cls(**values)
        V.check_one_precision(obj)  # (models check it themselves; cells do not)
    except (ValueError, TypeError) as exc:
        raise FormatError(f"`{where}`: invalid {cls_name}: {exc}") from exc
    return obj


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in head


def _depth(x, limit: int) -> int:
    """Nesting depth of a parsed JSON value, stopping at ``limit``."""
    if limit <= 0:
        return 0
    if isinstance(x, dict):
        return 1 + max((_depth(v, limit - 1) for v in x.values()), default=0)
    if isinstance(x, list):
        return 1 + max((_depth(v, limit - 1) for v in x), default=0)
    return 0


def read_archive(path, kinds: tuple[str, ...]) -> tuple[dict, dict]:
    """``(header, arrays)`` of a switchssm archive of one of ``kinds``, or ValueError."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not a switchssm .npz file")
    what = " or ".join(kinds)
    try:
        # Open the file here: np.load leaks its own handle when the archive is corrupt.
        with open(path, "rb") as fh:
            magic = fh.read(6)
            fh.seek(0)
            if not magic.startswith((b"PK\x03\x04", b"\x93NUMPY")):
                kind = "an empty file" if not magic else (
                    "a text file (CSV, JSON, ...)" if _looks_like_text(fh.read(4096))
                    else "a binary file"
                )  # fmt: skip
                raise ValueError(
                    f"{path}: not a readable switchssm {what} file (expected an .npz archive "
                    f"written by switchssm, got {kind})"
                )
            z = np.load(fh, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ValueError(
                    f"{path}: not a readable switchssm {what} file (a plain .npy array, not an "
                    ".npz archive)"
                )
            with z:
                arrays = {k: z[k] for k in z.files}
    except ValueError as exc:
        if str(exc).startswith(str(path)):
            raise
        # NumPy's message about object arrays suggests allow_pickle: never pass that on.
        raise ValueError(
            f"{path}: not a readable switchssm {what} file (an archive of non-numeric or "
            "object arrays, which switchssm never writes)"
        ) from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ValueError(
            f"{path}: not a readable switchssm {what} file (not an .npz archive: "
            f"{type(exc).__name__})"
        ) from None
    if HEADER not in arrays:
        raise ValueError(f"{path}: not a switchssm file (no {HEADER!r} header entry)")
    h = arrays.pop(HEADER)
    if h.dtype.kind != "U" or h.ndim != 0:
        raise ValueError(
            f"{path}: corrupt header (expected a JSON string, got {h.dtype} {h.shape})"
        )
    text = str(h)
    if len(text) > MAX_HEADER_CHARS:
        raise ValueError(f"{path}: corrupt header (longer than {MAX_HEADER_CHARS} characters)")
    try:
        header = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: corrupt header (invalid JSON: {exc})") from None
    except RecursionError:
        raise ValueError(f"{path}: corrupt header (JSON nested too deeply)") from None
    if _depth(header, MAX_DEPTH + 8) > MAX_DEPTH + 4:
        raise ValueError(f"{path}: corrupt header (JSON nested too deeply)")
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
    kind = header.get("kind")
    if kind not in KINDS:
        raise ValueError(f"{path}: corrupt header (unknown kind {kind!r})")
    if kind not in kinds:
        article = " or ".join(f"a {k}" for k in kinds)
        raise ValueError(f"{path}: holds a {kind}, not {article}")
    return header, arrays
