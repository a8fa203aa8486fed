"""Per-step log evidence ``log P(y_t, u_t | s_t, z_t)`` shared by the exact algorithms."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from switchssm import _validation as V
from switchssm.models.params import SwitchingParams
from switchssm.types import Array
from switchssm.types import Float


def validate_inputs(params: SwitchingParams, y, u) -> None:
    """Check ``y`` and ``u`` against ``params`` (concrete inputs only)."""
    if not isinstance(params, SwitchingParams):
        raise ValueError(f"`params` must be a SwitchingParams, got {type(params).__name__}")
    if not V.is_concrete(y):
        return
    params.emission.validate_observations(y, "y")
    T = np.shape(y)[0]
    if params.cue is None and u is not None:
        raise ValueError("`u` was given but `params.cue` is None: pass a GaussianCue or drop `u`")
    if params.cue is not None:
        if u is None:
            raise ValueError("`params.cue` is set, so the cue `u` (one value per step) is required")
        if V.is_concrete(u):
            params.cue.validate_observations(u, T, "u")


def log_evidence(params: SwitchingParams, y, u=None) -> Float[Array, "T 2 K"]:
    """``log_e[t, z, k] = log P(y_t, u_t | s_t = k, z_t = z)``.

    Always-emitting: ``log P(y_t | k) + log P(u_t | z)``. Gated: the ``z = 0`` row uses the
    background ``log Pbar(y_t) = log sum_k pi_k P(y_t | k)`` for every ``k``.
    """
    y = params.emission.prepare(y)
    ll = params.emission.log_prob(y)  # (T, K)
    if params.gated:
        bg = logsumexp(ll + jnp.log(params.initial_probs), axis=-1, keepdims=True)
        l0 = jnp.broadcast_to(bg, ll.shape)
    else:
        l0 = ll
    log_e = jnp.stack([l0, ll], axis=1)
    if params.cue is not None:
        log_e = log_e + params.cue.log_prob(u)[:, :, None]
    return log_e


def log_switch_probs(params: SwitchingParams) -> Float[Array, 2]:
    """``(log(1 - rho), log rho)``."""
    rho = params.switch_prob
    return jnp.stack([jnp.log1p(-rho), jnp.log(rho)])
