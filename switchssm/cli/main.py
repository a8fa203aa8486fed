"""``switchssm`` command line: one module per command.

Each command module has a docstring (a title line, then the description ``--help`` shows),
``HELP``, ``configure(parser)`` and ``run(args)``. Each command parses its arguments, calls
one library function of :mod:`switchssm.pipelines` (or :mod:`switchssm.verify`), prints and
writes; user errors exit with status 2 and a one-line message.
"""

from __future__ import annotations

import argparse
import sys

from switchssm.cli import compare
from switchssm.cli import demo
from switchssm.cli import fit
from switchssm.cli import statetrack
from switchssm.cli import verify

COMMANDS = (demo, fit, compare, verify, statetrack)


def build_parser() -> argparse.ArgumentParser:
    """The ``switchssm`` parser with one subcommand per module of :data:`COMMANDS`."""
    from switchssm import __version__

    p = argparse.ArgumentParser(
        prog="switchssm",
        description="Switching state-space models and the RNNs that compute their posteriors.",
    )
    p.add_argument("--version", action="version", version=f"switchssm {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS:  # the module's name, docstring, HELP, configure and run
        name = command.__name__.rsplit(".", 1)[1]
        description = command.__doc__.split("\n\n", 1)[1]  # below the title line
        c = sub.add_parser(name, help=command.HELP, description=description)
        command.configure(c)
        c.set_defaults(func=command.run)
    return p


def main(argv=None) -> int:
    """Run the command line; returns the exit status."""
    import matplotlib

    matplotlib.use("Agg")  # the CLI only writes files; notebooks keep their own backend
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help, --version (0) or a usage error (2)
        return int(exc.code or 0)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
