r"""Exact run-length (changepoint) filter for the Gaussian-latent switching model.

Bayesian online changepoint detection (Adams and MacKay 2007) for the model of
:mod:`switchssm.models.gaussian_latent` (docs/theory.md section 4).

**Run length.** ``r_t`` is the number of steps since the last switch: ``r_t = 0`` if
``z_t = 1`` and ``r_t = r_{t-1} + 1`` otherwise. The segment of ``s_0`` counts as a switch at
``t = 0`` (``r_0 = 0``, prior ``N(mu0, S0)``), so ``r_t in {0, ..., t}``: ``r_t = t`` means
"no switch yet". Given ``r_t = r`` the latent ``s_t`` is the static Gaussian of the current
segment, whose posterior after the segment's observations is Gaussian ``N(m_r, P_r)``.
The filtered law of ``s_t`` is the mixture

.. math::

    p(s_t | x_{1:t}) = \sum_r w_t(r) N(s_t | m_{t,r}, P_{t,r}),
    \qquad w_t(r) = P(r_t = r | x_{1:t}).

**Recursion.** With ``w_{t-1}`` normalized, ``lc_z = log N(u_t | m_z, tau^2)`` (0 without a
cue) and the background (prior predictive of a fresh latent)
``b_t = N(y_t | C mu0, C S0 C' + R)``:

* ``z_t = 1`` (a new segment, ``r_t = 0``): weight ``rho e^{lc_1} b_t``; the component is
  ``N(mu0, S0)`` updated with ``y_t`` (one Kalman step of a static state).
* ``z_t = 0`` (``r_t = r + 1``), for every component ``r`` of step ``t-1``:

  - always-emitting: weight ``(1 - rho) e^{lc_0} w_{t-1}(r) N(y_t | C m, C P C' + R)`` and the
    component is updated with ``y_t``;
  - gated: weight ``(1 - rho) e^{lc_0} w_{t-1}(r) b_t`` and the component is carried unchanged
    (``y_t`` is background noise when nothing switched).

The normalizer of these ``t + 1`` weights is ``p(x_t | x_{1:t-1})``; the log-likelihood is the
sum of its logs. Kalman update of a static state with ``y ~ N(C s, R)``:
``S = C P C' + R``, ``G = P C' S^{-1}``, ``m' = m + G (y - C m)``,
``P' = (I - G C) P (I - G C)' + G R G'`` (Joseph form).

**Pruning.** With ``max_run_lengths = R`` the filter keeps ``R`` slots; every step makes
``R + 1`` candidates (``R`` carried plus the fresh one), keeps the ``R`` most probable (that is,
drops the least probable one: an ``argmin``, no sort, and the slots stay ordered by run length),
renormalizes, and reports the discarded probability ``eps_t``. Pruning only
removes nonnegative terms from a positive linear recursion, so the pruned, un-renormalized
messages never exceed the exact ones; hence
``log_likelihood_pruned + sum_{t<T} log(1 - eps_t) <= log_likelihood_exact``. With
``max_run_lengths=None`` (or ``>= T + 1``) there are ``T + 1`` slots and nothing is discarded.

Cost ``O(T R (K^3 + D^3))`` time and ``O(T R)`` memory for the outputs.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import cho_solve
from jax.scipy.linalg import solve_triangular
from jax.scipy.special import logsumexp

from switchssm import _validation as V
from switchssm.models.gaussian_latent import GaussianLatentParams
from switchssm.types import Array
from switchssm.types import Float
from switchssm.types import Int

__all__ = ["RunLengthPosterior", "run_length_filter"]

_LOG_2PI = 1.8378770664093453


class RunLengthPosterior(NamedTuple):
    """Output of :func:`run_length_filter` (``R`` slots; ``R = T + 1`` when exact).

    Attributes:
        log_likelihood: ``log p(x_{1:T})`` (of the pruned filter when pruning discards mass).
        run_length_probs: ``(T, R)`` probability of each slot after step ``t`` (and after
            pruning). In the exact filter slot ``r`` holds run length ``r``, so
            ``run_length_probs[t, r] = P(r_t = r | x_{1:t})`` (0-based ``t``: row ``t`` is step
            ``t + 1``, run lengths ``0..t+1``). With pruning the slots stay in increasing order
            of run length (empty slots last) and ``run_lengths`` says which one each holds.
        run_lengths: ``(T, R)`` int32 run length held by each slot, ``-1`` for an empty slot.
        filtered_z: ``(T,)`` ``P(z_t = 1 | x_{1:t})``.
        filtered_mean: ``(T, K)`` mean of the mixture ``p(s_t | x_{1:t})``.
        filtered_cov: ``(T, K, K)`` covariance of that mixture (within plus between
            components).
        discarded_mass: ``(T,)`` probability ``eps_t`` dropped by pruning at each step (0 when
            exact). ``filtered_*`` are computed from the ``R + 1`` candidates before pruning.
        log_normalizers: ``(T,)`` per-step ``log p(x_t | x_{1:t-1})``; their sum is
            ``log_likelihood``.
    """

    log_likelihood: Float[Array, ""]
    run_length_probs: Float[Array, "T R"]
    run_lengths: Int[Array, "T R"]
    filtered_z: Float[Array, " T"]
    filtered_mean: Float[Array, "T K"]
    filtered_cov: Float[Array, "T K K"]
    discarded_mass: Float[Array, " T"]
    log_normalizers: Float[Array, " T"]


def _mvn_logpdf_chol(resid, L):
    """``log N(resid | 0, L L')`` for a lower Cholesky factor ``L``."""
    a = solve_triangular(L, resid, lower=True)
    D = resid.shape[-1]
    return -0.5 * (D * _LOG_2PI + jnp.sum(a * a)) - jnp.sum(jnp.log(jnp.diag(L)))


def _kalman_update(m, P, y, C, Rcov):
    """Update ``N(m, P)`` of a static state with ``y ~ N(C s, R)``.

    Returns the posterior mean and covariance and ``log N(y | C m, C P C' + R)``.
    """
    S = C @ P @ C.T + Rcov
    S = 0.5 * (S + S.T)
    L = jnp.linalg.cholesky(S)
    resid = y - C @ m
    ll = _mvn_logpdf_chol(resid, L)
    PCt = P @ C.T
    G = cho_solve((L, True), PCt.T).T  # P C' S^{-1}
    m_new = m + G @ resid
    IGC = jnp.eye(P.shape[0], dtype=P.dtype) - G @ C
    P_new = IGC @ P @ IGC.T + G @ Rcov @ G.T
    P_new = 0.5 * (P_new + P_new.T)
    return m_new, P_new, ll


def _mixture_moments(logw, means, covs):
    """Mean and covariance of ``sum_j w_j N(means_j, covs_j)`` with normalized ``log w``."""
    w = jnp.exp(logw)
    mean = w @ means
    d = means - mean
    cov = jnp.einsum("j,jab->ab", w, covs) + jnp.einsum("j,ja,jb->ab", w, d, d)
    return mean, 0.5 * (cov + cov.T)


@partial(jax.jit, static_argnames=("num_slots",))
def _filter(params: GaussianLatentParams, y, u, num_slots: int):
    dtype = jnp.result_type(y.dtype, params.initial_mean.dtype, float)
    y = y.astype(dtype)
    mu0 = params.initial_mean.astype(dtype)
    S0 = params.initial_cov.astype(dtype)
    C = params.emission_matrix.astype(dtype)
    Rcov = params.emission_cov.astype(dtype)
    rho = jnp.asarray(params.switch_prob, dtype)
    log_rho, log_stay = jnp.log(rho), jnp.log1p(-rho)
    T = y.shape[0]
    K = mu0.shape[0]
    Rn = num_slots

    if params.cue is not None:
        lc = params.cue.log_prob(u).astype(dtype)  # (T, 2)
    else:
        lc = jnp.zeros((T, 2), dtype)

    init = (
        jnp.full((Rn,), -jnp.inf, dtype).at[0].set(0.0),  # log weights
        jnp.broadcast_to(mu0, (Rn, K)),
        jnp.broadcast_to(S0, (Rn, K, K)),
        jnp.full((Rn,), -1, jnp.int32).at[0].set(0),  # run lengths (-1 = empty)
    )

    def step(carry, xs):
        logw, ms, Ps, rs = carry
        y_t, lc_t = xs
        if params.gated:
            # Only the fresh component sees y_t; carried ones are multiplied by b_t.
            fm, fP, lb = _kalman_update(mu0, S0, y_t, C, Rcov)
            cand_m = jnp.concatenate([fm[None], ms])
            cand_P = jnp.concatenate([fP[None], Ps])
            ll = jnp.broadcast_to(lb, (Rn + 1,))
        else:
            # Slot 0: the fresh prior N(mu0, S0); the rest: the carried components. All are
            # updated with y_t; the fresh one's predictive is the background b_t.
            cand_m, cand_P, ll = jax.vmap(lambda m, P: _kalman_update(m, P, y_t, C, Rcov))(
                jnp.concatenate([mu0[None], ms]), jnp.concatenate([S0[None], Ps])
            )
        cand_lw = jnp.concatenate([(log_rho + lc_t[1])[None], log_stay + lc_t[0] + logw]) + ll
        cand_r = jnp.concatenate([jnp.zeros((1,), jnp.int32), jnp.where(rs >= 0, rs + 1, -1)])

        log_norm = logsumexp(cand_lw)
        cand_lw = cand_lw - log_norm
        fz = jnp.exp(cand_lw[0])
        mean, cov = _mixture_moments(cand_lw, cand_m, cand_P)

        # Keep the R most probable of the R + 1 candidates: drop the least probable one. Empty
        # slots (log weight -inf) go first, so the exact filter (R = T + 1) never drops mass,
        # and the kept slots stay sorted by run length with the empty ones last.
        drop = jnp.argmin(cand_lw)
        idx = jnp.arange(Rn)
        keep = idx + (idx >= drop)
        dropped = jnp.exp(cand_lw[drop])
        new_lw = cand_lw[keep] - jnp.log1p(-dropped)
        new = (new_lw, cand_m[keep], cand_P[keep], cand_r[keep])
        out = (log_norm, fz, mean, cov, jnp.exp(new_lw), new[3], dropped)
        return new, out

    _, outs = jax.lax.scan(step, init, (y, lc))
    log_norm, fz, mean, cov, probs, rls, dropped = outs
    return RunLengthPosterior(
        log_likelihood=jnp.sum(log_norm),
        run_length_probs=probs,
        run_lengths=rls,
        filtered_z=fz,
        filtered_mean=mean,
        filtered_cov=cov,
        discarded_mass=dropped,
        log_normalizers=log_norm,
    )


def run_length_filter(
    params: GaussianLatentParams,
    y: Float[Array, "T D"],
    u: Array | None = None,
    *,
    max_run_lengths: int | None = None,
) -> RunLengthPosterior:
    r"""Exact (or pruned) run-length filter of the Gaussian-latent switching model.

    Computes ``P(r_t | x_{1:t})``, ``P(z_t = 1 | x_{1:t})``, the moments of the Gaussian mixture
    ``p(s_t | x_{1:t})`` and ``log p(x_{1:T})`` by the recursion in the module docstring
    (Adams and MacKay 2007), normalized in log space at every step so that long sequences stay
    finite.

    Gated model fact (docs/theory.md section 4): with the marginal background, the fresh and the
    carried branches share the factor ``b_t``, so
    ``filtered_z[t] = sigmoid(logit rho + lc_1 - lc_0)``, the cue-only posterior (also under
    pruning).

    Args:
        params: :class:`~switchssm.models.gaussian_latent.GaussianLatentParams`.
        y: ``(T, D)`` observations, finite.
        u: cue observations ``(T,)`` or ``(T, Du)``; required exactly when ``params.cue`` is set.
        max_run_lengths: keep the ``R`` most probable run lengths (a positive int). ``None``
            (or ``R >= T + 1``) is exact with ``T + 1`` slots.

    Returns:
        :class:`RunLengthPosterior`.

    Raises:
        ValueError: for malformed ``params``, ``y``, ``u`` or ``max_run_lengths``.

    Example:
        >>> import numpy as np
        >>> from switchssm.models.gaussian_latent import GaussianLatentParams
        >>> p = GaussianLatentParams(np.zeros(1), np.eye(1), np.eye(1), 0.1 * np.eye(1), 0.05)
        >>> post = run_length_filter(p, np.zeros((20, 1)), max_run_lengths=5)
        >>> post.run_length_probs.shape, post.filtered_mean.shape
        ((20, 5), (20, 1))
    """
    if not isinstance(params, GaussianLatentParams):
        raise ValueError(f"`params` must be a GaussianLatentParams, got {type(params).__name__}")
    params.validate_observations(y, u)
    T = np.shape(y)[0]
    if max_run_lengths is None:
        num_slots = T + 1
    else:
        R = V.check_int(max_run_lengths, "max_run_lengths")
        num_slots = min(R, T + 1)
    y = jnp.asarray(y)
    if not jnp.issubdtype(y.dtype, jnp.floating):
        y = y.astype(jnp.result_type(float))
    if u is not None:
        u = jnp.asarray(u)
    return _filter(params, y, u, num_slots)
