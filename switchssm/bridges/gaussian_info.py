r"""minGRU on information vectors: the Gaussian-latent switching model (docs/theory.md section 4).

Model (:mod:`switchssm.models.gaussian_latent`): :math:`s_t \in \mathbb R^K`, a fresh
:math:`N(\mu_0, S_0)` draw when :math:`z_t = 1`, a copy otherwise;
:math:`y_t \mid s_t \sim N(C s_t, R)`; cue :math:`u_t \mid z_t \sim N(m_{z_t}, \tau^2)`.

**Information form.** A fresh latent updated with :math:`y_t` has precision and information
vector

.. math::

    \tilde J = S_0^{-1} + C^\top R^{-1} C \ \text{(constant)}, \qquad
    \tilde\eta_t = S_0^{-1}\mu_0 + C^\top R^{-1} y_t \ \text{(linear in } y_t).

Pooling the carried belief and the fresh one with the cue-only gate
:math:`g_t = \sigma(\operatorname{logit}\rho + \log N(u_t|m_1) - \log N(u_t|m_0))`,

.. math::

    \eta_t = (1-g_t)\,\eta_{t-1} + g_t\,\tilde\eta_t, \qquad
    J_t = (1-g_t)\, J_{t-1} + g_t \tilde J, \qquad \eta_0 = \tilde J\mu_0,\ J_0 = \tilde J,

so :math:`J_t = \tilde J` for all :math:`t` and the mean is the fixed linear readout
:math:`\hat s_t = \tilde J^{-1}\eta_t`. This is a logit-state minGRU
(:func:`switchssm.rnn.mingru`) on inputs :math:`x_t = [y_t, u_t]` with ``K`` units sharing
one gate: gate weights :math:`(0, (m_1 - m_0)/\tau^2)`, gate bias
:math:`\operatorname{logit}\rho - \sum (m_1^2 - m_0^2)/(2\tau^2)`, candidate weights
:math:`(C^\top R^{-1}, 0)`, candidate bias :math:`S_0^{-1}\mu_0`
(:func:`mingru_from_gaussian_latent`).

**Gated model (exact mean).** With the marginal background
:math:`y_t \mid z_t = 0 \sim N(C\mu_0, C S_0 C^\top + R)` the switch posterior is the
cue-only :math:`g_t`, the run-length posterior is :math:`w_t(0) = g_t`,
:math:`w_t(r+1) = (1-g_t) w_{t-1}(r)`, carried components are not updated, and the fresh one
has mean :math:`\tilde J^{-1}\tilde\eta_t`. Hence the exact filtered mean obeys
:math:`m_t = (1-g_t) m_{t-1} + g_t \tilde J^{-1}\tilde\eta_t`, :math:`m_0 = \mu_0`, which is
:math:`\tilde J^{-1}\eta_t`: the information-form minGRU gives the exact posterior mean at
every cue strength. The exact posterior is a mixture; its covariance is

.. math::

    \Sigma_t = \tilde J^{-1} + w_t(t)\,(S_0 - \tilde J^{-1}) + \textstyle\sum_r w_t(r)
        (m_{t,r} - m_t)(m_{t,r} - m_t)^\top \ \succeq\ \tilde J^{-1}

(every component after a switch has covariance :math:`\tilde J^{-1}`; the component
"no switch yet", :math:`r = t`, is still the prior :math:`N(\mu_0, S_0)` and
:math:`S_0 \succeq \tilde J^{-1}`). As the cue sharpens the mixture collapses onto the true
run length and the gap closes, **but only after the first switch**: before it the exact
covariance is :math:`S_0` even with hard gates. :func:`gaussian_latent_sweep` measures the gap
over the steps at and after the first (true) switch.

**Always-emitting model.** Every observation informs the current segment, so the exact
posterior precision grows within a segment; the information-form minGRU (constant
:math:`\tilde J`, gated input) is off even with hard gates. With hard gates the exact filter
is the selective recursion (input not gated, the Gaussian analogue of docs/theory.md 2 fact 4)

.. math::

    \eta_t = (1-g_t)\,\eta_{t-1} + g_t S_0^{-1}\mu_0 + C^\top R^{-1} y_t, \qquad
    J_t = (1-g_t)\, J_{t-1} + g_t S_0^{-1} + C^\top R^{-1} C,

from :math:`\eta_0 = S_0^{-1}\mu_0`, :math:`J_0 = S_0^{-1}`
(:func:`information_form_selective`), a diagonal SSM on :math:`\eta` and on :math:`J`.
"""

# ruff: noqa: F722

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import cho_factor
from jax.scipy.linalg import cho_solve

from switchssm import scan as _scan
from switchssm.models.gaussian_latent import GaussianLatentParams
from switchssm.rnn.minimal import MinGRUParams
from switchssm.types import Array
from switchssm.types import Float

__all__ = [
    "InformationBelief",
    "information_form_inputs",
    "information_form_mingru",
    "information_form_selective",
    "mingru_from_gaussian_latent",
]


class InformationBelief(NamedTuple):
    """An information-form belief over time (unpacks as ``(eta, J, mean)``).

    Attributes:
        eta: ``(T, K)`` information vectors :math:`\\eta_t`.
        precision: ``(T, K, K)`` precisions :math:`J_t`.
        mean: ``(T, K)`` means :math:`J_t^{-1}\\eta_t`.
    """

    eta: Float[Array, "T K"]
    precision: Float[Array, "T K K"]
    mean: Float[Array, "T K"]


def check_gaussian_latent(params) -> None:
    """``params`` is a :class:`~switchssm.models.GaussianLatentParams` (ValueError otherwise)."""
    if not isinstance(params, GaussianLatentParams):
        raise ValueError(f"`params` must be a GaussianLatentParams, got {type(params).__name__}")


def _spd_inv(A):
    c = cho_factor(A, lower=True)
    return cho_solve(c, jnp.eye(A.shape[0], dtype=A.dtype))


def information_terms(params):
    """The constant pieces of the information form: ``(S0^-1, C' R^-1, J~, S0^-1 mu0)``."""
    S0inv = _spd_inv(params.initial_cov)
    CtRinv = cho_solve(cho_factor(params.emission_cov, lower=True), params.emission_matrix).T
    Jt = S0inv + CtRinv @ params.emission_matrix
    return S0inv, CtRinv, 0.5 * (Jt + Jt.T), S0inv @ params.initial_mean


def _cue_gate(params, u, T, dtype):
    """Cue-only switch posterior ``g_t`` (``rho`` when there is no cue), ``(T,)``."""
    rho = jnp.asarray(params.switch_prob, dtype)
    log_w = jnp.broadcast_to(jnp.stack([jnp.log1p(-rho), jnp.log(rho)]), (T, 2))
    if params.cue is not None:
        log_w = log_w + params.cue.log_prob(u).astype(dtype)
    return jnp.exp(log_w[:, 1] - jnp.logaddexp(log_w[:, 0], log_w[:, 1]))


def _dtype(params, y):
    return jnp.result_type(y, params.initial_mean, float)


def _mingru_recursion(params, y, u, terms):
    """``(eta, J)`` of the information-form minGRU (diagonal scans only)."""
    T, K = y.shape[0], params.latent_dim
    _, CtRinv, Jt, h = terms
    g = _cue_gate(params, u, T, _dtype(params, y))
    a = (1.0 - g)[:, None]
    eta = _scan.diagonal_scan(
        a, g[:, None] * (h + y @ CtRinv.T), Jt @ params.initial_mean, mode="sequential"
    )
    Jf = Jt.reshape(-1)
    J = _scan.diagonal_scan(
        a, g[:, None] * jnp.broadcast_to(Jf, (T, K * K)), Jf, mode="sequential"
    ).reshape(T, K, K)
    return eta, J


def _selective_recursion(params, y, u, terms):
    """``(eta, J)`` of the selective information recursion (diagonal scans only)."""
    T, K = y.shape[0], params.latent_dim
    S0inv, CtRinv, Jt, h = terms
    g = _cue_gate(params, u, T, _dtype(params, y))
    a = (1.0 - g)[:, None]
    eta = _scan.diagonal_scan(a, g[:, None] * h + y @ CtRinv.T, h, mode="sequential")
    CRC = (Jt - S0inv).reshape(-1)
    J = _scan.diagonal_scan(
        a, g[:, None] * S0inv.reshape(-1) + CRC, S0inv.reshape(-1), mode="sequential"
    ).reshape(T, K, K)
    return eta, 0.5 * (J + jnp.swapaxes(J, -1, -2))


@jax.jit
def _info_form(params, y, u):
    terms = information_terms(params)
    eta, J = _mingru_recursion(params, y, u, terms)
    mean = cho_solve(cho_factor(terms[2], lower=True), eta.T).T
    return InformationBelief(eta, J, mean)


@jax.jit
def _info_selective(params, y, u):
    eta, J = _selective_recursion(params, y, u, information_terms(params))
    mean = jax.vmap(lambda A, b: cho_solve(cho_factor(A, lower=True), b))(J, eta)
    return InformationBelief(eta, J, mean)


def _prepare(params, y, u):
    check_gaussian_latent(params)
    params.validate_observations(y, u)
    y = jnp.asarray(y)
    if not jnp.issubdtype(y.dtype, jnp.floating):
        y = y.astype(jnp.result_type(float))
    return y, (None if u is None else jnp.asarray(u))


def information_form_mingru(params: GaussianLatentParams, y, u=None) -> InformationBelief:
    r"""The information-form minGRU belief :math:`(\eta_t, J_t, \tilde J^{-1}\eta_t)`.

    .. math::

        \eta_t = (1-g_t)\eta_{t-1} + g_t(S_0^{-1}\mu_0 + C^\top R^{-1} y_t),\quad
        J_t = (1-g_t) J_{t-1} + g_t\tilde J,\quad \eta_0 = \tilde J\mu_0,\ J_0 = \tilde J,

    with :math:`\tilde J = S_0^{-1} + C^\top R^{-1}C` and the cue-only gate :math:`g_t`
    (:math:`\rho` without a cue). :math:`J_t` stays :math:`\tilde J` (computed by the
    recursion, not assumed); the mean is :math:`\tilde J^{-1}\eta_t`. In the gated model this
    mean is the exact filtered mean at every cue strength (module docstring).

    Args:
        params: :class:`~switchssm.models.GaussianLatentParams` (gated or not; the recursion
            is the same).
        y: ``(T, D)`` observations.
        u: cue ``(T,)`` or ``(T, Du)``; required exactly when ``params.cue`` is set.

    Returns:
        :class:`InformationBelief` ``(eta (T, K), precision (T, K, K), mean (T, K))``.

    Example:
        >>> import numpy as np
        >>> from switchssm.verify.gaussian import default_gaussian_params
        >>> p = default_gaussian_params(3.0)
        >>> eta, J, mean = information_form_mingru(p, np.zeros((5, 2)), np.zeros(5))
        >>> eta.shape, J.shape, mean.shape
        ((5, 2), (5, 2, 2), (5, 2))
    """
    y, u = _prepare(params, y, u)
    return _info_form(params, y, u)


def information_form_selective(params: GaussianLatentParams, y, u=None) -> InformationBelief:
    r"""The selective information recursion (input not gated), exact for the always-emitting
    model with hard gates.

    .. math::

        \eta_t = (1-g_t)\eta_{t-1} + g_t S_0^{-1}\mu_0 + C^\top R^{-1} y_t,\quad
        J_t = (1-g_t) J_{t-1} + g_t S_0^{-1} + C^\top R^{-1}C,

    from :math:`\eta_0 = S_0^{-1}\mu_0`, :math:`J_0 = S_0^{-1}`; mean :math:`J_t^{-1}\eta_t`.
    With :math:`g_t \in \{0, 1\}` this is the Kalman filter of the current segment's static
    latent in information form.

    Args:
        params, y, u: as in :func:`information_form_mingru`.

    Returns:
        :class:`InformationBelief`.

    Example:
        >>> import numpy as np
        >>> from switchssm.verify.gaussian import default_gaussian_params
        >>> p = default_gaussian_params(3.0, gated=False)
        >>> information_form_selective(p, np.zeros((5, 2)), np.zeros(5)).precision.shape
        (5, 2, 2)
    """
    y, u = _prepare(params, y, u)
    return _info_selective(params, y, u)


def _cue_arrays(params):
    cue = params.cue
    m = np.asarray(cue.means, dtype=np.float64).reshape(2, -1)
    tau = np.broadcast_to(np.asarray(cue.scale, dtype=np.float64), (m.shape[1],))
    return m, tau


def mingru_from_gaussian_latent(params: GaussianLatentParams) -> MinGRUParams:
    r"""minGRU weights whose logit-state run on :math:`x_t = [y_t, u_t]` gives :math:`\eta_t`.

    ``K`` hidden units (one per latent dimension) share one gate, a logistic regression of the
    cue (docs/theory.md section 1):

    .. math::

        k_t = \operatorname{logit}\rho + \sum_j \Big[\frac{m_{1j} - m_{0j}}{\tau_j^2} u_{tj}
              - \frac{m_{1j}^2 - m_{0j}^2}{2\tau_j^2}\Big],\quad g_t = \sigma(k_t);

    candidate :math:`\tilde\eta_t = C^\top R^{-1} y_t + S_0^{-1}\mu_0`. So
    ``gate_weight = [0 | (m1 - m0)/tau^2]`` (each row), ``candidate_weight = [C' R^-1 | 0]``,
    ``candidate_bias = S0^-1 mu0``. Run :func:`switchssm.rnn.mingru` with
    ``h0 = J~ mu0`` on :func:`information_form_inputs` to get :func:`information_form_mingru`'s
    ``eta``. Without a cue the input is :math:`y_t` alone and the gate is the constant
    :math:`\rho`.

    Args:
        params: :class:`~switchssm.models.GaussianLatentParams` with
            :math:`0 < \rho < 1` (a finite gate bias).

    Returns:
        :class:`~switchssm.rnn.MinGRUParams` with ``H = K`` and ``D_in = D + Du``.

    Raises:
        ValueError: if ``params`` is not a ``GaussianLatentParams`` or ``switch_prob`` is 0
            or 1.

    Example:
        >>> from switchssm.verify.gaussian import default_gaussian_params
        >>> p = default_gaussian_params(2.0)
        >>> w = mingru_from_gaussian_latent(p)
        >>> w.hidden_dim, w.input_dim
        (2, 3)
    """
    check_gaussian_latent(params)
    rho = float(params.switch_prob)
    if not 0.0 < rho < 1.0:
        raise ValueError(
            f"`params.switch_prob` must lie in (0, 1) for a finite minGRU gate bias, got {rho}"
        )
    K, D = params.latent_dim, params.emission_dim
    S0inv, CtRinv, _, h = (np.asarray(a, np.float64) for a in information_terms(params))
    logit = np.log(rho) - np.log1p(-rho)
    if params.cue is None:
        w_u = np.zeros(0)
        bias = logit
    else:
        m, tau = _cue_arrays(params)
        w_u = (m[1] - m[0]) / tau**2
        bias = logit - np.sum((m[1] ** 2 - m[0] ** 2) / (2 * tau**2))
    Du = w_u.shape[0]
    gate_w = np.tile(np.concatenate([np.zeros(D), w_u])[None], (K, 1))
    cand_w = np.concatenate([CtRinv, np.zeros((K, Du))], axis=1)
    dtype = jnp.result_type(float)
    return MinGRUParams(
        jnp.asarray(gate_w, dtype),
        jnp.full((K,), bias, dtype),
        jnp.asarray(cand_w, dtype),
        jnp.asarray(h, dtype),
    )


def information_form_inputs(params: GaussianLatentParams, y, u=None) -> Float[Array, "T Din"]:
    """The minGRU inputs :math:`x_t = [y_t, u_t]` (``(T, D + Du)``; ``y`` alone without a cue).

    Example:
        >>> import numpy as np
        >>> from switchssm.verify.gaussian import default_gaussian_params
        >>> information_form_inputs(default_gaussian_params(), np.zeros((4, 2)), np.ones(4)).shape
        (4, 3)
    """
    y, u = _prepare(params, y, u)
    if u is None:
        return y
    u = u.reshape(y.shape[0], -1).astype(y.dtype)
    return jnp.concatenate([y, u], axis=1)


# --------------------------------------------------------------------------------------
# Sweep against the exact run-length filter


# --------------------------------------------------------------------------------------
# Checks for ``switchssm verify``
