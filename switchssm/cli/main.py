"""``switchssm`` command line: ``demo`` runs the main job on built-in data.

Subcommands read inputs, call the library, and write a report folder; they hold no
numerics of their own.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _demo_params():
    import numpy as np

    from switchssm.models import CategoricalEmission, GaussianCue, SwitchingParams

    B = np.array(
        [
            [0.70, 0.10, 0.10, 0.10],
            [0.10, 0.70, 0.10, 0.10],
            [0.10, 0.10, 0.40, 0.40],
        ]
    )
    return SwitchingParams(
        initial_probs=np.array([0.4, 0.35, 0.25]),
        switch_prob=0.05,
        emission=CategoricalEmission(B),
        cue=GaussianCue(np.array([0.0, 1.5]), 0.6),
        gated=False,
    )


def cmd_demo(args) -> int:
    """Sample from a built-in switching model, run exact inference, write a report."""
    import jax
    import numpy as np

    from switchssm.inference import posterior_sample, smooth
    from switchssm.models import sample
    from switchssm.plots import plot_posterior

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    params = _demo_params()
    key = jax.random.PRNGKey(args.seed)
    k1, k2 = jax.random.split(key)
    y, u, s, z = sample(k1, params, args.num_timesteps)
    print(f"sampled T={args.num_timesteps} steps from the built-in model (K=3, rho=0.05, cue)")
    post = smooth(params, y, u)
    paths_s, _ = posterior_sample(k2, params, y, u, num_samples=200)
    s_np = np.asarray(s)
    acc_map = float(np.mean(np.argmax(np.asarray(post.smoothed_s), 1) == s_np))
    acc_filter = float(np.mean(np.argmax(np.asarray(post.filtered_s), 1) == s_np))
    acc_paths = float(np.mean(np.asarray(paths_s) == s_np[None]))
    metrics = {
        "num_timesteps": args.num_timesteps,
        "log_likelihood": float(post.log_likelihood),
        "log_likelihood_per_step": float(post.log_likelihood) / args.num_timesteps,
        "state_accuracy_smoothed_map": acc_map,
        "state_accuracy_filtered_map": acc_filter,
        "state_accuracy_posterior_samples": acc_paths,
        "num_true_switches": int(np.sum(np.asarray(z))),
        "expected_switches_smoothed": float(np.sum(np.asarray(post.smoothed_z))),
    }
    plot_posterior(
        post, y, u, s, z, title="switchssm demo: exact smoother", path=out / "posterior.png"
    )
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    lines = [
        "# switchssm demo report",
        "",
        "Data sampled from the built-in switching model (K = 3 states, categorical "
        "emission over 4 symbols, switch probability 0.05, Gaussian cue on the switch); "
        "exact forward-backward smoothing and posterior path sampling.",
        "",
        "| metric | value |",
        "|---|---|",
        *[
            f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |"
            for k, v in metrics.items()
        ],
        "",
        "![posterior](posterior.png)",
        "",
    ]
    (out / "report.md").write_text("\n".join(lines))
    for k, v in metrics.items():
        print(f"  {k:34s} {v:.4g}" if isinstance(v, float) else f"  {k:34s} {v}")
    print(
        f"report written to {out}/ (report.md, posterior.png, metrics.json) "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    return 0


def cmd_verify(args) -> int:
    """Run every identity and approximation; print a table; non-zero exit on a failed exact."""
    import jax

    jax.config.update("jax_enable_x64", True)
    from switchssm.bridges.verify import format_table, run_all_checks

    t0 = time.perf_counter()
    rows = run_all_checks(seed=args.seed)
    print(format_table(rows))
    failed = [c for c in rows if c.kind == "exact" and not c.passed]
    n_exact = sum(c.kind == "exact" for c in rows)
    print(
        f"\n{n_exact - len(failed)}/{n_exact} exact identities hold; "
        f"{len(rows) - n_exact} approximations reported ({time.perf_counter() - t0:.1f} s)"
    )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps([c.as_dict() for c in rows], indent=2) + "\n")
        print(f"table written to {args.json}")
    if args.figure:
        from switchssm.bridges.high_mi import mi_sweep
        from switchssm.plots.curves import plot_mi_curve

        Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
        plot_mi_curve(mi_sweep(), path=args.figure)
        print(f"mutual-information figure written to {args.figure}")
    for c in failed:
        print(f"FAILED: {c.name}: {c.statement} ({c.metric} = {c.error:.3g})", file=sys.stderr)
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="switchssm",
        description="Switching state-space models and the RNNs that compute their posteriors.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="run the main job on built-in data and write a report")
    d.add_argument("--out", default="switchssm-report", help="report folder")
    d.add_argument("--num-timesteps", type=int, default=2000, help="sequence length")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=cmd_demo)
    v = sub.add_parser("verify", help="check every claimed identity and approximation")
    v.add_argument("--json", default=None, help="write the table as JSON to this path")
    v.add_argument("--figure", default=None, help="write the mutual-information curve (PNG)")
    v.add_argument("--seed", type=int, default=0)
    v.set_defaults(func=cmd_verify)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "num_timesteps", 1) is not None and getattr(args, "num_timesteps", 1) < 1:
        print("error: --num-timesteps must be a positive integer", file=sys.stderr)
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
