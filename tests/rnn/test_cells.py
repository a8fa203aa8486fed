"""RNN cells against naive NumPy loops (tests/rnn/naive.py), and their invariances.

Every expected value comes from the equation written as a float64 Python loop, not
from switchssm. Tolerance policy for this module: float64 comparisons at
``RTOL``/``ATOL`` below (sequential vs parallel differ only by rounding order).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from switchssm import rnn
from tests.rnn import naive

RTOL, ATOL = 1e-9, 1e-11
T, D_IN, H, B = 7, 3, 4, 2


def random_params(init, rng, input_dim=D_IN, hidden_dim=H, scale=0.7):
    """Parameters of ``init``'s type with every leaf drawn from N(0, scale^2).

    Shapes come from ``jax.eval_shape`` (no compilation); nonzero biases exercise
    every term. Rebuilt through the validating constructor.
    """
    shapes = jax.eval_shape(lambda k: init(k, input_dim, hidden_dim), jax.random.PRNGKey(0))
    fields = {
        f.name: jnp.asarray(scale * rng.standard_normal(getattr(shapes, f.name).shape))
        for f in dataclasses.fields(shapes)
    }
    return type(shapes)(**fields)


def cell_case(case_id, cell, ref=None, **run):
    """A case of ``rnn.<cell>(params, x, h0, **run)`` against the loop
    ``naive.<cell>(params, x, h0, **ref)``, with ``rnn.init_<cell>`` parameters.

    ``ref`` defaults to ``run`` without ``mode`` and ``space`` (the model's keywords).
    Log-space cells (``space="log"``) need a positive state: their h0 is drawn positive.
    """
    cell_fn, naive_fn = getattr(rnn, cell), getattr(naive, cell)
    if ref is None:
        ref = {k: v for k, v in run.items() if k not in ("mode", "space")}
    return pytest.param(
        getattr(rnn, f"init_{cell}"),
        lambda p, x, h0: cell_fn(p, x, h0, **run),
        lambda p, x, h0: naive_fn(p, x, h0, **ref),
        run.get("space") == "log",
        id=case_id,
    )


CASES = [
    cell_case("mingru-logit", "mingru", mode="sequential"),
    cell_case("mingru-log-g", "mingru", {"candidate": "g"}, mode="sequential", space="log"),
    cell_case("mingru-log-exp-par", "mingru", mode="parallel", space="log", candidate="exp"),
    cell_case("mingru-log-softmax", "mingru", space="log", candidate="log_softmax"),
    cell_case("minlstm-logit", "minlstm", mode="sequential"),
    cell_case("minlstm-log-g-par", "minlstm", {"candidate": "g"}, mode="parallel", space="log"),
    cell_case("selective-sigmoid", "selective", mode="sequential"),
    cell_case("selective-exp-par", "selective", mode="parallel", decay="exp"),
    cell_case("gru", "gru"),
    pytest.param(
        rnn.init_lstm, rnn.lstm, lambda p, x, h0: naive.lstm(p, x, h0)[0], False, id="lstm"
    ),
    cell_case("elman", "elman"),
    cell_case("ligru-relu", "ligru"),
    cell_case("ligru-tanh", "ligru", activation="tanh"),
]


@pytest.mark.parametrize("init,run,ref,positive", CASES)
def test_matches_naive_loop_single_batched_and_one_step(init, run, ref, positive, rng):
    # Variants marked -par run the parallel scan: checked here against the loop, and
    # the main forms against their sequential twins (values and gradients) below.
    """Each cell equals its equation as a loop; (B, T, D) equals a loop over the batch.

    Also: the default initial state (zeros; for log space the candidate at 0, i.e.
    1/2, 1, 1/H), an (H,) state broadcast over a batch, and T = 1.
    """
    params = random_params(init, rng)
    x = rng.standard_normal((B, T, D_IN))
    h0 = rng.uniform(0.2, 2.0, (B, H)) if positive else rng.standard_normal((B, H))

    single = run(params, x[0], h0[0])
    assert single.shape == (T, H)
    np.testing.assert_allclose(single, ref(params, x[0], h0[0]), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(
        run(params, x[0], None), ref(params, x[0], None), rtol=RTOL, atol=ATOL
    )

    batched = run(params, x, h0)
    assert batched.shape == (B, T, H)
    np.testing.assert_allclose(batched[0], single, rtol=RTOL, atol=ATOL)
    shared = run(params, x, h0[0])
    for b in range(B):
        np.testing.assert_allclose(batched[b], ref(params, x[b], h0[b]), rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(shared[b], ref(params, x[b], h0[0]), rtol=RTOL, atol=ATOL)

    one = run(params, x[:, :1], h0)
    assert one.shape == (B, 1, H)
    for b in range(B):
        np.testing.assert_allclose(one[b], ref(params, x[b, :1], h0[b]), rtol=RTOL, atol=ATOL)


# ----------------------------------------------------------------------------- step functions

STEPS = [
    ("mingru", rnn.init_mingru, rnn.mingru_step, naive.mingru),
    ("minlstm", rnn.init_minlstm, rnn.minlstm_step, naive.minlstm),
    ("selective", rnn.init_selective, rnn.selective_step, naive.selective),
    ("gru", rnn.init_gru, rnn.gru_step, naive.gru),
    ("elman", rnn.init_elman, rnn.elman_step, naive.elman),
    ("ligru", rnn.init_ligru, rnn.ligru_step, naive.ligru),
    (
        "mingru_log",
        rnn.init_mingru,
        lambda p, lh, x: rnn.mingru_log_step(p, lh, x, candidate="g"),
        lambda p, x, h0: np.log(naive.mingru(p, x, np.exp(h0), candidate="g")),
    ),
    (
        "minlstm_log",
        rnn.init_minlstm,
        lambda p, lh, x: rnn.minlstm_log_step(p, lh, x, candidate="exp"),
        lambda p, x, h0: np.log(naive.minlstm(p, x, np.exp(h0), candidate="exp")),
    ),
]


@pytest.mark.parametrize("name,init,step,ref", STEPS, ids=[s[0] for s in STEPS])
def test_step_functions_iterate_to_the_naive_loop(name, init, step, ref, rng):
    params = random_params(init, rng)
    x = rng.standard_normal((B, 3, D_IN))  # steps take any leading axes
    h = h0 = rng.standard_normal((B, H))
    outs = []
    for t in range(x.shape[1]):
        h = step(params, h, x[:, t])
        outs.append(h)
    outs = np.stack(outs, axis=1)
    for b in range(B):
        np.testing.assert_allclose(outs[b], ref(params, x[b], h0[b]), rtol=RTOL, atol=ATOL)


def test_lstm_step_and_cell_states(rng):
    params = random_params(rnn.init_lstm, rng)
    x = rng.standard_normal((T, D_IN))
    h0, c0 = rng.standard_normal(H), rng.standard_normal(H)
    want_h, want_c = naive.lstm(params, x, h0, c0)
    out = rnn.lstm(params, x, h0, c0, return_cell=True)
    np.testing.assert_allclose(out.hidden, want_h, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(out.cell, want_c, rtol=RTOL, atol=ATOL)
    state = rnn.LSTMState(jnp.asarray(h0), jnp.asarray(c0))
    for t in range(T):
        state = rnn.lstm_step(params, state, x[t])
        np.testing.assert_allclose(state.hidden, want_h[t], rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(state.cell, want_c[t], rtol=RTOL, atol=ATOL)


INITS = [
    rnn.init_mingru,
    rnn.init_minlstm,
    rnn.init_selective,
    rnn.init_gru,
    rnn.init_lstm,
    rnn.init_elman,
    rnn.init_ligru,
]


def test_initializers_shapes_and_scales(key):
    """Weights U(+-1/sqrt(fan_in)) with fan_in = D_in (input) or H (recurrent)."""
    d_in, hidden = 9, 16
    for init in INITS:
        params = init(key, d_in, hidden)
        assert (params.input_dim, params.hidden_dim) == (d_in, hidden)
        for f in dataclasses.fields(params):
            v = np.asarray(getattr(params, f.name))
            if f.name.endswith("_bias"):
                assert v.shape == (hidden,)
                want = 1.0 if f.name == "forget_bias" and init is rnn.init_lstm else 0.0
                np.testing.assert_array_equal(v, want)  # LSTM: forget bias 1 (documented)
            else:
                fan_in = d_in if f.name.endswith("_weight") else hidden
                assert v.shape == (hidden, fan_in)
                assert np.abs(v).max() <= 1 / np.sqrt(fan_in)
                assert np.abs(v).max() > 0.5 / np.sqrt(fan_in)  # uses the range
    readout = rnn.init_readout(key, hidden, 3)
    assert readout.weight.shape == (3, hidden) and np.abs(readout.weight).max() <= 0.25


# ------------------------------------------------------------------------ sequential == parallel

PARALLEL = [
    ("mingru-logit", rnn.init_mingru, lambda p, x, m: rnn.mingru(p, x, mode=m)),
    ("mingru-log-g", rnn.init_mingru, lambda p, x, m: rnn.mingru(p, x, mode=m, space="log")),
    (
        "mingru-log-exp",
        rnn.init_mingru,
        lambda p, x, m: rnn.mingru_log(p, x, mode=m, candidate="exp"),
    ),
    (
        "mingru-log-softmax",
        rnn.init_mingru,
        lambda p, x, m: rnn.mingru(p, x, mode=m, space="log", candidate="log_softmax"),
    ),
    ("minlstm-logit", rnn.init_minlstm, lambda p, x, m: rnn.minlstm(p, x, mode=m)),
    ("minlstm-log-g", rnn.init_minlstm, lambda p, x, m: rnn.minlstm_log(p, x, mode=m)),
    ("selective", rnn.init_selective, lambda p, x, m: rnn.selective(p, x, mode=m)),
]


@pytest.mark.parametrize("name,init,run", PARALLEL, ids=[c[0] for c in PARALLEL])
def test_parallel_equals_sequential_values_and_gradients(name, init, run, rng):
    params = random_params(init, rng)
    x = jnp.asarray(rng.standard_normal((B, T, D_IN)))
    weights = jnp.asarray(rng.standard_normal((B, T, H)))

    def loss(p, x, mode):
        return jnp.sum(weights * run(p, x, mode))

    # One jit around value and gradient: one compilation per mode.
    value_and_grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)), static_argnums=2)
    out = {mode: value_and_grad(params, x, mode) for mode in ("sequential", "parallel")}
    np.testing.assert_allclose(out["parallel"][0], out["sequential"][0], rtol=RTOL)
    flat_s = jax.tree_util.tree_leaves(out["sequential"][1])
    flat_p = jax.tree_util.tree_leaves(out["parallel"][1])
    assert len(flat_s) == len(flat_p) == len(jax.tree_util.tree_leaves(params)) + 1
    for gs, gp in zip(flat_s, flat_p, strict=True):
        assert np.all(np.isfinite(gs)) and np.any(gs != 0)
        np.testing.assert_allclose(gp, gs, rtol=1e-8, atol=1e-11)


def test_sequential_gradient_matches_finite_differences(rng):
    """Autodiff through the minGRU scan against central differences of the naive loop."""
    params = random_params(rnn.init_mingru, rng)
    x = rng.standard_normal((T, D_IN))
    w = rng.standard_normal((T, H))
    g = jax.grad(lambda p: jnp.sum(w * rnn.mingru(p, x, space="log", mode="sequential")))(params)
    eps = 1e-6
    for field in ("gate_weight", "candidate_bias"):
        base = np.asarray(getattr(params, field))
        fd = np.zeros_like(base)
        for idx in np.ndindex(base.shape):
            vals = []
            for sign in (1, -1):
                pert = base.copy()
                pert[idx] += sign * eps
                p2 = dataclasses.replace(params, **{field: pert})
                vals.append(np.sum(w * naive.mingru(p2, x, candidate="g")))
            fd[idx] = (vals[0] - vals[1]) / (2 * eps)
        # Central differences in float64 are accurate to about eps^2 + 1e-16/eps.
        np.testing.assert_allclose(getattr(g, field), fd, rtol=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------- log space


def test_log_space_forms_agree(rng):
    """exp(mingru_log) == mingru(space="log") == the real-space recursion with g, naive."""
    params = random_params(rnn.init_mingru, rng, scale=2.0)  # g's both branches
    x = rng.standard_normal((T, D_IN))
    want = naive.mingru(params, x, candidate="g")
    np.testing.assert_allclose(np.exp(rnn.mingru_log(params, x)), want, rtol=RTOL)
    np.testing.assert_allclose(rnn.mingru(params, x, space="log"), want, rtol=RTOL)
    log_h0 = np.log(rng.uniform(0.1, 3.0, H))
    np.testing.assert_allclose(
        np.exp(rnn.mingru_log(params, x, log_h0)),
        naive.mingru(params, x, np.exp(log_h0), candidate="g"),
        rtol=RTOL,
    )
    lstm_params = random_params(rnn.init_minlstm, rng, scale=2.0)
    np.testing.assert_allclose(
        np.exp(rnn.minlstm_log(lstm_params, x)),
        naive.minlstm(lstm_params, x, candidate="g"),
        rtol=RTOL,
    )


def test_log_space_survives_underflow(rng):
    """States near exp(-300) underflow float64 in real space; the log form stays exact."""
    params = random_params(rnn.init_mingru, rng)
    params = dataclasses.replace(params, candidate_bias=params.candidate_bias - 800.0)
    x = rng.standard_normal((T, D_IN))
    log_h0 = np.full(H, -800.0)
    want = naive.mingru_log_space(params, x, log_h0, candidate="exp")
    for mode in ("sequential", "parallel"):
        got = rnn.mingru_log(params, x, log_h0, mode=mode, candidate="exp")
        assert np.all(np.isfinite(got)) and np.all(got < -700)
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_log_softmax_candidate_with_shared_gate_stays_a_distribution(rng):
    """One gate for all units: h_t is a convex combination of distributions."""
    params = random_params(rnn.init_mingru, rng)
    row = rng.standard_normal(D_IN)
    shared = dataclasses.replace(
        params, gate_weight=np.tile(row, (H, 1)), gate_bias=np.full(H, 0.3)
    )
    x = rng.standard_normal((T, D_IN))
    h = rnn.mingru(shared, x, space="log", candidate="log_softmax")
    np.testing.assert_allclose(h.sum(-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(h, naive.mingru(shared, x, candidate="log_softmax"), rtol=RTOL)
    one_hot = np.where(np.arange(H) == 0, 0.0, -np.inf)  # log of a point mass
    log_h = rnn.mingru_log(shared, x, one_hot, candidate="log_softmax")
    np.testing.assert_allclose(np.exp(log_h).sum(-1), 1.0, rtol=1e-12)  # -inf start is fine
    np.testing.assert_allclose(
        log_h, naive.mingru_log_space(shared, x, one_hot, candidate="log_softmax"), rtol=1e-12
    )


def test_log_space_float32_long_sequence(key):
    """T = 10^5 in float32: finite and within 1e-5 relative of float64.

    The cumulative-sum formulation of the paper's code drifts to about 1e-2 here
    (docs/numerics.md), so this test separates the two. Sequential only
    (the CPU default): the parallel form costs seconds at this length on CPU and
    its long-sequence accuracy is tested in tests/test_scan.py.
    """
    mode = "sequential"
    num_timesteps = 100_000
    params64 = random_params(rnn.init_mingru, np.random.default_rng(1), scale=1.0)
    x64 = np.random.default_rng(2).standard_normal((num_timesteps, D_IN))
    params32 = jax.tree_util.tree_map(lambda l: jnp.asarray(l, jnp.float32), params64)
    x32 = x64.astype(np.float32)
    log_h32 = rnn.mingru_log(params32, x32, mode=mode)
    assert log_h32.dtype == jnp.float32
    assert np.all(np.isfinite(log_h32))
    # Reference: float64 run on the *same* float32-rounded inputs, so the comparison
    # measures accumulation in the scan, not the rounding of the inputs.
    params_r = jax.tree_util.tree_map(lambda l: jnp.asarray(l, jnp.float64), params32)
    log_h64 = rnn.mingru_log(params_r, x32.astype(np.float64), mode="sequential")
    rel = np.abs(np.expm1(np.asarray(log_h32, np.float64) - np.asarray(log_h64)))
    assert rel.max() < 1e-5, rel.max()


def _mingru_g_float64_loop(params, x):
    """h_t = (1 - z_t) h_{t-1} + z_t g(W_h x_t + b_h) from h_0 = 1/2, float64, one
    Python loop per unit over plain floats (gates precomputed with NumPy)."""
    w = {
        f.name: np.asarray(getattr(params, f.name), np.float64) for f in dataclasses.fields(params)
    }
    x = np.asarray(x, np.float64)
    z = naive.sigmoid(x @ w["gate_weight"].T + w["gate_bias"])
    cand = naive.g(x @ w["candidate_weight"].T + w["candidate_bias"])
    out = np.empty_like(z)
    for j in range(z.shape[1]):
        h, col = 0.5, []
        for z_t, c_t in zip(z[:, j].tolist(), cand[:, j].tolist(), strict=True):
            h = (1.0 - z_t) * h + z_t * c_t
            col.append(h)
        out[:, j] = col
    return out


@pytest.mark.parametrize("mode", ["sequential", "parallel"])
def test_positive_state_float32_at_a_million_steps(mode):
    """T = 10^6, float32, both modes against the float64 loop: finite, positive, accurate.

    Unit 0 has gate bias -7 (z ~ 1e-3: the product of 1 - z over the sequence is
    about e^-1000, far below float32's range, which is why the parallel form stays in
    log space); unit 1 has bias 0. Sequential runs in linear space (a convex
    combination cannot leave the candidates' range) and is checked as h and log h.
    Tolerance, in units of u = 2^-24: each step keeps a fraction 1 - z of the previous
    relative error and adds O(u), so rounding random-walks over the effective memory,
    about 1 / mean z ~ 10^3 steps for unit 0: ~ sqrt(10^3) u ~ 30 u; the parallel tree
    adds O(u |log h|) per level (log2 T = 20 levels). Measured maxima: 30 u
    (sequential) and 20 u (parallel); the bound 200 u leaves 6x.
    """
    n_t = 10**6
    rng = np.random.default_rng(3)
    params = random_params(rnn.init_mingru, rng, input_dim=2, hidden_dim=2, scale=1.0)
    params = dataclasses.replace(params, gate_bias=np.array([-7.0, 0.0]))
    params32 = jax.tree_util.tree_map(lambda l: jnp.asarray(l, jnp.float32), params)
    x32 = rng.standard_normal((n_t, 2)).astype(np.float32)
    ref = _mingru_g_float64_loop(params32, x32)  # the float32-rounded inputs, in float64
    log_h = rnn.mingru_log(params32, x32, mode=mode)
    outputs = {"log h": np.exp(np.asarray(log_h, np.float64))}
    if mode == "sequential":
        h = rnn.mingru(params32, x32, mode=mode, space="log")
        assert h.dtype == jnp.float32
        outputs["h"] = np.asarray(h, np.float64)
    assert log_h.dtype == jnp.float32
    assert np.all(np.isfinite(log_h))
    tol = 200 * np.finfo(np.float32).eps / 2
    for name, got in outputs.items():
        assert np.all(got > 0) and np.all(np.isfinite(got)), name
        rel = np.abs(got / ref - 1.0).max()
        assert rel < tol, f"{mode} {name}: max relative error {rel:.2e}, tolerance {tol:.2e}"


# ----------------------------------------------------------------------------- gates, activations


def test_minlstm_normalized_gates(rng):
    params = random_params(rnn.init_minlstm, rng, scale=3.0)
    x = rng.standard_normal((B, T, D_IN))
    gates = rnn.minlstm_gates(params, x)
    np.testing.assert_allclose(gates.forget + gates.input, 1.0, rtol=1e-14)
    want_f, want_i = naive.minlstm_gates(params, x)
    np.testing.assert_allclose(gates.forget, want_f, rtol=1e-12)
    np.testing.assert_allclose(gates.input, want_i, rtol=1e-12)
    log_gates = rnn.minlstm_gates(params, x, log=True)
    np.testing.assert_allclose(log_gates.forget, np.log(want_f), rtol=1e-12)
    np.testing.assert_allclose(np.logaddexp(*log_gates), 0.0, atol=1e-14)


def test_g_activation_and_its_log(rng):
    v = np.concatenate([rng.standard_normal(50) * 5, [0.0, -1e-12, 1e-12]])
    np.testing.assert_allclose(rnn.g_activation(v), naive.g(v), rtol=1e-14)
    np.testing.assert_allclose(rnn.log_g_activation(v), np.log(naive.g(v)), rtol=1e-13)
    # Far left tail: log g = log sigmoid(v) ~ v, where sigmoid itself underflows.
    far = np.array([-800.0, -1e4])
    np.testing.assert_allclose(rnn.log_g_activation(far), far, rtol=1e-14)
    slope = jax.jit(jax.vmap(jax.grad(rnn.log_g_activation)))
    grads = slope(jnp.array([-1e4, -1.0, 0.0, 1.0, 1e4]))
    assert np.all(np.isfinite(grads))
    # d/dv log g: 1 - sigmoid(v) left of 0, 1/(v + 1/2) right of (and at) 0.
    np.testing.assert_allclose(
        grads, [1.0, 1 - naive.sigmoid(-1.0), 2.0, 1 / 1.5, 1 / 10000.5], rtol=1e-12
    )


def test_readout_is_softmax_of_a_linear_map(rng):
    params = random_params(rnn.init_readout, rng, H, 5)
    h = rng.standard_normal((B, T, H))
    logits = h @ np.asarray(params.weight).T + np.asarray(params.bias)
    want = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(rnn.readout(params, h), want, rtol=1e-12)
    np.testing.assert_allclose(rnn.readout_log(params, h), np.log(want), rtol=1e-12)
