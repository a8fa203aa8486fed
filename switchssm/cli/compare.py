"""``switchssm compare``: a saved fit's exact posterior vs a cell trained on the same data.

Run the exact filter/smoother and VMP of a saved fit on the data, train an RNN cell on
next-observation prediction or on the known latent, and compare its states with the
posterior. A CSV file may carry the known latent state of each step in a column 's'
(integers 0..K-1, K the fit's number of states); the fitted model's state labels are
then matched to it (Hungarian matching on the posterior-vs-truth confusion) and the
exact posterior's accuracy on it is reported. Writes compare.json,
posterior_vs_states.png and switch_vs_gates.png.
"""

from __future__ import annotations

import time

from switchssm.cli import _common as C

HELP = "exact filter and VMP under a saved fit vs a trained RNN cell"


def configure(c) -> None:
    """The command's arguments."""
    c.add_argument(
        "data",
        help="observations: .csv (columns y, optional u, s and sequence) or .npy (as for `fit`)",
    )
    c.add_argument("--fit", required=True, help="fit.npz written by `switchssm fit`")
    c.add_argument("--cell", choices=("mingru", "gru", "selective"), default="mingru")
    c.add_argument(
        "--target",
        choices=("next", "latent"),
        default=None,
        help="what the cell learns to predict: 'next' = the next observation y_(t+1), "
        "'latent' = the known latent s_t (CSV column 's'; softmax readout over the K states, "
        "held-out accuracy and readout KL from the exact filter reported). Default: latent "
        "when the file has an 's' column, else next",
    )
    C.add_int(c, "--train-steps", 400, 1, "training steps")
    C.add_int(c, "--hidden-dim", 8, 1, "cell width")
    C.add_int(
        c, "--window", 200, 2,
        "the cell trains and is held out on windows of at most this many steps, cut from "
        "every sequence (a single sequence works: the window is halved until there are 2)",
    )  # fmt: skip
    C.add_common(c, out="switchssm-compare")


def run(args) -> int:
    C.setup()
    from switchssm.io import load_fit
    from switchssm.pipelines import ReportFolder
    from switchssm.pipelines import compare_fit
    from switchssm.pipelines import load_observations
    from switchssm.pipelines import write_compare_report

    t0 = time.perf_counter()
    try:
        fit = load_fit(args.fit)
    except C.USER_ERRORS as exc:
        return C.fail(f"cannot load the fit: {exc}")
    try:
        obs = load_observations(args.data, fit.params.emission.kind)
        folder = ReportFolder(args.out, "switchssm compare")
        folder.check()
        result = compare_fit(
            obs, fit.params, cell=args.cell, target=args.target, train_steps=args.train_steps,
            hidden_dim=args.hidden_dim, window=args.window, seed=args.seed,
            progress=not args.quiet, log=print,
        )  # fmt: skip
        with folder:
            files = write_compare_report(folder, result, ids=obs.ids, fit_path=args.fit)
    except C.USER_ERRORS as exc:
        return C.fail(str(exc))
    print(f"written to {args.out}/: {', '.join(files)} ({time.perf_counter() - t0:.0f} s)")
    return 0
