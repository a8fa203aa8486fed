"""Exact and approximate inference for switching models."""

from switchssm.inference._emissions import validate_inputs
from switchssm.inference.bayes import (
    BayesFit,
    Priors,
    SVIFit,
    bayesian_switching_model,
    fit_nuts,
    fit_svi,
    load_inference_data,
    save_inference_data,
    to_switching_params,
)
from switchssm.inference.changepoint import RunLengthPosterior, run_length_filter
from switchssm.inference.distributed import (
    replicate,
    sequence_mesh,
    shard_sequences,
    sharded_log_likelihood,
)
from switchssm.inference.exact import (
    FilterPosterior,
    SmoothPosterior,
    filter,
    log_likelihood,
    posterior_sample,
    smooth,
)
from switchssm.inference.learn import (
    FitResult,
    Prior,
    Sequences,
    as_sequences,
    batch_log_likelihood,
    fit_em,
    fit_mle,
)
from switchssm.inference.vmp import VMPPosterior, VMPSmoothPosterior, vmp_filter, vmp_smooth

__all__ = [
    "replicate",
    "sequence_mesh",
    "shard_sequences",
    "sharded_log_likelihood",
    "BayesFit",
    "Priors",
    "SVIFit",
    "bayesian_switching_model",
    "fit_nuts",
    "fit_svi",
    "load_inference_data",
    "save_inference_data",
    "to_switching_params",
    "FitResult",
    "Prior",
    "Sequences",
    "as_sequences",
    "batch_log_likelihood",
    "fit_em",
    "fit_mle",
    "FilterPosterior",
    "RunLengthPosterior",
    "SmoothPosterior",
    "VMPPosterior",
    "VMPSmoothPosterior",
    "filter",
    "log_likelihood",
    "posterior_sample",
    "run_length_filter",
    "smooth",
    "validate_inputs",
    "vmp_filter",
    "vmp_smooth",
]
