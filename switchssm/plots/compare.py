"""Figures comparing a posterior with an RNN's hidden states and gates.

- :func:`plot_posterior_vs_states`: the posterior ``P(s_t | x)`` over time above the
  hidden-state heatmap of a cell run on the same sequence (units optionally reordered,
  e.g. by :func:`switchssm.compare.match_units`).
- :func:`plot_switch_vs_gates`: the switch posterior ``P(z_t = 1 | x)`` against the cell's
  update gates (:func:`switchssm.rnn.update_gates`), per unit and averaged.
"""

from __future__ import annotations

import numpy as np

from switchssm.plots._layout import finish
from switchssm.plots._layout import heatmap
from switchssm.plots._layout import mark_switches
from switchssm.plots._layout import time_panels

__all__ = ["plot_posterior_vs_states", "plot_switch_vs_gates"]


def _one_sequence(a, name: str, ndim: int, sequence: int) -> np.ndarray:
    """``a`` as ``ndim`` dims: pick ``sequence`` from a leading batch axis if present."""
    a = np.asarray(a, dtype=float)
    if a.ndim == ndim + 1:
        if not 0 <= sequence < a.shape[0]:
            raise ValueError(f"`sequence` must lie in [0, {a.shape[0] - 1}], got {sequence}")
        a = a[sequence]
    if a.ndim != ndim:
        raise ValueError(
            f"`{name}` must have {ndim} dimensions (or {ndim + 1} with a leading sequence "
            f"axis), got shape {a.shape}"
        )
    return a


def plot_posterior_vs_states(
    P,
    H,
    *,
    true_s=None,
    sequence: int = 0,
    unit_order=None,
    standardize: bool = True,
    label: str = "P(s_t | x_1:t)",
    title: str | None = None,
    path=None,
):
    """Posterior heatmap over time above the hidden-state heatmap, on a shared time axis.

    Args:
        P: ``(T, K)`` posterior probabilities, or ``(N, T, K)`` (``sequence`` is drawn).
        H: ``(T, Hd)`` hidden states, or ``(N, T, Hd)``.
        true_s: optional ``(T,)`` (or ``(N, T)``) true states, drawn over the posterior.
        sequence: which sequence of batched inputs.
        unit_order: optional order of the units (e.g. ``match_units(H, P).units`` first):
            row ``i`` of the lower panel is unit ``unit_order[i]``.
        standardize: z-score each unit over time (diverging colours centred on 0);
            otherwise raw values on a symmetric colour scale.
        label: what ``P`` is, for its colorbar (default the filter, ``P(s_t | x_1:t)``;
            ``"P(s_t | x_1:T)"`` for a smoother).
        title: figure title.
        path: if given, save the figure there (PNG) and close it.

    Returns:
        The matplotlib figure.

    Example:
        >>> P = np.random.default_rng(0).dirichlet(np.ones(3), size=50)
        >>> fig = plot_posterior_vs_states(P, np.log(P))
        >>> len(fig.axes) >= 2
        True
    """
    P = _one_sequence(P, "P", 2, sequence)
    H = _one_sequence(H, "H", 2, sequence)
    if P.shape[0] != H.shape[0]:
        raise ValueError(
            f"`P` and `H` must have the same length, got {P.shape[0]} and {H.shape[0]}"
        )
    T, K = P.shape
    Hd = H.shape[1]
    if unit_order is not None:
        order = np.asarray(unit_order, dtype=int)
        if order.ndim != 1 or np.any(order < 0) or np.any(order >= Hd):
            raise ValueError(f"`unit_order` must list unit indices in [0, {Hd - 1}]")
        H = H[:, order]
        labels = [str(j) for j in order]
    else:
        labels = [str(j) for j in range(Hd)]
    if standardize:
        sd = H.std(0)
        H = (H - H.mean(0)) / np.where(sd > 0, sd, 1.0)
    vmax = float(np.max(np.abs(H))) or 1.0
    fig, (a0, a1), (c0, c1) = time_panels([max(K, 2) * 0.6, max(Hd, 2) * 0.35])
    heatmap(a0, c0, P.T, vmin=0, vmax=1, cmap="Blues", label=label)
    if true_s is not None:
        s = _one_sequence(true_s, "true_s", 1, sequence)
        a0.plot(np.arange(T), s, color="C3", lw=0.8, label="true s")
        a0.legend(loc="upper right", fontsize=7, framealpha=0.8)
    a0.set_yticks(range(K))
    a0.set_ylabel("state s")
    heatmap(a1, c1, H.T, vmin=-vmax, vmax=vmax, cmap="RdBu_r",
            label="z-score" if standardize else "h")  # fmt: skip
    if Hd <= 32:
        a1.set_yticks(range(Hd))
        a1.set_yticklabels(labels, fontsize=7)
    a1.set_ylabel("unit")
    return finish(fig, title, path)


def plot_switch_vs_gates(
    p_switch,
    gates,
    *,
    true_z=None,
    sequence: int = 0,
    title: str | None = None,
    path=None,
):
    """The switch posterior against the cell's update gates over time.

    Upper panel: ``P(z_t = 1 | x_1:t)`` and the mean gate over units, with their Pearson
    correlation over this sequence's steps in the legend (and true switches if given).
    Lower panel (when ``gates`` has several units): the gate of every unit as a heatmap in
    ``[0, 1]``.

    Args:
        p_switch: ``(T,)`` switch posterior (e.g. ``filter(...).filtered_z``), or ``(N, T)``.
        gates: ``(T,)`` or ``(T, Hd)`` gates (e.g. :func:`switchssm.rnn.update_gates`),
            or ``(N, T, Hd)``.
        true_z: optional ``(T,)`` (or ``(N, T)``) true switch indicators.
        sequence: which sequence of batched inputs.
        title: figure title.
        path: if given, save the figure there (PNG) and close it.

    Returns:
        The matplotlib figure.

    Example:
        >>> g = np.random.default_rng(0).random(40)
        >>> fig = plot_switch_vs_gates(g, np.c_[g, 1 - g])
        >>> len(fig.axes) >= 2
        True
    """
    gates_arr = np.asarray(gates, dtype=float)
    p_arr = np.asarray(p_switch, dtype=float)
    batched = p_arr.ndim == 2
    p = _one_sequence(p_arr, "p_switch", 1, sequence)
    if batched:
        G = _one_sequence(gates_arr, "gates", 2, sequence)
    else:
        G = gates_arr[:, None] if gates_arr.ndim == 1 else gates_arr
        if G.ndim != 2:
            raise ValueError(f"`gates` must be (T,) or (T, Hd), got shape {gates_arr.shape}")
    if G.shape[0] != p.shape[0]:
        raise ValueError(
            f"`p_switch` and `gates` must have the same length, got {p.shape[0]} and {G.shape[0]}"
        )
    T = p.shape[0]
    mean_gate = G.mean(1)
    r = np.corrcoef(p, mean_gate)[0, 1] if np.std(p) > 0 and np.std(mean_gate) > 0 else np.nan
    rows = 2 if G.shape[1] > 1 else 1
    fig, axes, caxes = time_panels([2.0] + ([max(G.shape[1], 2) * 0.35] if rows == 2 else []))
    a = axes[0]
    a.plot(np.arange(T), p, color="C0", lw=1.0, label="P(z_t=1 | x_1:t)")
    a.plot(np.arange(T), mean_gate, color="C1", lw=0.9,
           label=f"mean gate (r = {r:.3f}, this sequence)")  # fmt: skip
    if true_z is not None:
        mark_switches(a, _one_sequence(true_z, "true_z", 1, sequence))
    a.set_ylim(-0.05, 1.1)
    a.set_ylabel("probability / gate")
    a.legend(loc="upper right", fontsize=7, ncol=3, framealpha=0.8)
    if rows == 2:
        heatmap(axes[1], caxes[1], G.T, vmin=0, vmax=1, cmap="viridis", label="gate")
        axes[1].set_ylabel("unit")
    axes[0].set_xlim(-0.5, T - 0.5)
    return finish(fig, title, path)
