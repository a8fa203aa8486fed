r"""The Bayesian switching model: priors over the globals, the chain summed out exactly.

The discrete chain :math:`(s_t, z_t)` is summed out by the :math:`O(TK)` forward pass of
:mod:`switchssm.inference` (:func:`~switchssm.inference.batch.log_likelihoods`), added to the
joint as one ``numpyro.factor``. No NumPyro enumeration is involved (its enumerated scans are
slow and ``TraceEnum_ELBO`` over them has returned wrong values silently; see
``docs/numerics.md``), so plain ``NUTS`` (:func:`~switchssm.fit.fit_nuts`) and ``Trace_ELBO``
(:func:`~switchssm.fit.fit_svi`) apply. The target is

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
  relabeling, :func:`relabel`): the draw of highest joint density is the pivot and every
  draw's states are permuted (Hungarian assignment, :func:`scipy.optimize.linear_sum_assignment`)
  to minimize the squared distance of its ``(emission row, pi_k)`` features to the pivot's.
  ArviZ diagnostics are computed on the relabeled draws.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import gammaln
from numpyro.distributions import constraints
from numpyro.distributions.transforms import biject_to
from scipy.optimize import linear_sum_assignment

from switchssm import _validation as V
from switchssm._docstrings import fill_doc
from switchssm.fit._spec import BAYES_ARGS
from switchssm.fit._spec import FitSpec
from switchssm.fit._spec import prepare
from switchssm.fit.priors import Prior
from switchssm.inference.batch import log_likelihoods
from switchssm.inference.exact import log_likelihood
from switchssm.models.params import CategoricalEmission
from switchssm.models.params import GaussianCue
from switchssm.models.params import GaussianEmission
from switchssm.models.params import SwitchingParams
from switchssm.sequences import Sequences
from switchssm.types import PRNGKeyArray

__all__ = [
    "bayesian_switching_model",
    "marginal_switching_model",
    "site_values",
    "to_switching_params",
]


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


def _sample_globals(spec: FitSpec, pr: Prior) -> SwitchingParams:
    K = spec.num_states
    if K == 1:
        pi = jnp.ones((1,), jnp.result_type(float))
    else:
        pi = numpyro.sample(
            "initial_probs", dist.Dirichlet(jnp.full((K,), float(pr.initial_concentration)))
        )
    rho = numpyro.sample("switch_prob", dist.Beta(*pr.switch_beta))
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
    if spec.cue is not None:
        shape = (2,) if spec.cue == "scalar" else (2, spec.cue_dim)
        cm = numpyro.sample(
            "cue_means",
            dist.Normal(float(pr.cue_mean_loc), float(pr.cue_mean_scale))
            .expand(list(shape))
            .to_event(len(shape)),
        )
        sshape = () if spec.cue == "scalar" else (spec.cue_dim,)
        cs = numpyro.sample(
            "cue_scale",
            dist.HalfNormal(float(pr.cue_scale_scale)).expand(list(sshape)).to_event(len(sshape)),
        )
        cue = GaussianCue(cm, cs)
    return SwitchingParams(pi, rho, em, cue, gated=spec.gated)


def model(spec: FitSpec, prior: Prior, data: Sequences, likelihood: bool = True):
    """The NumPyro model on validated, padded data (``likelihood=False``: priors and
    deterministic sites only, for post-processing draws)."""
    params = _sample_globals(spec, prior)
    if likelihood:
        numpyro.factor("log_likelihood", jnp.sum(log_likelihoods(params, data)))


def prepare_bayes(y, u, *, num_states, emission, num_symbols, gated, cue, prior, lengths):
    """Validated ``(spec, data)`` for the Bayesian model (before any jit)."""
    if not isinstance(prior, Prior):
        raise ValueError(f"`prior` must be a Prior, got {type(prior).__name__}")
    data, spec = prepare(
        y, u, num_states=num_states, emission=emission, gated=gated, cue=cue,
        lengths=lengths, num_symbols=num_symbols,
    )  # fmt: skip
    if spec.emission == "categorical" and num_symbols is None and spec.num_symbols < 2:
        spec = spec._replace(num_symbols=2)  # a Dirichlet over one symbol is degenerate
    return spec, data


class BayesSetup(NamedTuple):
    """What NUTS and SVI start from (:func:`prepare_fit`)."""

    spec: FitSpec
    data: Sequences
    key: PRNGKeyArray
    model: Callable  # :func:`model` on the data, with its likelihood factor
    prior_only: Callable  # the same latent sites without the likelihood (post-processing)


def prepare_fit(y, u, *, prior, init, key, **options) -> BayesSetup:
    """The shared set-up of :func:`~switchssm.fit.fit_nuts` and :func:`~switchssm.fit.fit_svi`
    (before any jit): the data, the structure ``options`` and ``prior``
    (:func:`prepare_bayes`), ``key`` (a PRNG key or an integer seed), ``init`` (if given,
    :func:`check_init`), and the model on the data with and without its likelihood factor."""
    spec, data = prepare_bayes(y, u, prior=prior, **options)
    key = V.as_key(key)
    if init is not None:
        check_init(init, spec)
    return BayesSetup(
        spec,
        data,
        key,
        functools.partial(model, spec, prior, data),
        functools.partial(model, spec, prior, data, likelihood=False),
    )


_total_log_likelihood_jit = jax.jit(lambda p, d: log_likelihoods(p, d).sum())


def total_log_likelihood(params: SwitchingParams, data: Sequences) -> float:
    """:math:`\\sum_n \\log P(x^{(n)} \\mid \\theta)` at ``params`` (one compiled program): the
    log-likelihood a :class:`~switchssm.fit.BayesFit` reports."""
    return float(_total_log_likelihood_jit(params, data))


def _unchecked(y, u, num_states, emission, num_symbols, gated, cue, lengths):
    """Spec and data from shapes alone, for traced observations (nothing is checked)."""
    gaussian = emission == "gaussian"
    if not gaussian and num_symbols is None:
        raise ValueError("`num_symbols` is required when `y` is traced (it cannot be inferred)")
    step = int(gaussian)
    if jnp.ndim(y) == 1 + step:  # one sequence
        y = y[None]
        u = None if u is None else u[None]
    per_step = jnp.ndim(y) - 1 - step
    cue_kind = None if u is None else ("scalar" if jnp.ndim(u) == per_step + 1 else "vector")
    spec = FitSpec(
        int(num_states),
        emission,
        0 if gaussian else int(num_symbols),
        int(jnp.shape(y)[-1]) if gaussian else 0,
        bool(gated),
        cue_kind,
        0 if u is None else (1 if cue_kind == "scalar" else int(jnp.shape(u)[-1])),
    )
    N, T = jnp.shape(y)[:2]
    lens = jnp.full((N,), T) if lengths is None else jnp.asarray(lengths)
    return spec, Sequences(y, u, lens, jnp.arange(T)[None, :] < lens[:, None])


@fill_doc(BAYES_ARGS, "{bayes_args}")
def bayesian_switching_model(
    y,
    u=None,
    *,
    num_states: int,
    emission: str = "categorical",
    num_symbols: int | None = None,
    gated: bool = False,
    cue: bool | str | None = None,
    prior: Prior = Prior(),  # noqa: B008 - immutable
    lengths=None,
):
    """NumPyro model: globals from a :class:`~switchssm.fit.Prior`, the chain marginalized.

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
        {bayes_args}

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
        spec, data = prepare_bayes(
            y, u, num_states=num_states, emission=emission, num_symbols=num_symbols,
            gated=gated, cue=cue, prior=prior, lengths=lengths,
        )  # fmt: skip
    else:  # traced data (jit_model_args=True): no validation, shapes only
        spec, data = _unchecked(y, u, num_states, emission, num_symbols, gated, cue, lengths)
    model(spec, prior, data)


def marginal_switching_model(params: SwitchingParams, y, u=None):
    """NumPyro model whose only site is the exact marginal likelihood of ``y`` (and ``u``).

    Adds ``numpyro.factor("log_likelihood", log P(y, u | params))`` computed by the
    :math:`O(TK)` forward pass (:func:`switchssm.inference.log_likelihood`). Wrap it in a
    model that samples the global parameters from priors to run NUTS or SVI with the discrete
    chain marginalized (:func:`bayesian_switching_model` is that model, for many sequences).

    Example:
        >>> import numpy as np
        >>> from numpyro.infer.util import log_density
        >>> from switchssm.models import SwitchingParams, CategoricalEmission
        >>> p = SwitchingParams(np.array([.5, .5]), .1, CategoricalEmission(np.full((2, 2), .5)))
        >>> lp, _ = log_density(marginal_switching_model, (p, np.array([0, 1, 1])), {}, {})
        >>> bool(abs(float(lp) - 3 * np.log(0.5)) < 1e-5)  # every symbol has probability 1/2
        True
    """
    numpyro.factor("log_likelihood", log_likelihood(params, y, u))


def site_values(params: SwitchingParams) -> dict:
    """The model's latent site values at ``params`` (the inverse of
    :func:`to_switching_params`), e.g. to start NUTS or SVI from an EM fit.

    Gaussian states are reordered by their first mean coordinate (the model's ordering).
    """
    v = {"switch_prob": np.asarray(params.switch_prob, np.float64)}
    em = params.emission
    order = np.arange(params.num_states)
    if em.kind == "gaussian":
        means = np.asarray(em.means, np.float64)
        order = np.argsort(means[:, 0], kind="stable")
        means = means[order]
        v["means_ordered"] = means[:, 0]
        if means.shape[1] > 1:
            v["means_rest"] = means[:, 1:]
        cov = np.asarray(em.cov, np.float64)
        sd = np.sqrt(np.diag(cov))
        v["stddevs"] = sd
        if means.shape[1] > 1:
            v["corr_cholesky"] = np.linalg.cholesky(cov / np.outer(sd, sd))
    else:
        v["emission_probs"] = np.asarray(em.probs, np.float64)
    if params.num_states > 1:
        v["initial_probs"] = np.asarray(params.initial_probs, np.float64)[order]
    if params.cue is not None:
        v["cue_means"] = np.asarray(params.cue.means, np.float64)
        v["cue_scale"] = np.asarray(params.cue.scale, np.float64)
    return v


def unconstrained_values(model_fn, values: dict) -> dict:
    """``values`` of the latent sites mapped to NumPyro's unconstrained space (for
    ``init_params``)."""
    tr = numpyro.handlers.trace(numpyro.handlers.seed(model_fn, 0)).get_trace()
    out = {}
    for name, site in tr.items():
        if site["type"] == "sample" and not site["is_observed"]:
            if name not in values:
                raise ValueError(f"`init` gives no value for the site {name!r}")
            out[name] = biject_to(site["fn"].support).inv(jnp.asarray(values[name]))
    return out


def latent_shapes(model) -> dict[str, tuple[int, ...]]:
    """Unconstrained shape of each latent site, by abstract evaluation (nothing compiled)."""

    def unconstrained():
        tr = numpyro.handlers.trace(numpyro.handlers.seed(model, 0)).get_trace()
        return {
            name: biject_to(site["fn"].support).inv(site["value"])
            for name, site in tr.items()
            if site["type"] == "sample" and not site["is_observed"]
        }

    return {k: v.shape for k, v in jax.eval_shape(unconstrained).items()}


def to_switching_params(values: dict, *, gated: bool = False) -> SwitchingParams:
    """Build :class:`~switchssm.models.SwitchingParams` from one draw of the model's sites.

    Args:
        values: ``{site: value}`` for one draw, e.g. the posterior mean of
            :attr:`~switchssm.fit.BayesFit.samples` (the mean of Dirichlet draws stays on the
            simplex; for the Gaussian model use the ``means`` and ``cov`` sites).
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


def relabel(samples: dict, pivot: int) -> dict:
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


def dims(spec: FitSpec) -> dict:
    """ArviZ dimension names of every site."""
    d = {
        "initial_probs": ["state"],
        "emission_probs": ["state", "symbol"],
        "means_ordered": ["state"],
        "means_rest": ["state", "dim_rest"],
        "means": ["state", "dim"],
        "stddevs": ["dim"],
        "corr_cholesky": ["dim", "dim_"],
        "cov": ["dim", "dim_"],
        "cue_means": ["switch"] + (["cue_dim"] if spec.cue == "vector" else []),
        "cue_scale": ["cue_dim"] if spec.cue == "vector" else [],
    }
    return {k: v for k, v in d.items() if v}


def summary_vars(spec: FitSpec) -> list[str]:
    """The model's parameters (not internal coordinates), for :func:`arviz.summary`."""
    names = ["initial_probs"] if spec.num_states > 1 else []
    names.append("switch_prob")
    names += ["emission_probs"] if spec.emission == "categorical" else ["means", "cov"]
    names += ["cue_means", "cue_scale"] if spec.cue is not None else []
    return names


def check_init(init, spec: FitSpec) -> None:
    """``init`` is a :class:`~switchssm.models.SwitchingParams` of the model being fitted."""
    if not isinstance(init, SwitchingParams):
        raise ValueError(f"`init` must be a SwitchingParams or None, got {type(init).__name__}")
    em = init.emission
    got = (
        init.num_states,
        em.kind,
        em.num_symbols if em.kind == "categorical" else em.dim,
        init.gated,
        None if init.cue is None else ("scalar" if init.cue.is_scalar else "vector"),
    )
    want = (
        spec.num_states,
        spec.emission,
        spec.num_symbols if spec.emission == "categorical" else spec.dim,
        spec.gated,
        spec.cue,
    )
    names = ("num_states", "emission", "symbols/dimension", "gated", "cue")
    for name, g, w in zip(names, got, want, strict=True):
        if g != w:
            raise ValueError(f"`init` has {name} {g!r} but the model being fitted has {w!r}")
    if init.cue is not None and init.cue.dim != spec.cue_dim:
        raise ValueError(f"`init.cue` has dimension {init.cue.dim} but `u` has {spec.cue_dim}")
