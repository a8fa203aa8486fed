"""Small switching models and a NumPy sampler shared by several test modules.

The sampler is written from the model's definition (docs/theory.md section 2) with NumPy,
independently of the package's JAX sampler.
"""

import numpy as np

from switchssm.models import CategoricalEmission
from switchssm.models import GaussianCue
from switchssm.models import GaussianEmission
from switchssm.models import SwitchingParams

EMISSION_PROBS = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])


def three_state_params(gated, emission="categorical", cue=True):
    """K = 3, pi = (0.2, 0.5, 0.3), rho = 0.25; categorical emission ``EMISSION_PROBS`` or
    2-d Gaussian; optional cue N(-0.3 or 1.1, 0.6^2)."""
    em = (
        CategoricalEmission(EMISSION_PROBS)
        if emission == "categorical"
        else GaussianEmission(np.array([[0.0, 1.0], [2.0, -1.0], [-2.0, 0.5]]), np.eye(2) * 0.7)
    )
    c = GaussianCue(np.array([-0.3, 1.1]), 0.6) if cue else None
    return SwitchingParams(np.array([0.2, 0.5, 0.3]), 0.25, em, c, gated=gated)


def np_sample(rng, params, T):
    """Draw (y, u) from the switching model with NumPy (no jit compilation per structure)."""
    pi = np.asarray(params.initial_probs)
    rho = float(params.switch_prob)
    K = len(pi)
    z = (rng.random(T) < rho).astype(int)
    s, prev = np.empty(T, int), rng.choice(K, p=pi)
    for t in range(T):
        s[t] = prev = rng.choice(K, p=pi) if z[t] else prev
    # gated emission: without a switch y comes from the mixture, i.e. a fresh pi-draw
    emit = np.where(z == 1, s, rng.choice(K, size=T, p=pi)) if params.gated else s
    em = params.emission
    if isinstance(em, CategoricalEmission):
        B = np.asarray(em.probs)
        y = np.array([rng.choice(B.shape[1], p=B[k]) for k in emit])
    else:
        L = np.linalg.cholesky(np.asarray(em.cov))
        y = np.asarray(em.means)[emit] + rng.normal(size=(T, L.shape[0])) @ L.T
    u = None
    if params.cue is not None:
        m = np.asarray(params.cue.means)
        u = m[z] + np.asarray(params.cue.scale) * rng.normal(size=m[z].shape)
    return y, u
