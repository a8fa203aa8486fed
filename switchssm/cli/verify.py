"""``switchssm verify``: every claimed identity and approximation, measured.

Compute both sides of every identity the toolkit claims (exact inference vs enumeration
of all paths, naive Bayes <-> log-linear maps, each row of the cell-to-model table, the
high-mutual-information limit, the Gaussian latent, VMP) and print the table. Exit
status 1 if an exact identity fails.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from switchssm.cli import _common as C

HELP = "check every claimed identity and approximation"


def configure(v) -> None:
    """The command's arguments."""
    v.add_argument("--json", default=None, help="write the table as JSON to this path")
    v.add_argument("--figure", default=None, help="write the mutual-information curve (PNG)")
    C.add_int(v, "--seed", 0, 0, "integer seed of the random problems")


def run(args) -> int:
    C.setup()
    from switchssm.verify import format_table
    from switchssm.verify import run_all_checks

    t0 = time.perf_counter()
    rows = run_all_checks(seed=args.seed)
    print(format_table(rows))
    failed = [c for c in rows if c.kind == "exact" and not c.passed]
    n_exact = sum(c.kind == "exact" for c in rows)
    print(
        f"\n{n_exact - len(failed)}/{n_exact} exact identities hold; "
        f"{len(rows) - n_exact} approximations reported ({time.perf_counter() - t0:.1f} s)"
    )
    try:
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps([c.as_dict() for c in rows], indent=2) + "\n")
            print(f"table written to {args.json}")
        if args.figure:
            from switchssm.plots import plot_mi_curve
            from switchssm.verify.high_mi import check_sweep

            Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
            plot_mi_curve(check_sweep(), path=args.figure)  # the sweep the table measured
            print(f"mutual-information figure written to {args.figure}")
    except C.USER_ERRORS as exc:
        return C.fail(str(exc))
    for c in failed:
        print(f"FAILED: {c.name}: {c.statement} ({c.metric} = {c.error:.3g})", file=sys.stderr)
    return 1 if failed else 0
