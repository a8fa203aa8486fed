"""Posterior-over-time figures for switching models."""

from __future__ import annotations

import numpy as np

from switchssm.plots._layout import finish
from switchssm.plots._layout import heatmap
from switchssm.plots._layout import mark_switches
from switchssm.plots._layout import time_panels


def plot_posterior(posterior, y=None, u=None, true_s=None, true_z=None, *, title=None, path=None):
    """Heatmap of the smoothed (or filtered) state posterior and the switch probabilities.

    Panels on one time axis: the observations (if given), ``P(s_t | x)`` as a heatmap with
    its colorbar (and the true ``s`` if given), the switch probabilities (true switches as
    ticks), and the cue (if given).

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

    Example:
        >>> import numpy as np
        >>> from switchssm.inference import FilterPosterior
        >>> p = np.random.default_rng(0).dirichlet(np.ones(2), size=30)
        >>> fig = plot_posterior(FilterPosterior(0.0, p, p[:, 0]))
        >>> len(fig.axes) >= 2
        True
    """
    post = posterior._asdict()
    smoothed = "smoothed_s" in post
    probs_s = np.asarray(post["smoothed_s" if smoothed else "filtered_s"])
    probs_z = np.asarray(post["smoothed_z" if smoothed else "filtered_z"])
    cond = "x_1:T" if smoothed else "x_1:t"
    T, K = probs_s.shape
    # the heatmap grows with K up to a cap (a K = 10^5 fit must not ask for a figure
    # thousands of inches tall); past 32 states the y-ticks thin out
    heights = ([1.6] if y is not None else []) + [min(max(K, 2), 16) * 0.6, 2.0]
    heights += [1.2] if u is not None else []
    fig, axes, caxes = time_panels(heights)
    panels = iter(zip(axes, caxes, strict=True))
    if y is not None:
        a, _ = next(panels)
        yy = np.asarray(y)
        a.plot(np.arange(T), yy if yy.ndim == 1 else yy[:, 0], ".", ms=2.5, color="0.3")
        a.set_ylabel("y" if yy.ndim == 1 else "y[:, 0]")
    a, cax = next(panels)
    heatmap(a, cax, probs_s.T, vmin=0, vmax=1, cmap="Blues", label=f"P(s_t | {cond})")
    if true_s is not None:
        a.plot(np.arange(T), np.asarray(true_s), color="C3", lw=0.8, label="true s")
        a.legend(loc="upper right", fontsize=7, framealpha=0.8)
    a.set_yticks(range(K) if K <= 32 else np.unique(np.linspace(0, K - 1, 9).round().astype(int)))
    a.set_ylabel("state s")
    a, _ = next(panels)
    a.plot(np.arange(T), probs_z, color="C0", lw=0.9, label=f"P(z_t=1 | {cond})")
    if smoothed:
        a.plot(np.arange(T), np.asarray(post["filtered_z"]), color="C1", lw=0.6, alpha=0.7,
               label="P(z_t=1 | x_1:t), filtered")  # fmt: skip
    if true_z is not None:
        mark_switches(a, true_z)
    a.set_ylim(-0.05, 1.1)
    a.set_ylabel("switch probability")
    a.legend(loc="upper left", fontsize=7, framealpha=0.8, ncol=3)
    if u is not None:
        b, _ = next(panels)
        uu = np.asarray(u)
        b.plot(np.arange(T), uu if uu.ndim == 1 else uu[:, 0], ".", ms=2.0, color="0.4")
        b.set_ylabel("cue u" if uu.ndim == 1 else "u[:, 0]")
    a.set_xlim(-0.5, T - 0.5)
    return finish(fig, title, path)
