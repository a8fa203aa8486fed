"""The cue panel of a sample figure: the cue as a line, the switch steps marked on it."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from switchssm.plots import plot_cue


@pytest.mark.parametrize("vector", [False, True])
def test_cue_line_and_switch_markers(vector):
    rng = np.random.default_rng(0)
    u = rng.normal(size=(40, 2))
    z = rng.random(40) < 0.2
    fig, ax = plt.subplots()
    try:
        assert plot_cue(ax, u if vector else u[:, 0], z.astype(int)) is ax
        line, marks = ax.lines
        np.testing.assert_array_equal(line.get_xdata(), np.arange(40))
        np.testing.assert_array_equal(line.get_ydata(), u[:, 0])
        np.testing.assert_array_equal(marks.get_xdata(), [t for t in range(40) if z[t]])
        np.testing.assert_array_equal(marks.get_ydata(), [u[t, 0] for t in range(40) if z[t]])
        assert ax.get_ylabel() == "cue $u_t$"
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["$z_t = 1$"]
    finally:
        plt.close(fig)


def test_cue_panel_refuses_mismatched_inputs():
    fig, ax = plt.subplots()
    try:
        with pytest.raises(ValueError, match="`z` must have shape \\(5,\\)"):
            plot_cue(ax, np.zeros(5), np.zeros(4))
        with pytest.raises(ValueError, match="`u` must be"):
            plot_cue(ax, np.zeros((5, 2, 2)), np.zeros(5))
    finally:
        plt.close(fig)
