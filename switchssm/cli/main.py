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


def _match_states(true_params, fitted):
    """Hungarian matching of fitted to true states on emission distance."""
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    a = np.asarray(true_params.emission.probs)
    b = np.asarray(fitted.emission.probs)
    cost = np.abs(a[:, None, :] - b[None, :, :]).sum(-1)
    _, perm = linear_sum_assignment(cost)
    return perm


def cmd_demo(args) -> int:
    """The main job on built-in data: fit, infer (exact and VMP), train a minGRU, compare,
    verify, and write a report folder."""
    import jax
    import numpy as np

    jax.config.update("jax_enable_x64", True)
    from switchssm.bridges import model_inputs
    from switchssm.compare import compare_posteriors, direct_route_states
    from switchssm.data import sample_dataset
    from switchssm.inference import fit_em, posterior_sample, smooth, vmp_smooth
    from switchssm.io import save_fit
    from switchssm.plots import plot_posterior, plot_posterior_vs_states
    from switchssm.rnn import hidden_states, predict, train_cell

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    key = jax.random.PRNGKey(args.seed)
    k_data, k_fit, k_post, k_train = jax.random.split(key, 4)
    true = _demo_params()
    T, N = args.num_timesteps, args.num_sequences
    seqs = sample_dataset(k_data, true, [T] * N)
    ys = [q[0] for q in seqs]
    us = [q[1] for q in seqs]
    ss = [q[2] for q in seqs]
    zs = [q[3] for q in seqs]
    n_test = max(1, N // 4)
    print(
        f"[1/6] data: {N} sequences of T={T} from the built-in switching model "
        f"(K=3, 4 symbols, rho=0.05, Gaussian cue); {n_test} held out"
    )

    fit = fit_em(
        ys[:-n_test],
        us[:-n_test],
        num_states=3,
        emission="categorical",
        cue=True,
        num_iters=args.em_iters,
        num_restarts=3,
        key=k_fit,
        progress=not args.quiet,
    )
    est = fit.params
    perm = _match_states(true, est)
    err = {
        "initial_probs": float(
            np.max(np.abs(np.asarray(est.initial_probs)[perm] - np.asarray(true.initial_probs)))
        ),
        "emission_probs": float(
            np.max(np.abs(np.asarray(est.emission.probs)[perm] - np.asarray(true.emission.probs)))
        ),
        "switch_prob": float(abs(float(est.switch_prob) - float(true.switch_prob))),
    }
    save_fit(out / "fit.npz", fit)
    print(
        f"[2/6] EM fit: log-likelihood {float(fit.log_likelihood):.1f}, max parameter "
        f"errors after state matching {', '.join(f'{k} {v:.3f}' for k, v in err.items())}"
    )

    test_y, test_u, test_s = ys[-n_test:], us[-n_test:], ss[-n_test:]
    exact = [smooth(est, y, u) for y, u in zip(test_y, test_u, strict=True)]
    vmp = [vmp_smooth(est, y, u) for y, u in zip(test_y, test_u, strict=True)]
    to_fitted = perm  # perm[true state] = matched fitted state

    def acc(P):
        return float(
            np.mean(
                [
                    np.mean(np.argmax(np.asarray(p), 1) == to_fitted[np.asarray(s)])
                    for p, s in zip(P, test_s, strict=True)
                ]
            )
        )

    ll_test = float(np.sum([float(p.log_likelihood) for p in exact]))
    elbo_test = float(np.sum([float(v.elbo) for v in vmp]))
    acc_filter = acc([p.filtered_s for p in exact])
    acc_smooth = acc([p.smoothed_s for p in exact])
    acc_vmp = acc([v.smoothed_s for v in vmp])
    paths_s, _ = posterior_sample(k_post, est, test_y[0], test_u[0], num_samples=200)
    print(
        f"[3/6] held-out inference: exact log-lik {ll_test:.1f}, VMP ELBO {elbo_test:.1f}; "
        f"state accuracy filter {acc_filter:.3f}, smoother {acc_smooth:.3f}, VMP {acc_vmp:.3f}"
    )

    xs = [np.asarray(model_inputs(est, y, u)) for y, u in zip(ys, us, strict=True)]
    targets = [to_fitted[np.asarray(s)] for s in ss]
    trained = train_cell(
        k_train,
        "mingru",
        np.stack(xs[:-n_test]),
        np.stack(targets[:-n_test]),
        task="latent",
        hidden_dim=8,
        num_classes=3,
        num_steps=args.train_steps,
        learning_rate=1e-2,
        progress=not args.quiet,
    )
    X_test = np.stack(xs[-n_test:])
    H = hidden_states(trained, X_test)
    Q = np.asarray(predict(trained, X_test))
    P = np.stack([np.asarray(p.filtered_s) for p in exact])
    report = compare_posteriors(P, H, readout_probs=Q)
    direct = direct_route_states(est, test_y, test_u)
    report_direct = compare_posteriors(P, np.asarray(direct))
    test_s_matched = np.stack([to_fitted[np.asarray(s)] for s in test_s])
    acc_cell = float(np.mean(np.argmax(Q, -1) == test_s_matched))
    print(
        f"[4/6] minGRU trained on the latent: held-out accuracy {acc_cell:.3f} "
        f"(exact filter {acc_filter:.3f}); probe R^2 to the exact filter "
        f"{report.probe_r2:.3f}, readout KL {report.readout_kl:.3f} nats; minGRU built from "
        f"the fitted model: probe R^2 {report_direct.probe_r2:.3f}"
    )

    verify_rows = []
    if not args.skip_verify:
        from switchssm.bridges.verify import format_table, run_all_checks

        verify_rows = run_all_checks(seed=args.seed)
        (out / "verify.md").write_text(format_table(verify_rows) + "\n")
        n_ex = sum(c.kind == "exact" for c in verify_rows)
        n_ok = sum(c.kind == "exact" and c.passed for c in verify_rows)
        print(
            f"[5/6] verification: {n_ok}/{n_ex} exact identities hold, "
            f"{len(verify_rows) - n_ex} approximations reported (verify.md)"
        )
    else:
        print("[5/6] verification skipped (--skip-verify)")

    plot_posterior(
        exact[0],
        test_y[0],
        test_u[0],
        to_fitted[test_s[0]],
        zs[-n_test],
        title="exact smoother on a held-out sequence (fitted model)",
        path=out / "posterior.png",
    )
    plot_posterior_vs_states(
        P[0],
        H[0],
        title="exact filter vs trained minGRU states",
        path=out / "posterior_vs_states.png",
    )
    metrics = {
        "num_sequences": N,
        "num_timesteps": T,
        "em_log_likelihood": float(fit.log_likelihood),
        "parameter_errors": err,
        "heldout_log_likelihood": ll_test,
        "heldout_vmp_elbo": elbo_test,
        "state_accuracy": {
            "exact_filter": acc_filter,
            "exact_smoother": acc_smooth,
            "vmp_smoother": acc_vmp,
            "trained_mingru": acc_cell,
            "posterior_samples": float(np.mean(np.asarray(paths_s) == to_fitted[test_s[0]][None])),
        },
        "trained_mingru_vs_exact_filter": report.to_dict(),
        "model_built_mingru_vs_exact_filter": report_direct.to_dict(),
        "verification": [c.as_dict() for c in verify_rows],
        "seconds": time.perf_counter() - t0,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float) + "\n")
    lines = [
        "# switchssm demo report",
        "",
        f"{N} sequences of length {T} sampled from the built-in switching model (K = 3 "
        "states, categorical emission over 4 symbols, switch probability 0.05, Gaussian cue "
        "on the switch); the model is fitted by EM on the first "
        f"{N - n_test} and evaluated on {n_test} held-out sequences.",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| EM log-likelihood (train) | {float(fit.log_likelihood):.2f} |",
        *[f"| max error, {k} (after state matching) | {v:.4f} |" for k, v in err.items()],
        f"| held-out exact log-likelihood | {ll_test:.2f} |",
        f"| held-out VMP ELBO (smoother) | {elbo_test:.2f} |",
        f"| state accuracy: exact filter / smoother / VMP | {acc_filter:.3f} / "
        f"{acc_smooth:.3f} / {acc_vmp:.3f} |",
        f"| state accuracy: trained minGRU | {acc_cell:.3f} |",
        f"| trained minGRU vs exact filter: probe R^2 | {report.probe_r2:.3f} |",
        f"| trained minGRU: readout KL from exact filter (nats) | {report.readout_kl:.4f} |",
        f"| minGRU built from the fitted model: probe R^2 | {report_direct.probe_r2:.3f} |",
        "",
        "![posterior](posterior.png)",
        "",
        "![states](posterior_vs_states.png)",
        "",
    ]
    if verify_rows:
        lines += ["## Verification", "", format_table(verify_rows), ""]
    (out / "report.md").write_text("\n".join(lines))
    print(
        f"[6/6] report written to {out}/ (report.md, metrics.json, fit.npz, PNG figures"
        f"{', verify.md' if verify_rows else ''}) in {time.perf_counter() - t0:.0f} s"
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
    d.add_argument("--num-timesteps", type=int, default=200, help="length of each sequence")
    d.add_argument("--num-sequences", type=int, default=40, help="number of sequences")
    d.add_argument("--em-iters", type=int, default=50, help="EM iterations per restart")
    d.add_argument("--train-steps", type=int, default=400, help="minGRU training steps")
    d.add_argument("--skip-verify", action="store_true", help="skip the verification table")
    d.add_argument("--quiet", action="store_true", help="no progress bars")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=cmd_demo)
    v = sub.add_parser("verify", help="check every claimed identity and approximation")
    v.add_argument("--json", default=None, help="write the table as JSON to this path")
    v.add_argument("--figure", default=None, help="write the mutual-information curve (PNG)")
    v.add_argument("--seed", type=int, default=0)
    v.set_defaults(func=cmd_verify)
    return p


def main(argv=None) -> int:
    import matplotlib

    matplotlib.use("Agg")  # the CLI only writes files; notebooks keep their own backend
    args = build_parser().parse_args(argv)
    for name, low in (("num_timesteps", 1), ("num_sequences", 2), ("train_steps", 1),
                      ("em_iters", 1)):
        value = getattr(args, name, None)
        if value is not None and value < low:
            flag = "--" + name.replace("_", "-")
            print(f"error: {flag} must be an integer >= {low}, got {value}", file=sys.stderr)
            return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
