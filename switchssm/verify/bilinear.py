"""The bilinear rows of the cell-to-model table (docs/theory.md section 7), measured.

Each row builds a bilinear cell from a model and compares it with a reference that shares
no code with it: a plain loop over a finite-state machine's table, a dense NumPy forward
pass of an input-driven HMM, the switching model's exact filter
(:func:`switchssm.inference.filter`), and, for the commuting kinds, the order of the
letters of a word.
"""

from __future__ import annotations

import jax
import numpy as np

from switchssm._docstrings import fill_doc
from switchssm.bridges import bilinear_from_fsm
from switchssm.bridges import iohmm_filter
from switchssm.bridges import switching_operators
from switchssm.inference import filter as exact_filter
from switchssm.models import CategoricalEmission
from switchssm.models import GaussianCue
from switchssm.models import IOHMMParams
from switchssm.models import SwitchingParams
from switchssm.models import sample
from switchssm.rnn import bilinear
from switchssm.rnn import init_complex_diagonal
from switchssm.rnn import init_diagonal_bilinear
from switchssm.rnn import init_rotation
from switchssm.verify.checks import SEEDED_CHECKS
from switchssm.verify.checks import Check

__all__ = ["bilinear_checks"]

EXACT_TOL = 1e-9


def _fsm_error(rng) -> float:
    """Proposition 1: the FSM-built cell against a plain loop over the machine."""
    n, k, T = 10, 3, 2000
    table = rng.integers(0, n, size=(k, n))
    symbols = rng.integers(0, k, size=T)
    q, states = 0, []
    for s in symbols:
        q = table[s, q]
        states.append(q)
    h = np.asarray(bilinear(bilinear_from_fsm(table, 0), jax.nn.one_hot(symbols, k)))
    return float(np.abs(h - np.eye(n)[states]).max())


def _iohmm_error(rng) -> float:
    """The IOHMM-built normalized cell against a dense NumPy forward filter."""
    K, X, Y, T = 3, 2, 3, 300
    pi = rng.dirichlet(np.ones(K))
    P = rng.dirichlet(np.ones(K), size=(X, K))
    E = rng.dirichlet(np.ones(Y), size=K)
    x = rng.integers(0, X, size=T)
    y = rng.integers(0, Y, size=T)
    alpha, dense = pi, []
    for xt, yt in zip(x, y, strict=True):
        alpha = E[:, yt] * (P[xt].T @ alpha)
        alpha = alpha / alpha.sum()
        dense.append(alpha)
    post = np.asarray(iohmm_filter(IOHMMParams(pi, P, E), x, y))
    return float(np.abs(post - np.array(dense)).max())


def _switching_error(rng) -> float:
    """The gated switching filter as identity-plus-rank-one operators, vs the exact filter."""
    K, V = 3, 4
    params = SwitchingParams(
        rng.dirichlet(np.full(K, 3.0)), 0.2, CategoricalEmission(rng.dirichlet(np.ones(V), K)),
        GaussianCue(np.array([-0.6, 0.6]), 0.8), gated=True,
    )  # fmt: skip
    y, u, _, _ = sample(jax.random.PRNGKey(int(rng.integers(2**31))), params, 200)
    A = np.asarray(switching_operators(params, y, u))
    p, out = np.asarray(params.initial_probs), []
    for At in A:
        p = At @ p  # 1'A_t = 1': the simplex is kept without normalizing
        out.append(p)
    return float(np.abs(np.array(out) - np.asarray(exact_filter(params, y, u).filtered_s)).max())


def _commuting_error(rng) -> float:
    """Proposition 2: the shared-eigenbasis kinds' operators commute."""
    errs = []
    for i, init in enumerate((init_rotation, init_complex_diagonal, init_diagonal_bilinear)):
        p = init(jax.random.PRNGKey(int(rng.integers(2**31)) + i), 6, 8)
        word = jax.nn.one_hot(rng.integers(0, 6, size=12), 6)
        shuffled = word[rng.permutation(12)]
        errs.append(float(np.abs(bilinear(p, word)[-1] - bilinear(p, shuffled)[-1]).max()))
    return max(errs)


#: The rows, in the order they draw from the random generator: name, statement, metric, and
#: the function measuring the error from the generator.
_ROWS = (
    (
        "fsm/bilinear-one-hot",
        "a bilinear cell with W_ijk = [delta(j, k) = i] keeps h_t one-hot on the machine's "
        "state (random machine, 10 states, 2000 steps)",
        "max abs error",
        _fsm_error,
    ),
    (
        "iohmm/bilinear-normalized",
        "the normalized bilinear cell W_ij,(x,y) = E[i,y] P_x[j,i] is the input-driven HMM's "
        "forward filter (vs a dense NumPy forward pass, 300 steps)",
        "max abs error",
        _iohmm_error,
    ),
    (
        "switching/bilinear-identity-plus-rank-one",
        "the gated switching filter is the bilinear recurrence A_t = (1 - g_t) I + g_t q_t 1' "
        "(unnormalized, vs the exact filter, 200 steps)",
        "max abs error",
        _switching_error,
    ),
    (
        "commuting/order-invariant-state",
        "rotation, complex and real-diagonal cells (a shared eigenbasis) end in the same "
        "state for any reordering of a word (Proposition 2: abelian tasks only)",
        "max abs difference",
        _commuting_error,
    ),
)


@fill_doc(SEEDED_CHECKS, "{seeded_checks}")
def bilinear_checks(seed: int = 0) -> list[Check]:
    """The bilinear rows: finite-state machines, input-driven HMMs, the switching model's
    identity-plus-rank-one operator, and the order invariance of the commuting kinds.

    {seeded_checks}

    Example:
        >>> rows = bilinear_checks()
        >>> [c.passed for c in rows]
        [True, True, True, True]
    """
    rng = np.random.default_rng(seed)
    with jax.enable_x64(True):
        return [
            Check(name, statement, "exact", metric, error(rng), EXACT_TOL)
            for name, statement, metric, error in _ROWS
        ]
