"""What every command shares: user errors as one line and exit status 2, integer options."""

from __future__ import annotations

import argparse
import sys


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit code 2, no traceback."""


def fail(msg: str) -> int:
    """Print ``error: msg`` on stderr; the exit status of a user error (2)."""
    print(f"error: {msg}", file=sys.stderr)
    return 2


#: The exceptions a command reports as a user error (bad data, options or paths).
USER_ERRORS = (UserError, ValueError, FileNotFoundError, FloatingPointError, OSError, MemoryError)


def setup() -> None:
    """Float64 for every command (the reports compare numbers at tight tolerances)."""
    import jax

    jax.config.update("jax_enable_x64", True)


def add_int(parser, flag: str, default, low: int, help: str, required: bool = False) -> None:
    """An integer option that must be ``>= low`` (checked by argparse: exit 2, one line)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {value}")
        return value

    parser.add_argument(flag, type=parse, default=default, help=help, required=required)


def add_common(parser, out: str | None) -> None:
    """``--out`` (a report folder; omitted when ``out`` is None), ``--quiet`` and ``--seed``."""
    if out is not None:
        parser.add_argument("--out", default=out, help="output folder (written as one unit)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_int(parser, "--seed", 0, 0, "integer seed of everything random")
