"""Figures: posteriors over time, switch probabilities, comparison curves."""

from switchssm.plots.compare import plot_posterior_vs_states
from switchssm.plots.compare import plot_switch_vs_gates
from switchssm.plots.curves import plot_gaussian_gap
from switchssm.plots.curves import plot_mi_curve
from switchssm.plots.posterior import plot_posterior

__all__ = [
    "plot_gaussian_gap",
    "plot_mi_curve",
    "plot_posterior",
    "plot_posterior_vs_states",
    "plot_switch_vs_gates",
]
