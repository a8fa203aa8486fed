r"""The Kalman filter of a linear-Gaussian state-space model as a linear recurrent layer.

For the model

.. math::

    z_1 \sim \mathcal N(\mu_0, \Sigma_0), \quad z_t = A z_{t-1} + w_t,\ w_t \sim \mathcal N(0, Q),
    \quad y_t = C z_t + v_t,\ v_t \sim \mathcal N(0, R),

the filtered mean :math:`m_t = E[z_t \mid y_{1:t}]` obeys

.. math::

    m_t = (I - K_t C) A\, m_{t-1} + K_t y_t \quad (t \ge 2), \qquad
    m_1 = (I - K_1 C)\, \mu_0 + K_1 y_1,

with gains :math:`K_t = P_t C^\top (C P_t C^\top + R)^{-1}` from the Riccati recursion
(:math:`P_1 = \Sigma_0`, :math:`\Sigma_t = (I - K_t C) P_t`,
:math:`P_{t+1} = A \Sigma_t A^\top + Q`). The covariances never read ``y``: the filter is a
*time-varying linear recurrence with input-independent coefficients*
(:func:`kalman_recurrence`, run by :func:`switchssm.scan.dense_scan`, sequential or
parallel). Its gains converge to the steady state :math:`K` of the discrete algebraic
Riccati equation, and with it the filter becomes an LTI state-space layer
:math:`s_t = \Phi s_{t-1} + K y_t`, :math:`\Phi = (I - K C) A`
(:func:`steady_state_layer`, an :class:`~switchssm.rnn.LTIParams`, which runs as a scan
or an FFT convolution).

How fast the LTI layer catches up: the Riccati map linearized at its fixed point is
:math:`X \mapsto \Phi X \Phi^\top`, so :math:`P_t - P` and :math:`K_t - K` shrink like
:math:`\rho(\Phi)^{2t}`, while the gap between the two means, driven by the start and by
those gain errors and propagated by :math:`\Phi`, shrinks like :math:`\rho(\Phi)^t`
(:func:`convergence_rates` measures both).
"""

# ruff: noqa: F722  (jaxtyping shape strings such as "T N" are not forward references)

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from switchssm import _validation as V
from switchssm import scan as _scan
from switchssm._pytree import params_pytree
from switchssm._pytree import shape_dim
from switchssm.rnn.ssm import LTIParams
from switchssm.rnn.ssm import lti
from switchssm.types import Array
from switchssm.types import ArrayLike
from switchssm.types import Float

__all__ = [
    "KalmanRecurrence",
    "LGSSMParams",
    "SteadyState",
    "convergence_rates",
    "kalman_filter_means",
    "kalman_recurrence",
    "steady_state",
    "steady_state_layer",
]


@params_pytree(promote=True)
class LGSSMParams:
    """A linear-Gaussian state-space model (no inputs, no biases).

    Args:
        initial_mean: ``(N,)`` ``mu_0``, the prior mean of ``z_1``.
        initial_cov: ``(N, N)`` ``Sigma_0``.
        dynamics: ``(N, N)`` ``A``.
        dynamics_cov: ``(N, N)`` ``Q``.
        emission: ``(M, N)`` ``C``.
        emission_cov: ``(M, M)`` ``R``.
    """

    _prefix = "LGSSMParams."

    initial_mean: Float[Array, " N"]
    initial_cov: Float[Array, "N N"]
    dynamics: Float[Array, "N N"]
    dynamics_cov: Float[Array, "N N"]
    emission: Float[Array, "M N"]
    emission_cov: Float[Array, "M M"]

    def _validate(self):
        p = self._prefix
        V.check_ndim(self.initial_mean, p + "initial_mean", 1, "(state_dim,)")
        n = np.shape(self.initial_mean)[0]
        V.check_finite(self.initial_mean, p + "initial_mean")
        V.check_covariance(self.initial_cov, p + "initial_cov", n)
        V.check_shape(self.dynamics, p + "dynamics", (n, n), "(state_dim, state_dim)")
        V.check_finite(self.dynamics, p + "dynamics")
        V.check_covariance(self.dynamics_cov, p + "dynamics_cov", n)
        V.check_ndim(self.emission, p + "emission", 2, "(emission_dim, state_dim)")
        V.check_shape(self.emission, p + "emission", (None, n), "(emission_dim, state_dim)")
        V.check_finite(self.emission, p + "emission")
        V.check_covariance(self.emission_cov, p + "emission_cov", np.shape(self.emission)[0])

    state_dim = shape_dim("dynamics", 0)
    emission_dim = shape_dim("emission", 0)


class KalmanRecurrence(NamedTuple):
    """The Kalman filter's mean recurrence ``m_t = a_t m_{t-1} + K_t y_t``, ``m_0 = mu_0``.

    Attributes:
        transitions: ``(T, N, N)`` ``a_1 = I - K_1 C``, ``a_t = (I - K_t C) A``.
        gains: ``(T, N, M)`` ``K_t``.
        filtered_covs: ``(T, N, N)`` ``Sigma_t = Cov(z_t | y_{1:t})``.
        initial_mean: ``(N,)`` ``mu_0``.
    """

    transitions: Array
    gains: Array
    filtered_covs: Array
    initial_mean: Array


class SteadyState(NamedTuple):
    """The fixed point of the Riccati recursion.

    Attributes:
        gain: ``(N, M)`` ``K``.
        predicted_cov: ``(N, N)`` ``P``, solving ``P = A (P - P C'(C P C' + R)^-1 C P) A' + Q``.
        closed_loop: ``(N, N)`` ``Phi = (I - K C) A``.
        contraction: ``rho(Phi) < 1``, the per-step contraction of the mean recurrence
            (``rho(Phi)^2`` that of the Riccati recursion).
        iterations: Riccati steps taken to converge.
    """

    gain: np.ndarray
    predicted_cov: np.ndarray
    closed_loop: np.ndarray
    contraction: float
    iterations: int


def _check(params):
    if not isinstance(params, LGSSMParams):
        raise ValueError(f"`params` must be LGSSMParams, got {type(params).__name__}")
    return params


def _gain(P, Cm, R):
    S = Cm @ P @ Cm.T + R
    return jnp.linalg.solve(S, Cm @ P).T  # P C' S^-1 (S symmetric)


@functools.partial(jax.jit, static_argnums=1)
def _riccati(params, T):
    A, Q = params.dynamics, params.dynamics_cov
    Cm, R = params.emission, params.emission_cov
    eye = jnp.eye(A.shape[0], dtype=A.dtype)

    def step(P, _):
        K = _gain(P, Cm, R)
        Sigma = (eye - K @ Cm) @ P
        Sigma = 0.5 * (Sigma + Sigma.T)
        return A @ Sigma @ A.T + Q, (K, Sigma)

    _, (K, Sigma) = lax.scan(step, params.initial_cov, None, length=T)
    I_KC = eye - jnp.einsum("tnm,mk->tnk", K, Cm)
    trans = jnp.concatenate([I_KC[:1], I_KC[1:] @ A], axis=0)
    return trans, K, Sigma


def kalman_recurrence(params: LGSSMParams, num_timesteps: int) -> KalmanRecurrence:
    r"""The input-independent coefficients of the Kalman filter's mean recurrence.

    .. math:: m_t = a_t m_{t-1} + K_t y_t, \quad m_0 = \mu_0, \quad
              a_1 = I - K_1 C, \ a_t = (I - K_t C) A\ (t \ge 2),

    from the Riccati recursion (module docstring), which never reads the observations.

    Args:
        params: :class:`LGSSMParams`.
        num_timesteps: ``T >= 1``.

    Returns:
        :class:`KalmanRecurrence`.

    Example:
        >>> p = LGSSMParams(np.zeros(1), np.eye(1), 0.9 * np.eye(1), 0.1 * np.eye(1),
        ...                 np.eye(1), np.eye(1))
        >>> float(kalman_recurrence(p, 3).gains[0, 0, 0])  # Sigma_0 / (Sigma_0 + R)
        0.5
    """
    params = _check(params)
    T = V.check_int(num_timesteps, "num_timesteps")
    trans, K, Sigma = _riccati(params, T)
    return KalmanRecurrence(trans, K, Sigma, params.initial_mean)


def kalman_filter_means(
    params: LGSSMParams, y: Float[ArrayLike, "T M"], *, mode: str | None = None
) -> Float[Array, "T N"]:
    r"""Filtered means :math:`E[z_t \mid y_{1:t}]` as a time-varying linear recurrence.

    :func:`kalman_recurrence`'s coefficients run by :func:`switchssm.scan.dense_scan`
    (``mode="sequential"`` or ``"parallel"``); the same numbers as a textbook Kalman filter.

    Args:
        params: :class:`LGSSMParams`.
        y: ``(T, M)`` observations.
        mode: ``"sequential"``, ``"parallel"`` or ``None`` (backend default).

    Returns:
        ``(T, N)`` filtered means.

    Example:
        >>> p = LGSSMParams(np.zeros(1), np.eye(1), 0.9 * np.eye(1), 0.1 * np.eye(1),
        ...                 np.eye(1), np.eye(1))
        >>> float(kalman_filter_means(p, np.ones((1, 1)))[0, 0])  # 0 + 0.5 (1 - 0)
        0.5
    """
    params = _check(params)
    V.check_ndim(y, "y", 2, "(T, emission_dim)")
    V.check_shape(y, "y", (None, params.emission_dim), "(T, emission_dim)")
    V.check_length(np.shape(y)[0], "y")
    V.check_finite(y, "y")
    rec = kalman_recurrence(params, np.shape(y)[0])
    y = jnp.asarray(y, rec.gains.dtype)
    drive = jnp.einsum("tnm,tm->tn", rec.gains, y)
    return _scan.dense_scan(rec.transitions, drive, rec.initial_mean, mode=mode)


def steady_state(
    params: LGSSMParams, *, tol: float = 1e-13, max_iter: int = 100_000
) -> SteadyState:
    r"""Iterate the Riccati recursion to its fixed point (float64 NumPy).

    .. math:: P \leftarrow A\,(P - P C^\top (C P C^\top + R)^{-1} C P)\,A^\top + Q,

    from ``P = Sigma_0`` until the largest change is below ``tol`` times ``max |P|``.

    Args:
        params: :class:`LGSSMParams` (concrete).
        tol: relative stopping tolerance.
        max_iter: most iterations.

    Returns:
        :class:`SteadyState`.

    Raises:
        ValueError: if the recursion does not converge (e.g. an unstable mode that the
            observations do not see) or the closed loop is not contracting.

    Example:
        >>> p = LGSSMParams(np.zeros(1), np.eye(1), 0.9 * np.eye(1), 0.1 * np.eye(1),
        ...                 np.eye(1), np.eye(1))
        >>> ss = steady_state(p)
        >>> 0 < ss.contraction < 0.9
        True
    """
    params = _check(params)
    tol = V.check_float(tol, "tol", low=0.0, low_open=True)
    max_iter = V.check_int(max_iter, "max_iter")
    A = np.asarray(params.dynamics, np.float64)
    Q = np.asarray(params.dynamics_cov, np.float64)
    Cm = np.asarray(params.emission, np.float64)
    R = np.asarray(params.emission_cov, np.float64)
    P = np.asarray(params.initial_cov, np.float64)
    for it in range(1, max_iter + 1):
        K = np.linalg.solve(Cm @ P @ Cm.T + R, Cm @ P).T
        new = A @ (P - K @ Cm @ P) @ A.T + Q
        new = 0.5 * (new + new.T)
        scale = np.max(np.abs(new))
        if not np.isfinite(scale) or scale > 1e150:  # diverging: an unobserved unstable mode
            break
        done = np.max(np.abs(new - P)) <= tol * max(scale, 1e-300)
        P = new
        if done:
            K = np.linalg.solve(Cm @ P @ Cm.T + R, Cm @ P).T
            Phi = (np.eye(A.shape[0]) - K @ Cm) @ A
            rho = float(np.max(np.abs(np.linalg.eigvals(Phi))))
            if not rho < 1:
                break
            return SteadyState(K, P, Phi, rho, it)
    raise ValueError(
        "`params`: the Riccati recursion did not converge to a stabilizing solution in "
        f"{max_iter} iterations (is every unstable mode of `dynamics` seen by `emission`?)"
    )


def steady_state_layer(params: LGSSMParams) -> LTIParams:
    r"""The steady-state Kalman filter as an LTI state-space layer.

    :math:`s_t = (I - K C) A\, s_{t-1} + K y_t`, :math:`h_t = s_t` (``output_weight = I``,
    ``feedthrough = 0``, ``s_0 = 0``) with the steady-state gain ``K`` of
    :func:`steady_state`; run it with :func:`switchssm.rnn.lti` (scan or convolution). Its
    outputs approach the exact filtered means geometrically, at the rate ``rho(Phi)``.

    Args:
        params: :class:`LGSSMParams` (concrete).

    Returns:
        :class:`~switchssm.rnn.LTIParams` with ``D_in = M``, ``N = H = state_dim``.

    Example:
        >>> p = LGSSMParams(np.zeros(1), np.eye(1), 0.9 * np.eye(1), 0.1 * np.eye(1),
        ...                 np.eye(1), np.eye(1))
        >>> layer = steady_state_layer(p)
        >>> layer.transition.shape, layer.input_weight.shape
        ((1, 1), (1, 1))
    """
    ss = steady_state(params)
    n, m = params.state_dim, params.emission_dim
    dt = params.dynamics.dtype
    return LTIParams(
        jnp.asarray(ss.closed_loop, dt),
        jnp.asarray(ss.gain, dt),
        jnp.eye(n, dtype=dt),
        jnp.zeros((n, m), dt),
    )


def convergence_rates(
    params: LGSSMParams, y: Float[ArrayLike, "T M"], *, burn_in: int = 5, floor: float = 1e-11
) -> dict:
    r"""Measured geometric rates of the steady-state layer's approach to the exact filter.

    Fits ``log ||e_t|| ~ a + t log r`` by least squares over ``t >= burn_in`` while
    ``||e_t|| > floor`` (before rounding takes over), for the mean gap
    ``e_t = steady_state_layer(y)_t - kalman_filter_means(y)_t`` and for the gain gap
    ``K_t - K``, and returns them beside the predictions ``rho(Phi)`` and ``rho(Phi)^2``.

    Args:
        params: :class:`LGSSMParams` (concrete).
        y: ``(T, M)`` observations.
        burn_in: first step of the fit.
        floor: smallest gap used in the fit.

    Returns:
        dict with ``mean_rate``, ``gain_rate``, ``contraction`` (``rho(Phi)``),
        ``riccati_contraction`` (``rho(Phi)^2``), ``mean_gap`` and ``gain_gap`` (arrays).

    Example:
        >>> p = LGSSMParams(np.ones(1), np.eye(1), 0.9 * np.eye(1), 0.1 * np.eye(1),
        ...                 np.eye(1), np.eye(1))
        >>> r = convergence_rates(p, np.zeros((60, 1)))
        >>> abs(r["mean_rate"] / r["contraction"] - 1) < 0.05
        True
    """
    params = _check(params)
    burn_in = V.check_int(burn_in, "burn_in", low=0)
    ss = steady_state(params)
    exact = np.asarray(kalman_filter_means(params, y, mode="sequential"), np.float64)
    approx = np.asarray(lti(steady_state_layer(params), jnp.asarray(y, params.dynamics.dtype)))
    mean_gap = np.linalg.norm(approx - exact, axis=-1)
    gains = np.asarray(kalman_recurrence(params, exact.shape[0]).gains, np.float64)
    gain_gap = np.linalg.norm((gains - ss.gain).reshape(len(gains), -1), axis=-1)

    def rate(gap):
        t = np.arange(len(gap))
        ok = (t >= burn_in) & (gap > floor)
        if ok.sum() < 3:
            return float("nan")
        return float(np.exp(np.polyfit(t[ok], np.log(gap[ok]), 1)[0]))

    return dict(
        mean_rate=rate(mean_gap),
        gain_rate=rate(gain_gap),
        contraction=ss.contraction,
        riccati_contraction=ss.contraction**2,
        mean_gap=mean_gap,
        gain_gap=gain_gap,
    )
