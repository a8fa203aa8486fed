r"""Bayesian inference for the global parameters of the switching model (NUTS and SVI).

The discrete chain :math:`(s_t, z_t)` is summed out exactly by the :math:`O(TK)` forward
pass of :mod:`switchssm.inference.exact`, added to the joint as one ``numpyro.factor``
(:func:`~switchssm.models.marginal_switching_model`). No NumPyro enumeration is involved
(its enumerated scans are slow and ``TraceEnum_ELBO`` over them has returned wrong values
silently; see ``pitfalls.md``), so plain ``NUTS`` and ``Trace_ELBO`` apply. The target is

.. math::
    p(\theta \mid x) \propto p(\theta) \prod_n P(x^{(n)}_{1:T_n} \mid \theta),
    \qquad \theta = (\pi, \rho, \text{emission}, \text{cue}).

Label switching: the likelihood is invariant under permutations of the :math:`K` states
(reset moves draw from :math:`\pi`, so no state is special), and so is the prior, so the
posterior has :math:`K!` symmetric modes. Two choices, documented where they act:

* Gaussian emission: the state means are *ordered along their first coordinate* in the
  model itself (prior: the order statistics of :math:`K` iid normals, density
  :math:`K! \prod_k N(\mu_{k1})` on :math:`\mu_{11} < \dots < \mu_{K1}`), which removes the
  symmetry (unless two states share their first-coordinate mean).
* Categorical emission: no natural order, so draws are relabeled after sampling (pivotal
  relabeling): the draw of highest joint density is the pivot and every draw's states are
  permuted (Hungarian assignment, :func:`scipy.optimize.linear_sum_assignment`) to minimize
  the squared distance of its ``(emission row, pi_k)`` features to the pivot's. ArviZ
  diagnostics are computed on the relabeled draws.

Example:
    >>> import jax, numpy as np
    >>> from switchssm.models import SwitchingParams, CategoricalEmission, sample
    >>> from switchssm.inference.bayes import fit_nuts
    >>> B = np.array([[0.8, 0.2], [0.2, 0.8]])
    >>> p = SwitchingParams(np.array([0.5, 0.5]), 0.05, CategoricalEmission(B))
    >>> y, _, _, _ = sample(jax.random.PRNGKey(0), p, 200)
    >>> fit = fit_nuts(y, num_states=2, num_warmup=200, num_samples=200,
    ...                key=jax.random.PRNGKey(1), progress=False)
    >>> bool(fit.summary["r_hat"].max() < 1.1)
    True
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
from jax.scipy.special import gammaln
from numpyro.distributions import constraints
from numpyro.distributions.transforms import biject_to
from scipy.optimize import linear_sum_assignment

from switchssm import _arviz
from switchssm import _validation as V
from switchssm.inference.learn import Sequences, _batch_ll
from switchssm.models.params import (
    CategoricalEmission,
    GaussianCue,
    GaussianEmission,
    SwitchingParams,
)
from switchssm.models.switching import marginal_switching_model
from switchssm.types import PRNGKeyArray

_EMISSIONS = ("categorical", "gaussian")
_GUIDES = ("auto_normal", "auto_mvn")
_CHAIN_METHODS = ("sequential", "vectorized", "parallel")


# --------------------------------------------------------------------------------------
# Priors


@dataclasses.dataclass(frozen=True)
class Priors:
    """Hyperparameters of the priors over the global parameters (all overridable).

    * ``initial_probs`` :math:`\\pi \\sim \\mathrm{Dirichlet}(\\alpha_\\pi 1_K)`,
      ``initial_concentration = 2.0``: weak (worth :math:`K` pseudo-counts in all), with zero
      density on the simplex boundary, so no state is a priori never visited (a state with
      :math:`\\pi_k \\to 0` is never entered and leaves its emission parameters unidentified,
      a funnel for NUTS).
    * categorical ``emission_probs`` rows :math:`\\sim \\mathrm{Dirichlet}(\\alpha_B 1_V)`,
      ``emission_concentration = 1.0``: uniform over the simplex.
    * ``switch_prob`` :math:`\\rho \\sim \\mathrm{Beta}(a, b)`, ``(1.0, 9.0)``: prior mean 0.1
      (regimes last about 10 steps a priori), mode at 0, worth only 10 pseudo-steps, so a
      few hundred steps override it. It favours persistent regimes, the case the model is
      for; with :math:`\\rho \\to 1` it degenerates to an iid mixture.
    * Gaussian ``means`` :math:`\\mu_{kd} \\sim N(m_0, s_0^2)`, ``mean_loc = 0``,
      ``mean_scale = 5``, with the first coordinate ordered across states (module docstring):
      weakly informative for data on unit scale (standardize first).
    * shared covariance :math:`\\Sigma = \\mathrm{diag}(\\sigma) L L^\\top \\mathrm{diag}(\\sigma)`,
      :math:`\\sigma_d \\sim \\mathrm{HalfNormal}(2.5)` (``stddev_scale``) and
      :math:`L \\sim \\mathrm{LKJCholesky}(\\eta = 2)` (``lkj_concentration``; :math:`\\eta > 1`
      shrinks gently towards no correlation; not used when ``D = 1``).
    * cue means :math:`m_z \\sim N(0, 5^2)` (``cue_mean_loc``, ``cue_mean_scale``) and cue
      standard deviation :math:`\\tau \\sim \\mathrm{HalfNormal}(2.5)` (``cue_scale_scale``).
      The cue's two components are not exchangeable (``z = 1`` is the switch, tied to
      :math:`\\rho`), so they need no ordering.

    Example:
        >>> Priors(switch_prob_b=4.0).switch_prob_b
        4.0
    """

    initial_concentration: float = 2.0
    emission_concentration: float = 1.0
    switch_prob_a: float = 1.0
    switch_prob_b: float = 9.0
    mean_loc: float = 0.0
    mean_scale: float = 5.0
    stddev_scale: float = 2.5
    lkj_concentration: float = 2.0
    cue_mean_loc: float = 0.0
    cue_mean_scale: float = 5.0
    cue_scale_scale: float = 2.5

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
                raise ValueError(f"`priors.{f.name}` must be a real number, got {v!r}")
            if not math.isfinite(v):
                raise ValueError(f"`priors.{f.name}` must be finite, got {v!r}")
            if f.name not in ("mean_loc", "cue_mean_loc") and v <= 0:
                raise ValueError(f"`priors.{f.name}` must be strictly positive, got {v!r}")


class _OrderedNormal(dist.Distribution):
    """Order statistics of ``size`` iid ``N(loc, scale^2)``: density ``size! prod N(x_k)``
    on increasing vectors."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.ordered_vector
    reparametrized_params = ["loc", "scale"]
    pytree_data_fields = ("loc", "scale")
    pytree_aux_fields = ("size",)

    def __init__(self, loc, scale, size: int, *, validate_args=None):
        self.loc, self.scale, self.size = jnp.asarray(loc), jnp.asarray(scale), int(size)
        super().__init__(batch_shape=(), event_shape=(self.size,), validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        eps = jax.random.normal(key, tuple(sample_shape) + (self.size,))
        return jnp.sort(self.loc + self.scale * eps, axis=-1)

    def log_prob(self, value):
        lp = dist.Normal(self.loc, self.scale).log_prob(value).sum(-1)
        return lp + gammaln(self.size + 1.0)


# --------------------------------------------------------------------------------------
# Validated data and model specification


class _Spec(NamedTuple):
    num_states: int
    emission: str
    num_symbols: int | None
    dim: int | None  # Gaussian emission dimension D
    gated: bool
    cue: bool
    cue_dim: int | None  # None: scalar cue
    priors: Priors


class _Data(NamedTuple):
    y: Any  # (T,) / (T, D), or padded (N, T) / (N, T, D)
    u: Any  # None, (T,) / (T, Du), or padded (N, T) / (N, T, Du)
    mask: Any  # None (one sequence) or (N, T) bool


def _check_int(x, name, low):
    if isinstance(x, bool) or not isinstance(x, int | np.integer) or x < low:
        raise ValueError(f"`{name}` must be an int >= {low}, got {x!r}")
    return int(x)


def _array(x, name):
    a = V.as_numpy(x, name)
    if a.dtype.kind not in "iuf":
        raise ValueError(f"`{name}` must hold real numbers (int or float), got dtype {a.dtype}")
    return a


def _split_sequences(x, name, per_step_ndim, lengths, what):
    """A list of per-sequence numpy arrays and whether the input was batched."""
    if isinstance(x, list | tuple):
        if lengths is not None:
            raise ValueError(
                "`lengths` is only for a padded array; a list of sequences gives each length"
            )
        if len(x) == 0:
            raise ValueError(f"`{name}` is an empty list: give at least one sequence")
        seqs = [_array(s, f"{name}[{i}]") for i, s in enumerate(x)]
        for i, s in enumerate(seqs):
            V.check_ndim(s, f"{name}[{i}]", 1 + per_step_ndim, what)
            V.check_length(s.shape[0], f"{name}[{i}]")
        return seqs, True
    a = _array(x, name)
    if a.ndim == 1 + per_step_ndim and lengths is None:
        V.check_length(a.shape[0], name)
        return [a], False
    V.check_ndim(
        a, name, (1 + per_step_ndim, 2 + per_step_ndim), f"{what} or a padded batch (N, T, ...)"
    )
    if a.ndim == 1 + per_step_ndim:
        raise ValueError(f"`lengths` was given, so `{name}` must be a padded batch (N, T, ...)")
    N, T = a.shape[:2]
    if N < 1:
        raise ValueError(f"`{name}` holds no sequences")
    V.check_length(T, name)
    if lengths is None:
        lens = np.full(N, T)
    else:
        lens = V.as_numpy(lengths, "lengths")
        if lens.dtype.kind not in "iu" or lens.shape != (N,):
            raise ValueError(f"`lengths` must be {N} ints (one per sequence), got {lens!r}")
        if lens.min() < 1 or lens.max() > T:
            raise ValueError(
                f"`lengths` must lie in [1, {T}], got range [{lens.min()}, {lens.max()}]"
            )
    return [a[n, : int(lens[n])] for n in range(N)], True


def _prepare(y, u, *, num_states, emission, num_symbols, gated, cue, priors, lengths):
    """Validate everything (concrete inputs, before any jit); the model spec and data."""
    num_states = _check_int(num_states, "num_states", 1)
    if emission not in _EMISSIONS:
        raise ValueError(f"`emission` must be one of {_EMISSIONS}, got {emission!r}")
    for name, flag in (("gated", gated), ("cue", cue)):
        if not isinstance(flag, bool | np.bool_):
            raise ValueError(f"`{name}` must be a bool, got {flag!r}")
    if not isinstance(priors, Priors):
        raise ValueError(f"`priors` must be a Priors, got {type(priors).__name__}")
    if y is None:
        raise ValueError("`y` (the observations) is required")

    categorical = emission == "categorical"
    what = "(T,) integer symbols" if categorical else "(T, D) real observations"
    ys, batched = _split_sequences(y, "y", 0 if categorical else 1, lengths, what)
    dim = None
    if categorical:
        for i, s in enumerate(ys):
            V.check_int_range(s, "y" if not batched else f"y[{i}]", 0, np.iinfo(np.int32).max)
        top = max(int(s.max()) for s in ys) + 1
        if num_symbols is None:
            num_symbols = max(top, 2)
        num_symbols = _check_int(num_symbols, "num_symbols", 2)
        if top > num_symbols:
            raise ValueError(f"`y` holds symbol {top - 1} but `num_symbols` is {num_symbols}")
    else:
        if num_symbols is not None:
            raise ValueError("`num_symbols` is only for emission='categorical'")
        dim = ys[0].shape[1]
        if dim < 1:
            raise ValueError("`y` must have at least one dimension D >= 1 per step")
        for i, s in enumerate(ys):
            if s.shape[1] != dim:
                raise ValueError(f"`y[{i}]` has dimension {s.shape[1]}, expected {dim}")
            V.check_finite(s, "y" if not batched else f"y[{i}]")

    cue_dim = None
    us = None
    if cue:
        if u is None:
            raise ValueError("`cue=True`, so the cue `u` (one value per step) is required")
        if isinstance(u, list | tuple):
            if not isinstance(y, list | tuple) or len(u) != len(ys):
                raise ValueError(
                    "`u` must be a list exactly when `y` is, with one cue per sequence"
                )
            us = [_array(v, f"u[{i}]") for i, v in enumerate(u)]
        else:
            ua = _array(u, "u")
            if isinstance(y, list | tuple):
                raise ValueError("`y` is a list of sequences, so `u` must be a list too")
            if batched:
                V.check_ndim(ua, "u", (2, 3), "(N, T) or (N, T, Du), padded like `y`")
                if ua.shape[:2] != V.as_numpy(y, "y").shape[:2]:
                    raise ValueError(f"`u` must start with shape (N, T) of `y`, got {ua.shape}")
                us = [ua[n, : len(s)] for n, s in enumerate(ys)]
            else:
                us = [ua]
        cue_dim = None if us[0].ndim == 1 else us[0].shape[1]
        for i, (v, s) in enumerate(zip(us, ys, strict=True)):
            name = "u" if not batched else f"u[{i}]"
            shape = (len(s),) if cue_dim is None else (len(s), cue_dim)
            V.check_shape(v, name, shape, "(one cue per step of `y`)")
            V.check_finite(v, name)
    elif u is not None:
        raise ValueError("`u` was given but `cue=False`: set `cue=True` or drop `u`")

    spec = _Spec(num_states, emission, num_symbols, dim, bool(gated), bool(cue), cue_dim, priors)
    fdt = jnp.result_type(float)
    ydt = jnp.int32 if categorical else fdt
    if not batched:
        data = _Data(jnp.asarray(ys[0], ydt), None if us is None else jnp.asarray(us[0], fdt), None)
        return spec, data
    T = max(len(s) for s in ys)
    lens = np.array([len(s) for s in ys])
    mask = np.arange(T)[None, :] < lens[:, None]

    def pad(seqs, dtype):
        out = np.zeros((len(seqs), T) + seqs[0].shape[1:], dtype=dtype)
        for n, s in enumerate(seqs):
            out[n, : len(s)] = s
        return jnp.asarray(out)

    return spec, _Data(pad(ys, ydt), None if us is None else pad(us, fdt), jnp.asarray(mask))


def _unchecked(y, u, num_states, emission, num_symbols, gated, cue, priors, lengths):
    """Spec and data from shapes alone, for traced observations (nothing is checked)."""
    gaussian = emission == "gaussian"
    if not gaussian and num_symbols is None:
        raise ValueError("`num_symbols` is required when `y` is traced (it cannot be inferred)")
    per_step = jnp.ndim(y) - int(gaussian)
    cue_dim = None if u is None or jnp.ndim(u) == per_step else jnp.shape(u)[-1]
    dim = jnp.shape(y)[-1] if gaussian else None
    spec = _Spec(num_states, emission, num_symbols, dim, gated, cue, cue_dim, priors)
    if lengths is None and per_step == 1:
        return spec, _Data(y, u, None)
    N, T = jnp.shape(y)[:2]
    lens = jnp.full((N,), T) if lengths is None else jnp.asarray(lengths)
    return spec, _Data(y, u, jnp.arange(T)[None, :] < lens[:, None])


# --------------------------------------------------------------------------------------
# The model


def _sample_globals(spec: _Spec) -> SwitchingParams:
    pr, K = spec.priors, spec.num_states
    if K == 1:
        pi = jnp.ones((1,), jnp.result_type(float))
    else:
        pi = numpyro.sample(
            "initial_probs", dist.Dirichlet(jnp.full((K,), float(pr.initial_concentration)))
        )
    rho = numpyro.sample("switch_prob", dist.Beta(pr.switch_prob_a, pr.switch_prob_b))
    if spec.emission == "categorical":
        conc = jnp.full((K, spec.num_symbols), float(pr.emission_concentration))
        probs = numpyro.sample("emission_probs", dist.Dirichlet(conc).to_event(1))
        em = CategoricalEmission(probs)
    else:
        D = spec.dim
        first = numpyro.sample("means_ordered", _OrderedNormal(pr.mean_loc, pr.mean_scale, K))
        means = first[:, None]
        if D > 1:
            rest = numpyro.sample(
                "means_rest",
                dist.Normal(float(pr.mean_loc), float(pr.mean_scale))
                .expand([K, D - 1])
                .to_event(2),
            )
            means = jnp.concatenate([means, rest], axis=1)
        means = numpyro.deterministic("means", means)
        sd = numpyro.sample(
            "stddevs", dist.HalfNormal(float(pr.stddev_scale)).expand([D]).to_event(1)
        )
        if D > 1:
            corr = numpyro.sample("corr_cholesky", dist.LKJCholesky(D, pr.lkj_concentration))
            chol = sd[:, None] * corr
            cov = chol @ chol.T
        else:
            cov = (sd**2)[:, None]
        cov = numpyro.deterministic("cov", cov)
        em = GaussianEmission(means, cov)
    cue = None
    if spec.cue:
        shape = (2,) if spec.cue_dim is None else (2, spec.cue_dim)
        cm = numpyro.sample(
            "cue_means",
            dist.Normal(float(pr.cue_mean_loc), float(pr.cue_mean_scale))
            .expand(list(shape))
            .to_event(len(shape)),
        )
        sshape = () if spec.cue_dim is None else (spec.cue_dim,)
        cs = numpyro.sample(
            "cue_scale",
            dist.HalfNormal(float(pr.cue_scale_scale)).expand(list(sshape)).to_event(len(sshape)),
        )
        cue = GaussianCue(cm, cs)
    return SwitchingParams(pi, rho, em, cue, gated=spec.gated)


def _padded_log_likelihood(params: SwitchingParams, y, u, mask):
    """Sum over sequences of the exact log-likelihood; padded steps contribute exactly 0.

    A step whose evidence is 1 for every ``(z, s)`` has normalizer
    :math:`c_t = (1-\rho) + \rho = 1`, so masking the evidence after the last step adds
    nothing. The probability-space kernel with its forward-backward gradient
    (:mod:`switchssm.inference._scaled`), falling back to the log-space recursion for the
    whole batch if a normalizer underflows.
    """
    return jnp.sum(_batch_ll(params, Sequences(y, u, jnp.sum(mask, -1), mask)))


def _model(spec: _Spec, data: _Data, likelihood: bool = True):
    params = _sample_globals(spec)
    if not likelihood:  # priors and deterministic sites only (post-processing draws)
        return
    if data.mask is None:
        marginal_switching_model(params, data.y, data.u)
    else:
        numpyro.factor("log_likelihood", _padded_log_likelihood(params, data.y, data.u, data.mask))


def _latent_shapes(model) -> dict[str, tuple[int, ...]]:
    """Unconstrained shape of each latent site, by abstract evaluation (nothing compiled)."""

    def unconstrained():
        tr = numpyro.handlers.trace(numpyro.handlers.seed(model, 0)).get_trace()
        return {
            name: biject_to(site["fn"].support).inv(site["value"])
            for name, site in tr.items()
            if site["type"] == "sample" and not site["is_observed"]
        }

    return {k: v.shape for k, v in jax.eval_shape(unconstrained).items()}


def bayesian_switching_model(
    y,
    u=None,
    *,
    num_states: int,
    emission: str = "categorical",
    num_symbols: int | None = None,
    gated: bool = False,
    cue: bool = False,
    priors: Priors = Priors(),  # noqa: B008 - immutable
    lengths=None,
):
    """NumPyro model: globals from :class:`Priors`, discrete chain marginalized exactly.

    .. math::
        \\log p(\\theta, x) = \\log p(\\theta) + \\sum_n \\log P(x^{(n)} \\mid \\theta),

    the second term from the exact forward pass (one ``numpyro.factor`` named
    ``"log_likelihood"``). Sample sites: ``initial_probs`` (absent when ``K = 1``),
    ``switch_prob``; categorical ``emission_probs`` ``(K, V)``; Gaussian ``means_ordered``
    ``(K,)`` (first coordinate, increasing), ``means_rest`` ``(K, D-1)`` (``D > 1``),
    ``stddevs`` ``(D,)``, ``corr_cholesky`` ``(D, D)`` (``D > 1``) and deterministic
    ``means`` ``(K, D)`` and ``cov`` ``(D, D)``; with a cue ``cue_means`` ``(2,)``/``(2, Du)``
    and ``cue_scale`` ``()``/``(Du,)``.

    Args:
        y: one sequence (``(T,)`` symbols or ``(T, D)`` reals), a list of sequences (any
            lengths), or a padded batch ``(N, T)`` / ``(N, T, D)`` with ``lengths``.
        u: the cue, shaped like ``y`` per step (``(T,)`` or ``(T, Du)``; a list or padded
            batch matching ``y``); required iff ``cue``.
        num_states: ``K >= 1``.
        emission: ``"categorical"`` or ``"gaussian"``.
        num_symbols: ``V`` for the categorical emission (default ``max(y) + 1``, at least 2).
        gated: the gated emission (``y_t ~ Pbar`` when ``z_t = 0``). Without a cue its
            likelihood does not depend on ``rho``, whose posterior is then its prior.
        cue: whether a Gaussian cue ``u`` on the switch is modelled.
        priors: :class:`Priors`.
        lengths: ``(N,)`` sequence lengths of a padded batch (default: all ``T``); steps past
            a sequence's length are ignored (their values may be anything, NaN included).

    Example:
        >>> import numpy as np
        >>> from numpyro.infer.util import log_density
        >>> lp, tr = log_density(bayesian_switching_model, (np.array([0, 1, 1]),),
        ...                      dict(num_states=2), {"initial_probs": np.array([.5, .5]),
        ...                       "switch_prob": .1, "emission_probs": np.full((2, 2), .5)})
        >>> sorted(tr)
        ['emission_probs', 'initial_probs', 'log_likelihood', 'switch_prob']
    """
    if V.all_concrete(y, u, lengths):
        spec, data = _prepare(
            y,
            u,
            num_states=num_states,
            emission=emission,
            num_symbols=num_symbols,
            gated=gated,
            cue=cue,
            priors=priors,
            lengths=lengths,
        )
    else:  # traced data (jit_model_args=True): no validation, shapes only
        spec, data = _unchecked(
            y, u, num_states, emission, num_symbols, gated, cue, priors, lengths
        )
    _model(spec, data)


# --------------------------------------------------------------------------------------
# Parameters from site values, relabeling


def to_switching_params(values: dict, *, gated: bool = False) -> SwitchingParams:
    """Build :class:`~switchssm.models.SwitchingParams` from one draw of the model's sites.

    Args:
        values: ``{site: value}`` for one draw, e.g. :attr:`SVIFit.params_median` or the
            posterior mean of :attr:`BayesFit.samples` (the mean of Dirichlet draws stays on
            the simplex; for the Gaussian model use the ``means`` and ``cov`` sites).
        gated: the gated emission.

    Returns:
        The validated parameters.
    """
    v = {k: np.asarray(x) for k, x in values.items()}
    if "emission_probs" in v:
        em = CategoricalEmission(v["emission_probs"])
    elif "means" in v and "cov" in v:
        em = GaussianEmission(v["means"], v["cov"])
    else:
        raise ValueError("`values` must hold `emission_probs`, or `means` and `cov`")
    K = em.num_states
    pi = v.get("initial_probs", np.ones(1))
    if K == 1 and "initial_probs" not in v:
        pi = np.ones(1)
    cue = GaussianCue(v["cue_means"], v["cue_scale"]) if "cue_means" in v else None
    return SwitchingParams(pi, v["switch_prob"], em, cue, gated=gated)


_STATE_SITES = ("initial_probs", "emission_probs", "means_ordered", "means_rest", "means")


def _state_features(samples) -> np.ndarray:
    """``(draws, K, F)`` per-state features used to match labels."""
    parts = []
    if "emission_probs" in samples:
        parts.append(np.asarray(samples["emission_probs"]))
    if "means" in samples:
        parts.append(np.asarray(samples["means"]))
    if "initial_probs" in samples:
        parts.append(np.asarray(samples["initial_probs"])[..., None])
    return np.concatenate(parts, axis=-1)


def _relabel(samples: dict, pivot: int) -> dict:
    """Permute each draw's states to match the features of draw ``pivot`` (Hungarian)."""
    feats = _state_features(samples)
    ref = feats[pivot]
    perms = np.empty(feats.shape[:2], dtype=int)
    for i, f in enumerate(feats):
        cost = ((f[:, None, :] - ref[None, :, :]) ** 2).sum(-1)  # cost[old, new]
        old, new = linear_sum_assignment(cost)
        perms[i, new] = old
    out = dict(samples)
    rows = np.arange(feats.shape[0])[:, None]
    for k in _STATE_SITES:
        if k in out:
            out[k] = np.asarray(out[k])[rows, perms]
    return out


def _dims(spec: _Spec) -> dict:
    d = {
        "initial_probs": ["state"],
        "emission_probs": ["state", "symbol"],
        "means_ordered": ["state"],
        "means_rest": ["state", "dim_rest"],
        "means": ["state", "dim"],
        "stddevs": ["dim"],
        "corr_cholesky": ["dim", "dim_"],
        "cov": ["dim", "dim_"],
        "cue_means": ["switch"] + ([] if spec.cue_dim is None else ["cue_dim"]),
        "cue_scale": [] if spec.cue_dim is None else ["cue_dim"],
    }
    return {k: v for k, v in d.items() if v}


def _summary_vars(spec: _Spec) -> list[str]:
    names = ["initial_probs"] if spec.num_states > 1 else []
    names.append("switch_prob")
    names += ["emission_probs"] if spec.emission == "categorical" else ["means", "cov"]
    names += ["cue_means", "cue_scale"] if spec.cue else []
    return names


# --------------------------------------------------------------------------------------
# NUTS


class BayesFit(NamedTuple):
    """Output of :func:`fit_nuts`.

    Attributes:
        idata: :class:`arviz.InferenceData` (posterior with relabeled draws, sample_stats).
        samples: ``{site: (num_chains * num_samples, ...)}`` posterior draws (relabeled for
            the categorical emission), chain-major.
        summary: :func:`arviz.summary` of the model's parameters (``mean``, ``sd``, HDI,
            ``ess_bulk``, ``ess_tail``, ``r_hat``) as a pandas DataFrame.
    """

    idata: Any
    samples: dict
    summary: Any


def _check_key(key):
    if key is None:
        raise ValueError("`key` (a jax.random PRNG key) is required")
    try:
        jax.random.split(key)
    except Exception as exc:
        raise ValueError(f"`key` must be a jax.random PRNG key, got {key!r}") from exc


def fit_nuts(
    y,
    u=None,
    *,
    num_states: int,
    emission: str = "categorical",
    num_symbols: int | None = None,
    gated: bool = False,
    cue: bool = False,
    lengths=None,
    priors: Priors = Priors(),  # noqa: B008 - immutable
    num_warmup: int = 500,
    num_samples: int = 500,
    num_chains: int = 2,
    chain_method: str = "sequential",
    target_accept_prob: float = 0.8,
    relabel: bool = True,
    key: PRNGKeyArray,
    progress: bool = True,
) -> BayesFit:
    """Posterior over the global parameters by NUTS, the discrete chain marginalized exactly.

    Runs :func:`bayesian_switching_model` with :class:`numpyro.infer.NUTS`. On CPU, chains
    run one after another (``"sequential"``, the default) or batched in one program
    (``"vectorized"``); ``"parallel"`` needs one device per chain. Compilation dominates small
    problems: NumPyro 0.22 compiles the sampler once per sequential chain, but the one
    vectorized program is larger; on 2 CPU cores (K=2, T=400, 2 chains of 300 + 300) the
    sequential run took about 19 s of CPU time and the vectorized one about 24 s.

    Args:
        y, u, num_states, emission, num_symbols, gated, cue, lengths, priors: as in
            :func:`bayesian_switching_model`.
        num_warmup, num_samples: warm-up (adaptation) and kept iterations per chain.
        num_chains: independent chains (>= 2 for a meaningful ``r_hat``).
        chain_method: ``"sequential"``, ``"vectorized"`` or ``"parallel"``.
        target_accept_prob: NUTS step-size adaptation target in ``(0, 1)``.
        relabel: for the categorical emission with ``K >= 2``, relabel draws after sampling
            (pivotal relabeling, module docstring). The Gaussian emission is identified by
            ordering in the model and is never relabeled.
        key: a PRNG key.
        progress: show NumPyro's progress bar.

    Returns:
        :class:`BayesFit`.

    Example:
        >>> import jax, numpy as np
        >>> from switchssm.models import SwitchingParams, CategoricalEmission, sample
        >>> B = np.array([[0.9, 0.1], [0.1, 0.9]])
        >>> p = SwitchingParams(np.array([0.5, 0.5]), 0.05, CategoricalEmission(B))
        >>> y, _, _, _ = sample(jax.random.PRNGKey(0), p, 100)
        >>> fit = fit_nuts(y, num_states=2, num_warmup=50, num_samples=50,
        ...                key=jax.random.PRNGKey(0), progress=False)
        >>> lo, hi = np.quantile(fit.samples["switch_prob"], [0.05, 0.95])
        >>> bool(lo < 0.05 < hi)  # the 90% interval covers the true rho
        True
    """
    spec, data = _prepare(
        y, u, num_states=num_states, emission=emission, num_symbols=num_symbols,
        gated=gated, cue=cue, priors=priors, lengths=lengths,
    )  # fmt: skip
    num_warmup = _check_int(num_warmup, "num_warmup", 0)
    num_samples = _check_int(num_samples, "num_samples", 1)
    num_chains = _check_int(num_chains, "num_chains", 1)
    if chain_method not in _CHAIN_METHODS:
        raise ValueError(f"`chain_method` must be one of {_CHAIN_METHODS}, got {chain_method!r}")
    if not isinstance(target_accept_prob, float | int) or not 0 < target_accept_prob < 1:
        raise ValueError(f"`target_accept_prob` must lie in (0, 1), got {target_accept_prob!r}")
    _check_key(key)

    model = functools.partial(_model, spec, data)
    # NumPyro's model path runs the model op by op to initialize (and arviz.from_numpyro runs
    # it again): on CPU that compiles hundreds of tiny programs, more time than the sampling
    # of a small problem. Instead: site shapes by abstract evaluation, NumPyro's own
    # potential_energy / constrain_fn under jit, and init_to_uniform's rule done by hand.
    k_init, k_run = jax.random.split(key)
    shapes = _latent_shapes(model)
    flat = jax.random.uniform(
        k_init, (num_chains, sum(math.prod(s) for s in shapes.values())), minval=-2.0, maxval=2.0
    )
    init, start = {}, 0
    for name, shape in shapes.items():
        n = math.prod(shape)
        init[name] = flat[:, start : start + n].reshape((num_chains, *shape))
        start += n
    if num_chains == 1:
        init = {k: v[0] for k, v in init.items()}
    potential = jax.jit(functools.partial(numpyro.infer.util.potential_energy, model, (), {}))
    mcmc = numpyro.infer.MCMC(
        numpyro.infer.NUTS(potential_fn=potential, target_accept_prob=float(target_accept_prob)),
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        chain_method=chain_method,
        progress_bar=progress,
    )
    mcmc.run(
        k_run,
        init_params=init,
        extra_fields=("potential_energy", "diverging", "num_steps", "accept_prob"),
    )
    prior_only = functools.partial(_model, spec, data, likelihood=False)
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
    if relabel and spec.emission == "categorical" and spec.num_states > 1:
        energy = np.asarray(mcmc.get_extra_fields()["potential_energy"])
        samples = _relabel(samples, int(np.argmin(energy)))
    grouped = {k: v.reshape((num_chains, num_samples) + v.shape[1:]) for k, v in samples.items()}
    idata = _arviz.from_mcmc(mcmc, dims=_dims(spec), posterior=grouped)
    return BayesFit(idata, samples, _arviz.summary(idata, var_names=_summary_vars(spec)))


# --------------------------------------------------------------------------------------
# SVI


class SVIFit(NamedTuple):
    """Output of :func:`fit_svi`.

    Attributes:
        params_median: ``{site: value}``, the guide's median of every latent site plus the
            model's deterministic sites (``means``, ``cov``) there; pass it to
            :func:`to_switching_params`.
        losses: ``(num_steps,)`` negative ELBO per step.
        guide: the fitted NumPyro autoguide.
        idata: :class:`arviz.InferenceData` of ``num_posterior_samples`` draws from the guide
            (one chain; deterministic sites included).
        guide_params: the optimized guide parameters (for ``guide.sample_posterior``).
    """

    params_median: dict
    losses: Any
    guide: Any
    idata: Any
    guide_params: dict


def fit_svi(
    y,
    u=None,
    *,
    num_states: int,
    emission: str = "categorical",
    num_symbols: int | None = None,
    gated: bool = False,
    cue: bool = False,
    lengths=None,
    priors: Priors = Priors(),  # noqa: B008 - immutable
    guide: str = "auto_normal",
    num_steps: int = 2000,
    learning_rate: float = 0.01,
    num_particles: int = 1,
    num_posterior_samples: int = 1000,
    key: PRNGKeyArray,
    progress: bool = True,
) -> SVIFit:
    """Variational posterior over the globals: ``Trace_ELBO`` on the marginalized model.

    The discrete chain is summed out exactly inside the model, so the plain ``Trace_ELBO``
    is the ELBO of the marginal model (``TraceEnum_ELBO`` is neither needed nor trusted:
    ``pitfalls.md``). The guide is Gaussian in the unconstrained space: ``"auto_normal"``
    (mean field, :class:`numpyro.infer.autoguide.AutoNormal`) or ``"auto_mvn"`` (full rank,
    :class:`~numpyro.infer.autoguide.AutoMultivariateNormal`); the optimizer is Adam from
    optax. SVI picks one of the ``K!`` symmetric modes (labels are arbitrary; match them
    before comparing with other fits).

    Args:
        y, u, num_states, emission, num_symbols, gated, cue, lengths, priors: as in
            :func:`bayesian_switching_model`.
        guide: ``"auto_normal"`` or ``"auto_mvn"``.
        num_steps: optimization steps.
        learning_rate: Adam step size.
        num_particles: Monte Carlo samples per ELBO estimate.
        num_posterior_samples: draws from the fitted guide stored in ``idata``.
        key: a PRNG key.
        progress: show the progress bar.

    Returns:
        :class:`SVIFit`.

    Example:
        >>> import jax, numpy as np
        >>> from switchssm.models import SwitchingParams, CategoricalEmission, sample
        >>> B = np.array([[0.9, 0.1], [0.1, 0.9]])
        >>> p = SwitchingParams(np.array([0.5, 0.5]), 0.05, CategoricalEmission(B))
        >>> y, _, _, _ = sample(jax.random.PRNGKey(0), p, 100)
        >>> fit = fit_svi(y, num_states=2, num_steps=1000, key=jax.random.PRNGKey(0),
        ...               progress=False)
        >>> rho = float(to_switching_params(fit.params_median).switch_prob)
        >>> bool(abs(rho - 0.05) < 0.05)  # the true rho is 0.05
        True
    """
    spec, data = _prepare(
        y, u, num_states=num_states, emission=emission, num_symbols=num_symbols,
        gated=gated, cue=cue, priors=priors, lengths=lengths,
    )  # fmt: skip
    if guide not in _GUIDES:
        raise ValueError(f"`guide` must be one of {_GUIDES}, got {guide!r}")
    num_steps = _check_int(num_steps, "num_steps", 1)
    num_particles = _check_int(num_particles, "num_particles", 1)
    num_posterior_samples = _check_int(num_posterior_samples, "num_posterior_samples", 1)
    if (
        isinstance(learning_rate, bool)
        or not isinstance(learning_rate, float | int)
        or not (math.isfinite(learning_rate) and learning_rate > 0)
    ):
        raise ValueError(f"`learning_rate` must be a positive number, got {learning_rate!r}")
    _check_key(key)

    from numpyro.infer import SVI, Predictive, Trace_ELBO, autoguide

    model = functools.partial(_model, spec, data)
    # Post-processing, and the guide's set-up (which runs its model op by op), use the model
    # without its likelihood factor: same latent sites, no forward pass.
    prior_only = functools.partial(_model, spec, data, likelihood=False)
    Guide = autoguide.AutoNormal if guide == "auto_normal" else autoguide.AutoMultivariateNormal
    g = Guide(prior_only)
    optim = numpyro.optim.optax_to_numpyro(optax.adam(float(learning_rate)))
    svi = SVI(model, g, optim, Trace_ELBO(num_particles=num_particles))
    k_fit, k_post = jax.random.split(key)
    result = svi.run(k_fit, num_steps, progress_bar=progress)
    gparams = result.params

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
    idata = _arviz.from_samples(draws, num_chains=1, dims=_dims(spec))
    return SVIFit(median, np.asarray(result.losses), g, idata, gparams)


save_inference_data = _arviz.save_inference_data
load_inference_data = _arviz.load_inference_data

__all__ = [
    "BayesFit",
    "Priors",
    "SVIFit",
    "bayesian_switching_model",
    "fit_nuts",
    "fit_svi",
    "load_inference_data",
    "save_inference_data",
    "to_switching_params",
]
