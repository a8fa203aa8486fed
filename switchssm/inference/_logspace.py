r"""The log-space log-likelihood with a derivative taken in probability space.

:math:`P(x_{1:T})` is multilinear in the probability-space factors of the model: the
stationary law :math:`\pi`, :math:`1-\rho` and :math:`\rho`, and the emission rows
:math:`R_t(k) = P(y_t \mid s_t = k)`. Differentiating the log-space recursion by reverse mode
goes through :math:`\log` of each factor, and where a factor is 0 (a symbol a state never
emits, :math:`\rho = 1`, a state with :math:`\pi_k = 0`) that is :math:`0 \cdot \infty =`
NaN, although the derivative of :math:`\log P` is finite there: for a factor :math:`f`,

.. math::

    \frac{\partial \log P}{\partial f} = \frac{E[\text{number of uses of } f]}{f}
    = \frac{\sum \text{(weights of the paths through } f\text{, without } f)}{P},

which the forward and backward messages give directly, in log space, without dividing by
:math:`f`. :func:`log_likelihood` is a ``jax.custom_jvp`` whose tangent is that linear
form: exact one-sided derivatives at the boundary, forward mode (``jax.jvp``,
``jax.hessian``) and reverse mode (JAX transposes the linear tangent) alike. Factors that
are log densities (a Gaussian emission or cue) enter through their logs, with the smoothed
marginals as coefficients, so a density too small to represent still passes its gradient.

With :math:`\alpha_{t-1}` the normalized filter, :math:`\beta_t` the backward message (any
per-step scale), :math:`a_t(0, k) = (1-\rho)\alpha_{t-1}(k) e_t(0, k)`,
:math:`a_t(1, k) = \rho\pi_k e_t(1, k)` and :math:`\nu_t = \sum_{z,k} a_t(z,k)\beta_t(k)`:
:math:`\partial \log P / \partial e_t(z, k) = a_t(z, k)\beta_t(k) / (e_t(z,k)\,\nu_t)`, and
the same with :math:`1-\rho`, :math:`\rho` or :math:`\pi_k` (and :math:`\alpha_0 = \pi`)
taken out in place of :math:`e_t`.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from switchssm.inference import _parallel
from switchssm.inference._recursions import backward_log
from switchssm.inference._recursions import forward_log
from switchssm.inference._recursions import lse
from switchssm.inference._recursions import normalize_steps
from switchssm.inference._recursions import total
from switchssm.models.params import CategoricalEmission
from switchssm.models.params import SwitchingParams
from switchssm.types import Array


class Factors(NamedTuple):
    """The always-emitting model's likelihood factors for one sequence.

    Attributes:
        pi: ``(K,)`` stationary law.
        rho: ``()`` switch probability.
        table: ``(V + 2, K)`` emission probabilities :math:`P(y = v \\mid k)` (row ``V``
            ones, for masked steps; row ``V + 1`` NaN, for symbols out of range), or None.
        index: ``(T,)`` int32 row of ``table`` per step, or None.
        log_rows: ``(T, K)`` log emission densities (a Gaussian emission), or None.
        log_cue: ``(T, 2)`` log cue densities :math:`\\log P(u_t \\mid z)` (zeros without
            a cue).
        shift: ``(T,)`` per-step constants taken out of ``log_rows`` and ``log_cue`` (each
            is shifted by its own maximum over states, so an outlier in one does not swamp
            the other's differences), added back to the log-likelihood; no gradient.
    """

    pi: Array
    rho: Array
    table: Array | None
    index: Array | None
    log_rows: Array | None
    log_cue: Array
    shift: Array


def symbol_index(em: CategoricalEmission, y, mask=None):
    """Row of the padded table per step: ``y``, ``V`` where masked, ``V + 1`` (the NaN row)
    where ``y`` is out of range: a traced out-of-range symbol gives NaN, not a number."""
    V = em.num_symbols
    index = jnp.where(em.valid_symbols(y), jnp.asarray(y, dtype=jnp.int32), V + 1)
    if mask is not None:
        index = jnp.where(mask, index, V)
    return index


def padded_table(em: CategoricalEmission):
    """``(V + 2, K)``: :math:`P(y = v \\mid k)`, a row of ones, a row of NaN."""
    K = em.num_states
    probs = em.probs
    extra = jnp.stack([jnp.ones((K,), probs.dtype), jnp.full((K,), jnp.nan, probs.dtype)])
    return jnp.concatenate([probs.T, extra], axis=0)


def step_max(x):
    """``(T, 1)`` per-step maximum over the last axis (0 where not finite), no gradient."""
    m = jnp.max(x, axis=-1, keepdims=True)
    return jax.lax.stop_gradient(jnp.where(jnp.isfinite(m), m, 0.0))


def factors(params: SwitchingParams, y, u=None, mask=None) -> Factors:
    """:class:`Factors` of ``(y, u)`` (``mask`` False: a padded step, evidence 1)."""
    em = params.emission
    T = jnp.shape(y)[0]
    dtype = params.initial_probs.dtype
    shift = jnp.zeros((T,), dtype)
    if isinstance(em, CategoricalEmission):
        table, index, log_rows = padded_table(em), symbol_index(em, y, mask), None
    else:
        log_rows = em.log_prob(em.prepare(y))
        m = step_max(log_rows)
        log_rows, shift = log_rows - m, shift + m[:, 0]
        table = index = None
    if params.cue is None:
        log_cue = jnp.zeros((T, 2), dtype)
    else:
        log_cue = params.cue.log_prob(u)
        m = step_max(log_cue)
        log_cue, shift = log_cue - m, shift + m[:, 0]
    if mask is not None:
        if log_rows is not None:
            log_rows = jnp.where(mask[:, None], log_rows, 0.0)
        log_cue = jnp.where(mask[:, None], log_cue, 0.0)
        shift = jnp.where(mask, shift, 0.0)
    rho = params.switch_prob
    return Factors(params.initial_probs, rho, table, index, log_rows, log_cue, shift)


def _log_rows(f: Factors):
    return jnp.log(f.table)[f.index] if f.log_rows is None else f.log_rows


def _log_rho2(rho):
    return jnp.stack([jnp.log1p(-rho), jnp.log(rho)])


def _messages(f: Factors, parallel: bool):
    log_pi, log_rho2 = jnp.log(f.pi), _log_rho2(f.rho)
    log_r = _log_rows(f)
    log_e = log_r[:, None, :] + f.log_cue[:, :, None]
    if parallel:
        log_joint, log_norms = _parallel.forward_log_parallel(log_pi, log_rho2, log_e)
        log_beta = _parallel.backward_log_parallel(log_pi, log_rho2, log_e)
    else:
        log_joint, log_norms = forward_log(log_pi, log_rho2, log_e)
        log_beta = backward_log(log_pi, log_rho2, log_e)
    return log_pi, log_rho2, log_r, log_e, log_joint, log_norms, log_beta


@partial(jax.custom_jvp, nondiff_argnums=(1,))
def log_likelihood(f: Factors, parallel: bool = False):
    """:math:`\\log P(x_{1:T})` by the log-space forward recursion (``parallel``: the
    associative scan); -inf for an impossible sequence. Derivative: module docstring."""
    log_pi, log_rho2 = jnp.log(f.pi), _log_rho2(f.rho)
    log_e = _log_rows(f)[:, None, :] + f.log_cue[:, :, None]
    if parallel:
        _, log_norms = _parallel.forward_log_parallel(log_pi, log_rho2, log_e)
    else:
        _, log_norms = forward_log(log_pi, log_rho2, log_e)
    return total(log_norms) + jnp.sum(f.shift)


@log_likelihood.defjvp
def _log_likelihood_jvp(parallel, primals, tangents):
    (f,), (df,) = primals, tangents
    log_pi, log_rho2, log_r, log_e, log_joint, log_norms, log_beta = _messages(f, parallel)
    shift = normalize_steps(log_e)[1]
    log_alpha = jnp.logaddexp(log_joint[:, 0], log_joint[:, 1])
    log_prev = jnp.concatenate([log_pi[None], log_alpha[:-1]], axis=0)
    lc0 = (f.log_cue[:, 0] - shift)[:, None]
    lc1 = (f.log_cue[:, 1] - shift)[:, None]
    # a_t(z, k) without the emission row, and the log of beta_t(k) / nu_t
    w0 = log_rho2[0] + log_prev + lc0
    w1 = log_rho2[1] + log_pi + lc1
    la = jnp.stack([w0 + log_r, w1 + log_r], axis=1)
    log_nu = lse((la + log_beta[:, None, :]).reshape(la.shape[0], -1), axis=-1)
    q = log_beta - log_nu[:, None]
    g0, g1 = jnp.exp(la[:, 0] + q), jnp.exp(la[:, 1] + q)  # smoothed joint
    out = jnp.sum(g0.sum(-1) * df.log_cue[:, 0] + g1.sum(-1) * df.log_cue[:, 1])
    if f.log_rows is not None:
        out = out + jnp.sum((g0 + g1) * df.log_rows)
    else:
        g_rows = jnp.exp(jnp.logaddexp(w0, w1) + q)  # d log P / d R_t(k)
        out = out + jnp.sum(g_rows * df.table[f.index])
    g_keep = jnp.sum(jnp.exp(log_prev + log_r + lc0 + q))
    g_rho = jnp.sum(jnp.exp(log_pi + log_r + lc1 + q))
    out = out + (g_rho - g_keep) * df.rho
    g_pi = jnp.sum(jnp.exp(log_rho2[1] + log_r + lc1 + q), axis=0)
    g_pi = g_pi + jnp.exp(log_rho2[0] + log_r[0] + lc0[0] + q[0])  # alpha_0 = pi
    out = out + jnp.sum(g_pi * df.pi)
    return total(log_norms) + jnp.sum(f.shift), out


def cotangents(f: Factors, g) -> Factors:
    """Cotangent of ``g * log_likelihood(f)`` (sequential): the derivative of the module
    docstring, by one log-space forward scan that keeps only :math:`\\log\\alpha_t` and one
    backward scan that accumulates the coefficients as it goes.

    The same numbers as reverse mode through :func:`log_likelihood`
    (``tests/inference/test_robustness.py``), with no ``(T, 2, K)`` array formed: the
    probability-space kernel's VJP (:mod:`._scaled`) falls back to it inside a ``lax.cond``
    where its messages underflow, and XLA plans that branch's buffers beside the fast
    path's (at K = 64, T = 10^4 the gradient's plan is 20.7 MB with this fallback, 46.2 MB
    with reverse mode; ``benchmarks/README.md``).
    """
    log_pi, log_rho2 = jnp.log(f.pi), _log_rho2(f.rho)
    T = f.log_cue.shape[0]
    categorical = f.log_rows is None
    log_table = jnp.log(f.table) if categorical else None

    def rows(x_t):
        return log_table[x_t] if categorical else x_t

    xs = (f.index if categorical else f.log_rows, f.log_cue)

    def forward_step(log_alpha, inp):
        log_r, lc = rows(inp[0]), inp[1]
        la = jnp.stack([log_rho2[0] + log_alpha + lc[0], log_rho2[1] + log_pi + lc[1]]) + log_r
        lj = la - lse(la)
        new = jnp.logaddexp(lj[0], lj[1])
        return new, new

    _, log_alpha = lax.scan(forward_step, log_pi, xs)
    log_prev = jnp.concatenate([log_pi[None], log_alpha[:-1]], axis=0)
    first = jnp.arange(T) == 0

    def backward_step(carry, inp):
        log_beta, g_pi, g_keep, g_rho = carry
        x_t, lc, lp, is_first = inp
        log_r = rows(x_t)
        w0 = log_rho2[0] + lp + lc[0]
        w1 = log_rho2[1] + log_pi + lc[1]
        la0, la1 = w0 + log_r, w1 + log_r
        q = log_beta - lse(jnp.stack([la0, la1]) + log_beta)
        g0, g1 = jnp.exp(la0 + q), jnp.exp(la1 + q)  # smoothed joint
        g_row = jnp.exp(jnp.logaddexp(w0, w1) + q) if categorical else g0 + g1
        keep_k = jnp.exp(lp + log_r + lc[0] + q)  # d log P / d(1 - rho), by state
        fresh_k = jnp.exp(log_pi + log_r + lc[1] + q)  # d log P / d(rho), by state
        g_pi = g_pi + jnp.exp(log_rho2[1] + log_r + lc[1] + q)  # a_t(1, k) without pi_k
        # alpha_0 = pi: a_1(0, k) without pi_k
        g_pi = g_pi + jnp.where(is_first, jnp.exp(log_rho2[0] + log_r + lc[0] + q), 0.0)
        # backward message of step t - 1
        b0 = log_rho2[0] + log_r + lc[0] + log_beta
        b1 = log_rho2[1] + lse(log_pi + log_r + lc[1] + log_beta)
        nb = jnp.logaddexp(b0, b1)
        nb = nb - jnp.max(nb)
        carry = nb, g_pi, g_keep + jnp.sum(keep_k), g_rho + jnp.sum(fresh_k)
        return carry, (g_row, jnp.stack([jnp.sum(g0), jnp.sum(g1)]))

    K, dtype = log_pi.shape[0], log_pi.dtype
    zero = jnp.zeros((), dtype)
    init = (jnp.zeros((K,), dtype), jnp.zeros((K,), dtype), zero, zero)
    (_, g_pi, g_keep, g_rho), (g_rows, g_cue) = lax.scan(
        backward_step, init, (*xs, log_prev, first), reverse=True
    )
    if categorical:
        g_table = jax.ops.segment_sum(g_rows, f.index, num_segments=f.table.shape[0])
        g_index = np.zeros(f.index.shape, jax.dtypes.float0)
        g_log_rows = None
    else:
        g_table = g_index = None
        g_log_rows = g * g_rows
    return Factors(
        pi=g * g_pi,
        rho=g * (g_rho - g_keep),
        table=None if g_table is None else g * g_table,
        index=g_index,
        log_rows=g_log_rows,
        log_cue=g * g_cue,
        shift=jnp.broadcast_to(g, f.shift.shape),
    )


@partial(jax.custom_jvp, nondiff_argnums=(2,))
def log_mix(p, r, r_is_log: bool):
    """:math:`\\log \\sum_k p_k r_k` over the last axis, computed in log space, with the
    derivative of the module docstring (finite where a ``p_k`` or ``r_k`` is 0). ``r`` is
    a probability, or a log density if ``r_is_log``."""
    log_r = r if r_is_log else jnp.log(r)
    return lse(jnp.log(p) + log_r, axis=-1)


@log_mix.defjvp
def _log_mix_jvp(r_is_log, primals, tangents):
    (p, r), (dp, dr) = primals, tangents
    log_p = jnp.log(p)
    log_r = r if r_is_log else jnp.log(r)
    v = lse(log_p + log_r, axis=-1)
    coef_p = jnp.exp(log_r - v[..., None])
    coef_r = jnp.exp(log_p + log_r - v[..., None]) if r_is_log else jnp.exp(log_p - v[..., None])
    return v, jnp.sum(coef_p * dp, axis=-1) + jnp.sum(coef_r * dr, axis=-1)
