"""``switchssm statetrack``: train a cell on a state-tracking task, test it on long sequences.

Train one cell on one finite-state-machine task (the label after every prefix) on
sequences of lengths 2-10, choose the best of three learning rates on validation
sequences of the test length, and report the accuracy of the label after all --test-
length symbols, beside chance. Writes results.json, results.md and
accuracy_by_length.png. --all runs the paper's comparison (every cell on parity, modular
addition m = 2..50, random permutation automata with 2..25 states, modular arithmetic,
S3; bilinear cells with and without the additive term).
"""

from __future__ import annotations

import argparse
import time

from switchssm.cli import _common as C
from switchssm.data.state_tracking import STATE_TRACKING_TASKS as TASKS
from switchssm.pipelines.state_tracking import DEFAULTS
from switchssm.pipelines.state_tracking import STATETRACK_CELLS as CELLS

#: The grid of ``--all``: the paper's comparison (tasks with their parameters).
ALL_TASKS = (
    ("parity", {}),
    *(("modadd", {"modulus": m}) for m in (2, 3, 5, 10, 25, 50)),
    *(("fsm", {"num_states": n}) for n in (2, 5, 10, 25)),
    ("modarith", {"modulus": 5}),
    ("s3", {}),
)


def _rates(text: str) -> tuple[float, ...]:
    try:
        rates = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated numbers such as 1e-3,1e-2, got {text!r}"
        ) from None
    if not rates or any(not r > 0 for r in rates):
        raise argparse.ArgumentTypeError(f"learning rates must be positive, got {text!r}")
    return rates


HELP = "train a cell on a state-tracking task and test it at length 500"


def configure(s) -> None:
    """The command's arguments."""
    s.add_argument("--task", choices=TASKS, default="modadd")
    C.add_int(s, "--modulus", None, 2, "m for modadd / modarith (default 5)")
    C.add_int(s, "--num-states", None, 2, "states of the random fsm (default 5)")
    s.add_argument("--cell", choices=CELLS, default="bilinear")
    s.add_argument("--additive", action="store_true", help="bilinear cells: add B x_t")
    C.add_int(s, "--train-max-length", DEFAULTS["train_lengths"][1], 2, "longest training sequence")
    C.add_int(s, "--test-length", DEFAULTS["test_length"], 1, "length of the test sequences")
    C.add_int(s, "--hidden", DEFAULTS["hidden_dim"], 2, "hidden size H")
    C.add_int(s, "--steps", DEFAULTS["num_steps"], 1, "Adam steps per learning rate")
    s.add_argument(
        "--learning-rates", type=_rates, default=DEFAULTS["learning_rates"],
        help="comma-separated learning rates; the best on validation is kept "
        f"(default {','.join(f'{r:g}' for r in DEFAULTS['learning_rates'])})",
    )  # fmt: skip
    s.add_argument("--all", action="store_true", help="run the whole comparison table")
    C.add_common(s, out="switchssm-statetrack")


def _settings(args) -> dict:
    return dict(
        hidden_dim=args.hidden,
        num_steps=args.steps,
        learning_rates=args.learning_rates,
        train_lengths=(2, args.train_max_length),
        test_length=args.test_length,
    )


def run(args) -> int:
    C.setup()
    from switchssm.data import state_tracking_task
    from switchssm.pipelines import ReportFolder
    from switchssm.pipelines import state_tracking_table
    from switchssm.pipelines import train_state_tracker
    from switchssm.pipelines import write_state_tracking_report

    t0 = time.perf_counter()
    try:
        folder = ReportFolder(args.out, "switchssm statetrack")
        folder.check()
        if args.all:
            tasks = [state_tracking_task(name, **kw) for name, kw in ALL_TASKS]
            print(f"[1/2] {len(tasks)} tasks x {len(CELLS)} cells (bilinear ones also with +Bx)")
            results = state_tracking_table(
                tasks, CELLS, additive=(False, True), key=args.seed, progress=not args.quiet,
                **_settings(args),
            )  # fmt: skip
        else:
            kw = {}
            if args.modulus is not None:
                kw["modulus"] = args.modulus
            if args.num_states is not None:
                kw["num_states"] = args.num_states
            task = state_tracking_task(args.task, **kw)
            print(f"[1/2] training {args.cell}{' + Bx' if args.additive else ''} on {task.name}")
            results = train_state_tracker(
                task, args.cell, key=args.seed, additive=args.additive,
                progress=not args.quiet, **_settings(args),
            )  # fmt: skip
            r = results
            print(
                f"      test accuracy at length {r.test_length}: {r.test_accuracy:.3f} "
                f"(chance {r.chance_accuracy:.3f}); held-out accuracy at the training "
                f"lengths {r.train_accuracy:.3f}; learning rate {r.learning_rate:g}"
                + (f"; the state overflowed in {r.nonfinite_fraction:.0%} of the test "
                   "sequences (an additive term breaks normalization)"
                   if r.nonfinite_fraction else "")
            )  # fmt: skip
        with folder:
            files = write_state_tracking_report(folder, results)
    except C.USER_ERRORS as exc:
        return C.fail(str(exc))
    print(f"[2/2] written to {args.out}/: {', '.join(files)} ({time.perf_counter() - t0:.0f} s)")
    return 0
