r"""The input-driven HMM (IOHMM): a hidden Markov chain whose transition the input selects.

.. math::
    s_0 \sim \pi,\qquad s_t \mid s_{t-1}, x_t \sim P_{x_t}[s_{t-1}, \cdot\,],\qquad
    y_t \mid s_t \sim E[s_t, \cdot\,],

with one row-stochastic ``K x K`` matrix per input symbol and a categorical emission.
Its forward filter :math:`\alpha_t \propto \mathrm{diag}(E[:, y_t])\, P_{x_t}' \alpha_{t-1}`
is a normalized bilinear recurrence (:func:`switchssm.bridges.bilinear_from_iohmm`); a
deterministic finite-state machine is its noiseless corner (0/1 transitions).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.contrib.control_flow import scan

from switchssm import _validation as V
from switchssm._pytree import params_pytree
from switchssm._pytree import shape_dim
from switchssm.types import Array
from switchssm.types import Float
from switchssm.types import Int
from switchssm.types import PRNGKeyArray

__all__ = ["IOHMMParams", "iohmm_model", "sample_iohmm"]


@params_pytree
class IOHMMParams:
    """Parameters of an input-driven HMM.

    Args:
        initial_probs: ``(K,)``, the law of ``s_0`` (before the first input).
        transition_probs: ``(V_in, K, K)``; ``transition_probs[x, j, i] =
            P(s_t = i | s_{t-1} = j, x_t = x)`` (each ``[x, j]`` row sums to one).
        emission_probs: ``(K, V_out)``; ``emission_probs[k, y] = P(y_t = y | s_t = k)``.
    """

    initial_probs: Float[Array, " K"]
    transition_probs: Float[Array, "X K K"]
    emission_probs: Float[Array, "K Y"]

    def _validate(self):
        V.check_ndim(self.initial_probs, "initial_probs", 1, "(K,)")
        V.check_probability_vector(self.initial_probs, "initial_probs")
        K = self.initial_probs.shape[0]
        V.check_ndim(self.transition_probs, "transition_probs", 3, "(num_inputs, K, K)")
        if self.transition_probs.shape[1:] != (K, K) or self.transition_probs.shape[0] < 1:
            raise ValueError(
                f"`transition_probs` must have shape (num_inputs, {K}, {K}), got "
                f"{tuple(self.transition_probs.shape)}"
            )
        V.check_probability_vector(self.transition_probs, "transition_probs", axis=-1)
        V.check_ndim(self.emission_probs, "emission_probs", 2, "(K, num_outputs)")
        if self.emission_probs.shape[0] != K:
            raise ValueError(
                f"`emission_probs` must have {K} rows (one per state), got shape "
                f"{tuple(self.emission_probs.shape)}"
            )
        V.check_probability_vector(self.emission_probs, "emission_probs", axis=-1)

    num_states = shape_dim("initial_probs", 0)
    num_inputs = shape_dim("transition_probs", 0)
    num_outputs = shape_dim("emission_probs", 1)

    def validate_sequences(self, x, y=None) -> None:
        """Check ``x`` (and ``y``) are ``(T,)`` integer symbols in range, of one length."""
        V.check_ndim(x, "x", 1, "(T,) integer input symbols")
        V.check_length(np.shape(x)[0], "x")
        V.check_int_range(x, "x", 0, self.num_inputs)
        if y is not None:
            V.check_ndim(y, "y", 1, "(T,) integer output symbols")
            if np.shape(y)[0] != np.shape(x)[0]:
                raise ValueError(
                    f"`y` must have as many steps as `x` ({np.shape(x)[0]}), got {np.shape(y)[0]}"
                )
            V.check_int_range(y, "y", 0, self.num_outputs)


def iohmm_model(params: IOHMMParams, x, y=None):
    """NumPyro model of the IOHMM with explicit discrete latents ``s_0`` and ``s`` (a scan).

    Args:
        params: :class:`IOHMMParams` (leaves may be NumPyro sample values).
        x: ``(T,)`` integer inputs (always given: the model is conditional on them).
        y: ``(T,)`` outputs to condition on, or ``None`` to sample them.

    Example:
        >>> import jax, numpy as np
        >>> from numpyro.infer import Predictive
        >>> P = np.array([[[.9, .1], [.2, .8]], [[.1, .9], [.7, .3]]])
        >>> params = IOHMMParams(np.array([.5, .5]), P, np.array([[.8, .2], [.3, .7]]))
        >>> out = Predictive(iohmm_model, num_samples=3)(jax.random.PRNGKey(0), params,
        ...                                                np.array([0, 1, 1, 0]))
        >>> out["y"].shape, out["s"].shape
        ((3, 4), (3, 4))
    """
    x = jnp.asarray(x, dtype=jnp.int32)
    s0 = numpyro.sample("s_0", dist.Categorical(probs=params.initial_probs))

    def step(s_prev, inputs):
        x_t, y_t = inputs
        s = numpyro.sample("s", dist.Categorical(probs=params.transition_probs[x_t, s_prev]))
        numpyro.sample("y", dist.Categorical(probs=params.emission_probs[s]), obs=y_t)
        return s, s

    scan(step, s0, (x, None if y is None else jnp.asarray(y, dtype=jnp.int32)))


def sample_iohmm(
    key: PRNGKeyArray, params: IOHMMParams, x
) -> tuple[Int[Array, " T"], Int[Array, " T"]]:
    """Draw states and outputs of the IOHMM for given inputs.

    Args:
        key: PRNG key.
        params: :class:`IOHMMParams`.
        x: ``(T,)`` integer inputs.

    Returns:
        ``(s, y)``: ``(T,)`` states ``s_1..s_T`` and ``(T,)`` outputs.

    Example:
        >>> P = np.array([[[.9, .1], [.2, .8]]])
        >>> params = IOHMMParams(np.array([.5, .5]), P, np.array([[.8, .2], [.3, .7]]))
        >>> s, y = sample_iohmm(jax.random.PRNGKey(0), params, np.zeros(5, int))
        >>> s.shape, y.shape
        ((5,), (5,))
    """
    params.validate_sequences(x)
    key = V.as_key(key)
    x = jnp.asarray(x, dtype=jnp.int32)
    k0, ks, ky = jax.random.split(key, 3)
    log_P = jnp.log(params.transition_probs)
    s0 = jax.random.categorical(k0, jnp.log(params.initial_probs))

    def step(s_prev, inputs):
        x_t, k = inputs
        s = jax.random.categorical(k, log_P[x_t, s_prev])
        return s, s

    _, s = jax.lax.scan(step, s0, (x, jax.random.split(ks, x.shape[0])))
    y = jax.random.categorical(ky, jnp.log(params.emission_probs)[s])
    return s, y
