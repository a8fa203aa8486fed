"""Generative switching models: parameter pytrees, NumPyro model functions, samplers."""

from switchssm.models.gaussian_latent import GaussianLatentParams as GaussianLatentParams
from switchssm.models.gaussian_latent import gaussian_latent_model as gaussian_latent_model
from switchssm.models.gaussian_latent import sample_gaussian_latent as sample_gaussian_latent
from switchssm.models.iohmm import IOHMMParams as IOHMMParams
from switchssm.models.iohmm import iohmm_model as iohmm_model
from switchssm.models.iohmm import sample_iohmm as sample_iohmm
from switchssm.models.params import CategoricalEmission as CategoricalEmission
from switchssm.models.params import GaussianCue as GaussianCue
from switchssm.models.params import GaussianEmission as GaussianEmission
from switchssm.models.params import SwitchingParams as SwitchingParams
from switchssm.models.switching import sample as sample
from switchssm.models.switching import switching_model as switching_model
