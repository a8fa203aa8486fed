r"""Fitting the categorical switching model to sequences: MLE by gradients, and EM.

Data are many sequences of different lengths, given as a list of arrays or as one padded
array ``(N, T_max, ...)`` with ``lengths``. Sequences are padded at the end and a mask marks
the real steps; at a padded step the log evidence is set to 0 for every ``(z, k)``, so the
forward step there is the bare transition, whose normalizer is
:math:`c_t = \sum_{z,k} P(z) P(s_t = k \mid s_{t-1}, z) \cdot 1 = 1`: padded steps contribute
:math:`\log c_t = 0` and the backward messages entering the last real step are flat, so
the log-likelihood and the smoothed posteriors of each sequence are those of the sequence
alone. (The per-step terms are also masked to exactly 0, so nothing depends on rounding.)

Two estimators of :math:`\theta = (\pi, \rho, \text{emission}, \text{cue})`:

- :func:`fit_mle` maximizes the exact marginal log-likelihood
  :math:`\sum_n \log P(x^{(n)} \mid \theta)` (optionally plus a log prior, MAP) by gradients
  through the forward pass, in unconstrained coordinates: ``pi`` and each row of ``B`` are
  softmaxes of logits, ``rho`` a sigmoid, the Gaussian covariance :math:`LL^\top` with ``L``
  lower triangular with a softplus diagonal, the cue scale a softplus. Adam, then
  optionally L-BFGS, from several random restarts run side by side (``vmap``).
- :func:`fit_em` runs expectation-maximization with closed-form M-steps from the exact
  smoothed joint :math:`\xi_t(z, k) = P(z_t = z, s_t = k \mid x)`.

EM M-steps (sums run over sequences and real steps; :math:`n` is the total number of steps).
The complete-data log-likelihood of one sequence is

.. math::

    \log \pi_{s_0} + \sum_t \big[z_t \log\rho + (1 - z_t)\log(1-\rho)\big]
    + \sum_t z_t \log \pi_{s_t} + \sum_t \log P(y_t \mid \cdot) + \sum_t \log N(u_t \mid m_{z_t},
    \tau^2),

so, with :math:`P(s_0 = k \mid x) = \xi_1(0, k) + P(z_1 = 1 \mid x)\, \pi_k` (if :math:`z_1 = 0`
then :math:`s_0 = s_1`; if :math:`z_1 = 1`, :math:`s_0` is independent of the data and keeps its
prior :math:`\pi`):

- :math:`\rho = \sum_t P(z_t = 1 \mid x) / n`;
- :math:`\pi_k \propto \sum_{\text{seq}} P(s_0 = k \mid x) + \sum_t \xi_t(1, k)` (``pi`` is the law
  of ``s_0`` *and* of every fresh draw, so both kinds of draw are counted);
- emission weights :math:`w_t(k) = P(s_t = k \mid x)` (always-emitting):
  :math:`B_{kv} \propto \sum_t w_t(k) [y_t = v]`; Gaussian means
  :math:`\mu_k = \sum_t w_t(k) y_t / \sum_t w_t(k)` and shared covariance
  :math:`\Sigma = \frac1n \sum_{t,k} w_t(k) (y_t - \mu_k)(y_t - \mu_k)^\top`;
- cue: :math:`m_z = \sum_t P(z_t = z \mid x) u_t / \sum_t P(z_t = z \mid x)` and
  :math:`\tau^2 = \frac{1}{n D_u} \sum_{t,z} P(z_t = z \mid x) \lVert u_t - m_z \rVert^2`.

Gated emission. :math:`\bar P(y) = \sum_k \pi_k P(y \mid k)` puts ``pi`` and the emission inside
a sum, so maximizing the expected complete-data log-likelihood over ``(s, z)`` alone is not
closed form. Augmenting the model with a background state :math:`r_t \sim \pi` that emits
:math:`y_t` at the steps with :math:`z_t = 0` (as :func:`switchssm.models.switching_model` does)
makes it closed form again: the augmented model has the same marginal likelihood, so this is
still exact EM (monotone). Its posterior is
:math:`P(r_t = k \mid x, z_t = 0) = q_t(k) = \pi_k P(y_t \mid k) / \bar P(y_t)`, which adds
:math:`\sum_t P(z_t = 0 \mid x)\, q_t(k)` to the ``pi`` counts, and the emission weights become
:math:`w_t(k) = \xi_t(1, k) + P(z_t = 0 \mid x)\, q_t(k)`.

MAP: with :class:`Prior` (Dirichlet :math:`\alpha` on ``pi``, Dirichlet :math:`\beta` on each row
of ``B``, :math:`\mathrm{Beta}(a, b)` on ``rho``), each count gets its pseudo-count
(:math:`\alpha - 1`, :math:`\beta - 1`, :math:`a - 1` and :math:`b - 1`) and ``fit_mle`` adds
the log prior to the objective. EM then increases the log posterior monotonically.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from tqdm.std import tqdm

from switchssm import _validation as V
from switchssm.inference import _scaled
from switchssm.inference._emissions import log_evidence, log_switch_probs
from switchssm.inference.exact import (
    backward_log,
    forward_log,
    gated_gate_and_candidate,
    smoothed_joint_log,
)
from switchssm.models.params import (
    CategoricalEmission,
    GaussianCue,
    GaussianEmission,
    SwitchingParams,
)
from switchssm.types import Array, Bool, Float, Int, PRNGKeyArray

__all__ = [
    "FitResult",
    "Prior",
    "Sequences",
    "as_sequences",
    "batch_log_likelihood",
    "fit_em",
    "fit_mle",
]

_EMISSIONS = ("categorical", "gaussian")
_CUES = (None, False, True, "scalar", "vector")
_CHUNK = 25  # optimizer steps per compiled call; also the Adam convergence window
_LBFGS_WINDOW = 5  # L-BFGS steps over which the convergence test looks back


# --------------------------------------------------------------------------------------
# Data: many sequences of different lengths, padded at the end.


class Sequences(NamedTuple):
    """Sequences padded at the end to a common length, with a mask of the real steps.

    Attributes:
        y: ``(N, T_max)`` int32 symbols or ``(N, T_max, D)`` floats; 0 at padded steps.
        u: ``(N, T_max)`` or ``(N, T_max, Du)`` floats (0 at padded steps), or ``None``.
        lengths: ``(N,)`` number of real steps of each sequence.
        mask: ``(N, T_max)``, ``True`` at real steps.
    """

    y: Array
    u: Array | None
    lengths: Int[Array, " N"]
    mask: Bool[Array, "N T"]

    @property
    def num_sequences(self) -> int:
        return self.mask.shape[0]

    @property
    def num_timesteps(self) -> int:
        """Total number of real steps over all sequences."""
        return int(np.sum(np.asarray(self.lengths)))


def _check_lengths(lengths, num_sequences: int, max_len: int) -> np.ndarray:
    a = np.asarray(lengths)
    if a.ndim == 0:
        a = a.reshape(1)
    if a.ndim != 1 or a.shape[0] != num_sequences:
        raise ValueError(
            f"`lengths` must have shape ({num_sequences},), one length per sequence, "
            f"got shape {np.shape(lengths)}"
        )
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
            raise ValueError("`lengths` must hold integers")
    elif a.dtype.kind not in "iu":
        raise ValueError(f"`lengths` must hold integers, got dtype {a.dtype}")
    a = a.astype(np.int64)
    if np.any(a < 1):
        raise ValueError(
            f"`lengths` must be >= 1 (a sequence needs at least one step), found {a.min()}"
        )
    if np.any(a > max_len):
        raise ValueError(
            f"`lengths` must be <= the padded length {max_len} of `y`, found {a.max()}"
        )
    return a


def _split(x, name: str, per_ndim: int, lengths, single_ok: bool = True):
    """A list of per-sequence NumPy arrays from a list or a padded array (plus lengths)."""
    if isinstance(x, list | tuple):
        if len(x) == 0:
            raise ValueError(f"`{name}` is an empty list: give at least one sequence")
        seqs = [np.asarray(a) for a in x]
        for i, a in enumerate(seqs):
            if a.ndim != per_ndim:
                raise ValueError(
                    f"`{name}[{i}]` must have {per_ndim} dimension(s) (one sequence), "
                    f"got shape {a.shape}"
                )
            V.check_length(a.shape[0], f"{name}[{i}]")
        actual = np.array([a.shape[0] for a in seqs])
        if lengths is not None:
            lengths = _check_lengths(lengths, len(seqs), int(actual.max()))
            if not np.array_equal(lengths, actual):
                raise ValueError(
                    f"`lengths` {lengths.tolist()} disagree with the lengths of the sequences "
                    f"in `{name}` {actual.tolist()}"
                )
        return seqs, actual, True
    a = np.asarray(x)
    if a.ndim == per_ndim + 1:
        N, T_max = a.shape[:2]
        if N < 1:
            raise ValueError(f"`{name}` holds no sequence (shape {a.shape})")
        V.check_length(T_max, name)
        lengths = np.full(N, T_max) if lengths is None else _check_lengths(lengths, N, T_max)
        return [a[i, : lengths[i]] for i in range(N)], lengths, True
    if a.ndim == per_ndim and single_ok:
        V.check_length(a.shape[0], name)
        if lengths is not None:
            lengths = _check_lengths(lengths, 1, a.shape[0])
            a = a[: lengths[0]]
        return [a], np.array([a.shape[0]]), False
    what = {1: "(T,) symbols", 2: "(T, D) observations"}.get(per_ndim, f"{per_ndim}-d")
    raise ValueError(
        f"`{name}` must be one sequence {what}, a list of them, or a padded array with one "
        f"more leading axis (N, T_max, ...), got shape {a.shape}"
    )


def _pad(seqs, T_max, dtype):
    shape = (len(seqs), T_max, *seqs[0].shape[1:])
    out = np.zeros(shape, dtype=dtype)
    for i, a in enumerate(seqs):
        out[i, : a.shape[0]] = a
    return out


def as_sequences(
    y,
    u=None,
    *,
    lengths=None,
    emission: str = "categorical",
    num_symbols: int | None = None,
) -> Sequences:
    """Validate and pad observations (one sequence, a list, or padded + ``lengths``).

    Args:
        y: one sequence (``(T,)`` integer symbols for ``emission="categorical"``, ``(T, D)``
            reals for ``"gaussian"``), a list of such sequences of any lengths, or a padded
            array ``(N, T_max)`` / ``(N, T_max, D)`` whose first ``lengths[n]`` steps are real
            (values past them are ignored).
        u: the cue in the same layout (``(T,)`` scalar or ``(T, Du)`` vector cue per sequence),
            or ``None``.
        lengths: ``(N,)`` integers in ``[1, T_max]``, for padded input; all ``T_max`` if ``None``.
        emission: ``"categorical"`` or ``"gaussian"``.
        num_symbols: for categorical data, symbols must lie in ``[0, num_symbols)``.

    Returns:
        :class:`Sequences` (padded values set to 0, so they are valid symbols and finite).

    Example:
        >>> import numpy as np
        >>> data = as_sequences([np.array([0, 1, 1]), np.array([2, 0])])
        >>> data.y.shape, data.lengths.tolist()
        ((2, 3), [3, 2])
    """
    if emission not in _EMISSIONS:
        raise ValueError(f"`emission` must be one of {_EMISSIONS}, got {emission!r}")
    per_ndim = 1 if emission == "categorical" else 2
    ys, lens, batched = _split(y, "y", per_ndim, lengths)
    for i, a in enumerate(ys):
        nm = f"y[{i}]" if batched else "y"
        if emission == "categorical":
            high = np.iinfo(np.int32).max if num_symbols is None else num_symbols
            V.check_int_range(a, nm, 0, high)
        else:
            V.check_finite(a, nm)
            if a.shape[1] != ys[0].shape[1]:
                raise ValueError(
                    f"`{nm}` has dimension {a.shape[1]} but `y[0]` has {ys[0].shape[1]}"
                )
    T_max = int(lens.max())
    fdtype = jnp.result_type(float)
    ydtype = np.int32 if emission == "categorical" else fdtype
    y_pad = _pad([a.astype(ydtype) for a in ys], T_max, ydtype)
    mask = np.arange(T_max)[None, :] < lens[:, None]
    u_pad = None
    if u is not None:
        if isinstance(u, list | tuple):
            us = [np.asarray(a) for a in u]
            if len(us) != len(ys):
                raise ValueError(f"`u` has {len(us)} sequences but `y` has {len(ys)}")
        else:
            a = np.asarray(u)
            if batched and not isinstance(y, list | tuple):
                if a.ndim not in (2, 3) or a.shape[0] != len(ys) or a.shape[1] < T_max:
                    raise ValueError(
                        f"`u` must be padded like `y`: shape ({len(ys)}, >= {T_max}) or "
                        f"({len(ys)}, >= {T_max}, Du), got {a.shape}"
                    )
                us = [a[i, : lens[i]] for i in range(len(ys))]
            elif batched:
                raise ValueError("`y` is a list of sequences, so `u` must be a list too")
            else:
                us = [a]
        for i, (a, T) in enumerate(zip(us, lens, strict=True)):
            nm = f"u[{i}]" if batched else "u"
            if a.ndim not in (1, 2) or a.shape[0] != T:
                raise ValueError(
                    f"`{nm}` must have shape ({T},) or ({T}, Du), one cue per step of `y`, "
                    f"got {a.shape}"
                )
            if a.shape[1:] != us[0].shape[1:]:
                raise ValueError(f"`{nm}` has shape {a.shape}, unlike `u[0]` {us[0].shape}")
            V.check_finite(a, nm)
        u_pad = jnp.asarray(_pad([a.astype(fdtype) for a in us], T_max, fdtype))
    return Sequences(jnp.asarray(y_pad), u_pad, jnp.asarray(lens, jnp.int32), jnp.asarray(mask))


# --------------------------------------------------------------------------------------
# Masked log-likelihood of many sequences.


def _masked_log_evidence(params, y, u, mask):
    return jnp.where(mask[:, None, None], log_evidence(params, y, u), 0.0)


def _sequence_log_likelihood(params, y, u, mask):
    """Log-likelihood of one padded sequence by the log-space recursion (padded steps add 0)."""
    if params.gated:
        _, _, log_norms = gated_gate_and_candidate(params, y, u)
    else:
        log_e = _masked_log_evidence(params, y, u, mask)
        _, log_norms = forward_log(jnp.log(params.initial_probs), log_switch_probs(params), log_e)
    return jnp.sum(jnp.where(mask, log_norms, 0.0))


def _fast_sequence_log_likelihood(params, y, u, mask):
    """``(log-likelihood, ok)`` by the probability-space kernel (:mod:`._scaled`: a
    forward-backward gradient); ``ok`` False means a normalizer underflowed."""
    if params.gated:
        return _sequence_log_likelihood(params, y, u, mask), jnp.array(True)
    ev = _scaled.evidence(params, y, u, mask)
    ll, ok = _scaled.log_likelihood(params.initial_probs, ev)
    return ll, ok > 0


def _batch_ll_checked(params, data: Sequences, log_space: bool = False):
    """Per-sequence log-likelihoods ``(N,)`` and whether all are valid (always True with
    ``log_space``). For use under an outer ``vmap`` (restarts), where a ``lax.cond`` would
    run both branches: the caller re-runs with ``log_space=True`` when ``ok`` is False."""
    if log_space:
        lls = jax.vmap(_sequence_log_likelihood, in_axes=(None, 0, 0, 0))(
            params, data.y, data.u, data.mask
        )
        return lls, jnp.array(True)
    lls, ok = jax.vmap(_fast_sequence_log_likelihood, in_axes=(None, 0, 0, 0))(
        params, data.y, data.u, data.mask
    )
    return lls, jnp.all(ok)


def _batch_ll(params, data: Sequences):
    """Per-sequence log-likelihoods ``(N,)``: the fast kernel, or the log-space recursion for
    the whole batch if any normalizer underflowed."""
    lls, ok = _batch_ll_checked(params, data)
    return lax.cond(ok, lambda: lls, lambda: _batch_ll_checked(params, data, True)[0])


_batch_ll_jit = jax.jit(_batch_ll)


def _emission_name(params) -> str:
    return "categorical" if isinstance(params.emission, CategoricalEmission) else "gaussian"


def batch_log_likelihood(params: SwitchingParams, y, u=None, *, lengths=None) -> Float[Array, " N"]:
    r"""Exact log-likelihood of each of many sequences, :math:`\log P(y^{(n)}, u^{(n)})`.

    Sequences are padded to a common length and ``vmap``-ed; padded steps get log evidence 0
    for every :math:`(z_t, s_t)`, where the forward normalizer is exactly
    :math:`c_t = (1-\rho) \sum_k \alpha_{t-1}(k) + \rho \sum_k \pi_k = 1` (module docstring).

    Args:
        params: :class:`~switchssm.models.SwitchingParams`.
        y: a list of sequences, one sequence, or a padded array with ``lengths`` (as in
            :func:`as_sequences`).
        u: the cue in the same layout; required iff ``params.cue`` is set.
        lengths: ``(N,)`` lengths for padded input.

    Returns:
        ``(N,)`` per-sequence log-likelihoods (sum them for the data set's).

    Example:
        >>> import numpy as np
        >>> from switchssm.models import SwitchingParams, CategoricalEmission
        >>> p = SwitchingParams(np.array([.5, .5]), .1, CategoricalEmission(np.eye(2) * .6 + .2))
        >>> batch_log_likelihood(p, [np.array([0, 1, 1]), np.array([1])]).shape
        (2,)
    """
    if not isinstance(params, SwitchingParams):
        raise ValueError(f"`params` must be a SwitchingParams, got {type(params).__name__}")
    em = params.emission
    data = as_sequences(
        y,
        u,
        lengths=lengths,
        emission=_emission_name(params),
        num_symbols=em.num_symbols if isinstance(em, CategoricalEmission) else None,
    )
    _check_data_against_params(data, params)
    return _batch_ll_jit(params, data)


def _check_data_against_params(data: Sequences, params: SwitchingParams):
    if isinstance(params.emission, GaussianEmission) and data.y.shape[-1] != params.emission.dim:
        raise ValueError(
            f"`y` has dimension {data.y.shape[-1]} but the emission has {params.emission.dim}"
        )
    if params.cue is None and data.u is not None:
        raise ValueError("`u` was given but `params.cue` is None: pass a GaussianCue or drop `u`")
    if params.cue is not None:
        if data.u is None:
            raise ValueError("`params.cue` is set, so the cue `u` (one value per step) is required")
        want = () if params.cue.is_scalar else (params.cue.dim,)
        if tuple(data.u.shape[2:]) != want:
            raise ValueError(
                f"`u` must have {'a scalar' if not want else f'a {want[0]}-vector'} cue per "
                f"step to match `params.cue`, got per-step shape {tuple(data.u.shape[2:])}"
            )


# --------------------------------------------------------------------------------------
# Options shared by the estimators.


class Prior(NamedTuple):
    r"""Conjugate prior for MAP fitting (all 1: flat, plain maximum likelihood).

    .. math::
        \pi \sim \mathrm{Dir}(\alpha \mathbf 1),\quad B_{k\cdot} \sim \mathrm{Dir}(\beta \mathbf 1),
        \quad \rho \sim \mathrm{Beta}(a, b),

    log density (up to a constant)
    :math:`(\alpha-1)\sum_k \log\pi_k + (\beta-1)\sum_{kv}\log B_{kv} + (a-1)\log\rho +
    (b-1)\log(1-\rho)`. Concentrations must be :math:`\geq 1` so that the MAP is attained
    (a concentration below 1 makes the density unbounded at the simplex boundary). Gaussian
    emission and cue parameters get no prior.

    Attributes:
        initial_concentration: :math:`\alpha` for ``pi``.
        emission_concentration: :math:`\beta` for each row of a categorical ``B``.
        switch_beta: :math:`(a, b)` for ``rho``.

    Example:
        >>> Prior(initial_concentration=2.0, switch_beta=(1.0, 9.0)).switch_beta
        (1.0, 9.0)
    """

    initial_concentration: float = 1.0
    emission_concentration: float = 1.0
    switch_beta: tuple[float, float] = (1.0, 1.0)


def _check_prior(prior, emission):
    if prior is None:
        return Prior()
    if not isinstance(prior, Prior):
        raise ValueError(f"`prior` must be a Prior or None, got {type(prior).__name__}")
    vals = {
        "prior.initial_concentration": prior.initial_concentration,
        "prior.emission_concentration": prior.emission_concentration,
    }
    sb = tuple(prior.switch_beta) if np.ndim(prior.switch_beta) == 1 else ()
    if len(sb) != 2:
        raise ValueError(f"`prior.switch_beta` must be a pair (a, b), got {prior.switch_beta!r}")
    vals["prior.switch_beta[0]"], vals["prior.switch_beta[1]"] = sb
    for name, v in vals.items():
        if not isinstance(v, int | float | np.number) or not np.isfinite(v) or v < 1:
            raise ValueError(f"`{name}` must be a finite number >= 1, got {v!r}")
    if emission == "gaussian" and prior.emission_concentration != 1:
        raise ValueError(
            "`prior.emission_concentration` applies to categorical emissions only; "
            "leave it at 1 for emission='gaussian'"
        )
    return Prior(
        float(prior.initial_concentration),
        float(prior.emission_concentration),
        (float(sb[0]), float(sb[1])),
    )


def _log_prior(params: SwitchingParams, prior: Prior):
    """Unnormalized log prior density (terms with concentration 1 are skipped: 0 log 0)."""
    out = jnp.zeros((), params.initial_probs.dtype)
    if prior.initial_concentration != 1:
        out += (prior.initial_concentration - 1) * jnp.sum(jnp.log(params.initial_probs))
    if prior.emission_concentration != 1:
        out += (prior.emission_concentration - 1) * jnp.sum(jnp.log(params.emission.probs))
    a, b = prior.switch_beta
    lr = log_switch_probs(params)
    if a != 1:
        out += (a - 1) * lr[1]
    if b != 1:
        out += (b - 1) * lr[0]
    return out


class _Spec(NamedTuple):
    """Static description of the model being fitted (hashable: a jit static argument)."""

    num_states: int
    emission: str
    num_symbols: int  # categorical V, else 0
    dim: int  # Gaussian D, else 0
    gated: bool
    cue: str | None  # None, "scalar" or "vector"
    cue_dim: int


def _prepare(y, u, *, num_states, emission, gated, cue, lengths, num_symbols, init):
    """Validate the options and the data; returns ``(data, spec)``."""
    if init is not None:
        if not isinstance(init, SwitchingParams):
            raise ValueError(f"`init` must be a SwitchingParams or None, got {type(init).__name__}")
        init_em = _emission_name(init)
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
                    f"`num_symbols`={num_symbols} but `init` has "
                    f"{init.emission.num_symbols} symbols"
                )
        init_cue = None if init.cue is None else ("scalar" if init.cue.is_scalar else "vector")
        if cue is None:
            cue = init_cue if init_cue is not None else False
        elif (cue in (False,) and init_cue is not None) or (
            cue in (True, "scalar", "vector") and init_cue is None
        ):
            raise ValueError(f"`cue`={cue!r} disagrees with `init.cue`")
        elif cue in ("scalar", "vector") and cue != init_cue:
            raise ValueError(f"`cue`={cue!r} but `init.cue` is a {init_cue} cue")
    if num_states is None:
        raise ValueError("`num_states` is required (or give `init`)")
    if isinstance(num_states, bool) or not isinstance(num_states, int | np.integer):
        raise ValueError(f"`num_states` must be a positive int, got {num_states!r}")
    if num_states < 1:
        raise ValueError(f"`num_states` must be >= 1, got {num_states}")
    emission = "categorical" if emission is None else emission
    if emission not in _EMISSIONS:
        raise ValueError(f"`emission` must be one of {_EMISSIONS}, got {emission!r}")
    gated = False if gated is None else gated
    if not isinstance(gated, bool | np.bool_):
        raise ValueError(f"`gated` must be a bool, got {gated!r}")
    if not any(cue is c for c in (None, False, True)) and cue not in ("scalar", "vector"):
        raise ValueError(f"`cue` must be one of {_CUES}, got {cue!r}")
    if num_symbols is not None and (
        isinstance(num_symbols, bool)
        or not isinstance(num_symbols, int | np.integer)
        or num_symbols < 1
    ):
        raise ValueError(f"`num_symbols` must be a positive int or None, got {num_symbols!r}")
    if cue is False and u is not None:
        raise ValueError("`u` was given but `cue=False`: drop `u` or set `cue`")
    if cue not in (None, False) and u is None:
        raise ValueError(f"`cue`={cue!r} needs the cue observations `u`")
    data = as_sequences(y, u, lengths=lengths, emission=emission, num_symbols=num_symbols)
    if emission == "categorical":
        V_ = int(np.max(np.asarray(data.y))) + 1 if num_symbols is None else int(num_symbols)
        D = 0
    else:
        V_, D = 0, int(data.y.shape[-1])
    cue_kind, Du = None, 0
    if data.u is not None:
        cue_kind = "scalar" if data.u.ndim == 2 else "vector"
        Du = 1 if cue_kind == "scalar" else int(data.u.shape[-1])
        if cue in ("scalar", "vector") and cue != cue_kind:
            raise ValueError(
                f"`cue`={cue!r} but `u` holds a {cue_kind} cue (per-step shape "
                f"{tuple(data.u.shape[2:])})"
            )
    spec = _Spec(int(num_states), emission, V_, D, bool(gated), cue_kind, Du)
    if init is not None:
        if emission == "gaussian" and init.emission.dim != D:
            raise ValueError(f"`init` has emission dimension {init.emission.dim} but `y` has {D}")
        if init.cue is not None and init.cue.dim != Du:
            raise ValueError(f"`init.cue` has dimension {init.cue.dim} but `u` has {Du}")
    return data, spec


def _check_int(value, name, low=1):
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"`{name}` must be an int >= {low}, got {value!r}")
    return int(value)


def _check_float(value, name, positive=True):
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ValueError(f"`{name}` must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or (positive and value <= 0) or (not positive and value < 0):
        raise ValueError(f"`{name}` must be a finite {'positive' if positive else '>= 0'} number")
    return value


# --------------------------------------------------------------------------------------
# Random initialization (host side, from the data).


def _random_params(key, data: Sequences, spec: _Spec) -> SwitchingParams:
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
    K = spec.num_states
    mask = np.asarray(data.mask)
    pi = rng.dirichlet(np.full(K, 5.0))
    rho = float(np.exp(rng.uniform(np.log(0.01), np.log(0.5))))
    if spec.emission == "categorical":
        counts = np.bincount(np.asarray(data.y)[mask], minlength=spec.num_symbols)
        freq = (counts + 1.0) / (counts.sum() + spec.num_symbols)
        B = 0.5 * freq + 0.5 * rng.dirichlet(np.ones(spec.num_symbols), size=K)
        em = CategoricalEmission(B / B.sum(1, keepdims=True))
    else:
        obs = np.asarray(data.y)[mask]
        cov = np.atleast_2d(np.cov(obs.T)) if obs.shape[0] > 1 else np.eye(spec.dim)
        cov = cov + 1e-6 * np.trace(cov) / spec.dim * np.eye(spec.dim) + 1e-12 * np.eye(spec.dim)
        means = obs[rng.choice(obs.shape[0], size=K, replace=obs.shape[0] < K)]
        means = means + 0.1 * rng.normal(size=means.shape) @ np.linalg.cholesky(cov).T
        em = GaussianEmission(means, cov)
    cue = None
    if spec.cue is not None:
        obs = np.asarray(data.u)[mask].reshape(-1, spec.cue_dim)
        mean, sd = obs.mean(0), obs.std(0) + 1e-6
        means = mean + sd * rng.normal(size=(2, spec.cue_dim))
        scale = float(np.sqrt(np.mean(sd**2)))
        cue = GaussianCue(means[:, 0] if spec.cue == "scalar" else means, scale)
    return SwitchingParams(pi, rho, em, cue, gated=spec.gated)


def _initial_params(key, data, spec, init, num_restarts):
    """``num_restarts`` starting points: ``init`` first (if given), then random draws."""
    starts = [] if init is None else [init]
    if len(starts) < num_restarts:
        if key is None:
            raise ValueError("`key` is required for random restarts (a jax.random key)")
        keys = jax.random.split(key, num_restarts)
        starts += [_random_params(k, data, spec) for k in keys[len(starts) :]]
    return starts


def _stack(trees):
    return jax.tree_util.tree_map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *trees)


def _unstack(tree, i):
    return jax.tree_util.tree_map(lambda x: x[i], tree)


def _place(tree, mesh, replicate: bool = False):
    """Shard :class:`Sequences` (or replicate a pytree) over ``mesh``; as is if ``None``."""
    if mesh is None:
        return tree
    from switchssm.inference import distributed  # imports this module: import late

    return (
        distributed.replicate(tree, mesh) if replicate else distributed.shard_sequences(tree, mesh)
    )


# --------------------------------------------------------------------------------------
# Bijections between constrained parameters and unconstrained coordinates.


def _softplus_inv(x):
    return x + jnp.log(-jnp.expm1(-x))


def _safe_log(p):
    return jnp.log(jnp.maximum(p, jnp.finfo(jnp.result_type(p)).tiny))


def _to_unconstrained(params: SwitchingParams) -> dict:
    rho = jnp.clip(params.switch_prob, 1e-12, 1 - 1e-12)
    theta = {"pi": _safe_log(params.initial_probs), "rho": jnp.log(rho) - jnp.log1p(-rho)}
    em = params.emission
    if isinstance(em, CategoricalEmission):
        theta["emission"] = {"logits": _safe_log(em.probs)}
    else:
        L = jnp.linalg.cholesky(em.cov)
        raw = jnp.tril(L, -1) + jnp.diag(_softplus_inv(jnp.diag(L)))
        theta["emission"] = {"means": em.means, "chol": raw}
    if params.cue is not None:
        scale = jnp.sqrt(jnp.mean(jnp.broadcast_to(params.cue.scale, (params.cue.dim,)) ** 2))
        theta["cue"] = {"means": params.cue.means, "scale": _softplus_inv(scale)}
    return theta


def _to_params(theta: dict, gated: bool) -> SwitchingParams:
    if "logits" in theta["emission"]:
        em = CategoricalEmission(jax.nn.softmax(theta["emission"]["logits"], axis=-1))
    else:
        raw = theta["emission"]["chol"]
        L = jnp.tril(raw, -1) + jnp.diag(jax.nn.softplus(jnp.diag(raw)))
        em = GaussianEmission(theta["emission"]["means"], L @ L.T)
    cue = None
    if "cue" in theta:
        cue = GaussianCue(theta["cue"]["means"], jax.nn.softplus(theta["cue"]["scale"]))
    return SwitchingParams(
        jax.nn.softmax(theta["pi"]), jax.nn.sigmoid(theta["rho"]), em, cue, gated=gated
    )


# --------------------------------------------------------------------------------------
# Results and convergence.


class FitResult(NamedTuple):
    """Output of :func:`fit_mle` and :func:`fit_em`.

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


def _relative_change(new, old, scale):
    """``|new - old| / max(|new|, scale)`` (scale: total number of steps, see fit docs)."""
    return np.abs(new - old) / np.maximum(np.abs(new), scale)


def _metadata(method, data, spec, prior, **extra):
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
        "prior": {
            "initial_concentration": prior.initial_concentration,
            "emission_concentration": prior.emission_concentration,
            "switch_beta": list(prior.switch_beta),
        },
    }
    md.update(extra)
    return md


def _finish(method, data, spec, prior, params_R, history, converged, lls, objs, **extra):
    finite = np.isfinite(objs)
    if not np.any(finite):
        raise FloatingPointError(f"{method}: every restart ended with a non-finite objective")
    best = int(np.argmax(np.where(finite, objs, -np.inf)))
    md = _metadata(
        method,
        data,
        spec,
        prior,
        best_restart=best,
        num_restarts=int(history.shape[0]),
        num_iterations=int(history.shape[1] - 1),
        **extra,
    )
    params = _unstack(params_R, best)
    return FitResult(params, float(lls[best]), history, converged, lls, md)


def _final_values(params_R, data, prior):
    def one(p):
        ll = jnp.sum(_batch_ll(p, data))
        return ll, ll + _log_prior(p, prior)

    return jax.vmap(one)(params_R)


_final_values_jit = jax.jit(_final_values, static_argnames="prior")


# --------------------------------------------------------------------------------------
# Maximum likelihood by gradients.


def _objective(theta, data, spec, prior, log_space=False):
    """Log-likelihood (+ log prior) at ``theta``; NaN where the fast kernel underflowed (the
    optimizer skips such a step and the driver re-runs the chunk with ``log_space``)."""
    params = _to_params(theta, spec.gated)
    lls, ok = _batch_ll_checked(params, data, log_space)
    return jnp.where(ok, jnp.sum(lls) + _log_prior(params, prior), jnp.nan)


def _all_finite(tree):
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]))


@partial(jax.jit, static_argnames=("spec", "prior", "num_inner", "learning_rate", "log_space"))
def _adam_chunk(thetas, states, data, *, spec, prior, num_inner, learning_rate, log_space):
    opt = optax.adam(learning_rate)
    n = jnp.sum(data.mask)

    def loss(theta):  # per-step negative objective: step size independent of data size
        return -_objective(theta, data, spec, prior, log_space) / n

    def one(theta, state):
        def body(carry, _):
            theta, state = carry
            val, g = jax.value_and_grad(loss)(theta)
            ok = jnp.isfinite(val) & _all_finite(g)
            upd, new_state = opt.update(g, state, theta)
            new_theta = optax.apply_updates(theta, upd)
            keep = lambda a, b: jnp.where(ok, a, b)
            theta = jax.tree_util.tree_map(keep, new_theta, theta)
            state = jax.tree_util.tree_map(keep, new_state, state)
            return (theta, state), jnp.where(ok, -val * n, jnp.nan)

        (theta, state), hist = lax.scan(body, (theta, state), None, length=num_inner)
        return theta, state, hist

    return jax.vmap(one)(thetas, states)


@partial(jax.jit, static_argnames=("spec", "prior", "num_inner", "log_space"))
def _lbfgs_chunk(thetas, states, data, *, spec, prior, num_inner, log_space):
    opt = optax.lbfgs()
    n = jnp.sum(data.mask)

    def loss(theta):
        return -_objective(theta, data, spec, prior, log_space) / n

    value_and_grad = optax.value_and_grad_from_state(loss)

    def one(theta, state):
        def body(carry, _):
            theta, state = carry
            val, g = value_and_grad(theta, state=state)
            ok = jnp.isfinite(val) & _all_finite(g)
            upd, new_state = opt.update(g, state, theta, value=val, grad=g, value_fn=loss)
            new_theta = optax.apply_updates(theta, upd)
            ok = ok & _all_finite(new_theta)
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
            conv = _relative_change(allh[:, -1], allh[:, -1 - window], scale) < tol
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
            with ``lengths`` (see :func:`as_sequences`). Categorical: integer symbols;
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
        prior: :class:`Prior` for MAP, or ``None`` for maximum likelihood.
        key: ``jax.random`` key for random restarts (needed unless ``init`` covers them all).
        init: starting :class:`~switchssm.models.SwitchingParams` (fixes the structure).
        progress: show a ``tqdm`` progress bar on stderr.
        mesh: a :class:`jax.sharding.Mesh` with a ``"sequences"`` axis (see
            :func:`~switchssm.inference.distributed.sequence_mesh`) to shard the sequences
            across its devices, or ``None`` to run on the default device. Starting points
            are drawn from the unsharded data, so the result equals the unsharded fit up to
            the order of the cross-device sums.

    Returns:
        :class:`FitResult` (``history`` has the objective after every optimizer step).

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
    num_restarts = _check_int(num_restarts, "num_restarts")
    num_steps = _check_int(num_steps, "num_steps", low=0)
    num_lbfgs_steps = _check_int(num_lbfgs_steps, "num_lbfgs_steps", low=0)
    learning_rate = _check_float(learning_rate, "learning_rate")
    tol = _check_float(tol, "tol", positive=False)
    data, spec = _prepare(
        y, u, num_states=num_states, emission=emission, gated=gated, cue=cue,
        lengths=lengths, num_symbols=num_symbols, init=init,
    )  # fmt: skip
    prior = _check_prior(prior, spec.emission)
    starts = _initial_params(key, data, spec, init, num_restarts)
    thetas = _stack([_to_unconstrained(p) for p in starts])
    n = float(data.num_timesteps)
    data, metadata_data = _place(data, mesh), data
    thetas = _place(thetas, mesh, replicate=True)
    hists = []
    with tqdm(
        total=num_steps + num_lbfgs_steps, disable=not progress, desc="fit_mle", leave=False
    ) as pbar:
        conv = np.zeros(num_restarts, bool)
        if num_steps:
            thetas, h, conv = _run_optimizer(
                _adam_chunk, optax.adam(learning_rate).init, thetas, data, num_steps, tol, n,
                pbar, _CHUNK, spec=spec, prior=prior, learning_rate=learning_rate,
            )  # fmt: skip
            hists.append(h)
        if num_lbfgs_steps:
            thetas, h, conv = _run_optimizer(
                _lbfgs_chunk, optax.lbfgs().init, thetas, data, num_lbfgs_steps, tol, n,
                pbar, _LBFGS_WINDOW, spec=spec, prior=prior,
            )  # fmt: skip
            hists.append(h)
    params_R = jax.vmap(lambda t: _to_params(t, spec.gated))(thetas)
    lls, objs = (np.asarray(a) for a in _final_values_jit(params_R, data, prior))
    history = np.concatenate([*hists, objs[:, None]], axis=1)
    conv = conv & np.isfinite(objs)
    return _finish(
        "mle", metadata_data, spec, prior, params_R, history, conv, lls, objs,
        num_adam_steps=int(hists[0].shape[1]) if num_steps else 0,
        learning_rate=learning_rate, tol=tol,
    )  # fmt: skip


# --------------------------------------------------------------------------------------
# Expectation-maximization.


class _Stats(NamedTuple):
    """Expected sufficient statistics of one sequence (or summed over sequences)."""

    num_steps: Array  # n
    num_switches: Array  # sum_t P(z_t = 1)
    pi_counts: Array  # (K,)
    emission_weight: Array  # (K,) sum_t w_t(k)
    emission_first: Array  # categorical (K, V) counts; Gaussian (K, D) sum_t w (y - m_old)
    emission_second: Array  # Gaussian (D, D) sum_tk w (y - m_old)(y - m_old)'; else ()
    cue_weight: Array  # (2,) sum_t P(z_t = z)
    cue_first: Array  # (2, Du) sum_t P(z_t = z) (u_t - m_old_z)
    cue_second: Array  # () sum_tz P(z_t = z) |u_t - m_old_z|^2


def _posteriors(params: SwitchingParams, y, u, mask, log_space: bool = False):
    r"""Smoothed joint ``xi (T, 2, K)``, ``P(s_0 | x) (K,)``, the log-likelihood and ``ok``.

    :math:`P(s_0 = k \mid x) = \xi_1(0, k) + P(z_1 = 1 \mid x)\, \pi_k`. Padded steps have
    zero weight in ``xi``. The probability-space kernel (:mod:`._scaled`) unless
    ``log_space``; ``ok`` False means one of its normalizers underflowed.
    """
    if log_space:
        log_e = _masked_log_evidence(params, y, u, mask)
        log_pi = jnp.log(params.initial_probs)
        log_rho2 = log_switch_probs(params)
        log_joint, log_norms = forward_log(log_pi, log_rho2, log_e)
        log_filtered_s = jnp.logaddexp(log_joint[:, 0], log_joint[:, 1])
        log_beta = backward_log(log_pi, log_rho2, log_e)
        xi = jnp.exp(smoothed_joint_log(log_pi, log_rho2, log_e, log_filtered_s, log_beta))
        ll, ok = jnp.sum(jnp.where(mask, log_norms, 0.0)), jnp.array(True)
    else:
        ev = _scaled.evidence(params, y, u, mask)
        sm = _scaled.smoother(params.initial_probs, ev)
        xi1 = ev.dense()[1] * sm.b / sm.nu[:, None]
        xi = jnp.stack([sm.smoothed_s - xi1, xi1], axis=1)
        ll, ok = sm.log_likelihood, sm.ok
    xi = jnp.where(mask[:, None, None], xi, 0.0)
    s0 = xi[0, 0] + xi[0, 1].sum() * params.initial_probs
    return xi, s0, ll, ok


def _gated_posteriors(params: SwitchingParams, y, u, mask):
    r"""Closed-form E-step of the gated model (no scan).

    The switches are independent a posteriori, :math:`P(z_t = 1 \mid x) = g_t` (the cue-only
    gate), and :math:`y_t` is emitted by a fresh state (``z_t = 1``) or the background state
    (``z_t = 0``), both with posterior :math:`q_t = \operatorname{softmax}(\log\pi + l_t)`;
    :math:`s_0` is never emitted, so :math:`P(s_0 \mid x) = \pi` (0 for an empty row: a
    length-0 filler sequence of :func:`~switchssm.inference.distributed.shard_sequences`
    contributes nothing). Returns
    ``(P(z_t = 1 | x), emission weights w_t(k) = q_t(k), P(s_0 | x), log-likelihood)``.
    """
    g, q, log_norms = gated_gate_and_candidate(params, y, u)
    maskf = mask.astype(q.dtype)
    ll = jnp.sum(jnp.where(mask, log_norms, 0.0))
    # an empty row (length 0, the filler of a sharded batch) has no s_0 to count
    return g * maskf, q * maskf[:, None], params.initial_probs * maskf[0], ll


def _sequence_stats(
    params: SwitchingParams, y, u, mask, gated_closed_form: bool = True, log_space: bool = False
):
    """Expected sufficient statistics of one padded sequence, its log-likelihood and ``ok``
    (False if the probability-space kernel underflowed: re-run with ``log_space``)."""
    em = params.emission
    maskf = mask.astype(params.initial_probs.dtype)
    ok = jnp.array(True)
    if params.gated and gated_closed_form:
        pz1, w, s0, ll = _gated_posteriors(params, y, u, mask)
        pz0 = maskf - pz1
        # s_0 plus fresh draws (g_t q_t) plus background draws ((1 - g_t) q_t)
        pi_counts = s0 + w.sum(0)
    else:
        xi, s0, ll, ok = _posteriors(params, y, u, mask, log_space)
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
    a, b = prior.switch_beta
    rho = (st.num_switches + a - 1) / (st.num_steps + a + b - 2)
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
            st.num_steps
        )
        em = GaussianEmission(em.means + shift, 0.5 * (cov + cov.T))
    cue = params.cue
    if cue is not None:
        W = st.cue_weight[:, None]
        ok = W > 0
        shift = jnp.where(ok, st.cue_first / jnp.where(ok, W, 1.0), 0.0)  # (2, Du)
        var = (st.cue_second - jnp.sum(W * shift**2)) / (st.num_steps * shift.shape[1])
        means = cue.means + shift.reshape(cue.means.shape)
        cue = GaussianCue(means, jnp.sqrt(var).astype(means.dtype))
    return SwitchingParams(pi, rho, em, cue, gated=params.gated)


def _expected_stats(params, data: Sequences, log_space: bool = False):
    stats, ll, ok = jax.vmap(
        partial(_sequence_stats, log_space=log_space), in_axes=(None, 0, 0, 0)
    )(params, data.y, data.u, data.mask)
    return jax.tree_util.tree_map(lambda x: x.sum(0), stats), ll.sum(), jnp.all(ok)


@partial(jax.jit, static_argnames=("prior", "log_space"))
def _em_iteration(params_R, data, *, prior, log_space=False):
    """One EM step for every restart: ``(new params, objective at the old ones, ok)``."""

    def one(params):
        stats, ll, ok = _expected_stats(params, data, log_space)
        return _m_step(params, stats, prior), ll + _log_prior(params, prior), ok

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
    log-likelihood (log posterior with a :class:`Prior`) in either variant.

    Identifiability: in the gated model :math:`\log c_t = \log \bar P(y_t) +
    \log((1-\rho) N(u_t|m_0) + \rho N(u_t|m_1))`, so the likelihood is that of two iid
    mixtures and does not depend on the switching dynamics: ``pi`` and the emission are fitted
    as an iid mixture, and ``rho`` only through the cue, up to the swap
    :math:`(\rho, m_0, m_1) \to (1-\rho, m_1, m_0)` (without a cue ``rho`` stays at its
    initial value, where the likelihood is flat). The same holds for :func:`fit_mle`.

    Convergence per restart: :math:`|\ell_i - \ell_{i-1}| < \mathrm{tol}\cdot\max(|\ell_i|, n)`
    with :math:`n` the total number of steps; iteration stops when every restart has
    converged or after ``num_iters``.

    Args:
        y, u, num_states, emission, gated, cue, lengths, num_symbols, prior, key, init,
            progress, mesh: as in :func:`fit_mle` (a vector-scale ``init.cue`` is replaced by its
            root-mean-square scale: EM fits one scale ``tau``).
        num_restarts: number of starting points (``init`` first if given).
        num_iters: maximum EM iterations.
        tol: relative convergence tolerance.

    Returns:
        :class:`FitResult` (``history[r, i]`` is the objective at iterate ``i``).

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
    num_restarts = _check_int(num_restarts, "num_restarts")
    num_iters = _check_int(num_iters, "num_iters", low=0)
    tol = _check_float(tol, "tol", positive=False)
    data, spec = _prepare(
        y, u, num_states=num_states, emission=emission, gated=gated, cue=cue,
        lengths=lengths, num_symbols=num_symbols, init=init,
    )  # fmt: skip
    prior = _check_prior(prior, spec.emission)
    init = None if init is None else _as_fitted_structure(init)
    params_R = _stack(_initial_params(key, data, spec, init, num_restarts))
    n = float(data.num_timesteps)
    data, metadata_data = _place(data, mesh), data
    params_R = _place(params_R, mesh, replicate=True)
    hist = []
    conv = np.zeros(num_restarts, bool)
    with tqdm(total=num_iters, disable=not progress, desc="fit_em", leave=False) as pbar:
        log_space = False
        for _ in range(num_iters):
            new, obj, ok = _em_iteration(params_R, data, prior=prior, log_space=log_space)
            if not ok:  # a normalizer underflowed: exact log-space E-steps from here on
                log_space = True
                new, obj, _ = _em_iteration(params_R, data, prior=prior, log_space=True)
            params_R = new
            hist.append(np.asarray(obj))
            pbar.update(1)
            pbar.set_postfix(best=f"{np.nanmax(hist[-1]):.6g}", refresh=False)
            if len(hist) > 1:
                conv = _relative_change(hist[-1], hist[-2], n) < tol
                if np.all(conv):
                    break
    lls, objs = (np.asarray(a) for a in _final_values_jit(params_R, data, prior))
    history = np.stack([*hist, objs], axis=1)
    if hist:  # the change made by the last M-step
        conv = _relative_change(objs, hist[-1], n) < tol
    conv = conv & np.all(np.isfinite(history), axis=1)
    return _finish("em", metadata_data, spec, prior, params_R, history, conv, lls, objs, tol=tol)
