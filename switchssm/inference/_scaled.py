r"""Probability-space forward-backward kernels for the switching chain (the fast path).

Used by :mod:`switchssm.inference.exact` and :mod:`~switchssm.inference.batch` (and so by
every fitter of :mod:`switchssm.fit`). With the evidence of step :math:`t` rescaled by a
positive constant :math:`S_t = \exp(\text{log\_shift}_t)`,

.. math::

    d_t(k) = (1-\rho)\, e_t(0, k) / S_t, \qquad w_t(k) = \rho\, \pi_k\, e_t(1, k) / S_t,

the forward recursion is :math:`a_t = \alpha_{t-1} \odot d_t + w_t`, :math:`c_t = \sum_k
a_t(k)`, :math:`\alpha_t = a_t / c_t` (:math:`\alpha_0 = \pi`), and
:math:`\log P(x_{1:T}) = \sum_t \log c_t + \sum_t \text{log\_shift}_t`. The backward
recursion is its transpose, :math:`b_{t-1} = d_t \odot b_t + r_t`,
:math:`r_t = \langle w_t, b_t\rangle` (:math:`b_T = 1`), normalized at every step by an
arbitrary positive constant. One step costs :math:`O(K)`: one reduction forward, two
backward.

Smoothed marginals and the gradient share one expression. With
:math:`\nu_t = \sum_k a_t(k) b_t(k) = c_t \langle \alpha_t, b_t\rangle`,

.. math::

    P(s_t = k \mid x) = \alpha_t(k) b_t(k) / \langle \alpha_t, b_t\rangle, \qquad
    P(z_t = 1 \mid x) = r_t / \nu_t, \qquad
    P(z_t = 1, s_t = k \mid x) = w_t(k)\, b_t(k) / \nu_t,

and, because :math:`\log P` is multilinear in :math:`(\alpha_0, d_{1:T}, w_{1:T})`,
:math:`\partial \log P / \partial d_t(k) = \alpha_{t-1}(k) b_t(k) / \nu_t`,
:math:`\partial \log P / \partial w_t(k) = b_t(k) / \nu_t` and
:math:`\partial \log P / \partial \alpha_0(k) = d_1(k) b_1(k) / \nu_1`: the custom VJP of
:func:`log_likelihood` is one backward scan, not reverse mode through the forward scan.

The always-emitting model factorizes :math:`e_t(z, k) = P(y_t \mid k)\, P(u_t \mid z)`, so
:class:`Evidence` stores a table of emission likelihoods (for a categorical emission the
``(V, K)`` matrix itself, gathered inside the scan) and a ``(T, 2)`` cue factor instead of
two ``(T, K)`` arrays: on CPU the cost of these kernels is memory traffic and per-step
overhead, not arithmetic (``benchmarks/README.md``).

Every result carries ``ok``: False if a normalizer fell below the smallest normal float (an
observation with probability below :math:`10^{-308}` relative to the alternatives); callers
then use the exact log-space recursions of :mod:`switchssm.inference.exact`.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from switchssm.inference import _logspace
from switchssm.inference._emissions import normalized_log_evidence
from switchssm.models.params import CategoricalEmission
from switchssm.models.params import SwitchingParams
from switchssm.types import Array
from switchssm.types import Bool
from switchssm.types import Float
from switchssm.types import Int


class Evidence(NamedTuple):
    r"""Rescaled evidence of one sequence, factorized (module docstring).

    ``d_t = keep * cue[t, 0] * row_t`` and ``w_t = fresh * cue[t, 1] * row_t`` with
    ``row_t = table[index[t]]`` (a categorical emission: ``table`` holds :math:`P(y=v \mid
    k)`, gathered inside the scan) or ``row_t = table[t]`` when ``index`` is None (a Gaussian
    emission). The gated model, whose copy row is the background likelihood shared by all
    states, stores ``(d_t, w_t)`` directly: ``table`` of shape ``(T, 2, K)``.

    Attributes:
        keep: ``()``, :math:`1 - \rho`.
        fresh: ``(K,)``, :math:`\rho \pi`.
        table: ``(N, K)`` rows of emission likelihoods, ``(T, K)``, or ``(T, 2, K)``.
        index: ``(T,)`` int32 row of ``table`` per step, or None.
        cue: ``(T, 2)`` rescaled cue likelihoods :math:`P(u_t \mid z) / S^u_t` (ones
            without a cue).
        log_shift: ``(T,)``, :math:`\log S_t`.
    """

    keep: Float[Array, ""]
    fresh: Float[Array, " K"]
    table: Array
    index: Int[Array, " T"] | None
    cue: Float[Array, "T 2"]
    log_shift: Float[Array, " T"]

    def scan_inputs(self):
        """Per-step inputs for ``lax.scan`` (``(row or index, cue)``)."""
        return (self.table if self.index is None else self.index), self.cue

    def step(self, x_t, cue_t):
        """``(d_t, w_t)`` from one step's scan inputs."""
        row = x_t if self.index is None else self.table[x_t]
        if row.ndim == 2:  # dense (T, 2, K) table
            return row[0], row[1]
        return (self.keep * cue_t[0]) * row, (self.fresh * cue_t[1]) * row

    def rows(self):
        return self.table if self.index is None else self.table[self.index]

    def dense(self):
        """``(d, w)``, each ``(T, K)`` (materialized: used off the hot path)."""
        rows = self.rows()
        if rows.ndim == 3:
            return rows[:, 0], rows[:, 1]
        return (self.keep * self.cue[:, :1]) * rows, (self.fresh * self.cue[:, 1:]) * rows

    def fresh_total(self) -> Float[Array, " T"]:
        """``sum_k w_t(k)``, ``(T,)``, without materializing ``w``."""
        if self.table.ndim == 3:
            return jnp.sum(self.table[:, 1], -1)
        rows_fresh = self.table @ self.fresh
        return self.cue[:, 1] * (rows_fresh if self.index is None else rows_fresh[self.index])


def _shift(x, axis):
    """Per-row maximum for rescaling, 0 where a row has no finite entry; no gradient (the
    rescaled result does not depend on it)."""
    m = jnp.max(x, axis=axis)
    return lax.stop_gradient(jnp.where(jnp.isfinite(m), m, 0.0))


def evidence(params: SwitchingParams, y, u=None, mask=None) -> Evidence:
    """:class:`Evidence` of ``(y, u)`` under ``params``; steps where ``mask`` is False get
    evidence 1 (they add exactly 0 to the log-likelihood)."""
    rho = params.switch_prob
    pi = params.initial_probs
    T = jnp.shape(y)[0]
    dtype = pi.dtype
    if params.gated:
        log_e, shift0 = normalized_log_evidence(params, y, u)
        if mask is not None:
            log_e = jnp.where(mask[:, None, None], log_e, 0.0)
            shift0 = jnp.where(mask, shift0, 0.0)
        shift = _shift(log_e, axis=(1, 2))
        e = jnp.exp(log_e - shift[:, None, None])
        shift = shift + shift0
        table = jnp.stack([(1.0 - rho) * e[:, 0], (rho * pi) * e[:, 1]], axis=1)
        return Evidence(1.0 - rho, rho * pi, table, None, jnp.ones((T, 2), dtype), shift)
    em = params.emission
    if isinstance(em, CategoricalEmission):
        # rows 0..V-1: P(y = v | k); row V: evidence 1 for masked steps; row V + 1: NaN for
        # symbols out of range (traced input is not validated: NaN, not a number)
        table = _logspace.padded_table(em)
        index = _logspace.symbol_index(em, y, mask)
        shift = jnp.zeros((T,), dtype)
    else:
        lp = em.log_prob(em.prepare(y))
        shift = _shift(lp, axis=-1)
        table = jnp.exp(lp - shift[:, None])
        if mask is not None:
            table = jnp.where(mask[:, None], table, 1.0)
        index = None
    if params.cue is not None:
        lc = params.cue.log_prob(u)
        cshift = _shift(lc, axis=-1)
        cue = jnp.exp(lc - cshift[:, None])
        shift = shift + cshift
    else:
        cue = jnp.ones((T, 2), dtype)
    if mask is not None:
        cue = jnp.where(mask[:, None], cue, 1.0)
        shift = jnp.where(mask, shift, 0.0)
    if index is not None:
        index = index.astype(jnp.int32)
    return Evidence(1.0 - rho, rho * pi, table, index, cue, shift)


def _safe(x):
    tiny = jnp.finfo(x.dtype).tiny
    ok = x >= tiny  # False for NaN too
    return jnp.where(ok, x, 1.0), ok


def forward(alpha0, ev: Evidence):
    """Normalized forward pass: ``(alpha (T, K), c (T,), ok)``."""

    def step(alpha, inp):
        d_t, w_t = ev.step(*inp)
        a = alpha * d_t + w_t
        c = jnp.sum(a)
        # no guard: an underflowed c gives inf/NaN from here on, which ``ok`` reports
        new = a / c
        return new, (new, c)

    _, (alpha, c) = lax.scan(step, alpha0, ev.scan_inputs())
    c, ok = _safe(c)
    return alpha, c, jnp.all(ok)


# XLA:CPU compiles a scan whose body touches under 1 kB into a single kernel and otherwise
# dispatches every operation of the body (benchmarks/README.md). For short state vectors the
# backward step below takes its two sums as one stacked reduction, which keeps it under that
# limit up to K = 8 in float64 (backward pass at K = 8, T = 10^4: 1.2 -> 0.37 ms; K = 4 and
# 16 unchanged); for long ones the stacked form is slower (K = 64: +19%).
_STACKED_BACKWARD_MAX_BYTES = 128  # K * itemsize


def backward(ev: Evidence):
    """Backward messages ``b (T, K)`` (each up to a positive constant; ``b_T = 1``) and
    ``r_t = <w_t, b_t>`` ``(T,)`` on the same scale."""
    K = ev.fresh.shape[0]
    factorized = ev.table.ndim == 2  # not the gated model's dense (T, 2, K) table
    stacked = factorized and K * ev.cue.dtype.itemsize <= _STACKED_BACKWARD_MAX_BYTES

    def step(b, inp):
        if stacked:  # d_t = kc * row, w_t = c1 * fresh * row (Evidence)
            x_t, cue_t = inp
            rb = (x_t if ev.index is None else ev.table[x_t]) * b
            sf, sr = jnp.sum(jnp.stack([ev.fresh * rb, rb]), axis=1)
            kc = ev.keep * cue_t[0]
            r = cue_t[1] * sf
            return (kc * rb + r) / (kc * sr + K * r), (b, r)
        d_t, w_t = ev.step(*inp)
        r = jnp.sum(w_t * b)
        nb = d_t * b + r
        return nb / jnp.sum(nb), (b, r)  # underflow: NaN from here on, seen by callers

    one = jnp.ones(ev.fresh.shape, ev.cue.dtype)
    _, (b, r) = lax.scan(step, one, ev.scan_inputs(), reverse=True)
    return b, r


class Filtered(NamedTuple):
    log_likelihood: Float[Array, ""]
    alpha: Float[Array, "T K"]
    filtered_z: Float[Array, " T"]
    c: Float[Array, " T"]
    ok: Bool[Array, ""]


def filter_(alpha0, ev: Evidence) -> Filtered:
    """Log-likelihood, :math:`\\alpha_t = P(s_t \\mid x_{1:t})`, :math:`P(z_t=1 \\mid x_{1:t})`."""
    alpha, c, ok = forward(alpha0, ev)
    ll = jnp.sum(jnp.log(c)) + jnp.sum(ev.log_shift)
    return Filtered(ll, alpha, ev.fresh_total() / c, c, ok)


class Smoothed(NamedTuple):
    """Outputs of :func:`smoother` (``ok`` False: use the log-space recursions)."""

    log_likelihood: Float[Array, ""]
    filtered_s: Float[Array, "T K"]
    filtered_z: Float[Array, " T"]
    smoothed_s: Float[Array, "T K"]
    smoothed_z: Float[Array, " T"]
    b: Float[Array, "T K"]
    nu: Float[Array, " T"]
    ok: Bool[Array, ""]


def smoother(alpha0, ev: Evidence) -> Smoothed:
    """Forward-backward in probability space (module docstring)."""
    f = filter_(alpha0, ev)
    b, r = backward(ev)
    ab, ok_b = _safe(jnp.sum(f.alpha * b, -1))
    nu = f.c * ab
    return Smoothed(
        f.log_likelihood, f.alpha, f.filtered_z, f.alpha * b / ab[:, None], r / nu, b, nu,
        f.ok & jnp.all(ok_b),
    )  # fmt: skip


def previous(alpha0, alpha):
    """``alpha_{t-1}`` for ``t = 1..T`` (``alpha_0`` first)."""
    return jnp.concatenate([alpha0[None], alpha[:-1]], axis=0)


# --------------------------------------------------------------------------------------
# Log-likelihood with a forward-backward VJP.


def evidence_vjp(alpha0, ev: Evidence, alpha, c, g):
    """Cotangents ``(alpha0, ev, ok_b)`` of ``g * (sum_t log c_t + sum_t log_shift_t)`` from
    the forward pass's ``alpha`` and ``c`` (module docstring: one backward scan); ``ok_b``
    False where the backward messages underflowed (the cotangents are then unusable)."""
    b, _ = backward(ev)
    ab, ok_b = _safe(jnp.sum(alpha * b, -1))
    scaled = b / (c * ab)[:, None]  # d log P / d w_t
    _, dense_vjp = jax.vjp(Evidence.dense, ev)

    # select, not multiply: where the forward pass underflowed (g = 0 by the callers' choice)
    # these may be NaN, and 0 * NaN is NaN
    def gate(x):
        return jnp.where(g != 0, x, 0.0)

    d1 = ev.step(*jax.tree.map(lambda x: x[0], ev.scan_inputs()))[0]
    g_d, g_w = previous(alpha0, alpha) * scaled, scaled
    (g_ev,) = dense_vjp((gate(g * g_d), gate(g * g_w)))
    g_ev = g_ev._replace(log_shift=jnp.broadcast_to(g, ev.log_shift.shape))
    return gate(g * scaled[0] * d1), g_ev, jnp.all(ok_b)


def _float_or_none(x):
    """``x`` if it is a float array (differentiable), else ``None``."""
    if x is None or not jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating):
        return None
    return x


def _no_cotangent(x):
    """The cotangent of an integer or boolean input (or None)."""
    return None if x is None else np.zeros(jnp.shape(x), jax.dtypes.float0)


def _with_data(fn, y, u, mask):
    """``fn(params, y, u, mask)`` as a function of ``(params, y_f, u_f)``, the float data
    (None where ``y`` or ``u`` is not float, which then passes through undifferentiated)."""

    def f(p, y_f, u_f):
        return fn(p, y if y_f is None else y_f, u if u_f is None else u_f, mask)

    return f


def _map(fn, batched: bool):
    return jax.vmap(fn) if batched else fn


def _sum_batch(tree, batched: bool):
    return jax.tree.map(lambda x: jnp.sum(x, axis=0), tree) if batched else tree


def _log_space_lls(params, y, u, mask, batched):
    def one(y, u, mask):
        return _logspace.log_likelihood(_logspace.factors(params, y, u, mask))

    return _map(one, batched)(y, u, mask)


def log_likelihood(params: SwitchingParams, y, u=None, mask=None, batched=False, fallback=True):
    """``(log-likelihood, ok)`` of the always-emitting model: one sequence, or ``(N,)`` of a
    padded batch (``batched``; ``mask`` False at padded steps). ``ok`` (float 0/1, cotangent
    ignored) is False where a forward normalizer underflowed.

    The gradient is the forward-backward one of the module docstring: one backward scan per
    sequence, not reverse mode through the forward scan. With ``fallback``, the value and the
    gradient are exact everywhere: where a forward or backward normalizer underflowed, they
    come from the log-space recursion (:func:`._logspace.cotangents` for the gradient),
    chosen by a ``lax.cond`` outside any ``vmap`` of this function's own (under a caller's
    ``vmap`` both branches run). Without it there is no ``lax.cond``: where ``ok`` is 0 the
    value is unusable and the gradient 0, and where only the backward messages underflowed
    the gradient is NaN (callers, like :func:`~switchssm.fit.fit_mle` under its ``vmap``
    over restarts, re-run in log space).
    """
    return _log_likelihood(params, y, u, mask, batched, fallback)


@partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def _log_likelihood(params, y, u, mask, batched, fallback):
    return _ll_fwd(params, y, u, mask, batched, fallback)[0]


def _ll_fwd(params, y, u, mask, batched, fallback):
    def one(y, u, mask):
        f = filter_(params.initial_probs, evidence(params, y, u, mask))
        return f.log_likelihood, f.alpha, f.c, f.ok

    ll, alpha, c, ok = _map(one, batched)(y, u, mask)
    if fallback:
        ll = lax.cond(jnp.all(ok), lambda: ll, lambda: _log_space_lls(params, y, u, mask, batched))
    return (ll, ok.astype(c.dtype)), (params, y, u, mask, alpha, c, ok)


def _ll_bwd(batched, fallback, res, cts):
    params, y, u, mask, alpha, c, ok = res
    g = cts[0] if fallback else jnp.where(ok, cts[0], 0.0)
    y_f, u_f = _float_or_none(y), _float_or_none(u)

    def fast_one(y, u, mask, alpha, c, g):
        def ev_and_alpha0(p, y, u, mask):
            return evidence(p, y, u, mask), p.initial_probs

        (ev, alpha0), ev_vjp = jax.vjp(
            _with_data(ev_and_alpha0, y, u, mask), params, _float_or_none(y), _float_or_none(u)
        )
        g_alpha0, g_ev, ok_b = evidence_vjp(alpha0, ev, alpha, c, g)
        return ev_vjp((g_ev, g_alpha0)), ok_b

    # the fast cotangents are computed outside the cond (XLA fuses them with their
    # producers; inside a branch it cannot, which cost ~50 us per call at K = 4, T = 10^3);
    # where a pass underflowed they are garbage and discarded
    (g_p, g_y, g_u), ok_b = _map(fast_one, batched)(y, u, mask, alpha, c, g)
    fast = _sum_batch(g_p, batched), g_y, g_u
    if fallback:

        def slow():  # the log-space forward-backward, in (T, K) memory beside the fast path
            def one(y, u, mask, g):
                f, vjp = jax.vjp(
                    _with_data(_logspace.factors, y, u, mask),
                    params, _float_or_none(y), _float_or_none(u),
                )  # fmt: skip
                return vjp(_logspace.cotangents(f, g))

            g_p, g_y, g_u = _map(one, batched)(y, u, mask, g)
            return _sum_batch(g_p, batched), g_y, g_u

        g_p, g_y, g_u = lax.cond(jnp.all(ok) & jnp.all(ok_b), lambda: fast, slow)
    else:
        bad = jnp.any(ok & ~ok_b)
        g_p, g_y, g_u = jax.tree.map(lambda x: jnp.where(bad, jnp.nan, x), fast)
    if y_f is None:
        g_y = _no_cotangent(y)
    if u_f is None:
        g_u = _no_cotangent(u)
    return g_p, g_y, g_u, _no_cotangent(mask)


_log_likelihood.defvjp(_ll_fwd, _ll_bwd)
