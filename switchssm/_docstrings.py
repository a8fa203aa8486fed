"""Docstring text written once and filled into every docstring that shares it."""

from __future__ import annotations


def fill_doc(text: str, marker: str):
    """Decorator: replace the line ``marker`` of a docstring by ``text``, indented like it
    (one definition of shared arguments or example set-up, every docstring complete for
    ``help()``, the API reference and the doctests).

    Example:
        >>> @fill_doc("x: a number.\\ny: another.", "{xy}")
        ... def add(x, y):
        ...     '''Sum.
        ...
        ...     Args:
        ...         {xy}
        ...     '''
        >>> print(add.__doc__.splitlines()[3:5])
        ['        x: a number.', '        y: another.']
    """

    def decorate(func):
        if func.__doc__ is None:  # python -OO strips docstrings
            return func
        if marker not in (line.strip() for line in func.__doc__.split("\n")):
            raise ValueError(f"{func.__qualname__}'s docstring has no line {marker!r}")
        lines = []
        for line in func.__doc__.split("\n"):
            if line.strip() == marker:
                pad = line[: len(line) - len(line.lstrip())]
                lines += [pad + t if t else t for t in text.split("\n")]
            else:
                lines.append(line)
        func.__doc__ = "\n".join(lines)
        return func

    return decorate
