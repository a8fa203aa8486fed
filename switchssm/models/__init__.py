"""Generative switching models: parameter pytrees, NumPyro model functions, samplers."""

from switchssm.models.gaussian_latent import (
    GaussianLatentParams,
    gaussian_latent_model,
    sample_gaussian_latent,
)
from switchssm.models.params import (
    CategoricalEmission,
    GaussianCue,
    GaussianEmission,
    SwitchingParams,
)
from switchssm.models.switching import marginal_switching_model, sample, switching_model

__all__ = [
    "CategoricalEmission",
    "GaussianCue",
    "GaussianEmission",
    "GaussianLatentParams",
    "SwitchingParams",
    "gaussian_latent_model",
    "marginal_switching_model",
    "sample",
    "sample_gaussian_latent",
    "switching_model",
]
