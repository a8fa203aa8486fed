"""Fitting switching models to sequences: EM, maximum likelihood, NUTS and SVI.

Every method takes the data in the layouts of :func:`switchssm.sequences.as_sequences` (one
sequence, a list of sequences of any lengths, or a padded array with ``lengths``), the same
structure options (``num_states``, ``emission``, ``gated``, ``cue``: ``None`` means "a cue iff
``u`` is given") and one :class:`Prior`; ``num_steps`` always counts optimizer steps
(``num_iters`` EM iterations). Point estimates come back as :class:`FitResult` (EM, MLE),
posteriors as :class:`BayesFit` (NUTS, SVI), both with ``params``, ``log_likelihood``,
``converged`` and ``metadata``.
"""

from switchssm.fit._spec import LargeAlphabetWarning
from switchssm.fit.bayes import bayesian_switching_model
from switchssm.fit.bayes import marginal_switching_model
from switchssm.fit.bayes import site_values
from switchssm.fit.bayes import to_switching_params
from switchssm.fit.distributed import replicate
from switchssm.fit.distributed import sequence_mesh
from switchssm.fit.distributed import shard_sequences
from switchssm.fit.distributed import sharded_log_likelihood
from switchssm.fit.em import fit_em
from switchssm.fit.mle import fit_mle
from switchssm.fit.nuts import fit_nuts
from switchssm.fit.priors import Prior
from switchssm.fit.result import BayesFit
from switchssm.fit.result import FitResult
from switchssm.fit.svi import fit_svi

__all__ = [
    "BayesFit",
    "FitResult",
    "LargeAlphabetWarning",
    "Prior",
    "bayesian_switching_model",
    "fit_em",
    "fit_mle",
    "fit_nuts",
    "fit_svi",
    "marginal_switching_model",
    "replicate",
    "sequence_mesh",
    "shard_sequences",
    "sharded_log_likelihood",
    "site_values",
    "to_switching_params",
]
