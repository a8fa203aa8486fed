"""The main job on built-in data, as a library function: :func:`run_demo`.

Samples sequences from a built-in switching model, fits it by EM, runs exact and variational
inference on held-out sequences, builds the cell that computes the fitted model's filter,
trains a minGRU on the same data and compares its states with the exact posterior, samples
the posterior over the parameters with NUTS (started at the EM fit) and runs the
verification table. :func:`write_demo_report` writes the report folder (``switchssm demo``).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any
from typing import NamedTuple

import jax
import numpy as np

from switchssm import _validation as V
from switchssm._markdown import markdown_table
from switchssm.bridges import mingru_from_model
from switchssm.bridges import mingru_posterior
from switchssm.bridges import model_inputs
from switchssm.bridges import selective_from_model
from switchssm.bridges import selective_posterior
from switchssm.bridges.mingru import AlwaysEmittingWarning
from switchssm.compare import ComparisonReport
from switchssm.compare import compare_posteriors
from switchssm.compare import readout_kl
from switchssm.compare.labels import match_states
from switchssm.compare.labels import matched_accuracy
from switchssm.data import sample_dataset
from switchssm.fit import BayesFit
from switchssm.fit import FitResult
from switchssm.fit import fit_em
from switchssm.fit import fit_nuts
from switchssm.inference import posterior_sample
from switchssm.inference import smooth
from switchssm.inference import vmp_smooth
from switchssm.models import CategoricalEmission
from switchssm.models import SwitchingParams
from switchssm.rnn import TrainResult
from switchssm.rnn import hidden_states
from switchssm.rnn import predict
from switchssm.rnn import train_cell
from switchssm.sequences import pad
from switchssm.verify.high_mi import default_mi_params

__all__ = ["DemoResult", "demo_params", "run_demo"]

_BAYES_SEQUENCES = 4  # NUTS runs on this many training sequences (its cost grows with T)
_INTERVAL = 0.9  # posterior interval reported beside the truth


def demo_params() -> SwitchingParams:
    """The built-in model of the demo: K = 3 states, 4 symbols, ``rho = 0.05``, a cue.

    The model of the verification sweeps (:func:`switchssm.verify.default_mi_params`),
    always-emitting, with the cue ``u_t | z_t ~ N(2.5 z_t, 1)`` (separation ``d = 2.5``:
    informative, but the gates are not hard).

    Example:
        >>> demo_params().num_states, round(float(demo_params().switch_prob), 6)
        (3, 0.05)
    """
    return default_mi_params(2.5, gated=False)


class DemoResult(NamedTuple):
    """Everything :func:`run_demo` computed (the numbers, the fits, the figures' data).

    Attributes:
        true_params: the model the data were sampled from.
        sequences: ``[(y, u, s, z)]`` per sequence (NumPy).
        num_heldout: the last ``num_heldout`` sequences are held out.
        fit: the EM :class:`~switchssm.fit.FitResult` on the training sequences.
        true_to_fitted: ``(K,)`` fitted state matched to each true state.
        parameter_errors: max abs errors of ``initial_probs``, ``emission_probs`` (after
            matching) and ``switch_prob``.
        heldout: held-out numbers: ``log_likelihood``, ``vmp_elbo``, ``state_accuracy``
            (``exact_filter``, ``exact_smoother``, ``vmp_smoother``, ``trained_mingru``,
            ``posterior_samples``).
        smoothed: the exact :class:`~switchssm.inference.SmoothPosterior` of every held-out
            sequence.
        trained: the minGRU :class:`~switchssm.rnn.TrainResult`.
        trained_vs_filter: :class:`~switchssm.compare.ComparisonReport` of the trained
            minGRU's held-out states against the exact filter.
        filter_probs, states: ``(N_heldout, T, K)`` exact filter and ``(N_heldout, T, H)``
            trained states (the figure's data).
        built_cell: the cell built from the fitted model (``name``, ``exact_when``,
            ``mean_kl``, ``max_abs_error`` against the exact filter on held-out data).
        bayes: the NUTS :class:`~switchssm.fit.BayesFit` or ``None``.
        bayes_table: one row per parameter: ``parameter``, ``truth``, ``em``, ``mean``,
            ``lower``, ``upper``, ``covered`` (truth inside the 90% interval; labels of the
            EM fit).
        verification: the :class:`~switchssm.verify.Check` rows (empty if skipped).
        seconds: wall time.
    """

    true_params: SwitchingParams
    sequences: list
    num_heldout: int
    fit: FitResult
    true_to_fitted: np.ndarray
    parameter_errors: dict
    heldout: dict
    smoothed: list
    trained: TrainResult
    trained_vs_filter: ComparisonReport
    filter_probs: np.ndarray
    states: np.ndarray
    built_cell: dict
    bayes: BayesFit | None
    bayes_table: list[dict]
    verification: list
    seconds: float


def _built_cell(params: SwitchingParams, xs, P) -> dict:
    """The cells built from the fitted model, run on held-out inputs, against the filter.

    The minGRU (positive states) is the exact filter of a *gated* model at every cue
    strength; the selective diagonal SSM is the exact filter of an *always-emitting* model
    when the gates are hard. The cell of the model's kind is ``name``; both are measured.
    """
    with warnings.catch_warnings():  # an always-emitting model on purpose: measured here
        warnings.simplefilter("ignore", AlwaysEmittingWarning)
        mg = mingru_from_model(params, space="log")
    Q_min = np.stack([np.asarray(mingru_posterior(mg, x)) for x in xs])
    sel = selective_from_model(params)
    Q_sel = np.stack([np.asarray(selective_posterior(sel, x)) for x in xs])
    kl_min, kl_sel = readout_kl(P, Q_min), readout_kl(P, Q_sel)
    if params.gated:
        name, kl, err = "minGRU (positive states)", kl_min, np.max(np.abs(P - Q_min))
        exact = "exact for this gated model at every cue strength"
    else:
        name, kl, err = "selective diagonal SSM", kl_sel, np.max(np.abs(P - Q_sel))
        exact = (
            "exact for an always-emitting model only when the cue makes the gates hard; "
            f"with this cue (separation {float(params.cue.separation):.2g}) neither cell is "
            "exact"
        )
    return {
        "name": name,
        "exact_when": exact,
        "mean_kl": kl,
        "max_abs_error": float(err),
        "mingru_mean_kl": kl_min,
        "selective_mean_kl": kl_sel,
    }


def _bayes_table(bayes: BayesFit, em: SwitchingParams, truth: SwitchingParams) -> list[dict]:
    """Truth (in the EM fit's labels), EM estimate and posterior summary per parameter."""
    lo_q, hi_q = (1 - _INTERVAL) / 2, (1 + _INTERVAL) / 2
    s = bayes.samples
    entries = [("switch_prob", s["switch_prob"], truth.switch_prob, em.switch_prob)]
    for z in range(2):
        entries.append(
            (f"cue_means[{z}]", s["cue_means"][:, z], truth.cue.means[z], em.cue.means[z])
        )
    entries.append(("cue_scale", s["cue_scale"], truth.cue.scale, em.cue.scale))
    for k in range(truth.num_states):
        entries.append(
            (
                f"initial_probs[{k}]",
                s["initial_probs"][:, k],
                truth.initial_probs[k],
                em.initial_probs[k],
            )
        )
    B, Bt, Be = s["emission_probs"], truth.emission.probs, em.emission.probs
    for k in range(B.shape[1]):
        for v in range(B.shape[2]):
            entries.append((f"emission_probs[{k},{v}]", B[:, k, v], Bt[k, v], Be[k, v]))
    rows = []
    for name, draws, t, e in entries:
        draws = np.asarray(draws, dtype=float)
        lo, hi = np.quantile(draws, [lo_q, hi_q])
        t = float(t)
        rows.append(
            {
                "parameter": name,
                "truth": t,
                "em": float(e),
                "mean": float(draws.mean()),
                "lower": float(lo),
                "upper": float(hi),
                "covered": bool(lo <= t <= hi),
            }
        )
    return rows


def _relabel_truth(truth: SwitchingParams, true_to_fitted: np.ndarray) -> SwitchingParams:
    """The true parameters with their states renumbered as the fitted model's."""
    order = np.argsort(true_to_fitted)  # order[j] = the true state matched to fitted j
    return truth.replace(
        initial_probs=np.asarray(truth.initial_probs)[order],
        emission=CategoricalEmission(np.asarray(truth.emission.probs)[order]),
    )


def run_demo(
    *,
    num_timesteps: int = 200,
    num_sequences: int = 40,
    em_iters: int = 50,
    train_steps: int = 400,
    bayes: bool = True,
    num_warmup: int = 300,
    num_samples: int = 300,
    verify: bool = True,
    seed: int = 0,
    progress: bool = True,
    log: Callable[[str], Any] | None = None,
) -> DemoResult:
    """Run the main job on built-in data (module docstring) and return its results.

    Args:
        num_timesteps: length of each sequence.
        num_sequences: number of sequences (a quarter, at least one, held out).
        em_iters: EM iterations per restart (3 restarts).
        train_steps: minGRU training steps.
        bayes: run the Bayesian step (NUTS, 2 chains, on 4 training sequences).
        num_warmup, num_samples: NUTS warm-up and kept draws per chain.
        verify: run the verification table.
        seed: integer seed of everything random.
        progress: show progress bars.
        log: called with one line per finished stage (e.g. ``print``), or ``None``.

    Returns:
        :class:`DemoResult`.
    """
    T = V.check_int(num_timesteps, "num_timesteps", low=2)
    N = V.check_int(num_sequences, "num_sequences", low=2)
    em_iters = V.check_int(em_iters, "em_iters")
    train_steps = V.check_int(train_steps, "train_steps")
    num_warmup = V.check_int(num_warmup, "num_warmup", low=0)
    num_samples = V.check_int(num_samples, "num_samples", low=4)
    seed = V.check_int(seed, "seed", low=0)
    say = log if log is not None else (lambda line: None)
    t0 = time.perf_counter()
    k_data, k_fit, k_post, k_train, k_bayes = jax.random.split(jax.random.PRNGKey(seed), 5)
    true = demo_params()
    seqs = sample_dataset(k_data, true, [T] * N)
    ys, us, ss, zs = (list(a) for a in zip(*seqs, strict=True))
    n_test = max(1, N // 4)
    n_train = N - n_test
    say(
        f"[1/7] data: {N} sequences of T={T} from the built-in switching model (K=3, 4 "
        f"symbols, rho=0.05, Gaussian cue); {n_test} held out"
    )

    fit = fit_em(
        ys[:n_train], us[:n_train], num_states=3, cue=True, num_iters=em_iters,
        num_restarts=3, key=k_fit, progress=progress,
    )  # fmt: skip
    est = fit.params
    perm = match_states(true, est)
    err = {
        "initial_probs": float(
            np.max(np.abs(np.asarray(est.initial_probs)[perm] - np.asarray(true.initial_probs)))
        ),
        "emission_probs": float(
            np.max(np.abs(np.asarray(est.emission.probs)[perm] - np.asarray(true.emission.probs)))
        ),
        "switch_prob": abs(float(est.switch_prob) - float(true.switch_prob)),
    }
    conv = "converged" if fit.converged[fit.metadata["best_restart"]] else "NOT converged"
    say(
        f"[2/7] EM fit ({conv}): log-likelihood {fit.log_likelihood:.1f}, max parameter "
        f"errors after state matching {', '.join(f'{k} {v:.3f}' for k, v in err.items())}"
    )

    test_y, test_u, test_s = ys[n_train:], us[n_train:], ss[n_train:]
    exact = [smooth(est, y, u) for y, u in zip(test_y, test_u, strict=True)]
    vmp = [vmp_smooth(est, y, u) for y, u in zip(test_y, test_u, strict=True)]
    s_fitted = [perm[np.asarray(s)] for s in test_s]  # true latent in the fitted labels
    paths_s, _ = posterior_sample(k_post, est, test_y[0], test_u[0], num_samples=200)
    heldout = {
        "log_likelihood": float(sum(float(p.log_likelihood) for p in exact)),
        "vmp_elbo": float(sum(float(v.elbo) for v in vmp)),
        "state_accuracy": {
            "exact_filter": matched_accuracy([p.filtered_s for p in exact], s_fitted),
            "exact_smoother": matched_accuracy([p.smoothed_s for p in exact], s_fitted),
            "vmp_smoother": matched_accuracy([v.smoothed_s for v in vmp], s_fitted),
            "posterior_samples": float(np.mean(np.asarray(paths_s) == s_fitted[0][None])),
        },
    }
    acc = heldout["state_accuracy"]
    say(
        f"[3/7] held-out inference: exact log-lik {heldout['log_likelihood']:.1f}, VMP ELBO "
        f"{heldout['vmp_elbo']:.1f}; state accuracy filter {acc['exact_filter']:.3f}, "
        f"smoother {acc['exact_smoother']:.3f}, VMP {acc['vmp_smoother']:.3f}"
    )

    xs = [np.asarray(model_inputs(est, y, u)) for y, u in zip(ys, us, strict=True)]
    targets = [perm[np.asarray(s)] for s in ss]
    trained = train_cell(
        k_train, "mingru", np.stack(xs[:n_train]), np.stack(targets[:n_train]), task="latent",
        hidden_dim=8, num_classes=3, num_steps=train_steps, learning_rate=1e-2,
        progress=progress,
    )  # fmt: skip
    X_test = np.stack(xs[n_train:])
    H = hidden_states(trained, X_test)
    Q = np.asarray(predict(trained, X_test))
    P = pad([np.asarray(p.filtered_s) for p in exact])
    report = compare_posteriors(P, H, readout_probs=Q)
    acc["trained_mingru"] = float(np.mean(np.argmax(Q, -1) == np.stack(s_fitted)))
    built = _built_cell(est, xs[n_train:], P)
    say(
        f"[4/7] minGRU trained on the latent: held-out accuracy {acc['trained_mingru']:.3f} "
        f"(exact filter {acc['exact_filter']:.3f}); probe R^2 to the exact filter "
        f"{report.probe_r2:.3f}, readout KL {report.readout_kl:.3f} nats. Cells built from the "
        f"fitted model, mean KL from the exact filter: minGRU {built['mingru_mean_kl']:.2g}, "
        f"selective SSM {built['selective_mean_kl']:.2g} nats ({built['name']}: "
        f"{built['exact_when']})"
    )

    bayes_fit, table = None, []
    if bayes:
        n_b = min(_BAYES_SEQUENCES, n_train)
        bayes_fit = fit_nuts(
            ys[:n_b], us[:n_b], num_states=3, num_warmup=num_warmup, num_samples=num_samples,
            num_chains=2, init=est, key=k_bayes, progress=progress,
        )  # fmt: skip
        table = _bayes_table(bayes_fit, est, _relabel_truth(true, perm))
        d = bayes_fit.metadata["diagnostics"]
        rho = next(r for r in table if r["parameter"] == "switch_prob")
        covered = sum(r["covered"] for r in table)
        status = (
            "converged"
            if bayes_fit.converged
            else "NOT CONVERGED (max r_hat "
            f"{d['max_r_hat']}, {d['num_divergent']} divergences): do not trust these numbers"
        )
        say(
            f"[5/7] Bayesian step: NUTS (2 chains x {num_samples} draws, started at the EM fit) "
            f"on {n_b} sequences, {status}; switch probability {rho['mean']:.3f} "
            f"[{rho['lower']:.3f}, {rho['upper']:.3f}] (90%), EM {rho['em']:.3f}, true "
            f"{rho['truth']:.3f}; truth inside the 90% interval for {covered}/{len(table)} "
            "parameters"
        )
    else:
        say("[5/7] Bayesian step skipped")

    rows = []
    if verify:
        from switchssm.verify import run_all_checks

        rows = run_all_checks(seed=seed)
        n_ex = sum(c.kind == "exact" for c in rows)
        n_ok = sum(c.kind == "exact" and c.passed for c in rows)
        say(
            f"[6/7] verification: {n_ok}/{n_ex} exact identities hold, "
            f"{len(rows) - n_ex} approximations reported"
        )
    else:
        say("[6/7] verification skipped")
    return DemoResult(
        true, seqs, n_test, fit, perm, err, heldout, exact, trained, report, P, H, built,
        bayes_fit, table, rows, time.perf_counter() - t0,
    )  # fmt: skip


def _report_lines(r: DemoResult) -> list[str]:
    N, T = len(r.sequences), len(r.sequences[0][0])
    acc = r.heldout["state_accuracy"]
    best = r.fit.metadata["best_restart"]
    lines = [
        "# switchssm demo report",
        "",
        f"{N} sequences of length {T} sampled from the built-in switching model (K = 3 "
        "states, categorical emission over 4 symbols, switch probability 0.05, Gaussian cue "
        "on the switch, always-emitting); the model is fitted by EM on the first "
        f"{N - r.num_heldout} and evaluated on {r.num_heldout} held-out sequences. State "
        "labels of the fit are matched to the true ones (Hungarian matching on the emission "
        "rows) before any comparison with the truth.",
        "",
        markdown_table(
            [
                {
                    "quantity": "EM log-likelihood (train), converged",
                    "value": f"{r.fit.log_likelihood:.2f}, "
                    f"{'yes' if r.fit.converged[best] else 'NO'}",
                },
                *[
                    {
                        "quantity": f"max error, {k}"
                        f"{' (after state matching)' if k != 'switch_prob' else ''}",
                        "value": f"{v:.4f}",
                    }
                    for k, v in r.parameter_errors.items()
                ],
                {
                    "quantity": "held-out exact log-likelihood",
                    "value": f"{r.heldout['log_likelihood']:.2f}",
                },
                {
                    "quantity": "held-out VMP ELBO (smoother)",
                    "value": f"{r.heldout['vmp_elbo']:.2f}",
                },
                {
                    "quantity": "state accuracy: exact filter / smoother / VMP",
                    "value": f"{acc['exact_filter']:.3f} / {acc['exact_smoother']:.3f} / "
                    f"{acc['vmp_smoother']:.3f}",
                },
                {
                    "quantity": "state accuracy: trained minGRU",
                    "value": f"{acc['trained_mingru']:.3f}",
                },
                {
                    "quantity": "trained minGRU vs exact filter: probe R^2",
                    "value": f"{r.trained_vs_filter.probe_r2:.3f}",
                },
                {
                    "quantity": "trained minGRU: readout KL from exact filter (nats)",
                    "value": f"{r.trained_vs_filter.readout_kl:.4f}",
                },
                {
                    "quantity": "cells built from the fitted model, mean KL from the exact "
                    "filter (nats): minGRU / selective SSM",
                    "value": f"{r.built_cell['mingru_mean_kl']:.3g} / "
                    f"{r.built_cell['selective_mean_kl']:.3g}",
                },
            ]
        ),  # fmt: skip
        "",
        "Which cell computes the exact filter: the minGRU with positive states for a *gated* "
        "model, at every cue strength; the selective diagonal SSM for an *always-emitting* "
        f"model, when the gates are hard. This model is always-emitting: "
        f"{r.built_cell['exact_when']}.",
        "",
        "![posterior](posterior.png)",
        "",
        "![states](posterior_vs_states.png)",
        "",
    ]
    if r.bayes is not None:
        b = r.bayes
        d = b.metadata["diagnostics"]
        covered = sum(row["covered"] for row in r.bayes_table)
        verdict = (
            "The chains converged (every r_hat < 1.05, no divergent transition)."
            if b.converged
            else f"**The chains did not converge** (max r_hat {d['max_r_hat']}, "
            f"{d['num_divergent']} divergent transitions): do not trust these numbers."
        )
        lines += [
            "## Bayesian step (NUTS)",
            "",
            f"Posterior over the parameters on the first {b.metadata['num_sequences']} "
            f"training sequences, the discrete chain summed out exactly: NUTS, "
            f"{b.metadata['num_chains']} chains of {b.metadata['num_warmup']} warm-up + "
            f"{b.metadata['num_samples']} draws started at the EM fit (the EM fit used all "
            f"{N - r.num_heldout} training sequences). {verdict} The truth lies inside the 90% "
            f"interval for {covered} of {len(r.bayes_table)} parameters (about 90% are "
            "expected to). Labels are the EM fit's; draws in `posterior.nc`.",
            "",
            _markdown(r.bayes_table),
            "",
        ]
    if r.verification:
        from switchssm.verify import format_table

        lines += ["## Verification", "", format_table(r.verification), ""]
    return lines


def _markdown(rows):
    return markdown_table(rows, digits=3)


def write_demo_report(result: DemoResult, folder) -> list[str]:
    """Write the demo's report into a :class:`~switchssm.pipelines.ReportFolder`.

    Files: ``report.md`` (summary, tables, figures), ``metrics.json``, ``fit.npz`` (the EM
    fit), ``posterior.png`` (exact smoother of a held-out sequence against the truth),
    ``posterior_vs_states.png`` (exact filter vs trained minGRU states) and, when run,
    ``posterior.nc`` + ``posterior_summary.{csv,md}`` (NUTS) and ``verify.md``.

    Returns:
        The file names written.
    """
    from switchssm.io import save_fit
    from switchssm.pipelines._report import write_json
    from switchssm.pipelines._report import write_posterior
    from switchssm.plots import plot_posterior
    from switchssm.plots import plot_posterior_vs_states
    from switchssm.verify import format_table

    r = result
    save_fit(folder.file("fit.npz"), r.fit)
    i0 = len(r.sequences) - r.num_heldout
    y0, u0, s0, z0 = r.sequences[i0]
    plot_posterior(
        r.smoothed[0], y0, u0, r.true_to_fitted[np.asarray(s0)], z0,
        title="exact smoother on a held-out sequence (fitted model; true s in its labels)",
        path=folder.file("posterior.png"),
    )  # fmt: skip
    plot_posterior_vs_states(
        r.filter_probs[0], r.states[0], true_s=r.true_to_fitted[np.asarray(s0)],
        title="exact filter P(s_t | x_1:t) vs trained minGRU states, held-out sequence",
        path=folder.file("posterior_vs_states.png"),
    )  # fmt: skip
    if r.bayes is not None:
        write_posterior(folder, r.bayes)
    if r.verification:
        folder.file("verify.md").write_text(format_table(r.verification) + "\n")
    metrics = {
        "num_sequences": len(r.sequences),
        "num_timesteps": len(y0),
        "em_log_likelihood": r.fit.log_likelihood,
        "em_converged": bool(r.fit.converged[r.fit.metadata["best_restart"]]),
        "parameter_errors": r.parameter_errors,
        "heldout": r.heldout,
        "trained_mingru_vs_exact_filter": r.trained_vs_filter.to_dict(),
        "model_built_cell": r.built_cell,
        "bayes": None
        if r.bayes is None
        else {
            "method": "nuts",
            "converged": r.bayes.converged,
            "diagnostics": r.bayes.metadata["diagnostics"],
            "parameters": r.bayes_table,
        },
        "verification": [c.as_dict() for c in r.verification],
        "seconds": r.seconds,
    }
    write_json(folder.file("metrics.json"), metrics)
    folder.file("report.md").write_text("\n".join(_report_lines(r)))
    return list(folder.files)
