"""The results of fitting: :class:`FitResult` (EM, MLE) and :class:`BayesFit` (NUTS, SVI).

Both carry the same four things first (``params``, ``log_likelihood``, ``converged``,
``metadata``), so code that reports or saves a fit (:func:`switchssm.io.save_fit`, the
command line) treats every method alike; :meth:`BayesFit.as_fit_result` is the point
estimate of a posterior as a :class:`FitResult`.
"""

from __future__ import annotations

from typing import Any
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from switchssm.fit._init import unstack
from switchssm.fit._spec import FitSpec
from switchssm.fit.priors import Prior
from switchssm.inference.batch import log_likelihoods
from switchssm.models.params import SwitchingParams

__all__ = ["BayesFit", "FitResult"]


class FitResult(NamedTuple):
    """Output of :func:`~switchssm.fit.fit_mle` and :func:`~switchssm.fit.fit_em`.

    Attributes:
        params: the best restart's :class:`~switchssm.models.SwitchingParams` (highest
            objective: log-likelihood, plus log prior for MAP).
        log_likelihood: exact :math:`\\sum_n \\log P(x^{(n)} \\mid \\text{params})`, a float.
        history: ``(num_restarts, num_iterations + 1)`` objective at every iterate of every
            restart (log-likelihood, or log-likelihood + unnormalized log prior for MAP), the
            last column at the returned parameters. All restarts run the same iterations.
        converged: ``(num_restarts,)`` bool, the convergence test met at the end (and no
            non-finite value seen).
        restart_log_likelihoods: ``(num_restarts,)`` final exact log-likelihood of each restart.
        metadata: JSON-serializable dict: method, options, data sizes, ``best_restart``,
            ``num_iterations``.
    """

    params: SwitchingParams
    log_likelihood: float
    history: np.ndarray
    converged: np.ndarray
    restart_log_likelihoods: np.ndarray
    metadata: dict


class BayesFit(NamedTuple):
    """Output of :func:`~switchssm.fit.fit_nuts` and :func:`~switchssm.fit.fit_svi`.

    Attributes:
        params: the point estimate as :class:`~switchssm.models.SwitchingParams` (NUTS: the
            posterior mean of the relabeled draws; SVI: the guide's median).
        log_likelihood: exact log-likelihood of the data at ``params``.
        converged: a bool. NUTS: at least 2 chains, every ``r_hat`` below 1.05 and no
            divergent transition; SVI: the ELBO trace has flattened (see
            :func:`~switchssm.fit.fit_svi`).
        idata: :class:`arviz.InferenceData` (posterior draws; NUTS adds sample stats).
        samples: ``{site: (draws, ...)}`` posterior draws (NUTS: relabeled, chain-major;
            SVI: draws from the guide).
        summary: :func:`arviz.summary` of the model's parameters (pandas DataFrame).
        metadata: JSON-serializable dict: method, options, data sizes, diagnostics.
        losses: SVI: ``(num_steps,)`` negative ELBO per step; NUTS: ``None``.
        guide: SVI: the fitted NumPyro autoguide; NUTS: ``None``.
        guide_params: SVI: the optimized guide parameters; NUTS: ``None``.
    """

    params: SwitchingParams
    log_likelihood: float
    converged: bool
    idata: Any
    samples: dict
    summary: Any
    metadata: dict
    losses: np.ndarray | None = None
    guide: Any = None
    guide_params: dict | None = None

    def as_fit_result(self) -> FitResult:
        """The point estimate as a :class:`FitResult` (one "restart", no history)."""
        ll = float(self.log_likelihood)
        return FitResult(
            self.params,
            ll,
            np.array([[ll]]),
            np.array([bool(self.converged)]),
            np.array([ll]),
            dict(self.metadata),
        )


def relative_change(new, old, scale):
    """``|new - old| / max(|new|, scale)`` (scale: total number of steps, see the fit docs)."""
    return np.abs(new - old) / np.maximum(np.abs(new), scale)


def metadata(method: str, data, spec: FitSpec, prior: Prior | None, **extra) -> dict:
    """The JSON metadata every fit records: method, model structure, data sizes, prior."""
    md = {
        "method": method,
        "num_states": spec.num_states,
        "emission": spec.emission,
        "num_symbols": spec.num_symbols if spec.emission == "categorical" else None,
        "dim": spec.dim if spec.emission == "gaussian" else None,
        "gated": spec.gated,
        "cue": spec.cue,
        "num_sequences": int(data.num_sequences),
        "lengths": np.asarray(data.lengths).astype(int).tolist(),
        "num_timesteps": data.num_timesteps,
        "prior": None if prior is None else prior.as_dict(),
    }
    md.update(extra)
    return md


def finish(method, data, spec, prior, params_R, history, converged, lls, objs, **extra):
    """The :class:`FitResult` of the best finite restart."""
    finite = np.isfinite(objs)
    if not np.any(finite):
        raise FloatingPointError(f"{method}: every restart ended with a non-finite objective")
    best = int(np.argmax(np.where(finite, objs, -np.inf)))
    md = metadata(
        method,
        data,
        spec,
        prior,
        best_restart=best,
        num_restarts=int(history.shape[0]),
        num_iterations=int(history.shape[1] - 1),
        **extra,
    )
    return FitResult(unstack(params_R, best), float(lls[best]), history, converged, lls, md)


def _final_values(params_R, data, prior):
    def one(p):
        ll = jnp.sum(log_likelihoods(p, data))
        return ll, ll + prior.log_density(p)

    return jax.vmap(one)(params_R)


#: ``(log-likelihood, objective)`` of every restart, one compiled call.
final_values = jax.jit(_final_values, static_argnames="prior")
