r"""Log-space recursions of the categorical switching model (the exact reference path).

Array-level building blocks shared by :mod:`switchssm.inference` (the log-space ``mode``,
the underflow fallbacks of the probability-space kernel, the sampler, VMP and the EM
E-step); the public entry points are :func:`~switchssm.inference.filter`,
:func:`~switchssm.inference.smooth` and :func:`~switchssm.inference.log_likelihood`.

Inputs everywhere: ``log_pi`` ``(K,)`` log stationary probabilities, ``log_rho2`` ``(2,)``
``(log(1 - rho), log rho)``, ``log_e`` ``(T, 2, K)`` log evidence
:math:`\log P(y_t, u_t \mid z_t, s_t)`.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax


def lse(x, axis=None):
    """logsumexp that returns -inf (not NaN) when every entry is -inf."""
    m = jnp.max(x, axis=axis, keepdims=True)
    m = lax.stop_gradient(jnp.where(jnp.isfinite(m), m, 0.0))
    out = jnp.log(jnp.sum(jnp.exp(x - m), axis=axis, keepdims=True)) + m
    return jnp.squeeze(out, axis=axis) if axis is not None else out.reshape(())


# --------------------------------------------------------------------------------------
# General (always-emitting or gated) O(T K) recursions in log space.


def forward_log(log_pi, log_rho2, log_e):
    """Normalized forward pass in log space.

    Args:
        log_pi: ``(K,)`` log initial/stationary probabilities.
        log_rho2: ``(2,)`` ``(log(1-rho), log rho)``.
        log_e: ``(T, 2, K)`` log evidence per step, switch value and state.

    Returns:
        ``(log_joint, log_norms)``: ``(T, 2, K)`` log filtered joint
        :math:`\\log P(z_t, s_t \\mid x_{1:t})` and ``(T,)`` per-step :math:`\\log c_t`.
    """

    def step(log_alpha, le):
        la = jnp.stack([log_rho2[0] + log_alpha + le[0], log_rho2[1] + log_pi + le[1]])
        lc = lse(la)
        lj = la - lc
        return jnp.logaddexp(lj[0], lj[1]), (lj, lc)

    _, (log_joint, log_norms) = lax.scan(step, log_pi, log_e)
    return log_joint, log_norms


def backward_log(log_pi, log_rho2, log_e):
    """Backward messages :math:`\\log \\beta_t` (each up to a per-step constant), ``(T, K)``."""

    def step(log_beta, le):
        b0 = log_rho2[0] + le[0] + log_beta
        b1 = log_rho2[1] + lse(log_pi + le[1] + log_beta)
        nb = jnp.logaddexp(b0, b1)
        nb = nb - lax.stop_gradient(jnp.max(nb))
        return nb, nb

    K = log_pi.shape[0]
    zero = jnp.zeros((K,), log_e.dtype)
    last, ys = lax.scan(step, zero, log_e[1:], reverse=True)
    del last
    return jnp.concatenate([ys, zero[None]], axis=0)


def smoothed_joint_log(log_pi, log_rho2, log_e, log_filtered_s, log_beta):
    """Log smoothed joint :math:`\\log P(z_t, s_t \\mid x_{1:T})`, ``(T, 2, K)``."""
    log_prev = jnp.concatenate([log_pi[None], log_filtered_s[:-1]], axis=0)
    lg0 = log_rho2[0] + log_prev + log_e[:, 0] + log_beta
    lg1 = log_rho2[1] + log_pi + log_e[:, 1] + log_beta
    lg = jnp.stack([lg0, lg1], axis=1)
    return lg - lse(lg.reshape(lg.shape[0], -1), axis=-1)[:, None, None]


def log_filter(log_pi, log_rho2, log_e):
    """``(log-likelihood, filtered_s (T, K), filtered_z (T,))`` by the log-space forward pass."""
    log_joint, log_norms = forward_log(log_pi, log_rho2, log_e)
    joint = jnp.exp(log_joint)
    return jnp.sum(log_norms), joint.sum(axis=1), joint[:, 1].sum(-1)


def log_smoother(log_pi, log_rho2, log_e):
    """:func:`log_filter` plus ``smoothed_s (T, K)`` and ``smoothed_z (T,)`` (forward-backward)."""
    log_joint, log_norms = forward_log(log_pi, log_rho2, log_e)
    log_filtered_s = jnp.logaddexp(log_joint[:, 0], log_joint[:, 1])
    log_beta = backward_log(log_pi, log_rho2, log_e)
    sm = jnp.exp(smoothed_joint_log(log_pi, log_rho2, log_e, log_filtered_s, log_beta))
    joint = jnp.exp(log_joint)
    return (jnp.sum(log_norms), joint.sum(1), joint[:, 1].sum(-1), sm.sum(1), sm[:, 1].sum(-1))
