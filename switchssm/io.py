"""Saving and loading parameters, fits and posterior draws, without pickle.

Parameters and fits are ``.npz`` archives in the package's one save format
(:mod:`switchssm._archive`: numeric arrays plus a JSON header, read with
``allow_pickle=False``, so loading a file never runs code; only the package's parameter
classes can be named; values are validated on load; the round trip is bitwise exact). A fit
adds ``fit.log_likelihood``, ``fit.history``, ``fit.converged`` and
``fit.restart_log_likelihoods`` as arrays and its ``metadata`` as JSON (JSON types only:
tuples come back as lists; no NaN or infinity). Posterior draws (ArviZ ``InferenceData``) are
NetCDF files (:func:`save_inference_data`).

Any problem with a file's content raises :class:`ValueError` naming the file and the
problem; a missing file raises :class:`FileNotFoundError`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from switchssm import _archive as A
from switchssm import _arviz
from switchssm.fit.result import BayesFit
from switchssm.fit.result import FitResult
from switchssm.models.gaussian_latent import GaussianLatentParams
from switchssm.models.params import CategoricalEmission
from switchssm.models.params import GaussianCue
from switchssm.models.params import GaussianEmission
from switchssm.models.params import SwitchingParams

__all__ = [
    "FORMAT_VERSION",
    "load_fit",
    "load_inference_data",
    "load_params",
    "save_fit",
    "save_inference_data",
    "save_params",
]

FORMAT_VERSION = A.FORMAT_VERSION
_MODEL_CLASSES = (
    SwitchingParams,
    CategoricalEmission,
    GaussianEmission,
    GaussianCue,
    GaussianLatentParams,
)
_FIT_ARRAYS = ("log_likelihood", "history", "converged", "restart_log_likelihoods")


def _check_params(params, name: str) -> None:
    if not isinstance(params, _MODEL_CLASSES):
        names = sorted(c.__name__ for c in _MODEL_CLASSES)
        raise ValueError(f"`{name}` must be one of {names}, got {type(params).__name__}")


def _encode_checked(params, name: str, arrays: dict):
    node = A.encode(params, "params", arrays, name)
    try:  # what could not be read back is not written
        A.decode(node, arrays, name)
    except A.FormatError as exc:
        raise ValueError(f"`{name}` cannot be saved: {exc}") from exc
    return node


def save_params(path: str | os.PathLike, params) -> None:
    """Save model parameters to a ``.npz`` file (the format of :mod:`switchssm._archive`).

    Args:
        path: destination (conventionally ending in ``.npz``; written as given, atomically).
        params: a :class:`~switchssm.models.SwitchingParams` or
            :class:`~switchssm.models.GaussianLatentParams` (or one of their parts).

    Returns:
        None.

    Example:
        >>> import numpy as np, tempfile, os
        >>> from switchssm.models import SwitchingParams, CategoricalEmission
        >>> p = SwitchingParams(np.array([.5, .5]), .1, CategoricalEmission(np.eye(2) * .6 + .2))
        >>> path = os.path.join(tempfile.mkdtemp(), "params.npz")
        >>> save_params(path, p)
        >>> round(float(load_params(path).switch_prob), 6)
        0.1
    """
    _check_params(params, "params")
    arrays: dict = {}
    node = _encode_checked(params, "params", arrays)
    A.write_archive(path, "params", {"params": node}, arrays)


def save_fit(path: str | os.PathLike, fit: FitResult | BayesFit) -> None:
    """Save a fit: its parameters, history, convergence and metadata (not posterior draws).

    Args:
        path: destination (conventionally ending in ``.npz``; written as given, atomically).
        fit: a :class:`~switchssm.fit.FitResult` (EM, MLE) or a
            :class:`~switchssm.fit.BayesFit` (NUTS, SVI: its point estimate, see
            :meth:`~switchssm.fit.BayesFit.as_fit_result`; save the draws with
            :func:`save_inference_data`); ``metadata`` must be JSON-serializable.

    Returns:
        None.

    Example:
        >>> import numpy as np, tempfile, os
        >>> from switchssm.models import SwitchingParams, CategoricalEmission
        >>> from switchssm.fit import FitResult
        >>> p = SwitchingParams(np.array([.5, .5]), .1, CategoricalEmission(np.eye(2) * .6 + .2))
        >>> fit = FitResult(p, -3.0, np.zeros((1, 2)), np.array([True]), np.array([-3.0]), {})
        >>> path = os.path.join(tempfile.mkdtemp(), "fit.npz")
        >>> save_fit(path, fit)
        >>> load_fit(path).log_likelihood
        -3.0
    """
    if isinstance(fit, BayesFit):
        fit = fit.as_fit_result()
    if not isinstance(fit, FitResult):
        raise ValueError(f"`fit` must be a FitResult or BayesFit, got {type(fit).__name__}")
    _check_params(fit.params, "fit.params")
    if not isinstance(fit.metadata, dict):
        raise ValueError(f"`fit.metadata` must be a dict, got {type(fit.metadata).__name__}")
    try:
        json.dumps(fit.metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`fit.metadata` must be JSON-serializable (no NaN/inf): {exc}") from exc
    arrays: dict = {}
    node = _encode_checked(fit.params, "fit.params", arrays)
    body = {
        name: A.encode(np.asarray(getattr(fit, name)), f"fit.{name}", arrays, f"fit.{name}")
        for name in _FIT_ARRAYS
    }
    body["metadata"] = fit.metadata
    A.write_archive(path, "fit", {"params": node, "fit": body}, arrays)


def load_params(path: str | os.PathLike):
    """Load parameters saved by :func:`save_params` (or the parameters of a saved fit).

    Args:
        path: a file written by :func:`save_params` or :func:`save_fit`.

    Returns:
        The parameter object, validated, with the stored arrays bitwise unchanged.

    Raises:
        ValueError: the file is not a switchssm archive, is corrupt, or holds invalid
            parameters (the message names the file and the problem).

    Example:
        >>> import numpy as np, tempfile, os
        >>> from switchssm.models import SwitchingParams, CategoricalEmission
        >>> p = SwitchingParams(np.array([.5, .5]), .1, CategoricalEmission(np.eye(2) * .6 + .2),
        ...                     gated=True)
        >>> path = os.path.join(tempfile.mkdtemp(), "params.npz")
        >>> save_params(path, p)
        >>> load_params(path).gated
        True
    """
    header, arrays = A.read_archive(path, ("params", "fit"))
    try:
        params = A.decode(header.get("params"), arrays, "params")
    except A.FormatError as exc:
        raise ValueError(f"{Path(path)}: {exc}") from None
    if not isinstance(params, _MODEL_CLASSES):
        raise ValueError(f"{Path(path)}: holds a {type(params).__name__}, not model parameters")
    return params


def load_fit(path: str | os.PathLike) -> FitResult:
    """Load a fit saved by :func:`save_fit`.

    Args:
        path: a file written by :func:`save_fit`.

    Returns:
        The :class:`~switchssm.fit.FitResult`: ``params`` as in :func:`load_params`,
        ``log_likelihood`` a float, the arrays as saved (NumPy), ``metadata`` the JSON object.

    Raises:
        ValueError: not a switchssm fit file, or corrupt (the message names the file).

    Example:
        >>> import numpy as np, tempfile, os
        >>> from switchssm.models import SwitchingParams, CategoricalEmission
        >>> from switchssm.fit import FitResult
        >>> p = SwitchingParams(np.array([.5, .5]), .1, CategoricalEmission(np.eye(2) * .6 + .2))
        >>> path = os.path.join(tempfile.mkdtemp(), "fit.npz")
        >>> save_fit(path, FitResult(p, -1.5, np.zeros((1, 3)), np.array([True]),
        ...                          np.array([-1.5]), {"method": "em"}))
        >>> load_fit(path).metadata
        {'method': 'em'}
    """
    header, arrays = A.read_archive(path, ("fit",))
    try:
        params = A.decode(header.get("params"), arrays, "params")
        if not isinstance(params, SwitchingParams | GaussianLatentParams):
            raise A.FormatError(f"`params`: a {type(params).__name__} is not a model")
        body = header.get("fit")
        if not isinstance(body, dict):
            raise A.FormatError("`fit`: missing the fit section of the header")
        values = {n: A.array(body.get(n), arrays, f"fit.{n}") for n in _FIT_ARRAYS}
        ll = values["log_likelihood"]
        if ll.ndim != 0 or ll.dtype.kind != "f":
            raise A.FormatError(f"`fit.log_likelihood`: expected a float scalar, got {ll.dtype}")
        for n in ("history", "restart_log_likelihoods"):
            if values[n].dtype.kind != "f":
                raise A.FormatError(f"`fit.{n}`: expected floats, got {values[n].dtype}")
        if values["converged"].dtype.kind != "b":
            raise A.FormatError(f"`fit.converged`: expected bools, got {values['converged'].dtype}")
        metadata = body.get("metadata")
        if not isinstance(metadata, dict):
            raise A.FormatError("`fit.metadata`: expected a JSON object")
    except A.FormatError as exc:
        raise ValueError(f"{Path(path)}: {exc}") from None
    return FitResult(
        params,
        float(ll),
        values["history"],
        values["converged"],
        values["restart_log_likelihoods"],
        metadata,
    )


def save_inference_data(idata, path: str | os.PathLike) -> str:
    """Write ArviZ ``InferenceData`` (posterior draws of NUTS or SVI) to a NetCDF file.

    Args:
        idata: e.g. :attr:`~switchssm.fit.BayesFit.idata`.
        path: destination (``.nc``).

    Returns:
        The path written.
    """
    return _arviz.save_inference_data(idata, path)


def load_inference_data(path: str | os.PathLike):
    """Read ``InferenceData`` saved by :func:`save_inference_data` (loaded into memory)."""
    return _arviz.load_inference_data(path)
