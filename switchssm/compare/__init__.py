"""Comparing posteriors with RNN hidden states: probes, CCA, unit matching, readout KL.

See :mod:`switchssm.compare.alignment`.
"""

from switchssm.compare.alignment import (
    CCAResult,
    ComparisonReport,
    MatchResult,
    ProbeResult,
    cca,
    clr,
    compare_posteriors,
    direct_route_states,
    linear_probe,
    match_units,
    readout_kl,
)

__all__ = [
    "CCAResult",
    "ComparisonReport",
    "MatchResult",
    "ProbeResult",
    "cca",
    "clr",
    "compare_posteriors",
    "direct_route_states",
    "linear_probe",
    "match_units",
    "readout_kl",
]
