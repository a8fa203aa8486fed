r"""One prior over the global parameters, shared by every fitting method.

:class:`Prior` is the prior of the Bayesian model (:func:`~switchssm.fit.fit_nuts`,
:func:`~switchssm.fit.fit_svi`) and, through its conjugate part, the MAP objective of
:func:`~switchssm.fit.fit_em` and :func:`~switchssm.fit.fit_mle` (``prior=None`` there is
plain maximum likelihood).
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np

from switchssm.inference._emissions import log_switch_probs
from switchssm.models.params import SwitchingParams

__all__ = ["FLAT", "Prior", "map_prior"]


@dataclasses.dataclass(frozen=True)
class Prior:
    r"""Priors over :math:`\theta = (\pi, \rho, \text{emission}, \text{cue})` (all overridable).

    Conjugate part (used by NUTS/SVI and, as MAP pseudo-counts, by EM and MLE):

    * :math:`\pi \sim \mathrm{Dirichlet}(\alpha_\pi 1_K)`, ``initial_concentration = 2.0``:
      weak (worth :math:`K` pseudo-counts in all), zero density on the simplex boundary, so
      no state is a priori never visited (a state with :math:`\pi_k \to 0` is never entered
      and leaves its emission unidentified, a funnel for NUTS).
    * categorical emission rows :math:`B_{k\cdot} \sim \mathrm{Dirichlet}(\alpha_B 1_V)`,
      ``emission_concentration = 1.0``: uniform over the simplex.
    * :math:`\rho \sim \mathrm{Beta}(a, b)`, ``switch_beta = (1.0, 9.0)``: prior mean 0.1
      (regimes last about 10 steps a priori), worth only 10 pseudo-steps, so a few hundred
      steps override it. It favours persistent regimes, the case the model is for.

    Gaussian emission and cue (NUTS/SVI only: their MAP is not closed form for EM, so EM
    and MLE ignore them and say so in the fit's metadata):

    * means :math:`\mu_{kd} \sim N(m_0, s_0^2)`, ``mean_loc = 0``, ``mean_scale = 5``, with
      the first coordinate ordered across states (label switching): weakly informative
      for data on unit scale (standardize first);
    * shared covariance :math:`\Sigma = \mathrm{diag}(\sigma) L L^\top \mathrm{diag}(\sigma)`,
      :math:`\sigma_d \sim \mathrm{HalfNormal}(2.5)` (``stddev_scale``),
      :math:`L \sim \mathrm{LKJCholesky}(\eta = 2)` (``lkj_concentration``);
    * cue means :math:`m_z \sim N(0, 5^2)` (``cue_mean_loc``, ``cue_mean_scale``) and
      :math:`\tau \sim \mathrm{HalfNormal}(2.5)` (``cue_scale_scale``).

    MAP (EM, MLE) adds the log density of the conjugate part,
    :math:`(\alpha_\pi - 1)\sum_k \log\pi_k + (\alpha_B - 1)\sum_{kv}\log B_{kv}
    + (a-1)\log\rho + (b-1)\log(1-\rho)`, so each count gets its pseudo-count; it needs
    concentrations :math:`\geq 1` (below 1 the density is unbounded at the simplex boundary
    and the MAP is not attained).

    Example:
        >>> Prior(switch_beta=(1.0, 4.0)).switch_beta
        (1.0, 4.0)
    """

    initial_concentration: float = 2.0
    emission_concentration: float = 1.0
    switch_beta: tuple[float, float] = (1.0, 9.0)
    mean_loc: float = 0.0
    mean_scale: float = 5.0
    stddev_scale: float = 2.5
    lkj_concentration: float = 2.0
    cue_mean_loc: float = 0.0
    cue_mean_scale: float = 5.0
    cue_scale_scale: float = 2.5

    def __post_init__(self):
        sb = self.switch_beta
        if not isinstance(sb, tuple | list | np.ndarray) or np.shape(sb) != (2,):
            raise ValueError(f"`prior.switch_beta` must be a pair (a, b), got {sb!r}")
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        del values["switch_beta"]
        values["switch_beta[0]"], values["switch_beta[1]"] = sb
        for name, v in values.items():
            if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
                raise ValueError(f"`prior.{name}` must be a real number, got {v!r}")
            if not math.isfinite(v):
                raise ValueError(f"`prior.{name}` must be finite, got {v!r}")
            if name not in ("mean_loc", "cue_mean_loc") and v <= 0:
                raise ValueError(f"`prior.{name}` must be strictly positive, got {v!r}")
        for name, v in values.items():
            if "[" not in name:
                object.__setattr__(self, name, float(v))
        object.__setattr__(self, "switch_beta", (float(sb[0]), float(sb[1])))

    def check_map(self, emission: str) -> None:
        """The conjugate part defines a MAP that exists (concentrations >= 1)."""
        a, b = self.switch_beta
        values = {
            "prior.initial_concentration": self.initial_concentration,
            "prior.emission_concentration": self.emission_concentration,
            "prior.switch_beta[0]": a,
            "prior.switch_beta[1]": b,
        }
        for name, v in values.items():
            if v < 1:
                raise ValueError(
                    f"`{name}` must be >= 1 for MAP fitting (the density is unbounded at the "
                    f"boundary below 1, so no MAP exists), got {v}"
                )
        if emission == "gaussian" and self.emission_concentration != 1:
            raise ValueError(
                "`prior.emission_concentration` applies to categorical emissions only; "
                "leave it at 1 for emission='gaussian'"
            )

    def log_density(self, params: SwitchingParams):
        """Unnormalized log density of the conjugate part at ``params`` (MAP objective term;
        terms with concentration 1 are skipped: :math:`0 \\log 0`)."""
        out = jnp.zeros((), params.initial_probs.dtype)
        if self.initial_concentration != 1:
            out += (self.initial_concentration - 1) * jnp.sum(jnp.log(params.initial_probs))
        if self.emission_concentration != 1 and params.emission.kind == "categorical":
            out += (self.emission_concentration - 1) * jnp.sum(jnp.log(params.emission.probs))
        a, b = self.switch_beta
        lr = log_switch_probs(params)
        if a != 1:
            out += (a - 1) * lr[1]
        if b != 1:
            out += (b - 1) * lr[0]
        return out

    def as_dict(self) -> dict:
        """JSON-ready field values (for a fit's metadata)."""
        d = dataclasses.asdict(self)
        d["switch_beta"] = list(d["switch_beta"])
        return d


#: ``prior=None`` in EM and MLE: a flat conjugate part, so the MAP is the maximum likelihood.
FLAT = Prior(initial_concentration=1.0, emission_concentration=1.0, switch_beta=(1.0, 1.0))


def map_prior(prior: Prior | None, emission: str) -> Prior:
    """The prior whose conjugate part EM and MLE add: ``FLAT`` for ``None``, else checked."""
    if prior is None:
        return FLAT
    if not isinstance(prior, Prior):
        raise ValueError(f"`prior` must be a Prior or None, got {type(prior).__name__}")
    prior.check_map(emission)
    return prior
