"""``python -m switchssm``: the command line."""

import sys

from switchssm.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
