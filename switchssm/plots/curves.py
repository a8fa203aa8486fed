"""Comparison curves: the exact-filter vs cell gaps measured by the sweeps of
:mod:`switchssm.verify`."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from switchssm.plots._layout import finish


def _positive(x, se=None, floor=1e-18):
    """Values (and error-bar lengths) safe for a log axis: non-positive means -> floor."""
    x = np.asarray(x, dtype=np.float64)
    y = np.where(x > floor, x, floor)
    if se is None:
        return y, None
    se = np.nan_to_num(np.asarray(se, dtype=np.float64))
    lower = np.minimum(se, y - floor)  # keep the lower bar on the axis
    return y, np.vstack([lower, se])


def _errorbars(ax, x, series):
    """One line per ``(label, values, standard errors or None, color, marker)`` against
    ``x``, safe for a log axis; lines with ``"x"`` markers are dashed."""
    for label, m, se, color, marker in series:
        y, err = _positive(m, se)
        ls = "--" if marker == "x" else "-"
        ax.errorbar(
            x, y, yerr=err, color=color, marker=marker, ms=4, lw=1, capsize=2, label=label, ls=ls
        )


def plot_mi_curve(sweep, *, title=None, path=None):
    """Gap between the exact filter and the logit minGRU against the cue's information.

    Left: mean KL (nats, log scale) against :math:`I(u; z)/H(z)`; right: against the
    separation :math:`d`, with :math:`H(z) - I(u; z)` for reference. Error bars are one
    standard error over sequences.

    Args:
        sweep: a :class:`~switchssm.verify.MISweep`.
        title: figure title (default: :math:`H(z)`, ``T`` and the number of sequences).
        path: if given, save the figure there (PNG) and close it.

    Returns:
        The matplotlib figure.
    """
    d = np.asarray(sweep.separations)
    ratio = np.asarray(sweep.information_ratio)
    series = [
        ("gated: logit minGRU", sweep.gated_kl, sweep.gated_kl_se, "C0", "o"),
        ("always: logit minGRU", sweep.always_kl, sweep.always_kl_se, "C1", "s"),
        (
            "always: selective SSM",
            sweep.always_selective_kl,
            sweep.always_selective_kl_se,
            "C2",
            "^",
        ),
    ]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, x, xlabel in ((axes[0], ratio, "I(u; z) / H(z)"), (axes[1], d, "cue separation d")):
        _errorbars(ax, x, series)
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("mean KL(exact || cell), nats")
        ax.grid(True, which="major", alpha=0.3)
    resid, _ = _positive(sweep.switch_entropy - np.asarray(sweep.mutual_information))
    axes[1].plot(d, resid, "k--", lw=0.8, label="H(z) - I(u; z)")
    axes[1].axvline(sweep.peak_separation, color="0.6", lw=0.8, ls=":")
    axes[0].legend(loc="lower left", fontsize=8)
    axes[1].legend(loc="lower left", fontsize=8)
    axes[1].set_title(
        f"peak at d = {sweep.peak_separation:g}; high-MI rate: "
        f"log gap ~ {sweep.rate_d2:.3g} d^2, gap ~ (H - I)^{sweep.rate_residual:.2f}",
        fontsize=8,
    )
    title = title or (
        f"exact filter vs minGRU as I(u; z) -> H(z) = {sweep.switch_entropy:.3f} nats "
        f"(T = {sweep.num_timesteps}, {sweep.num_sequences} sequences)"
    )
    return finish(fig, title, path)


def plot_gaussian_gap(sweep, *, title=None, path=None):
    """Information-form minGRU vs the exact run-length filter against the cue separation.

    Left: gated model, the mean error (rounding level: an exact identity) and the
    covariance gap :math:`\\operatorname{tr}(\\Sigma_t - \\tilde J^{-1})` after the first switch
    (and over all steps, which keeps the pre-switch plateau); right: always-emitting model,
    RMS mean error and Gaussian KL of the minGRU and of the selective recursion.

    Args:
        sweep: a :class:`~switchssm.verify.GaussianSweep`.
        title: figure title (default: what is compared, ``T`` and the number of sequences).
        path: if given, save the figure there (PNG) and close it.

    Returns:
        The matplotlib figure.
    """
    d = np.asarray(sweep.separations)
    gated = (
        ("cov gap after 1st switch", sweep.gated_cov_gap, sweep.gated_cov_gap_se, "C0", "o"),
        ("cov gap, all steps", sweep.gated_cov_gap_all, None, "C0", "x"),
        ("KL after 1st switch", sweep.gated_kl, sweep.gated_kl_se, "C4", "s"),
        ("max |mean error|", sweep.gated_mean_error, None, "C3", "^"),
    )
    always = (
        ("minGRU: RMS mean error", sweep.always_mean_error, sweep.always_mean_error_se, "C1", "o"),
        ("minGRU: KL", sweep.always_kl, sweep.always_kl_se, "C1", "s"),
        ("selective: RMS mean error", sweep.always_selective_mean_error, None, "C2", "o"),
        ("selective: KL", sweep.always_selective_kl, None, "C2", "s"),
    )
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, panel, series in zip(
        axes, ("gated (marginal background)", "always emitting"), (gated, always), strict=True
    ):
        _errorbars(ax, d, series)
        ax.set_yscale("log")
        ax.set_title(panel, fontsize=9)
        ax.set_xlabel("cue separation d")
        ax.legend(loc="center right", fontsize=7)
        ax.grid(True, alpha=0.3)
    title = title or (
        f"Gaussian latent: information-form minGRU vs exact run-length filter "
        f"(T = {sweep.num_timesteps}, {sweep.num_sequences} sequences)"
    )
    return finish(fig, title, path)
