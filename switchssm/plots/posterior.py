"""Posterior-over-time figures for switching models."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np  # noqa: E402


def plot_posterior(posterior, y=None, u=None, true_s=None, true_z=None, *, title=None, path=None):
    """Heatmap of the smoothed (or filtered) state posterior and the switch probabilities.

    Args:
        posterior: a :class:`~switchssm.inference.SmoothPosterior` or
            :class:`~switchssm.inference.FilterPosterior`.
        y: optional observations, drawn on top (symbols or the first dimension).
        u: optional cue, drawn with the switch probabilities.
        true_s, true_z: optional true latents for comparison (simulated data).
        title: figure title.
        path: if given, save the figure there (PNG) and close it.

    Returns:
        The matplotlib figure.
    """
    post = posterior._asdict()
    probs_s = np.asarray(post.get("smoothed_s", post["filtered_s"]))
    probs_z = np.asarray(post.get("smoothed_z", post["filtered_z"]))
    which = "smoothed" if "smoothed_s" in post else "filtered"
    T, K = probs_s.shape
    rows = 3 if y is not None else 2
    fig, axes = plt.subplots(rows, 1, figsize=(11.5, 1.6 + 1.7 * rows), sharex=True)
    ax = iter(np.atleast_1d(axes))
    if y is not None:
        a = next(ax)
        yy = np.asarray(y)
        yy = yy if yy.ndim == 1 else yy[:, 0]
        a.plot(np.arange(T), yy, ".", ms=2.5, color="0.3")
        a.set_ylabel("y" if np.asarray(y).ndim == 1 else "y[:, 0]")
    a = next(ax)
    a.imshow(
        probs_s.T,
        aspect="auto",
        interpolation="nearest",
        cmap="Blues",
        vmin=0,
        vmax=1,
        extent=(-0.5, T - 0.5, K - 0.5, -0.5),
    )
    if true_s is not None:
        a.plot(np.arange(T), np.asarray(true_s), color="C3", lw=0.8, label="true s")
        a.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=7, frameon=False)
    a.set_yticks(range(K))
    a.set_ylabel(f"P(s_t | x)\n{which}")
    a = next(ax)
    a.plot(np.arange(T), probs_z, color="C0", lw=0.9, label=f"P(z_t=1 | x), {which}")
    if "smoothed_z" in post:
        a.plot(
            np.arange(T),
            np.asarray(post["filtered_z"]),
            color="C1",
            lw=0.6,
            alpha=0.7,
            label="P(z_t=1 | x_1:t), filtered",
        )
    if true_z is not None:
        tz = np.flatnonzero(np.asarray(true_z))
        a.plot(tz, np.ones_like(tz) * 1.04, "|", color="C3", ms=6, label="true switches")
    a.set_ylim(-0.05, 1.1)
    a.set_xlabel("t")
    a.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=7, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig
