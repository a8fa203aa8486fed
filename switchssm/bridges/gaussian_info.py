r"""minGRU on information vectors: the Gaussian-latent switching model (theory.md section 4).

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
is the selective recursion (input not gated, the Gaussian analogue of theory.md 2 fact 4)

.. math::

    \eta_t = (1-g_t)\,\eta_{t-1} + g_t S_0^{-1}\mu_0 + C^\top R^{-1} y_t, \qquad
    J_t = (1-g_t)\, J_{t-1} + g_t S_0^{-1} + C^\top R^{-1} C,

from :math:`\eta_0 = S_0^{-1}\mu_0`, :math:`J_0 = S_0^{-1}`
(:func:`information_form_selective`), a diagonal SSM on :math:`\eta` and on :math:`J`.
"""

# ruff: noqa: F722

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import cho_factor, cho_solve

from switchssm import _validation as V
from switchssm import scan as _scan
from switchssm.bridges.checks import Check
from switchssm.bridges.high_mi import _check_separation, _cue_mi, _tol
from switchssm.inference.changepoint import run_length_filter
from switchssm.models.gaussian_latent import GaussianLatentParams, sample_gaussian_latent
from switchssm.models.params import GaussianCue
from switchssm.rnn.minimal import MinGRUParams
from switchssm.types import Array, Float, PRNGKeyArray

__all__ = [
    "GaussianSweep",
    "InformationBelief",
    "default_gaussian_params",
    "gaussian_info_checks",
    "gaussian_latent_sweep",
    "gaussian_sweep_sequences",
    "gaussian_sweep_table",
    "information_form_inputs",
    "information_form_mingru",
    "information_form_selective",
    "mingru_from_gaussian_latent",
]

DEFAULT_GAUSSIAN_SEPARATIONS = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0)


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


def _check_params(params):
    if not isinstance(params, GaussianLatentParams):
        raise ValueError(f"`params` must be a GaussianLatentParams, got {type(params).__name__}")


def _spd_inv(A):
    c = cho_factor(A, lower=True)
    return cho_solve(c, jnp.eye(A.shape[0], dtype=A.dtype))


def _info_terms(params):
    """``(S0^-1, C' R^-1, J~, S0^-1 mu0)``."""
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
    terms = _info_terms(params)
    eta, J = _mingru_recursion(params, y, u, terms)
    mean = cho_solve(cho_factor(terms[2], lower=True), eta.T).T
    return InformationBelief(eta, J, mean)


@jax.jit
def _info_selective(params, y, u):
    eta, J = _selective_recursion(params, y, u, _info_terms(params))
    mean = jax.vmap(lambda A, b: cho_solve(cho_factor(A, lower=True), b))(J, eta)
    return InformationBelief(eta, J, mean)


def _prepare(params, y, u):
    _check_params(params)
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
    cue (theory.md section 1):

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
        >>> p = default_gaussian_params(2.0)
        >>> w = mingru_from_gaussian_latent(p)
        >>> w.hidden_dim, w.input_dim
        (2, 3)
    """
    _check_params(params)
    rho = float(params.switch_prob)
    if not 0.0 < rho < 1.0:
        raise ValueError(
            f"`params.switch_prob` must lie in (0, 1) for a finite minGRU gate bias, got {rho}"
        )
    K, D = params.latent_dim, params.emission_dim
    S0inv, CtRinv, _, h = (np.asarray(a, np.float64) for a in _info_terms(params))
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


def default_gaussian_params(separation: float = 2.0, *, gated: bool = True):
    """The built-in Gaussian-latent model of the sweep: ``K = D = 2``, ``rho = 0.1``.

    ``mu0 = (0.5, -1)``, ``S0 = [[1, .3], [.3, .8]]``, ``C = [[1, .2], [-.3, .9]]``,
    ``R = 0.5 I``, scalar cue ``u | z ~ N(z d, 1)``.

    Example:
        >>> default_gaussian_params(4.0).cue.separation.item()
        4.0
    """
    return GaussianLatentParams(
        initial_mean=np.array([0.5, -1.0]),
        initial_cov=np.array([[1.0, 0.3], [0.3, 0.8]]),
        emission_matrix=np.array([[1.0, 0.2], [-0.3, 0.9]]),
        emission_cov=0.5 * np.eye(2),
        switch_prob=0.1,
        cue=GaussianCue(np.array([0.0, float(separation)]), 1.0),
        gated=gated,
    )


def _with_separation(params, d, gated):
    cue = params.cue
    if cue is None:
        new = GaussianCue(np.array([0.0, d]), 1.0)
    else:
        m = np.asarray(cue.means, dtype=np.float64)
        tau = np.asarray(cue.scale, dtype=np.float64)
        diff = np.atleast_1d((m[1] - m[0]) / tau)
        norm = np.sqrt(np.sum(diff**2))
        e = diff / norm if norm > 0 else np.eye(diff.shape[0])[0]
        new = GaussianCue(np.stack([m[0], m[0] + d * tau * (e if m.ndim == 2 else e[0])]), tau)
    return params.replace(cue=new, gated=gated)


def _np_spd_inv(A):
    return np.linalg.inv(A)


def _np_gauss_kl(m1, S1, m2, J2):
    """``KL(N(m1, S1) || N(m2, J2^-1))`` over leading axes (NumPy)."""
    K = m1.shape[-1]
    dm = m2 - m1
    quad = np.einsum("...i,...ij,...j->...", dm, J2, dm)
    tr = np.einsum("...ij,...ji->...", J2, S1)
    ld_S1 = np.linalg.slogdet(S1)[1]
    ld_J2 = np.linalg.slogdet(J2)[1]
    return 0.5 * (tr + quad - K - ld_J2 - ld_S1)


@functools.partial(jax.jit, static_argnames=("num_timesteps",))
def _sample_batch(params, keys, num_timesteps):
    return jax.vmap(lambda k: sample_gaussian_latent(k, params, num_timesteps))(keys)


@jax.jit
def _filter_batch(params, y, u):
    """Exact run-length filter moments and both information recursions' ``(eta, J)``, batched.

    The same recursions as :func:`information_form_mingru` and
    :func:`information_form_selective`; their means (linear solves) are taken in NumPy by
    :func:`_batch_run`, which keeps this program small (CPU compile time).
    """
    terms = _info_terms(params)

    def one(y, u):
        post = run_length_filter(params, y, u)
        return (
            post.filtered_mean,
            post.filtered_cov,
            _mingru_recursion(params, y, u, terms),
            _selective_recursion(params, y, u, terms),
        )

    return jax.vmap(one)(y, u)


def _batch_run(params, keys, num_timesteps):
    y, u, _, z = _sample_batch(params, keys, num_timesteps)
    m, S, (eta, J), (eta_s, J_s) = (
        jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), out)
        for out in _filter_batch(params, y, u)
    )
    info = InformationBelief(eta, J, np.linalg.solve(J[0, 0], eta[..., None])[..., 0])
    sel = InformationBelief(eta_s, J_s, np.linalg.solve(J_s, eta_s[..., None])[..., 0])
    return np.asarray(z), m, S, info, sel


def gaussian_sweep_sequences(
    params: GaussianLatentParams | None = None,
    separation: float = 0.0,
    *,
    gated: bool = True,
    num_timesteps: int = 60,
    num_sequences: int = 32,
    key: PRNGKeyArray | None = None,
):
    """The sequences :func:`gaussian_latent_sweep` draws at one separation.

    ``N = num_sequences`` draws of :func:`~switchssm.models.sample_gaussian_latent` with the
    keys ``jax.random.split(key, N)`` (the same at every separation).

    Returns:
        ``(params_d, (y, u, s, z))``: the model at that separation and batched arrays of
        leading dimension ``N``.

    Example:
        >>> p, (y, u, s, z) = gaussian_sweep_sequences(separation=2.0, num_timesteps=10,
        ...                                            num_sequences=3)
        >>> y.shape, s.shape
        ((3, 10, 2), (3, 10, 2))
    """
    params = default_gaussian_params() if params is None else params
    _check_params(params)
    _check_separation(separation, "separation", scalar=True)
    T = V.check_int(num_timesteps, "num_timesteps")
    N = V.check_int(num_sequences, "num_sequences")
    key = jax.random.PRNGKey(0) if key is None else key
    params_d = _with_separation(params, float(separation), bool(gated))
    return params_d, _sample_batch(params_d, jax.random.split(key, N), T)


def _batch_stats(params, keys, num_timesteps):
    """Per-sequence statistics of the information-form beliefs against the exact filter."""
    T = num_timesteps
    z, m, S, info, sel = _batch_run(params, keys, T)
    Jt = info.precision[0, 0]
    gap = S - _np_spd_inv(Jt)
    tr_gap = np.trace(gap, axis1=-2, axis2=-1)
    kl = _np_gauss_kl(m, S, info.mean, Jt)
    has = np.any(z == 1, axis=1)
    first = np.where(has, np.argmax(z == 1, axis=1), T)
    mask = (np.arange(T)[None] >= first[:, None]).astype(np.float64)
    n = np.maximum(mask.sum(1), 1.0)
    d_info = m - info.mean
    d_sel = m - sel.mean
    sel_cov = _np_spd_inv(sel.precision)
    kl_sel = _np_gauss_kl(m, S, sel.mean, sel.precision)
    return {
        "valid": has,
        "mean_err_max": np.max(np.abs(d_info), axis=(1, 2)),
        "tr_gap_after": np.sum(mask * tr_gap, 1) / n,
        "kl_after": np.sum(mask * kl, 1) / n,
        "tr_gap_all": np.mean(tr_gap, 1),
        "min_eig": np.min(np.linalg.eigvalsh(0.5 * (gap + np.swapaxes(gap, -1, -2))), axis=(1, 2)),
        "mean_rms": np.sqrt(np.mean(np.sum(d_info**2, -1), 1)),
        "kl_all": np.mean(kl, 1),
        "sel_rms": np.sqrt(np.mean(np.sum(d_sel**2, -1), 1)),
        "sel_kl": np.mean(kl_sel, 1),
        "sel_err_max": np.maximum(
            np.max(np.abs(d_sel), axis=(1, 2)), np.max(np.abs(S - sel_cov), axis=(1, 2, 3))
        ),
    }


class GaussianSweep(NamedTuple):
    """Output of :func:`gaussian_latent_sweep` (NumPy arrays, ``n`` separations).

    Gated model (exact run-length filter vs :func:`information_form_mingru`):

    Attributes:
        separations: ``(n,)`` cue separations :math:`d`.
        mutual_information: ``(n,)`` :math:`I(u; z)` in nats.
        switch_entropy: :math:`H(z)` in nats.
        information_ratio: ``(n,)`` :math:`I/H`.
        gated_mean_error: ``(n,)`` max abs difference of the means, all steps and sequences
            (an exact identity: rounding only).
        gated_cov_gap, gated_cov_gap_se: ``(n,)`` mean of
            :math:`\\operatorname{tr}(\\Sigma_t - \\tilde J^{-1})` over the steps at and after
            the first true switch (sequences without a switch are left out), and its
            standard error over sequences.
        gated_kl, gated_kl_se: ``(n,)`` mean of
            :math:`KL(N(m_t, \\Sigma_t) \\| N(\\tilde J^{-1}\\eta_t, \\tilde J^{-1}))` over the same
            steps (the moment-matched exact posterior against the minGRU's Gaussian).
        gated_cov_gap_all: ``(n,)`` the trace gap over all steps (includes the
            :math:`S_0 - \\tilde J^{-1}` plateau before the first switch).
        gated_min_eig: ``(n,)`` smallest eigenvalue of :math:`\\Sigma_t - \\tilde J^{-1}` over
            all steps and sequences (nonnegative: the PSD claim).

    Always-emitting model (exact run-length filter vs the same minGRU, and vs
    :func:`information_form_selective`):

    Attributes:
        always_mean_error, always_mean_error_se: ``(n,)`` RMS over steps of
            :math:`\\lVert m_t - \\tilde J^{-1}\\eta_t\\rVert`, averaged over sequences.
        always_kl, always_kl_se: ``(n,)`` mean KL of the exact moments from the minGRU's
            Gaussian, all steps.
        always_selective_mean_error, always_selective_kl: ``(n,)`` the same for the
            selective recursion.
        always_selective_max_error: ``(n,)`` max abs error of the selective mean and
            covariance, all steps and sequences (0 up to rounding at hard gates).
        num_timesteps, num_sequences: simulation size.
    """

    separations: np.ndarray
    mutual_information: np.ndarray
    switch_entropy: float
    information_ratio: np.ndarray
    gated_mean_error: np.ndarray
    gated_cov_gap: np.ndarray
    gated_cov_gap_se: np.ndarray
    gated_kl: np.ndarray
    gated_kl_se: np.ndarray
    gated_cov_gap_all: np.ndarray
    gated_min_eig: np.ndarray
    always_mean_error: np.ndarray
    always_mean_error_se: np.ndarray
    always_kl: np.ndarray
    always_kl_se: np.ndarray
    always_selective_mean_error: np.ndarray
    always_selective_kl: np.ndarray
    always_selective_max_error: np.ndarray
    num_timesteps: int
    num_sequences: int


def _masked_mean_se(x, valid):
    x = np.asarray(x, np.float64)[np.asarray(valid, bool)]
    if x.size == 0:
        return float("nan"), float("nan")
    se = x.std(ddof=1) / np.sqrt(x.size) if x.size > 1 else float("nan")
    return float(x.mean()), float(se)


def gaussian_latent_sweep(
    params: GaussianLatentParams | None = None,
    separations=DEFAULT_GAUSSIAN_SEPARATIONS,
    *,
    num_timesteps: int = 60,
    num_sequences: int = 32,
    key: PRNGKeyArray | None = None,
) -> GaussianSweep:
    r"""Information-form minGRU against the exact run-length filter as the cue sharpens.

    For each separation :math:`d`, sequences are drawn with
    :func:`~switchssm.models.sample_gaussian_latent` from the gated and the always-emitting
    model (common random numbers: the same keys at every :math:`d`, so only the cue means
    move), filtered exactly by :func:`~switchssm.inference.run_length_filter` (no pruning),
    and compared with :func:`information_form_mingru` (and, always-emitting, with
    :func:`information_form_selective`); see :class:`GaussianSweep` for the measures.

    Args:
        params: a :class:`~switchssm.models.GaussianLatentParams` (its cue's :math:`m_0`,
            :math:`\tau` and direction are kept, :math:`m_1` is moved); ``None`` uses
            :func:`default_gaussian_params`. Its ``gated`` flag is ignored.
        separations: 1-D nonnegative separations.
        num_timesteps: ``T`` (the exact filter costs :math:`O(T^2)`).
        num_sequences: ``N`` per separation.
        key: PRNG key (default ``PRNGKey(0)``).

    Returns:
        :class:`GaussianSweep`.

    Example:
        >>> sw = gaussian_latent_sweep(separations=[0.0, 4.0], num_timesteps=20, num_sequences=4)
        >>> bool(sw.gated_mean_error.max() < 1e-4)  # rounding (float32 unless x64 is on)
        True
    """
    params = default_gaussian_params() if params is None else params
    if not isinstance(params, GaussianLatentParams):
        raise ValueError(
            f"`params` must be a GaussianLatentParams or None, got {type(params).__name__}"
        )
    d = np.asarray(separations, dtype=np.float64)
    if d.ndim != 1 or d.size < 1:
        raise ValueError(f"`separations` must be a non-empty 1-D list, got shape {d.shape}")
    _check_separation(d, "separations")
    T = V.check_int(num_timesteps, "num_timesteps")
    N = V.check_int(num_sequences, "num_sequences")
    key = jax.random.PRNGKey(0) if key is None else key
    keys = jax.random.split(key, N)
    rho = float(params.switch_prob)
    mi, h = _cue_mi(jnp.asarray(rho, float), jnp.asarray(d, float))
    mi, h = np.asarray(mi, np.float64), float(h)

    rows = {k: [] for k in GaussianSweep._fields[4:18]}
    for dk in d:
        g = _batch_stats(_with_separation(params, dk, True), keys, T)
        a = _batch_stats(_with_separation(params, dk, False), keys, T)
        everyone = np.ones(N, bool)
        rows["gated_mean_error"].append(float(g["mean_err_max"].max()))
        m_, s_ = _masked_mean_se(g["tr_gap_after"], g["valid"])
        rows["gated_cov_gap"].append(m_)
        rows["gated_cov_gap_se"].append(s_)
        m_, s_ = _masked_mean_se(g["kl_after"], g["valid"])
        rows["gated_kl"].append(m_)
        rows["gated_kl_se"].append(s_)
        rows["gated_cov_gap_all"].append(float(g["tr_gap_all"].mean()))
        rows["gated_min_eig"].append(float(g["min_eig"].min()))
        m_, s_ = _masked_mean_se(a["mean_rms"], everyone)
        rows["always_mean_error"].append(m_)
        rows["always_mean_error_se"].append(s_)
        m_, s_ = _masked_mean_se(a["kl_all"], everyone)
        rows["always_kl"].append(m_)
        rows["always_kl_se"].append(s_)
        rows["always_selective_mean_error"].append(float(a["sel_rms"].mean()))
        rows["always_selective_kl"].append(float(a["sel_kl"].mean()))
        rows["always_selective_max_error"].append(float(a["sel_err_max"].max()))
    return GaussianSweep(
        separations=d,
        mutual_information=mi,
        switch_entropy=h,
        information_ratio=mi / h if h > 0 else np.zeros_like(mi),
        **{k: np.asarray(v) for k, v in rows.items()},
        num_timesteps=T,
        num_sequences=N,
    )


def gaussian_sweep_table(sweep: GaussianSweep) -> list[dict]:
    """One JSON-ready row per separation of a :class:`GaussianSweep`.

    Render with :func:`switchssm.bridges.high_mi.markdown_table`.

    Example:
        >>> sw = gaussian_latent_sweep(separations=[1.0], num_timesteps=10, num_sequences=2)
        >>> gaussian_sweep_table(sw)[0]["d"]
        1.0
    """
    if not isinstance(sweep, GaussianSweep):
        raise ValueError(f"`sweep` must be a GaussianSweep, got {type(sweep).__name__}")
    skip = {"switch_entropy", "num_timesteps", "num_sequences"}
    names = [f for f in GaussianSweep._fields if f not in skip]
    out = []
    for i in range(len(sweep.separations)):
        row = {"d" if n == "separations" else n: float(getattr(sweep, n)[i]) for n in names}
        out.append(row)
    return out


# --------------------------------------------------------------------------------------
# Checks for ``switchssm verify``


def gaussian_info_checks(
    params: GaussianLatentParams | None = None,
    *,
    num_timesteps: int = 40,
    num_sequences: int = 8,
    key: PRNGKeyArray | None = None,
) -> list[Check]:
    """Checks of theory.md section 4 for ``switchssm verify`` (a few seconds).

    Runs :func:`gaussian_latent_sweep` at ``d = 0, 2, 4, 8, 40`` and returns:

    - ``gaussian/info-form-minGRU`` (exact): :func:`switchssm.rnn.mingru` with
      :func:`mingru_from_gaussian_latent` equals the direct recursion's :math:`\\eta_t`;
    - ``gaussian/gated-mean`` (exact): the information-form mean equals the exact filtered
      mean of the gated model at every separation;
    - ``gaussian/gated-cov-psd`` (exact): :math:`\\Sigma_t - \\tilde J^{-1} \\succeq 0`;
    - ``gaussian/gated-cov-gap`` (approximate): covariance trace gap after the first switch at
      ``d = 8`` relative to ``d = 0``;
    - ``gaussian/always-mean-gap`` (approximate): RMS mean error of the minGRU in the
      always-emitting model at ``d = 8``;
    - ``gaussian/always-selective-hard`` (exact): at ``d = 40`` the selective information
      recursion equals the exact always-emitting filter (mean and covariance).

    Example:
        >>> all(c.passed for c in gaussian_info_checks(num_timesteps=15, num_sequences=2))
        True
    """
    params = default_gaussian_params() if params is None else params
    _check_params(params)
    seps = [0.0, 2.0, 4.0, 8.0, 40.0]
    sw = gaussian_latent_sweep(
        params, seps, num_timesteps=num_timesteps, num_sequences=num_sequences, key=key
    )
    # The minGRU identity is algebraic (it holds for any inputs): random ones will do.
    p = _with_separation(params, 2.0, True)
    rng = np.random.default_rng(1)
    y = rng.normal(size=(num_timesteps, p.emission_dim))
    u = rng.normal(size=(num_timesteps,) + np.shape(p.cue.means)[1:]) + 1.0
    from switchssm.rnn import mingru

    eta = information_form_mingru(p, y, u).eta
    Jt = _info_terms(p)[2]
    eta_rnn = mingru(
        mingru_from_gaussian_latent(p),
        information_form_inputs(p, y, u),
        h0=Jt @ p.initial_mean,
        space="logit",
        mode="sequential",
    )
    scale = max(1.0, float(jnp.max(jnp.abs(eta))))
    rnn_err = float(jnp.max(jnp.abs(eta_rnn - eta))) / scale
    gap0, gap8 = sw.gated_cov_gap[0], sw.gated_cov_gap[3]
    return [
        Check(
            "gaussian/info-form-minGRU",
            "minGRU (logit states) with gate from the cue and candidate C'R^-1 y + S0^-1 mu0 "
            "computes the information vector eta_t",
            "exact",
            "max abs error / max |eta|",
            rnn_err,
            _tol(1e-12, 1e-5),
        ),
        Check(
            "gaussian/gated-mean",
            "gated model, marginal background: J~^-1 eta_t equals the exact filtered mean "
            "(run-length filter) at d = " + ", ".join(f"{s:g}" for s in seps),
            "exact",
            "max abs error",
            float(np.max(sw.gated_mean_error)),
            _tol(1e-9, 1e-4),
        ),
        Check(
            "gaussian/gated-cov-psd",
            "gated model: the exact posterior covariance exceeds J~^-1 (PSD difference)",
            "exact",
            "max(0, -min eigenvalue of Sigma_t - J~^-1)",
            float(max(0.0, -np.min(sw.gated_min_eig))),
            _tol(1e-9, 1e-4),
        ),
        Check(
            "gaussian/gated-cov-gap",
            f"gated model: covariance gap tr(Sigma_t - J~^-1) after the first switch closes as "
            f"the cue sharpens ({gap0:.3g} at d = 0, {gap8:.3g} at d = 8; before the first "
            f"switch it stays tr(S0 - J~^-1) whatever the cue)",
            "approximate",
            "trace gap at d = 8 / trace gap at d = 0",
            float(gap8 / gap0) if gap0 > 0 else float("nan"),
        ),
        Check(
            "gaussian/always-mean-gap",
            "always-emitting model: the information-form minGRU mean is off the exact mean "
            "(the exact precision grows within a segment)",
            "approximate",
            "RMS mean error at d = 8",
            float(sw.always_mean_error[3]),
        ),
        Check(
            "gaussian/always-selective-hard",
            "always-emitting model, d = 40 (hard gates): the selective recursion "
            "eta_t = (1-g)eta_{t-1} + g S0^-1 mu0 + C'R^-1 y_t, J_t likewise, is the exact filter",
            "exact",
            "max abs error (mean and covariance)",
            float(sw.always_selective_max_error[-1]),
            _tol(1e-9, 1e-4),
        ),
    ]
