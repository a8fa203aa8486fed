"""Posterior over the global parameters by NUTS, the discrete chain marginalized exactly
(:func:`fit_nuts`)."""

from __future__ import annotations

import functools
import math

import jax
import numpy as np
import numpyro

from switchssm import _arviz
from switchssm import _validation as V
from switchssm._docstrings import fill_doc
from switchssm.fit import bayes as B
from switchssm.fit._spec import BAYES_ARGS
from switchssm.fit.priors import Prior
from switchssm.fit.result import BayesFit
from switchssm.fit.result import metadata
from switchssm.models.params import SwitchingParams
from switchssm.types import PRNGKeyArray

__all__ = ["fit_nuts"]

_CHAIN_METHODS = ("sequential", "vectorized", "parallel")
RHAT_MAX = 1.05  # the convergence threshold on every r_hat (Vehtari et al. 2021 suggest 1.01
# for final inference; 1.05 flags the runs whose chains clearly disagree)
_INIT_JITTER = 0.5  # chains started from `init`: +-0.5 in unconstrained space


def _initial_positions(key, model, num_chains: int, init: SwitchingParams | None) -> dict:
    """Per-chain starting points in unconstrained space.

    Without ``init``: NumPyro's ``init_to_uniform`` rule, ``U(-2, 2)`` in unconstrained space,
    done by hand from the site shapes (abstract evaluation, nothing compiled). With ``init``:
    its site values, plus ``U(-0.5, 0.5)`` per chain so that the chains still start apart.
    """
    shapes = B.latent_shapes(model)
    size = sum(math.prod(s) for s in shapes.values())
    half = 2.0 if init is None else _INIT_JITTER
    flat = jax.random.uniform(key, (num_chains, size), minval=-half, maxval=half)
    center = None if init is None else B.unconstrained_values(model, B.site_values(init))
    out, start = {}, 0
    for name, shape in shapes.items():
        n = math.prod(shape)
        out[name] = flat[:, start : start + n].reshape((num_chains, *shape))
        if center is not None:
            out[name] = out[name] + center[name]
        start += n
    return {k: v[0] for k, v in out.items()} if num_chains == 1 else out


@fill_doc(BAYES_ARGS, "{bayes_args}")
def fit_nuts(
    y,
    u=None,
    *,
    num_states: int,
    emission: str = "categorical",
    num_symbols: int | None = None,
    gated: bool = False,
    cue: bool | str | None = None,
    lengths=None,
    prior: Prior = Prior(),  # noqa: B008 - immutable
    num_warmup: int = 500,
    num_samples: int = 500,
    num_chains: int = 2,
    chain_method: str = "sequential",
    target_accept_prob: float = 0.8,
    relabel: bool = True,
    init: SwitchingParams | None = None,
    key: PRNGKeyArray | int,
    progress: bool = True,
) -> BayesFit:
    """Posterior over the global parameters by NUTS, the discrete chain marginalized exactly.

    Runs :func:`~switchssm.fit.bayesian_switching_model` with :class:`numpyro.infer.NUTS`.
    On CPU, chains run one after another (``"sequential"``, the default) or batched in one
    program (``"vectorized"``); ``"parallel"`` needs one device per chain. Compilation
    dominates small problems: NumPyro compiles the sampler once per sequential chain, but the
    one vectorized program is larger; on 2 CPU cores (K=2, T=400, 2 chains of 300 + 300) the
    sequential run took about 19 s of CPU time and the vectorized one about 24 s.

    Convergence (``BayesFit.converged``): at least 2 chains, every ``r_hat`` of the model's
    parameters below 1.05 and no divergent transition. ``metadata["diagnostics"]`` holds
    the largest ``r_hat``, the smallest bulk ESS and the number of divergences.

    Args:
        {bayes_args}
        num_warmup: warm-up (adaptation) iterations per chain.
        num_samples: kept iterations per chain.
        num_chains: independent chains (>= 2 for a meaningful ``r_hat``).
        chain_method: ``"sequential"``, ``"vectorized"`` or ``"parallel"``.
        target_accept_prob: NUTS step-size adaptation target in ``(0, 1)``.
        relabel: for the categorical emission with ``K >= 2``, relabel draws after sampling
            (pivotal relabeling, :mod:`switchssm.fit.bayes`). The Gaussian emission is
            identified by ordering in the model and is never relabeled.
        init: a :class:`~switchssm.models.SwitchingParams` (e.g. an EM fit) to start the
            chains near (each chain jittered by ``U(-0.5, 0.5)`` in unconstrained space), or
            ``None`` for NumPyro's ``init_to_uniform`` rule.
        key: a PRNG key or an integer seed.
        progress: show NumPyro's progress bar.

    Returns:
        :class:`~switchssm.fit.BayesFit` (``params``: the posterior mean of the relabeled
        draws).

    Example:
        >>> import jax, numpy as np
        >>> from switchssm.models import SwitchingParams, CategoricalEmission, sample
        >>> B = np.array([[0.9, 0.1], [0.1, 0.9]])
        >>> p = SwitchingParams(np.array([0.5, 0.5]), 0.05, CategoricalEmission(B))
        >>> y, _, _, _ = sample(jax.random.PRNGKey(0), p, 100)
        >>> fit = fit_nuts(y, num_states=2, num_warmup=50, num_samples=50, key=0, progress=False)
        >>> lo, hi = np.quantile(fit.samples["switch_prob"], [0.05, 0.95])
        >>> bool(lo < 0.05 < hi)  # the 90% interval covers the true rho
        True
    """
    spec, data, key, model, prior_only = B.prepare_fit(
        y, u, num_states=num_states, emission=emission, num_symbols=num_symbols,
        gated=gated, cue=cue, prior=prior, lengths=lengths, init=init, key=key,
    )  # fmt: skip
    num_warmup = V.check_int(num_warmup, "num_warmup", low=0)
    num_samples = V.check_int(num_samples, "num_samples")
    num_chains = V.check_int(num_chains, "num_chains")
    V.check_choice(chain_method, "chain_method", _CHAIN_METHODS)
    target_accept_prob = V.check_float(
        target_accept_prob, "target_accept_prob", low=0, high=1, low_open=True, high_open=True
    )
    relabel = V.check_bool(relabel, "relabel")

    # NumPyro's model path runs the model op by op to initialize (and arviz.from_numpyro runs
    # it again): on CPU that compiles hundreds of tiny programs, more time than the sampling
    # of a small problem. Instead: site shapes by abstract evaluation, NumPyro's own
    # potential_energy / constrain_fn under jit, and the initial positions by hand.
    k_init, k_run = jax.random.split(key)
    start = _initial_positions(k_init, prior_only, num_chains, init)
    potential = jax.jit(functools.partial(numpyro.infer.util.potential_energy, model, (), {}))
    mcmc = numpyro.infer.MCMC(
        numpyro.infer.NUTS(potential_fn=potential, target_accept_prob=target_accept_prob),
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        chain_method=chain_method,
        progress_bar=progress,
    )
    mcmc.run(
        k_run,
        init_params=start,
        extra_fields=("potential_energy", "diverging", "num_steps", "accept_prob"),
    )
    constrain = jax.jit(
        functools.partial(
            numpyro.infer.util.constrain_fn,
            prior_only,
            (),
            {},
            return_deterministic=True,
            batch_ndims=1,
        )
    )
    samples = {k: np.asarray(v) for k, v in constrain(mcmc.get_samples()).items()}
    extra = mcmc.get_extra_fields()
    if relabel and spec.emission == "categorical" and spec.num_states > 1:
        samples = B.relabel(samples, int(np.argmin(np.asarray(extra["potential_energy"]))))
    grouped = {k: v.reshape((num_chains, num_samples) + v.shape[1:]) for k, v in samples.items()}
    idata = _arviz.from_mcmc(mcmc, dims=B.dims(spec), posterior=grouped)
    # r_hat needs two chains: with one, ArviZ would log a shape-validation warning per call
    summary = _arviz.summary(
        idata, var_names=B.summary_vars(spec), kind="all" if num_chains > 1 else "stats"
    )
    if num_chains == 1:
        summary["r_hat"] = np.nan
    params = B.to_switching_params({k: v.mean(0) for k, v in samples.items()}, gated=spec.gated)
    r_hat = summary["r_hat"].to_numpy(dtype=float)
    max_r_hat = float(np.max(r_hat)) if num_chains > 1 and np.all(np.isfinite(r_hat)) else None
    divergent = int(np.sum(np.asarray(extra["diverging"])))
    converged = max_r_hat is not None and max_r_hat < RHAT_MAX and divergent == 0
    diagnostics = {
        "max_r_hat": max_r_hat,
        "min_ess_bulk": float(np.nanmin(summary["ess_bulk"].to_numpy(dtype=float))),
        "num_divergent": divergent,
        "r_hat_threshold": RHAT_MAX,
    }
    md = metadata(
        "nuts", data, spec, prior,
        point_estimate="posterior mean (relabeled draws)",
        num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
        chain_method=chain_method, target_accept_prob=target_accept_prob,
        init="given" if init is not None else "init_to_uniform",
        converged=bool(converged), diagnostics=diagnostics,
    )  # fmt: skip
    ll = B.total_log_likelihood(params, data)
    return BayesFit(params, ll, bool(converged), idata, samples, summary, md)
