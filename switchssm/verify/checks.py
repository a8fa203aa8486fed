"""The check runner: every identity and approximation the toolkit claims, measured.

Each claim (docs/theory.md, the cell-to-model table of section 5 and the facts it rests on)
is computed on both sides by a function returning :class:`Check` rows;
:func:`run_all_checks` runs them all (``switchssm verify``, the demo, the tests) and
:func:`format_table` prints them.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from switchssm._docstrings import fill_doc
from switchssm._markdown import markdown_table

__all__ = [
    "Check",
    "exact_inference_checks",
    "format_table",
    "max_abs_error",
    "naive_bayes_checks",
    "tolerance",
    "vmp_checks",
]


class Check(NamedTuple):
    """One verified statement.

    Attributes:
        name: short identifier, e.g. ``"gated/minGRU-positive"``.
        statement: the claim in words.
        kind: ``"exact"`` (must hold to floating-point precision) or ``"approximate"``
            (a gap that is measured and reported).
        metric: what ``error`` measures, e.g. ``"max abs error"`` or ``"mean KL (nats)"``.
        error: the measured value.
        tolerance: the bound an exact identity must meet (``None`` for approximations).
    """

    name: str
    statement: str
    kind: str
    metric: str
    error: float
    tolerance: float | None = None

    @property
    def passed(self) -> bool:
        """Exact checks pass when ``error <= tolerance``; approximations always report."""
        if self.kind == "exact":
            return bool(self.error <= (self.tolerance if self.tolerance is not None else 1e-8))
        return bool(self.error == self.error)  # not NaN

    def as_dict(self) -> dict:
        d = self._asdict()
        d["passed"] = self.passed
        return d


def tolerance(tol64: float, tol32: float) -> float:
    """The tolerance of an exact identity at the active float precision (x64 or not)."""
    return tol64 if jnp.result_type(float) == jnp.float64 else tol32


def max_abs_error(a, b) -> float:
    r"""The largest absolute difference :math:`\max_i |a_i - b_i|` of two arrays.

    The error metric of the ``"max abs error"`` rows and of the notebooks' identities.

    Args:
        a, b: arrays (or anything :func:`numpy.asarray` takes) of broadcastable shapes.

    Returns:
        the maximum as a Python float.

    Example:
        >>> max_abs_error([1.0, 2.0, 3.0], [1.0, 2.5, 2.0])
        1.0
    """
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


#: The argument and result of every seeded check function (filled into their docstrings).
SEEDED_CHECKS = """\
Args:
    seed: seed of every random draw.

Returns:
    list of :class:`~switchssm.verify.Check`."""


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def format_table(rows: list[Check]) -> str:
    """A Markdown table of checks: identity, kind, metric, value, pass/fail."""
    return markdown_table(
        [
            {
                "check": c.name,
                "statement": c.statement,
                "kind": c.kind,
                "metric": c.metric,
                "value": f"{c.error:.3g}",
                "result": ("pass" if c.passed else "FAIL") if c.kind == "exact" else "reported",
            }
            for c in rows
        ]
    )


@fill_doc(SEEDED_CHECKS, "{seeded_checks}")
def exact_inference_checks(seed: int = 0) -> list[Check]:
    """Exact filter/smoother vs brute-force enumeration of all paths (T = 4, K = 3).

    {seeded_checks}
    """
    import jax

    from switchssm.inference import smooth
    from switchssm.models import CategoricalEmission
    from switchssm.models import GaussianCue
    from switchssm.models import GaussianEmission
    from switchssm.models import SwitchingParams
    from switchssm.models import sample
    from switchssm.verify.brute_force import brute_force

    rows = []
    r = _rng(seed)
    for gated in (False, True):
        for kind in ("categorical", "gaussian"):
            pi = r.dirichlet(np.ones(3) * 2)
            if kind == "categorical":
                em = CategoricalEmission(r.dirichlet(np.ones(4), size=3))
            else:
                em = GaussianEmission(r.normal(size=(3, 2)), np.eye(2) * 0.8)
            params = SwitchingParams(pi, 0.3, em, GaussianCue(np.array([0.0, 1.0]), 0.7), gated)
            y, u, _, _ = sample(jax.random.PRNGKey(seed), params, 4)
            ref = brute_force(params, y, u)
            errs = []
            for mode in ("sequential", "parallel"):
                post = smooth(params, y, u, mode=mode)._asdict()
                errs += [float(np.max(np.abs(np.asarray(post[k]) - ref[k]))) for k in ref]
            name = f"exact/{'gated' if gated else 'always'}-{kind}"
            rows.append(
                Check(
                    name,
                    "forward-backward (sequential and parallel) = enumeration of all paths",
                    "exact",
                    "max abs error",
                    max(errs),
                    1e-9,
                )
            )
    return rows


@fill_doc(SEEDED_CHECKS, "{seeded_checks}")
def naive_bayes_checks(seed: int = 0) -> list[Check]:
    """Naive Bayes <-> log-linear maps reproduce the Bayes posterior (docs/theory.md section 1).

    {seeded_checks}
    """
    import jax.numpy as jnp
    from jax.scipy.special import logsumexp
    from jax.scipy.stats import multivariate_normal

    from switchssm.bridges import naive_bayes as nb

    r = _rng(seed)
    C, V, D = 3, 5, 2
    prior = r.dirichlet(np.ones(C))
    B = r.dirichlet(np.ones(V), size=C)
    sm = nb.categorical_nb_to_softmax(prior, B)
    direct = np.log(prior)[None, :] + np.log(B).T  # (V, C)
    direct = np.exp(direct - logsumexp(direct, axis=1, keepdims=True))
    err_cat = float(np.max(np.abs(np.asarray(sm.posterior(jnp.eye(V))) - direct)))

    means = r.normal(size=(C, D))
    A = r.normal(size=(D, D))
    S = A @ A.T + 0.5 * np.eye(D)
    x = r.normal(size=(50, D)) * 2
    lin = nb.gaussian_nb_to_softmax(prior, means, S)
    lj = np.stack([multivariate_normal.logpdf(x, m, S) for m in means], -1) + np.log(prior)
    post = np.exp(lj - logsumexp(lj, axis=1, keepdims=True))
    err_gauss = float(np.max(np.abs(np.asarray(lin.posterior(x)) - post)))

    inv = nb.softmax_to_gaussian_nb(lin.weights, lin.bias)
    err_inv = float(np.max(np.abs(np.asarray(inv.posterior(x)) - post)))

    covs = np.stack([S, 2.0 * S + np.eye(D), 0.5 * S])
    quad = nb.gaussian_nb_unequal_to_quadratic(prior, means, covs)
    lq = np.stack(
        [multivariate_normal.logpdf(x, m, c) for m, c in zip(means, covs, strict=True)], -1
    ) + np.log(prior)
    pq = np.exp(lq - logsumexp(lq, axis=1, keepdims=True))
    err_quad = float(np.max(np.abs(np.asarray(quad.posterior(x)) - pq)))
    # the best one can do with a linear map fitted to shared-cov means: report the gap
    lin_wrong = nb.gaussian_nb_to_softmax(prior, means, S)
    gap = float(np.max(np.abs(np.asarray(lin_wrong.posterior(x)) - pq)))
    return [
        Check(
            "naive-bayes/categorical",
            "W = log B, b = log P(c) gives P(c|y)",
            "exact",
            "max abs error",
            err_cat,
            1e-10,
        ),
        Check(
            "naive-bayes/gaussian",
            "shared-cov Gaussian NB = softmax regression",
            "exact",
            "max abs error",
            err_gauss,
            1e-10,
        ),
        Check(
            "naive-bayes/inverse",
            "canonical inverse reproduces the posterior",
            "exact",
            "max abs error",
            err_inv,
            1e-10,
        ),
        Check(
            "naive-bayes/quadratic",
            "unequal covariances: explicit quadratic map",
            "exact",
            "max abs error",
            err_quad,
            1e-10,
        ),
        Check(
            "naive-bayes/unequal-linear",
            "unequal covariances: a linear map is wrong",
            "approximate",
            "max abs posterior error",
            gap,
        ),
    ]


@fill_doc(SEEDED_CHECKS, "{seeded_checks}")
def vmp_checks(seed: int = 0) -> list[Check]:
    """Variational message passing with Q(z)Q(s|z) (docs/theory.md, fact 2.5).

    {seeded_checks}
    """
    import jax
    from jax.scipy.special import expit
    from jax.scipy.special import logit
    from jax.scipy.stats import norm

    from switchssm.inference import filter as exact_filter
    from switchssm.inference import vmp_filter
    from switchssm.inference import vmp_smooth
    from switchssm.models import CategoricalEmission
    from switchssm.models import GaussianCue
    from switchssm.models import SwitchingParams
    from switchssm.models import sample

    r = _rng(seed)
    pi = r.dirichlet(np.ones(3) * 2)
    B = r.dirichlet(np.ones(4), size=3)
    cue = GaussianCue(np.array([0.0, 1.5]), 0.8)
    gated = SwitchingParams(pi, 0.2, CategoricalEmission(B), cue, gated=True)
    y, u, _, _ = sample(jax.random.PRNGKey(seed + 1), gated, 200)
    ex = exact_filter(gated, y, u)
    v = vmp_filter(gated, y, u)
    err_gated = max(
        abs(float(v.elbo - ex.log_likelihood)),
        float(np.max(np.abs(np.asarray(v.filtered_s - ex.filtered_s)))),
    )
    always = gated.replace(gated=False)
    y2, u2, _, _ = sample(jax.random.PRNGKey(seed + 2), always, 200)
    dropped = vmp_filter(always, y2, u2, drop_s_term=True)
    gate = expit(logit(0.2) + norm.logpdf(u2, 1.5, 0.8) - norm.logpdf(u2, 0.0, 0.8))
    err_gate = float(np.max(np.abs(np.asarray(dropped.filtered_z) - np.asarray(gate))))
    ex2 = exact_filter(always, y2, u2)
    sm = vmp_smooth(always, y2, u2)
    bound = float(ex2.log_likelihood - sm.elbo)
    return [
        Check(
            "vmp/gated-exact",
            "gated model: VMP filter = exact filter, ELBO = log P(x)",
            "exact",
            "max abs error",
            err_gated,
            1e-9,
        ),
        Check(
            "vmp/drop-s-term",
            "dropping the s-term of the Q(z) update = minGRU's gate",
            "exact",
            "max abs error",
            err_gate,
            1e-10,
        ),
        Check(
            "vmp/elbo-bound",
            "always model: ELBO <= log P(x) (violation reported)",
            "exact",
            "nats above log P(x)",
            max(0.0, -bound),
            1e-9,
        ),
        Check(
            "vmp/always-gap",
            "always model: log P(x) - ELBO after smoothing sweeps",
            "approximate",
            "nats",
            bound,
        ),
    ]
