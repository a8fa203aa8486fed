"""``switchssm`` command line: ``demo`` runs the main job on built-in data.

Subcommands read inputs, call the library, and write a report folder; they hold no
numerics of their own.
"""

from __future__ import annotations

import argparse
import json
import logging
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
    k_data, k_fit, k_post, k_train, k_bayes = jax.random.split(key, 5)
    true = _demo_params()
    T, N = args.num_timesteps, args.num_sequences
    seqs = sample_dataset(k_data, true, [T] * N)
    ys = [q[0] for q in seqs]
    us = [q[1] for q in seqs]
    ss = [q[2] for q in seqs]
    zs = [q[3] for q in seqs]
    n_test = max(1, N // 4)
    print(
        f"[1/7] data: {N} sequences of T={T} from the built-in switching model "
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
        f"[2/7] EM fit: log-likelihood {float(fit.log_likelihood):.1f}, max parameter "
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
        f"[3/7] held-out inference: exact log-lik {ll_test:.1f}, VMP ELBO {elbo_test:.1f}; "
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
        f"[4/7] minGRU trained on the latent: held-out accuracy {acc_cell:.3f} "
        f"(exact filter {acc_filter:.3f}); probe R^2 to the exact filter "
        f"{report.probe_r2:.3f}, readout KL {report.readout_kl:.3f} nats; minGRU built from "
        f"the fitted model: probe R^2 {report_direct.probe_r2:.3f}"
    )

    bayes = None
    if not args.skip_bayes:
        from switchssm.inference import fit_svi, to_switching_params

        n_bayes = min(4, N - n_test)
        svi = fit_svi(
            ys[:n_bayes], us[:n_bayes], num_states=3, cue=True, num_steps=args.bayes_steps,
            num_posterior_samples=200, key=k_bayes, progress=not args.quiet,
        )  # fmt: skip
        written = _write_bayes(out, svi.idata)
        med = to_switching_params(svi.params_median)
        bayes = {
            "method": "svi (auto_normal guide, exact marginal likelihood)",
            "num_sequences": n_bayes,
            "num_steps": args.bayes_steps,
            "final_elbo": float(
                -np.mean(np.asarray(svi.losses)[-max(1, args.bayes_steps // 10) :])
            ),
            "switch_prob_median": float(med.switch_prob),
            "switch_prob_sd": float(written["summary"].loc["switch_prob", "sd"]),
            "summary": json.loads(written["summary"].to_json(orient="index")),
        }
        print(
            f"[5/7] Bayesian step: SVI ({args.bayes_steps} steps) on {n_bayes} sequences, "
            f"switch probability {bayes['switch_prob_median']:.3f} +- "
            f"{bayes['switch_prob_sd']:.3f} (true {float(true.switch_prob):.3f}); "
            "posterior.nc written"
        )
    else:
        print("[5/7] Bayesian step skipped (--skip-bayes)")

    verify_rows = []
    if not args.skip_verify:
        from switchssm.bridges.verify import format_table, run_all_checks

        verify_rows = run_all_checks(seed=args.seed)
        (out / "verify.md").write_text(format_table(verify_rows) + "\n")
        n_ex = sum(c.kind == "exact" for c in verify_rows)
        n_ok = sum(c.kind == "exact" and c.passed for c in verify_rows)
        print(
            f"[6/7] verification: {n_ok}/{n_ex} exact identities hold, "
            f"{len(verify_rows) - n_ex} approximations reported (verify.md)"
        )
    else:
        print("[6/7] verification skipped (--skip-verify)")

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
        "bayes": bayes,
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
    if bayes is not None:
        lines += [
            "## Bayesian step (SVI)",
            "",
            f"Variational posterior over the parameters (mean-field normal guide, "
            f"{bayes['num_steps']} Adam steps, the discrete chain summed out exactly) on the "
            f"first {bayes['num_sequences']} training sequences; 200 guide draws in "
            "`posterior.nc` (ArviZ InferenceData, NetCDF). State labels are those of the "
            "SVI fit (not matched to the true states).",
            "",
            (out / "posterior_summary.md").read_text(),
        ]
    if verify_rows:
        lines += ["## Verification", "", format_table(verify_rows), ""]
    (out / "report.md").write_text("\n".join(lines))
    print(
        f"[7/7] report written to {out}/ (report.md, metrics.json, fit.npz, PNG figures"
        f"{', posterior.nc' if bayes else ''}"
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


# --------------------------------------------------------------------------------------
# fit / compare on user data


class _UserError(Exception):
    """A problem with the user's input: printed as one line, exit code 2, no traceback."""


def _error(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 2


def _read_user_data(path, emission: str):
    """``(ys, us, ids, ss)`` from a CSV/NPY file, shaped for ``emission``; _UserError if bad.

    ``ss`` is the list of known latent-state arrays (CSV column ``s``) or ``None``.
    """
    import numpy as np

    from switchssm.data import read_dataset

    try:
        data = read_dataset(path)
    except ValueError as exc:
        raise _UserError(str(exc)) from None
    if emission == "categorical":
        for i, y in enumerate(data.y):
            if y.dtype.kind != "i":
                raise _UserError(
                    f"'{path}': categorical observations must be integer symbols 0, 1, ...; "
                    f"sequence {data.ids[i]!r} holds non-integer values (use --emission "
                    "gaussian for real-valued data)"
                )
            if y.min() < 0:
                raise _UserError(
                    f"'{path}': categorical symbols must be >= 0; sequence {data.ids[i]!r} "
                    f"holds {int(y.min())}"
                )
        ys = [y.astype(np.int64) for y in data.y]
    else:
        ys = [y.astype(np.float64)[:, None] for y in data.y]
    return ys, data.u, data.ids, data.s


def _markdown_table(df) -> str:
    """A pandas DataFrame as a GitHub Markdown table (no tabulate dependency)."""
    cols = [str(c) for c in df.columns]
    lines = ["| | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for idx, row in df.iterrows():
        cells = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.tolist()]
        lines.append(f"| {idx} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _summary_var_names(idata) -> list[str]:
    """The model's parameters in an InferenceData posterior (not internal coordinates)."""
    internal = {"means_ordered", "means_rest", "stddevs", "corr_cholesky"}
    return [v for v in idata.posterior.data_vars if v not in internal]


def _write_bayes(out: Path, idata, summary=None) -> dict:
    """Write ``posterior.nc`` and the ArviZ summary (CSV + Markdown); return file names."""
    from switchssm import _arviz
    from switchssm.inference import save_inference_data

    if summary is None:
        # one chain (SVI draws): r_hat is undefined (NaN); silence ArviZ's log line saying so
        log = logging.getLogger("arviz")
        level = log.level
        log.setLevel(logging.ERROR)
        try:
            summary = _arviz.summary(idata, var_names=_summary_var_names(idata))
        finally:
            log.setLevel(level)
    save_inference_data(idata, out / "posterior.nc")
    summary.to_csv(out / "posterior_summary.csv")
    (out / "posterior_summary.md").write_text(_markdown_table(summary) + "\n")
    return {
        "summary": summary,
        "files": ["posterior.nc", "posterior_summary.csv", "posterior_summary.md"],
    }


def _params_dict(params) -> dict:
    import numpy as np

    em = params.emission
    d = {
        "initial_probs": np.asarray(params.initial_probs).tolist(),
        "switch_prob": float(params.switch_prob),
        "gated": bool(params.gated),
    }
    if hasattr(em, "probs"):
        d["emission_probs"] = np.asarray(em.probs).tolist()
    else:
        d["emission_means"] = np.asarray(em.means).tolist()
        d["emission_cov"] = np.asarray(em.cov).tolist()
    if params.cue is not None:
        d["cue_means"] = np.asarray(params.cue.means).tolist()
        d["cue_scale"] = np.asarray(params.cue.scale).tolist()
    return d


def _bayes_point_fit(method, params, ys, us, bayes_info: dict):
    """A :class:`FitResult` at a posterior point estimate (so ``fit.npz`` is uniform)."""
    import numpy as np

    from switchssm.inference import FitResult, batch_log_likelihood

    ll = float(np.sum(np.asarray(batch_log_likelihood(params, ys, us))))
    lengths = [int(len(y)) for y in ys]
    md = {
        "method": method,
        "num_states": int(params.num_states),
        "emission": "categorical" if hasattr(params.emission, "probs") else "gaussian",
        "gated": bool(params.gated),
        "cue": params.cue is not None,
        "num_sequences": len(ys),
        "lengths": lengths,
        "num_timesteps": int(sum(lengths)),
        **bayes_info,
    }
    return FitResult(
        params, ll, np.array([[ll]]), np.array([bool(bayes_info["converged"])]), np.array([ll]), md
    )


def cmd_fit(args) -> int:
    """Fit a switching model to a user's CSV/NPY file and write the fit, a summary and figures."""
    import jax
    import numpy as np

    jax.config.update("jax_enable_x64", True)
    from switchssm.inference import fit_em, fit_mle, fit_nuts, fit_svi, smooth, to_switching_params
    from switchssm.io import save_fit
    from switchssm.plots import plot_posterior

    t0 = time.perf_counter()
    try:
        ys, us, ids, ss = _read_user_data(args.data, args.emission)
    except _UserError as exc:
        return _error(str(exc))
    cue = us is not None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    key = jax.random.PRNGKey(args.seed)
    n_steps = sum(len(y) for y in ys)
    print(
        f"[1/3] data: {len(ys)} sequence(s), {n_steps} steps from {args.data}"
        f"{' with a cue column u' if cue else ''}"
        f"{' (latent column s not used by the fit)' if ss is not None else ''}; fitting "
        f"K={args.num_states} "
        f"({args.emission}{', gated' if args.gated else ''}) by {args.method}"
    )
    common = dict(num_states=args.num_states, emission=args.emission, gated=args.gated, cue=cue)
    bayes = None
    try:
        if args.method in ("em", "mle"):
            kw = dict(num_restarts=args.restarts, key=key, progress=not args.quiet, **common)
            if args.method == "em":
                fit = fit_em(ys, us, num_iters=args.iters or 100, **kw)
            else:
                fit = fit_mle(ys, us, num_steps=args.iters or 500, **kw)
        elif args.method == "nuts":
            res = fit_nuts(
                ys, us, num_warmup=args.num_warmup, num_samples=args.num_samples,
                num_chains=args.num_chains, key=key, progress=not args.quiet, **common,
            )  # fmt: skip
            mean = {k: np.mean(v, axis=0) for k, v in res.samples.items()}
            rhat = float(np.nanmax(res.summary["r_hat"].to_numpy()))
            info = {
                "point_estimate": "posterior mean (relabeled draws)",
                "num_warmup": args.num_warmup,
                "num_samples": args.num_samples,
                "num_chains": args.num_chains,
                "max_r_hat": rhat if np.isfinite(rhat) else None,
                "converged": bool(np.isfinite(rhat) and rhat < 1.05),
            }
            fit = _bayes_point_fit("nuts", to_switching_params(mean, gated=args.gated), ys, us,
                                   info)  # fmt: skip
            bayes = (res.idata, res.summary)
        else:
            res = fit_svi(
                ys, us, num_steps=args.iters or 2000, num_posterior_samples=args.num_samples,
                key=key, progress=not args.quiet, **common,
            )  # fmt: skip
            losses = np.asarray(res.losses)
            w = max(1, len(losses) // 10)
            tail = float(losses[-w:].mean())
            prev = float(losses[-2 * w : -w].mean()) if len(losses) >= 2 * w else np.nan
            info = {
                "point_estimate": "guide median",
                "num_steps": int(len(losses)),
                "final_elbo": float(-tail),
                "converged": bool(abs(tail - prev) <= 1e-3 * max(abs(tail), 1.0)),
            }
            fit = _bayes_point_fit("svi", to_switching_params(res.params_median, gated=args.gated),
                                   ys, us, info)  # fmt: skip
            bayes = (res.idata, None)
    except ValueError as exc:
        return _error(f"cannot fit '{args.data}': {exc}")
    save_fit(out / "fit.npz", fit)
    files = ["fit.npz", "fit.json", "posterior.png"]
    print(
        f"[2/3] {args.method} fit: log-likelihood {fit.log_likelihood:.2f} "
        f"({fit.log_likelihood / n_steps:.4f} per step), switch probability "
        f"{float(fit.params.switch_prob):.4f}"
    )
    bayes_summary = None
    if bayes is not None:
        written = _write_bayes(out, *bayes)
        files += written["files"]
        bayes_summary = json.loads(written["summary"].to_json(orient="index"))
    post = smooth(fit.params, ys[0], None if us is None else us[0])
    plot_posterior(
        post, ys[0], None if us is None else us[0],
        title=f"smoothed posterior, sequence {ids[0]!r} ({args.method} fit)",
        path=out / "posterior.png",
    )  # fmt: skip
    summary = {
        "data": str(args.data),
        "method": args.method,
        "num_states": args.num_states,
        "emission": args.emission,
        "gated": args.gated,
        "cue": cue,
        "num_sequences": len(ys),
        "sequence_ids": ids,
        "num_timesteps": n_steps,
        "log_likelihood": fit.log_likelihood,
        "log_likelihood_per_step": fit.log_likelihood / n_steps,
        "converged": np.asarray(fit.converged).tolist(),
        "params": _params_dict(fit.params),
        "metadata": fit.metadata,
        "posterior_summary": bayes_summary,
        "files": files,
        "seconds": time.perf_counter() - t0,
    }
    (out / "fit.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    print(f"[3/3] written to {out}/: {', '.join(files)} ({time.perf_counter() - t0:.0f} s)")
    return 0


def _training_windows(xs, targets, window: int):
    """Cut sequences into pieces of at most ``window`` steps (>= 2 steps each) for training.

    Returns the input pieces, the target pieces and each piece's ``(sequence, start, stop)``.
    """
    px, pt, spans = [], [], []
    for i, (x, t) in enumerate(zip(xs, targets, strict=True)):
        for a in range(0, len(x), window):
            if len(x) - a >= 2:
                px.append(x[a : a + window])
                pt.append(t[a : a + window])
                spans.append((i, a, min(a + window, len(x))))
    return px, pt, spans


def _match_latent_labels(posteriors, ss, K: int):
    """Hungarian matching of the true latent ids to the fitted model's states.

    The confusion ``C[k, j] = sum_t 1[s_t = k] P(s_t = j | y)`` (summed over all steps of all
    sequences) is maximized over one-to-one assignments. Returns ``(to_fitted, C)`` with
    ``to_fitted[k]`` the fitted state matched to true state ``k``.
    """
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    C = np.zeros((K, K))
    for p, s in zip(posteriors, ss, strict=True):
        np.add.at(C, np.asarray(s), np.asarray(p))
    rows, cols = linear_sum_assignment(C, maximize=True)
    to_fitted = np.empty(K, dtype=np.int64)
    to_fitted[rows] = cols
    return to_fitted, C


def _matched_accuracy(posteriors, targets) -> float:
    """Fraction of all steps where the posterior's argmax equals the (matched) target."""
    import numpy as np

    hits = np.concatenate(
        [np.argmax(np.asarray(p), -1) == t for p, t in zip(posteriors, targets, strict=True)]
    )
    return float(np.mean(hits))


def _pad_stack(arrays):
    import numpy as np

    T = max(len(a) for a in arrays)
    out = np.zeros((len(arrays), T, *arrays[0].shape[1:]), dtype=np.float64)
    for i, a in enumerate(arrays):
        out[i, : len(a)] = a
    return out


def cmd_compare(args) -> int:
    """Exact filter and VMP under a saved fit vs a cell trained on the same data."""
    import jax
    import numpy as np

    jax.config.update("jax_enable_x64", True)
    from switchssm.bridges import model_inputs
    from switchssm.compare import compare_posteriors, direct_route_states
    from switchssm.inference import smooth, vmp_smooth
    from switchssm.io import load_fit
    from switchssm.plots import plot_posterior_vs_states, plot_switch_vs_gates
    from switchssm.rnn import hidden_states, predict, train_cell
    from switchssm.rnn.train import update_gates

    t0 = time.perf_counter()
    try:
        fit = load_fit(args.fit)
    except (ValueError, FileNotFoundError) as exc:
        return _error(f"cannot load the fit: {exc}")
    params = fit.params
    emission = "categorical" if hasattr(params.emission, "probs") else "gaussian"
    try:
        ys, us, ids, ss = _read_user_data(args.data, emission)
        K = params.num_states
        target = args.target or ("latent" if ss is not None else "next")
        if target == "latent" and ss is None:
            npy = str(args.data).lower().endswith(".npy")
            where = "a .npy file carries none" if npy else "the file has no 's' column"
            raise _UserError(
                f"'{args.data}': --target latent needs the known latent state of every step, "
                f"a CSV column 's' ({where}); use --target next"
            )
        if ss is not None:
            for i, s in enumerate(ss):
                if int(s.max()) >= K:
                    raise _UserError(
                        f"'{args.data}': column 's' of sequence {ids[i]!r} holds latent state "
                        f"{int(s.max())}, outside the fit's states 0..{K - 1} (K = {K})"
                    )
        if params.cue is not None and us is None:
            raise _UserError(
                f"'{args.data}': the fit has a cue, so the data need a 'u' column (CSV)"
            )
        if params.cue is None:
            us = None  # a cue column the model does not use is ignored
        if emission == "categorical":
            V = params.emission.num_symbols
            top = max(int(y.max()) for y in ys)
            if top >= V:
                raise _UserError(f"'{args.data}': symbol {top} is outside the fit's 0..{V - 1}")
        elif ys[0].shape[1] != params.emission.dim:
            raise _UserError(
                f"'{args.data}': one value per step, the fit's emission has dimension "
                f"{params.emission.dim}"
            )
    except _UserError as exc:
        return _error(str(exc))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    key = jax.random.PRNGKey(args.seed)
    u_of = (lambda i: None) if us is None else (lambda i: us[i])
    lengths = [len(y) for y in ys]
    print(
        f"[1/4] data: {len(ys)} sequence(s), {sum(lengths)} steps"
        f"{', known latent s' if ss is not None else ''}; fit: K={K}, {emission}; "
        f"cell target: {'the latent s_t' if target == 'latent' else 'y_(t+1)'}"
    )

    exact = [smooth(params, y, u_of(i)) for i, y in enumerate(ys)]
    vmp = [vmp_smooth(params, y, u_of(i)) for i, y in enumerate(ys)]
    ll = float(sum(float(p.log_likelihood) for p in exact))
    elbo = float(sum(float(v.elbo) for v in vmp))
    vmp_err_s = float(
        max(np.max(np.abs(np.asarray(v.smoothed_s) - np.asarray(p.smoothed_s)))
            for p, v in zip(exact, vmp, strict=True))
    )  # fmt: skip
    agree = float(
        np.mean(np.concatenate([
            np.argmax(np.asarray(v.smoothed_s), 1) == np.argmax(np.asarray(p.smoothed_s), 1)
            for p, v in zip(exact, vmp, strict=True)
        ]))
    )  # fmt: skip
    latent = None
    if ss is not None:
        # the fitted model numbers its states arbitrarily: match them to the true ids
        to_fitted, confusion = _match_latent_labels([p.smoothed_s for p in exact], ss, K)
        s_fitted = [to_fitted[s] for s in ss]  # true latent in the fitted model's labels
        latent = {
            "column": "s",
            "label_matching": "Hungarian (scipy linear_sum_assignment, maximized) on the "
            "confusion C[k, j] = sum_t 1[s_t = k] P(s_t = j | y_1:T) of the exact smoother, "
            "all sequences",
            "true_to_fitted": to_fitted.tolist(),
            "confusion": confusion.tolist(),
            "exact_smoother_accuracy": _matched_accuracy([p.smoothed_s for p in exact], s_fitted),
            "exact_filter_accuracy": _matched_accuracy([p.filtered_s for p in exact], s_fitted),
            "vmp_smoother_accuracy": _matched_accuracy([v.smoothed_s for v in vmp], s_fitted),
        }
    print(
        f"[2/4] exact log-likelihood {ll:.2f}, VMP ELBO {elbo:.2f} (gap {ll - elbo:.3f} nats); "
        f"VMP vs exact smoother: max |dP(s)| {vmp_err_s:.3f}, argmax agreement {agree:.3f}"
        + (
            ""
            if latent is None
            else f"; accuracy on the known latent (labels matched): exact smoother "
            f"{latent['exact_smoother_accuracy']:.3f}, filter {latent['exact_filter_accuracy']:.3f}"
        )
    )

    xs = [np.asarray(model_inputs(params, y, u_of(i))) for i, y in enumerate(ys)]
    if target == "latent":
        targets = s_fitted
        task, num_classes = "latent", K
    else:
        targets = [y if emission == "categorical" else y.astype(np.float64) for y in ys]
        task = "next_observation"
        num_classes = params.emission.num_symbols if emission == "categorical" else None
    wx, wt, spans = _training_windows(xs, targets, args.window)
    if len(wx) < 2:
        return _error(
            f"'{args.data}': too little data to train a cell (need at least 4 steps in all)"
        )
    trained = train_cell(
        key, args.cell, wx, wt,
        task=task,
        hidden_dim=args.hidden_dim,
        num_classes=num_classes,
        num_steps=args.train_steps,
        learning_rate=1e-2,
        progress=not args.quiet,
    )  # fmt: skip
    H = hidden_states(trained, xs)
    G = update_gates(trained, xs)
    P = _pad_stack([np.asarray(p.filtered_s) for p in exact])
    Q = np.asarray(predict(trained, xs)) if target == "latent" else None
    report = compare_posteriors(P, H, readout_probs=Q, lengths=lengths)
    held = ", ".join(f"{k} {v:.4g}" for k, v in trained.metrics.items() if not k.startswith("num_"))
    if target == "latent":
        # the exact filter on the cell's held-out steps (the filter has seen the whole
        # sequence up to t, the cell only its window)
        val = [spans[j] for j in np.asarray(trained.split.val_index)]
        latent["cell_heldout_accuracy"] = float(trained.metrics["accuracy"])
        latent["exact_filter_heldout_accuracy"] = _matched_accuracy(
            [np.asarray(exact[i].filtered_s)[a:b] for i, a, b in val],
            [s_fitted[i][a:b] for i, a, b in val],
        )
        print(
            f"[3/4] {args.cell} trained on the known latent ({args.train_steps} steps): "
            f"held-out accuracy {latent['cell_heldout_accuracy']:.3f} (exact filter on the "
            f"same steps {latent['exact_filter_heldout_accuracy']:.3f}), held-out {held}; "
            f"probe R^2 to the exact filter {report.probe_r2:.3f}, readout KL from it "
            f"{report.readout_kl:.4f} nats"
        )
    else:
        print(
            f"[3/4] {args.cell} trained on next-observation prediction ({args.train_steps} "
            f"steps, held-out {held}); probe R^2 to the exact filter {report.probe_r2:.3f}"
        )
    direct = _pad_stack(
        [np.asarray(direct_route_states(params, [y], None if us is None else [us[i]]))[0]
         for i, y in enumerate(ys)]
    )  # fmt: skip
    report_direct = compare_posteriors(P, direct, lengths=lengths)
    Z = _pad_stack([np.asarray(p.filtered_z) for p in exact])
    mean_gate = G.mean(-1)
    mask = np.arange(P.shape[1])[None, :] < np.asarray(lengths)[:, None]
    zc, gc = Z[mask], mean_gate[mask]
    gate_r = float(np.corrcoef(zc, gc)[0, 1]) if zc.std() > 0 and gc.std() > 0 else None

    T0 = lengths[0]
    plot_posterior_vs_states(
        P[0, :T0], H[0, :T0],
        title=f"exact filter vs trained {args.cell} states, sequence {ids[0]!r}",
        path=out / "posterior_vs_states.png",
    )  # fmt: skip
    plot_switch_vs_gates(
        Z[0, :T0], G[0, :T0],
        title=f"switch posterior vs {args.cell} update gates, sequence {ids[0]!r}",
        path=out / "switch_vs_gates.png",
    )  # fmt: skip
    files = ["compare.json", "posterior_vs_states.png", "switch_vs_gates.png"]
    result = {
        "data": str(args.data),
        "fit": str(args.fit),
        "num_sequences": len(ys),
        "lengths": lengths,
        "num_states": K,
        "emission": emission,
        "exact_log_likelihood": ll,
        "vmp_elbo": elbo,
        "vmp_vs_exact_smoothed_s_max_abs": vmp_err_s,
        "vmp_vs_exact_argmax_agreement": agree,
        "cell": args.cell,
        "target": target,
        "task": task,
        "train_steps": args.train_steps,
        "hidden_dim": args.hidden_dim,
        "cell_heldout_metrics": trained.metrics,
        "trained_cell_vs_exact_filter": report.to_dict(),
        "model_built_mingru_vs_exact_filter": report_direct.to_dict(),
        "switch_posterior_vs_mean_gate_correlation": gate_r,
        "latent": latent,
        "files": files,
        "seconds": time.perf_counter() - t0,
    }
    (out / "compare.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(
        f"[4/4] model-built minGRU probe R^2 {report_direct.probe_r2:.3f}; switch posterior vs "
        f"mean gate r = {gate_r if gate_r is None else round(gate_r, 3)}; written to {out}/: "
        f"{', '.join(files)} ({time.perf_counter() - t0:.0f} s)"
    )
    return 0


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
    d.add_argument("--bayes-steps", type=int, default=300, help="SVI steps of the Bayesian step")
    d.add_argument(
        "--skip-bayes", action="store_true", help="skip the Bayesian step (SVI, posterior.nc)"
    )
    f = sub.add_parser(
        "fit",
        help="fit a switching model to a CSV/NPY file",
        description="Fit a switching model to sequences in a .csv (header row; columns y, "
        "optional u and sequence; a known-latent column s is allowed and used only by "
        "`compare`) or .npy ((T,) or (N, T)) file. Writes fit.npz, fit.json, posterior.png "
        "and, for nuts/svi, posterior.nc with its ArviZ summary.",
    )
    f.add_argument("data", help="observations: .csv or .npy")
    f.add_argument("--num-states", type=int, required=True, help="number of states K")
    f.add_argument("--emission", choices=("categorical", "gaussian"), default="categorical")
    f.add_argument("--gated", action="store_true", help="gated emission")
    f.add_argument("--method", choices=("em", "mle", "nuts", "svi"), default="em")
    f.add_argument("--out", default="switchssm-fit", help="output folder")
    f.add_argument(
        "--iters", type=int, default=None,
        help="EM iterations (100) / MLE Adam steps (500) / SVI steps (2000)",
    )  # fmt: skip
    f.add_argument("--restarts", type=int, default=5, help="restarts (em, mle)")
    f.add_argument("--num-warmup", type=int, default=500, help="NUTS warm-up per chain")
    f.add_argument(
        "--num-samples", type=int, default=500, help="NUTS draws per chain / SVI guide draws"
    )
    f.add_argument("--num-chains", type=int, default=2, help="NUTS chains")
    f.add_argument("--quiet", action="store_true", help="no progress bars")
    f.add_argument("--seed", type=int, default=0)
    f.set_defaults(func=cmd_fit)
    c = sub.add_parser(
        "compare",
        help="exact filter and VMP under a saved fit vs a trained RNN cell",
        description="Run the exact filter/smoother and VMP of a saved fit on the data, train "
        "an RNN cell on next-observation prediction or on the known latent, and compare its "
        "states with the posterior. A CSV file may carry the known latent state of each step "
        "in a column 's' (integers 0..K-1, K the fit's number of states); the fitted model's "
        "state labels are then matched to it (Hungarian matching on the posterior-vs-truth "
        "confusion) and the exact posterior's accuracy on it is reported. Writes "
        "compare.json, posterior_vs_states.png and switch_vs_gates.png.",
    )
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
    c.add_argument("--train-steps", type=int, default=400, help="training steps")
    c.add_argument("--hidden-dim", type=int, default=8, help="cell width")
    c.add_argument(
        "--window", type=int, default=200, help="training windows of at most this many steps"
    )
    c.add_argument("--out", default="switchssm-compare", help="output folder")
    c.add_argument("--quiet", action="store_true", help="no progress bars")
    c.add_argument("--seed", type=int, default=0)
    c.set_defaults(func=cmd_compare)
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
    for name, low in (
        ("num_timesteps", 1),
        ("num_sequences", 2),
        ("train_steps", 1),
        ("em_iters", 1),
        ("bayes_steps", 1),
        ("num_states", 1),
        ("iters", 1),
        ("restarts", 1),
        ("num_warmup", 0),
        ("num_samples", 1),
        ("num_chains", 1),
        ("hidden_dim", 1),
        ("window", 2),
    ):
        value = getattr(args, name, None)
        if value is not None and value < low:
            flag = "--" + name.replace("_", "-")
            print(f"error: {flag} must be an integer >= {low}, got {value}", file=sys.stderr)
            return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
