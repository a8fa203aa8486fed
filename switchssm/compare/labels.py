"""State labels: a fitted model numbers its states arbitrarily; match them before comparing.

Two matchings, both Hungarian (:func:`scipy.optimize.linear_sum_assignment`):

- :func:`match_states`: a fitted model's states to a reference model's, by the distance of
  their emission distributions (when the true parameters are known, e.g. simulated data);
- :func:`match_labels`: a fitted model's states to known latent labels, by the confusion
  :math:`C_{kj} = \\sum_t 1[s_t = k]\\, P(s_t = j \\mid x)` of a posterior (when the data
  carry the true latent, e.g. a CSV column ``s``).

:func:`matched_accuracy` is then the fraction of steps whose posterior argmax is the
(matched) label.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from switchssm.models.params import SwitchingParams

__all__ = [
    "match_labels",
    "match_states",
    "matched_accuracy",
]


def match_states(reference: SwitchingParams, fitted: SwitchingParams) -> np.ndarray:
    """``perm`` with ``perm[k]`` the fitted state matched to reference state ``k``.

    The cost of pairing reference state ``k`` with fitted state ``j`` is the L1 distance of
    their emission rows (categorical) or the Euclidean distance of their means (Gaussian);
    the assignment minimizes the total cost.

    Args:
        reference: the reference (e.g. true) parameters.
        fitted: parameters with the same number of states and the same emission kind.

    Returns:
        ``(K,)`` integer permutation.

    Example:
        >>> import numpy as np
        >>> from switchssm.models import SwitchingParams, CategoricalEmission
        >>> B = np.array([[0.9, 0.1], [0.2, 0.8]])
        >>> a = SwitchingParams(np.array([.5, .5]), .1, CategoricalEmission(B))
        >>> b = a.replace(emission=CategoricalEmission(B[::-1]))
        >>> match_states(a, b).tolist()
        [1, 0]
    """
    for name, p in (("reference", reference), ("fitted", fitted)):
        if not isinstance(p, SwitchingParams):
            raise ValueError(f"`{name}` must be a SwitchingParams, got {type(p).__name__}")
    if reference.num_states != fitted.num_states:
        raise ValueError(
            f"`fitted` has {fitted.num_states} states but `reference` has {reference.num_states}"
        )
    if reference.emission.kind != fitted.emission.kind:
        raise ValueError("`reference` and `fitted` must have the same emission kind")
    if reference.emission.kind == "categorical":
        a, b = np.asarray(reference.emission.probs), np.asarray(fitted.emission.probs)
        cost = np.abs(a[:, None, :] - b[None, :, :]).sum(-1)
    else:
        a, b = np.asarray(reference.emission.means), np.asarray(fitted.emission.means)
        cost = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    _, perm = linear_sum_assignment(cost)
    return perm.astype(np.int64)


def match_labels(posteriors, labels, num_states: int) -> tuple[np.ndarray, np.ndarray]:
    """Match known latent labels to a fitted model's states, Hungarian on the confusion.

    The confusion :math:`C_{kj} = \\sum_t 1[s_t = k] P(s_t = j \\mid x)`, summed over all
    steps of all sequences, is maximized over one-to-one assignments.

    Args:
        posteriors: per-sequence ``(T_n, K)`` posteriors of the fitted model.
        labels: per-sequence ``(T_n,)`` integer labels in ``[0, K)``.
        num_states: ``K``.

    Returns:
        ``(to_fitted, C)``: ``to_fitted[k]`` is the fitted state matched to label ``k``;
        ``C`` the ``(K, K)`` confusion.

    Example:
        >>> P = [np.array([[0.1, 0.9], [0.8, 0.2]])]
        >>> match_labels(P, [np.array([0, 1])], 2)[0].tolist()
        [1, 0]
    """
    posteriors, labels = list(posteriors), list(labels)
    if len(posteriors) != len(labels):
        raise ValueError(
            f"`labels` has {len(labels)} sequences but `posteriors` has {len(posteriors)}"
        )
    K = int(num_states)
    C = np.zeros((K, K))
    for i, (p, s) in enumerate(zip(posteriors, labels, strict=True)):
        p, s = np.asarray(p, dtype=float), np.asarray(s)
        if p.shape != (s.shape[0], K):
            raise ValueError(
                f"`posteriors[{i}]` has shape {p.shape}, expected ({s.shape[0]}, {K}) to match "
                f"`labels[{i}]`"
            )
        if s.size and (s.min() < 0 or s.max() >= K):
            raise ValueError(f"`labels[{i}]` must lie in [0, {K - 1}]")
        np.add.at(C, s, p)
    rows, cols = linear_sum_assignment(C, maximize=True)
    to_fitted = np.empty(K, dtype=np.int64)
    to_fitted[rows] = cols
    return to_fitted, C


def matched_accuracy(posteriors, targets) -> float:
    """Fraction of all steps where the posterior's argmax equals the (matched) target.

    Args:
        posteriors: per-sequence ``(T_n, K)`` posteriors.
        targets: per-sequence ``(T_n,)`` labels, already in the posteriors' numbering.

    Returns:
        The accuracy over all steps of all sequences.

    Example:
        >>> matched_accuracy([np.array([[0.1, 0.9], [0.8, 0.2]])], [np.array([1, 1])])
        0.5
    """
    hits = [
        np.argmax(np.asarray(p), -1) == np.asarray(t)
        for p, t in zip(posteriors, targets, strict=True)
    ]
    if not hits:
        raise ValueError("`posteriors` is empty")
    return float(np.mean(np.concatenate(hits)))
