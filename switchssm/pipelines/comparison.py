"""A saved fit against a cell trained on the same data, as a library function.

:func:`compare_fit` runs the exact filter/smoother and VMP of a fitted model on a user's
sequences, trains an RNN cell on next-observation prediction or on the known latent, and
compares its states with the exact posterior (probe, CCA, unit matching, readout KL), the
cell built from the model likewise, and the switch posterior with the cell's update gates.
:func:`write_compare_report` writes ``compare.json`` and two figures (``switchssm compare``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from typing import NamedTuple

import jax
import numpy as np

from switchssm import _validation as V
from switchssm.bridges import model_inputs
from switchssm.compare import ComparisonReport
from switchssm.compare import compare_posteriors
from switchssm.compare import direct_route_states
from switchssm.compare.labels import match_labels
from switchssm.compare.labels import matched_accuracy
from switchssm.inference import smooth
from switchssm.inference import vmp_smooth
from switchssm.models import SwitchingParams
from switchssm.pipelines.fitting import Observations
from switchssm.rnn import TrainResult
from switchssm.rnn import hidden_states
from switchssm.rnn import predict
from switchssm.rnn import train_cell
from switchssm.rnn import update_gates
from switchssm.sequences import pad

__all__ = ["CELLS", "CompareResult", "compare_fit", "training_windows", "write_compare_report"]

CELLS = ("mingru", "gru", "selective")
TARGETS = ("next", "latent")


class CompareResult(NamedTuple):
    """Everything :func:`compare_fit` computed.

    Attributes:
        numbers: the JSON-ready summary (``compare.json``).
        trained: the cell's :class:`~switchssm.rnn.TrainResult`.
        trained_vs_filter: :class:`~switchssm.compare.ComparisonReport`, trained cell states
            vs the exact filter, over the training windows (the probe holds some out).
        built_vs_filter: the same for the minGRU built from the fitted model.
        filter_probs, states, switch_probs, gates: the first sequence's exact filter
            ``(T, K)``, cell states ``(T, H)``, ``P(z_t = 1 | x_1:t)`` ``(T,)`` and update
            gates ``(T, H)`` (the figures' data).
        true_latent: the first sequence's known latent in the fit's labels, or ``None``.
    """

    numbers: dict
    trained: TrainResult
    trained_vs_filter: ComparisonReport
    built_vs_filter: ComparisonReport
    filter_probs: np.ndarray
    states: np.ndarray
    switch_probs: np.ndarray
    gates: np.ndarray
    true_latent: np.ndarray | None


def training_windows(lengths, window: int) -> list[tuple[int, int, int]]:
    """Cut sequences into pieces ``(sequence, start, stop)`` of at most ``window`` steps.

    Every piece has at least 2 steps. When that gives fewer than 2 pieces in all (one short
    sequence), the window is halved until there are 2, so a single sequence of 4 or more
    steps can still be split into a training and a held-out piece.

    Example:
        >>> training_windows([5], 200)
        [(0, 0, 3), (0, 3, 5)]
    """
    window = V.check_int(window, "window", low=2)
    total = sum(int(L) for L in lengths)
    if total < 4:
        raise ValueError(
            f"the data hold {total} steps in all; training and holding out a cell needs at "
            "least 4 (two pieces of 2 steps)"
        )
    while True:
        spans = []
        for i, L in enumerate(lengths):
            for a in range(0, int(L), window):
                if int(L) - a >= 2:
                    spans.append((i, a, min(a + window, int(L))))
        if len(spans) >= 2 or window <= 2:
            return spans
        window = max(2, (max(int(L) for L in lengths) + 1) // 2)


def _check_against_fit(obs: Observations, params: SwitchingParams, target: str | None):
    """The data fit the model (ValueError naming the problem); returns the target."""
    K = params.num_states
    if K < 2:
        raise ValueError(
            f"the fit has K = {K} state: there is no latent to compare a cell with (fit K >= 2)"
        )
    target = target or ("latent" if obs.ss is not None else "next")
    V.check_choice(target, "target", TARGETS)
    if target == "latent" and obs.ss is None:
        npy = obs.path.lower().endswith(".npy")
        where = "a .npy file carries none" if npy else "the file has no 's' column"
        raise ValueError(
            f"'{obs.path}': --target latent needs the known latent state of every step, a "
            f"CSV column 's' ({where}); use --target next"
        )
    if obs.ss is not None:
        for i, s in enumerate(obs.ss):
            if int(s.max()) >= K:
                raise ValueError(
                    f"'{obs.path}': column 's' of sequence {obs.ids[i]!r} holds latent state "
                    f"{int(s.max())}, outside the fit's states 0..{K - 1} (K = {K})"
                )
    if params.cue is not None and obs.us is None:
        raise ValueError(f"'{obs.path}': the fit has a cue, so the data need a 'u' column (CSV)")
    em = params.emission
    if em.kind == "categorical":
        top = max(int(y.max()) for y in obs.ys)
        if top >= em.num_symbols:
            raise ValueError(
                f"'{obs.path}': symbol {top} is outside the fit's 0..{em.num_symbols - 1}"
            )
    elif obs.ys[0].shape[1] != em.dim:
        raise ValueError(
            f"'{obs.path}': one value per step, the fit's emission has dimension {em.dim}"
        )
    return target


def compare_fit(
    obs: Observations,
    params: SwitchingParams,
    *,
    cell: str = "mingru",
    target: str | None = None,
    train_steps: int = 400,
    hidden_dim: int = 8,
    window: int = 200,
    seed: int = 0,
    progress: bool = True,
    log: Callable[[str], Any] | None = None,
) -> CompareResult:
    """Exact filter and VMP of a fitted model vs an RNN cell trained on the same data.

    Args:
        obs: the sequences (:func:`~switchssm.pipelines.load_observations`).
        params: the fitted :class:`~switchssm.models.SwitchingParams` (``K >= 2``).
        cell: ``"mingru"``, ``"gru"`` or ``"selective"``.
        target: ``"next"`` (the cell predicts ``y_{t+1}``), ``"latent"`` (the known latent
            ``s_t``, needs ``obs.ss``) or ``None`` (``latent`` when the data carry it).
        train_steps, hidden_dim: of the cell.
        window: training windows of at most this many steps (:func:`training_windows`).
        seed: integer seed.
        progress: progress bars.
        log: called with one line per finished stage (e.g. ``print``), or ``None``.

    Returns:
        :class:`CompareResult`.
    """
    t0 = time.perf_counter()
    say = log if log is not None else (lambda line: None)
    V.check_choice(cell, "cell", CELLS)
    target = _check_against_fit(obs, params, target)
    us = obs.us if params.cue is not None else None  # a cue the model does not use: ignored
    K, em = params.num_states, params.emission
    u_of = (lambda i: None) if us is None else (lambda i: us[i])
    lengths = [len(y) for y in obs.ys]
    say(
        f"[1/4] data: {len(obs.ys)} sequence(s), {sum(lengths)} steps"
        f"{', known latent s' if obs.ss is not None else ''}; fit: K={K}, {em.kind}; cell "
        f"target: {'the latent s_t' if target == 'latent' else 'y_(t+1)'}"
    )
    exact = [smooth(params, y, u_of(i)) for i, y in enumerate(obs.ys)]
    vmp = [vmp_smooth(params, y, u_of(i)) for i, y in enumerate(obs.ys)]
    ll = float(sum(float(p.log_likelihood) for p in exact))
    elbo = float(sum(float(v.elbo) for v in vmp))
    vmp_err = float(
        max(np.max(np.abs(np.asarray(v.smoothed_s) - np.asarray(p.smoothed_s)))
            for p, v in zip(exact, vmp, strict=True))
    )  # fmt: skip
    agree = matched_accuracy(
        [v.smoothed_s for v in vmp], [np.argmax(p.smoothed_s, 1) for p in exact]
    )
    latent, s_fitted = None, None
    if obs.ss is not None:
        to_fitted, confusion = match_labels([p.smoothed_s for p in exact], obs.ss, K)
        s_fitted = [to_fitted[s] for s in obs.ss]
        latent = {
            "column": "s",
            "label_matching": "Hungarian (scipy linear_sum_assignment, maximized) on the "
            "confusion C[k, j] = sum_t 1[s_t = k] P(s_t = j | y_1:T) of the exact smoother, "
            "all sequences",
            "true_to_fitted": to_fitted.tolist(),
            "confusion": confusion.tolist(),
            "exact_smoother_accuracy": matched_accuracy([p.smoothed_s for p in exact], s_fitted),
            "exact_filter_accuracy": matched_accuracy([p.filtered_s for p in exact], s_fitted),
            "vmp_smoother_accuracy": matched_accuracy([v.smoothed_s for v in vmp], s_fitted),
        }
    say(
        f"[2/4] exact log-likelihood {ll:.2f}, VMP ELBO {elbo:.2f} (gap {ll - elbo:.3f} nats); "
        f"VMP vs exact smoother: max |dP(s)| {vmp_err:.3f}, argmax agreement {agree:.3f}"
        + (
            ""
            if latent is None
            else f"; accuracy on the known latent (labels matched): exact smoother "
            f"{latent['exact_smoother_accuracy']:.3f}, filter {latent['exact_filter_accuracy']:.3f}"
        )
    )

    xs = [np.asarray(model_inputs(params, y, u_of(i))) for i, y in enumerate(obs.ys)]
    if target == "latent":
        targets, task, num_classes = s_fitted, "latent", K
    else:
        targets = list(obs.ys)
        task = "next_observation"
        num_classes = em.num_symbols if em.kind == "categorical" else None
    spans = training_windows(lengths, window)
    trained = train_cell(
        jax.random.PRNGKey(V.check_int(seed, "seed", low=0)), cell,
        [xs[i][a:b] for i, a, b in spans], [targets[i][a:b] for i, a, b in spans],
        task=task, hidden_dim=hidden_dim, num_classes=num_classes, num_steps=train_steps,
        learning_rate=1e-2, progress=progress,
    )  # fmt: skip
    # states of whole sequences, compared window by window (the probe holds windows out)
    val = [spans[j] for j in np.asarray(trained.split.val_index)]
    H_full = hidden_states(trained, xs)
    G_full = update_gates(trained, xs)
    P_full = [np.asarray(p.filtered_s) for p in exact]
    win = lambda arrs: pad([np.asarray(arrs[i])[a:b] for i, a, b in spans])
    win_len = [b - a for _, a, b in spans]
    P_val, H_val = win(P_full), win(H_full)
    Q_val = win(np.asarray(predict(trained, xs))) if target == "latent" else None
    report = compare_posteriors(P_val, H_val, readout_probs=Q_val, lengths=win_len)
    held = ", ".join(f"{k} {v:.4g}" for k, v in trained.metrics.items() if not k.startswith("num_"))
    if target == "latent":
        latent["cell_heldout_accuracy"] = float(trained.metrics["accuracy"])
        latent["exact_filter_heldout_accuracy"] = matched_accuracy(
            [P_full[i][a:b] for i, a, b in val], [s_fitted[i][a:b] for i, a, b in val]
        )
        say(
            f"[3/4] {cell} trained on the known latent ({train_steps} steps): held-out "
            f"accuracy {latent['cell_heldout_accuracy']:.3f} (exact filter on the same steps "
            f"{latent['exact_filter_heldout_accuracy']:.3f}), held-out {held}; probe R^2 to "
            f"the exact filter {report.probe_r2:.3f}, readout KL from it "
            f"{report.readout_kl:.4f} nats"
        )
    else:
        say(
            f"[3/4] {cell} trained on next-observation prediction ({train_steps} steps, "
            f"held-out {held}); probe R^2 to the exact filter {report.probe_r2:.3f}"
        )
    direct = direct_route_states(params, obs.ys, us)
    report_direct = compare_posteriors(
        win(P_full), win([direct[i] for i in range(len(xs))]), lengths=win_len
    )
    Z = [np.asarray(p.filtered_z) for p in exact]
    zc = np.concatenate(Z)
    gc = np.concatenate([np.asarray(G_full)[i, :L].mean(-1) for i, L in enumerate(lengths)])
    gate_r = float(np.corrcoef(zc, gc)[0, 1]) if zc.std() > 0 and gc.std() > 0 else None
    numbers = {
        "data": obs.path,
        "num_sequences": len(obs.ys),
        "lengths": lengths,
        "num_states": K,
        "emission": em.kind,
        "exact_log_likelihood": ll,
        "vmp_elbo": elbo,
        "vmp_vs_exact_smoothed_s_max_abs": vmp_err,
        "vmp_vs_exact_argmax_agreement": agree,
        "cell": cell,
        "target": target,
        "task": task,
        "train_steps": train_steps,
        "hidden_dim": hidden_dim,
        "training_windows": len(spans),
        "heldout_windows": [list(v) for v in val],
        "cell_heldout_metrics": trained.metrics,
        "trained_cell_vs_exact_filter": report.to_dict(),
        "model_built_mingru_vs_exact_filter": report_direct.to_dict(),
        "switch_posterior_vs_mean_gate_correlation": gate_r,
        "switch_posterior_vs_mean_gate_scope": "all steps of all sequences",
        "latent": latent,
        "seconds": time.perf_counter() - t0,
    }
    say(
        f"[4/4] model-built minGRU probe R^2 {report_direct.probe_r2:.3f}; switch posterior vs "
        f"mean gate r = {gate_r if gate_r is None else round(gate_r, 3)} (all steps)"
    )
    return CompareResult(
        numbers, trained, report, report_direct, P_full[0], np.asarray(H_full)[0, : lengths[0]],
        Z[0], np.asarray(G_full)[0, : lengths[0]], None if s_fitted is None else s_fitted[0],
    )  # fmt: skip


def write_compare_report(folder, result: CompareResult, *, ids=None, fit_path=None):
    """Write ``compare.json``, ``posterior_vs_states.png`` and ``switch_vs_gates.png`` into
    a :class:`~switchssm.pipelines.ReportFolder`; returns the file names."""
    from switchssm.pipelines._report import write_json
    from switchssm.plots import plot_posterior_vs_states
    from switchssm.plots import plot_switch_vs_gates

    r = result
    name = "" if ids is None else f", sequence {ids[0]!r}"
    cell = r.numbers["cell"]
    plot_posterior_vs_states(
        r.filter_probs, r.states, true_s=r.true_latent,
        title=f"exact filter P(s_t | x_1:t) vs trained {cell} states{name}",
        path=folder.file("posterior_vs_states.png"),
    )  # fmt: skip
    plot_switch_vs_gates(
        r.switch_probs, r.gates,
        title=f"switch posterior P(z_t=1 | x_1:t) vs {cell} update gates{name}",
        path=folder.file("switch_vs_gates.png"),
    )  # fmt: skip
    numbers = dict(r.numbers, fit=None if fit_path is None else str(fit_path))
    numbers["files"] = sorted({*folder.files, "compare.json"})
    write_json(folder.file("compare.json"), numbers)
    return list(folder.files)
