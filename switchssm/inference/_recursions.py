r"""Log-space recursions of the categorical switching model (the exact reference path).

Array-level building blocks shared by :mod:`switchssm.inference` (the log-space ``mode``,
the underflow fallbacks of the probability-space kernel, the sampler, VMP and the EM
E-step); the public entry points are :func:`~switchssm.inference.filter`,
:func:`~switchssm.inference.smooth` and :func:`~switchssm.inference.log_likelihood`.

Inputs everywhere: ``log_pi`` ``(K,)`` log stationary probabilities, ``log_rho2`` ``(2,)``
``(log(1 - rho), log rho)``, ``log_e`` ``(T, 2, K)`` log evidence
:math:`\log P(y_t, u_t \mid z_t, s_t)`.

Every recursion first subtracts from each step's evidence its maximum over :math:`(z, k)`
(:func:`normalize_steps`) and adds it back to the log normalizer: the posteriors do not
change, and sums such as :math:`\log\alpha_{t-1} + \log e_t` stay of order one, so an
observation :math:`10^8` standard deviations from every mean (log evidence
:math:`-5\cdot 10^{15}`, whose float64 spacing is 1) no longer swamps the forward message.

An impossible observation (evidence 0 under every state) gives a log-likelihood of
:math:`-\infty` (:func:`total`), never NaN; the posteriors from that step on are undefined
(NaN), and the public functions say which step it was.
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


def normalize_steps(log_e):
    """``(log_e - shift[:, None, None], shift)`` with ``shift[t]`` the maximum of step
    ``t``'s evidence over ``(z, k)`` (0 where it is not finite), without a gradient: the
    recursions are invariant to a per-step constant, which the log normalizer adds back."""
    m = jnp.max(log_e.reshape(log_e.shape[0], -1), axis=-1)
    shift = lax.stop_gradient(jnp.where(jnp.isfinite(m), m, 0.0))
    return log_e - shift[:, None, None], shift


def total(log_norms):
    """``sum_t log c_t``, and -inf (not NaN) once a step had probability 0 (the
    normalizers after such a step are NaN)."""
    return jnp.where(jnp.any(log_norms == -jnp.inf), -jnp.inf, jnp.sum(log_norms))


def first_impossible_step(log_norms) -> int | None:
    """Index of the first step with ``log c_t = -inf`` (concrete input), or None."""
    bad = jnp.nonzero(log_norms == -jnp.inf, size=1, fill_value=-1)[0]
    i = int(bad[0])
    return None if i < 0 else i


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
    log_e, shift = normalize_steps(log_e)

    def step(log_alpha, le):
        la = jnp.stack([log_rho2[0] + log_alpha + le[0], log_rho2[1] + log_pi + le[1]])
        lc = lse(la)
        lj = la - lc
        return jnp.logaddexp(lj[0], lj[1]), (lj, lc)

    _, (log_joint, log_norms) = lax.scan(step, log_pi, log_e)
    return log_joint, log_norms + shift


def backward_log(log_pi, log_rho2, log_e):
    """Backward messages :math:`\\log \\beta_t` (each up to a per-step constant), ``(T, K)``."""
    log_e, _ = normalize_steps(log_e)

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
    log_e, _ = normalize_steps(log_e)
    log_prev = jnp.concatenate([log_pi[None], log_filtered_s[:-1]], axis=0)
    lg0 = log_rho2[0] + log_prev + log_e[:, 0] + log_beta
    lg1 = log_rho2[1] + log_pi + log_e[:, 1] + log_beta
    lg = jnp.stack([lg0, lg1], axis=1)
    return lg - lse(lg.reshape(lg.shape[0], -1), axis=-1)[:, None, None]


def log_filter(log_pi, log_rho2, log_e, shift=0.0):
    """``(log-likelihood, filtered_s (T, K), filtered_z (T,))`` by the log-space forward pass
    (``shift``: per-step constants already taken out of ``log_e``, added back)."""
    log_joint, log_norms = forward_log(log_pi, log_rho2, log_e)
    joint = jnp.exp(log_joint)
    return total(log_norms) + jnp.sum(shift), joint.sum(axis=1), joint[:, 1].sum(-1)


def log_smoother(log_pi, log_rho2, log_e, shift=0.0):
    """:func:`log_filter` plus ``smoothed_s (T, K)`` and ``smoothed_z (T,)`` (forward-backward)."""
    log_joint, log_norms = forward_log(log_pi, log_rho2, log_e)
    log_filtered_s = jnp.logaddexp(log_joint[:, 0], log_joint[:, 1])
    log_beta = backward_log(log_pi, log_rho2, log_e)
    sm = jnp.exp(smoothed_joint_log(log_pi, log_rho2, log_e, log_filtered_s, log_beta))
    joint = jnp.exp(log_joint)
    ll = total(log_norms) + jnp.sum(shift)
    return (ll, joint.sum(1), joint[:, 1].sum(-1), sm.sum(1), sm[:, 1].sum(-1))
