"""Every use of ArviZ in switchssm, kept in one small module.

ArviZ 0.23 returns :class:`arviz.InferenceData` and warns (``FutureWarning``) on import about
its 1.0 refactor, where results become ``xarray.DataTree``. Nothing else in the package
imports ArviZ, so moving to 1.0 means editing only this file. ArviZ is imported lazily (the
first call that needs it), with that one warning filtered.
"""

from __future__ import annotations

import functools
import os
import warnings

import numpy as np


@functools.cache
def _az():
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"(?s).*ArviZ is undergoing", category=FutureWarning
        )
        import arviz

    return arviz


_STAT_NAMES = {
    "potential_energy": "lp",  # ArviZ's lp is the log density, minus the potential energy
    "diverging": "diverging",
    "num_steps": "n_steps",
    "accept_prob": "acceptance_rate",
    "adapt_state.step_size": "step_size",
}


def from_mcmc(mcmc, *, dims=None, posterior=None):
    """:class:`arviz.InferenceData` from a finished :class:`numpyro.infer.MCMC`.

    Built with :func:`arviz.from_dict` from ``mcmc.get_samples(group_by_chain=True)`` and the
    sampler's extra fields, named as :func:`arviz.from_numpyro` names them (``lp``,
    ``diverging``, ``n_steps``, ``acceptance_rate``, ``step_size``). ``from_numpyro`` itself
    is not used: it re-runs the model op by op (drawing from the priors), and compiling those
    ops took longer than the whole NUTS run of a small problem on 2 CPU cores.

    Args:
        mcmc: the MCMC object.
        dims: ``{site: [dim names]}`` for the event dimensions of each site.
        posterior: optional ``{site: (chains, draws, ...)}`` used instead of the sampled values
            (relabeled draws).
    """
    post = posterior if posterior is not None else mcmc.get_samples(group_by_chain=True)
    post = {k: np.asarray(v) for k, v in post.items()}
    stats = {}
    for k, v in mcmc.get_extra_fields(group_by_chain=True).items():
        if k in _STAT_NAMES and not isinstance(v, dict | tuple):
            v = np.asarray(v)
            stats[_STAT_NAMES[k]] = -v if k == "potential_energy" else v
    dims = {k: d for k, d in (dims or {}).items() if k in post}
    return _az().from_dict(
        posterior=post, sample_stats=stats, dims=dims, attrs={"inference_library": "numpyro"}
    )


def from_samples(samples, *, num_chains: int = 1, dims=None):
    """:class:`arviz.InferenceData` whose posterior group holds ``samples``.

    Args:
        samples: ``{site: (num_chains * draws, ...)}`` flat draws (chain-major).
        num_chains: how many chains the leading axis holds.
        dims: ``{site: [dim names]}`` for the event dimensions.
    """
    post = {}
    for k, v in samples.items():
        v = np.asarray(v)
        post[k] = v.reshape((num_chains, v.shape[0] // num_chains) + v.shape[1:])
    dims = {k: d for k, d in (dims or {}).items() if k in post}
    return _az().from_dict(posterior=post, dims=dims)


def summary(idata, var_names=None, kind: str = "all"):
    """:func:`arviz.summary`: mean, sd, HDI and, with ``kind="all"``, MCSE, ``ess_bulk``,
    ``ess_tail``, ``r_hat`` (``kind="stats"``: no MCMC diagnostics, for iid draws)."""
    return _az().summary(idata, var_names=var_names, kind=kind)


def save_inference_data(idata, path) -> str:
    """Write ``idata`` to a NetCDF file (``h5netcdf`` engine); returns the path."""
    path = os.fspath(path)
    idata.to_netcdf(path)
    return path


def load_inference_data(path):
    """Read an :class:`arviz.InferenceData` saved by :func:`save_inference_data`.

    The data are loaded into memory (the file is closed on return).
    """
    az = _az()
    with az.rc_context({"data.load": "eager"}):
        return az.from_netcdf(os.fspath(path))
