r"""minGRU as the posterior recursion under high mutual information (docs/theory.md 2.3).

In the gated categorical switching model the exact filter is the positive-state minGRU

.. math::

    p_t = (1 - g_t)\, p_{t-1} + g_t\, q_t, \qquad
    q_t = \operatorname{softmax}(\log\pi + l_t), \qquad p_0 = \pi,

with the cue-only gate :math:`g_t = P(z_t = 1 \mid x_{1:t}) =
\sigma(\operatorname{logit}\rho + \log N(u_t \mid m_1) - \log N(u_t \mid m_0))` and
:math:`l_t(s) = \log P(y_t \mid s)`. The logit-state minGRU pools the same two beliefs
geometrically,

.. math::

    h_t = (1 - g_t)\, h_{t-1} + g_t\, (\log\pi + l_t), \qquad h_0 = \log\pi,

and :math:`\operatorname{softmax}(h_t) = p_t` exactly when every :math:`g_t \in \{0, 1\}`.
The gap is measured as

.. math::

    \mathrm{gap} = \frac{1}{T}\sum_{t=1}^T
        \mathrm{KL}\big(p_t \,\|\, \operatorname{softmax}(h_t)\big)
    \quad\text{(nats)},

averaged over sequences drawn from the model, as a function of the cue separation
:math:`d = |m_1 - m_0| / \tau`, which moves the mutual information :math:`I(u; z)` from 0
(:math:`d = 0`) to :math:`H(z)` (:math:`d \to \infty`).

**What I(u; z) is here.** :func:`cue_mutual_information` is the per-step
:math:`I(u_t; z_t)`. In the gated model :math:`y_t \sim \bar P` whatever :math:`z_t` and the
past, so :math:`I(x_t; z_t) = I(z_t; x_{1:t}) = I(u_t; z_t)`. In the always-emitting model
the single-step :math:`I(x_t; z_t)` is also :math:`I(u_t; z_t)` (the marginal of
:math:`s_t` is :math:`\pi` whatever :math:`z_t`, so :math:`y_t` alone says nothing about
:math:`z_t`), but :math:`I(z_t; x_{1:t}) \ge I(u_t; z_t)`: the history adds information.

**Measured shape of the curve (default model, see** :func:`switchssm.verify.mi_sweep`
**).** The gap is *not*
monotone in :math:`I(u; z)`: it is already positive at :math:`d = 0` (constant gate
:math:`g_t = \rho`, where linear and geometric pooling differ), rises to a peak near
:math:`d \approx 2`-:math:`2.5` in the default model (gates spread over :math:`(0, 1)`), and
only then decays to 0, roughly like :math:`\exp(-c\, d^2)` (so like a power of
:math:`H(z) - I(u; z)`, which decays like :math:`\exp(-d^2/8)` up to polynomial factors).
The sweep reports the peak and fitted rates; the tests check only the decay beyond the peak
and the limits.

**Always-emitting model.** The same logit minGRU (cue-only gate, gated candidate) is *not*
the exact filter there, even with hard gates: with :math:`g_t \in \{0, 1\}` the exact filter is
:math:`\log p_t = (1 - g_t)\log p_{t-1} + g_t \log\pi + l_t + \mathrm{const}`, a selective
diagonal SSM whose input is not gated (docs/theory.md 2, fact 4). The sweep reports both the
minGRU gap (which does not vanish) and the selective-SSM gap (which does).
"""

# ruff: noqa: F722

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from switchssm import _validation as V
from switchssm import scan as _scan
from switchssm.inference.exact import gated_gate_and_candidate
from switchssm.models.params import SwitchingParams
from switchssm.types import Array
from switchssm.types import Float

__all__ = [
    "binary_entropy",
    "cue_mutual_information",
    "logit_mingru_belief",
    "selective_belief",
]


# Quadrature grid for E_{eps ~ N(0,1)}[f(eps)]: the trapezoid rule on [-12, 12] with step h.
# For f analytic in the strip |Im eps| < pi/d (softplus(a + d eps) has poles at
# a + d eps = i pi (2k+1)) its error is O(exp(-2 pi^2 / (d h))); truncation costs at most
# phi(12) * O(d^2 + |logit rho|) ~ 1e-31. With h = 0.01 the rule is accurate to rounding for
# d <= 40 (exp(-49)) and to ~1e-9 of the (already ~exp(-d^2/8)) integrand at d = 100.
_GRID_STEP = 0.01
_GRID_HALF_WIDTH = 12.0


def _gauss_grid(dtype):
    n = int(round(2 * _GRID_HALF_WIDTH / _GRID_STEP)) + 1
    eps = np.linspace(-_GRID_HALF_WIDTH, _GRID_HALF_WIDTH, n)
    w = np.exp(-0.5 * eps**2) / np.sqrt(2 * np.pi) * _GRID_STEP
    return jnp.asarray(eps, dtype), jnp.asarray(w, dtype)


def _xlogx(p):
    return jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0)


def _binary_entropy(rho):
    return -_xlogx(rho) - _xlogx(1.0 - rho)


@jax.jit
def cue_information(rho, d):
    """``(I(u; z), H(z))`` in nats, elementwise over broadcast ``rho`` and ``d`` (jitted, no
    validation: the array form of :func:`cue_mutual_information`)."""
    dtype = jnp.result_type(rho, d, float)
    rho = jnp.asarray(rho, dtype)
    d = jnp.asarray(d, dtype)
    eps, w = _gauss_grid(dtype)
    inner = (rho > 0) & (rho < 1)
    safe = jnp.where(inner, rho, 0.5)
    a = jnp.log(safe) - jnp.log1p(-safe)
    e = eps.reshape((-1,) + (1,) * jnp.ndim(d + rho))
    w = w.reshape(e.shape)
    # Log-likelihood ratio log N(u|m1)/N(u|m0) = d eps + d^2 (z - 1/2) for u = m_z + tau eps
    # along the separation direction; -log P(z | u) = softplus(-+(a + llr)).
    nlp1 = jnp.sum(w * jax.nn.softplus(-(a + d * e + 0.5 * d * d)), axis=0)
    nlp0 = jnp.sum(w * jax.nn.softplus(a + d * e - 0.5 * d * d), axis=0)
    h = _binary_entropy(rho)
    cond = safe * nlp1 + (1.0 - safe) * nlp0  # E[H(z | u)]
    # d = 0: u is independent of z, I = 0 exactly (not H minus its rounded quadrature).
    mi = jnp.where(inner & (d > 0), jnp.clip(h - cond, 0.0, h), 0.0)
    return mi, h


def binary_entropy(switch_prob) -> float:
    r"""Entropy of the switch, :math:`H(z) = -\rho\log\rho - (1-\rho)\log(1-\rho)`, in nats.

    Args:
        switch_prob: :math:`\rho \in [0, 1]`.

    Returns:
        :math:`H(z)` as a float (0 at :math:`\rho \in \{0, 1\}`).

    Example:
        >>> round(binary_entropy(0.5), 6)
        0.693147
    """
    V.check_ndim(switch_prob, "switch_prob", 0, "(a scalar rho)")
    V.check_unit_interval(switch_prob, "switch_prob")
    return float(_binary_entropy(jnp.asarray(switch_prob, jnp.result_type(float))))


def cue_mutual_information(switch_prob, separation) -> float:
    r"""Mutual information :math:`I(u; z)` between the switch and a Gaussian cue, in nats.

    :math:`z \sim \mathrm{Bernoulli}(\rho)`, :math:`u \mid z \sim N(m_z, \tau^2 I)`,
    :math:`d = \lVert m_1 - m_0 \rVert / \tau`. The log-likelihood ratio
    :math:`\lambda(u) = \log N(u|m_1) - \log N(u|m_0)` is
    :math:`N(+d^2/2, d^2)` given :math:`z = 1` and :math:`N(-d^2/2, d^2)` given :math:`z = 0`
    (for any cue dimension), so with :math:`a = \operatorname{logit}\rho`,

    .. math::

        I(u; z) = H(z) - \rho\, E_\varepsilon\big[\operatorname{softplus}(-(a + d\varepsilon
            + d^2/2))\big] - (1-\rho)\, E_\varepsilon\big[\operatorname{softplus}(a +
            d\varepsilon - d^2/2)\big], \quad \varepsilon \sim N(0, 1),

    i.e. :math:`H(z) - E[H(z \mid u)]`. The expectations use a fixed trapezoid rule on
    :math:`[-12, 12]` with step 0.01 (spectrally accurate for these analytic integrands;
    agrees with adaptive ``scipy.integrate.quad`` of the mixture entropy to 1e-12 in float64
    for :math:`d \le 30`). It increases from 0 at :math:`d = 0` to :math:`H(z)` as
    :math:`d \to \infty`.

    In the gated model this equals :math:`I(x_t; z_t)` and :math:`I(z_t; x_{1:t})` (module
    docstring); in the always-emitting model it equals the single-step :math:`I(x_t; z_t)`.

    Args:
        switch_prob: :math:`\rho \in [0, 1]`.
        separation: :math:`d \ge 0`, finite.

    Returns:
        :math:`I(u; z)` as a float, in nats, in :math:`[0, H(z)]`.

    Example:
        >>> cue_mutual_information(0.3, 0.0)
        0.0
        >>> abs(cue_mutual_information(0.5, 40.0) - binary_entropy(0.5)) < 1e-6
        True
    """
    V.check_ndim(switch_prob, "switch_prob", 0, "(a scalar rho)")
    V.check_unit_interval(switch_prob, "switch_prob")
    check_separation(separation, "separation", scalar=True)
    mi, _ = cue_information(jnp.asarray(switch_prob, float), jnp.asarray(separation, float))
    return float(mi)


def check_separation(d, name: str, scalar: bool = False) -> None:
    """Finite, nonnegative cue separations ``d`` (a scalar if ``scalar``); ValueError naming
    ``name`` otherwise."""
    V.check_nonnegative(d, name, "cue separation(s) d = |m1 - m0| / tau", scalar=scalar)


# --------------------------------------------------------------------------------------
# Beliefs


def logit_mingru_belief(params: SwitchingParams, y, u=None) -> Float[Array, "T K"]:
    r"""The logit-state minGRU belief built from the model, :math:`h_t` (``(T, K)``).

    .. math::

        h_t = (1 - g_t)\, h_{t-1} + g_t\, (\log\pi + l_t), \qquad h_0 = \log\pi,

    with the cue-only gate :math:`g_t = \sigma(\operatorname{logit}\rho + \log N(u_t|m_1) -
    \log N(u_t|m_0))` (the exact :math:`P(z_t = 1 \mid x_{1:t})` of the gated model; for the
    always-emitting model the cue-only posterior) and :math:`l_t(s) = \log P(y_t \mid s)`.
    Computed with :func:`switchssm.scan.diagonal_scan`; ``softmax(h_t)`` is the belief.

    Args:
        params: :class:`~switchssm.models.SwitchingParams` (gated or always-emitting).
        y: observations, ``(T,)`` symbols or ``(T, D)`` reals.
        u: cue, required iff ``params.cue`` is set.

    Returns:
        ``(T, K)`` logits :math:`h_t`.

    Example:
        >>> import jax, numpy as np
        >>> from switchssm.models import sample
        >>> from switchssm.verify.high_mi import default_mi_params
        >>> p = default_mi_params(separation=2.0)
        >>> y, u, s, z = sample(jax.random.PRNGKey(0), p, 20)
        >>> logit_mingru_belief(p, y, u).shape
        (20, 3)
    """
    from switchssm.inference import validate_inputs

    validate_inputs(params, y, u)
    return _logit_belief(params, y, u)


def selective_belief(params: SwitchingParams, y, u=None) -> Float[Array, "T K"]:
    r"""The selective diagonal SSM belief (input not gated), :math:`h_t` (``(T, K)``).

    .. math::

        h_t = (1 - g_t)\, h_{t-1} + g_t \log\pi + l_t, \qquad h_0 = \log\pi,

    with the cue-only gate as in :func:`logit_mingru_belief`. In the always-emitting model
    with hard gates (:math:`g_t \in \{0,1\}`) ``softmax(h_t)`` is the exact filter
    (docs/theory.md 2, fact 4).

    Args:
        params: a :class:`~switchssm.models.SwitchingParams`.
        y: ``(T,)`` integer symbols (categorical emission) or ``(T, D)`` reals (Gaussian).
        u: the cue, ``(T,)`` or ``(T, Du)``; required iff ``params.cue`` is set.

    Returns:
        ``(T, K)`` logits.

    Example:
        >>> import jax
        >>> from switchssm.models import sample
        >>> from switchssm.verify.high_mi import default_mi_params
        >>> p = default_mi_params(separation=2.0, gated=False)
        >>> y, u, s, z = sample(jax.random.PRNGKey(0), p, 20)
        >>> selective_belief(p, y, u).shape
        (20, 3)
    """
    from switchssm.inference import validate_inputs

    validate_inputs(params, y, u)
    return _selective_belief(params, y, u)


def _gate_and_loglik(params, y, u):
    g, _, _ = gated_gate_and_candidate(params, y, u)
    ll = params.emission.log_prob(params.emission.prepare(y))
    return g, ll


@jax.jit
def _logit_belief(params, y, u):
    g, ll = _gate_and_loglik(params, y, u)
    log_pi = jnp.log(params.initial_probs).astype(ll.dtype)
    cand = log_pi + ll
    return _scan.diagonal_scan((1.0 - g)[:, None], g[:, None] * cand, log_pi, mode="sequential")


@jax.jit
def _selective_belief(params, y, u):
    g, ll = _gate_and_loglik(params, y, u)
    log_pi = jnp.log(params.initial_probs).astype(ll.dtype)
    return _scan.diagonal_scan(
        (1.0 - g)[:, None], g[:, None] * log_pi + ll, log_pi, mode="sequential"
    )


# --------------------------------------------------------------------------------------
# Sweep


# --------------------------------------------------------------------------------------
# Checks for ``switchssm verify``
