"""Starting points of the optimizers (host side, from the data) and restart bookkeeping."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from switchssm import _validation as V
from switchssm.fit._spec import FitSpec
from switchssm.fit._spec import prepare
from switchssm.fit.priors import Prior
from switchssm.fit.priors import map_prior
from switchssm.models.params import CategoricalEmission
from switchssm.models.params import GaussianCue
from switchssm.models.params import GaussianEmission
from switchssm.models.params import SwitchingParams
from switchssm.sequences import Sequences


def random_params(key, data: Sequences, spec: FitSpec) -> SwitchingParams:
    """One random starting point around the data's statistics.

    ``pi ~ Dirichlet(5)``, ``log rho ~ U(log 0.01, log 0.5)``; categorical rows: half the
    smoothed symbol frequencies, half a uniform Dirichlet draw; Gaussian means: data points
    plus 10% of the data covariance; cue means: the cue's mean plus one standard deviation of
    noise, its scale the cue's standard deviation.
    """
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
    K = spec.num_states
    mask = np.asarray(data.mask)
    pi = rng.dirichlet(np.full(K, 5.0))
    rho = float(np.exp(rng.uniform(np.log(0.01), np.log(0.5))))
    if spec.emission == "categorical":
        counts = np.bincount(np.asarray(data.values)[mask], minlength=spec.num_symbols)
        freq = (counts + 1.0) / (counts.sum() + spec.num_symbols)
        B = 0.5 * freq + 0.5 * rng.dirichlet(np.ones(spec.num_symbols), size=K)
        em = CategoricalEmission(B / B.sum(1, keepdims=True))
    else:
        obs = np.asarray(data.values)[mask]
        cov = np.atleast_2d(np.cov(obs.T)) if obs.shape[0] > 1 else np.eye(spec.dim)
        # relative jitter only (the data were checked nondegenerate: prepare)
        cov = cov + 1e-6 * np.trace(cov) / spec.dim * np.eye(spec.dim)
        means = obs[rng.choice(obs.shape[0], size=K, replace=obs.shape[0] < K)]
        means = means + 0.1 * rng.normal(size=means.shape) @ np.linalg.cholesky(cov).T
        em = GaussianEmission(means, cov)
    cue = None
    if spec.cue is not None:
        obs = np.asarray(data.cue)[mask].reshape(-1, spec.cue_dim)
        mean, sd = obs.mean(0), obs.std(0) + 1e-6
        means = mean + sd * rng.normal(size=(2, spec.cue_dim))
        scale = float(np.sqrt(np.mean(sd**2)))
        cue = GaussianCue(means[:, 0] if spec.cue == "scalar" else means, scale)
    return SwitchingParams(pi, rho, em, cue, gated=spec.gated)


def initial_params(key, data, spec, init, num_restarts) -> list[SwitchingParams]:
    """``num_restarts`` starting points: ``init`` first (if given), then random draws."""
    starts = [] if init is None else [init]
    if len(starts) < num_restarts:
        if key is None:
            raise ValueError(
                "`key` is required for random restarts (a jax.random key or an integer seed)"
            )
        key = V.as_key(key)
        keys = jax.random.split(key, num_restarts)
        starts += [random_params(k, data, spec) for k in keys[len(starts) :]]
    return starts


def stack(trees):
    """Stack pytrees of one structure along a new leading (restart) axis."""
    return jax.tree_util.tree_map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *trees)


def unstack(tree, i: int):
    """Entry ``i`` of a stacked pytree."""
    return jax.tree_util.tree_map(lambda x: x[i], tree)


def place(tree, mesh, replicate: bool = False):
    """Shard :class:`Sequences` (or replicate a pytree) over ``mesh``; without a mesh, put it
    on the default device once (the optimizer loops then do not copy it on every call)."""
    if mesh is None:
        return jax.device_put(tree)
    from switchssm.fit import distributed

    return (
        distributed.replicate(tree, mesh) if replicate else distributed.shard_sequences(tree, mesh)
    )


class Restarts(NamedTuple):
    """What EM and MLE start from (:func:`prepare_restarts`)."""

    data: Sequences  # placed on the device(s) (sharded over ``mesh``)
    host_data: Sequences  # the same, unplaced (for the result's metadata)
    spec: FitSpec
    prior: Prior  # the effective MAP prior (:func:`~switchssm.fit.priors.map_prior`)
    starts: Any  # the starting points, stacked along the restart axis and placed


def prepare_restarts(
    y,
    u,
    *,
    num_restarts,
    key,
    init,
    prior,
    mesh,
    start_fn: Callable[[SwitchingParams], Any],
    **options,
) -> Restarts:
    """The shared set-up of the point-estimate fits (EM, MLE), before any jit.

    Checks ``num_restarts``, the data and the structure ``options`` (``num_states``,
    ``emission``, ``gated``, ``cue``, ``lengths``, ``num_symbols``: :func:`prepare` with
    ``point_estimate=True``) and ``prior`` (:func:`~switchssm.fit.priors.map_prior`); draws
    ``num_restarts`` starting points (:func:`initial_params`), maps each by ``start_fn``
    (the form the method iterates on) and stacks them; places the data and the starts on
    ``mesh`` (:func:`place`).
    """
    num_restarts = V.check_int(num_restarts, "num_restarts")
    data, spec = prepare(y, u, **options, init=init, num_restarts=num_restarts, point_estimate=True)
    prior_eff = map_prior(prior, spec.emission)
    starts = stack([start_fn(p) for p in initial_params(key, data, spec, init, num_restarts)])
    return Restarts(place(data, mesh), data, spec, prior_eff, place(starts, mesh, replicate=True))
