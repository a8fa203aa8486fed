"""Figures: posteriors over time, switch probabilities, comparison curves, state tracking;
panels of simulated data."""

from switchssm.plots.compare import plot_posterior_vs_states
from switchssm.plots.compare import plot_switch_vs_gates
from switchssm.plots.curves import plot_gaussian_gap
from switchssm.plots.curves import plot_mi_curve
from switchssm.plots.posterior import plot_posterior
from switchssm.plots.samples import plot_cue
from switchssm.plots.state_tracking import plot_accuracy_by_length
from switchssm.plots.state_tracking import plot_rotation_harmonics

__all__ = [
    "plot_accuracy_by_length",
    "plot_cue",
    "plot_gaussian_gap",
    "plot_mi_curve",
    "plot_posterior",
    "plot_posterior_vs_states",
    "plot_rotation_harmonics",
    "plot_switch_vs_gates",
]
