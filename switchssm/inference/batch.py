r"""Exact inference over a batch of padded sequences (:class:`~switchssm.sequences.Sequences`).

Sequences are padded at the end and a mask marks the real steps; at a padded step the log
evidence is set to 0 for every ``(z, k)``, so the forward step there is the bare
transition, whose normalizer is
:math:`c_t = \sum_{z,k} P(z) P(s_t = k \mid s_{t-1}, z) \cdot 1 = 1`: padded steps contribute
:math:`\log c_t = 0` and the backward messages entering the last real step are flat, so the
log-likelihood and the smoothed posteriors of each sequence are those of the sequence alone.
(The per-step terms are also masked to exactly 0, so nothing depends on rounding.)

:func:`batch_log_likelihood` is the validated entry point. The array-level functions below
(:func:`log_likelihoods`, :func:`smoothed_joint`, ...) take the padded arrays as they are,
do no validation and run under ``jit``, ``grad`` and ``vmap``: they are what the fitting
algorithms of :mod:`switchssm.fit` are built from. They run the probability-space kernel
(:mod:`switchssm.inference._scaled`) and report whether one of its normalizers underflowed
(``ok``), in which case the caller re-runs in log space.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from switchssm.inference import _logspace
from switchssm.inference import _scaled
from switchssm.inference._emissions import log_switch_probs
from switchssm.inference._emissions import normalized_log_evidence
from switchssm.inference._recursions import backward_log
from switchssm.inference._recursions import forward_log
from switchssm.inference._recursions import smoothed_joint_log
from switchssm.inference._recursions import total
from switchssm.inference.exact import gated_gate_and_candidate
from switchssm.models.params import SwitchingParams
from switchssm.sequences import Sequences
from switchssm.sequences import as_sequences
from switchssm.types import Array
from switchssm.types import Bool
from switchssm.types import Float

__all__ = [
    "batch_log_likelihood",
    "check_data",
    "gated_posteriors",
    "log_likelihoods",
    "log_likelihoods_checked",
    "sequences_for",
    "smoothed_joint",
]


def _masked_log_evidence(params, y, u, mask):
    """Normalized log evidence and its per-step shift, both 0 at padded steps."""
    log_e, shift = normalized_log_evidence(params, y, u)
    return jnp.where(mask[:, None, None], log_e, 0.0), jnp.where(mask, shift, 0.0)


def _log_space_ll(params, y, u, mask):
    """Log-likelihood of one padded sequence by the log-space recursion (padded steps add 0)."""
    if params.gated:
        _, _, log_norms = gated_gate_and_candidate(params, y, u)
        return total(jnp.where(mask, log_norms, 0.0))
    return _logspace.log_likelihood(_logspace.factors(params, y, u, mask))


def log_likelihoods_checked(
    params: SwitchingParams, data: Sequences, log_space: bool = False
) -> tuple[Float[Array, " N"], Bool[Array, ""]]:
    """Per-sequence log-likelihoods ``(N,)`` and whether all are valid (always with
    ``log_space``).

    For use under an outer ``vmap`` (restarts), where a ``lax.cond`` would run both
    branches: no ``lax.cond`` here; the caller re-runs with ``log_space=True`` when ``ok``
    is False or the gradient is not finite (the backward messages underflowed).
    """
    if log_space or params.gated:
        lls = jax.vmap(_log_space_ll, in_axes=(None, 0, 0, 0))(
            params, data.values, data.cue, data.mask
        )
        return lls, jnp.array(True)
    lls, ok = _scaled.log_likelihood(
        params, data.values, data.cue, data.mask, batched=True, fallback=False
    )
    return lls, jnp.all(ok > 0)


def log_likelihoods(params: SwitchingParams, data: Sequences) -> Float[Array, " N"]:
    r"""Per-sequence exact log-likelihoods :math:`\log P(x^{(n)})`, ``(N,)``.

    The probability-space kernel, or the log-space recursion for the whole batch if any
    normalizer underflowed (a ``lax.cond``). Differentiable in ``params`` (the kernel's
    forward-backward custom VJP). No validation: see :func:`batch_log_likelihood`.
    """
    if params.gated:
        return log_likelihoods_checked(params, data, True)[0]
    return _scaled.log_likelihood(params, data.values, data.cue, data.mask, batched=True)[0]


_log_likelihoods_jit = jax.jit(log_likelihoods)


def smoothed_joint(params: SwitchingParams, y, u, mask, log_space: bool = False):
    r"""Smoothed joint of one padded sequence: ``(xi, P(s_0 | x), log-likelihood, ok)``.

    ``xi[t, z, k]`` :math:`= P(z_t = z, s_t = k \mid x)` (``(T, 2, K)``, zero at padded
    steps) and :math:`P(s_0 = k \mid x) = \xi_1(0, k) + P(z_1 = 1 \mid x)\, \pi_k` (if
    :math:`z_1 = 0` then :math:`s_0 = s_1`; if :math:`z_1 = 1`, :math:`s_0` keeps its prior).
    The probability-space kernel unless ``log_space``; ``ok`` False means one of its
    normalizers underflowed.
    """
    if log_space:
        log_e, shift = _masked_log_evidence(params, y, u, mask)
        log_pi = jnp.log(params.initial_probs)
        log_rho2 = log_switch_probs(params)
        log_joint, log_norms = forward_log(log_pi, log_rho2, log_e)
        log_filtered_s = jnp.logaddexp(log_joint[:, 0], log_joint[:, 1])
        log_beta = backward_log(log_pi, log_rho2, log_e)
        xi = jnp.exp(smoothed_joint_log(log_pi, log_rho2, log_e, log_filtered_s, log_beta))
        ll, ok = total(jnp.where(mask, log_norms, 0.0)) + jnp.sum(shift), jnp.array(True)
    else:
        ev = _scaled.evidence(params, y, u, mask)
        sm = _scaled.smoother(params.initial_probs, ev)
        xi1 = ev.dense()[1] * sm.b / sm.nu[:, None]
        xi = jnp.stack([sm.smoothed_s - xi1, xi1], axis=1)
        ll, ok = sm.log_likelihood, sm.ok
    xi = jnp.where(mask[:, None, None], xi, 0.0)
    s0 = xi[0, 0] + xi[0, 1].sum() * params.initial_probs
    return xi, s0, ll, ok


def gated_posteriors(params: SwitchingParams, y, u, mask):
    r"""Closed-form posteriors of one padded sequence of the gated model (no scan).

    The switches are independent a posteriori, :math:`P(z_t = 1 \mid x) = g_t` (the cue-only
    gate), and :math:`y_t` is emitted by a fresh state (``z_t = 1``) or the background state
    (``z_t = 0``), both with posterior :math:`q_t = \operatorname{softmax}(\log\pi + l_t)`;
    :math:`s_0` is never emitted, so :math:`P(s_0 \mid x) = \pi` (0 for an empty row: a
    length-0 filler sequence of a sharded batch contributes nothing).

    Returns:
        ``(P(z_t = 1 | x), emission weights w_t(k) = q_t(k), P(s_0 | x), log-likelihood)``,
        zero at padded steps.
    """
    g, q, log_norms = gated_gate_and_candidate(params, y, u)
    maskf = mask.astype(q.dtype)
    ll = total(jnp.where(mask, log_norms, 0.0))
    return g * maskf, q * maskf[:, None], params.initial_probs * maskf[0], ll


def check_data(data: Sequences, params: SwitchingParams) -> None:
    """``data`` (its observation dimension and cue) fits ``params``; ValueError otherwise."""
    em = params.emission
    if em.kind == "gaussian" and data.values.shape[-1] != em.dim:
        raise ValueError(f"`y` has dimension {data.values.shape[-1]} but the emission has {em.dim}")
    if params.cue is None and data.cue is not None:
        raise ValueError("`u` was given but `params.cue` is None: pass a GaussianCue or drop `u`")
    if params.cue is not None:
        if data.cue is None:
            raise ValueError("`params.cue` is set, so the cue `u` (one value per step) is required")
        want = () if params.cue.is_scalar else (params.cue.dim,)
        if tuple(data.cue.shape[2:]) != want:
            raise ValueError(
                f"`u` must have {'a scalar' if not want else f'a {want[0]}-vector'} cue per "
                f"step to match `params.cue`, got per-step shape {tuple(data.cue.shape[2:])}"
            )


def sequences_for(params: SwitchingParams, y, u=None, *, lengths=None) -> Sequences:
    """Validate ``y`` and ``u`` (any layout of :func:`~switchssm.sequences.as_sequences`)
    against ``params`` and pad them.

    Args:
        params: :class:`~switchssm.models.SwitchingParams`.
        y: one sequence, a list of sequences, or a padded array with ``lengths``.
        u: the cue in the same layout; required iff ``params.cue`` is set.
        lengths: ``(N,)`` lengths for padded input.

    Returns:
        :class:`~switchssm.sequences.Sequences`.
    """
    if not isinstance(params, SwitchingParams):
        raise ValueError(f"`params` must be a SwitchingParams, got {type(params).__name__}")
    em = params.emission
    data = as_sequences(
        y,
        u,
        lengths=lengths,
        step_ndim=0 if em.kind == "categorical" else 1,
        kind="integer" if em.kind == "categorical" else "real",
        num_symbols=em.num_symbols if em.kind == "categorical" else None,
    )
    check_data(data, params)
    return data


def batch_log_likelihood(params: SwitchingParams, y, u=None, *, lengths=None) -> Float[Array, " N"]:
    r"""Exact log-likelihood of each of many sequences, :math:`\log P(y^{(n)}, u^{(n)})`.

    Sequences are padded to a common length and ``vmap``-ed; padded steps get log evidence 0
    for every :math:`(z_t, s_t)`, where the forward normalizer is exactly
    :math:`c_t = (1-\rho) \sum_k \alpha_{t-1}(k) + \rho \sum_k \pi_k = 1` (module docstring).

    Args:
        params: :class:`~switchssm.models.SwitchingParams`.
        y: a list of sequences, one sequence, or a padded array with ``lengths`` (see
            :func:`~switchssm.sequences.as_sequences`).
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
    return _log_likelihoods_jit(params, sequences_for(params, y, u, lengths=lengths))
