"""The switching model with a Gaussian latent (docs/theory.md section 4).

The generative model::

    s_0 ~ N(mu0, S0)
    z_t ~ Bernoulli(rho)                                   t = 1..T
    s_t = s_{t-1}                 if z_t = 0
    s_t ~ N(mu0, S0)  (fresh)     if z_t = 1
    y_t | s_t ~ N(C s_t, R)                                always-emitting, or gated:
    y_t | s_t, z_t = 1 ~ N(C s_t, R),  y_t | z_t = 0 ~ N(C mu0, C S0 C' + R)
    u_t | z_t ~ N(m_{z_t}, tau^2)                          optional cue

In the gated variant a step without a switch emits from the marginal background
``N(C mu0, C S0 C' + R)`` (the prior predictive of a fresh latent), so it says nothing about
``s_t``. Exact filtering is the run-length filter in :mod:`switchssm.inference.changepoint`.
"""

from __future__ import annotations

from functools import partial
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.contrib.control_flow import scan

from switchssm import _validation as V
from switchssm._pytree import params_pytree
from switchssm._pytree import shape_dim
from switchssm.models.params import GaussianCue
from switchssm.models.params import check_structure
from switchssm.types import Array
from switchssm.types import Float
from switchssm.types import Int
from switchssm.types import PRNGKeyArray

__all__ = ["GaussianLatentParams", "gaussian_latent_model", "sample_gaussian_latent"]


@params_pytree
class GaussianLatentParams:
    """Parameters of the switching model with a Gaussian latent ``s_t in R^K``.

    Args:
        initial_mean: ``(K,)`` mean ``mu0`` of ``s_0`` and of every fresh draw.
        initial_cov: ``(K, K)`` covariance ``S0`` of ``s_0`` and of every fresh draw.
        emission_matrix: ``(D, K)`` loading ``C`` in ``y_t ~ N(C s_t, R)``.
        emission_cov: ``(D, D)`` observation noise covariance ``R``.
        switch_prob: ``rho = P(z_t = 1)``, in ``[0, 1]``.
        cue: optional :class:`~switchssm.models.GaussianCue` on the switch.
        gated: ``True`` for the gated emission (``y_t ~ N(C mu0, C S0 C' + R)`` when
            ``z_t = 0``), ``False`` for always-emitting ``y_t ~ N(C s_t, R)``. Static.

    Example:
        >>> import numpy as np
        >>> p = GaussianLatentParams(np.zeros(2), np.eye(2), np.ones((1, 2)), np.eye(1), 0.1)
        >>> p.latent_dim, p.emission_dim
        (2, 1)
    """

    initial_mean: Float[Array, " K"]
    initial_cov: Float[Array, "K K"]
    emission_matrix: Float[Array, "D K"]
    emission_cov: Float[Array, "D D"]
    switch_prob: Float[Array, ""]
    cue: GaussianCue | None = None
    gated: bool = False
    _static: ClassVar[tuple] = ("gated",)

    _children: ClassVar[tuple] = ("cue",)

    def _validate(self):
        check_structure(self)
        V.check_ndim(self.initial_mean, "initial_mean", 1, "(K,)")
        V.check_finite(self.initial_mean, "initial_mean")
        K = np.shape(self.initial_mean)[0]
        if K < 1:
            raise ValueError("`initial_mean` must have at least one dimension (K >= 1)")
        V.check_covariance(self.initial_cov, "initial_cov", dim=K)
        V.check_ndim(self.emission_matrix, "emission_matrix", 2, "(D, K)")
        if np.shape(self.emission_matrix)[1] != K or np.shape(self.emission_matrix)[0] < 1:
            raise ValueError(
                f"`emission_matrix` must have shape (D, {K}) with D >= 1, "
                f"got {np.shape(self.emission_matrix)}"
            )
        V.check_finite(self.emission_matrix, "emission_matrix")
        V.check_covariance(self.emission_cov, "emission_cov", dim=np.shape(self.emission_matrix)[0])
        V.check_ndim(self.switch_prob, "switch_prob", 0, "(a scalar rho)")
        V.check_unit_interval(self.switch_prob, "switch_prob")

    latent_dim = shape_dim("initial_mean", 0, "``K``, the dimension of ``s_t``.")
    emission_dim = shape_dim("emission_matrix", 0, "``D``, the dimension of ``y_t``.")

    @property
    def background_mean(self) -> Float[Array, " D"]:
        """``C mu0``: mean of the prior predictive ``y_t`` of a fresh latent."""
        return self.emission_matrix @ self.initial_mean

    @property
    def background_cov(self) -> Float[Array, "D D"]:
        """``C S0 C' + R``: covariance of the prior predictive ``y_t`` of a fresh latent."""
        C = self.emission_matrix
        return C @ self.initial_cov @ C.T + self.emission_cov

    def validate_observations(self, y, u=None, *, y_name: str = "y", u_name: str = "u") -> None:
        """Check ``y`` (``(T, D)``, finite, ``T >= 1``) and the cue ``u`` against the params.

        ``u`` is required exactly when ``cue`` is set. Skipped for tracers.
        """
        if not V.is_concrete(y):
            return
        D = self.emission_dim
        V.check_ndim(y, y_name, 2, f"(T, D={D}) real observations")
        V.check_length(np.shape(y)[0], y_name)
        if np.shape(y)[1] != D:
            raise ValueError(f"`{y_name}` must have shape (T, {D}), got {np.shape(y)}")
        V.check_finite(y, y_name)
        T = np.shape(y)[0]
        if self.cue is None and u is not None:
            raise ValueError(
                f"`{u_name}` was given but `params.cue` is None: pass a GaussianCue or drop "
                f"`{u_name}`"
            )
        if self.cue is not None:
            if u is None:
                raise ValueError(
                    f"`params.cue` is set, so the cue `{u_name}` (one value per step) is required"
                )
            if V.is_concrete(u):
                self.cue.validate_observations(u, T, u_name)


def _check_params(params) -> None:
    if not isinstance(params, GaussianLatentParams):
        raise ValueError(f"`params` must be a GaussianLatentParams, got {type(params).__name__}")


def gaussian_latent_model(
    params: GaussianLatentParams,
    num_timesteps: int | None = None,
    y: Float[Array, "T D"] | None = None,
    u: Array | None = None,
) -> None:
    """NumPyro model of the Gaussian-latent switching model.

    Sites: ``"s0"`` (``s_0 ~ N(mu0, S0)``); inside a
    :func:`numpyro.contrib.control_flow.scan` over ``t = 1..T``: ``"z"`` (Bernoulli(rho)),
    ``"s_fresh"`` (a fresh ``N(mu0, S0)`` draw at every step), the deterministic site ``"s"``
    with ``s_t = where(z_t, s_fresh_t, s_{t-1})`` (the continuous latent as a mixture of a copy
    and a fresh draw), ``"y"`` and, when ``params.cue`` is set, ``"u"``.

    The joint density is ``p(s_0) prod_t p(z_t) N(s_fresh_t | mu0, S0) p(y_t | s_t, z_t)
    p(u_t | z_t)``; integrating out the unused ``s_fresh_t`` (those with ``z_t = 0``) recovers
    the model of docs/theory.md section 4.

    Args:
        params: :class:`GaussianLatentParams`.
        num_timesteps: ``T``; may be omitted when ``y`` (or ``u``) is given.
        y: optional ``(T, D)`` observations to condition on.
        u: optional cue observations, ``(T,)`` or ``(T, Du)``.

    Example:
        >>> import jax, numpy as np
        >>> from numpyro.infer import Predictive
        >>> params = GaussianLatentParams(np.zeros(2), np.eye(2), np.ones((1, 2)), np.eye(1), 0.1)
        >>> draws = Predictive(gaussian_latent_model, num_samples=3)(
        ...     jax.random.PRNGKey(0), params, num_timesteps=10)
        >>> draws["s"].shape
        (3, 10, 2)
    """
    if num_timesteps is None:
        if y is not None:
            num_timesteps = jnp.shape(y)[0]
        elif u is not None:
            num_timesteps = jnp.shape(u)[0]
        else:
            raise ValueError("`num_timesteps` is required when neither `y` nor `u` is given")
    if params.cue is None and u is not None:
        raise ValueError("`u` was given but `params.cue` is None")

    mu0 = jnp.asarray(params.initial_mean)
    C = jnp.asarray(params.emission_matrix)
    L0 = jnp.linalg.cholesky(params.initial_cov)
    LR = jnp.linalg.cholesky(params.emission_cov)
    Lbg = jnp.linalg.cholesky(params.background_cov)
    cue = params.cue
    gated = params.gated

    s0 = numpyro.sample("s0", dist.MultivariateNormal(mu0, scale_tril=L0))

    def step(s_prev, xs):
        y_t, u_t = xs
        z = numpyro.sample("z", dist.Bernoulli(probs=params.switch_prob))
        fresh = numpyro.sample("s_fresh", dist.MultivariateNormal(mu0, scale_tril=L0))
        on = z > 0
        s = numpyro.deterministic("s", jnp.where(on[..., None], fresh, s_prev))
        loc = s @ C.T
        if gated:
            loc = jnp.where(on[..., None], loc, C @ mu0)
            tril = jnp.where(on[..., None, None], LR, Lbg)
        else:
            tril = LR
        numpyro.sample("y", dist.MultivariateNormal(loc, scale_tril=tril), obs=y_t)
        if cue is not None:
            zi = on.astype(jnp.int32)
            d = dist.Normal(jnp.asarray(cue.means)[zi], cue.scale)
            if not cue.is_scalar:
                d = d.to_event(1)
            numpyro.sample("u", d, obs=u_t)
        return s, None

    scan(step, s0, (y, u), length=num_timesteps)


def sample_gaussian_latent(
    key: PRNGKeyArray, params: GaussianLatentParams, num_timesteps: int
) -> tuple[Float[Array, "T D"], Array | None, Float[Array, "T K"], Int[Array, " T"]]:
    """Draw one sequence from the Gaussian-latent switching model.

    Runs :func:`gaussian_latent_model` under ``numpyro.handlers.seed`` and ``trace``.

    Args:
        key: JAX PRNG key.
        params: :class:`GaussianLatentParams`.
        num_timesteps: ``T >= 1``.

    Returns:
        ``(y, u, s, z)``: observations ``(T, D)``, cue ``(T,)``/``(T, Du)`` or ``None`` when
        ``params.cue`` is None, latents ``(T, K)`` and switches ``(T,)`` (int32, 1 = switch).

    Example:
        >>> import jax, numpy as np
        >>> params = GaussianLatentParams(np.zeros(2), np.eye(2), np.ones((1, 2)), np.eye(1), 0.1)
        >>> y, u, s, z = sample_gaussian_latent(jax.random.PRNGKey(0), params, 100)
        >>> y.shape, u, s.shape, z.shape
        ((100, 1), None, (100, 2), (100,))
    """
    _check_params(params)
    T = V.check_int(num_timesteps, "num_timesteps")
    return _sample(key, params, T)


@partial(jax.jit, static_argnums=2)
def _sample(key, params, num_timesteps):
    tr = numpyro.handlers.trace(numpyro.handlers.seed(gaussian_latent_model, key)).get_trace(
        params, num_timesteps
    )
    y = tr["y"]["value"]
    u = tr["u"]["value"] if params.cue is not None else None
    s = tr["s"]["value"]
    z = jnp.asarray(tr["z"]["value"]).astype(jnp.int32)
    return y, u, s, z
