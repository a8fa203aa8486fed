r"""Fitting the categorical switching model by maximizing the exact likelihood with gradients.

:func:`fit_mle` maximizes :math:`\sum_n \log P(x^{(n)} \mid \theta)` (optionally plus the
log prior of a :class:`~switchssm.fit.Prior`: MAP) by gradients through the forward pass
(:func:`switchssm.inference.batch.log_likelihoods`, with its forward-backward custom VJP) in
unconstrained coordinates (:mod:`switchssm.fit._transforms`): Adam, then optionally L-BFGS,
from several restarts run side by side (``vmap``), every chunk of optimizer steps inside one
compiled ``lax.scan``.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from tqdm.std import tqdm

from switchssm import _validation as V
from switchssm.fit._init import prepare_restarts
from switchssm.fit._transforms import to_params
from switchssm.fit._transforms import to_unconstrained
from switchssm.fit.priors import Prior
from switchssm.fit.result import FitResult
from switchssm.fit.result import final_values
from switchssm.fit.result import finish
from switchssm.fit.result import relative_change
from switchssm.inference.batch import log_likelihoods_checked
from switchssm.models.params import SwitchingParams
from switchssm.types import PRNGKeyArray

__all__ = ["fit_mle"]

_CHUNK = 25  # optimizer steps per compiled call; also the Adam convergence window
_LBFGS_WINDOW = 5  # L-BFGS steps over which the convergence test looks back


def _objective(theta, data, spec, prior, log_space=False):
    """Log-likelihood (+ log prior) at ``theta``; NaN where the fast kernel underflowed (the
    optimizer skips such a step and the driver re-runs the chunk with ``log_space``)."""
    params = to_params(theta, spec.gated)
    lls, ok = log_likelihoods_checked(params, data, log_space)
    return jnp.where(ok, jnp.sum(lls) + prior.log_density(params), jnp.nan)


def _all_finite(tree):
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]))


@partial(jax.jit, static_argnames=("spec", "prior", "num_inner", "learning_rate", "log_space"))
def _chunk(thetas, states, data, *, spec, prior, num_inner, learning_rate, log_space):
    """``num_inner`` optimizer steps of every restart in one compiled scan: Adam with step
    ``learning_rate``, or L-BFGS (zoom line search) when ``learning_rate`` is ``None``. A step
    whose value, gradient or result is not finite is skipped (its objective reads NaN)."""
    lbfgs = learning_rate is None
    opt = optax.lbfgs() if lbfgs else optax.adam(learning_rate)
    n = jnp.sum(data.mask)

    def loss(theta):  # per-step negative objective: step size independent of data size
        return -_objective(theta, data, spec, prior, log_space) / n

    vg = optax.value_and_grad_from_state(loss) if lbfgs else None

    def one(theta, state):
        def body(carry, _):
            theta, state = carry
            if lbfgs:
                val, g = vg(theta, state=state)
                upd, new_state = opt.update(g, state, theta, value=val, grad=g, value_fn=loss)
            else:
                val, g = jax.value_and_grad(loss)(theta)
                upd, new_state = opt.update(g, state, theta)
            new_theta = optax.apply_updates(theta, upd)
            ok = jnp.isfinite(val) & _all_finite(g) & _all_finite(new_theta)
            keep = lambda a, b: jnp.where(ok, a, b)
            theta = jax.tree_util.tree_map(keep, new_theta, theta)
            state = jax.tree_util.tree_map(keep, new_state, state)
            return (theta, state), jnp.where(ok, -val * n, jnp.nan)

        (theta, state), hist = lax.scan(body, (theta, state), None, length=num_inner)
        return theta, state, hist

    return jax.vmap(one)(thetas, states)


def _run_optimizer(chunk_fn, init_fn, thetas, data, num_steps, tol, scale, pbar, window, **kw):
    """Run ``chunk_fn`` in chunks until ``num_steps`` or every restart has converged.

    Chunks run on the fast probability-space kernel; a chunk that produced a NaN objective
    (an underflowed normalizer, or a genuinely bad step) is re-run from its start with the
    log-space recursions, which are then kept for the rest of the fit.
    """
    states = jax.vmap(init_fn)(thetas)
    hist, done = [], 0
    conv = np.zeros(jax.tree_util.tree_leaves(thetas)[0].shape[0], bool)
    log_space = False
    while done < num_steps:
        inner = min(_CHUNK, num_steps - done)
        out = chunk_fn(thetas, states, data, num_inner=inner, log_space=log_space, **kw)
        if not log_space and not np.all(np.isfinite(np.asarray(out[2]))):
            log_space = True
            out = chunk_fn(thetas, states, data, num_inner=inner, log_space=True, **kw)
        thetas, states, h = out
        h = np.asarray(h)
        hist.append(h)
        done += inner
        pbar.update(inner)
        allh = np.concatenate(hist, axis=1)
        if np.any(np.isfinite(allh[:, -1])):
            pbar.set_postfix(best=f"{np.nanmax(allh[:, -1]):.6g}", refresh=False)
        if allh.shape[1] > window:
            conv = relative_change(allh[:, -1], allh[:, -1 - window], scale) < tol
            conv &= np.all(np.isfinite(allh), axis=1)
            if np.all(conv):
                break
    return thetas, np.concatenate(hist, axis=1), conv


def fit_mle(
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
    num_steps: int = 500,
    learning_rate: float = 0.05,
    num_lbfgs_steps: int = 100,
    tol: float = 1e-7,
    prior: Prior | None = None,
    key: PRNGKeyArray | None = None,
    init: SwitchingParams | None = None,
    progress: bool = True,
    mesh=None,
) -> FitResult:
    r"""Fit a switching model by maximizing the exact marginal log-likelihood with gradients.

    .. math::
        \hat\theta = \arg\max_\theta \sum_n \log P(y^{(n)}, u^{(n)} \mid \theta)
        \;[+ \log p(\theta)],

    computed by the :math:`O(TK)` forward pass (the gated model's closed form needs no scan)
    on padded, masked sequences, with its forward-backward gradient (a custom VJP; chunks whose
    normalizers underflow are re-run in log space) in unconstrained coordinates
    (``pi``, ``B`` rows: softmax of logits; ``rho``: sigmoid; covariance: :math:`LL^\top`
    with a softplus diagonal; cue scale: softplus). ``num_steps`` Adam steps on the per-step
    objective (objective / total steps, so ``learning_rate`` does not depend on the data
    size), then ``num_lbfgs_steps`` L-BFGS steps with a zoom line search; each phase stops
    early once every restart has converged. Restarts run side by side (``vmap``). A step whose
    value or gradient is not finite is skipped (and the restart is reported not converged).
    For the gated model the likelihood does not depend on the switching dynamics (see
    :func:`fit_em`): ``rho`` is identified only through the cue.

    Convergence: the objective :math:`\ell` changed by less than ``tol`` relative,
    :math:`|\ell_i - \ell_{i-w}| < \mathrm{tol} \cdot \max(|\ell_i|, n)`, over the last
    window (``w = 25`` Adam steps or 5 L-BFGS steps), where :math:`n` is the total number of
    steps (a per-step change below ``tol`` when :math:`|\ell| < n`).

    Args:
        y: observations: one sequence, a list of sequences of any lengths, or a padded array
            with ``lengths`` (see :func:`~switchssm.sequences.as_sequences`). Categorical:
            integer symbols;
            Gaussian: ``(T, D)`` reals.
        u: cue observations in the same layout, or ``None``.
        num_states: ``K >= 1`` (may be omitted when ``init`` is given).
        emission: ``"categorical"`` (default) or ``"gaussian"``.
        gated: gated emission (default ``False``, always-emitting).
        cue: ``None`` (a cue iff ``u`` is given), ``False``, ``True``, ``"scalar"`` or
            ``"vector"`` (checked against ``u``). The fitted cue has one scale ``tau``.
        lengths: ``(N,)`` sequence lengths for padded ``y`` (and ``u``).
        num_symbols: categorical alphabet size ``V`` (default ``max(y) + 1``).
        num_restarts: number of starting points (``init`` first if given, then random ones
            drawn from ``key`` around data statistics).
        num_steps: maximum Adam steps.
        learning_rate: Adam step size.
        num_lbfgs_steps: maximum L-BFGS steps after Adam (0 to skip).
        tol: relative convergence tolerance.
        prior: a :class:`~switchssm.fit.Prior` for MAP (its Dirichlet and Beta terms; the
            Gaussian and cue hyperparameters act in NUTS/SVI only), or ``None`` for maximum
            likelihood.
        key: a ``jax.random`` key or an integer seed for the random restarts (needed unless
            ``init`` covers them all).
        init: starting :class:`~switchssm.models.SwitchingParams` (fixes the structure).
        progress: show a ``tqdm`` progress bar on stderr.
        mesh: a :class:`jax.sharding.Mesh` with a ``"sequences"`` axis (see
            :func:`~switchssm.fit.sequence_mesh`) to shard the sequences
            across its devices, or ``None`` to run on the default device. Starting points
            are drawn from the unsharded data, so the result equals the unsharded fit up to
            the order of the cross-device sums.

    Returns:
        :class:`~switchssm.fit.FitResult` (``history`` has the objective after every
        optimizer step).

    Example:
        >>> import jax, numpy as np
        >>> from switchssm.models import SwitchingParams, CategoricalEmission, sample
        >>> p = SwitchingParams(np.array([.5, .5]), .1, CategoricalEmission(np.eye(2) * .6 + .2))
        >>> ys = [sample(jax.random.PRNGKey(i), p, 200)[0] for i in range(2)]
        >>> fit = fit_mle(ys, num_states=2, num_restarts=2, num_steps=50, num_lbfgs_steps=0,
        ...               key=jax.random.PRNGKey(0), progress=False)
        >>> fit.history.shape
        (2, 51)
    """
    num_steps = V.check_int(num_steps, "num_steps", low=0)
    num_lbfgs_steps = V.check_int(num_lbfgs_steps, "num_lbfgs_steps", low=0)
    learning_rate = V.check_float(learning_rate, "learning_rate", low=0, low_open=True)
    tol = V.check_float(tol, "tol", low=0)
    data, metadata_data, spec, prior_eff, thetas = prepare_restarts(
        y, u, num_states=num_states, emission=emission, gated=gated, cue=cue,
        lengths=lengths, num_symbols=num_symbols, num_restarts=num_restarts, key=key,
        init=init, prior=prior, mesh=mesh, start_fn=to_unconstrained,
    )  # fmt: skip
    n = float(metadata_data.num_timesteps)
    hists = []
    with tqdm(
        total=num_steps + num_lbfgs_steps, disable=not progress, desc="fit_mle", leave=False
    ) as pbar:
        conv = np.zeros(num_restarts, bool)
        if num_steps:
            thetas, h, conv = _run_optimizer(
                _chunk, optax.adam(learning_rate).init, thetas, data, num_steps, tol, n,
                pbar, _CHUNK, spec=spec, prior=prior_eff, learning_rate=learning_rate,
            )  # fmt: skip
            hists.append(h)
        if num_lbfgs_steps:
            thetas, h, conv = _run_optimizer(
                _chunk, optax.lbfgs().init, thetas, data, num_lbfgs_steps, tol, n,
                pbar, _LBFGS_WINDOW, spec=spec, prior=prior_eff, learning_rate=None,
            )  # fmt: skip
            hists.append(h)
    params_R = jax.vmap(lambda t: to_params(t, spec.gated))(thetas)
    lls, objs = (np.asarray(a) for a in final_values(params_R, data, prior_eff))
    history = np.concatenate([*hists, objs[:, None]], axis=1)
    conv = conv & np.isfinite(objs)
    return finish(
        "mle", metadata_data, spec, prior, params_R, history, conv, lls, objs,
        num_adam_steps=int(hists[0].shape[1]) if num_steps else 0,
        learning_rate=learning_rate, tol=tol,
    )  # fmt: skip
