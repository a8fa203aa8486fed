"""Figures: posteriors over time, switch probabilities, comparison curves."""

from switchssm.plots.posterior import plot_posterior

__all__ = ["plot_posterior"]
