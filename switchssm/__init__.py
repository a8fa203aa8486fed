"""switchssm: switching state-space models and the recurrent networks that compute their posteriors.

Subpackages, in the direction of their dependencies: :mod:`switchssm.scan` (linear
recurrences, a leaf) and :mod:`switchssm.sequences` (the container for many sequences);
:mod:`switchssm.models` (parameters, NumPyro models, samplers); :mod:`switchssm.inference`
(exact and variational inference given parameters); :mod:`switchssm.fit` (EM, MLE, NUTS,
SVI); :mod:`switchssm.rnn` (cells, no probability); :mod:`switchssm.bridges` (maps between
models and cells); :mod:`switchssm.compare` (cell states vs posteriors); on top,
:mod:`switchssm.verify` (references, sweeps, the checks), :mod:`switchssm.pipelines`,
:mod:`switchssm.plots`, :mod:`switchssm.data`, :mod:`switchssm.io` and :mod:`switchssm.cli`.
"""

from switchssm import bridges
from switchssm import fit
from switchssm import inference
from switchssm import io
from switchssm import models
from switchssm import rnn
from switchssm import scan
from switchssm import sequences

__version__ = "0.1.0"
__all__ = [
    "bridges",
    "fit",
    "inference",
    "io",
    "models",
    "rnn",
    "scan",
    "sequences",
    "__version__",
]
