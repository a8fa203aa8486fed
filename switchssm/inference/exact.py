r"""Exact filtering, smoothing and posterior sampling for the categorical switching model.

The pair :math:`(s_t, z_t)` is a Markov chain whose :math:`s`-transition is identity plus
rank one, :math:`(1-\rho) I + \rho\, \pi 1^\top`, so one forward or backward step costs
:math:`O(K)` rather than the :math:`O(K^2)` of a generic HMM over :math:`2K` states.

Forward recursion, with :math:`e_t(z, k) = P(y_t, u_t \mid s_t = k, z_t = z)`:

.. math::

    a_t(0, k) = (1-\rho)\, \alpha_{t-1}(k)\, e_t(0, k), \qquad
    a_t(1, k) = \rho\, \pi_k\, e_t(1, k), \qquad
    c_t = \textstyle\sum_{z,k} a_t(z, k),

:math:`\alpha_t(k) = \sum_z a_t(z,k) / c_t`, :math:`\alpha_0 = \pi` and
:math:`\log P(x_{1:T}) = \sum_t \log c_t`. The backward pass is the transpose:
:math:`\beta_{t-1}(k) \propto (1-\rho) e_t(0,k) \beta_t(k) + \rho \sum_j \pi_j e_t(1,j) \beta_t(j)`.

Two implementations, same answers (tested against brute force, dynamax and each other):
``mode="sequential"`` runs them in probability space with every step normalized and the
evidence rescaled per step (:mod:`switchssm.inference._scaled`: no ``exp``/``log`` inside
the scan, a categorical emission gathered inside it, and a forward-backward gradient for
:func:`log_likelihood`), falling back to the log-space recursions if a normalizer
underflows; ``mode="log"`` runs every step in log space (:func:`forward_log`,
:func:`backward_log`), so that neither :math:`T = 10^6` nor observations with probability
:math:`e^{-1000}` under- or overflow.

Gated emission: the :math:`y`-terms cancel in the switch posterior, so
:math:`P(z_t = 1 \mid x_{1:t}) = g_t` depends on the cue alone, the filter is the diagonal
linear recurrence :math:`p_t = (1-g_t) p_{t-1} + g_t q_t` (:func:`switchssm.scan.diagonal_scan`,
sequential or parallel), and the switches are independent a posteriori, so smoothing changes
nothing: the smoothed marginals equal the filtered ones (tested against brute force).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from switchssm import _validation as V
from switchssm import scan as _scan
from switchssm.inference import _logspace
from switchssm.inference import _parallel
from switchssm.inference import _scaled
from switchssm.inference._emissions import log_switch_probs
from switchssm.inference._emissions import normalized_log_evidence
from switchssm.inference._emissions import validate_inputs
from switchssm.inference._recursions import first_impossible_step
from switchssm.inference._recursions import forward_log
from switchssm.inference._recursions import log_filter
from switchssm.inference._recursions import log_smoother
from switchssm.inference._recursions import smoothed_joint_log
from switchssm.inference._recursions import total
from switchssm.models.params import CategoricalEmission
from switchssm.models.params import SwitchingParams
from switchssm.types import Array
from switchssm.types import Float
from switchssm.types import Int
from switchssm.types import PRNGKeyArray

_MODES = ("sequential", "parallel", "log")


class FilterPosterior(NamedTuple):
    """Output of :func:`filter`.

    Attributes:
        log_likelihood: :math:`\\log P(x_{1:T})`, a scalar.
        filtered_s: ``(T, K)``, :math:`P(s_t \\mid x_{1:t})`.
        filtered_z: ``(T,)``, :math:`P(z_t = 1 \\mid x_{1:t})`.
    """

    log_likelihood: Float[Array, ""]
    filtered_s: Float[Array, "T K"]
    filtered_z: Float[Array, " T"]


class SmoothPosterior(NamedTuple):
    """Output of :func:`smooth`: :class:`FilterPosterior` fields plus smoothed marginals.

    Attributes:
        smoothed_s: ``(T, K)``, :math:`P(s_t \\mid x_{1:T})`.
        smoothed_z: ``(T,)``, :math:`P(z_t = 1 \\mid x_{1:T})`.
    """

    log_likelihood: Float[Array, ""]
    filtered_s: Float[Array, "T K"]
    filtered_z: Float[Array, " T"]
    smoothed_s: Float[Array, "T K"]
    smoothed_z: Float[Array, " T"]


# --------------------------------------------------------------------------------------
# Gated model: cue-only gate, diagonal linear recurrence.


def gated_gate_and_candidate(params: SwitchingParams, y, u=None):
    """Gate :math:`g_t`, candidate :math:`q_t` and per-step log normalizer of the gated model.

    .. math::
        g_t = \\sigma\\big(\\operatorname{logit}\\rho + \\log N(u_t|m_1) - \\log N(u_t|m_0)\\big),
        \\quad q_t = \\operatorname{softmax}(\\log\\pi + l_t),

    and :math:`\\log c_t = \\log \\bar P(y_t) + \\log((1-\\rho)N(u_t|m_0) + \\rho N(u_t|m_1))`,
    both sums taken by :func:`~switchssm.inference._logspace.log_mix` (finite derivatives
    where :math:`\\pi`, the emission probabilities or :math:`\\rho` are 0 or 1).
    """
    em = params.emission
    pi = params.initial_probs
    if isinstance(em, CategoricalEmission):
        rows = _logspace.padded_table(em)[_logspace.symbol_index(em, y)]  # (T, K)
        log_bg = _logspace.log_mix(pi, rows, False)
        log_rows = jnp.log(rows)
        shift = 0.0
    else:
        # shifted by its per-step maximum, so the differences stay exact (as in
        # _emissions.normalized_log_evidence)
        log_rows = em.log_prob(em.prepare(y))
        m = _logspace.step_max(log_rows)
        log_rows, shift = log_rows - m, m[:, 0]
        log_bg = _logspace.log_mix(pi, log_rows, True)
    q = jnp.exp(jnp.log(pi) + log_rows - log_bg[:, None])
    rho = params.switch_prob
    T = q.shape[0]
    lc = jnp.zeros((T, 2), q.dtype) if params.cue is None else params.cue.log_prob(u)
    mc = _logspace.step_max(lc)
    lc = lc - mc
    log_z = _logspace.log_mix(jnp.stack([1.0 - rho, rho]), lc, True)
    g = jnp.exp(jnp.log(rho) + lc[:, 1] - log_z)
    return g, q, log_bg + log_z + shift + mc[:, 0]


def _gated_filter(params, y, u, mode):
    g, q, log_norms = gated_gate_and_candidate(params, y, u)
    p = _scan.diagonal_scan(
        (1.0 - g)[:, None], g[:, None] * q, params.initial_probs.astype(q.dtype), mode=mode
    )
    return FilterPosterior(total(log_norms), p, g)


# --------------------------------------------------------------------------------------
# Public API


def _log_args(params, y, u):
    """``(log_pi, log_rho2, log_e, shift)``: the recursions' inputs, evidence normalized."""
    log_e, shift = normalized_log_evidence(params, y, u)
    return jnp.log(params.initial_probs), log_switch_probs(params), log_e, shift


def _scaled_filter(params, y, u):
    """Probability-space filter (:mod:`._scaled`) with an exact log-space fallback."""
    f = _scaled.filter_(params.initial_probs, _scaled.evidence(params, y, u))
    return lax.cond(
        f.ok,
        lambda: (f.log_likelihood, f.alpha, f.filtered_z),
        lambda: log_filter(*_log_args(params, y, u)),
    )


def _scaled_smoother(params, y, u):
    """Probability-space forward-backward (:mod:`._scaled`) with an exact log-space fallback."""
    sm = _scaled.smoother(params.initial_probs, _scaled.evidence(params, y, u))
    return lax.cond(
        sm.ok,
        lambda: (sm.log_likelihood, sm.filtered_s, sm.filtered_z, sm.smoothed_s, sm.smoothed_z),
        lambda: log_smoother(*_log_args(params, y, u)),
    )


def _filter_impl(params, y, u, mode):
    if params.gated:
        return _gated_filter(params, y, u, "sequential" if mode == "log" else mode)
    if mode == "sequential":
        return FilterPosterior(*_scaled_filter(params, y, u))
    log_pi, log_rho2, log_e, shift = _log_args(params, y, u)
    if mode == "parallel":
        log_joint, log_norms = _parallel.forward_log_parallel(log_pi, log_rho2, log_e)
        joint = jnp.exp(log_joint)
        ll = total(log_norms) + jnp.sum(shift)
        return FilterPosterior(ll, joint.sum(axis=1), joint[:, 1].sum(-1))
    return FilterPosterior(*log_filter(log_pi, log_rho2, log_e, shift))


def _smooth_impl(params, y, u, mode):
    if params.gated:
        f = _gated_filter(params, y, u, "sequential" if mode == "log" else mode)
        return SmoothPosterior(*f, f.filtered_s, f.filtered_z)
    if mode == "sequential":
        return SmoothPosterior(*_scaled_smoother(params, y, u))
    log_pi, log_rho2, log_e, shift = _log_args(params, y, u)
    if mode == "parallel":
        log_joint, log_norms = _parallel.forward_log_parallel(log_pi, log_rho2, log_e)
        log_filtered_s = jnp.logaddexp(log_joint[:, 0], log_joint[:, 1])
        log_beta = _parallel.backward_log_parallel(log_pi, log_rho2, log_e)
        sm = jnp.exp(smoothed_joint_log(log_pi, log_rho2, log_e, log_filtered_s, log_beta))
        joint = jnp.exp(log_joint)
        ll = total(log_norms) + jnp.sum(shift)
        return SmoothPosterior(ll, joint.sum(1), joint[:, 1].sum(-1), sm.sum(1), sm[:, 1].sum(-1))
    return SmoothPosterior(*log_smoother(log_pi, log_rho2, log_e, shift))


_filter_jit = jax.jit(_filter_impl, static_argnames="mode")
_log_norms_jit = jax.jit(
    lambda params, y, u: (
        gated_gate_and_candidate(params, y, u)[2]
        if params.gated
        else forward_log(*_log_args(params, y, u)[:3])[1]
    )
)


def _check_possible(params, y, u, log_likelihood) -> None:
    """ValueError naming the first step of probability 0 if the log-likelihood is -inf
    (concrete inputs; under ``jit`` the -inf and NaN posteriors are returned as they are)."""
    if not V.is_concrete(log_likelihood) or float(log_likelihood) != -np.inf:
        return
    t = first_impossible_step(_log_norms_jit(params, y, u))
    where = "" if t is None else f": step {t} (y[{t}] = {np.asarray(y)[t].tolist()})"
    raise ValueError(
        f"the observations are impossible under `params`{where} has probability 0 given the "
        "steps before it, so the log-likelihood is -inf and the posteriors from that step "
        "on are undefined (log_likelihood returns -inf; a fitted emission with zero "
        "probabilities forbids symbols never seen in training, see fit_em's "
        "`emission_pseudocount`)"
    )


_smooth_jit = jax.jit(_smooth_impl, static_argnames="mode")


def filter(params: SwitchingParams, y, u=None, *, mode: str | None = None) -> FilterPosterior:
    """Exact filter of the switching model: log-likelihood and :math:`P(s_t, z_t \\mid x_{1:t})`.

    Cost :math:`O(TK)`. The gated model uses its closed form (cue-only gate, diagonal
    recurrence :math:`p_t = (1-g_t) p_{t-1} + g_t q_t`); the always-emitting model the
    normalized forward recursion (module docstring).

    Args:
        params: a :class:`~switchssm.models.SwitchingParams`.
        y: ``(T,)`` integer symbols (categorical emission) or ``(T, D)`` reals (Gaussian).
        u: the cue, ``(T,)`` or ``(T, Du)``; required iff ``params.cue`` is set.
        mode: ``"sequential"`` (``lax.scan`` in probability space with per-step rescaling,
            falling back to log space if a normalizer underflows; the fast path on CPU),
            ``"log"`` (``lax.scan`` with every step in log space: the reference; the gated
            model has a closed form and runs its probability-space recursion either way),
            ``"parallel"``
            (``lax.associative_scan``; dense :math:`K\\times K` products for the
            always-emitting model, :math:`O(TK^3)` work, for accelerators), or ``None`` for the
            backend default.

    Returns:
        :class:`FilterPosterior` with ``log_likelihood``, ``filtered_s`` and ``filtered_z``.

    Example:
        >>> import jax, numpy as np
        >>> from switchssm.models import SwitchingParams, CategoricalEmission, sample
        >>> from switchssm.inference import filter
        >>> B = np.array([[0.8, 0.2], [0.3, 0.7]])
        >>> params = SwitchingParams(np.array([0.5, 0.5]), 0.1, CategoricalEmission(B))
        >>> y, u, s, z = sample(jax.random.PRNGKey(0), params, 50)
        >>> post = filter(params, y)
        >>> post.filtered_s.shape
        (50, 2)
    """
    y, u = validate_inputs(params, y, u)
    post = _filter_jit(params, y, u, mode=_scan.resolve_mode(mode, _MODES))
    _check_possible(params, y, u, post.log_likelihood)
    return post


def smooth(params: SwitchingParams, y, u=None, *, mode: str | None = None) -> SmoothPosterior:
    r"""Exact forward-backward smoother: filtered and smoothed marginals of :math:`s_t, z_t`.

    Forward pass as in :func:`filter`, then the backward messages
    :math:`\beta_{t-1}(k) \propto (1-\rho) e_t(0,k) \beta_t(k) + \rho \sum_j \pi_j e_t(1,j)
    \beta_t(j)` and :math:`P(s_t, z_t \mid x_{1:T}) \propto` forward :math:`\times` backward.
    Cost :math:`O(TK)` time and memory (sequential mode). The gated model's switches are
    independent a posteriori, so its smoothed marginals equal the filtered ones.

    Args:
        params: a :class:`~switchssm.models.SwitchingParams`.
        y: ``(T,)`` integer symbols (categorical emission) or ``(T, D)`` reals (Gaussian).
        u: the cue, ``(T,)`` or ``(T, Du)``; required iff ``params.cue`` is set.
        mode: ``"sequential"`` (probability space with per-step rescaling, falling back to
            log space if a normalizer underflows; the fast path on CPU), ``"log"`` (every
            step in log space: the reference), ``"parallel"`` (``lax.associative_scan``, for
            accelerators) or ``None`` for the backend default.

    Returns:
        :class:`SmoothPosterior` with ``log_likelihood``, ``filtered_s``, ``filtered_z``,
        ``smoothed_s`` and ``smoothed_z``.

    Example:
        >>> import jax, numpy as np
        >>> from switchssm.models import SwitchingParams, CategoricalEmission, sample
        >>> from switchssm.inference import smooth
        >>> params = SwitchingParams(np.array([0.5, 0.5]), 0.1,
        ...                          CategoricalEmission(np.array([[0.8, 0.2], [0.3, 0.7]])))
        >>> y, u, s, z = sample(jax.random.PRNGKey(0), params, 50)
        >>> smooth(params, y).smoothed_z.shape
        (50,)
    """
    y, u = validate_inputs(params, y, u)
    post = _smooth_jit(params, y, u, mode=_scan.resolve_mode(mode, _MODES))
    _check_possible(params, y, u, post.log_likelihood)
    return post


def _log_space_ll(params, y, u, parallel=False):
    """Log-space log-likelihood with probability-space derivatives (:mod:`._logspace`)."""
    return _logspace.log_likelihood(_logspace.factors(params, y, u), parallel)


def log_likelihood(
    params: SwitchingParams, y, u=None, *, mode: str | None = None
) -> Float[Array, ""]:
    """:math:`\\log P(y_{1:T}, u_{1:T})`, differentiable in ``params`` (for fitting).

    ``mode="sequential"`` (the default on CPU): the probability-space forward pass, and a
    gradient computed by forward-backward (a custom VJP, :mod:`._scaled`): one forward and
    one backward scan, about half the cost of reverse mode through the scan; reverse-mode
    only (``jax.grad``, ``jax.vjp``). ``mode="log"``: the log-space recursion, and
    ``mode="parallel"``: the associative-scan filter, both with a derivative taken in
    probability space (:mod:`._logspace`, a custom JVP), so forward mode (``jax.jvp``,
    ``jax.hessian``) works too. The gated model always uses its closed form (no scan).

    Every mode gives -inf for an impossible sequence (a step of probability 0) and finite
    one-sided derivatives where ``pi``, the emission probabilities or ``rho`` are 0 or 1.
    Concrete ``y`` and ``u`` are validated (a ``ValueError`` naming the argument); traced
    ones cannot be, and an out-of-range symbol then gives NaN, never a plausible number
    (``docs/numerics.md``, "Validation under jit").

    For many gradient evaluations on short sequences, keep them inside one jitted loop
    (``lax.scan`` over optimizer steps, as :func:`~switchssm.fit.fit_mle` does): on
    CPU a separate jitted call from Python adds about 0.1 ms of dispatch, which is most of
    the cost at K = 4, T = 10^3 (``benchmarks/README.md``).
    """
    mode = _scan.resolve_mode(mode, _MODES)
    y, u = validate_inputs(params, y, u)
    return _log_likelihood_jit(params, y, u, mode=mode)


def _log_likelihood_impl(params, y, u, mode):
    if params.gated:
        _, _, log_norms = gated_gate_and_candidate(params, y, u)
        return total(log_norms)
    if mode == "sequential":
        return _scaled.log_likelihood(params, y, u)[0]
    return _log_space_ll(params, y, u, parallel=mode == "parallel")


# jitted as a whole: called eagerly, the custom VJP's lax.cond would otherwise be traced
# and compiled again on every call (~0.25 s a call at T = 30)
_log_likelihood_jit = jax.jit(_log_likelihood_impl, static_argnames="mode")


def _sample_impl(key, params, y, u, num_samples):
    log_pi, log_rho2, log_e, shift = _log_args(params, y, u)
    log_joint, log_norms = forward_log(log_pi, log_rho2, log_e)
    T, _, K = log_joint.shape
    states = jnp.arange(K)

    def one(key):
        keys = jax.random.split(key, T)
        last = jax.random.categorical(keys[-1], log_joint[-1].reshape(-1))
        zT, sT = last // K, last % K

        def step(carry, inp):
            s_next, z_next = carry
            lj, k = inp
            copy = jnp.where(states[None, :] == s_next, lj, -jnp.inf)
            logits = jnp.where(z_next == 1, lj, copy).reshape(-1)
            idx = jax.random.categorical(k, logits)
            zs = (idx // K, idx % K)
            return (zs[1], zs[0]), zs

        _, (z, s) = lax.scan(step, (sT, zT), (log_joint[:-1], keys[:-1]), reverse=True)
        return jnp.append(s, sT), jnp.append(z, zT)

    s, z = jax.vmap(one)(jax.random.split(key, num_samples))
    return s, z, total(log_norms) + jnp.sum(shift)


_sample_jit = jax.jit(_sample_impl, static_argnames="num_samples")


def posterior_sample(
    key: PRNGKeyArray, params: SwitchingParams, y, u=None, *, num_samples: int = 1
) -> tuple[Int[Array, "N T"], Int[Array, "N T"]]:
    """Draw ``(s, z)`` paths from :math:`P(s_{1:T}, z_{1:T} \\mid x_{1:T})` by forward
    filtering, backward sampling.

    Backward step: given :math:`(s_{t+1}, z_{t+1})`, if :math:`z_{t+1} = 1` draw
    :math:`(s_t, z_t)` from the filtered joint at :math:`t`; if :math:`z_{t+1} = 0` then
    :math:`s_t = s_{t+1}` and :math:`z_t \\propto P(z_t, s_t = s_{t+1} \\mid x_{1:t})`.

    Args:
        key: a PRNG key.
        params: a :class:`~switchssm.models.SwitchingParams`.
        y: ``(T,)`` integer symbols (categorical emission) or ``(T, D)`` reals (Gaussian).
        u: the cue, ``(T,)`` or ``(T, Du)``; required iff ``params.cue`` is set.
        num_samples: number of independent paths.

    Returns:
        ``(s, z)``, each ``(num_samples, T)`` integer arrays.
    """
    y, u = validate_inputs(params, y, u)
    key = V.as_key(key)
    num_samples = V.check_int(num_samples, "num_samples")
    s, z, ll = _sample_jit(key, params, y, u, num_samples=num_samples)
    _check_possible(params, y, u, ll)
    return s, z
