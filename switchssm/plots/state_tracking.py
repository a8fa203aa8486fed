"""State-tracking figures: accuracy against sequence length, learned rotation angles."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from switchssm.plots._layout import finish


def plot_accuracy_by_length(results, *, title=None, path=None):
    """Accuracy of the state label after each prefix, against the prefix length.

    One line per run (:class:`~switchssm.pipelines.StateTrackingResult`), the training
    lengths shaded, chance as a dotted line per task.

    Args:
        results: one result or a list of them.
        title: figure title (default: the task names).
        path: if given, save the figure there (PNG) and close it.

    Returns:
        The matplotlib figure.
    """
    if not isinstance(results, list | tuple):
        results = [results]
    many = len(results) > 4
    fig, ax = plt.subplots(figsize=(10.5 if many else 8, 4.2), layout="constrained")
    lo, hi = results[0].config["train_lengths"]
    ax.axvspan(lo, hi, color="0.9", label=f"training lengths {lo}-{hi}")
    task_names = list(dict.fromkeys(r.task for r in results))
    cell_names = list(dict.fromkeys(r.cell + (" + Bx" if r.additive else "") for r in results))
    styles = ("-", "--", ":", "-.")
    chances = {}
    for r in results:
        t = np.arange(1, len(r.accuracy_by_length) + 1)
        name = r.cell + (" + Bx" if r.additive else "")
        ls = styles[task_names.index(r.task) % len(styles)]
        color = f"C{cell_names.index(name) % 10}"
        label = f"{name} ({r.task}): {r.test_accuracy:.2f}"
        ax.plot(t, r.accuracy_by_length, color=color, ls=ls, lw=1.2, label=label)
        chances[r.task] = r.chance_accuracy
    for task, c in chances.items():
        ax.axhline(c, color="k", ls=":", lw=0.8)
        ax.annotate(
            f"chance ({task})", (1, c), xycoords=("axes fraction", "data"), xytext=(-2, 2),
            textcoords="offset points", fontsize=8, ha="right",
        )  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("prefix length t (log scale)")
    ax.set_ylabel("accuracy of the state after t symbols")
    ax.set_ylim(-0.02, 1.02)
    if many:  # outside the axes, where it hides no curve
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend(fontsize=8, loc="lower left")
    tasks = ", ".join(dict.fromkeys(r.task for r in results))
    return finish(fig, title or f"State tracking: {tasks}", path)


def plot_rotation_harmonics(angles, modulus: int, *, title=None, path=None):
    """Learned rotation angles of an R2 cell on modular addition, as harmonics of ``2 pi / m``.

    For each rotation block (panel) the angle learned for every input integer ``k``, divided
    by ``2 pi / m``, against ``k``; a block that computes ``k -> exp(i 2 pi j k / m)`` (the
    ``j``-th harmonic) draws the line ``j k`` modulo ``m``.

    Args:
        angles: ``(num_blocks, m)`` angles (radians) per block and input integer.
        modulus: ``m``.
        title: figure title.
        path: if given, save the figure there (PNG) and close it.

    Returns:
        The matplotlib figure.
    """
    angles = np.asarray(angles, dtype=np.float64)
    n, m = angles.shape
    cols = min(n, 4)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(
        rows, cols, figsize=(2.6 * cols, 2.3 * rows), squeeze=False, layout="constrained"
    )
    k = np.arange(m)
    for b, ax in enumerate(axes.ravel()):
        if b >= n:
            ax.set_visible(False)
            continue
        h = np.mod(angles[b] / (2 * np.pi / modulus), modulus)
        ax.plot(k, h, "o", ms=4)
        j = int(np.rint(h[1])) % modulus if m > 1 else 0
        ax.plot(k, np.mod(j * k, modulus), "-", lw=0.8, color="0.5")
        ax.set_title(f"block {b}: harmonic {h[1]:.2f}", fontsize=9)
        ax.set_xlabel("input k", fontsize=8)
        ax.set_ylabel("angle / (2 pi / m)", fontsize=8)
        ax.set_ylim(-0.5, modulus + 0.5)
    return finish(fig, title or f"Learned rotation angles, modular addition m = {modulus}", path)
