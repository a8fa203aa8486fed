"""``switchssm demo``: the main job on built-in data, written to a report folder.

Sample sequences from a built-in switching model, fit it by EM, run exact and
variational inference on held-out sequences, build the cell that computes the fitted
model's filter, train a minGRU and compare its states with the exact posterior, sample
the parameters' posterior with NUTS (started at the EM fit), run the verification table,
and write a report folder (report.md, metrics.json, fit.npz, figures, posterior.nc,
verify.md).
"""

from __future__ import annotations

import time

from switchssm.cli import _common as C

HELP = "run the main job on built-in data and write a report"


def configure(d) -> None:
    """The command's arguments."""
    C.add_int(d, "--num-timesteps", 200, 2, "length of each sequence")
    C.add_int(d, "--num-sequences", 40, 2, "number of sequences")
    C.add_int(d, "--em-iters", 50, 1, "EM iterations per restart")
    C.add_int(d, "--train-steps", 400, 1, "minGRU training steps")
    C.add_int(d, "--num-warmup", 300, 0, "NUTS warm-up per chain")
    C.add_int(d, "--num-samples", 300, 4, "NUTS draws per chain")
    d.add_argument(
        "--skip-bayes", action="store_true", help="skip the Bayesian step (NUTS, posterior.nc)"
    )
    d.add_argument("--skip-verify", action="store_true", help="skip the verification table")
    C.add_common(d, out="switchssm-report")


def run(args) -> int:
    C.setup()
    from switchssm.pipelines import ReportFolder
    from switchssm.pipelines import run_demo
    from switchssm.pipelines import write_demo_report

    t0 = time.perf_counter()
    try:
        with ReportFolder(args.out, "switchssm demo") as folder:
            result = run_demo(
                num_timesteps=args.num_timesteps, num_sequences=args.num_sequences,
                em_iters=args.em_iters, train_steps=args.train_steps,
                bayes=not args.skip_bayes, num_warmup=args.num_warmup,
                num_samples=args.num_samples, verify=not args.skip_verify, seed=args.seed,
                progress=not args.quiet, log=print,
            )  # fmt: skip
            files = write_demo_report(result, folder)
    except C.USER_ERRORS as exc:
        return C.fail(str(exc))
    print(
        f"[7/7] report written to {args.out}/ ({', '.join(sorted(files))}) in "
        f"{time.perf_counter() - t0:.0f} s"
    )
    return 0
