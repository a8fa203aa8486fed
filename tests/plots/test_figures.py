"""Every time-series figure: rendered to PNG, its panels share one time axis exactly.

The check is on the rendered layout: after drawing, every panel that shows time has the same
left and right edge in figure coordinates and the same x limits, so step ``t`` sits at the
same x position in every panel (a colorbar must not narrow its panel)."""

import subprocess
import sys

import numpy as np
import pytest

from switchssm.inference import FilterPosterior
from switchssm.inference import SmoothPosterior
from switchssm.plots import plot_posterior
from switchssm.plots import plot_posterior_vs_states
from switchssm.plots import plot_switch_vs_gates

T = 150
rng = np.random.default_rng(0)
P = rng.dirichlet(np.ones(3), size=T)
Z = rng.random(T)


def _time_axes(fig):
    """The panels that share the time axis: those of the widest column."""
    fig.canvas.draw()
    axes = [a for a in fig.axes if a.get_visible() and a.get_xlim()[1] > 10]
    return axes


FIGURES = {
    "posterior": lambda: plot_posterior(
        SmoothPosterior(0.0, P, Z, P, Z), rng.integers(0, 4, T), rng.normal(size=T),
        rng.integers(0, 3, T), (rng.random(T) < 0.05).astype(int),
    ),
    "posterior_filter": lambda: plot_posterior(FilterPosterior(0.0, P, Z)),
    "posterior_vs_states": lambda: plot_posterior_vs_states(
        P, rng.normal(size=(T, 6)), true_s=rng.integers(0, 3, T)
    ),
    "switch_vs_gates": lambda: plot_switch_vs_gates(Z, rng.random((T, 6))),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_panels_share_the_time_axis(name, tmp_path):
    fig = FIGURES[name]()
    fig.savefig(tmp_path / f"{name}.png", dpi=60)
    axes = _time_axes(fig)
    assert len(axes) >= 2
    x0 = {round(a.get_position().x0, 6) for a in axes}
    x1 = {round(a.get_position().x1, 6) for a in axes}
    lims = {tuple(np.round(a.get_xlim(), 9)) for a in axes}
    assert len(x0) == 1 and len(x1) == 1, (x0, x1)
    assert lims == {(-0.5, T - 0.5)}
    # every panel says what it shows
    assert all(a.get_ylabel() for a in axes)


def test_heatmaps_have_colorbars_labelled_with_what_they_show():
    fig = plot_posterior(SmoothPosterior(0.0, P, Z, P, Z))
    labels = [a.get_ylabel() for a in fig.axes if a.get_visible()]
    assert "P(s_t | x_1:T)" in labels  # the smoother's colorbar
    fig = plot_posterior(FilterPosterior(0.0, P, Z))
    assert "P(s_t | x_1:t)" in [a.get_ylabel() for a in fig.axes if a.get_visible()]


def test_importing_the_plots_keeps_the_users_backend():
    """A notebook's backend survives ``import switchssm.plots`` (only the CLI selects Agg)."""
    code = (
        "import matplotlib; matplotlib.use('svg'); import switchssm.plots, switchssm; "
        "assert matplotlib.get_backend() == 'svg', matplotlib.get_backend()"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
