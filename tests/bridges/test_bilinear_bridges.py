"""Finite-state machines, input-driven HMMs and the switching model as bilinear cells
(switchssm.bridges.bilinear), each against an independent reference: a plain loop over the
machine, a dense NumPy forward pass, brute-force enumeration of state paths, NumPyro's own
enumeration, and the exact switching filter."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.contrib.funsor import config_enumerate
from numpyro.contrib.funsor import enum
from numpyro.contrib.funsor import log_density

from switchssm.bridges import bilinear_from_fsm
from switchssm.bridges import bilinear_from_iohmm
from switchssm.bridges import bilinear_from_switching
from switchssm.bridges import iohmm_filter
from switchssm.bridges import iohmm_inputs
from switchssm.bridges import switching_operators
from switchssm.inference import filter as exact_filter
from switchssm.inference import gated_gate_and_candidate
from switchssm.models import IOHMMParams
from switchssm.models import iohmm_model
from switchssm.models import sample
from switchssm.models import sample_iohmm
from switchssm.rnn import bilinear
from tests.switching_models import three_state_params


def _fsm_loop(transition, q0, symbols):
    q, out = q0, []
    for k in symbols:
        q = transition[k][q]
        out.append(q)
    return np.array(out)


@pytest.mark.parametrize("num_states", [2, 5, 10, 25])
def test_bilinear_cell_simulates_a_random_fsm_exactly(num_states):
    rng = np.random.default_rng(num_states)
    num_symbols = 3
    transition = rng.integers(0, num_states, size=(num_symbols, num_states))
    q0 = int(rng.integers(num_states))
    symbols = rng.integers(0, num_symbols, size=10_000)
    states = _fsm_loop(transition, q0, symbols)
    cell = bilinear_from_fsm(transition, q0)
    x = jax.nn.one_hot(symbols, num_symbols)
    expected = np.eye(num_states)[states]
    for mode in ("sequential", "parallel"):
        h = np.asarray(bilinear(cell, x, mode=mode))
        np.testing.assert_array_equal(h, expected)  # one-hot, exactly, at every step
    h = np.asarray(bilinear(cell, x, mode="parallel", normalize=True))
    np.testing.assert_array_equal(h, expected)


@pytest.mark.parametrize(
    "transition, q0, match",
    [
        ([[0, 2], [1, 0]], 0, "0..1"),
        ([[0, -1], [1, 0]], 0, "0..1"),
        ([[0, 0.5], [1, 0]], 0, "integer"),
        ([0, 1], 0, "num_symbols, num_states"),
        ([[True, False]], 0, "integer"),
        ([[0, 1], [1, 0]], 2, "initial_state"),
        ([[0, 1], [1, 0]], 0.5, "initial_state"),
    ],
)
def test_bad_fsm_raises(transition, q0, match):
    with pytest.raises(ValueError, match=match):
        bilinear_from_fsm(transition, q0)


def _random_iohmm(rng, K=3, X=2, Y=3):
    return IOHMMParams(
        rng.dirichlet(np.ones(K)),
        rng.dirichlet(np.ones(K) * 0.7, size=(X, K)),
        rng.dirichlet(np.ones(Y), size=K),
    )


def _dense_forward(params, x, y):
    """The textbook normalized forward pass in NumPy."""
    pi, P, E = (
        np.asarray(a)
        for a in (params.initial_probs, params.transition_probs, params.emission_probs)
    )
    alpha, out = pi, []
    for xt, yt in zip(x, y, strict=True):
        alpha = E[:, yt] * (P[xt].T @ alpha)
        alpha = alpha / alpha.sum()
        out.append(alpha)
    return np.array(out)


def _brute_force_filter(params, x, y):
    """P(s_t | x_{1:t}, y_{1:t}) by summing the joint over every state path of the prefix."""
    pi, P, E = (
        np.asarray(a)
        for a in (params.initial_probs, params.transition_probs, params.emission_probs)
    )
    K = pi.shape[0]
    out = []
    for t in range(1, len(x) + 1):
        marg = np.zeros(K)
        for path in itertools.product(range(K), repeat=t + 1):  # s_0 .. s_t
            p = pi[path[0]]
            for i in range(1, t + 1):
                p *= P[x[i - 1], path[i - 1], path[i]] * E[path[i], y[i - 1]]
            marg[path[-1]] += p
        out.append(marg / marg.sum())
    return np.array(out)


def test_normalized_bilinear_state_is_the_iohmm_filter():
    rng = np.random.default_rng(0)
    params = _random_iohmm(rng)
    x = rng.integers(0, 2, size=60)
    _, y = sample_iohmm(jax.random.PRNGKey(1), params, x)
    dense = _dense_forward(params, x, np.asarray(y))
    for mode in ("sequential", "parallel"):
        np.testing.assert_allclose(iohmm_filter(params, x, y, mode=mode), dense, atol=1e-12)
    # tiny problem: brute force over all K^(t+1) state paths of every prefix
    xs, ys = x[:5], np.asarray(y)[:5]
    np.testing.assert_allclose(
        iohmm_filter(params, xs, ys), _brute_force_filter(params, xs, ys), atol=1e-13
    )
    # the cell's raw state is the joint P(s_t, y_{1:t} | x_{1:t}); its sum is the likelihood
    cell = bilinear_from_iohmm(params)
    h = bilinear(cell, iohmm_inputs(params, xs, ys))
    joint = sum(
        np.prod(
            [np.asarray(params.initial_probs)[path[0]]]
            + [
                np.asarray(params.transition_probs)[xs[i - 1], path[i - 1], path[i]]
                * np.asarray(params.emission_probs)[path[i], ys[i - 1]]
                for i in range(1, 6)
            ]
        )
        for path in itertools.product(range(3), repeat=6)
    )
    np.testing.assert_allclose(float(h[-1].sum()), joint, rtol=1e-12)


def test_iohmm_filter_stays_finite_on_long_sequences():
    rng = np.random.default_rng(2)
    params = _random_iohmm(rng)
    x = rng.integers(0, 2, size=20_000)
    _, y = sample_iohmm(jax.random.PRNGKey(3), params, x)
    post = np.asarray(iohmm_filter(params, x, y))
    assert np.all(np.isfinite(post))
    np.testing.assert_allclose(post, _dense_forward(params, x, np.asarray(y)), atol=1e-10)


def test_iohmm_numpyro_model_sums_to_the_forward_likelihood():
    """NumPyro's funsor enumeration of iohmm_model gives log P(y | x) of the forward pass."""
    rng = np.random.default_rng(4)
    params = _random_iohmm(rng)
    x = rng.integers(0, 2, size=5)
    _, y = sample_iohmm(jax.random.PRNGKey(5), params, x)
    model = enum(config_enumerate(iohmm_model), first_available_dim=-1)
    ld, _ = log_density(model, (params, x), dict(y=y), {})
    h = bilinear(bilinear_from_iohmm(params), iohmm_inputs(params, x, y))
    np.testing.assert_allclose(ld, np.log(float(h[-1].sum())), rtol=1e-10)


def test_sample_iohmm_follows_the_transition_of_the_input():
    P = np.array([[[0.9, 0.1], [0.2, 0.8]], [[0.1, 0.9], [0.6, 0.4]]])
    params = IOHMMParams(np.array([0.5, 0.5]), P, np.array([[0.8, 0.2], [0.3, 0.7]]))
    rng = np.random.default_rng(6)
    x = rng.integers(0, 2, size=40_000)
    s, y = map(np.asarray, sample_iohmm(jax.random.PRNGKey(7), params, x))
    prev = s[:-1]
    for xv in (0, 1):
        for j in (0, 1):
            sel = (x[1:] == xv) & (prev == j)
            f = np.mean(s[1:][sel] == 1)
            assert abs(f - P[xv, j, 1]) < 5 * np.sqrt(P[xv, j, 1] * (1 - P[xv, j, 1]) / sel.sum())
    for k in (0, 1):
        f = np.mean(y[s == k] == 1)
        e = params.emission_probs[k, 1]
        assert abs(f - e) < 5 * np.sqrt(e * (1 - e) / np.sum(s == k))


def test_bad_iohmm_raises():
    pi, E = np.array([0.5, 0.5]), np.array([[0.8, 0.2], [0.3, 0.7]])
    with pytest.raises(ValueError, match="transition_probs"):
        IOHMMParams(pi, np.array([[[0.9, 0.2], [0.2, 0.8]]]), E)  # a row sums to 1.1
    with pytest.raises(ValueError, match="transition_probs"):
        IOHMMParams(pi, np.ones((1, 3, 3)) / 3, E)
    with pytest.raises(ValueError, match="emission_probs"):
        IOHMMParams(pi, np.ones((1, 2, 2)) / 2, np.ones((3, 2)) / 2)
    params = IOHMMParams(pi, np.ones((1, 2, 2)) / 2, E)
    with pytest.raises(ValueError, match="`x`"):
        iohmm_filter(params, np.array([0, 1]), np.array([0, 0]))
    with pytest.raises(ValueError, match="`y`"):
        iohmm_filter(params, np.array([0, 0]), np.array([0]))
    impossible = IOHMMParams(pi, np.ones((1, 2, 2)) / 2, np.array([[1.0, 0.0], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="impossible"):
        iohmm_filter(impossible, np.array([0, 0]), np.array([0, 1]))


@pytest.mark.parametrize("cue", [False, True])
@pytest.mark.parametrize("emission", ["categorical", "gaussian"])
@pytest.mark.parametrize("gated", [True, False])
def test_switching_filter_is_a_normalized_bilinear_recurrence(gated, emission, cue):
    params = three_state_params(gated, emission, cue)
    y, u, _, _ = sample(jax.random.PRNGKey(8), params, 40)
    A = np.asarray(switching_operators(params, y, u))
    p, out = np.asarray(params.initial_probs), []
    for At in A:  # a plain loop: p_t = A_t p_{t-1} / sum
        p = At @ p
        p = p / p.sum()
        out.append(p)
    np.testing.assert_allclose(out, exact_filter(params, y, u).filtered_s, atol=1e-12)
    if gated:  # identity plus rank one, built from the minGRU's gate and candidate
        g, q, _ = gated_gate_and_candidate(params, y, u)
        expected = (1 - np.asarray(g))[:, None, None] * np.eye(3) + np.asarray(g)[
            :, None, None
        ] * np.asarray(q)[:, :, None] * np.ones(3)
        np.testing.assert_allclose(A, expected, atol=1e-14)
        np.testing.assert_allclose(A.sum(axis=1), 1.0, atol=1e-14)  # 1'A = 1'


@pytest.mark.parametrize("gated", [True, False])
def test_cue_free_switching_model_is_a_full_bilinear_cell(gated):
    params = three_state_params(gated, "categorical", cue=False)
    y, _, _, _ = sample(jax.random.PRNGKey(9), params, 300)
    cell = bilinear_from_switching(params)
    x = jax.nn.one_hot(y, 3)
    exact = exact_filter(params, y).filtered_s
    for mode in ("sequential", "parallel"):
        h = bilinear(cell, x, mode=mode, normalize=True)
        np.testing.assert_allclose(h / h.sum(-1, keepdims=True), exact, atol=1e-12)
    if gated:  # the simplex is kept without normalizing
        np.testing.assert_allclose(bilinear(cell, x), exact, atol=1e-12)
    with pytest.raises(ValueError, match="no cue"):
        bilinear_from_switching(three_state_params(gated, "categorical", cue=True))
    with pytest.raises(ValueError, match="SwitchingParams"):
        bilinear_from_switching(jnp.ones(3))
