"""The parameter base class and the scalar checkers: what they accept and what they refuse."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from switchssm import _validation as V
from switchssm._pytree import registered
from switchssm.models import CategoricalEmission
from switchssm.models import GaussianCue
from switchssm.models import SwitchingParams
from switchssm.rnn import MinGRUParams

B = np.array([[0.8, 0.2], [0.3, 0.7]])


def test_round_trip_through_jit_keeps_structure_and_static_fields():
    p = SwitchingParams(np.array([0.5, 0.5]), 0.1, CategoricalEmission(B), gated=True)
    leaves, treedef = jax.tree_util.tree_flatten(p)
    assert len(leaves) == 3 and treedef.num_leaves == 3  # pi, rho, B; gated is static
    back = jax.jit(lambda q: q)(p)
    assert back.gated is True and isinstance(back.emission, CategoricalEmission)
    np.testing.assert_array_equal(back.emission.probs, B)
    # a different static value is a different tree structure (a different program)
    assert jax.tree_util.tree_structure(p.replace(gated=False)) != treedef
    paths = [jax.tree_util.keystr(k) for k, _ in jax.tree_util.tree_flatten_with_path(p)[0]]
    assert paths == [".initial_probs", ".switch_prob", ".emission.probs"]
    assert {"SwitchingParams", "MinGRUParams", "TrainedCell"} <= set(registered())


@pytest.mark.parametrize(
    "value, match",
    [
        (np.array([0.5, 0.5], dtype=complex), "complex"),
        (np.array([True, False]), "bool"),
        (np.array([0.5, 0.5], dtype=np.float16), "16-bit"),
        (np.array(["a", "b"]), "real numbers"),
    ],
)
def test_bad_dtypes_are_refused_naming_the_field(value, match):
    with pytest.raises(ValueError, match=f"`initial_probs`.*{match}"):
        SwitchingParams(value, 0.1, CategoricalEmission(B))
    with pytest.raises(ValueError, match=match):
        CategoricalEmission(np.broadcast_to(value, (2, 2)))


def test_big_endian_and_integer_inputs_are_converted():
    be = np.array([[0.8, 0.2], [0.3, 0.7]], dtype=">f8")
    em = CategoricalEmission(be)
    assert em.probs.dtype == jnp.result_type(float)
    np.testing.assert_array_equal(em.probs, B)
    cue = GaussianCue(np.array([0, 2]), 1)  # integers become the default float
    assert cue.means.dtype == jnp.result_type(float)
    with pytest.raises(ValueError, match="switch_prob"):
        SwitchingParams(np.array([0.5, 0.5]), True, CategoricalEmission(B))  # a bool is no rho
    with pytest.raises(ValueError, match="gated"):
        SwitchingParams(np.array([0.5, 0.5]), 0.1, CategoricalEmission(B), gated="no")
    # cells keep float32 weights as float32
    w = np.zeros((3, 2), np.float32)
    cell = MinGRUParams(w, np.zeros(3, np.float32), w, np.zeros(3, np.float32))
    assert cell.gate_weight.dtype == np.float32


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: V.check_int(2.0, "n"), "`n` must be a positive integer, got 2.0"),
        (lambda: V.check_int(True, "n"), "bool"),
        (lambda: V.check_int(-1, "n", low=0), "nonnegative"),
        (lambda: V.check_int(5, "n", low=1, high=3), r"in \[1, 3\]"),
        (lambda: V.check_float("1", "lr"), "real number"),
        (lambda: V.check_float(0.0, "lr", low=0, low_open=True), "> 0"),
        (lambda: V.check_float(np.nan, "lr"), "finite"),
        (lambda: V.check_bool(1, "flag"), "True or False"),
        (lambda: V.check_choice("b", "mode", ("a",)), "one of"),
        (lambda: V.as_key(-1), "seed"),
        (lambda: V.as_key("seed"), "jax.random key"),
    ],
)
def test_scalar_checkers(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_scalar_checkers_accept():
    assert V.check_int(np.int64(3), "n") == 3
    assert V.check_float(np.float32(0.5), "x", low=0, high=1) == 0.5
    assert V.check_bool(np.bool_(True), "b") is True
    k = V.as_key(0)
    np.testing.assert_array_equal(
        jax.random.key_data(k), jax.random.key_data(jax.random.PRNGKey(0))
    )
