"""State-tracking tasks (switchssm.data.state_tracking): each machine against an independent
definition of its task, determinism, exact chance levels, and the bilinear FSM cell solving
every task at length 500."""

import itertools

import jax
import numpy as np
import pytest

from switchssm.bridges import bilinear_from_fsm
from switchssm.data import chance_accuracy
from switchssm.data import run_fsm
from switchssm.data import sample_state_tracking
from switchssm.data import state_tracking_task
from switchssm.rnn import bilinear


def _arith(tokens, m):
    """Left-to-right evaluation of 'n op n op n ...' mod m, after every token."""
    value, pending, out = 0, "+", []
    for tok in tokens:
        if tok < m:
            value = {"+": value + tok, "-": value - tok, "*": value * tok}[pending] % m
        else:
            pending = "+-*"[tok - m]
        out.append(value)
    return out


def _compose(tokens, n):
    perms = list(itertools.permutations(range(n)))
    state, out = np.arange(n), []
    for tok in tokens:
        state = np.array(perms[tok])[state]  # apply the new element after the product so far
        out.append(perms.index(tuple(state)))
    return out


@pytest.mark.parametrize(
    "name, kw, reference",
    [
        ("parity", {}, lambda t: np.cumsum(t) % 2),
        ("modadd", {"modulus": 2}, lambda t: np.cumsum(t) % 2),
        ("modadd", {"modulus": 7}, lambda t: np.cumsum(t) % 7),
        ("modarith", {"modulus": 5}, lambda t: _arith(t, 5)),
        ("modarith", {"modulus": 3}, lambda t: _arith(t, 3)),
        ("s3", {}, lambda t: _compose(t, 3)),
        ("s5", {}, lambda t: _compose(t, 5)),
    ],
)
def test_labels_match_an_independent_definition(name, kw, reference):
    task = state_tracking_task(name, **kw)
    data = sample_state_tracking(jax.random.PRNGKey(0), task, 20, 1, 40)
    for toks, labels, n in zip(data.tokens, data.labels, data.lengths, strict=True):
        np.testing.assert_array_equal(labels[:n], reference(toks[:n]))
        assert np.all(labels[n:] == 0) and np.all(toks[n:] == 0)
    if name == "modarith":  # numbers at even positions, operators at odd ones
        m = kw["modulus"]
        assert np.all(data.tokens[:, ::2] < m)
        valid = np.arange(data.tokens.shape[1])[None, 1::2] < data.lengths[:, None]
        assert np.all(data.tokens[:, 1::2][valid] >= m)


def test_random_fsm_is_a_permutation_automaton_and_deterministic():
    a = state_tracking_task("fsm", num_states=10, num_symbols=4, seed=3)
    b = state_tracking_task("fsm", num_states=10, num_symbols=4, seed=3)
    c = state_tracking_task("fsm", num_states=10, num_symbols=4, seed=4)
    np.testing.assert_array_equal(a.transition, b.transition)
    assert not np.array_equal(a.transition, c.transition)
    for row in a.transition:
        assert sorted(row) == list(range(10))
    d1 = sample_state_tracking(7, a, 5, 2, 10)
    d2 = sample_state_tracking(jax.random.PRNGKey(7), a, 5, 2, 10)
    for u, v in zip(d1, d2, strict=True):
        np.testing.assert_array_equal(u, v)
    assert d1.lengths.min() >= 2 and d1.lengths.max() <= 10


def test_random_fsm_reaches_every_state():
    """No draw is a machine with one answer: with 2 states and 3 symbols, 1 draw in 8 is all
    identities and 1 in 8 all swaps (the state after 500 symbols is then fixed); every seed's
    machine must reach every state (checked by running it, independently of the generator's
    own search) and end in more than one state (exact chance below 1)."""
    for seed in range(40):
        for n, k in ((2, 3), (2, 2), (5, 2)):
            t = state_tracking_task("fsm", num_states=n, num_symbols=k, seed=seed)
            reached = {0}
            for _ in range(n):
                reached |= {int(t.transition[a, q]) for q in reached for a in range(k)}
            assert reached == set(range(n)), (seed, n, k)
            assert chance_accuracy(t, 500) < 1.0


def test_chance_is_exact():
    for name, kw, expected in [
        ("parity", {}, 0.5),
        ("modadd", {"modulus": 10}, 0.1),
        ("s3", {}, 1 / 6),
        ("s5", {}, 1 / 120),
        ("fsm", {"num_states": 5}, 0.2),
    ]:
        assert chance_accuracy(state_tracking_task(name, **kw), 500) == pytest.approx(
            expected, abs=1e-9
        )
    # modular arithmetic is not uniform (multiplying by 0 pulls towards 0): Monte Carlo check
    task = state_tracking_task("modarith", modulus=5)
    d = sample_state_tracking(1, task, 20_000, 21)
    freq = np.bincount(d.labels[:, -1], minlength=5) / 20_000
    exact = chance_accuracy(task, 21)
    assert abs(freq.max() - exact) < 4 * np.sqrt(exact * (1 - exact) / 20_000)


@pytest.mark.parametrize(
    "name, kw",
    [
        ("parity", {}),
        ("modadd", {"modulus": 5}),
        ("modarith", {"modulus": 5}),
        ("fsm", {"num_states": 25}),
        ("s3", {}),
    ],
)
def test_the_fsm_cell_solves_every_task_at_length_500(name, kw):
    task = state_tracking_task(name, **kw)
    data = sample_state_tracking(2, task, 8, 500)
    h = bilinear(
        bilinear_from_fsm(task.transition, task.initial_state),
        data.one_hot(task.num_symbols, np.float64),
    )
    np.testing.assert_array_equal(task.labels[np.asarray(h).argmax(-1)], data.labels)
    np.testing.assert_array_equal(np.asarray(h).max(-1), 1.0)


def test_run_fsm_matches_a_loop():
    task = state_tracking_task("fsm", num_states=6, seed=1)
    toks = np.random.default_rng(0).integers(0, 3, size=(3, 50))
    q, expected = np.zeros(3, int), []
    for t in range(50):
        q = np.array([task.transition[toks[i, t], q[i]] for i in range(3)])
        expected.append(q)
    np.testing.assert_array_equal(run_fsm(task, toks), np.stack(expected, 1))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: state_tracking_task("modadd", modulus=1), "modulus"),
        (lambda: state_tracking_task("modarith", modulus=1.5), "modulus"),
        (lambda: state_tracking_task("parity", modulus=3), "modulus"),
        (lambda: state_tracking_task("fsm", num_states=1), "num_states"),
        (lambda: state_tracking_task("fsm", num_symbols=1), "num_symbols"),
        (lambda: state_tracking_task("s3", num_states=4), "num_states"),
        (lambda: state_tracking_task("sorting"), "task"),
        (lambda: sample_state_tracking(0, state_tracking_task("parity"), 3, 0), "min_length"),
        (lambda: sample_state_tracking(0, state_tracking_task("parity"), 3, 5, 2), "max_length"),
        (lambda: sample_state_tracking(0, state_tracking_task("parity"), 0, 5), "num_sequences"),
        (lambda: run_fsm(state_tracking_task("parity"), np.array([0, 2])), "tokens"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()
