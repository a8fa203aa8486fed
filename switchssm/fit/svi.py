"""Variational posterior over the global parameters: ``Trace_ELBO`` on the marginalized model."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import optax
from jax import lax
from tqdm.std import tqdm

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

__all__ = ["fit_svi"]

_GUIDES = ("auto_normal", "auto_mvn")
_CHUNK = 100  # SVI steps per compiled call (one progress-bar update each)


def elbo_converged(losses, num_timesteps: int, tol: float) -> tuple[bool, float]:
    r"""Has the (noisy) loss trace flattened? ``(converged, relative change)``.

    The mean loss over the last tenth of the steps, :math:`\bar L_2`, against the mean over
    the tenth before it, :math:`\bar L_1`:
    :math:`|\bar L_2 - \bar L_1| \le \mathrm{tol} \cdot \max(|\bar L_2|, n)` with :math:`n`
    the number of data steps (so ``tol`` is a change per data step when the loss is small).
    Windowed means average out the Monte Carlo noise of single-particle ELBO estimates.
    Fewer than 20 steps never count as converged.
    """
    losses = np.asarray(losses, dtype=float)
    w = len(losses) // 10
    if w < 2 or not np.all(np.isfinite(losses[-2 * w :])):
        return False, float("nan")
    last, prev = float(losses[-w:].mean()), float(losses[-2 * w : -w].mean())
    change = abs(last - prev) / max(abs(last), float(num_timesteps))
    return bool(change <= tol), change


@fill_doc(BAYES_ARGS, "{bayes_args}")
def fit_svi(
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
    guide: str = "auto_normal",
    num_steps: int = 2000,
    learning_rate: float = 0.01,
    num_particles: int = 1,
    num_posterior_samples: int = 1000,
    tol: float = 1e-3,
    init: SwitchingParams | None = None,
    key: PRNGKeyArray | int,
    progress: bool = True,
) -> BayesFit:
    """Variational posterior over the globals: ``Trace_ELBO`` on the marginalized model.

    The discrete chain is summed out exactly inside the model, so the plain ``Trace_ELBO``
    is the ELBO of the marginal model (``TraceEnum_ELBO`` is neither needed nor trusted:
    ``docs/numerics.md``). The guide is Gaussian in the unconstrained space:
    ``"auto_normal"`` (mean field, :class:`numpyro.infer.autoguide.AutoNormal`) or
    ``"auto_mvn"`` (full rank, :class:`~numpyro.infer.autoguide.AutoMultivariateNormal`);
    the optimizer is Adam from optax, run in compiled chunks of 100 steps. SVI picks one of
    the ``K!`` symmetric modes (labels are arbitrary; match them before comparing with
    other fits). Started from ``init`` (e.g. an EM fit), it needs far fewer steps.

    Convergence (``BayesFit.converged``): the windowed loss trace has flattened
    (:func:`elbo_converged` with ``tol``); ``metadata["diagnostics"]`` holds the final ELBO
    and the relative change.

    Args:
        {bayes_args}
        guide: ``"auto_normal"`` or ``"auto_mvn"``.
        num_steps: optimizer steps.
        learning_rate: Adam step size.
        num_particles: Monte Carlo samples per ELBO estimate.
        num_posterior_samples: draws from the fitted guide stored in ``idata``.
        tol: the convergence tolerance of :func:`elbo_converged`.
        init: a :class:`~switchssm.models.SwitchingParams` to centre the guide at (its
            initial location; ``None``: NumPyro's ``init_to_uniform``, a random point).
        key: a PRNG key or an integer seed.
        progress: show a progress bar.

    Returns:
        :class:`~switchssm.fit.BayesFit` (``params``: the guide's median; ``losses``: the
        negative ELBO per step; ``guide``, ``guide_params``: the fitted guide).

    Example:
        >>> import jax, numpy as np
        >>> from switchssm.models import SwitchingParams, CategoricalEmission, sample
        >>> B = np.array([[0.9, 0.1], [0.1, 0.9]])
        >>> p = SwitchingParams(np.array([0.5, 0.5]), 0.05, CategoricalEmission(B))
        >>> y, _, _, _ = sample(jax.random.PRNGKey(0), p, 100)
        >>> fit = fit_svi(y, num_states=2, num_steps=1000, key=0, progress=False)
        >>> bool(abs(float(fit.params.switch_prob) - 0.05) < 0.05)  # the true rho is 0.05
        True
    """
    spec, data, key, model, prior_only = B.prepare_fit(
        y, u, num_states=num_states, emission=emission, num_symbols=num_symbols,
        gated=gated, cue=cue, prior=prior, lengths=lengths, init=init, key=key,
    )  # fmt: skip
    V.check_choice(guide, "guide", _GUIDES)
    num_steps = V.check_int(num_steps, "num_steps")
    num_particles = V.check_int(num_particles, "num_particles")
    num_posterior_samples = V.check_int(num_posterior_samples, "num_posterior_samples")
    learning_rate = V.check_float(learning_rate, "learning_rate", low=0, low_open=True)
    tol = V.check_float(tol, "tol", low=0)

    from numpyro.infer import SVI
    from numpyro.infer import Predictive
    from numpyro.infer import Trace_ELBO
    from numpyro.infer import autoguide
    from numpyro.infer.initialization import init_to_uniform
    from numpyro.infer.initialization import init_to_value

    # Post-processing, and the guide's set-up (which runs its model op by op), use the model
    # without its likelihood factor (`prior_only`): same latent sites, no forward pass.
    init_loc = init_to_uniform() if init is None else init_to_value(values=B.site_values(init))
    Guide = autoguide.AutoNormal if guide == "auto_normal" else autoguide.AutoMultivariateNormal
    g = Guide(prior_only, init_loc_fn=init_loc)
    optim = numpyro.optim.optax_to_numpyro(optax.adam(learning_rate))
    svi = SVI(model, g, optim, Trace_ELBO(num_particles=num_particles))
    k_fit, k_post = jax.random.split(key)
    state = svi.init(k_fit)

    chunk = min(_CHUNK, num_steps)

    @jax.jit
    def run_chunk(state, start):
        def body(state, i):
            new, loss = svi.update(state)
            keep = start + i < num_steps  # the last chunk may overrun: no-op steps
            state = jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b), new, state)
            return state, loss

        return lax.scan(body, state, jnp.arange(chunk))

    losses = []
    with tqdm(total=num_steps, disable=not progress, desc="fit_svi", leave=False) as pbar:
        for start in range(0, num_steps, chunk):
            state, l_chunk = run_chunk(state, start)
            n = min(chunk, num_steps - start)
            losses.append(np.asarray(l_chunk)[:n])
            pbar.update(n)
            pbar.set_postfix(elbo=f"{-float(np.mean(losses[-1])):.6g}", refresh=False)
    losses = np.concatenate(losses)
    gparams = svi.get_params(state)

    def sites_at(values):
        tr = numpyro.handlers.trace(numpyro.handlers.substitute(prior_only, data=values))
        return {
            name: site["value"]
            for name, site in tr.get_trace().items()
            if site["type"] == "deterministic"
            or (site["type"] == "sample" and not site["is_observed"])
        }

    names = list(jax.eval_shape(lambda p: sites_at(g.median(p)), gparams))
    predictive = Predictive(
        prior_only, guide=g, params=gparams, num_samples=num_posterior_samples, return_sites=names
    )
    # one compiled program for both the median and the draws
    median, draws = jax.jit(lambda p, k: (sites_at(g.median(p)), predictive(k)))(gparams, k_post)
    median = {k: np.asarray(v) for k, v in median.items()}
    draws = {k: np.asarray(v) for k, v in draws.items()}
    idata = _arviz.from_samples(draws, num_chains=1, dims=B.dims(spec))
    # iid draws from the guide: no MCMC diagnostics (r_hat needs chains)
    summary = _arviz.summary(idata, var_names=B.summary_vars(spec), kind="stats")
    params = B.to_switching_params(median, gated=spec.gated)
    converged, change = elbo_converged(losses, data.num_timesteps, tol)
    w = max(1, len(losses) // 10)
    diagnostics = {
        "final_elbo": -float(losses[-w:].mean()),
        "relative_change": None if math.isnan(change) else change,
        "tol": tol,
    }
    md = metadata(
        "svi", data, spec, prior,
        point_estimate="guide median", guide=guide, num_steps=num_steps,
        learning_rate=learning_rate, num_particles=num_particles,
        num_posterior_samples=num_posterior_samples,
        init="given" if init is not None else "init_to_uniform",
        converged=converged, diagnostics=diagnostics,
    )  # fmt: skip
    ll = B.total_log_likelihood(params, data)
    return BayesFit(
        params, ll, converged, idata, draws, summary, md, losses=losses, guide=g,
        guide_params=gparams,
    )  # fmt: skip
