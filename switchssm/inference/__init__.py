"""Exact and approximate inference for switching models (given their parameters).

Filtering, smoothing, likelihoods and posterior sampling of the categorical switching model
(:mod:`~switchssm.inference.exact`, many sequences at once in
:mod:`~switchssm.inference.batch`), variational message passing
(:mod:`~switchssm.inference.vmp`) and the run-length filter of the Gaussian-latent model
(:mod:`~switchssm.inference.changepoint`). Fitting the parameters is :mod:`switchssm.fit`.
"""

from switchssm.inference._emissions import validate_inputs as validate_inputs
from switchssm.inference.batch import batch_log_likelihood as batch_log_likelihood
from switchssm.inference.changepoint import RunLengthPosterior as RunLengthPosterior
from switchssm.inference.changepoint import run_length_filter as run_length_filter
from switchssm.inference.exact import FilterPosterior as FilterPosterior
from switchssm.inference.exact import SmoothPosterior as SmoothPosterior
from switchssm.inference.exact import filter as filter
from switchssm.inference.exact import gated_gate_and_candidate as gated_gate_and_candidate
from switchssm.inference.exact import log_likelihood as log_likelihood
from switchssm.inference.exact import posterior_sample as posterior_sample
from switchssm.inference.exact import smooth as smooth
from switchssm.inference.vmp import VMPPosterior as VMPPosterior
from switchssm.inference.vmp import VMPSmoothPosterior as VMPSmoothPosterior
from switchssm.inference.vmp import vmp_filter as vmp_filter
from switchssm.inference.vmp import vmp_smooth as vmp_smooth
