"""The cell-to-model table of docs/theory.md section 5, measured (categorical-latent rows).

Each row builds a cell's weights from a random switching model, runs the cell and the exact
filter (:func:`switchssm.inference.filter`) on data sampled from the model, and reports
the error as a :class:`~switchssm.verify.Check`: ``"exact"`` rows the max abs
error of the belief over ``s_t`` (held to ``1e-9``, computed in float64), ``"approximate"``
rows the mean over steps of ``KL(exact filter || cell belief)`` in nats. Rows with bilinear
cells (input-driven HMM, finite-state machines) and the Gaussian-latent row live elsewhere.

"Hard gates" means a cue separation ``d = |m_1 - m_0| / tau = 60``: the gate logit is
about ``+-1800``, so ``g_t`` is 0 or 1 to the last bit, in the cell and in the filter.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from switchssm.bridges import AlwaysEmittingWarning
from switchssm.bridges import cumulative_evidence
from switchssm.bridges import evidence_attention
from switchssm.bridges import factorial_mingru_from_models
from switchssm.bridges import factorial_model_inputs
from switchssm.bridges import factorial_posterior
from switchssm.bridges import mingru_from_model
from switchssm.bridges import mingru_posterior
from switchssm.bridges import model_inputs
from switchssm.bridges import selective_from_model
from switchssm.bridges import selective_posterior
from switchssm.inference import filter as exact_filter
from switchssm.models import CategoricalEmission
from switchssm.models import GaussianCue
from switchssm.models import GaussianEmission
from switchssm.models import SwitchingParams
from switchssm.verify.checks import Check
from switchssm.verify.checks import max_abs_error

__all__ = [
    "cell_model_table",
]

EXACT_TOL = 1e-9
SOFT_SEPARATION = 1.5  # d = |m1 - m0| / tau: gates well inside (0, 1)
HARD_SEPARATION = 60.0  # gate logits ~ +-1800: g in {0, 1} to the last bit


# ---------------------------------------------------------------------------------------
# Random models
# ---------------------------------------------------------------------------------------


def _scalar_cue(separation: float, tau: float = 0.8) -> GaussianCue:
    return GaussianCue(np.array([-0.5, 0.5]) * separation * tau, tau)


def _categorical_model(rng, *, K=3, V=4, rho=0.2, separation=SOFT_SEPARATION, gated=True):
    B = rng.dirichlet(np.full(V, 2.0), size=K)
    pi = rng.dirichlet(np.full(K, 3.0))
    cue = None if separation is None else _scalar_cue(separation)
    return SwitchingParams(pi, rho, CategoricalEmission(B), cue=cue, gated=gated)


def _gaussian_model(rng, *, K=3, D=2, Du=2, rho=0.2, gated=True):
    means = rng.normal(size=(K, D)) * 1.5
    A = rng.normal(size=(D, D))
    cov = A @ A.T / D + 0.5 * np.eye(D)
    scale = rng.uniform(0.5, 1.5, size=Du)
    m1 = rng.normal(size=Du)
    m1 = m1 / np.linalg.norm(m1 / scale) * SOFT_SEPARATION  # separation d = SOFT_SEPARATION
    cue = GaussianCue(np.stack([np.zeros(Du), m1]), scale)
    return SwitchingParams(
        rng.dirichlet(np.full(K, 3.0)), rho, GaussianEmission(means, cov), cue=cue, gated=gated
    )


def _sample(rng, params: SwitchingParams, T: int):
    """``(y, u)`` drawn from the switching model with NumPy (no compilation; docs/theory.md 2)."""
    pi = np.asarray(params.initial_probs, dtype=np.float64)
    K = pi.size
    z = rng.random(T) < float(params.switch_prob)
    fresh = rng.choice(K, size=T, p=pi)
    s = np.empty(T, dtype=np.int64)
    prev = rng.choice(K, p=pi)
    for t in range(T):
        prev = s[t] = fresh[t] if z[t] else prev
    # Gated emission: without a switch y comes from Pbar, i.e. from an independent pi-draw.
    emitter = np.where(z, s, rng.choice(K, size=T, p=pi)) if params.gated else s
    em = params.emission
    if isinstance(em, CategoricalEmission):
        cdf = np.cumsum(np.asarray(em.probs, dtype=np.float64), axis=1)[emitter]
        y = np.minimum((rng.random((T, 1)) > cdf).sum(1), cdf.shape[1] - 1)
    else:
        chol = np.linalg.cholesky(np.asarray(em.cov, dtype=np.float64))
        y = np.asarray(em.means)[emitter] + rng.normal(size=(T, em.dim)) @ chol.T
    if params.cue is None:
        return y, None
    m = np.asarray(params.cue.means, dtype=np.float64)[z.astype(np.int64)]
    return y, m + np.asarray(params.cue.scale) * rng.normal(size=m.shape)


# ---------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------


def _mean_kl(p, q) -> float:
    """Mean over rows of ``KL(p || q)`` (nats); rows are distributions over the last axis."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0)
    return float(np.mean(terms.sum(-1)))


def _binary(p1):
    p1 = np.asarray(p1)
    return np.stack([1.0 - p1, p1], axis=-1)


# ---------------------------------------------------------------------------------------
# Rows: each returns (exact belief, cell belief) for one random model and data set
# ---------------------------------------------------------------------------------------


def _run(params, data_rng, T, cell_belief: Callable):
    y, u = _sample(data_rng, params, T)
    return exact_filter(params, y, u).filtered_s, cell_belief(params, y, u)


def _mingru(space):
    def run(p, y, u):
        with warnings.catch_warnings():  # the always-emitting rows measure the approximation
            warnings.simplefilter("ignore", AlwaysEmittingWarning)
            bridge = mingru_from_model(p, space=space)
        return mingru_posterior(bridge, model_inputs(p, y, u))

    return run


def _selective(p, y, u):
    return selective_posterior(selective_from_model(p), model_inputs(p, y, u))


def _gated_categorical(rng, data_rng, T):
    return _run(_categorical_model(rng), data_rng, T, _mingru("log"))


def _gated_gaussian(rng, data_rng, T):
    return _run(_gaussian_model(rng), data_rng, T, _mingru("log"))


def _logit_hard(rng, data_rng, T):
    return _run(_categorical_model(rng, separation=HARD_SEPARATION), data_rng, T, _mingru("logit"))


def _logit_soft(rng, data_rng, T):
    return _run(_categorical_model(rng), data_rng, T, _mingru("logit"))


def _always_hard(rng, data_rng, T):
    params = _categorical_model(rng, separation=HARD_SEPARATION, gated=False)
    return _run(params, data_rng, T, _selective)


def _always_soft_selective(rng, data_rng, T):
    return _run(_categorical_model(rng, gated=False), data_rng, T, _selective)


def _always_mingru(rng, data_rng, T):
    return _run(_categorical_model(rng, gated=False), data_rng, T, _mingru("log"))


def _no_switch(readout):
    def row(rng, data_rng, T):
        params = _categorical_model(rng, rho=0.0, separation=None, gated=False)
        return _run(params, data_rng, T, lambda p, y, u: jax.nn.softmax(readout(p, y), axis=-1))

    return row


def _factorial(separation, space):
    def row(rng, data_rng, T):
        models = [
            _categorical_model(rng, K=2, V=3, separation=separation, gated=True) for _ in range(3)
        ]
        data = [_sample(data_rng, m, T) for m in models]
        ys, us = [d[0] for d in data], [d[1] for d in data]
        exact = np.stack(
            [
                exact_filter(m, y, u).filtered_s[:, 1]
                for m, y, u in zip(models, ys, us, strict=True)
            ],
            axis=1,
        )
        bridge = factorial_mingru_from_models(models)
        cell = factorial_posterior(bridge, factorial_model_inputs(models, ys, us), space=space)
        return _binary(exact), _binary(cell)

    return row


_ROWS = (
    (
        "gated-categorical/minGRU-positive",
        "gated emission, categorical y, scalar cue: positive-state minGRU "
        "p_t = (1-g)p_{t-1} + g softmax(W y + b) is the exact filter",
        "exact",
        _gated_categorical,
    ),
    (
        "gated-gaussian/minGRU-positive",
        "gated emission, Gaussian y (shared covariance), vector cue with per-dimension scales: "
        "positive-state minGRU is the exact filter",
        "exact",
        _gated_gaussian,
    ),
    (
        "gated-hard/minGRU-logit",
        "gated emission, hard gates (cue separation 60): logit-state minGRU "
        "h_t = (1-g)h_{t-1} + g(W y + b), softmax(h_t) is the exact filter",
        "exact",
        _logit_hard,
    ),
    (
        "gated-soft/minGRU-logit",
        "gated emission, soft gates (cue separation 1.5): logit-state minGRU pools "
        "geometrically, not the exact filter (gap = mean KL(exact || softmax h))",
        "approximate",
        _logit_soft,
    ),
    (
        "always-hard/selective-SSM",
        "always emitting, hard gates: selective diagonal SSM h_t = (1-g)h_{t-1} + W y "
        "(input not gated), softmax(h_t + log pi) is the exact filter",
        "exact",
        _always_hard,
    ),
    (
        "always-soft/selective-SSM",
        "always emitting, soft gates: the same selective SSM (gap = mean KL)",
        "approximate",
        _always_soft_selective,
    ),
    (
        "always-soft/minGRU-gated-construction",
        "always emitting, soft gates: positive-state minGRU built as for the gated model "
        "(gap = mean KL)",
        "approximate",
        _always_mingru,
    ),
    (
        "no-switch/cumulative-evidence",
        "rho = 0, always emitting: h_t = h_{t-1} + W y_t (naive Bayes over y_1:t) is the "
        "exact filter",
        "exact",
        _no_switch(cumulative_evidence),
    ),
    (
        "no-switch/linear-attention",
        "rho = 0: linear attention's memory S_t = S_{t-1} + phi(k_t) v_t' with "
        "phi(k_t) = T(y_t), v_t = 1, read by queries Q = log B, gives the exact filter",
        "exact",
        _no_switch(evidence_attention),
    ),
    (
        "factorial/minGRU-positive-per-unit",
        "3 independent gated binary chains, soft gates: per-unit-gated positive minGRU "
        "with block-diagonal weights is each chain's exact filter",
        "exact",
        _factorial(SOFT_SEPARATION, "log"),
    ),
    (
        "factorial-hard/minGRU-logit-per-unit",
        "3 independent gated binary chains, hard gates: h_{t,d} is the exact log-odds of s_{t,d}",
        "exact",
        _factorial(HARD_SEPARATION, "logit"),
    ),
)


def _key_bits(key) -> list[int]:
    """The raw bits of a PRNG key (legacy ``uint32`` or typed), to seed NumPy."""
    if key is None:
        return [0, 0]
    key = jnp.asarray(key)
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return [int(b) for b in np.asarray(key).ravel()]


def cell_model_table(
    key: jax.Array | None = None,
    *,
    num_timesteps: int = 64,
    seeds: Sequence[int] = (0, 1),
) -> list[Check]:
    """Every categorical-latent, non-bilinear row of docs/theory.md section 5, measured.

    For each row and seed: draw random parameters (``numpy`` generator ``seed``), sample
    ``num_timesteps`` steps with NumPy (generator seeded by ``key``'s bits and ``seed``:
    no compilation), run the exact filter and the cell
    built from the model, and compare their beliefs over ``s_t``. Exact rows report the max
    abs error over seeds and steps (tolerance ``1e-9``); approximate rows the mean over seeds
    of the mean-over-steps ``KL(exact || cell)`` in nats. Runs in float64 (inside
    ``jax.enable_x64``) whatever the global setting.

    Args:
        key: PRNG key for the data (``PRNGKey(0)`` if ``None``).
        num_timesteps: ``T`` per sequence.
        seeds: parameter seeds; more seeds, more random models per row.

    Returns:
        list of :class:`~switchssm.verify.Check`, one per row.

    Example:
        >>> rows = cell_model_table(num_timesteps=16, seeds=(0,))
        >>> all(r.passed for r in rows)
        True
    """
    if not isinstance(num_timesteps, int | np.integer) or num_timesteps < 1:
        raise ValueError(f"`num_timesteps` must be a positive int, got {num_timesteps!r}")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("`seeds` must hold at least one seed")
    checks = []
    with jax.enable_x64(True):
        key_bits = _key_bits(key)
        for name, statement, kind, row in _ROWS:
            errors = []
            for seed in seeds:
                data_rng = np.random.default_rng([*key_bits, seed])
                exact, cell = row(np.random.default_rng(seed), data_rng, int(num_timesteps))
                errors.append(
                    max_abs_error(exact, cell) if kind == "exact" else _mean_kl(exact, cell)
                )
            if kind == "exact":
                checks.append(Check(name, statement, kind, "max abs error", max(errors), EXACT_TOL))
            else:
                checks.append(
                    Check(name, statement, kind, "mean KL (nats)", float(np.mean(errors)))
                )
    return checks
