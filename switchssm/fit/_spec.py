"""What is being fitted: the options every fitting method shares, validated in one place.

``cue=`` means the same in every method: ``None`` (a cue iff ``u`` is given), ``False``,
``True``, ``"scalar"`` or ``"vector"`` (checked against ``u``).
"""

from __future__ import annotations

import os
import warnings
from typing import NamedTuple

import numpy as np

from switchssm import _validation as V
from switchssm.models.params import SwitchingParams
from switchssm.sequences import Sequences
from switchssm.sequences import as_sequences

EMISSIONS = ("categorical", "gaussian")
#: An alphabet inferred as ``max(y) + 1`` this large, of which at most 1% occurs, is warned
#: about (:class:`LargeAlphabetWarning`): most likely one stray value.
SPARSE_ALPHABET = 10_000


class LargeAlphabetWarning(UserWarning):
    """The categorical alphabet inferred from the data (``V = max(y) + 1``) is large and
    almost none of it occurs: most likely a stray value (``1000000`` among small symbols)
    that makes every emission row ``V`` long. Relabel the symbols ``0..V-1`` or pass
    ``num_symbols`` to silence it."""


CUES = (None, False, True, "scalar", "vector")


class FitSpec(NamedTuple):
    """Static description of the model being fitted (hashable: a jit static argument)."""

    num_states: int
    emission: str
    num_symbols: int  # categorical V, else 0
    dim: int  # Gaussian D, else 0
    gated: bool
    cue: str | None  # None, "scalar" or "vector"
    cue_dim: int  # 0 without a cue


def _check_init(init, num_states, emission, gated, cue, num_symbols):
    """Fill the structure options from ``init`` and check that they agree with it."""
    if not isinstance(init, SwitchingParams):
        raise ValueError(f"`init` must be a SwitchingParams or None, got {type(init).__name__}")
    init_em = init.emission.kind
    if num_states is None:
        num_states = init.num_states
    elif num_states != init.num_states:
        raise ValueError(f"`num_states`={num_states} but `init` has {init.num_states} states")
    if emission is None:
        emission = init_em
    elif emission != init_em:
        raise ValueError(f"`emission`={emission!r} but `init` has a {init_em} emission")
    if gated is None:
        gated = init.gated
    elif bool(gated) != init.gated:
        raise ValueError(f"`gated`={gated} but `init.gated` is {init.gated}")
    if init_em == "categorical":
        if num_symbols is None:
            num_symbols = init.emission.num_symbols
        elif num_symbols != init.emission.num_symbols:
            raise ValueError(
                f"`num_symbols`={num_symbols} but `init` has {init.emission.num_symbols} symbols"
            )
    init_cue = None if init.cue is None else ("scalar" if init.cue.is_scalar else "vector")
    if cue is None:
        cue = init_cue if init_cue is not None else False
    elif (cue is False and init_cue is not None) or (
        (cue is True or cue in ("scalar", "vector")) and init_cue is None
    ):
        raise ValueError(f"`cue`={cue!r} disagrees with `init.cue`")
    elif cue in ("scalar", "vector") and cue != init_cue:
        raise ValueError(f"`cue`={cue!r} but `init.cue` is a {init_cue} cue")
    return num_states, emission, gated, cue, num_symbols


def prepare(
    y,
    u,
    *,
    num_states,
    emission,
    gated,
    cue,
    lengths,
    num_symbols,
    init=None,
    num_restarts=1,
    point_estimate=False,
) -> tuple[Sequences, FitSpec]:
    """Validate the options and the data (before any jit); returns ``(data, spec)``.
    ``point_estimate`` (EM, MLE) also refuses degenerate data (:func:`check_not_degenerate`;
    the Bayesian fits' priors keep their posteriors proper there)."""
    if y is None:
        raise ValueError("`y` (the observations) is required")
    if init is not None:
        num_states, emission, gated, cue, num_symbols = _check_init(
            init, num_states, emission, gated, cue, num_symbols
        )
    if num_states is None:
        raise ValueError("`num_states` is required (or give `init`)")
    num_states = V.check_int(num_states, "num_states")
    emission = "categorical" if emission is None else emission
    V.check_choice(emission, "emission", EMISSIONS)
    gated = False if gated is None else V.check_bool(gated, "gated")
    if not any(cue is c for c in (None, False, True)) and cue not in ("scalar", "vector"):
        raise ValueError(f"`cue` must be one of {CUES}, got {cue!r}")
    if num_symbols is not None:
        num_symbols = V.check_int(num_symbols, "num_symbols")
    if cue is False and u is not None:
        raise ValueError("`u` was given but `cue=False`: drop `u` or set `cue`")
    if cue not in (None, False) and u is None:
        raise ValueError(f"`cue`={cue!r} needs the cue observations `u`")
    categorical = emission == "categorical"
    data = as_sequences(
        y,
        u,
        lengths=lengths,
        step_ndim=0 if categorical else 1,
        kind="integer" if categorical else "real",
        num_symbols=num_symbols,
    )
    if categorical:
        V_ = int(np.max(np.asarray(data.values))) + 1 if num_symbols is None else num_symbols
        D = 0
        if num_symbols is None:
            _warn_sparse_alphabet(data, V_)
    else:
        V_, D = 0, int(data.values.shape[-1])
        if D < 1:
            raise ValueError("`y` must have at least one dimension D >= 1 per step")
    cue_kind, Du = None, 0
    if data.cue is not None:
        cue_kind = "scalar" if data.cue.ndim == 2 else "vector"
        Du = 1 if cue_kind == "scalar" else int(data.cue.shape[-1])
        if cue in ("scalar", "vector") and cue != cue_kind:
            raise ValueError(
                f"`cue`={cue!r} but `u` holds a {cue_kind} cue (per-step shape "
                f"{tuple(data.cue.shape[2:])})"
            )
    spec = FitSpec(num_states, emission, V_, D, gated, cue_kind, Du)
    check_memory(spec, data, num_restarts)
    if point_estimate:
        check_not_degenerate(spec, data)
    if init is not None:
        if emission == "gaussian" and init.emission.dim != D:
            raise ValueError(f"`init` has emission dimension {init.emission.dim} but `y` has {D}")
        if init.cue is not None and init.cue.dim != Du:
            raise ValueError(f"`init.cue` has dimension {init.cue.dim} but `u` has {Du}")
    return data, spec


def _warn_sparse_alphabet(data: Sequences, num_symbols: int) -> None:
    if num_symbols < SPARSE_ALPHABET:
        return
    values = np.asarray(data.values)[np.asarray(data.mask)]
    present = np.unique(values).size
    if present * 100 <= num_symbols:
        warnings.warn(
            f"`y` implies V = max(y) + 1 = {num_symbols} symbols but only {present} distinct "
            f"symbols occur: every emission row (and the saved fit) will hold {num_symbols} "
            "probabilities. A stray value? Relabel the symbols 0..V-1, or pass `num_symbols` "
            "to confirm",
            LargeAlphabetWarning,
            stacklevel=4,
        )


def check_not_degenerate(spec: FitSpec, data: Sequences) -> None:
    """Refuse (ValueError naming ``y`` or ``u``) data whose maximum-likelihood Gaussian
    covariance or cue scale is singular, before anything is fitted.

    A Gaussian emission needs at least 2 steps, data that are not constant in any
    dimension, a pooled covariance that passes :func:`switchssm._validation.check_covariance`
    (points not confined to a lower-dimensional subspace), and in every dimension more
    distinct values than states (else each state can sit on one value and the likelihood
    grows without bound as the shared covariance shrinks to 0). The cue likewise needs
    more than 2 distinct values in every dimension (its two means). The data's scale never
    matters (a standard deviation of ``1e-7`` is fine).
    """
    mask = np.asarray(data.mask)
    if spec.emission == "gaussian":
        obs = np.asarray(data.values)[mask]
        n = obs.shape[0]
        if n < 2:
            raise ValueError(
                f"`y` holds {n} step(s) in all: a Gaussian emission's covariance needs at "
                "least 2 distinct observations"
            )
        _check_spread(obs, "y", spec.num_states, "states", "emission covariance")
        try:
            V.check_covariance(np.atleast_2d(np.cov(obs.T)), "y")
        except ValueError as exc:
            raise ValueError(
                "`y`'s points lie in (or very near) a lower-dimensional subspace, so the "
                f"emission covariance cannot be estimated ({exc}); drop redundant columns"
            ) from None
    if spec.cue is not None:
        obs = np.asarray(data.cue)[mask].reshape(-1, spec.cue_dim)
        _check_spread(obs, "u", 2, "cue means (z = 0, 1)", "cue scale")


def _check_spread(obs: np.ndarray, name: str, k: int, what: str, param: str) -> None:
    """Every column of ``obs`` holds more than ``k`` distinct values (else the fitted
    ``param`` collapses to 0)."""
    for d in range(obs.shape[1]):
        distinct = np.unique(obs[:, d]).size
        if distinct <= k:
            col = "" if obs.shape[1] == 1 else f" (dimension {d})"
            kind = "is constant" if distinct == 1 else f"holds only {distinct} distinct values"
            raise ValueError(
                f"`{name}`{col} {kind}: with {k} {what} the maximum-likelihood {param} "
                f"would be 0 (a singular fit); {name} needs more than {k} distinct values"
                + (
                    " (drop a constant column)"
                    if distinct == 1
                    else " (use fewer states)"
                    if name == "y"
                    else ""
                )
            )


def available_memory() -> int | None:
    """Bytes of memory available to this process (``MemAvailable`` on Linux), or ``None``."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_needed(spec: FitSpec, data: Sequences, num_restarts: int = 1) -> int:
    """A lower bound on the bytes one fitting step holds: per restart, the smoothed joint
    ``(N, T, 2, K)`` and its per-state terms, the emission (``K x V`` or ``K x D x D``) and
    its statistics; 8-byte floats."""
    N, T = data.mask.shape
    K = spec.num_states
    per_step = 4 * K + 2 * K * max(spec.dim, 1)  # joint (2K), marginals, evidence, moments
    params = K * max(spec.num_symbols, 1) + K * spec.dim * (spec.dim + 1)
    return int(8 * num_restarts * (N * T * per_step + 3 * params))


def check_memory(spec: FitSpec, data: Sequences, num_restarts: int = 1) -> None:
    """Refuse (ValueError) a fit whose arrays cannot fit in the available memory, before
    anything is allocated, saying how much it needs."""
    need = memory_needed(spec, data, num_restarts)
    have = available_memory()
    if have is not None and need > have:
        raise ValueError(
            f"this fit needs at least {need / 2**30:.1f} GiB (K = {spec.num_states} states, "
            f"{data.num_timesteps} steps"
            + (f", V = {spec.num_symbols} symbols" if spec.emission == "categorical" else "")
            + f"), more than the {have / 2**30:.1f} GiB available: reduce `num_states` (or "
            "the alphabet, the data, the restarts)"
        )


#: The arguments every Bayesian entry point shares (filled into their docstrings).
BAYES_ARGS = """\
y: one sequence (``(T,)`` symbols or ``(T, D)`` reals), a list of sequences (any
    lengths), or a padded batch ``(N, T)`` / ``(N, T, D)`` with ``lengths``.
u: the cue, in the same layout as ``y`` (``(T,)`` or ``(T, Du)`` per sequence).
num_states: ``K >= 1``.
emission: ``"categorical"`` or ``"gaussian"``.
num_symbols: ``V`` for the categorical emission (default ``max(y) + 1``, at least 2).
gated: the gated emission (``y_t ~ Pbar`` when ``z_t = 0``). Without a cue its
    likelihood does not depend on ``rho``, whose posterior is then its prior.
cue: ``None`` (a cue iff ``u`` is given), ``False``, ``True``, ``"scalar"`` or
    ``"vector"`` (checked against ``u``).
lengths: ``(N,)`` sequence lengths of a padded batch (default: all ``T``); steps past
    a sequence's length are ignored (their values may be anything, NaN included).
prior: a :class:`~switchssm.fit.Prior`."""
