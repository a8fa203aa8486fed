"""Shared layout of the time-series figures: panels on one time axis, colorbars beside them.

Every panel of a time-series figure occupies the same horizontal extent, whether it carries a
colorbar or not (the colorbars live in a separate narrow column), so step ``t`` sits at the
same x position in every panel.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def time_panels(heights, *, width: float = 10.5, height: float | None = None):
    """A figure of ``len(heights)`` stacked panels sharing the time axis.

    Returns:
        ``(fig, axes, caxes)``: the panels, top to bottom, and one colorbar axis beside each
        (hidden until :func:`heatmap` draws into it).
    """
    heights = [float(h) for h in heights]
    height = 1.2 + 0.5 * sum(heights) if height is None else height
    fig = plt.figure(figsize=(width, height), layout="constrained")
    gs = fig.add_gridspec(len(heights), 2, width_ratios=[60, 1], height_ratios=heights, wspace=0.01)
    axes, caxes = [], []
    for i in range(len(heights)):
        ax = fig.add_subplot(gs[i, 0], sharex=axes[0] if axes else None)
        cax = fig.add_subplot(gs[i, 1])
        cax.set_visible(False)
        axes.append(ax)
        caxes.append(cax)
    for ax in axes[:-1]:
        ax.tick_params(labelbottom=False)
    axes[-1].set_xlabel("t")
    return fig, axes, caxes


def heatmap(ax, cax, M, *, vmin, vmax, cmap: str, label: str):
    """``M`` (``(rows, T)``) as an image whose column ``t`` is centred on ``x = t``; its
    colorbar, labelled ``label``, in ``cax``."""
    rows, T = M.shape
    im = ax.imshow(
        M,
        aspect="auto",
        interpolation="nearest",
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        extent=(-0.5, T - 0.5, rows - 0.5, -0.5),
    )
    cax.set_visible(True)
    cb = ax.figure.colorbar(im, cax=cax)
    cb.set_label(label, fontsize=7)
    cb.ax.tick_params(labelsize=7)
    return im


def mark_switches(ax, true_z, y: float = 1.04) -> None:
    """Ticks at the steps with a true switch (simulated data)."""
    tz = np.flatnonzero(np.asarray(true_z))
    ax.plot(tz, np.full(tz.shape, y), "|", color="C3", ms=6, label="true switches")


def finish(fig, title, path):
    """Add the title, save to ``path`` (PNG) and close, or return the open figure."""
    if title:
        fig.suptitle(title, fontsize=10)
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig
