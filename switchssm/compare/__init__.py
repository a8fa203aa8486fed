"""Comparing posteriors with RNN hidden states (probes, CCA, unit matching, readout KL, in
:mod:`switchssm.compare.alignment`) and matching state labels (:mod:`switchssm.compare.labels`).
"""

from switchssm.compare.alignment import CCAResult as CCAResult
from switchssm.compare.alignment import ComparisonReport as ComparisonReport
from switchssm.compare.alignment import MatchResult as MatchResult
from switchssm.compare.alignment import ProbeResult as ProbeResult
from switchssm.compare.alignment import cca as cca
from switchssm.compare.alignment import clr as clr
from switchssm.compare.alignment import compare_posteriors as compare_posteriors
from switchssm.compare.alignment import direct_route_states as direct_route_states
from switchssm.compare.alignment import linear_probe as linear_probe
from switchssm.compare.alignment import match_units as match_units
from switchssm.compare.alignment import readout_kl as readout_kl
from switchssm.compare.labels import match_labels as match_labels
from switchssm.compare.labels import match_states as match_states
from switchssm.compare.labels import matched_accuracy as matched_accuracy
