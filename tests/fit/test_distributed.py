"""Sharding batches of sequences (switchssm.fit.distributed).

The reference is always the unsharded computation of switchssm.fit and switchssm.inference. The
multi-device checks run in a subprocess with four forced CPU devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=4``, which must be set before JAX starts);
this file is also that subprocess's script (``python test_distributed.py``). In-process tests
see one device and check the filler rows and the validation."""

import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from switchssm.fit import replicate
from switchssm.fit import sequence_mesh
from switchssm.fit import shard_sequences
from switchssm.fit import sharded_log_likelihood
from switchssm.fit.em import _sequence_stats  # private: the E-step of one padded row
from switchssm.inference import batch_log_likelihood
from switchssm.inference.batch import log_likelihoods
from switchssm.models import CategoricalEmission
from switchssm.models import GaussianCue
from switchssm.models import GaussianEmission
from switchssm.models import SwitchingParams
from switchssm.sequences import Sequences
from switchssm.sequences import as_sequences

LENGTHS = [9, 4, 1, 7, 3, 6]  # 6 sequences: padded to 8 rows over 4 devices
CAT = SwitchingParams(
    np.array([0.5, 0.3, 0.2]),
    0.2,
    CategoricalEmission(
        np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.7, 0.1, 0.1], [0.1, 0.1, 0.1, 0.7]])
    ),
    GaussianCue(np.array([0.0, 2.0]), 1.0),
)
GAUSS_GATED = SwitchingParams(
    np.array([0.6, 0.4]),
    0.25,
    GaussianEmission(np.array([[-1.5, 0.0], [1.5, 1.0]]), np.array([[1.0, 0.3], [0.3, 0.5]])),
    GaussianCue(np.array([0.0, 1.5]), 1.0),
    gated=True,
)


def make_data(seed=0):
    """Random categorical and Gaussian batches with scalar cues (any data will do: the
    claims are identities between computations, not about the fit)."""
    rng = np.random.default_rng(seed)
    ys_cat = [rng.integers(0, 4, T) for T in LENGTHS]
    ys_gauss = [rng.normal(size=(T, 2)) for T in LENGTHS]
    us = [rng.normal(size=T) + 2.0 * (rng.random(T) < 0.3) for T in LENGTHS]
    return ys_cat, ys_gauss, us


def _with_empty_rows(data: Sequences, extra: int) -> Sequences:
    """The batch with ``extra`` filler rows appended, built independently of the module."""

    def pad(x):
        x = np.asarray(x)
        return np.concatenate([x, np.zeros((extra, *x.shape[1:]), x.dtype)])

    return Sequences(*(None if x is None else pad(x) for x in data))


# --------------------------------------------------------------------------------------
# In-process (one device).


@pytest.mark.parametrize("which", ["cat", "gauss_gated", "gauss_gated_scan"])
def test_empty_rows_contribute_exactly_zero(which):
    ys_cat, ys_gauss, us = make_data()
    if which == "cat":
        params, data = CAT, as_sequences(ys_cat, us, kind="integer", num_symbols=4)
    else:
        params, data = GAUSS_GATED, as_sequences(ys_gauss, us, step_ndim=1)
    closed_form = which != "gauss_gated_scan"  # the gated model also through the scan E-step
    padded = _with_empty_rows(data, 2)

    @jax.jit
    def stats(d):
        return jax.vmap(_sequence_stats, in_axes=(None, 0, 0, 0, None))(
            params, d.values, d.cue, d.mask, closed_form
        )

    st_pad, ll_pad, _ = stats(padded)
    # every statistic and the log-likelihood of an empty row is exactly 0
    for leaf in jax.tree_util.tree_leaves(st_pad):
        np.testing.assert_array_equal(np.asarray(leaf)[len(LENGTHS) :], 0.0)
    np.testing.assert_array_equal(np.asarray(ll_pad)[len(LENGTHS) :], 0.0)
    np.testing.assert_array_equal(np.asarray(log_likelihoods(params, padded))[len(LENGTHS) :], 0.0)
    # and the real rows are untouched, up to the last bit: a batch of another size is
    # vectorized differently by XLA, so sums may round differently (seen: 1 ulp)
    st, ll, _ = stats(data)
    for a, b in zip(jax.tree_util.tree_leaves(st), jax.tree_util.tree_leaves(st_pad), strict=True):
        np.testing.assert_allclose(np.asarray(b)[: len(LENGTHS)], np.asarray(a), rtol=1e-14)
    np.testing.assert_allclose(np.asarray(ll_pad)[: len(LENGTHS)], np.asarray(ll), rtol=1e-14)


def test_one_device_matches_unsharded():
    ys_cat, _, us = make_data()
    mesh = sequence_mesh()
    data = shard_sequences(as_sequences(ys_cat, us, kind="integer", num_symbols=4), mesh)
    assert data.values.sharding.spec == jax.sharding.PartitionSpec("sequences")
    assert shard_sequences(data, mesh) is data  # already placed: returned as is
    want = np.sum(np.asarray(batch_log_likelihood(CAT, ys_cat, us)))
    # summation order may differ from the per-sequence sum on the host
    np.testing.assert_allclose(float(sharded_log_likelihood(CAT, data)), want, rtol=1e-13)
    rep = replicate(CAT, mesh)
    assert rep.emission.probs.sharding.is_fully_replicated


def test_validation():
    ys_cat, _, us = make_data()
    data = as_sequences(ys_cat, us, kind="integer", num_symbols=4)
    with pytest.raises(ValueError, match="`devices` is empty"):
        sequence_mesh([])
    with pytest.raises(ValueError, match=r"`devices\[0\]` must be a jax.Device"):
        sequence_mesh(["cpu"])
    with pytest.raises(ValueError, match="more than once"):
        sequence_mesh(jax.devices() * 2)
    with pytest.raises(ValueError, match="`seqs` must be a Sequences"):
        shard_sequences(ys_cat)
    other = jax.sharding.Mesh(np.array(jax.devices()), ("batch",))
    with pytest.raises(ValueError, match="axis named 'sequences'"):
        shard_sequences(data, other)
    with pytest.raises(ValueError, match="`mesh` must be a jax.sharding.Mesh"):
        shard_sequences(data, "cpu")
    with pytest.raises(ValueError, match="`params` must be a SwitchingParams"):
        sharded_log_likelihood({}, data)
    with pytest.raises(ValueError, match="`params.cue` is set"):
        sharded_log_likelihood(CAT, as_sequences(ys_cat, kind="integer", num_symbols=4))


# --------------------------------------------------------------------------------------
# Four forced CPU devices, in a subprocess.


def _assert_tree_close(a, b, rtol):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=rtol)


def _four_devices():
    """Run by the subprocess: sharded == unsharded on 4 devices."""
    from switchssm.fit import fit_em
    from switchssm.fit import fit_mle

    assert jax.config.jax_enable_x64
    assert len(jax.devices()) == 4, jax.devices()
    mesh = sequence_mesh()
    ys_cat, ys_gauss, us = make_data()
    key = jax.random.PRNGKey(1)

    data = as_sequences(ys_cat, us, kind="integer", num_symbols=4)
    sharded = shard_sequences(data, mesh)
    for x in sharded:  # 6 sequences -> 8 rows, 2 per device
        assert x.shape[0] == 8
        assert len(x.sharding.device_set) == 4
        assert len(x.addressable_shards) == 4
        assert {s.data.shape[0] for s in x.addressable_shards} == {2}
    np.testing.assert_array_equal(np.asarray(sharded.lengths), LENGTHS + [0, 0])
    for params, ys, emission in [(CAT, ys_cat, "categorical"), (GAUSS_GATED, ys_gauss, "gaussian")]:
        d = shard_sequences(
            as_sequences(
                ys,
                us,
                step_ndim=int(emission == "gaussian"),
                kind="integer" if emission == "categorical" else "real",
            ),
            mesh,
        )
        want = np.sum(np.asarray(batch_log_likelihood(params, ys, us)))
        got = sharded_log_likelihood(params, d)
        assert len(got.sharding.device_set) == 4
        # different summation order (cross-device reduction) only
        np.testing.assert_allclose(float(got), want, rtol=1e-12)

    # EM: categorical (scan E-step) and gated Gaussian (closed-form E-step, s_0 of fillers)
    for ys, emission, gated, K in [
        (ys_cat, "categorical", False, 3),
        (ys_gauss, "gaussian", True, 2),
    ]:
        kw = dict(num_states=K, emission=emission, gated=gated, num_restarts=2, num_iters=4,
                  tol=0.0, key=key, progress=False)  # fmt: skip
        ref = fit_em(ys, us, **kw)
        got = fit_em(ys, us, mesh=mesh, **kw)
        assert got.history.shape == ref.history.shape == (2, 5)
        # a few iterations of sums in a different order: rounding only
        np.testing.assert_allclose(got.history, ref.history, rtol=1e-12)
        _assert_tree_close(got.params, ref.params, 1e-10)
        assert got.metadata["lengths"] == LENGTHS

    # MLE: Adam steps (L-BFGS differentiates the same sharded objective; compiling it would
    # add ~20 s per fit)
    kw = dict(num_states=3, num_restarts=2, num_steps=5, num_lbfgs_steps=0, tol=0.0, key=key,
              progress=False)  # fmt: skip
    ref = fit_mle(ys_cat, us, **kw)
    got = fit_mle(ys_cat, us, mesh=mesh, **kw)
    assert got.history.shape == ref.history.shape
    np.testing.assert_allclose(got.history, ref.history, rtol=1e-12)
    _assert_tree_close(got.params, ref.params, 1e-10)
    print("four devices: ok")


@pytest.mark.slow
def test_four_devices_match_unsharded():
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    ).strip()
    env["JAX_ENABLE_X64"] = "1"
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-W", "error", __file__],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "four devices: ok" in proc.stdout


if __name__ == "__main__":
    _four_devices()
