"""Parameter pytrees for switching models with a categorical latent.

The generative model (docs/theory.md section 2)::

    s_0 ~ pi
    z_t ~ Bernoulli(rho)                              t = 1..T
    s_t = s_{t-1}            if z_t = 0
    s_t ~ pi                 if z_t = 1
    y_t ~ P(y | s_t)         always-emitting; gated: y_t ~ Pbar(y) = sum_s pi(s) P(y|s)
                             when z_t = 0
    u_t ~ N(m_{z_t}, tau^2)  optional cue

Parameters are immutable pytrees, so they pass through ``jit``, ``grad`` and
``vmap``. Construction with concrete arrays validates every field and raises
``ValueError`` naming it; rebuilding inside JAX transformations (unflattening)
skips the checks.
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import jax.scipy.stats as jstats
import numpy as np

from switchssm import _validation as V
from switchssm._pytree import params_pytree
from switchssm._pytree import shape_dim
from switchssm.types import Array
from switchssm.types import Float


@params_pytree
class CategoricalEmission:
    """Categorical observations: ``P(y = v | s = k) = probs[k, v]``.

    Args:
        probs: ``(K, V)`` row-stochastic matrix.

    Attributes:
        kind: ``"categorical"`` (a class constant; ``"gaussian"`` for
            :class:`GaussianEmission`).
    """

    probs: Float[Array, "K V"]
    kind: ClassVar[str] = "categorical"
    _prefix: ClassVar[str] = "emission."

    def _validate(self):
        V.check_ndim(self.probs, "emission.probs", 2, "(K states, V symbols)")
        V.check_probability_vector(self.probs, "emission.probs", axis=-1)

    num_states = shape_dim("probs", 0)
    num_symbols = shape_dim("probs", 1)

    def log_prob(self, y) -> Float[Array, "T K"]:
        """``log P(y_t | s_t = k)`` for every step and state (NaN rows for symbols outside
        ``0..V-1`` or non-integral: what traced, unvalidated input gives)."""
        yi = jnp.asarray(y, dtype=jnp.int32)
        lp = jnp.log(self.probs).T[jnp.clip(yi, 0, self.num_symbols - 1)]
        return jnp.where(self.valid_symbols(y)[:, None], lp, jnp.nan)

    def valid_symbols(self, y):
        """``(T,)`` bool: ``y_t`` is an integer in ``0..V-1`` (works on traced input)."""
        y = jnp.asarray(y)
        ok = (y >= 0) & (y < self.num_symbols)
        if jnp.issubdtype(y.dtype, jnp.floating):
            ok = ok & (y == jnp.round(y))
        return ok

    def sample(self, key, s) -> Array:
        """Draw ``y_t ~ P(y | s_t)`` for an integer array of states ``s``."""
        return jax.random.categorical(key, jnp.log(self.probs)[s])

    def validate_observations(self, y, name: str = "y") -> None:
        V.check_ndim(y, name, 1, "(T,) integer symbols")
        V.check_length(np.shape(y)[0], name)
        V.check_int_range(y, name, 0, self.num_symbols)

    def prepare(self, y):
        return jnp.asarray(y, dtype=jnp.int32)


@params_pytree
class GaussianEmission:
    """Gaussian observations with state means and one shared covariance.

    ``y_t | s_t = k ~ N(means[k], cov)``.

    Args:
        means: ``(K, D)`` state means.
        cov: ``(D, D)`` shared covariance, symmetric positive definite.
    """

    means: Float[Array, "K D"]
    cov: Float[Array, "D D"]
    kind: ClassVar[str] = "gaussian"
    _prefix: ClassVar[str] = "emission."

    def _validate(self):
        V.check_ndim(self.means, "emission.means", 2, "(K states, D dims)")
        V.check_finite(self.means, "emission.means")
        V.check_covariance(self.cov, "emission.cov", dim=np.shape(self.means)[1])

    num_states = shape_dim("means", 0)
    dim = shape_dim("means", 1)

    def log_prob(self, y) -> Float[Array, "T K"]:
        """``log N(y_t | means[k], cov)`` for every step and state.

        One Cholesky factor :math:`LL^\\top = \\Sigma` shared by all states; observations and
        means are whitened once (:math:`L^{-1}y`, :math:`L^{-1}m_k`) and the Mahalanobis
        distances are the squared differences of the whitened vectors (no
        :math:`|a|^2 - 2a\\cdot b + |b|^2` cancellation). Cost :math:`O(TKD + (T + K)D^2)`.
        """
        y = jnp.asarray(y)
        L = jnp.linalg.cholesky(self.cov)
        zy = jsl.solve_triangular(L, y.T, lower=True).T  # (T, D)
        zm = jsl.solve_triangular(L, self.means.T, lower=True).T  # (K, D)
        maha = jnp.sum((zy[:, None, :] - zm[None, :, :]) ** 2, axis=-1)
        log_det = 2.0 * jnp.sum(jnp.log(jnp.diagonal(L)))
        return -0.5 * (maha + log_det + self.dim * jnp.log(2.0 * jnp.pi))

    def sample(self, key, s) -> Array:
        noise = jax.random.multivariate_normal(
            key, jnp.zeros(self.dim, self.means.dtype), self.cov, shape=jnp.shape(s)
        )
        return self.means[s] + noise

    def validate_observations(self, y, name: str = "y") -> None:
        V.check_ndim(y, name, 2, f"(T, D={self.dim}) real observations")
        V.check_length(np.shape(y)[0], name)
        if np.shape(y)[1] != self.dim:
            raise ValueError(f"`{name}` must have shape (T, {self.dim}), got {np.shape(y)}")
        V.check_finite(y, name)
        if V.is_concrete(self.cov) and V.is_concrete(self.means):
            lam = float(np.linalg.eigvalsh(np.asarray(self.cov, np.float64))[0])
            _check_reach(y, self.means, lam, name, self.means.dtype)

    def prepare(self, y):
        return V.as_float(y, "y")


@params_pytree
class GaussianCue:
    """Gaussian cue on the switch: ``u_t | z_t ~ N(means[z_t], scale^2 I)``.

    Args:
        means: ``(2,)`` scalar-cue means ``(m0, m1)``, or ``(2, Du)`` for a vector cue.
        scale: standard deviation ``tau``, a positive scalar (or ``(Du,)`` per dimension).
    """

    means: Float[Array, "2 ..."]
    scale: Float[Array, ...]
    _prefix: ClassVar[str] = "cue."

    def _validate(self):
        V.check_ndim(self.means, "cue.means", (1, 2), "((2,) or (2, Du))")
        if np.shape(self.means)[0] != 2:
            raise ValueError(
                f"`cue.means` must have leading dimension 2 (m0, m1), got {np.shape(self.means)}"
            )
        V.check_finite(self.means, "cue.means")
        V.check_positive(self.scale, "cue.scale")
        if np.ndim(self.scale) > 1 or (
            np.ndim(self.scale) == 1 and np.shape(self.scale)[0] != self.dim
        ):
            raise ValueError(
                f"`cue.scale` must be a scalar or have shape ({self.dim},), "
                f"got {np.shape(self.scale)}"
            )

    @property
    def dim(self) -> int:
        """Cue dimension ``Du`` (1 for a scalar cue)."""
        return 1 if jnp.ndim(self.means) == 1 else self.means.shape[1]

    @property
    def is_scalar(self) -> bool:
        return jnp.ndim(self.means) == 1

    def log_prob(self, u) -> Float[Array, "T 2"]:
        """``log N(u_t | m_z, tau^2)`` for ``z = 0, 1``."""
        u = jnp.asarray(u)
        if self.is_scalar:
            return jstats.norm.logpdf(u[:, None], self.means[None, :], self.scale)
        lp = jstats.norm.logpdf(u[:, None, :], self.means[None, :, :], self.scale)
        return lp.sum(-1)

    def sample(self, key, z) -> Array:
        m = self.means[z]
        return m + self.scale * jax.random.normal(key, m.shape, m.dtype)

    def validate_observations(self, u, T: int, name: str = "u") -> None:
        if self.is_scalar:
            V.check_shape(u, name, (T,), "(one scalar cue per time step)")
        else:
            V.check_shape(u, name, (T, self.dim), "(one cue vector per time step)")
        V.check_finite(u, name)
        if V.is_concrete(self.scale) and V.is_concrete(self.means):
            lam = float(np.min(np.asarray(self.scale, np.float64))) ** 2
            _check_reach(u, self.means, lam, name, self.means.dtype)

    @property
    def separation(self) -> Array:
        """``d = |m1 - m0| / tau`` (Euclidean norm for a vector cue)."""
        diff = (self.means[1] - self.means[0]) / self.scale
        return jnp.sqrt(jnp.sum(diff**2))


Emission = CategoricalEmission | GaussianEmission


def _check_reach(x, means, variance: float, name: str, dtype) -> None:
    """ValueError if a squared distance from ``x`` to a mean, in units of the smallest
    variance, could overflow ``dtype`` (float32 overflows at about 3e38: ``y = 1e20`` with
    unit variance would give an infinite log density, read as "impossible")."""
    largest = float(np.max(np.abs(np.asarray(x, np.float64)), initial=0.0))
    reach = largest + float(np.max(np.abs(np.asarray(means, np.float64))))
    bound = float(np.finfo(dtype).max) / (4.0 * max(1, np.size(means)))
    if variance > 0 and reach**2 / variance > bound:
        raise ValueError(
            f"`{name}` holds values up to {largest:.3g}, too far from the means for "
            f"{np.dtype(dtype)} arithmetic (the squared distance over the variance overflows): "
            "rescale the data or use float64 (jax.config.update('jax_enable_x64', True))"
        )


def check_structure(params, emissions: tuple | None = None) -> None:
    """The non-array fields of a model: ``gated`` a bool, ``cue`` a :class:`GaussianCue` or
    ``None``, and (if ``emissions`` is given) ``emission`` one of those classes."""
    params.__dict__["gated"] = V.check_bool(params.gated, "gated")  # np.bool_ -> bool
    if emissions is not None and not isinstance(params.emission, emissions):
        names = " or ".join(c.__name__ for c in emissions)
        raise ValueError(f"`emission` must be a {names}, got {type(params.emission).__name__}")
    if params.cue is not None and not isinstance(params.cue, GaussianCue):
        raise ValueError(f"`cue` must be a GaussianCue or None, got {type(params.cue).__name__}")
    V.check_one_precision(params)


@params_pytree
class SwitchingParams:
    """Parameters of the switching model with a categorical latent ``s_t in {0..K-1}``.

    Args:
        initial_probs: ``(K,)`` stationary distribution ``pi`` (also the law of ``s_0``).
        switch_prob: ``rho = P(z_t = 1)``, in ``[0, 1]``.
        emission: :class:`CategoricalEmission` or :class:`GaussianEmission`.
        cue: optional :class:`GaussianCue` on the switch.
        gated: ``True`` for the gated emission (``y_t ~ Pbar`` when ``z_t = 0``),
            ``False`` for always-emitting ``y_t ~ P(y | s_t)``. Static (not a leaf).

    Example:
        >>> import numpy as np
        >>> from switchssm.models import SwitchingParams, CategoricalEmission
        >>> p = SwitchingParams(np.ones(3) / 3, 0.1, CategoricalEmission(np.full((3, 4), 0.25)))
        >>> p.num_states
        3
    """

    initial_probs: Float[Array, " K"]
    switch_prob: Float[Array, ""]
    emission: Emission
    cue: GaussianCue | None = None
    gated: bool = False
    _static: ClassVar[tuple] = ("gated",)
    _children: ClassVar[tuple] = ("emission", "cue")

    def _validate(self):
        check_structure(self, (CategoricalEmission, GaussianEmission))
        V.check_ndim(self.initial_probs, "initial_probs", 1, "(K,)")
        V.check_probability_vector(self.initial_probs, "initial_probs")
        V.check_ndim(self.switch_prob, "switch_prob", 0, "(a scalar rho)")
        V.check_unit_interval(self.switch_prob, "switch_prob")
        K = np.shape(self.initial_probs)[0]
        if self.emission.num_states != K:
            raise ValueError(
                f"`emission` has {self.emission.num_states} states but `initial_probs` has {K}"
            )

    num_states = shape_dim("initial_probs", 0)
