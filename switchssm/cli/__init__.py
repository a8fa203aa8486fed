"""Command line interface (``switchssm ...``)."""

from switchssm.cli.main import main

__all__ = ["main"]
