"""switchssm: switching state-space models and the recurrent networks that compute their posteriors.

Subpackages: :mod:`switchssm.scan` (linear recurrences), :mod:`switchssm.models`,
:mod:`switchssm.inference`, :mod:`switchssm.rnn`, :mod:`switchssm.bridges`,
:mod:`switchssm.plots`, :mod:`switchssm.cli`.
"""

from switchssm import bridges, inference, io, models, rnn, scan

__version__ = "0.1.0"
__all__ = ["bridges", "inference", "io", "models", "rnn", "scan", "__version__"]
