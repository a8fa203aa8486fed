r"""Variational message passing (VMP) with seed 000's factorization ``Q(s, z) = Q(z) Q(s | z)``.

Seed 000 reads minGRU as the coordinate-ascent update of a variational posterior
``Q(s, z | x) = Q(z | x) Q(s | x, z)`` of the switching model (docs/theory.md section 2). This
module derives those updates for the categorical switching model (gated and
always-emitting, with or without a cue), compiles them to ``lax.scan``, and returns the one
term of the ``Q(z)`` update that depends on ``s`` (``gate_s_term``). Dropping that term is
exactly minGRU's gate.

Notation
--------
``e_t(z, k) = P(y_t, u_t | s_t = k, z_t = z)`` (``_emissions.log_evidence``) splits into a
cue part and an ``s`` part::

    log e_t(0, k) = c_t(0) + a_t(k),        log e_t(1, k) = c_t(1) + l_t(k),
    c_t(z) = log N(u_t | m_z, tau^2)        (0 without a cue),
    l_t(k) = log P(y_t | s_t = k),
    a_t(k) = l_t(k)                          always-emitting,
    a_t(k) = log Pbar(y_t) = log sum_j pi_j exp l_t(j)   gated (the same for every k),
    b_t(k) = log pi_k + l_t(k)               log-potential of a fresh draw,
    <p, f> = sum_k p(k) f(k).

1. The family
-------------
::

    Q(s_{0:T}, z_{1:T}) = r_0(s_0) prod_t Q(z_t) Q(s_t | s_{t-1}, z_t),
    Q(z_t = 1) = g_t = sigmoid(lambda_t)                   (natural parameter lambda_t),
    Q(s_t | s_{t-1}, z_t = 0) = delta(s_t = s_{t-1})       (copy, as in the model),
    Q(s_t | s_{t-1}, z_t = 1) = r_t(s_t) = softmax(eta_t)  (fresh draw, natural param. eta_t).

This is ``Q(z | x) Q(s | x, z)`` with ``Q(z | x)`` factorized over time and ``Q(s | x, z)`` a
chain that copies when ``z_t = 0``: the structure of minGRU's update. Under ``Q`` the
marginal of ``s_t`` is the minGRU recursion with positive states::

    p_t = (1 - g_t) p_{t-1} + g_t r_t,      p_0 = r_0.

Why condition ``Q(s)`` on ``z``: the naive mean-field family ``Q(z) Q(s)`` needs
``E_{Q(z_t)}[log P(s_t | s_{t-1}, z_t)] = g_t log(rho pi(s_t)) + (1 - g_t) log delta(s_t =
s_{t-1})``, which is ``-inf`` off the diagonal unless ``g_t = 1``: the ELBO of any ``Q(s)``
that ever changes state is ``-inf``, and the usual patch (a softened copy kernel
``(1 - eps) delta + eps pi``) changes the model. With ``Q(s | z)`` the copy in ``Q`` cancels
the copy in ``P`` exactly (both log-densities are 0 on the diagonal), so no ``-inf`` appears
and the model is untouched. The restriction lies elsewhere: ``Q(z)`` is independent of ``s``
and across time, and ``r_t`` does not depend on the later switches. (Given ``z_t = 1`` the
exact posterior of ``s_t`` is indeed independent of ``s_{t-1}``, and given ``z_t = 0`` it is
the copy, so the conditional structure of ``Q(s | z)`` loses nothing by itself.)

2. The ELBO
-----------
On every path of positive ``Q`` probability the copies cancel::

    log P(x, s, z) - log Q(s, z) = log pi(s_0) - log r_0(s_0)
        + sum_t [ log P(z_t) - log Q(z_t) + log e_t(z_t, s_t) + z_t (log pi(s_t) - log r_t(s_t)) ].

Under ``Q``, ``z_t`` is independent of ``s_{t-1} ~ p_{t-1}``, so
``F = E_Q[...] = F_0 + sum_t F_t`` with ``F_0 = <r_0, log pi - log r_0>`` and::

    F_t = g_t L1_t + (1 - g_t) L0_t + H(g_t),      H(g) = -g log g - (1 - g) log(1 - g),
    L0_t = log(1 - rho) + c_t(0) + <p_{t-1}, a_t>,
    L1_t = log rho      + c_t(1) + <r_t, b_t - log r_t>.

``F <= log P(x_{1:T})`` for every ``(g, r)`` (Jensen), with equality iff ``Q`` is the exact
posterior. ``F_t`` depends on the earlier factors only through ``p_{t-1}``.

3. Filtering updates
--------------------
Greedy (causal) coordinate ascent: ``r_0 = pi`` (the optimum with no data, ``F_0 = 0``),
then at step ``t`` maximize ``F_{0:t}``, the ELBO of ``x_{1:t}``, over ``(g_t, r_t)`` with
the earlier factors fixed. Only ``F_t`` involves them::

    r_t = softmax(b_t),  i.e.  Q(s_t | z_t = 1) ∝ pi(s) P(y_t | s) = q_t   (minGRU candidate),
    max_r <r, b_t - log r> = log sum_s pi(s) P(y_t | s) = log Pbar(y_t),
    lambda_t = L1_t - L0_t = logit rho + [c_t(1) - c_t(0)] + S_t,
    S_t = log Pbar(y_t) - <p_{t-1}, a_t>                                   (the s-term)
        = log sum_s pi(s) P(y_t | s) - sum_s p_{t-1}(s) log P(y_t | s)     always-emitting,
        = 0                                                               gated,
    p_t = (1 - g_t) p_{t-1} + g_t q_t,        F_t = logaddexp(L0_t, L1_t).

``S_t`` is the only term of the ``Q(z)`` update that involves ``s`` (through the previous
belief ``p_{t-1}``). Dropping it (``drop_s_term=True``) leaves
``g_t = sigmoid(logit rho + log N(u_t | m_1) - log N(u_t | m_0))``: minGRU's gate, a
logistic regression of the cue alone. As the cue separation grows, the cue term grows
without bound while ``S_t`` stays bounded by the spread of ``l_t``, so the two gates meet.

* Gated model: ``S_t = 0``, the update is the exact filter (docs/theory.md section 2, facts 1-2):
  ``filtered_s``, ``filtered_z`` equal :func:`~switchssm.inference.filter`'s and
  ``F = log P(x_{1:T})`` at every cue strength.
* Always-emitting model: two approximations. (i) The exact gate's ``s``-term is
  ``log Pbar(y_t) - log <p_{t-1}, exp l_t>``; VMP replaces the log of the expected
  likelihood by the expected log likelihood, which is smaller (Jensen), so the VMP gate
  leans towards switching. (ii) The copy branch does not update on ``y_t`` (the exact filter
  multiplies the copied belief by ``exp l_t``, docs/theory.md fact 4): this is what the copy
  constraint ``Q(s_t | z_t = 0) = p_{t-1}`` costs. In the local (assumed-density) step,
  freeing ``Q(s_t | z_t = 0)`` would give ``∝ p_{t-1} exp a_t`` and turn the update into the
  exact forward step, so the approximation lives in the copy constraint. Extreme case
  ``rho = 0``: ``g_t = 0`` and the filter's belief stays ``pi`` for ever, while the exact
  filter is naive Bayes over ``y_{1:t}``.

4. Smoothing updates
--------------------
Coordinate ascent on the whole ``F``. Holding the other factors fixed, ``F_{t'}`` for
``t' > t`` is affine in ``p_t`` (each later belief is affine in the earlier one), with
gradient ``v_t = dF_{>t} / dp_t``::

    v_T = 0,    v_{t-1} = (1 - g_t) (a_t + v_t),
    i.e. v_t(s) = sum_{t' > t} prod_{t < j <= t'} (1 - g_j) a_{t'}(s),

the expected log evidence of the later observations emitted by copies of ``s_t``
(``c_t(0)`` is dropped: constants in ``s`` do not matter). ``F`` depends on ``(g_t, r_t)``
through ``F_t + <p_t, v_t> + const``, with ``p_t = (1 - g_t) p_{t-1} + g_t r_t``, so::

    r_0 = softmax(log pi + v_0),
    r_t = softmax(b_t + v_t)                 (a fresh draw weighted by its future copies),
    lambda_t = logit rho + [c_t(1) - c_t(0)] + S_t,
    S_t = LSE(b_t + v_t) - <p_{t-1}, a_t + v_t>     (the s-term; v = 0 gives the filter's),

each the exact maximizer of ``F`` in that factor (``F`` is concave in ``r_t`` and, as a
function of ``g_t``, linear plus the binary entropy). A sweep computes ``v`` from the current
gates by a backward scan, then updates ``r_0`` and, in a forward scan for ``t = 1..T``,
``r_t`` and then ``g_t``: ``v_t`` depends only on ``g_{>t}`` (not yet touched by the sweep)
and ``p_{t-1}`` only on the factors already updated, so every step is an exact coordinate
maximization and ``F`` never decreases. The filter is the first such sweep started from
``g = 1`` (``v = 0``); :func:`vmp_smooth` starts there. The updates do not change when a
constant is added to ``v_t`` (``p`` and ``r`` sum to one), so ``v_t`` is renormalized every
step.

* Gated model: ``a_t`` is constant in ``s``, so ``v_t`` is too, ``S_t = 0`` and smoothing
  equals filtering equals the exact posterior (as in :func:`~switchssm.inference.smooth`).
* Always-emitting model with hard gates (a sharp cue): ``r_t`` at the start of a segment
  collects the evidence of the whole segment, which is the exact posterior of the segment's
  state. The smoother approaches the exact smoother as the cue sharpens; the filter does not
  approach the exact filter (its copy branch never sees ``y_t``). Likewise at ``rho = 0``
  (one segment, ``r_0`` is the exact posterior after one sweep) and ``rho = 1`` (no copies)
  the smoother is exact.

The switch gate needs the previous belief, so the recursion is not linear and runs as a
sequential scan; cost ``O(TK)`` per sweep. With ``drop_s_term=True`` it is the diagonal
linear recurrence of minGRU.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from switchssm._docstrings import fill_doc
from switchssm.inference._emissions import log_switch_probs
from switchssm.inference._emissions import validate_inputs
from switchssm.inference._recursions import lse
from switchssm.models.params import SwitchingParams
from switchssm.types import Array
from switchssm.types import Float


class VMPPosterior(NamedTuple):
    """Output of :func:`vmp_filter`.

    Attributes:
        elbo: ``F``, the ELBO of the whole family ``Q`` (a lower bound on :math:`\\log P(x)`).
        filtered_s: ``(T, K)``, :math:`Q(s_t) = p_t`.
        filtered_z: ``(T,)``, :math:`Q(z_t = 1) = g_t`.
        candidate_s: ``(T, K)``, :math:`Q(s_t \\mid z_t = 1) = r_t` (minGRU's candidate).
        gate_s_term: ``(T,)``, :math:`S_t`, the part of the log-odds of :math:`Q(z_t)` that
            depends on ``s`` (zero in the gated model).
    """

    elbo: Float[Array, ""]
    filtered_s: Float[Array, "T K"]
    filtered_z: Float[Array, " T"]
    candidate_s: Float[Array, "T K"]
    gate_s_term: Float[Array, " T"]


class VMPSmoothPosterior(NamedTuple):
    """Output of :func:`vmp_smooth`.

    Attributes:
        elbo: ``F`` after the last sweep.
        smoothed_s: ``(T, K)``, :math:`Q(s_t) = p_t`.
        smoothed_z: ``(T,)``, :math:`Q(z_t = 1) = g_t`.
        candidate_s: ``(T, K)``, :math:`Q(s_t \\mid z_t = 1) = r_t`.
        gate_s_term: ``(T,)``, :math:`S_t` at the last sweep.
        elbo_history: ``(num_iters + 1,)``, ``F`` after the filter sweep and after every
            smoothing sweep (non-decreasing).
        initial_s: ``(K,)``, :math:`Q(s_0) = r_0`, the free factor of the initial state
            (:math:`p_1 = (1 - g_1) r_0 + g_1 r_1`).
    """

    elbo: Float[Array, ""]
    smoothed_s: Float[Array, "T K"]
    smoothed_z: Float[Array, " T"]
    candidate_s: Float[Array, "T K"]
    gate_s_term: Float[Array, " T"]
    elbo_history: Float[Array, " I"]
    initial_s: Float[Array, " K"]


class _Sweep(NamedTuple):
    elbo: Array
    p: Array
    g1: Array
    g0: Array
    r: Array
    s_term: Array
    r0: Array


def _dot(p, f):
    """``<p, f>`` with ``0 * (-inf) = 0``."""
    return jnp.sum(jnp.where(p > 0, p * f, 0.0), axis=-1)


def _potentials(params: SwitchingParams, y, u):
    """``a (T, K)``, ``b (T, K)``, cue log-likelihoods ``c (T, 2)`` (section 1 notation)."""
    y = params.emission.prepare(y)
    ll = params.emission.log_prob(y)
    b = jnp.log(params.initial_probs) + ll
    a = jnp.broadcast_to(lse(b, axis=-1)[:, None], b.shape) if params.gated else ll
    if params.cue is not None:
        c = params.cue.log_prob(u)
    else:
        c = jnp.zeros((b.shape[0], 2), b.dtype)
    return a, b, c


def _forward_sweep(log_pi, log_rho2, a, b, c, v0, v, drop_s_term):
    """Update ``r_0``, then ``r_t`` and ``g_t`` for ``t = 1..T``, given future values ``v``
    (module docstring, section 4); ``v = 0`` is the filter."""
    prior_logit = log_rho2[1] - log_rho2[0]
    bv0 = log_pi + v0
    lse0 = lse(bv0)
    p0 = jnp.exp(bv0 - lse0)
    f0 = lse0 - _dot(p0, v0)  # <r_0, log pi - log r_0>

    def step(p_prev, inp):
        a_t, b_t, c_t, v_t = inp
        bv = b_t + v_t
        lse_t = lse(bv)
        r = jnp.exp(bv - lse_t)
        s_term = lse_t - _dot(p_prev, a_t + v_t)
        lam = prior_logit + (c_t[1] - c_t[0])
        if not drop_s_term:
            lam = lam + s_term
        log_g1, log_g0 = jax.nn.log_sigmoid(lam), jax.nn.log_sigmoid(-lam)
        g1, g0 = jnp.exp(log_g1), jnp.exp(log_g0)
        L1 = log_rho2[1] + c_t[1] + lse_t - _dot(r, v_t)  # <r, b - log r> = LSE(b+v) - <r, v>
        L0 = log_rho2[0] + c_t[0] + _dot(p_prev, a_t)
        f = jnp.where(g1 > 0, g1 * (L1 - log_g1), 0.0) + jnp.where(g0 > 0, g0 * (L0 - log_g0), 0.0)
        p = g0 * p_prev + g1 * r
        p = p / jnp.sum(p)
        return p, (p, g1, g0, r, s_term, f)

    _, (p, g1, g0, r, s_term, f) = lax.scan(step, p0, (a, b, c, v))
    return _Sweep(f0 + jnp.sum(f), p, g1, g0, r, s_term, p0)


def _future_values(a, g0):
    """``(v_0, v_{1:T})``, each up to a constant, from ``v_T = 0``,
    ``v_{t-1} = (1-g_t)(a_t + v_t)``."""

    def step(v_t, inp):
        a_t, g0_t = inp
        v_prev = jnp.where(g0_t > 0, g0_t * (a_t + v_t), 0.0)
        m = jnp.max(v_prev)
        v_prev = v_prev - jnp.where(jnp.isfinite(m), m, 0.0)
        return v_prev, v_t

    v0, v = lax.scan(step, jnp.zeros(a.shape[1], a.dtype), (a, g0), reverse=True)
    return v0, v


def _filter_impl(params, y, u, drop_s_term):
    a, b, c = _potentials(params, y, u)
    log_pi = jnp.log(params.initial_probs).astype(a.dtype)
    zero = jnp.zeros_like(a)
    s = _forward_sweep(log_pi, log_switch_probs(params), a, b, c, zero[0], zero, drop_s_term)
    return VMPPosterior(s.elbo, s.p, s.g1, s.r, s.s_term)


def _smooth_impl(params, y, u, num_iters):
    a, b, c = _potentials(params, y, u)
    log_pi = jnp.log(params.initial_probs).astype(a.dtype)
    log_rho2 = log_switch_probs(params)
    zero = jnp.zeros_like(a)
    first = _forward_sweep(log_pi, log_rho2, a, b, c, zero[0], zero, False)

    def sweep(prev, _):
        v0, v = _future_values(a, prev.g0)
        new = _forward_sweep(log_pi, log_rho2, a, b, c, v0, v, False)
        return new, new.elbo

    last, hist = lax.scan(sweep, first, None, length=num_iters)
    history = jnp.concatenate([first.elbo[None], hist])
    return VMPSmoothPosterior(last.elbo, last.p, last.g1, last.r, last.s_term, history, last.r0)


#: The set-up of both examples: 50 steps of a two-state categorical model.
_EXAMPLE = """\
>>> import jax, numpy as np
>>> from switchssm.models import SwitchingParams, CategoricalEmission, sample
>>> params = SwitchingParams(np.array([0.5, 0.5]), 0.1,
...                          CategoricalEmission(np.array([[0.8, 0.2], [0.3, 0.7]])))
>>> y, u, s, z = sample(jax.random.PRNGKey(0), params, 50)"""

_filter_jit = jax.jit(_filter_impl, static_argnames="drop_s_term")
_smooth_jit = jax.jit(_smooth_impl, static_argnames="num_iters")


@fill_doc(_EXAMPLE, "{vmp_example}")
def vmp_filter(params: SwitchingParams, y, u=None, *, drop_s_term: bool = False) -> VMPPosterior:
    """Causal VMP for ``Q(s, z) = prod_t Q(z_t) Q(s_t | s_{t-1}, z_t)`` (module docstring, 3).

    .. math::
        r_t = \\operatorname{softmax}(\\log\\pi + l_t),\\quad
        g_t = \\sigma\\big(\\operatorname{logit}\\rho + \\log N(u_t|m_1) - \\log N(u_t|m_0)
        + S_t\\big),\\quad p_t = (1-g_t)\\,p_{t-1} + g_t\\,r_t,

    with the ``s``-term :math:`S_t = \\log \\bar P(y_t) - \\langle p_{t-1}, a_t\\rangle`
    (zero in the gated model, where the result is the exact filter).

    Args:
        params: a :class:`~switchssm.models.SwitchingParams`.
        y: ``(T,)`` integer symbols or ``(T, D)`` reals.
        u: the cue, ``(T,)`` or ``(T, Du)``; required iff ``params.cue`` is set.
        drop_s_term: leave :math:`S_t` out of the gate: minGRU's cue-only gate.

    Returns:
        :class:`VMPPosterior`; ``elbo`` is the ELBO of the fitted ``Q`` over the whole
        sequence, a lower bound on :math:`\\log P(x_{1:T})`.

    Example:
        >>> from switchssm.inference.vmp import vmp_filter
        {vmp_example}
        >>> vmp_filter(params, y).filtered_s.shape
        (50, 2)
    """
    validate_inputs(params, y, u)
    if not isinstance(drop_s_term, bool):
        raise ValueError(f"`drop_s_term` must be a bool, got {drop_s_term!r}")
    return _filter_jit(params, y, u, drop_s_term=drop_s_term)


@fill_doc(_EXAMPLE, "{vmp_example}")
def vmp_smooth(params: SwitchingParams, y, u=None, *, num_iters: int = 20) -> VMPSmoothPosterior:
    """Coordinate-ascent VMP over the whole sequence (module docstring, section 4).

    Starts from :func:`vmp_filter` and runs ``num_iters`` sweeps; each computes the future
    values :math:`v_t` by a backward scan and updates
    :math:`r_t = \\operatorname{softmax}(\\log\\pi + l_t + v_t)` and the gate with
    :math:`S_t = \\operatorname{LSE}(\\log\\pi + l_t + v_t) - \\langle p_{t-1}, a_t + v_t\\rangle`
    in a forward scan. The ELBO never decreases.

    Args:
        params: a :class:`~switchssm.models.SwitchingParams`.
        y: ``(T,)`` integer symbols (categorical emission) or ``(T, D)`` reals (Gaussian).
        u: the cue, ``(T,)`` or ``(T, Du)``; required iff ``params.cue`` is set.
        num_iters: number of smoothing sweeps after the filter, a positive int.

    Returns:
        :class:`VMPSmoothPosterior`, with ``elbo_history`` of length ``num_iters + 1``.

    Example:
        >>> from switchssm.inference.vmp import vmp_smooth
        {vmp_example}
        >>> vmp_smooth(params, y, num_iters=5).elbo_history.shape
        (6,)
    """
    validate_inputs(params, y, u)
    if isinstance(num_iters, bool) or not isinstance(num_iters, int) or num_iters < 1:
        raise ValueError(f"`num_iters` must be a positive int, got {num_iters!r}")
    return _smooth_jit(params, y, u, num_iters=num_iters)
