"""The state-tracking comparison (Ebrahimi & Memisevic 2025, reproduced at CPU scale).

Every cell of ``switchssm statetrack`` on every task of its ``--all`` grid (parity, modular
addition m = 2..50, random permutation automata with 2..25 states, modular arithmetic, S3,
S5), the bilinear cells with and without the additive term: trained on lengths 2-10, best of
three learning rates on validation sequences of length 500, accuracy of the label after 500
symbols on separate test sequences, beside chance. Not a timing benchmark: the table is the
result.

    .venv/bin/python benchmarks/statetrack_table.py            # the table, ~50 min on 2 cores
    .venv/bin/python benchmarks/statetrack_table.py --quick    # two tasks, three cells

Writes ``statetrack.json`` (every run, with its accuracy after every prefix),
``statetrack.md`` (the table, chance, and the paper's reported results beside ours) and
``statetrack.png`` (accuracy against length on four tasks) to ``--out``, saving the JSON after
every run so that an interrupted table keeps what it has.
"""

from __future__ import annotations

import json
import time

from _common import host_info
from _common import make_parser
from _common import package_versions
from _common import prepare_output
from _common import setup_jax

setup_jax(x64=False, quiet_peers=False)

import numpy as np  # noqa: E402

from switchssm.cli.statetrack import ALL_TASKS  # noqa: E402
from switchssm.data import state_tracking_task  # noqa: E402
from switchssm.pipelines import BILINEAR_CELLS  # noqa: E402
from switchssm.pipelines import STATETRACK_CELLS  # noqa: E402
from switchssm.pipelines import state_tracking_table  # noqa: E402
from switchssm.pipelines.state_tracking import DEFAULTS  # noqa: E402

#: What the paper reports at length 500 (its text, as summarized in the issue that asked for
#: this table): task -> cell -> (paper's result in words, what it implies for ours).
PAPER = {
    "modadd": "full bilinear 1.00 for every m; block b = 2 1.00; R2 1.00 at m = 2, 5, partial "
    "at 10, 25, 0.00 at m = 3, 50; real diagonal only m = 2 (parity); LSTM fails at m = 25, "
    "50; Mamba near 0 everywhere",
    "fsm": "full bilinear 1.00 for every size; block b = 2 0.00 at 5 states or more; LSTM "
    "fails at 10 states or more",
}


def _cell_name(r):
    return r["cell"] + (" +Bx" if r["additive"] else "")


def write_markdown(path, result):
    runs = result["runs"]
    tasks = list(dict.fromkeys(r["task"] for r in runs))
    cells = list(dict.fromkeys(_cell_name(r) for r in runs))
    acc = {(r["task"], _cell_name(r)): r["test_accuracy"] for r in runs}
    chance = {r["task"]: r["chance_accuracy"] for r in runs}
    s = result["settings"]
    L = ["# State tracking: train on lengths 2-10, test at length 500\n"]
    L.append(
        f"Accuracy of the label after the last of {s['test_length']} symbols, on "
        f"{s['num_test']} test sequences (chance: the most probable final label, exact). "
        f"Hidden {s['hidden_dim']}, {s['num_steps']} Adam steps of batch {s['batch_size']} "
        f"per learning rate, the best of {s['learning_rates']} by final-step accuracy on "
        f"{s['num_val']} validation sequences of length {s['test_length']}; {s['num_train']} "
        "training sequences of lengths 2-10. Bilinear cells run normalized; `+Bx` cells have "
        "an additive input term and run unnormalized. The paper used hidden 256 and 10^5 "
        f"steps. {len(runs)} runs, {result['seconds'] / 60:.0f} min on "
        f"{result['machine']['cpu_count']} CPUs (float32).\n"
    )
    L.append("| task | chance | " + " | ".join(cells) + " |")
    L.append("|---|---|" + "---|" * len(cells))
    for t in tasks:
        row = [f"{acc[(t, c)]:.2f}" if (t, c) in acc else "" for c in cells]
        L.append(f"| {t} | {chance[t]:.2f} | " + " | ".join(row) + " |")
    L += reading_notes(runs)
    L.append("\n## The paper's reported results beside ours\n")
    for key, text in PAPER.items():
        L.append(f"- **{key}** (paper): {text}.")
    L.append("\n## Observations\n")
    L += [f"- {o}" for o in result.get("observations", [])]
    path.write_text("\n".join(L) + "\n")


def reading_notes(runs):
    """How to read the table: what was run where, and why some columns look as they do."""
    L = ["\n## Reading the table\n"]
    bx = [r for r in runs if r["additive"]]
    if bx:
        bx_tasks = list(dict.fromkeys(r["task"] for r in bx))
        tasks = list(dict.fromkeys(r["task"] for r in runs))
        where = "every task" if bx_tasks == tasks else ", ".join(bx_tasks) + " only"
        over = [r for r in bx if r.get("nonfinite_fraction", 0.0) > 0.5]
        kinds = sorted({r["cell"] for r in over})
        L.append(
            f"- `+Bx` variants ran on {where}. Their mean training accuracy on lengths 2-10 is "
            f"{np.mean([r['train_accuracy'] for r in bx]):.2f}; at length 500 their mean is "
            f"{np.mean([r['test_accuracy'] for r in bx]):.2f}. With an input term the update "
            "is no longer scale invariant, so the state cannot be renormalized. In "
            f"{len(over)} of {len(bx)} of these runs ({', '.join(kinds) or 'none'}), the "
            "unnormalized float32 state overflowed before step 500 on most test sequences "
            "(the JSON's `nonfinite_fraction`), and a non-finite prediction counts as wrong. "
            "The paper also trains unnormalized, but at hidden 256 and with far longer "
            "training."
        )
    same = [
        (a, b) for a, b in (("parity", "modadd(m=2)"),)
        if {a, b} <= {r["task"] for r in runs}
    ]  # fmt: skip
    for a, b in same:
        L.append(f"- `{a}` and `{b}` are the same task with the same data: equal rows are a "
                 "check of determinism, not two results.")  # fmt: skip
    acc = {(r["task"], r["cell"]): r["test_accuracy"] for r in runs if not r["additive"]}
    if all(("s3", c) in acc for c in ("block", "diagonal", "complex", "rotation")):
        s3_chance = next(r["chance_accuracy"] for r in runs if r["task"] == "s3")
        L.append(
            "- S3 is non-abelian. Proposition 2 rules it out for operators with a shared "
            "eigenbasis: diagonal, complex and rotation score "
            + ", ".join(f"{acc[('s3', c)]:.2f}" for c in ("diagonal", "complex", "rotation"))
            + f" here, against a chance of {s3_chance:.2f}. An abelian cell can still track "
            "the sign of the permutation (S3's abelianization is Z_2) and guess among the "
            "three permutations of that sign: 1/3 is its ceiling. Free 2 x 2 blocks do not "
            "commute, and S3 has a faithful 2-d real representation (the symmetries of a "
            "triangle); block b = 2 scores "
            f"{acc[('s3', 'block')]:.2f}."
        )  # fmt: skip
    L.append(
        "- Proposition 1's one-hot construction needs a hidden size of at least the number "
        "of states. At hidden 32 that rules it out for modadd(m=50) (50 states) and S5 (120 "
        "states). Smaller exact solutions exist (2-d rotations for Z_m, the 4-d standard "
        "representation of S5), but this training budget did not find them."
    )
    L.append(
        "- Sizes are scaled for a 2-core CPU (hidden 32, 1000 Adam steps per learning rate), "
        "so a cell that needs a long optimization to find an exact solution may stop short "
        "of it on some moduli. Where a cell can represent the task exactly (block b = 2 on "
        "modular addition, rotation at m = 5), a score below 1.00 is undertraining at "
        "this scale, not a limit of the cell."
    )
    return L


def write_figure(path, runs):
    """Accuracy against length for a few cells on modular addition (m = 5) and S3, from the
    JSON rows of the runs."""
    from types import SimpleNamespace

    from switchssm.plots import plot_accuracy_by_length

    picks = [
        SimpleNamespace(**{**r, "accuracy_by_length": np.asarray(r["accuracy_by_length"])})
        for r in runs
        if r["task"] in ("modadd(m=5)", "s3") and not r["additive"]
        and r["cell"] in ("bilinear", "block", "rotation", "diagonal", "lstm")
    ]  # fmt: skip
    if picks:
        plot_accuracy_by_length(picks, title="accuracy after each prefix (train 2-10)", path=path)


def render(out, stem):
    """Write the Markdown table and the figure from ``<stem>.json`` (also a partial one)."""
    result = json.loads((out / f"{stem}.json").read_text())
    result["observations"] = observations(result)
    write_markdown(out / f"{stem}.md", result)
    write_figure(out / f"{stem}.png", result["runs"])


def main(argv=None):
    ap = make_parser(__doc__, "two tasks, three cells, short training (a smoke test)")
    ap.add_argument("--steps", type=int, default=DEFAULTS["num_steps"])
    ap.add_argument("--hidden", type=int, default=DEFAULTS["hidden_dim"])
    ap.add_argument("--render", action="store_true",
                    help="only rewrite the .md and .png from the existing .json")  # fmt: skip
    ap.add_argument(
        "--resume",
        action="store_true",
        help="keep the runs already in the .json and train only the missing ones "
        "(every run is seeded alike, so a resumed table equals a fresh one)",
    )
    ap.add_argument(
        "--no-additive",
        action="store_true",
        help="skip the bilinear cells' +Bx variants (for the runs still to do)",
    )
    args = ap.parse_args(argv)
    out, stem = prepare_output(args, "statetrack")
    if args.render:
        render(out, stem)
        return 0
    if args.quick:
        tasks = [state_tracking_task("parity"), state_tracking_task("modadd", modulus=3)]
        cells = ("bilinear", "diagonal", "lstm")
        settings = dict(hidden_dim=8, num_steps=100, learning_rates=(1e-2,), test_length=50,
                        num_train=256, num_val=16, num_test=32)  # fmt: skip
        additive = (False,)
    else:
        tasks = [state_tracking_task(n, **kw) for n, kw in (*ALL_TASKS, ("s5", {}))]
        cells = STATETRACK_CELLS
        settings = dict(hidden_dim=args.hidden, num_steps=args.steps)
        additive = (False,) if args.no_additive else (False, True)
    full = {**DEFAULTS, **settings}
    full["learning_rates"] = list(full["learning_rates"])
    result = dict(
        quick=args.quick, machine=host_info(), versions=package_versions("jax", "jaxlib"),
        settings=full, runs=[], seconds=0.0,
    )  # fmt: skip
    done = set()
    if args.resume and (out / f"{stem}.json").exists():
        old = json.loads((out / f"{stem}.json").read_text())
        if old["settings"] != json.loads(json.dumps(full, default=float)):
            raise SystemExit("--resume: the saved table was made with other settings")
        result["runs"], result["seconds"] = old["runs"], old["seconds"]
        done = {(r["task"], r["cell"], r["additive"]) for r in old["runs"]}
        print(f"resuming: {len(done)} runs kept")
    t0 = time.perf_counter() - result["seconds"]

    def save(r):
        d = r.summary()
        d["accuracy_by_length"] = [round(float(a), 4) for a in r.accuracy_by_length]
        result["runs"].append(d)
        result["seconds"] = time.perf_counter() - t0
        (out / f"{stem}.json").write_text(json.dumps(result, indent=1, default=float))

    for task in tasks:
        for cell in cells:
            for add in additive if cell in BILINEAR_CELLS else (False,):
                if (task.name, cell, add) not in done:
                    state_tracking_table(
                        [task], [cell], additive=(add,), key=0, on_result=save, **settings
                    )
    render(out, stem)
    print(f"wrote {out / (stem + '.md')} ({result['seconds'] / 60:.1f} min)")
    return 0


def observations(result):
    """Facts read off the table (computed, so they stay true when the table is re-run)."""
    runs = result["runs"]
    out = []
    by = {(r["task"], _cell_name(r)): r for r in runs}
    solved = lambda r: r["test_accuracy"] > 0.99  # noqa: E731
    for cell in ("bilinear", "cp", "block", "rotation", "complex", "diagonal", "lstm",
                 "elman", "mingru", "selective"):  # fmt: skip
        rows = [r for (t, c), r in by.items() if c == cell]
        if rows:
            good = [r["task"] for r in rows if solved(r)]
            out.append(f"{cell}: above 0.99 on {len(good)} of {len(rows)} tasks"
                       + (f" ({', '.join(good)})" if good else ""))  # fmt: skip
    near = [r for r in runs if abs(r["test_accuracy"] - r["chance_accuracy"]) < 0.05]
    out.append(f"{len(near)} of {len(runs)} runs end within 0.05 of chance")
    bil = [r for r in runs if r["cell"] in BILINEAR_CELLS and r["additive"]]
    if bil:
        worse = sum(
            r["test_accuracy"] < by[(r["task"], r["cell"])]["test_accuracy"] - 0.05
            for r in bil if (r["task"], r["cell"]) in by
        )  # fmt: skip
        out.append(f"the additive term lowers the accuracy by more than 0.05 in {worse} of "
                   f"{len(bil)} bilinear runs")  # fmt: skip
    return out


if __name__ == "__main__":
    raise SystemExit(main())
