"""Fitting a model to a user's file, as library functions (``switchssm fit``).

:func:`load_observations` reads a ``.csv``/``.npy`` file (:func:`switchssm.data.read_dataset`)
and shapes it for an emission; :func:`fit_dataset` fits it by any of the four methods;
:func:`write_fit_report` writes ``fit.npz``, ``fit.json`` and a figure (and, for NUTS/SVI,
the posterior draws).
"""

from __future__ import annotations

import json
import time
from typing import NamedTuple

import jax
import numpy as np

from switchssm import _validation as V
from switchssm.data import read_dataset
from switchssm.fit import BayesFit
from switchssm.fit import FitResult
from switchssm.fit import fit_em
from switchssm.fit import fit_mle
from switchssm.fit import fit_nuts
from switchssm.fit import fit_svi

__all__ = ["METHODS", "Observations", "fit_dataset", "load_observations", "write_fit_report"]

METHODS = ("em", "mle", "nuts", "svi")
#: Default iteration counts per method: EM iterations, Adam steps, -, SVI steps.
DEFAULT_ITERS = {"em": 100, "mle": 500, "nuts": None, "svi": 2000}


class Observations(NamedTuple):
    """A user's sequences shaped for one emission kind.

    Attributes:
        path: the file they were read from.
        ys: per-sequence observations (int64 symbols, or ``(T, 1)`` float64 for Gaussian).
        us: per-sequence cues, or ``None``.
        ids: sequence ids.
        ss: per-sequence known latents (column ``s``), or ``None``.
    """

    path: str
    ys: list
    us: list | None
    ids: list
    ss: list | None

    @property
    def num_timesteps(self) -> int:
        return int(sum(len(y) for y in self.ys))


def load_observations(path, emission: str) -> Observations:
    """Read a user file and shape it for ``emission`` (ValueError naming the file if bad).

    Args:
        path: a ``.csv`` or ``.npy`` file (formats in :mod:`switchssm.data.readers`).
        emission: ``"categorical"`` (integer symbols ``>= 0``) or ``"gaussian"`` (reals).

    Returns:
        :class:`Observations`.
    """
    V.check_choice(emission, "emission", ("categorical", "gaussian"))
    data = read_dataset(path)
    if emission == "categorical":
        ys = []
        for i, y in enumerate(data.y):
            if y.dtype.kind == "f" and np.all(y == np.round(y)):
                # integral floats ('1.0') are symbols, as in the library; past 2^53 a float
                # no longer holds every integer, so such a "symbol" is surely a stray value
                if np.abs(y).max() > 2**53:
                    raise ValueError(
                        f"'{path}': sequence {data.ids[i]!r} holds the value "
                        f"{np.abs(y).max():.6g}, far too large for a categorical symbol "
                        "(symbols are 0, 1, ..., V-1)"
                    )
                y = y.astype(np.int64)
            if y.dtype.kind != "i":
                raise ValueError(
                    f"'{path}': categorical observations must be integer symbols 0, 1, ...; "
                    f"sequence {data.ids[i]!r} holds non-integer values (use --emission "
                    "gaussian for real-valued data)"
                )
            if y.min() < 0:
                raise ValueError(
                    f"'{path}': categorical symbols must be >= 0; sequence {data.ids[i]!r} "
                    f"holds {int(y.min())}"
                )
            ys.append(y.astype(np.int64))
    else:
        ys = [y.astype(np.float64)[:, None] for y in data.y]
    return Observations(str(path), ys, data.u, data.ids, data.s)


def fit_dataset(
    obs: Observations,
    *,
    num_states: int,
    emission: str = "categorical",
    gated: bool = False,
    method: str = "em",
    iters: int | None = None,
    restarts: int = 5,
    num_warmup: int = 500,
    num_samples: int = 500,
    num_chains: int = 2,
    seed: int = 0,
    progress: bool = True,
) -> FitResult | BayesFit:
    """Fit a switching model to :class:`Observations` by ``method``.

    Args:
        obs: from :func:`load_observations`.
        num_states: ``K``.
        emission: ``"categorical"`` or ``"gaussian"``.
        gated: the gated emission.
        method: ``"em"``, ``"mle"``, ``"nuts"`` or ``"svi"``.
        iters: EM iterations / Adam steps / SVI steps (default 100 / 500 / 2000).
        restarts: restarts (EM, MLE).
        num_warmup, num_chains: NUTS.
        num_samples: NUTS draws per chain, or SVI guide draws.
        seed: integer seed.
        progress: progress bars.

    Returns:
        :class:`~switchssm.fit.FitResult` (EM, MLE) or :class:`~switchssm.fit.BayesFit`.
    """
    V.check_choice(method, "method", METHODS)
    key = jax.random.PRNGKey(V.check_int(seed, "seed", low=0))
    common = dict(
        num_states=num_states, emission=emission, gated=gated, cue=obs.us is not None,
    )  # fmt: skip
    n = iters or DEFAULT_ITERS[method]
    if method == "em":
        return fit_em(obs.ys, obs.us, num_iters=n, num_restarts=restarts, key=key,
                      progress=progress, **common)  # fmt: skip
    if method == "mle":
        return fit_mle(obs.ys, obs.us, num_steps=n, num_restarts=restarts, key=key,
                       progress=progress, **common)  # fmt: skip
    if method == "nuts":
        return fit_nuts(
            obs.ys, obs.us, num_warmup=num_warmup, num_samples=num_samples,
            num_chains=num_chains, key=key, progress=progress, **common,
        )  # fmt: skip
    return fit_svi(obs.ys, obs.us, num_steps=n, num_posterior_samples=num_samples, key=key,
                   progress=progress, **common)  # fmt: skip


def write_fit_report(folder, obs: Observations, fit: FitResult | BayesFit, *, seconds=None):
    """Write ``fit.npz``, ``fit.json``, ``posterior.png`` (and NUTS/SVI draws) into a
    :class:`~switchssm.pipelines.ReportFolder`; returns the file names."""
    from switchssm.inference import smooth
    from switchssm.io import save_fit
    from switchssm.pipelines._report import params_dict
    from switchssm.pipelines._report import write_json
    from switchssm.pipelines._report import write_posterior
    from switchssm.plots import plot_posterior

    t0 = time.perf_counter()
    method = fit.metadata["method"]
    save_fit(folder.file("fit.npz"), fit)
    summary = None
    if isinstance(fit, BayesFit):
        write_posterior(folder, fit)
        summary = json.loads(fit.summary.to_json(orient="index"))  # NaN -> null
    u0 = None if obs.us is None else obs.us[0]
    post = smooth(fit.params, obs.ys[0], u0)
    plot_posterior(
        post, obs.ys[0], u0,
        title=f"smoothed posterior, sequence {obs.ids[0]!r} ({method} fit)",
        path=folder.file("posterior.png"),
    )  # fmt: skip
    n = obs.num_timesteps
    converged = np.atleast_1d(np.asarray(fit.converged)).tolist()
    record = {
        "data": obs.path,
        "method": method,
        "num_states": int(fit.params.num_states),
        "emission": fit.params.emission.kind,
        "gated": bool(fit.params.gated),
        "cue": obs.us is not None,
        "num_sequences": len(obs.ys),
        "sequence_ids": obs.ids,
        "num_timesteps": n,
        "log_likelihood": fit.log_likelihood,
        "log_likelihood_per_step": fit.log_likelihood / n,
        "converged": converged,
        "params": params_dict(fit.params),
        "metadata": fit.metadata,
        "posterior_summary": summary,
        "files": sorted({*folder.files, "fit.json"}),
        "seconds": (seconds or 0.0) + time.perf_counter() - t0,
    }
    write_json(folder.file("fit.json"), record)
    return list(folder.files)
