"""Parallel-in-time forward and backward passes for the always-emitting switching model.

The forward message obeys :math:`\\tilde\\alpha_t = M_t \\tilde\\alpha_{t-1}` with
:math:`M_t = \\operatorname{diag}((1-\\rho) e_t(0)) + \\rho\\,(\\pi \\circ e_t(1)) 1^\\top`.
Identity-plus-rank-one matrices are not closed under products, so the parallel form scans
dense :math:`K \\times K` products with ``lax.associative_scan``: :math:`O(T K^3)` work and
:math:`O(T K^2)` memory, :math:`O(\\log T)` depth. It pays on accelerators; on CPU the
sequential :math:`O(TK)` recursion is faster (see ``benchmarks/``). Each product is kept
max-normalized, and each step's evidence is normalized by its maximum before it enters
(:func:`~switchssm.inference._recursions.normalize_steps`), so nothing overflows.

Products of probabilities can still underflow where the log-space recursion does not: with
no switching (:math:`\rho = 0`) a state's weight of :math:`e^{-800}` is kept exactly in log
space and is 0 here, and when later evidence favours that state by more, every entry of a
product is 0 and the messages are NaN. Where a pass returns NaN from NaN-free input, it is
recomputed by the sequential log-space recursion (a ``lax.cond``: under ``vmap`` both run).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from switchssm.inference._recursions import backward_log
from switchssm.inference._recursions import forward_log
from switchssm.inference._recursions import normalize_steps


def _log_transition(log_pi, log_rho2, log_e):
    """``log M_t[i, j] = log P(s_t = i, x_t | s_{t-1} = j)``, ``(T, K, K)``."""
    K = log_pi.shape[0]
    eye = jnp.eye(K, dtype=bool)
    diag = jnp.where(eye[None], (log_rho2[0] + log_e[:, 0])[:, :, None], -jnp.inf)
    rank1 = (log_rho2[1] + log_pi + log_e[:, 1])[:, :, None]
    return jnp.logaddexp(diag, jnp.broadcast_to(rank1, diag.shape))


def _normalized(log_m):
    m = jnp.max(log_m, axis=(-2, -1), keepdims=True)
    m = jnp.where(jnp.isfinite(m), m, 0.0)
    return jnp.exp(log_m - m)


def _combine(a, b):
    """Product ``b @ a`` (later on the left), max-normalized; log scales are dropped
    because only directions (normalized messages) are needed."""
    c = jnp.einsum("...ij,...jk->...ik", b, a)
    n = jnp.max(c, axis=(-2, -1), keepdims=True)
    return c / jnp.where(n > 0, n, 1.0)


def _log_normalize(v):
    s = jnp.sum(v, axis=-1, keepdims=True)
    return jnp.log(v) - jnp.log(s)


def _underflowed(out, log_e):
    """True where ``out`` has NaN that NaN-free evidence cannot explain (module docstring)."""
    return jnp.any(jnp.isnan(out)) & ~jnp.any(jnp.isnan(log_e))


def forward_log_parallel(log_pi, log_rho2, log_e):
    """Same outputs as :func:`switchssm.inference._recursions.forward_log`, by associative
    scan (the sequential recursion where the products underflowed)."""
    out = _forward_products(log_pi, log_rho2, log_e)
    return lax.cond(
        _underflowed(out[1], log_e), lambda: forward_log(log_pi, log_rho2, log_e), lambda: out
    )


def backward_log_parallel(log_pi, log_rho2, log_e):
    """Backward messages (up to per-step constants), ``(T, K)``, by reverse associative scan
    (the sequential recursion where the products underflowed)."""
    out = _backward_products(log_pi, log_rho2, log_e)
    return lax.cond(
        _underflowed(out, log_e), lambda: backward_log(log_pi, log_rho2, log_e), lambda: out
    )


def _forward_products(log_pi, log_rho2, log_e):
    log_e, shift = normalize_steps(log_e)
    mats = _normalized(_log_transition(log_pi, log_rho2, log_e))
    prefix = lax.associative_scan(_combine, mats)  # P_t = M_t ... M_1 (normalized)
    pi = jnp.exp(log_pi)
    log_alpha = _log_normalize(jnp.einsum("tij,j->ti", prefix, pi))
    log_prev = jnp.concatenate([log_pi[None], log_alpha[:-1]], axis=0)
    la = jnp.stack(
        [log_rho2[0] + log_prev + log_e[:, 0], log_rho2[1] + log_pi + log_e[:, 1]], axis=1
    )
    flat = la.reshape(la.shape[0], -1)
    m = jnp.max(flat, axis=-1, keepdims=True)
    m = jnp.where(jnp.isfinite(m), m, 0.0)
    lc = jnp.log(jnp.sum(jnp.exp(flat - m), axis=-1)) + m[:, 0]
    return la - lc[:, None, None], lc + shift


def _backward_products(log_pi, log_rho2, log_e):
    log_e, _ = normalize_steps(log_e)
    mats = _normalized(_log_transition(log_pi, log_rho2, log_e))
    mats_t = jnp.swapaxes(mats[1:], -1, -2)  # M_{t+1}^T for t = 1..T-1
    suffix = lax.associative_scan(_combine, mats_t, reverse=True)  # M_{t+1}^T ... M_T^T
    K = log_pi.shape[0]
    log_beta = _log_normalize(suffix.sum(-1))
    return jnp.concatenate([log_beta, jnp.zeros((1, K), log_e.dtype)], axis=0)
