"""Command line interface (``switchssm ...``): one module per command."""

from switchssm.cli.main import main as main
