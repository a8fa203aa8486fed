"""Per-step log evidence ``log P(y_t, u_t | s_t, z_t)`` shared by the exact algorithms."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.special import logsumexp

from switchssm import _validation as V
from switchssm.models.params import SwitchingParams
from switchssm.types import Array
from switchssm.types import Float


def _as_array(x):
    """Lists, tuples and scalars as NumPy arrays; arrays and tracers unchanged."""
    if x is None or isinstance(x, (jax.Array, np.ndarray)):
        return x
    return np.asarray(x)


def validate_inputs(params: SwitchingParams, y, u) -> tuple:
    """Check ``y`` and ``u`` against ``params`` (concrete inputs only) and return them as
    arrays (a list or tuple becomes a NumPy array, so it can cross a ``jit`` boundary).

    Traced inputs are not checked: under ``jit`` an out-of-range symbol or a non-finite
    observation gives a NaN log-likelihood (``docs/numerics.md``), never a plausible number.
    """
    if not isinstance(params, SwitchingParams):
        raise ValueError(f"`params` must be a SwitchingParams, got {type(params).__name__}")
    y, u = _as_array(y), _as_array(u)
    if not V.is_concrete(y):
        return y, u
    params.emission.validate_observations(y, "y")
    T = np.shape(y)[0]
    if params.cue is None and u is not None:
        raise ValueError("`u` was given but `params.cue` is None: pass a GaussianCue or drop `u`")
    if params.cue is not None:
        if u is None:
            raise ValueError("`params.cue` is set, so the cue `u` (one value per step) is required")
        if V.is_concrete(u):
            params.cue.validate_observations(u, T, "u")
    return y, u


def _step_max(x, axis):
    """Per-step maximum over ``axis`` (0 where it is not finite), without a gradient."""
    m = jnp.max(x, axis=axis, keepdims=True)
    return lax.stop_gradient(jnp.where(jnp.isfinite(m), m, 0.0))


def normalized_log_evidence(params: SwitchingParams, y, u=None):
    r"""``(log_e - shift[:, None, None], shift)``: :func:`log_evidence` with each factor's
    per-step maximum taken out before the factors are added.

    The emission term :math:`\log P(y_t \mid k)` and the cue term :math:`\log P(u_t \mid z)`
    are each shifted by their own maximum over states, so an outlier in either (a log density
    of :math:`-5\cdot 10^{15}`, whose float64 spacing is 1) does not swamp the other's
    differences of order one when they are summed; ``shift`` (no gradient: every recursion is
    invariant to a per-step constant) is added back to the log-likelihood by the caller.
    """
    y = params.emission.prepare(y)
    ll = params.emission.log_prob(y)  # (T, K)
    m = _step_max(ll, -1)
    ll = ll - m
    shift = m[:, 0]
    if params.gated:
        bg = logsumexp(ll + jnp.log(params.initial_probs), axis=-1, keepdims=True)
        l0 = jnp.broadcast_to(bg, ll.shape)
    else:
        l0 = ll
    log_e = jnp.stack([l0, ll], axis=1)
    if params.cue is not None:
        lc = params.cue.log_prob(u)  # (T, 2)
        mc = _step_max(lc, -1)
        log_e = log_e + (lc - mc)[:, :, None]
        shift = shift + mc[:, 0]
    return log_e, shift


def log_evidence(params: SwitchingParams, y, u=None) -> Float[Array, "T 2 K"]:
    """``log_e[t, z, k] = log P(y_t, u_t | s_t = k, z_t = z)``.

    Always-emitting: ``log P(y_t | k) + log P(u_t | z)``. Gated: the ``z = 0`` row uses the
    background ``log Pbar(y_t) = log sum_k pi_k P(y_t | k)`` for every ``k``. The recursions
    use :func:`normalized_log_evidence`, which keeps each step's differences exact.
    """
    log_e, shift = normalized_log_evidence(params, y, u)
    return log_e + shift[:, None, None]


def log_switch_probs(params: SwitchingParams) -> Float[Array, 2]:
    """``(log(1 - rho), log rho)``."""
    rho = params.switch_prob
    return jnp.stack([jnp.log1p(-rho), jnp.log(rho)])
