"""The categorical switching model as NumPyro model functions, and a sampler.

:func:`switching_model` writes every latent explicitly (``s_0``, then per step ``z``,
``s`` and, for the gated emission, the background state ``r``) inside
``numpyro.contrib.control_flow.scan``, so NumPyro's ``Predictive`` samples it and its
enumeration (``config_enumerate`` plus ``numpyro.contrib.funsor``) sums the discrete
latents out. For NUTS or SVI over the global parameters use the marginalized models of
:mod:`switchssm.fit.bayes` instead, which add the exact log-likelihood as one factor
(``docs/numerics.md``: enumerated scans are slow and ``TraceEnum_ELBO`` over them has
returned wrong values silently).

The gated emission draws ``y_t`` from :math:`\\bar P(y) = \\sum_k \\pi_k P(y \\mid k)` when
:math:`z_t = 0`; the model writes that as a background state :math:`r_t \\sim \\pi` drawn
afresh every step, with ``y_t`` emitted from :math:`s_t` if :math:`z_t = 1` and from
:math:`r_t` otherwise. Marginalizing :math:`r_t` gives exactly :math:`\\bar P`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro.contrib.control_flow import scan

from switchssm import _validation as V
from switchssm.models.params import CategoricalEmission
from switchssm.models.params import SwitchingParams
from switchssm.types import Array
from switchssm.types import PRNGKeyArray

_IMPOSSIBLE = -1e30


def _emission_dist(params: SwitchingParams, state):
    em = params.emission
    if isinstance(em, CategoricalEmission):
        return dist.Categorical(probs=em.probs[state])
    return dist.MultivariateNormal(em.means[state], covariance_matrix=em.cov)


def _cue_dist(params: SwitchingParams, z):
    cue = params.cue
    d = dist.Normal(cue.means[z], cue.scale)
    return d if cue.is_scalar else d.to_event(1)


def _num_steps(num_timesteps, y, u):
    for name, obs in (("y", y), ("u", u)):
        if obs is not None:
            T = jnp.shape(obs)[0]
            if num_timesteps is not None and num_timesteps != T:
                raise ValueError(f"`num_timesteps`={num_timesteps} but `{name}` has {T} steps")
            return T
    if num_timesteps is None:
        raise ValueError("give `num_timesteps` or observations `y`")
    return int(num_timesteps)


def switching_model(params: SwitchingParams, num_timesteps: int | None = None, y=None, u=None):
    """NumPyro model of the categorical switching model with explicit discrete latents.

    .. math::
        s_0 \\sim \\pi,\\quad z_t \\sim \\mathrm{Bern}(\\rho),\\quad
        s_t \\mid s_{t-1}, z_t \\sim z_t\\,\\pi + (1 - z_t)\\,\\delta_{s_{t-1}},\\quad
        y_t \\sim P(y \\mid s_t)\\ \\text{(always)},\\quad u_t \\sim N(m_{z_t}, \\tau^2).

    Sites: ``s_0``; per step (scan) ``z``, ``s``, gated only ``r``, then ``y`` and ``u``.

    Args:
        params: :class:`SwitchingParams` (leaves may be NumPyro sample values).
        num_timesteps: ``T``; inferred from ``y`` or ``u`` when they are given.
        y: observations to condition on, or ``None`` to sample them.
        u: cue observations (only if ``params.cue`` is set), or ``None``.

    Example:
        >>> import jax, numpy as np
        >>> from numpyro.infer import Predictive
        >>> from switchssm.models import SwitchingParams, CategoricalEmission, switching_model
        >>> p = SwitchingParams(np.array([.5, .5]), .2, CategoricalEmission(np.eye(2) * .8 + .1))
        >>> Predictive(switching_model, num_samples=3)(jax.random.PRNGKey(0), p, 10)["y"].shape
        (3, 10)
    """
    T = _num_steps(num_timesteps, y, u)
    pi = params.initial_probs
    K = pi.shape[0]
    s0 = numpyro.sample("s_0", dist.Categorical(probs=pi))

    # Every per-step discrete site is carried and its law is made (formally) to depend on
    # its previous value (``+ 0 * prev``). Without this, NumPyro's enumerated scan gives a
    # wrong marginal likelihood for step-local discrete sites (numpyro 0.22; the fix is checked
    # against the exact forward pass in tests/models/test_switching.py). Values are unchanged.
    def transition(carry, obs):
        s_prev, z_prev, r_prev = carry
        y_t, u_t = obs
        z = numpyro.sample("z", dist.Bernoulli(probs=params.switch_prob + 0.0 * z_prev))
        # Copy transition as finite logits (exp(-1e30) == 0 exactly): zero probabilities as
        # log(0) = -inf make NumPyro's enumerated gradients NaN.
        copy = jnp.where(jax.nn.one_hot(s_prev, K, dtype=bool), 0.0, _IMPOSSIBLE)
        logits = jnp.where((z == 1)[..., None], jnp.log(pi), copy.astype(pi.dtype))
        s = numpyro.sample("s", dist.Categorical(logits=logits))
        if params.gated:
            r = numpyro.sample("r", dist.Categorical(probs=pi + 0.0 * r_prev[..., None]))
            state = jnp.where(z == 1, s, r)
        else:
            r = r_prev
            state = s
        numpyro.sample("y", _emission_dist(params, state), obs=y_t)
        if params.cue is not None:
            numpyro.sample("u", _cue_dist(params, z), obs=u_t)
        itype = jnp.result_type(int)
        return (s.astype(itype), z.astype(itype), r.astype(itype)), None

    zero = jnp.zeros((), jnp.result_type(int))
    scan(transition, (s0.astype(zero.dtype), zero, zero), (y, u), length=T)


def _sample_impl(key, params, num_timesteps):
    tr = numpyro.handlers.trace(numpyro.handlers.seed(switching_model, key)).get_trace(
        params, num_timesteps
    )
    u = tr["u"]["value"] if params.cue is not None else None
    return tr["y"]["value"], u, tr["s"]["value"], tr["z"]["value"].astype(jnp.int32)


_sample_jit = jax.jit(_sample_impl, static_argnums=2)


def sample(
    key: PRNGKeyArray, params: SwitchingParams, num_timesteps: int
) -> tuple[Array, Array | None, Array, Array]:
    """Sample one sequence from :func:`switching_model`.

    Args:
        key: PRNG key.
        params: :class:`SwitchingParams`.
        num_timesteps: ``T >= 1``.

    Returns:
        ``(y, u, s, z)``: observations ``(T,)`` or ``(T, D)``, cue ``(T,)``/``(T, Du)`` or
        ``None`` without a cue, latent states ``(T,)`` and switches ``(T,)``.

    Example:
        >>> import jax, numpy as np
        >>> from switchssm.models import SwitchingParams, CategoricalEmission, sample
        >>> p = SwitchingParams(np.array([.5, .5]), .2, CategoricalEmission(np.eye(2) * .8 + .1))
        >>> y, u, s, z = sample(jax.random.PRNGKey(0), p, 100)
        >>> y.shape, u is None
        ((100,), True)
    """
    if not isinstance(params, SwitchingParams):
        raise ValueError(f"`params` must be a SwitchingParams, got {type(params).__name__}")
    num_timesteps = V.check_int(num_timesteps, "num_timesteps")
    V.check_finite(params.initial_probs, "initial_probs")
    return _sample_jit(key, params, int(num_timesteps))
