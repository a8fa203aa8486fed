"""One Markdown-table writer for every table the package prints or writes."""

from __future__ import annotations

import numpy as np


def _cell(v, digits: int) -> str:
    if isinstance(v, bool | np.bool_):
        return str(bool(v))
    if isinstance(v, float | np.floating):
        return f"{float(v):.{digits}g}"
    return "" if v is None else str(v)


def markdown_table(rows, columns=None, *, digits: int = 4, index: str | None = None) -> str:
    """Rows of flat dicts (or a pandas DataFrame) as a GitHub Markdown table.

    Args:
        rows: a list of dicts (missing keys print empty) or a DataFrame (its index becomes
            the first column, headed ``index``).
        columns: the columns and their order (default: the first row's keys).
        digits: significant digits of floats.
        index: header of a DataFrame's index column (default empty).

    Returns:
        The table, without a trailing newline (``""`` for no rows).

    Example:
        >>> print(markdown_table([{"d": 1.0, "gap": 0.5}]))
        | d | gap |
        |---|---|
        | 1 | 0.5 |
    """
    if hasattr(rows, "iterrows"):  # a pandas DataFrame
        head = "" if index is None else index
        cols = [str(c) for c in rows.columns]
        rows = [{head: i, **{str(k): v for k, v in r.items()}} for i, r in rows.iterrows()]
        columns = [head, *cols] if columns is None else list(columns)
    rows = list(rows)
    if not rows:
        return ""
    columns = list(rows[0]) if columns is None else list(columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(_cell(r.get(c), digits) for c in columns) + " |")
    return "\n".join(lines)
