"""Bijections between constrained parameters and the unconstrained coordinates of MLE.

``pi`` and each row of ``B``: softmax of logits; ``rho``: sigmoid; the Gaussian covariance
:math:`LL^\\top` with ``L`` lower triangular with a softplus diagonal; the cue scale: softplus.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from switchssm.models.params import CategoricalEmission
from switchssm.models.params import GaussianCue
from switchssm.models.params import GaussianEmission
from switchssm.models.params import SwitchingParams


def _softplus_inv(x):
    return x + jnp.log(-jnp.expm1(-x))


def _safe_log(p):
    return jnp.log(jnp.maximum(p, jnp.finfo(jnp.result_type(p)).tiny))


def to_unconstrained(params: SwitchingParams) -> dict:
    """Unconstrained coordinates of ``params`` (a dict pytree)."""
    rho = jnp.clip(params.switch_prob, 1e-12, 1 - 1e-12)
    theta = {"pi": _safe_log(params.initial_probs), "rho": jnp.log(rho) - jnp.log1p(-rho)}
    em = params.emission
    if isinstance(em, CategoricalEmission):
        theta["emission"] = {"logits": _safe_log(em.probs)}
    else:
        L = jnp.linalg.cholesky(em.cov)
        raw = jnp.tril(L, -1) + jnp.diag(_softplus_inv(jnp.diag(L)))
        theta["emission"] = {"means": em.means, "chol": raw}
    if params.cue is not None:
        scale = jnp.sqrt(jnp.mean(jnp.broadcast_to(params.cue.scale, (params.cue.dim,)) ** 2))
        theta["cue"] = {"means": params.cue.means, "scale": _softplus_inv(scale)}
    return theta


def to_params(theta: dict, gated: bool) -> SwitchingParams:
    """The parameters at unconstrained coordinates ``theta`` (inverse of
    :func:`to_unconstrained`; the cue keeps one scale)."""
    if "logits" in theta["emission"]:
        em = CategoricalEmission(jax.nn.softmax(theta["emission"]["logits"], axis=-1))
    else:
        raw = theta["emission"]["chol"]
        L = jnp.tril(raw, -1) + jnp.diag(jax.nn.softplus(jnp.diag(raw)))
        em = GaussianEmission(theta["emission"]["means"], L @ L.T)
    cue = None
    if "cue" in theta:
        cue = GaussianCue(theta["cue"]["means"], jax.nn.softplus(theta["cue"]["scale"]))
    return SwitchingParams(
        jax.nn.softmax(theta["pi"]), jax.nn.sigmoid(theta["rho"]), em, cue, gated=gated
    )
