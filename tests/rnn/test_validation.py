"""Boundary checks of the RNN cells and the behaviour of their parameter pytrees.

Bad input raises ValueError naming the argument before anything is compiled;
under jit/grad/vmap (tracers) the checks are skipped and the cells still run.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from switchssm import rnn
from tests.rnn import naive

D_IN, H = 3, 4


@pytest.fixture(scope="module")
def params():
    rng = np.random.default_rng(0)
    w = lambda *s: jnp.asarray(rng.standard_normal(s))
    return {
        "mingru": rnn.MinGRUParams(w(H, D_IN), w(H), w(H, D_IN), w(H)),
        "minlstm": rnn.MinLSTMParams(w(H, D_IN), w(H), w(H, D_IN), w(H), w(H, D_IN), w(H)),
        "selective": rnn.SelectiveParams(w(H, D_IN), w(H), w(H, D_IN), w(H)),
        "gru": rnn.GRUParams(*[w(H, D_IN), w(H, H), w(H)] * 3),
        "lstm": rnn.LSTMParams(*[w(H, D_IN), w(H, H), w(H)] * 4),
        "elman": rnn.ElmanParams(w(H, D_IN), w(H, H), w(H)),
        "ligru": rnn.LiGRUParams(*[w(H, D_IN), w(H, H), w(H)] * 2),
    }


SEQUENCE_FNS = {
    "mingru": rnn.mingru,
    "minlstm": rnn.minlstm,
    "selective": rnn.selective,
    "gru": rnn.gru,
    "lstm": rnn.lstm,
    "elman": rnn.elman,
    "ligru": rnn.ligru,
}

X = np.zeros((5, D_IN))
BAD_X = [
    (np.zeros(D_IN), r"`x` must have 2 or 3 dimension"),
    (np.zeros((2, 2, 5, D_IN)), r"`x` must have 2 or 3 dimension"),
    (np.zeros((5, D_IN + 1)), r"`x` must have last dimension input_dim = 3"),
    (np.zeros((0, D_IN)), r"`x` is empty"),
    (np.where(np.arange(5 * D_IN).reshape(5, D_IN) == 4, np.nan, 0.0), r"`x` contains 1 NaN"),
    (np.zeros((5, D_IN), complex), r"`x` must hold real numbers, got complex"),  # not cast
]


@pytest.mark.parametrize("name", SEQUENCE_FNS)
@pytest.mark.parametrize("x,match", BAD_X, ids=["1d", "4d", "dim", "empty", "nan", "complex"])
def test_bad_x_is_named(name, x, match, params):
    with pytest.raises(ValueError, match=match):
        SEQUENCE_FNS[name](params[name], x)


@pytest.mark.parametrize("name", SEQUENCE_FNS)
def test_bad_h0_and_params_are_named(name, params):
    fn, p = SEQUENCE_FNS[name], params[name]
    with pytest.raises(ValueError, match=r"`h0` must have shape \(4,\), got \(3,\)"):
        fn(p, X, np.zeros(3))
    with pytest.raises(ValueError, match=r"`h0` must have shape \(4,\) or \(2, 4\)"):
        fn(p, np.zeros((2, 5, D_IN)), np.zeros((3, H)))
    with pytest.raises(ValueError, match="`h0` contains 1 NaN"):
        fn(p, X, np.array([0.0, np.nan, 0.0, 0.0]))
    other = params["elman"] if name != "elman" else params["gru"]
    with pytest.raises(ValueError, match="`params` must be"):
        fn(other, X)


def test_params_constructors_name_the_field():
    w = np.zeros((H, D_IN))
    match = r"MinGRUParams.candidate_weight` must have shape \(4, 3\)"
    with pytest.raises(ValueError, match=match):
        rnn.MinGRUParams(w, np.zeros(H), np.zeros((H, D_IN + 1)), np.zeros(H))
    match = r"MinGRUParams.gate_bias` must have shape \(4\) \(hidden_dim,\), got \(5,\)"
    with pytest.raises(ValueError, match=match):
        rnn.MinGRUParams(w, np.zeros(H + 1), w, np.zeros(H))
    with pytest.raises(ValueError, match=r"MinGRUParams.gate_weight` must have 2 dimension"):
        rnn.MinGRUParams(np.zeros(H), np.zeros(H), w, np.zeros(H))
    with pytest.raises(ValueError, match=r"GRUParams.reset_recurrent` must have shape \(4, 4\)"):
        rnn.GRUParams(
            w,
            np.zeros((H, H)),
            np.zeros(H),
            w,
            np.zeros((H, H + 1)),
            np.zeros(H),
            w,
            np.zeros((H, H)),
            np.zeros(H),
        )
    with pytest.raises(ValueError, match=r"SelectiveParams.drive_weight` contains 1 NaN"):
        rnn.SelectiveParams(w, np.zeros(H), _one_nan(w), np.zeros(H))
    with pytest.raises(ValueError, match="`hidden_dim` must be a positive integer"):
        rnn.init_mingru(jax.random.PRNGKey(0), D_IN, 0)
    with pytest.raises(ValueError, match="`input_dim` must be a positive integer"):
        rnn.init_gru(jax.random.PRNGKey(0), 2.5, H)
    with pytest.raises(ValueError, match=r"ReadoutParams.bias` must have shape \(2\)"):
        rnn.ReadoutParams(np.zeros((2, H)), np.zeros(3))


def _one_nan(w):
    w = np.array(w, dtype=float)
    w[0, 0] = np.nan
    return w


def test_option_arguments_are_named(params):
    p = params["mingru"]
    with pytest.raises(ValueError, match="`mode` must be one of"):
        rnn.mingru(p, X, mode="fast")
    with pytest.raises(ValueError, match="`space` must be one of"):
        rnn.mingru(p, X, space="prob")
    with pytest.raises(ValueError, match="`candidate` applies to space='log' only"):
        rnn.mingru(p, X, candidate="g")
    with pytest.raises(ValueError, match="`candidate` must be one of"):
        rnn.mingru(p, X, space="log", candidate="relu")
    with pytest.raises(ValueError, match="`candidate` must be one of"):
        rnn.mingru_log(p, X, candidate="softmax")
    with pytest.raises(ValueError, match="`h0` must be strictly positive"):
        rnn.mingru(p, X, np.array([1.0, 0.0, 1.0, 1.0]), space="log")
    with pytest.raises(ValueError, match="`log_h0` must be a log state"):
        rnn.mingru_log(p, X, np.array([0.0, np.inf, 0.0, 0.0]))
    with pytest.raises(ValueError, match="`log_h0` must be a log state"):
        rnn.minlstm_log(params["minlstm"], X, np.array([0.0, np.nan, 0.0, 0.0]))
    with pytest.raises(ValueError, match="`h0` must be strictly positive"):
        rnn.minlstm(params["minlstm"], X, -np.ones(H), space="log")
    with pytest.raises(ValueError, match="`decay` must be one of"):
        rnn.selective(params["selective"], X, decay="softplus")
    with pytest.raises(ValueError, match="`activation` must be one of"):
        rnn.ligru(params["ligru"], X, activation="gelu")
    with pytest.raises(ValueError, match="`c0` must have shape"):
        rnn.lstm(params["lstm"], X, c0=np.zeros(H + 1))
    readout = rnn.ReadoutParams(np.zeros((2, H)), np.zeros(2))
    with pytest.raises(ValueError, match="`h` must have last dimension hidden_dim = 4"):
        rnn.readout(readout, np.zeros((5, H + 1)))


def test_transformations_skip_checks_and_agree(params):
    """jit, vmap and grad see tracers: checks are skipped, results unchanged."""
    p = params["mingru"]
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, D_IN))
    want = naive.mingru(p, x[1], candidate="g")

    jitted = jax.jit(lambda p, x: rnn.mingru(p, x, space="log", mode="sequential"))
    np.testing.assert_allclose(jitted(p, x)[1], want, rtol=1e-12)
    vmapped = jax.vmap(lambda x: rnn.mingru(p, x, space="log", mode="sequential"))
    np.testing.assert_allclose(vmapped(x)[1], want, rtol=1e-12)
    h0 = jnp.full(H, 0.5)  # traced h0 too
    via_h0 = jax.jit(lambda h0: rnn.mingru(p, x, h0, space="log", mode="sequential"))(h0)
    np.testing.assert_allclose(via_h0[1], want, rtol=1e-12)
    grads = jax.jit(jax.grad(lambda p: rnn.mingru(p, x, mode="sequential").sum()))(p)
    assert isinstance(grads, rnn.MinGRUParams)
    assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grads))


def test_params_are_pytrees_that_optimizers_can_update(params):
    p = params["minlstm"]
    leaves, treedef = jax.tree_util.tree_flatten(p)
    assert len(leaves) == len(dataclasses.fields(p))
    # Unflattening bypasses validation, so placeholders (None, object()) are fine.
    sentinel = jax.tree_util.tree_unflatten(treedef, [None] * len(leaves))
    assert sentinel.forget_weight is None
    paths = [jax.tree_util.keystr(k) for k, _ in jax.tree_util.tree_flatten_with_path(p)[0]]
    assert paths[0] == ".forget_weight"
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.forget_bias = np.zeros(H)

    x = np.random.default_rng(2).standard_normal((6, D_IN))
    target = np.ones((6, H))
    loss = lambda p: jnp.mean((rnn.minlstm(p, x, mode="sequential") - target) ** 2)
    opt = optax.sgd(0.1)

    @jax.jit
    def step(p, state):
        value, grads = jax.value_and_grad(loss)(p)
        updates, state = opt.update(grads, state)
        return optax.apply_updates(p, updates), state, value

    state = opt.init(p)
    values = []
    for _ in range(3):
        p, state, value = step(p, state)
        values.append(float(value))
    assert isinstance(p, rnn.MinLSTMParams) and values[-1] < values[0]
    rnn.minlstm(p, x)  # updated parameters pass the boundary checks


def test_integer_inputs_are_promoted(params):
    p = params["elman"]
    x = np.arange(5 * D_IN).reshape(5, D_IN) % 2
    np.testing.assert_allclose(rnn.elman(p, x), naive.elman(p, x), rtol=1e-12)
