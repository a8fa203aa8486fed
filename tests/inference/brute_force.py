"""Moved to :mod:`switchssm.inference.brute_force`; re-exported for older imports."""

from switchssm.inference.brute_force import (  # noqa: F401
    brute_force,
    cue_loglik,
    emission_loglik,
    path_log_joint,
)
