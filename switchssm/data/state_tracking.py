"""State-tracking tasks: finite-state machines read one symbol at a time.

Every task is a deterministic finite-state machine ``(Q, Sigma, delta, q_0)`` plus a map from
states to class labels; a sequence of symbols ``x_1..x_T`` is labelled, **at every step**, by
the class of the state after the prefix ``x_1..x_t`` (training uses all prefixes; the test
accuracy at length ``T`` is that of the label after all ``T`` symbols):

=============  ==============================================  =====================  =====
task           symbols, state                                  ``|Q|``                 labels
=============  ==============================================  =====================  =====
``parity``     bits; the parity of the number of 1s             2                      2
``modadd``     ``0..m-1``; the running sum mod ``m``            ``m``                  ``m``
``fsm``        ``num_symbols`` random permutations of the       ``num_states``         ``|Q|``
               states (a permutation automaton, below)
``modarith``   ``0..m-1`` and ``+ - *`` alternating, starting   ``4 m`` (value and     ``m``
               with a number; the running value mod ``m``        pending operator)
``s3``/``s5``  the 6 / 120 permutations of 3 / 5 items; the     6 / 120                6 / 120
               product of the prefix (``g_t o ... o g_1``)
=============  ==============================================  =====================  =====

The random FSMs are *permutation automata*: each symbol permutes the states (drawn until
every state is reachable from the start and two symbols act differently, so that the final
state depends on the input), so no input
is ever forgotten and the state after 500 symbols depends on all of them. A uniformly random
transition table is, with high probability, a synchronizing automaton whose state after a
few dozen symbols depends only on the last few (easy for any cell); the paper's text does
not say which it used (docs/theory.md section 7). ``s3`` and ``s5`` are non-abelian groups
(the word problem of ``S5`` is the standard example beyond the reach of diagonal
recurrences); ``modadd`` is the abelian group ``Z_m``, ``parity`` is ``Z_2``.

Chance accuracy is the largest class frequency among the labels a long sequence ends with
(``1/m`` for the groups); :func:`chance_accuracy` computes it from the machine.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import jax
import numpy as np

from switchssm import _validation as V
from switchssm._pytree import shape_dim
from switchssm.types import PRNGKeyArray

__all__ = [
    "STATE_TRACKING_TASKS",
    "StateTrackingData",
    "StateTrackingTask",
    "chance_accuracy",
    "run_fsm",
    "sample_state_tracking",
    "state_tracking_task",
]

#: Task names accepted by :func:`state_tracking_task`.
STATE_TRACKING_TASKS = ("parity", "modadd", "fsm", "modarith", "s3", "s5")

_OPERATORS = ("+", "-", "*")


class StateTrackingTask(NamedTuple):
    """A finite-state machine with labelled states.

    Attributes:
        name: the task and its parameter, e.g. ``"modadd(m=5)"``.
        transition: ``(num_symbols, num_states)`` integers, ``transition[k, q] = delta(q, k)``.
        initial_state: ``q_0``.
        labels: ``(num_states,)`` class of each state.
        num_classes: number of classes.
        symbols: a printable name per symbol.
        alternating: ``modarith`` only: even positions (0, 2, ...) draw numbers
            ``0..m-1`` and odd positions operators; else every symbol at every step.
    """

    name: str
    transition: np.ndarray
    initial_state: int
    labels: np.ndarray
    num_classes: int
    symbols: tuple
    alternating: bool = False

    num_symbols = shape_dim("transition", 0)
    num_states = shape_dim("transition", 1)


def _group_task(name: str, n: int) -> StateTrackingTask:
    perms = list(itertools.permutations(range(n)))
    index = {p: i for i, p in enumerate(perms)}
    # delta(q, k) = g_k o g_q: apply g_q first, then g_k
    table = np.array([[index[tuple(gk[gq[i]] for i in range(n))] for gq in perms] for gk in perms])
    identity = index[tuple(range(n))]
    symbols = tuple("".join(map(str, p)) for p in perms)
    return StateTrackingTask(name, table, identity, np.arange(len(perms)), len(perms), symbols)


def _modarith_task(m: int) -> StateTrackingTask:
    # state (v, o): value v, o = index of the pending operator, or 3 = expecting an operator
    def sid(v, o):
        return o * m + v

    table = np.zeros((m + 3, 4 * m), dtype=np.int64)
    for v in range(m):
        for o in range(4):
            q = sid(v, o)
            for n in range(m):  # a number applies the pending operator
                if o == 3:  # (two numbers in a row cannot occur; the value is replaced)
                    table[n, q] = sid(n, 3)
                else:
                    new = (v + n, v - n, v * n)[o] % m
                    table[n, q] = sid(new, 3)
            for j in range(3):  # an operator becomes the pending one
                table[m + j, q] = sid(v, j)
    labels = np.tile(np.arange(m), 4)
    symbols = tuple(str(n) for n in range(m)) + _OPERATORS
    # start as "0 +": the first number n gives 0 + n = n
    return StateTrackingTask(f"modarith(m={m})", table, sid(0, 0), labels, m, symbols, True)


def state_tracking_task(
    task: str,
    *,
    modulus: int | None = None,
    num_states: int | None = None,
    num_symbols: int = 3,
    seed: int = 0,
) -> StateTrackingTask:
    """The finite-state machine of a state-tracking task (module docstring).

    Args:
        task: one of :data:`STATE_TRACKING_TASKS`.
        modulus: ``m >= 2`` for ``modadd`` (default 5) and ``modarith`` (default 5).
        num_states: ``fsm`` only, ``>= 2`` (default 5).
        num_symbols: ``fsm`` only, input symbols, ``>= 2`` (default 3; with one symbol the
            state would be a function of the length alone).
        seed: ``fsm`` only: integer seed of the random permutations.

    Returns:
        :class:`StateTrackingTask`.

    Example:
        >>> t = state_tracking_task("modadd", modulus=3)
        >>> t.transition.tolist()  # delta(q, k) = q + k mod 3
        [[0, 1, 2], [1, 2, 0], [2, 0, 1]]
        >>> state_tracking_task("s3").num_states
        6
    """
    V.check_choice(task, "task", STATE_TRACKING_TASKS)
    if task not in ("modadd", "modarith") and modulus is not None:
        raise ValueError(f"`modulus` applies to modadd and modarith, not {task!r}")
    if task != "fsm" and num_states is not None:
        raise ValueError(f"`num_states` applies to the fsm task, not {task!r}")
    if task == "parity":
        return StateTrackingTask(
            "parity", np.array([[0, 1], [1, 0]]), 0, np.arange(2), 2, ("0", "1")
        )
    if task == "modadd":
        m = V.check_int(5 if modulus is None else modulus, "modulus", low=2)
        q = np.arange(m)
        table = (q[None, :] + q[:, None]) % m
        return StateTrackingTask(
            f"modadd(m={m})", table, 0, q.copy(), m, tuple(str(k) for k in range(m))
        )
    if task == "modarith":
        return _modarith_task(V.check_int(5 if modulus is None else modulus, "modulus", low=2))
    if task == "fsm":
        n = V.check_int(5 if num_states is None else num_states, "num_states", low=2)
        k = V.check_int(num_symbols, "num_symbols", low=2)
        rng = np.random.default_rng(V.check_int(seed, "seed", low=0))
        # redrawn (from the same stream) until every state is reachable from state 0 and the
        # symbols act differently: otherwise (likely with 2 states) the final state is a
        # function of the length alone, a task with one answer
        while True:
            table = np.stack([rng.permutation(n) for _ in range(k)])
            if _all_reachable(table) and np.any(table != table[0]):
                break
        return StateTrackingTask(
            f"fsm(states={n}, symbols={k}, seed={seed})",
            table,
            0,
            np.arange(n),
            n,
            tuple(f"a{i}" for i in range(k)),
        )
    return _group_task(task, 3 if task == "s3" else 5)


def _all_reachable(table) -> bool:
    """Every state is reachable from state 0 under the transitions ``table[symbol, state]``."""
    seen, frontier = {0}, [0]
    while frontier:
        q = frontier.pop()
        for nxt in table[:, q].tolist():
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return len(seen) == table.shape[1]


def run_fsm(task: StateTrackingTask, tokens) -> np.ndarray:
    """The states after every prefix of ``tokens`` (``(..., T)`` integers), by table lookup.

    Args:
        task: :class:`StateTrackingTask`.
        tokens: ``(..., T)`` symbol indices.

    Returns:
        ``(..., T)`` states.

    Example:
        >>> run_fsm(state_tracking_task("parity"), np.array([1, 0, 1, 1])).tolist()
        [1, 1, 0, 1]
    """
    tokens = np.asarray(tokens)
    V.check_int_range(tokens, "tokens", 0, task.num_symbols)
    q = np.full(tokens.shape[:-1], task.initial_state, dtype=np.int64)
    out = np.empty(tokens.shape, dtype=np.int64)
    for t in range(tokens.shape[-1]):
        q = task.transition[tokens[..., t], q]
        out[..., t] = q
    return out


class StateTrackingData(NamedTuple):
    """Sequences of a task, zero-padded to the longest.

    Attributes:
        tokens: ``(N, T_max)`` symbol indices (0 past each length).
        labels: ``(N, T_max)`` the class after each prefix (0 past each length).
        lengths: ``(N,)`` valid lengths.
    """

    tokens: np.ndarray
    labels: np.ndarray
    lengths: np.ndarray

    def one_hot(self, num_symbols: int, dtype=np.float32) -> np.ndarray:
        """``(N, T_max, num_symbols)`` one-hot inputs (zero rows past each length)."""
        x = np.eye(num_symbols, dtype=dtype)[self.tokens]
        x[np.arange(self.tokens.shape[1])[None, :] >= self.lengths[:, None]] = 0
        return x


def sample_state_tracking(
    key: PRNGKeyArray,
    task: StateTrackingTask,
    num_sequences: int,
    min_length: int,
    max_length: int | None = None,
) -> StateTrackingData:
    """Random sequences of a task with their labels, deterministic under ``key``.

    Lengths are uniform on ``min_length..max_length``; symbols are uniform (``modarith``:
    numbers at even positions, operators at odd ones).

    Args:
        key: PRNG key (or an integer seed).
        task: :class:`StateTrackingTask`.
        num_sequences: ``N``.
        min_length: shortest length (``>= 1``).
        max_length: longest length (default ``min_length``).

    Returns:
        :class:`StateTrackingData`.

    Example:
        >>> task = state_tracking_task("parity")
        >>> d = sample_state_tracking(0, task, 4, 2, 10)
        >>> d.tokens.shape[0], bool((d.lengths >= 2).all() and (d.lengths <= 10).all())
        (4, True)
    """
    key = V.as_key(key)
    n = V.check_int(num_sequences, "num_sequences")
    lo = V.check_int(min_length, "min_length")
    hi = lo if max_length is None else V.check_int(max_length, "max_length")
    if hi < lo:
        raise ValueError(f"`max_length` ({hi}) must be >= `min_length` ({lo})")
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).tolist())
    lengths = rng.integers(lo, hi + 1, size=n)
    if task.alternating:
        m = task.num_symbols - len(_OPERATORS)
        numbers = rng.integers(0, m, size=(n, hi))
        ops = rng.integers(m, task.num_symbols, size=(n, hi))
        tokens = np.where(np.arange(hi)[None, :] % 2 == 0, numbers, ops)
    else:
        tokens = rng.integers(0, task.num_symbols, size=(n, hi))
    labels = task.labels[run_fsm(task, tokens)]
    past = np.arange(hi)[None, :] >= lengths[:, None]
    tokens[past] = 0
    labels[past] = 0
    return StateTrackingData(tokens, labels, lengths)


def chance_accuracy(task: StateTrackingTask, length: int = 500) -> float:
    """The accuracy of always guessing the most probable final label at ``length``.

    Exact: the law of the state after ``length`` uniformly drawn symbols is propagated through
    the machine (a Markov chain on the states), then summed per label. ``1/m`` for the groups.

    Args:
        task: :class:`StateTrackingTask`.
        length: sequence length.

    Returns:
        The chance accuracy.

    Example:
        >>> chance_accuracy(state_tracking_task("modadd", modulus=4), 7)
        0.25
    """
    length = V.check_int(length, "length")
    Q = task.num_states
    if task.alternating:
        m = task.num_symbols - len(_OPERATORS)
        sets = (np.arange(m), np.arange(m, task.num_symbols))
    else:
        sets = (np.arange(task.num_symbols),)
    p = np.zeros(Q)
    p[task.initial_state] = 1.0
    for t in range(length):
        symbols = sets[t % len(sets)]
        nxt = np.zeros(Q)
        for k in symbols:
            np.add.at(nxt, task.transition[k], p)
        p = nxt / len(symbols)
    per_label = np.bincount(task.labels, weights=p, minlength=task.num_classes)
    return float(per_label.max())
