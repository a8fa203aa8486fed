"""Panels of simulated data, for figures that show a model's samples."""

from __future__ import annotations

import numpy as np


def plot_cue(ax, u, z):
    """The cue ``u_t`` against ``t``, the steps with a switch (``z_t = 1``) marked on it.

    Draws into an existing panel (its y label and legend included), so that a figure of a
    sample can stack it under the observations and the states.

    Args:
        ax: a matplotlib axis.
        u: ``(T,)`` cue (a ``(T, Du)`` cue: its first dimension).
        z: ``(T,)`` switch indicators (0/1 or bool).

    Returns:
        ``ax``.

    Raises:
        ValueError: ``u`` is not ``(T,)`` or ``(T, Du)``, or ``z`` is not ``(T,)``.

    Example:
        >>> import matplotlib.pyplot as plt, numpy as np
        >>> fig, ax = plt.subplots()
        >>> ax = plot_cue(ax, np.array([0.1, 2.3, 1.9, 0.2]), np.array([0, 1, 0, 1]))
        >>> ax.lines[1].get_xdata().tolist(), ax.lines[1].get_ydata().tolist()
        ([1, 3], [2.3, 0.2])
        >>> plt.close(fig)
    """
    u, z = np.asarray(u), np.asarray(z)
    if u.ndim not in (1, 2) or len(u) == 0:
        raise ValueError(f"`u` must be a non-empty (T,) or (T, Du) cue, got shape {u.shape}")
    if z.shape != u.shape[:1]:
        raise ValueError(f"`z` must have shape ({len(u)},) like `u`'s time axis, got {z.shape}")
    u, z = (u if u.ndim == 1 else u[:, 0]), z.astype(bool)
    ax.plot(np.arange(len(u)), u, color="C0", lw=0.8)
    ax.plot(np.flatnonzero(z), u[z], "o", color="C1", ms=4, label="$z_t = 1$")
    ax.set(ylabel="cue $u_t$")
    ax.legend(loc="upper right", fontsize=8)
    return ax
