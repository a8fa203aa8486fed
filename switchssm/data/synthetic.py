"""Built-in example parameters and synthetic data sets for every switching model.

:func:`example_switching_params` returns sensible parameters (for demos, tutorials and
tests) of one of three models:

- ``"categorical"``: categorical latent ``s_t in {0..K-1}``, categorical emission over
  ``V`` symbols (:class:`~switchssm.models.SwitchingParams` + ``CategoricalEmission``);
- ``"gaussian"``: categorical latent, Gaussian emission in ``D`` dimensions
  (:class:`~switchssm.models.SwitchingParams` + ``GaussianEmission``);
- ``"gaussian_latent"``: Gaussian latent ``s_t in R^K``, ``y_t ~ N(C s_t, R)``
  (:class:`~switchssm.models.GaussianLatentParams`).

:func:`sample_dataset` draws several sequences from any of them with the models' own
samplers (:func:`switchssm.models.sample`, :func:`switchssm.models.sample_gaussian_latent`).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np

from switchssm import _validation as _V
from switchssm.models import CategoricalEmission
from switchssm.models import GaussianCue
from switchssm.models import GaussianEmission
from switchssm.models import GaussianLatentParams
from switchssm.models import SwitchingParams
from switchssm.models import sample
from switchssm.models import sample_gaussian_latent
from switchssm.types import PRNGKeyArray

__all__ = ["KINDS", "example_switching_params", "sample_dataset"]

KINDS = ("categorical", "gaussian", "gaussian_latent")

#: Cue used when ``cue=True``: ``u_t | z_t ~ N(m_z, 0.6^2)`` with ``(m0, m1) = (0, 1.5)``,
#: separation ``d = 1.5 / 0.6 = 2.5``.
_CUE_MEANS = (0.0, 1.5)
_CUE_SCALE = 0.6


def example_switching_params(
    kind: str = "categorical",
    num_states: int = 3,
    *,
    gated: bool = False,
    cue: bool = True,
    switch_prob: float = 0.05,
    num_symbols: int = 4,
    emission_dim: int = 1,
    peak: float = 0.7,
    separation: float = 2.5,
) -> SwitchingParams | GaussianLatentParams:
    """Built-in parameters of a switching model, for demos and tests.

    All kinds share ``z_t ~ Bernoulli(rho)`` with ``rho = switch_prob`` and, when ``cue``,
    the cue ``u_t | z_t ~ N(m_z, 0.6^2)`` with ``(m0, m1) = (0, 1.5)`` (separation 2.5).

    - ``"categorical"``: ``pi`` uniform over ``K = num_states`` states;
      ``P(y = v | s = k) = peak`` for ``v = k`` and ``(1 - peak) / (V - 1)`` otherwise
      (each state prefers its own symbol; requires ``V = num_symbols >= K``).
    - ``"gaussian"``: ``pi`` uniform; ``y_t | s_t = k ~ N(mu_k 1_D, I_D)`` with evenly
      spaced, centred means ``mu_k = separation * (k - (K - 1) / 2)``.
    - ``"gaussian_latent"``: ``K = num_states`` is the latent dimension;
      ``s_0, fresh draws ~ N(0, separation^2 I_K)``; ``y_t ~ N(C s_t, 0.25 I_D)`` with
      ``C = 1_{D x K} / sqrt(K)``, so each ``y`` coordinate sees the scaled sum of the
      latent coordinates (prior standard deviation ``separation``).

    Args:
        kind: ``"categorical"``, ``"gaussian"`` or ``"gaussian_latent"``.
        num_states: ``K >= 1`` (latent states, or latent dimension for ``"gaussian_latent"``).
        gated: gated emission (``y_t`` from the background law when ``z_t = 0``).
        cue: include the Gaussian cue on the switch.
        switch_prob: ``rho`` in ``[0, 1]``.
        num_symbols: ``V`` for ``"categorical"``.
        emission_dim: ``D`` for ``"gaussian"`` and ``"gaussian_latent"``.
        peak: probability of a state's preferred symbol (``"categorical"``), in ``(0, 1)``.
        separation: spacing of the state means (``"gaussian"``) or prior standard deviation
            of the latent (``"gaussian_latent"``), positive.

    Returns:
        :class:`~switchssm.models.SwitchingParams` or
        :class:`~switchssm.models.GaussianLatentParams`.

    Raises:
        ValueError: naming the argument that is out of range.

    Example:
        >>> p = example_switching_params("categorical", 3, cue=True)
        >>> p.num_states, p.emission.num_symbols, p.cue is not None
        (3, 4, True)
    """
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {KINDS}, got {kind!r}")
    K = _V.check_int(num_states, "num_states")
    rho = float(switch_prob)
    if not 0.0 <= rho <= 1.0:
        raise ValueError(f"`switch_prob` must lie in [0, 1], got {switch_prob!r}")
    cue_obj = GaussianCue(np.array(_CUE_MEANS), _CUE_SCALE) if cue else None

    if kind == "categorical":
        V = _V.check_int(num_symbols, "num_symbols")
        if V < K or V < 2:
            raise ValueError(
                f"`num_symbols` must be >= max(2, num_states) = {max(2, K)} so that each state "
                f"prefers its own symbol, got {num_symbols!r}"
            )
        if not 0.0 < float(peak) < 1.0:
            raise ValueError(f"`peak` must lie in (0, 1), got {peak!r}")
        probs = np.full((K, V), (1.0 - peak) / (V - 1))
        probs[np.arange(K), np.arange(K)] = peak
        return SwitchingParams(
            np.full(K, 1.0 / K), rho, CategoricalEmission(probs), cue=cue_obj, gated=gated
        )

    D = _V.check_int(emission_dim, "emission_dim")
    if not float(separation) > 0.0:
        raise ValueError(f"`separation` must be positive, got {separation!r}")
    if kind == "gaussian":
        mu = float(separation) * (np.arange(K) - (K - 1) / 2.0)
        means = np.repeat(mu[:, None], D, axis=1)
        return SwitchingParams(
            np.full(K, 1.0 / K),
            rho,
            GaussianEmission(means, np.eye(D)),
            cue=cue_obj,
            gated=gated,
        )
    return GaussianLatentParams(
        initial_mean=np.zeros(K),
        initial_cov=float(separation) ** 2 * np.eye(K),
        emission_matrix=np.ones((D, K)) / np.sqrt(K),
        emission_cov=0.25 * np.eye(D),
        switch_prob=rho,
        cue=cue_obj,
        gated=gated,
    )


def sample_dataset(
    key: PRNGKeyArray,
    params: SwitchingParams | GaussianLatentParams,
    lengths: int | Sequence[int],
) -> list[tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]]:
    """Draw independent sequences of the given lengths from a switching model.

    Sequence ``i`` is drawn with key ``jax.random.split(key, N)[i]`` by
    :func:`switchssm.models.sample` (``SwitchingParams``) or
    :func:`switchssm.models.sample_gaussian_latent` (``GaussianLatentParams``). Each distinct
    length compiles the sampler once.

    Args:
        key: JAX PRNG key.
        params: :class:`~switchssm.models.SwitchingParams` or
            :class:`~switchssm.models.GaussianLatentParams`.
        lengths: one length ``T >= 1`` or a non-empty sequence of lengths ``T_1..T_N``.

    Returns:
        A list of ``N`` tuples ``(y, u, s, z)`` of NumPy arrays: observations (``(T,)`` ints
        for a categorical emission, ``(T, D)`` otherwise), the cue ``(T,)`` or ``None``
        without one, latent states (``(T,)`` ints, or ``(T, K)`` for a Gaussian latent) and
        switch indicators ``(T,)`` (1 = switch).

    Raises:
        ValueError: for a wrong ``params`` type or a non-positive / non-integer length.

    Example:
        >>> import jax
        >>> p = example_switching_params("categorical")
        >>> data = sample_dataset(jax.random.PRNGKey(0), p, [50, 20])
        >>> [y.shape for y, u, s, z in data]
        [(50,), (20,)]
    """
    if isinstance(params, SwitchingParams):
        sampler = sample
    elif isinstance(params, GaussianLatentParams):
        sampler = sample_gaussian_latent
    else:
        raise ValueError(
            "`params` must be a SwitchingParams or GaussianLatentParams, "
            f"got {type(params).__name__}"
        )
    if isinstance(lengths, int | np.integer) and not isinstance(lengths, bool):
        lengths = [lengths]
    if isinstance(lengths, str | bytes) or not isinstance(lengths, Sequence | np.ndarray):
        raise ValueError(f"`lengths` must be an int or a sequence of ints, got {lengths!r}")
    Ts = [_V.check_int(T, "lengths") for T in lengths]
    if not Ts:
        raise ValueError("`lengths` is empty: ask for at least one sequence")
    keys = jax.random.split(key, len(Ts))
    out = []
    for k, T in zip(keys, Ts, strict=True):
        y, u, s, z = sampler(k, params, T)
        out.append(
            (
                np.asarray(y),
                None if u is None else np.asarray(u),
                np.asarray(s),
                np.asarray(z),
            )
        )
    return out
