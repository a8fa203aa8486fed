"""Label matching: the Hungarian assignment against an exhaustive search over permutations."""

import itertools

import numpy as np
import pytest

from switchssm.compare.labels import match_labels
from switchssm.compare.labels import match_states
from switchssm.compare.labels import matched_accuracy
from switchssm.models import CategoricalEmission
from switchssm.models import GaussianEmission
from switchssm.models import SwitchingParams


def _best_permutation(score):
    """argmax over all permutations of sum_k score[k, perm[k]] (brute force, K <= 5)."""
    K = score.shape[0]
    return np.array(max(itertools.permutations(range(K)),
                        key=lambda p: sum(score[k, p[k]] for k in range(K))))  # fmt: skip


def test_match_labels_is_the_best_permutation():
    rng = np.random.default_rng(1)
    K = 4
    posts = [rng.dirichlet(np.ones(K), size=T) for T in (30, 12)]
    labels = [rng.integers(0, K, size=T) for T in (30, 12)]
    to_fitted, C = match_labels(posts, labels, K)
    onehot = np.concatenate([np.eye(K)[s] for s in labels])
    np.testing.assert_allclose(C, onehot.T @ np.concatenate(posts), rtol=1e-12)
    np.testing.assert_array_equal(to_fitted, _best_permutation(C))


def test_match_states_recovers_a_known_permutation():
    rng = np.random.default_rng(2)
    B = rng.dirichlet(np.ones(5), size=4)
    perm = np.array([2, 0, 3, 1])  # fitted state perm[k] is true state k
    true = SwitchingParams(np.ones(4) / 4, 0.1, CategoricalEmission(B))
    fitted = true.replace(emission=CategoricalEmission(B[np.argsort(perm)]))
    np.testing.assert_array_equal(match_states(true, fitted), perm)
    means = rng.normal(size=(4, 2))
    g_true = SwitchingParams(np.ones(4) / 4, 0.1, GaussianEmission(means, np.eye(2)))
    g_fit = g_true.replace(emission=GaussianEmission(means[np.argsort(perm)], np.eye(2)))
    np.testing.assert_array_equal(match_states(g_true, g_fit), perm)
    with pytest.raises(ValueError, match="emission kind"):
        match_states(true, g_true)


def test_matched_accuracy_and_errors():
    P = [np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])]
    assert matched_accuracy(P, [np.array([0, 1, 1])]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="labels"):
        match_labels(P, [np.array([0, 2, 1])], 2)
    with pytest.raises(ValueError, match="sequences"):
        match_labels(P, [], 2)
