"""The probability-space kernels (switchssm.inference._scaled) against the log-space
recursions, autodiff and finite differences: evidence, masked smoothing, the forward-backward
VJP and its fallbacks."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from switchssm.inference import _scaled
from switchssm.inference import log_likelihood
from switchssm.inference import smooth
from switchssm.inference._emissions import log_evidence
from switchssm.inference._emissions import log_switch_probs
from switchssm.inference._recursions import forward_log
from switchssm.models import GaussianEmission
from switchssm.models import SwitchingParams
from switchssm.models import sample
from tests.inference.test_exact import make_params

CASES = [
    (gated, emission, cue)
    for gated in (False, True)
    for emission in ("categorical", "gaussian")
    for cue in (None, "scalar", "vector")
]


def _problem(gated, emission, cue, T=40, pad=7):
    rng = np.random.default_rng(1000 * T + CASES.index((gated, emission, cue)))  # fixed seeds
    params = make_params(rng, K=3, gated=gated, emission=emission, cue=cue)
    y, u, _, _ = sample(jax.random.PRNGKey(int(rng.integers(1000))), params, T)
    mask = np.arange(T) < T - pad
    return params, y, u, jnp.asarray(mask)


def _log_space_ll(params, y, u, mask):
    """Reference: the log-space forward recursion on masked log evidence (autodiff)."""
    log_e = jnp.where(mask[:, None, None], log_evidence(params, y, u), 0.0)
    _, log_norms = forward_log(jnp.log(params.initial_probs), log_switch_probs(params), log_e)
    return jnp.sum(log_norms)


def _kernel_ll(params, y, u, mask, fallback=False):
    """The kernel on one padded sequence (``fallback``: exact where it underflows)."""
    ll, ok = _scaled.log_likelihood(params, y, u, mask, fallback=fallback)
    return ll


def _max_rel_err(a, b):
    """Largest leaf-wise error relative to that leaf's size, with a floor of 1e-4 of the
    whole gradient's size (a leaf whose exact gradient is 0, like rho in the gated model
    without a cue, is then compared at the rounding level of the others)."""
    scale = max(float(jnp.max(jnp.abs(r))) for r in jax.tree.leaves(b))
    errs = jax.tree.map(
        lambda x, r: float(jnp.max(jnp.abs(x - r)) / max(float(jnp.max(jnp.abs(r))), 1e-4 * scale)),
        a,
        b,
    )
    return max(jax.tree.leaves(errs))


@pytest.mark.parametrize("gated,emission,cue", CASES)
def test_evidence_is_the_rescaled_log_evidence(gated, emission, cue):
    params, y, u, mask = _problem(gated, emission, cue)
    ev = _scaled.evidence(params, y, u, mask)
    d, w = ev.dense()
    log_e = np.where(np.asarray(mask)[:, None, None], log_evidence(params, y, u), 0.0)
    rho, pi = float(params.switch_prob), np.asarray(params.initial_probs)
    shift = np.asarray(ev.log_shift)[:, None]
    np.testing.assert_allclose(np.log(d), np.log1p(-rho) + log_e[:, 0] - shift, rtol=1e-12)
    np.testing.assert_allclose(np.log(w), np.log(rho * pi) + log_e[:, 1] - shift, rtol=1e-12)
    np.testing.assert_allclose(ev.fresh_total(), w.sum(-1), rtol=1e-13)


@pytest.mark.parametrize("gated,emission,cue", CASES)
def test_forward_backward_vjp_equals_autodiff_of_log_space_recursion(gated, emission, cue):
    """Gradient w.r.t. every parameter (pi, rho, emission, cue) of a padded sequence."""
    params, y, u, mask = _problem(gated, emission, cue)
    v_ref, g_ref = jax.jit(jax.value_and_grad(_log_space_ll))(params, y, u, mask)
    v, g = jax.jit(jax.value_and_grad(_kernel_ll))(params, y, u, mask)
    np.testing.assert_allclose(v, v_ref, rtol=1e-12)
    assert _max_rel_err(g, g_ref) < 1e-9


def test_vjp_matches_finite_differences():
    params, y, u, mask = _problem(False, "gaussian", "scalar", T=60)
    g = jax.grad(_kernel_ll)(params, y, u, mask)
    leaves, tree = jax.tree.flatten(params)
    rng = np.random.default_rng(3)
    dirs = [rng.normal(size=np.shape(x)) for x in leaves]
    h = 1e-5

    def at(eps):
        moved = [jnp.asarray(x) + eps * dx for x, dx in zip(leaves, dirs, strict=True)]
        return float(_log_space_ll(jax.tree.unflatten(tree, moved), y, u, mask))

    fd = (at(h) - at(-h)) / (2 * h)
    directional = sum(
        float(jnp.sum(gx * dx)) for gx, dx in zip(jax.tree.leaves(g), dirs, strict=True)
    )
    np.testing.assert_allclose(directional, fd, rtol=1e-6)


def test_masked_smoother_equals_smoother_of_the_unpadded_sequence():
    params, y, u, mask = _problem(False, "categorical", "scalar", T=50, pad=9)
    L = int(mask.sum())
    sm = _scaled.smoother(params.initial_probs, _scaled.evidence(params, y, u, mask))
    ref = smooth(params, y[:L], u[:L], mode="log")
    assert bool(sm.ok)
    np.testing.assert_allclose(sm.log_likelihood, ref.log_likelihood, rtol=1e-12)
    for name in ("filtered_s", "filtered_z", "smoothed_s", "smoothed_z"):
        np.testing.assert_allclose(getattr(sm, name)[:L], getattr(ref, name), atol=1e-12)


def test_backward_underflow_falls_back_to_log_space(monkeypatch):
    """If the backward messages are unusable (here: forced to zero), the VJP with
    ``fallback`` takes the log-space route and still gives the right gradient, on one
    sequence and on a batch; without it the gradient is NaN (its callers re-run in log
    space), never a wrong number."""
    params, y, u, mask = _problem(False, "categorical", "vector", T=30)
    _, g_ref = jax.value_and_grad(_log_space_ll)(params, y, u, mask)
    true_backward = _scaled.backward

    def broken(ev):
        b, r = true_backward(ev)
        return jnp.zeros_like(b), r

    monkeypatch.setattr(_scaled, "backward", broken)
    g = jax.grad(partial(_kernel_ll, fallback=True))(params, y, u, mask)
    assert _max_rel_err(g, g_ref) < 1e-9
    for leaf in jax.tree.leaves(jax.grad(_kernel_ll)(params, y, u, mask)):
        assert np.all(np.isnan(leaf))

    def batch_ll(p, fallback):
        stack = lambda x: jnp.stack([x, x])  # noqa: E731
        lls, _ = _scaled.log_likelihood(
            p, stack(y), stack(u), stack(mask), batched=True, fallback=fallback
        )
        return jnp.sum(lls)

    g2 = jax.grad(partial(batch_ll, fallback=True))(params)
    assert _max_rel_err(g2, jax.tree.map(lambda x: 2 * x, g_ref)) < 1e-9
    # the public log_likelihood takes the log-space route too
    L = int(mask.sum())
    g_pub = jax.grad(log_likelihood)(params, y[:L], u[:L])
    g_log = jax.grad(partial(log_likelihood, mode="log"))(params, y[:L], u[:L])
    assert _max_rel_err(g_pub, g_log) < 1e-9


def test_underflow_is_reported_and_gradient_is_zero_there():
    """rho = 0 and an observation 60 sd from the only reachable state: every normalizer
    after it underflows. The kernel must say so (callers then use log space) and its
    gradient must be exactly zero, not NaN."""
    means = np.array([[0.0], [60.0]])
    params = SwitchingParams(np.array([0.5, 0.5]), 0.0, GaussianEmission(means, np.eye(1)))
    y = jnp.array([[0.0], [60.0], [0.0]])
    mask = jnp.ones(3, bool)
    ev = _scaled.evidence(params, y, None, mask)
    ll, ok = _scaled.log_likelihood(params, y, None, mask, fallback=False)
    assert float(ok) == 0.0
    assert not bool(_scaled.smoother(params.initial_probs, ev).ok)
    g = jax.grad(_kernel_ll)(params, y, None, mask)
    for leaf in jax.tree.leaves(g):
        np.testing.assert_array_equal(leaf, 0.0)


@pytest.mark.parametrize("emission", ["categorical", "gaussian"])
def test_log_likelihood_modes_and_gradients_in_data(emission):
    """The public log_likelihood: its custom VJP (sequential) against JAX's own reverse mode
    of the log-space recursion (mode="log"), w.r.t. the parameters and, where they are real,
    the observations and cue; "log" also supports forward mode (a Hessian)."""
    from switchssm.inference import log_likelihood

    params, y, u, _ = _problem(False, emission, "scalar", T=30, pad=0)
    argnums = (0, 1, 2) if emission == "gaussian" else (0, 2)
    values = {}
    for mode in ("sequential", "log", "parallel"):
        f = jax.jit(jax.value_and_grad(partial(log_likelihood, mode=mode), argnums=argnums))
        values[mode] = f(params, y, u)
    for mode in ("sequential", "parallel"):
        np.testing.assert_allclose(values[mode][0], values["log"][0], rtol=1e-12)
        assert _max_rel_err(values[mode][1], values["log"][1]) < 1e-9

    def ll_rho(rho):
        return log_likelihood(params.replace(switch_prob=rho), y, u, mode="log")

    hess = float(jax.hessian(ll_rho)(0.3))
    h = 1e-5
    fd = (float(jax.grad(ll_rho)(0.3 + h)) - float(jax.grad(ll_rho)(0.3 - h))) / (2 * h)
    np.testing.assert_allclose(hess, fd, rtol=1e-6)


@pytest.mark.parametrize("emission", ["categorical", "gaussian"])
@pytest.mark.parametrize("K", [3, 20])
def test_both_backward_steps_agree_with_log_space(K, emission):
    """The backward step has a stacked-reduction form for short state vectors (K * 8 bytes
    <= 128 in float64) and the plain form otherwise: smoothed marginals (through b) and the
    gradient (through the VJP's backward pass) of each against the log-space recursions."""
    assert (K * 8 <= _scaled._STACKED_BACKWARD_MAX_BYTES) == (K == 3)  # one case per form
    rng = np.random.default_rng(K)
    params = make_params(rng, K=K, gated=False, emission=emission, cue="scalar")
    y, u, _, _ = sample(jax.random.PRNGKey(K), params, 60)
    seq, ref = smooth(params, y, u, mode="sequential"), smooth(params, y, u, mode="log")
    np.testing.assert_allclose(seq.smoothed_s, ref.smoothed_s, atol=1e-12)
    np.testing.assert_allclose(seq.smoothed_z, ref.smoothed_z, atol=1e-12)
    g = jax.grad(lambda p: log_likelihood(p, y, u))(params)
    g_ref = jax.grad(lambda p: log_likelihood(p, y, u, mode="log"))(params)
    assert _max_rel_err(g, g_ref) < 1e-9


_SMALL_LOOP_FLAG = "--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=1000000000"

# run in a subprocess with and without the flag; prints the results and how many of the
# compiled smoother's loops XLA turned into single kernels
_SUBPROCESS_SMOOTH = """
import json, sys
import jax
jax.config.update("jax_enable_x64", True)
import numpy as np
from switchssm.inference import log_likelihood, smooth
from switchssm.models import sample
from tests.inference.test_exact import make_params
params = make_params(np.random.default_rng(16), K=16, gated=False, emission="categorical",
                     cue="scalar")
y, u, _, _ = sample(jax.random.PRNGKey(16), params, 200)
sm = smooth(params, y, u)
g = jax.grad(log_likelihood)(params, y, u)
hlo = jax.jit(lambda p: smooth(p, y, u)).lower(params).compile().as_text()
json.dump(dict(s=np.asarray(sm.smoothed_s).tolist(), rho=float(g.switch_prob),
               small=hlo.count('xla_cpu_small_call="true"')), sys.stdout)
"""


def _smooth_in_subprocess(flag: bool) -> dict:
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ)
    flags = env.get("XLA_FLAGS", "").replace(_SMALL_LOOP_FLAG, "")
    env["XLA_FLAGS"] = (flags + " " + _SMALL_LOOP_FLAG) if flag else flags
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-c", _SUBPROCESS_SMOOTH], capture_output=True, text=True, env=env,
        cwd=root, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def test_small_loop_threshold_flag_gives_the_same_results():
    """The README's optional XLA flag changes code generation only: at K = 16 it makes XLA
    compile more of the smoother's loops into single kernels, and the smoothed marginals and
    the gradient equal those computed without it."""
    with_flag, without = _smooth_in_subprocess(True), _smooth_in_subprocess(False)
    assert with_flag["small"] > without["small"]  # the flag does change the compilation
    np.testing.assert_allclose(with_flag["s"], without["s"], atol=1e-13)
    np.testing.assert_allclose(with_flag["rho"], without["rho"], rtol=1e-12)
