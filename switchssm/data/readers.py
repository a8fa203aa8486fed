"""Readers for user sequence files (used by the command line).

Two formats, chosen by the file extension (case-insensitive):

``.csv`` (UTF-8 text, comma-separated, **header row required**)
    - One column: the observations of one sequence. Any header name except ``u``, ``s`` or
      ``sequence``, e.g.::

          y
          0
          2
          1

    - Named columns ``y`` (observations, required), ``u`` (scalar cue on the switch,
      optional), ``s`` (the known latent state of each step, optional) and ``sequence``
      (sequence id, optional; any text). Rows with the same id form one sequence, in file
      order; the rows of one id must be contiguous. Without a ``sequence`` column the whole
      file is one sequence. E.g.::

          sequence,y,u,s
          a,0,0.1,2
          a,3,1.4,0
          b,1,-0.2,1

      Other columns, empty cells, text in ``y``/``u``, NaN and infinities are errors
      (switchssm does not treat NaN as missing data). A column whose every value is written
      as an integer (``3``, ``-1``) is read as int64 (categorical symbols); otherwise float64
      (an integer beyond the int64 range included). Numbers are written with ASCII digits,
      without ``_`` separators (``'1_0'`` and other scripts' digits are errors).
    - ``s`` holds state ids ``0, 1, ..., K-1`` (the model's ``K`` is not known here, so only
      ``>= 0`` is checked), one per row, each written as an integer (``2``, not ``2.0``);
      it is read as int64. The ids are labels of the true latent: a model fitted to ``y``
      numbers its states arbitrarily (``switchssm compare`` matches the two labelings).

``.npy`` (NumPy array, loaded with ``allow_pickle=False``)
    - 1-D ``(T,)``: one sequence.
    - 2-D ``(N, T)``: ``N`` sequences of equal length ``T``, one per row.

    Integer and boolean arrays are returned as int64, floating arrays as float64; other
    dtypes, empty arrays, NaN and infinities are errors. A ``.npy`` file carries no cue and
    no latent states (use a CSV file for those).

Every problem raises :class:`ValueError` whose message starts with
``cannot read sequences from '<path>':`` and says what is wrong.
"""

from __future__ import annotations

import csv
import math
import os
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = ["SequenceData", "read_dataset", "read_sequences"]

SUPPORTED_SUFFIXES = (".csv", ".npy")
_RESERVED = ("y", "u", "s", "sequence")
_STATE_ID = re.compile(r"[+-]?[0-9]+")
# Numbers as written in a CSV file: ASCII digits only (Python's int() and float() also take
# other scripts' digits, '١' for 1, and underscores, '1_0' for 10: refused here).
_INTEGER = _STATE_ID
_REAL = re.compile(
    r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(inf|infinity|nan)", re.IGNORECASE
)
_INT64_MAX = np.iinfo(np.int64).max


class SequenceData(NamedTuple):
    """Sequences read from a user file.

    Attributes:
        y: list of observation arrays, each ``(T_i,)``.
        u: list of cue arrays ``(T_i,)`` aligned with ``y``, or ``None`` when the file has no
            ``u`` column.
        ids: the sequence ids (the ``sequence`` column's values; ``"0"``, ``"1"``, ...
            otherwise).
        s: list of int64 latent-state arrays ``(T_i,)`` aligned with ``y`` (ids ``>= 0``),
            or ``None`` when the file has no ``s`` column (always ``None`` for ``.npy``).
    """

    y: list[np.ndarray]
    u: list[np.ndarray] | None
    ids: list[str]
    s: list[np.ndarray] | None = None


def _fail(path, problem: str):
    return ValueError(f"cannot read sequences from '{path}': {problem}")


def read_sequences(path: str | os.PathLike) -> list[np.ndarray]:
    """Read the observation sequences of a ``.csv`` or ``.npy`` file.

    See the module docstring for the formats. The cue column ``u`` and the latent column
    ``s`` of a CSV file, if present, are read by :func:`read_dataset` and dropped here.

    Args:
        path: file path ending in ``.csv`` or ``.npy``.

    Returns:
        A list of ``N >= 1`` arrays of shape ``(T_i,)`` with ``T_i >= 1``, int64 when the
        values are integers, float64 otherwise.

    Raises:
        ValueError: the file is missing, empty, of an unsupported type, has a wrong header or
            columns, or holds non-numeric, NaN or infinite values. The message names the file.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "obs.csv"
        >>> _ = p.write_text("y\\n0\\n2\\n1\\n")
        >>> read_sequences(p)
        [array([0, 2, 1])]
    """
    return read_dataset(path).y


def read_dataset(path: str | os.PathLike) -> SequenceData:
    """Read observations, optional cues and latents, and sequence ids of a ``.csv``/``.npy``.

    Args:
        path: file path ending in ``.csv`` or ``.npy`` (formats in the module docstring).

    Returns:
        :class:`SequenceData` ``(y, u, ids, s)``; ``u`` is ``None`` without a ``u`` column,
        ``s`` without an ``s`` column.

    Raises:
        ValueError: as :func:`read_sequences`.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "obs.csv"
        >>> _ = p.write_text("sequence,y,u\\na,0,0.5\\na,1,1.5\\nb,2,0.0\\n")
        >>> d = read_dataset(p)
        >>> d.ids, [len(y) for y in d.y], d.u[0].tolist(), d.s
        (['a', 'b'], [2, 1], [0.5, 1.5], None)
        >>> _ = p.write_text("y,s\\n0,1\\n2,1\\n1,0\\n")
        >>> read_dataset(p).s
        [array([1, 1, 0])]
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise _fail(
            path, f"unsupported file type {p.suffix!r}; expected one of {SUPPORTED_SUFFIXES}"
        )
    if not p.exists():
        raise _fail(path, "file not found")
    if not p.is_file():
        raise _fail(path, "not a regular file")
    if p.stat().st_size == 0:
        raise _fail(path, "the file is empty")
    return _read_csv(p, path) if suffix == ".csv" else _read_npy(p, path)


# --------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------


def _is_number(text: str) -> bool:
    return _REAL.fullmatch(text) is not None


def _parse_column(cells: list[tuple[int, str]], column: str, path) -> np.ndarray:
    """Parse ``(line, text)`` cells into int64 if all are integers, else float64."""
    values = []
    all_int = True
    for line, text in cells:
        if text == "":
            raise _fail(
                path,
                f"line {line}, column '{column}' is empty (missing values are not supported)",
            )
        if not _REAL.fullmatch(text):
            problem = f"line {line}, column '{column}': {text!r} is not a number"
            if not text.isascii() or "_" in text:
                problem += " (write numbers with ASCII digits 0-9, no '_' separators)"
            raise _fail(path, problem)
        v = float(text)
        if not math.isfinite(v):
            raise _fail(
                path,
                f"line {line}, column '{column}' is {text!r}: NaN and infinite values are not "
                "supported; drop or impute missing steps (or split the sequence) first",
            )
        if _INTEGER.fullmatch(text) and abs(int(text)) <= _INT64_MAX:
            values.append(int(text))
        else:  # a real, or an integer beyond int64 (kept as the float it rounds to)
            all_int = False
            values.append(v)
    if all_int:
        return np.asarray(values, dtype=np.int64)
    return np.asarray(values, dtype=np.float64)


def _parse_states(cells: list[tuple[int, str]], column: str, path) -> np.ndarray:
    """Parse ``(line, text)`` cells of the latent column: integer state ids ``>= 0``."""
    values = []
    for line, text in cells:
        where = f"line {line}, column '{column}'"
        if text == "":
            raise _fail(
                path,
                f"{where} (latent state) is empty: give the state of every step, or drop the "
                "column",
            )
        if not _STATE_ID.fullmatch(text):
            raise _fail(
                path,
                f"{where}: {text!r} is not an integer state id (latent states are written "
                "as integers 0, 1, ..., K-1)",
            )
        v = int(text)
        if v < 0:
            raise _fail(
                path, f"{where}: state id {v} is negative (latent states are 0, 1, ..., K-1)"
            )
        values.append(v)
    return np.asarray(values, dtype=np.int64)


def _read_csv(p: Path, path) -> SequenceData:
    try:
        with p.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            rows = [(reader.line_num, [c.strip() for c in row]) for row in reader]
    except UnicodeDecodeError:
        raise _fail(path, "not a UTF-8 text file") from None
    except csv.Error as exc:
        raise _fail(path, f"malformed CSV ({exc})") from None
    rows = [(n, r) for n, r in rows if any(c != "" for c in r)]
    if not rows:
        raise _fail(path, "the file is empty")
    header_line, header = rows[0]
    if any(_is_number(c) for c in header):
        raise _fail(
            path,
            f"line {header_line} looks like data, but a header row is required "
            "(e.g. 'y' or 'sequence,y,u,s')",
        )
    if any(c == "" for c in header):
        raise _fail(path, f"the header {header} has an empty column name")
    names = [c.lower() for c in header]
    if len(set(names)) != len(names):
        raise _fail(path, f"the header {header} repeats a column name")
    others = [n for n in names if n not in _RESERVED]
    if "y" in names:
        if others:
            raise _fail(
                path,
                f"unexpected column(s) {others}; allowed columns are 'y' (required), 'u', 's' "
                "and 'sequence'",
            )
        y_col = names.index("y")
    elif len(names) == 1 and names[0] not in _RESERVED:
        y_col = 0
    else:
        hint = (
            "; 's' is the latent-state column, so name the observations 'y'" if "s" in names else ""
        )
        raise _fail(
            path,
            f"wrong columns {header}: expected one column of observations, or columns "
            f"'y' (required), 'u', 's' and 'sequence'{hint}",
        )
    data = rows[1:]
    if not data:
        raise _fail(path, "the file has a header but no data rows")
    for line, r in data:
        if len(r) != len(header):
            raise _fail(path, f"line {line} has {len(r)} field(s), the header has {len(header)}")

    y_all = _parse_column([(n, r[y_col]) for n, r in data], header[y_col], path)
    u_all = None
    if "u" in names:
        i = names.index("u")
        u_all = _parse_column([(n, r[i]) for n, r in data], header[i], path).astype(np.float64)
    s_all = None
    if "s" in names:
        i = names.index("s")
        s_all = _parse_states([(n, r[i]) for n, r in data], header[i], path)

    if "sequence" in names:
        i = names.index("sequence")
        ids: list[str] = []
        starts: list[int] = []
        seen: set[str] = set()
        for k, (line, r) in enumerate(data):
            sid = r[i]
            if sid == "":
                raise _fail(path, f"line {line}, column '{header[i]}' (sequence id) is empty")
            if not ids or sid != ids[-1]:
                if sid in seen:
                    raise _fail(
                        path,
                        f"line {line}: the rows of sequence {sid!r} are not contiguous; sort "
                        "the file by sequence id, keeping the time order within each sequence",
                    )
                seen.add(sid)
                ids.append(sid)
                starts.append(k)
        bounds = [*starts, len(data)]
    else:
        ids, bounds = ["0"], [0, len(data)]
    spans = list(zip(bounds[:-1], bounds[1:], strict=True))
    ys = [y_all[a:b] for a, b in spans]
    us = None if u_all is None else [u_all[a:b] for a, b in spans]
    ss = None if s_all is None else [s_all[a:b] for a, b in spans]
    return SequenceData(ys, us, ids, ss)


# --------------------------------------------------------------------------------------
# NPY
# --------------------------------------------------------------------------------------


def _read_npy(p: Path, path) -> SequenceData:
    try:
        a = np.load(p, allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError, OSError, EOFError, ... on bad files
        raise _fail(path, f"not a readable .npy array ({type(exc).__name__}: {exc})") from None
    if not isinstance(a, np.ndarray):
        if hasattr(a, "close"):
            a.close()
        raise _fail(path, "holds an .npz archive, not a single .npy array")
    if a.dtype.kind in "biu":
        a = a.astype(np.int64)
    elif a.dtype.kind == "f":
        a = a.astype(np.float64)
    else:
        raise _fail(path, f"must hold integer or real numbers, got dtype {a.dtype}")
    if a.ndim not in (1, 2):
        expected = "1-D (T,) for one sequence or 2-D (N, T) for N sequences"
        raise _fail(path, f"must be {expected}, got shape {a.shape}")
    if a.size == 0:
        raise _fail(path, f"the array is empty (shape {a.shape})")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        bad = int(a.size - np.count_nonzero(np.isfinite(a)))
        raise _fail(
            path,
            f"contains {bad} NaN or infinite value(s); NaN is not treated as missing data: "
            "drop or impute missing steps (or split the sequence) first",
        )
    ys = [a] if a.ndim == 1 else [row.copy() for row in a]
    return SequenceData(ys, None, [str(i) for i in range(len(ys))])
