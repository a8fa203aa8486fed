r"""Fitting the categorical switching model by expectation-maximization (closed-form M-steps).

E-step: the exact smoothed joint :math:`\xi_t(z, k) = P(z_t = z, s_t = k \mid x)` of every
sequence (:func:`switchssm.inference.batch.smoothed_joint`). M-steps (sums run over sequences
and real steps; :math:`n` is the total number of steps). The complete-data log-likelihood of
one sequence is

.. math::

    \log \pi_{s_0} + \sum_t \big[z_t \log\rho + (1 - z_t)\log(1-\rho)\big]
    + \sum_t z_t \log \pi_{s_t} + \sum_t \log P(y_t \mid \cdot) + \sum_t \log N(u_t \mid m_{z_t},
    \tau^2),

so, with :math:`P(s_0 = k \mid x) = \xi_1(0, k) + P(z_1 = 1 \mid x)\, \pi_k` (if
:math:`z_1 = 0` then :math:`s_0 = s_1`; if :math:`z_1 = 1`, :math:`s_0` is independent of the
data and keeps its prior :math:`\pi`):

- :math:`\rho = \sum_t P(z_t = 1 \mid x) / n`;
- :math:`\pi_k \propto \sum_{\text{seq}} P(s_0 = k \mid x) + \sum_t \xi_t(1, k)` (``pi`` is the
  law of ``s_0`` *and* of every fresh draw, so both kinds of draw are counted);
- emission weights :math:`w_t(k) = P(s_t = k \mid x)` (always-emitting):
  :math:`B_{kv} \propto \sum_t w_t(k) [y_t = v]`; Gaussian means
  :math:`\mu_k = \sum_t w_t(k) y_t / \sum_t w_t(k)` and shared covariance
  :math:`\Sigma = \frac1n \sum_{t,k} w_t(k) (y_t - \mu_k)(y_t - \mu_k)^\top`;
- cue: :math:`m_z = \sum_t P(z_t = z \mid x) u_t / \sum_t P(z_t = z \mid x)` and
  :math:`\tau^2 = \frac{1}{n D_u} \sum_{t,z} P(z_t = z \mid x) \lVert u_t - m_z \rVert^2`.

Gated emission. :math:`\bar P(y) = \sum_k \pi_k P(y \mid k)` puts ``pi`` and the emission
inside a sum, so maximizing the expected complete-data log-likelihood over ``(s, z)`` alone
is not closed form. Augmenting the model with a background state :math:`r_t \sim \pi` that
emits :math:`y_t` at the steps with :math:`z_t = 0` makes it closed form again
(:func:`switchssm.models.switching_model` draws such a state at every step and uses it only
when :math:`z_t = 0`: the same marginal likelihood): the augmented
model has the same marginal likelihood, so this is still exact EM (monotone). Its posterior
is :math:`P(r_t = k \mid x, z_t = 0) = q_t(k) = \pi_k P(y_t \mid k) / \bar P(y_t)`, which adds
:math:`\sum_t P(z_t = 0 \mid x)\, q_t(k)` to the ``pi`` counts, and the emission weights
become :math:`w_t(k) = \xi_t(1, k) + P(z_t = 0 \mid x)\, q_t(k)`.

MAP: with a :class:`~switchssm.fit.Prior` (Dirichlet :math:`\alpha` on ``pi``, Dirichlet
:math:`\beta` on each row of ``B``, :math:`\mathrm{Beta}(a, b)` on ``rho``) each count gets
its pseudo-count (:math:`\alpha - 1`, :math:`\beta - 1`, :math:`a - 1` and :math:`b - 1`), and
EM increases the log posterior monotonically.

Floor on categorical emissions: ``emission_pseudocount`` :math:`c` (default ``1e-3``) is added
to every count of ``B``, the MAP under a :math:`\mathrm{Dirichlet}(\beta + c)` prior on each
row, so a symbol absent from the training data keeps a small positive probability
(:math:`B_{kv} \geq c / (n_k + V c)`) instead of an exact zero that makes any sequence
containing it impossible. ``emission_pseudocount=0`` is the plain maximum likelihood.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.std import tqdm

from switchssm import _validation as V
from switchssm.fit._init import prepare_restarts
from switchssm.fit.priors import Prior
from switchssm.fit.result import FitResult
from switchssm.fit.result import final_values
from switchssm.fit.result import finish
from switchssm.fit.result import relative_change
from switchssm.inference.batch import gated_posteriors
from switchssm.inference.batch import smoothed_joint
from switchssm.models.params import CategoricalEmission
from switchssm.models.params import GaussianCue
from switchssm.models.params import GaussianEmission
from switchssm.models.params import SwitchingParams
from switchssm.sequences import Sequences
from switchssm.types import Array
from switchssm.types import PRNGKeyArray

__all__ = ["fit_em"]


class _Stats(NamedTuple):
    """Expected sufficient statistics of one sequence (or summed over sequences)."""

    num_timesteps: Array  # n (valid data steps)
    num_switches: Array  # sum_t P(z_t = 1)
    pi_counts: Array  # (K,)
    emission_weight: Array  # (K,) sum_t w_t(k)
    emission_first: Array  # categorical (K, V) counts; Gaussian (K, D) sum_t w (y - m_old)
    emission_second: Array  # Gaussian (D, D) sum_tk w (y - m_old)(y - m_old)'; else ()
    cue_weight: Array  # (2,) sum_t P(z_t = z)
    cue_first: Array  # (2, Du) sum_t P(z_t = z) (u_t - m_old_z)
    cue_second: Array  # () sum_tz P(z_t = z) |u_t - m_old_z|^2


def _sequence_stats(
    params: SwitchingParams, y, u, mask, gated_closed_form: bool = True, log_space: bool = False
):
    """Expected sufficient statistics of one padded sequence, its log-likelihood and ``ok``
    (False if the probability-space kernel underflowed: re-run with ``log_space``)."""
    em = params.emission
    maskf = mask.astype(params.initial_probs.dtype)
    ok = jnp.array(True)
    if params.gated and gated_closed_form:
        pz1, w, s0, ll = gated_posteriors(params, y, u, mask)
        pz0 = maskf - pz1
        # s_0 plus fresh draws (g_t q_t) plus background draws ((1 - g_t) q_t)
        pi_counts = s0 + w.sum(0)
    else:
        xi, s0, ll, ok = smoothed_joint(params, y, u, mask, log_space)
        pz1 = xi[:, 1].sum(-1)
        pz0 = xi[:, 0].sum(-1)
        pi_counts = s0 + xi[:, 1].sum(0)
        if params.gated:
            # Background r_t ~ pi emits y_t when z_t = 0: P(r_t = k | x, z_t = 0) = q_t(k).
            q = jax.nn.softmax(jnp.log(params.initial_probs) + em.log_prob(em.prepare(y)), -1)
            bg = pz0[:, None] * q * maskf[:, None]
            w = xi[:, 1] + bg
            pi_counts = pi_counts + bg.sum(0)
        else:
            w = xi.sum(1)
    y = em.prepare(y)
    if isinstance(em, CategoricalEmission):
        first = w.T @ jax.nn.one_hot(y, em.num_symbols, dtype=w.dtype)
        second = jnp.zeros((), w.dtype)
    else:
        d = y[:, None, :] - em.means[None]  # (T, K, D), centred at the current means
        first = jnp.einsum("tk,tkd->kd", w, d)
        second = jnp.einsum("tk,tkd,tke->de", w, d, d)
    if params.cue is not None:
        pz = jnp.stack([pz0, pz1], axis=-1)  # (T, 2), zero at padded steps
        m = params.cue.means.reshape(2, -1)
        du = u.reshape(u.shape[0], 1, -1) - m[None]  # (T, 2, Du)
        cue_w, cue_1 = pz.sum(0), jnp.einsum("tz,tzd->zd", pz, du)
        cue_2 = jnp.einsum("tz,tzd->", pz, du**2)
    else:
        cue_w, cue_1, cue_2 = jnp.zeros(2), jnp.zeros((2, 1)), jnp.zeros(())
    stats = _Stats(maskf.sum(), pz1.sum(), pi_counts, w.sum(0), first, second, cue_w, cue_1, cue_2)
    return stats, ll, ok


def _safe_normalize(counts, old, axis=-1):
    total = counts.sum(axis, keepdims=True)
    return jnp.where(total > 0, counts / jnp.where(total > 0, total, 1.0), old)


def _m_step(params: SwitchingParams, st: _Stats, prior: Prior) -> SwitchingParams:
    """Closed-form maximizer of the expected complete-data log-likelihood (+ pseudo-counts)."""
    a, b = prior.switch_beta
    rho = (st.num_switches + a - 1) / (st.num_timesteps + a + b - 2)
    pi = _safe_normalize(st.pi_counts + prior.initial_concentration - 1, params.initial_probs)
    em = params.emission
    if isinstance(em, CategoricalEmission):
        counts = st.emission_first + prior.emission_concentration - 1
        em = CategoricalEmission(_safe_normalize(counts, em.probs))
    else:
        W = st.emission_weight[:, None]
        ok = W > 0
        shift = jnp.where(ok, st.emission_first / jnp.where(ok, W, 1.0), 0.0)  # (K, D)
        # sum_tk w (y - m_new)(y - m_new)' = sum_tk w d d' - sum_k W_k shift_k shift_k'
        cov = (st.emission_second - jnp.einsum("k,kd,ke->de", W[:, 0], shift, shift)) / (
            st.num_timesteps
        )
        em = GaussianEmission(em.means + shift, 0.5 * (cov + cov.T))
    cue = params.cue
    if cue is not None:
        W = st.cue_weight[:, None]
        ok = W > 0
        shift = jnp.where(ok, st.cue_first / jnp.where(ok, W, 1.0), 0.0)  # (2, Du)
        var = (st.cue_second - jnp.sum(W * shift**2)) / (st.num_timesteps * shift.shape[1])
        means = cue.means + shift.reshape(cue.means.shape)
        cue = GaussianCue(means, jnp.sqrt(var).astype(means.dtype))
    return SwitchingParams(pi, rho, em, cue, gated=params.gated)


def _expected_stats(params, data: Sequences, log_space: bool = False):
    stats, ll, ok = jax.vmap(
        partial(_sequence_stats, log_space=log_space), in_axes=(None, 0, 0, 0)
    )(params, data.values, data.cue, data.mask)
    return jax.tree_util.tree_map(lambda x: x.sum(0), stats), ll.sum(), jnp.all(ok)


@partial(jax.jit, static_argnames=("prior", "log_space"))
def _em_iteration(params_R, data, *, prior, log_space=False):
    """One EM step for every restart: ``(new params, objective at the old ones, ok)``."""

    def one(params):
        stats, ll, ok = _expected_stats(params, data, log_space)
        return _m_step(params, stats, prior), ll + prior.log_density(params), ok

    new, obj, ok = jax.vmap(one)(params_R)
    return new, obj, jnp.all(ok)


def _as_fitted_structure(params: SwitchingParams) -> SwitchingParams:
    """The cue with one scalar scale (the form EM and MLE fit)."""
    cue = params.cue
    if cue is None or np.ndim(cue.scale) == 0:
        return params
    scale = float(np.sqrt(np.mean(np.asarray(cue.scale) ** 2)))
    return params.replace(cue=GaussianCue(cue.means, scale))


def fit_em(
    y,
    u=None,
    *,
    num_states: int | None = None,
    emission: str | None = None,
    gated: bool | None = None,
    cue: bool | str | None = None,
    lengths=None,
    num_symbols: int | None = None,
    num_restarts: int = 5,
    num_iters: int = 100,
    tol: float = 1e-8,
    prior: Prior | None = None,
    emission_pseudocount: float = 1e-3,
    key: PRNGKeyArray | None = None,
    init: SwitchingParams | None = None,
    progress: bool = True,
    mesh=None,
) -> FitResult:
    r"""Fit a switching model by expectation-maximization with closed-form M-steps.

    E-step: the exact smoothed joint :math:`\xi_t(z, k) = P(z_t = z, s_t = k \mid x)` of every
    sequence (normalized probability-space forward-backward, :math:`O(TK)`, re-run in log
    space if a normalizer underflows), and
    :math:`P(s_0 \mid x) = \xi_1(0, \cdot) + P(z_1 = 1 \mid x)\,\pi`. M-step: weighted counts
    and moments (module docstring): ``rho`` the expected switch fraction, ``pi`` the expected
    ``s_0`` plus fresh-draw occupancy, ``B`` / Gaussian means and shared covariance from the
    state posteriors, cue means and scale from the switch posteriors. The gated model is
    fitted as the equivalent model with a background state :math:`r_t \sim \pi` that emits
    when :math:`z_t = 0`, which keeps every M-step closed form; EM never decreases the
    log-likelihood (log posterior with a :class:`~switchssm.fit.Prior`) in either variant.

    Identifiability: in the gated model :math:`\log c_t = \log \bar P(y_t) +
    \log((1-\rho) N(u_t|m_0) + \rho N(u_t|m_1))`, so the likelihood is that of two iid
    mixtures and does not depend on the switching dynamics: ``pi`` and the emission are fitted
    as an iid mixture, and ``rho`` only through the cue, up to the swap
    :math:`(\rho, m_0, m_1) \to (1-\rho, m_1, m_0)` (without a cue ``rho`` stays at its
    initial value, where the likelihood is flat). The same holds for
    :func:`~switchssm.fit.fit_mle`.

    Convergence per restart: :math:`|\ell_i - \ell_{i-1}| < \mathrm{tol}\cdot\max(|\ell_i|, n)`
    with :math:`n` the total number of steps; iteration stops when every restart has
    converged or after ``num_iters``.

    Args:
        y: observations: one sequence, a list of sequences of any lengths, or a padded array
            with ``lengths`` (see :func:`~switchssm.sequences.as_sequences`). Categorical:
            integer symbols; Gaussian: ``(T, D)`` reals.
        u: cue observations in the same layout, or ``None``.
        num_states: ``K >= 1`` (may be omitted when ``init`` is given).
        emission: ``"categorical"`` (default) or ``"gaussian"``.
        gated: gated emission (default ``False``, always-emitting).
        cue: ``None`` (a cue iff ``u`` is given), ``False``, ``True``, ``"scalar"`` or
            ``"vector"`` (checked against ``u``). The fitted cue has one scale ``tau`` (a
            vector-scale ``init.cue`` is replaced by its root-mean-square scale).
        lengths: ``(N,)`` sequence lengths for padded ``y`` (and ``u``).
        num_symbols: categorical alphabet size ``V`` (default ``max(y) + 1``).
        num_restarts: number of starting points (``init`` first if given, then random ones
            drawn from ``key`` around data statistics).
        num_iters: maximum EM iterations.
        tol: relative convergence tolerance.
        prior: a :class:`~switchssm.fit.Prior` for MAP (its Dirichlet and Beta terms become
            pseudo-counts; the Gaussian and cue hyperparameters act in NUTS/SVI only), or
            ``None`` for maximum likelihood.
        emission_pseudocount: ``c >= 0`` added to every categorical emission count
            (default ``1e-3``): the MAP under an extra :math:`\mathrm{Dirichlet}(1 + c)`
            factor on each row of ``B``, so symbols absent from the data keep a positive
            probability (about ``c / n_k`` for ``n_k`` expected visits of state ``k``) and a
            sequence holding them stays possible. ``history`` then includes
            :math:`c \sum_{kv} \log B_{kv}`. Set it to ``0`` for the plain maximum likelihood
            (``prior=None``), whose ``B`` has exact zeros for unseen symbols. Ignored for
            Gaussian emissions.
        key: a ``jax.random`` key or an integer seed for the random restarts (needed unless
            ``init`` covers them all).
        init: starting :class:`~switchssm.models.SwitchingParams` (fixes the structure).
        progress: show a ``tqdm`` progress bar on stderr.
        mesh: a :class:`jax.sharding.Mesh` with a ``"sequences"`` axis (see
            :func:`~switchssm.fit.sequence_mesh`) to shard the sequences across its devices,
            or ``None`` to run on the default device.

    Returns:
        :class:`~switchssm.fit.FitResult` (``history[r, i]`` is the objective at iterate
        ``i``).

    Example:
        >>> import jax, numpy as np
        >>> from switchssm.models import SwitchingParams, CategoricalEmission, sample
        >>> p = SwitchingParams(np.array([.5, .5]), .1, CategoricalEmission(np.eye(2) * .6 + .2))
        >>> ys = [sample(jax.random.PRNGKey(i), p, 200)[0] for i in range(2)]
        >>> fit = fit_em(ys, num_states=2, num_restarts=2, num_iters=20,
        ...              key=jax.random.PRNGKey(0), progress=False)
        >>> fit.params.num_states, fit.converged.shape
        (2, (2,))
    """
    num_iters = V.check_int(num_iters, "num_iters", low=0)
    tol = V.check_float(tol, "tol", low=0)
    pseudocount = V.check_float(emission_pseudocount, "emission_pseudocount", low=0)
    data, metadata_data, spec, prior_eff, params_R = prepare_restarts(
        y, u, num_states=num_states, emission=emission, gated=gated, cue=cue,
        lengths=lengths, num_symbols=num_symbols, num_restarts=num_restarts, key=key,
        init=init, prior=prior, mesh=mesh, start_fn=_as_fitted_structure,
    )  # fmt: skip
    if spec.emission == "categorical" and pseudocount > 0:
        prior_eff = dataclasses.replace(
            prior_eff, emission_concentration=prior_eff.emission_concentration + pseudocount
        )
    n = float(metadata_data.num_timesteps)
    hist = []
    conv = np.zeros(num_restarts, bool)
    with tqdm(total=num_iters, disable=not progress, desc="fit_em", leave=False) as pbar:
        log_space = False
        for _ in range(num_iters):
            new, obj, ok = _em_iteration(params_R, data, prior=prior_eff, log_space=log_space)
            if not ok:  # a normalizer underflowed: exact log-space E-steps from here on
                log_space = True
                new, obj, _ = _em_iteration(params_R, data, prior=prior_eff, log_space=True)
            params_R = new
            hist.append(np.asarray(obj))
            pbar.update(1)
            pbar.set_postfix(best=f"{np.nanmax(hist[-1]):.6g}", refresh=False)
            if len(hist) > 1:
                conv = relative_change(hist[-1], hist[-2], n) < tol
                if np.all(conv):
                    break
    lls, objs = (np.asarray(a) for a in final_values(params_R, data, prior_eff))
    history = np.stack([*hist, objs], axis=1)
    if hist:  # the change made by the last M-step
        conv = relative_change(objs, hist[-1], n) < tol
    conv = conv & np.all(np.isfinite(history), axis=1)
    pseudocount = pseudocount if spec.emission == "categorical" else 0.0
    return finish(
        "em", metadata_data, spec, prior, params_R, history, conv, lls, objs, tol=tol,
        emission_pseudocount=pseudocount,
    )  # fmt: skip
