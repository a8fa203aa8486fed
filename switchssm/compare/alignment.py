r"""How well do an RNN's hidden states encode a posterior? Probes, CCA, unit matching, KL.

Given posterior probabilities ``P`` of shape ``(N, T, K)`` (the exact filter
:func:`switchssm.inference.filter`, VMP :func:`switchssm.inference.vmp_filter`, ...) and
hidden states ``H`` of shape ``(N, T, Hd)`` of a cell run on the same inputs
(:func:`switchssm.rnn.hidden_states`), this module measures their alignment:

- :func:`linear_probe`: held-out :math:`R^2` of a ridge regression from ``h_t`` to the
  centred log-posterior :math:`\operatorname{clr}(p_t) = \log p_t - \frac1K \sum_k \log p_{tk}`
  (log-probabilities are defined up to an additive constant; the clr transform removes
  it). Sequences, not steps, are held out.
- :func:`cca`: canonical correlations between ``h_t`` and a target (whitening + SVD).
- :func:`match_units`: a one-to-one assignment of hidden units to states maximizing the
  total correlation between unit activity and ``P(s_t = k)`` (Hungarian algorithm).
- :func:`readout_kl`: mean :math:`\mathrm{KL}(p_t \,\|\, q_t)` of a readout ``q`` from ``p``.
- :func:`compare_posteriors`: all of the above in one JSON-ready :class:`ComparisonReport`.
- :func:`direct_route_states`: the states of the minGRU built *from the model*
  (:func:`switchssm.bridges.mingru.mingru_from_model`), whose positive states are the exact
  filter of the gated model: the "direct route" to compare a trained cell with.

Everything here is NumPy/SciPy on concrete arrays (no ``jit``). Steps past a sequence's
length (``lengths``) are left out of every statistic.
"""

# ruff: noqa: F722  (jaxtyping shape strings such as "N T K" are not forward references)

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy import linalg
from scipy.optimize import linear_sum_assignment

from switchssm import _validation as V
from switchssm.types import Float

__all__ = [
    "CCAResult",
    "ComparisonReport",
    "MatchResult",
    "ProbeResult",
    "cca",
    "clr",
    "compare_posteriors",
    "direct_route_states",
    "linear_probe",
    "match_units",
    "readout_kl",
]

#: Probabilities are clipped below at this value before taking logs.
EPS = 1e-12


# ---------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------


def _valid(a: np.ndarray, lengths) -> np.ndarray:
    """The entries at real steps (all of ``a`` without ``lengths``)."""
    if lengths is None or a.ndim < 3:
        return a
    return a[np.arange(a.shape[1])[None, :] < lengths[:, None]]


def _array(x, name: str, ndims: tuple[int, ...], lengths=None) -> np.ndarray:
    """A finite float array (checked at real steps only: padding may hold anything)."""
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a real array") from None
    if a.ndim not in ndims:
        exp = " or ".join(str(n) for n in ndims)
        raise ValueError(f"`{name}` must have {exp} dimensions, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"`{name}` is empty (shape {a.shape})")
    if not np.all(np.isfinite(_valid(a, lengths))):
        raise ValueError(f"`{name}` contains NaN or infinite values")
    return a


def _probabilities(P, name: str, ndims=(2, 3), atol: float = 1e-5, lengths=None) -> np.ndarray:
    """Probabilities over the last axis (checked at real steps only)."""
    P = _array(P, name, ndims, lengths)
    v = _valid(P, lengths)
    if np.any(v < 0):
        raise ValueError(f"`{name}` must hold probabilities >= 0, found {v.min():.3g}")
    worst = float(np.max(np.abs(v.sum(-1) - 1.0)))
    if worst > atol:
        raise ValueError(f"`{name}` must sum to 1 over its last axis, off by up to {worst:.3g}")
    return P


def _lengths(lengths, shape, name: str = "lengths") -> np.ndarray | None:
    if lengths is None:
        return None
    if len(shape) != 3:
        raise ValueError(f"`{name}` needs (N, T, ...) arrays, got shape {shape}")
    lens = np.asarray(lengths)
    N, T = shape[:2]
    if lens.shape != (N,) or lens.dtype.kind not in "iu":
        raise ValueError(f"`{name}` must be {N} integers (one per sequence), got {lengths!r}")
    if np.any(lens < 1) or np.any(lens > T):
        raise ValueError(f"`{name}` must lie in [1, {T}], got [{lens.min()}, {lens.max()}]")
    return lens


def _same_steps(A: np.ndarray, B: np.ndarray, a: str, b: str) -> None:
    if A.ndim != B.ndim or A.shape[:-1] != B.shape[:-1]:
        raise ValueError(
            f"`{a}` and `{b}` must have the same leading (sequence, step) shape, got "
            f"{A.shape} and {B.shape}"
        )


def _rows(A: np.ndarray, lengths) -> np.ndarray:
    """Valid steps as rows, ``(n, F)``."""
    if A.ndim == 2:
        return A
    if lengths is None:
        return A.reshape(-1, A.shape[-1])
    mask = np.arange(A.shape[1])[None, :] < lengths[:, None]
    return A[mask]


# ---------------------------------------------------------------------------
# clr
# ---------------------------------------------------------------------------


def clr(P: Float[np.ndarray, "... K"], *, eps: float = EPS) -> Float[np.ndarray, "... K"]:
    r"""Centred log-ratio transform of probability vectors over the last axis.

    .. math:: \operatorname{clr}(p)_k = \log p_k - \frac1K \sum_j \log p_j,

    with ``p`` clipped below at ``eps``. It is the log-posterior with its undetermined
    additive constant removed (the entries sum to zero), so ``clr(softmax(h)) =
    h - mean(h)`` for any logits ``h``.

    Args:
        P: ``(..., K)`` probabilities.
        eps: lower clip before the log.

    Returns:
        ``(..., K)`` array.

    Example:
        >>> clr(np.array([0.5, 0.25, 0.25])).round(4).tolist()
        [0.4621, -0.231, -0.231]
    """
    P = _probabilities(P, "P", ndims=tuple(range(1, 8)))
    L = np.log(np.maximum(P, eps))
    return L - L.mean(axis=-1, keepdims=True)


# ---------------------------------------------------------------------------
# ridge probe
# ---------------------------------------------------------------------------


class ProbeResult(NamedTuple):
    """Output of :func:`linear_probe`.

    Attributes:
        r2: held-out :math:`R^2` pooled over outputs,
            :math:`1 - \\sum_{t,k} (y - \\hat y)^2 / \\sum_{t,k} (y - \\bar y_k)^2`
            (scikit-learn's ``"variance_weighted"``), with :math:`\\bar y` the held-out mean.
        r2_per_output: ``(F,)`` held-out :math:`R^2` of each target column (NaN where the
            held-out column is constant).
        weight: ``(Hd, F)`` ridge weights; prediction ``(h - h_mean) @ weight + y_mean``.
        bias: ``(F,)`` the implied intercept ``y_mean - h_mean @ weight``.
        train_sequences: indices of the sequences used to fit.
        test_sequences: indices of the held-out sequences.
    """

    r2: float
    r2_per_output: np.ndarray
    weight: np.ndarray
    bias: np.ndarray
    train_sequences: np.ndarray
    test_sequences: np.ndarray


def _ridge(X: np.ndarray, Y: np.ndarray, ridge: float, rcond: float = 1e-12):
    r"""Minimize :math:`\frac1n\|Y_c - X_c W\|^2 + \lambda \|W\|^2` by SVD (centred data).

    ``W = V diag(s / (s^2 + n lambda)) U' Y_c``; for ``lambda = 0`` the minimum-norm
    least-squares solution (singular values below ``rcond * s_max`` dropped).
    """
    x_mean, y_mean = X.mean(0), Y.mean(0)
    Xc, Yc = X - x_mean, Y - y_mean
    U, s, Vt = linalg.svd(Xc, full_matrices=False)
    n = X.shape[0]
    keep = s > rcond * (s[0] if s.size else 0.0)
    d = np.zeros_like(s)
    d[keep] = s[keep] / (s[keep] ** 2 + n * ridge)
    W = (Vt.T * d) @ (U.T @ Yc)
    return W, x_mean, y_mean


def _r2(Y: np.ndarray, pred: np.ndarray) -> tuple[float, np.ndarray]:
    res = ((Y - pred) ** 2).sum(0)
    tot = ((Y - Y.mean(0)) ** 2).sum(0)
    # A constant column (zero variance, up to rounding) has no R^2.
    const = tot <= 1e-24 * max(1.0, float(np.abs(Y).max()) ** 2) * Y.shape[0]
    per = np.full(Y.shape[1], np.nan)
    per[~const] = 1.0 - res[~const] / tot[~const]
    pooled = 1.0 - res[~const].sum() / tot[~const].sum() if np.any(~const) else np.nan
    return float(pooled), per


def linear_probe(
    H: Float[np.ndarray, "N T Hd"],
    target: Float[np.ndarray, "N T F"],
    *,
    train_fraction: float = 0.7,
    ridge: float = 1e-3,
    transform: str | None = "clr",
    lengths: Sequence[int] | None = None,
    seed: int = 0,
) -> ProbeResult:
    r"""Held-out :math:`R^2` of a ridge regression from hidden states to a (log-)posterior.

    With ``transform="clr"`` the target is :math:`y_t = \operatorname{clr}(p_t)`
    (:func:`clr`: ``target`` must hold probabilities); ``transform=None`` regresses on
    ``target`` as given. A random ``train_fraction`` of the *sequences* (``seed``) fits

    .. math:: \min_{W, b}\ \frac1n \sum_{\text{train steps}} \|y_t - W^\top h_t - b\|^2
              + \lambda \|W\|_F^2

    in closed form (centred data, SVD; the intercept is not penalized, as in
    scikit-learn's ``Ridge(alpha = n * ridge)``), and :math:`R^2` is computed on the
    steps of the other sequences. :math:`R^2 = 1` when ``h_t`` determines ``clr(p_t)``
    linearly; about 0 (or below) when it carries no linear information about it.

    Args:
        H: ``(N, T, Hd)`` hidden states (``N >= 2``).
        target: ``(N, T, K)`` probabilities (``transform="clr"``) or ``(N, T, F)`` reals.
        train_fraction: fraction of sequences used to fit, in (0, 1); at least one
            sequence goes to each side.
        ridge: :math:`\lambda \ge 0` (``0``: minimum-norm least squares).
        transform: ``"clr"`` or ``None``.
        lengths: ``(N,)`` valid lengths (steps past them are ignored).
        seed: seed of the sequence split.

    Returns:
        :class:`ProbeResult`.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> P = rng.dirichlet(np.ones(3), size=(10, 20))
        >>> H = clr(P) @ rng.normal(size=(3, 5))
        >>> round(linear_probe(H, P, ridge=0.0).r2, 8)
        1.0
    """
    lens = _lengths(lengths, np.shape(H))
    H = _array(H, "H", (3,), lens)
    if transform not in ("clr", None):
        raise ValueError(f"`transform` must be 'clr' or None, got {transform!r}")
    Y = clr(_probabilities(target, "target", (3,), lengths=lens)) if transform == "clr" else None
    Y = _array(target, "target", (3,), lens) if Y is None else Y
    _same_steps(H, Y, "H", "target")
    train_fraction = V.check_float(
        train_fraction, "train_fraction", low=0, high=1, low_open=True, high_open=True
    )
    ridge = V.check_float(ridge, "ridge", low=0)
    N = H.shape[0]
    if N < 2:
        raise ValueError(f"`H` must hold at least 2 sequences (the split is by sequence), got {N}")
    n_train = min(max(1, int(round(train_fraction * N))), N - 1)
    perm = np.random.default_rng(seed).permutation(N)
    tr, te = np.sort(perm[:n_train]), np.sort(perm[n_train:])
    sub = lambda A, idx: _rows(A[idx], None if lens is None else lens[idx])
    W, x_mean, y_mean = _ridge(sub(H, tr), sub(Y, tr), ridge)
    pred = (sub(H, te) - x_mean) @ W + y_mean
    r2, per = _r2(sub(Y, te), pred)
    return ProbeResult(r2, per, W, y_mean - x_mean @ W, tr, te)


# ---------------------------------------------------------------------------
# CCA
# ---------------------------------------------------------------------------


class CCAResult(NamedTuple):
    """Output of :func:`cca`.

    Attributes:
        correlations: ``(r,)`` canonical correlations, non-increasing, in ``[0, 1]``.
        x_weights: ``(p, r)`` directions ``a_i``; the canonical variates
            ``(X - x_mean) @ x_weights`` have unit (regularized) variance.
        y_weights: ``(q, r)`` directions ``b_i``.
        x_mean: ``(p,)``.
        y_mean: ``(q,)``.
    """

    correlations: np.ndarray
    x_weights: np.ndarray
    y_weights: np.ndarray
    x_mean: np.ndarray
    y_mean: np.ndarray


def _inv_sqrt(S: np.ndarray, floor: float) -> np.ndarray:
    w, E = linalg.eigh(S)
    w = np.maximum(w, floor)
    return (E / np.sqrt(w)) @ E.T


def cca(
    X: Float[np.ndarray, "... p"],
    Y: Float[np.ndarray, "... q"],
    num_components: int | None = None,
    *,
    regularization: float = 1e-8,
    lengths: Sequence[int] | None = None,
) -> CCAResult:
    r"""Canonical correlation analysis by whitening and an SVD.

    With centred data, sample covariances :math:`C_{xx}, C_{yy}, C_{xy}` and the
    regularized :math:`\tilde C_{xx} = C_{xx} + \epsilon \frac{\operatorname{tr} C_{xx}}{p} I`
    (same for :math:`y`), the canonical correlations are the singular values of

    .. math:: M = \tilde C_{xx}^{-1/2} C_{xy} \tilde C_{yy}^{-1/2} = U \Sigma V^\top,

    with directions :math:`a = \tilde C_{xx}^{-1/2} U`, :math:`b = \tilde C_{yy}^{-1/2} V`:
    :math:`\rho_i = \max \operatorname{corr}(a^\top x, b^\top y)` over directions
    uncorrelated with the previous ones. The small relative ridge :math:`\epsilon` keeps
    rank-deficient blocks (e.g. ``clr`` coordinates, which sum to zero) finite; a
    direction with no variance gets correlation 0.

    Args:
        X: ``(n, p)`` or ``(N, T, p)`` (e.g. hidden states).
        Y: ``(n, q)`` or ``(N, T, q)`` with the same leading shape.
        num_components: how many correlations to return (default ``min(p, q)``).
        regularization: :math:`\epsilon \ge 0`.
        lengths: ``(N,)`` valid lengths for ``(N, T, .)`` inputs.

    Returns:
        :class:`CCAResult`.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(500, 2))
        >>> Y = np.c_[X[:, 0] + 0.01 * rng.normal(size=500), rng.normal(size=500)]
        >>> bool(cca(X, Y).correlations[0] > 0.99)
        True
    """
    lens = _lengths(lengths, np.shape(X))
    X = _array(X, "X", (2, 3), lens)
    Y = _array(Y, "Y", (2, 3), lens)
    _same_steps(X, Y, "X", "Y")
    regularization = V.check_float(regularization, "regularization", low=0)
    Xr, Yr = _rows(X, lens), _rows(Y, lens)
    n, p = Xr.shape
    q = Yr.shape[1]
    if n < 2:
        raise ValueError(f"`X` must have at least 2 valid steps, got {n}")
    r_max = min(p, q)
    if num_components is None:
        num_components = r_max
    if isinstance(num_components, bool) or not isinstance(num_components, int | np.integer):
        raise ValueError(f"`num_components` must be an int or None, got {num_components!r}")
    if not 1 <= num_components <= r_max:
        raise ValueError(
            f"`num_components` must lie in [1, min(p, q) = {r_max}], got {num_components}"
        )
    x_mean, y_mean = Xr.mean(0), Yr.mean(0)
    Xc, Yc = Xr - x_mean, Yr - y_mean
    Cxx, Cyy, Cxy = Xc.T @ Xc / (n - 1), Yc.T @ Yc / (n - 1), Xc.T @ Yc / (n - 1)

    def regularize(S):
        scale = max(float(np.trace(S)) / S.shape[0], np.finfo(float).tiny)
        return S + regularization * scale * np.eye(S.shape[0]), 1e-15 * scale

    Sxx, fx = regularize(Cxx)
    Syy, fy = regularize(Cyy)
    Wx, Wy = _inv_sqrt(Sxx, fx), _inv_sqrt(Syy, fy)
    U, s, Vt = linalg.svd(Wx @ Cxy @ Wy)
    k = num_components
    return CCAResult(np.clip(s[:k], 0.0, 1.0), Wx @ U[:, :k], Wy @ Vt.T[:, :k], x_mean, y_mean)


# ---------------------------------------------------------------------------
# unit matching
# ---------------------------------------------------------------------------


class MatchResult(NamedTuple):
    """Output of :func:`match_units`.

    Attributes:
        units: ``(K,)`` the unit assigned to each state (``-1`` where ``Hd < K`` leaves a
            state unassigned).
        correlations: ``(K,)`` correlation of each state's ``P(s_t = k)`` with its unit
            (signed; NaN if unassigned).
        correlation_matrix: ``(Hd, K)`` Pearson correlations between units and states
            (0 where a unit or state is constant).
        mean_correlation: mean of the assigned correlations.
    """

    units: np.ndarray
    correlations: np.ndarray
    correlation_matrix: np.ndarray
    mean_correlation: float


def _correlation_matrix(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    Ac, Bc = A - A.mean(0), B - B.mean(0)
    na, nb = np.sqrt((Ac**2).sum(0)), np.sqrt((Bc**2).sum(0))
    num = Ac.T @ Bc
    den = np.outer(na, nb)
    out = np.zeros_like(num)
    ok = den > 0
    out[ok] = num[ok] / den[ok]
    return np.clip(out, -1.0, 1.0)


def match_units(
    H: Float[np.ndarray, "... Hd"],
    P: Float[np.ndarray, "... K"],
    *,
    absolute: bool = False,
    lengths: Sequence[int] | None = None,
) -> MatchResult:
    r"""Assign hidden units to latent states, one to one, by correlation (Hungarian).

    With :math:`C_{jk} = \operatorname{corr}_t(h_{tj}, P(s_t = k))` over all valid steps, find
    the injective map :math:`k \mapsto j_k` maximizing :math:`\sum_k C_{j_k k}` (or
    :math:`\sum_k |C_{j_k k}|` with ``absolute=True``, for units that code a state by
    being low) with :func:`scipy.optimize.linear_sum_assignment`. Latent labels are only
    identified up to a permutation; this is how a trained cell's units are compared to
    states.

    Args:
        H: ``(n, Hd)`` or ``(N, T, Hd)`` hidden states.
        P: ``(n, K)`` or ``(N, T, K)`` posterior probabilities (any real scores work).
        absolute: match on ``|C|``.
        lengths: ``(N,)`` valid lengths for ``(N, T, .)`` inputs.

    Returns:
        :class:`MatchResult`.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> P = rng.dirichlet(np.ones(3), size=200)
        >>> match_units(P[:, [2, 0, 1]], P).units.tolist()
        [1, 2, 0]
    """
    lens = _lengths(lengths, np.shape(H))
    H = _array(H, "H", (2, 3), lens)
    P = _array(P, "P", (2, 3), lens)
    _same_steps(H, P, "H", "P")
    Hr, Pr = _rows(H, lens), _rows(P, lens)
    if Hr.shape[0] < 2:
        raise ValueError("`H` must have at least 2 valid steps to correlate")
    Cm = _correlation_matrix(Hr, Pr)
    score = np.abs(Cm) if absolute else Cm
    rows, cols = linear_sum_assignment(score, maximize=True)
    K = Pr.shape[1]
    units = np.full(K, -1)
    units[cols] = rows
    corr = np.full(K, np.nan)
    corr[cols] = Cm[rows, cols]
    return MatchResult(units, corr, Cm, float(np.nanmean(corr)))


# ---------------------------------------------------------------------------
# KL
# ---------------------------------------------------------------------------


def readout_kl(
    P: Float[np.ndarray, "... K"],
    readout_probs: Float[np.ndarray, "... K"],
    *,
    lengths: Sequence[int] | None = None,
    reduce: bool = True,
    eps: float = EPS,
):
    r"""Kullback-Leibler divergence of a readout from the posterior, per step.

    .. math:: \mathrm{KL}(p_t \,\|\, q_t) = \sum_k p_{tk} (\log p_{tk} - \log q_{tk}),

    with :math:`0 \log 0 = 0` and ``q`` clipped below at ``eps``; in nats.

    Args:
        P: ``(..., K)`` reference posterior (e.g. the exact filter).
        readout_probs: ``(..., K)`` the cell's readout probabilities, same shape.
        lengths: ``(N,)`` valid lengths for ``(N, T, K)`` inputs.
        reduce: return the mean over valid steps (else the per-step array).
        eps: lower clip of ``q``.

    Returns:
        A float (``reduce=True``), or the ``(...,)`` array of per-step divergences
        (NaN at steps past ``lengths``).

    Example:
        >>> p = np.array([[0.5, 0.5], [0.9, 0.1]])
        >>> readout_kl(p, p)
        0.0
    """
    lens = _lengths(lengths, np.shape(P))
    P = _probabilities(P, "P", tuple(range(1, 8)), lengths=lens)
    Q = _probabilities(readout_probs, "readout_probs", tuple(range(1, 8)), lengths=lens)
    if P.shape != Q.shape:
        raise ValueError(
            f"`P` and `readout_probs` must have the same shape, got {P.shape} and {Q.shape}"
        )
    logratio = np.log(np.maximum(P, eps)) - np.log(np.maximum(Q, eps))
    kl = np.maximum(np.sum(np.where(P > 0, P * logratio, 0.0), axis=-1), 0.0)
    if lens is not None:
        kl = np.where(np.arange(P.shape[1])[None, :] < lens[:, None], kl, np.nan)
    return float(np.nanmean(kl)) if reduce else kl


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------


def _json(v):
    if isinstance(v, np.ndarray):
        return [_json(a) for a in v.tolist()]
    if isinstance(v, list | tuple):
        return [_json(a) for a in v]
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        v = float(v)
        return None if not math.isfinite(v) else v
    return v


@dataclasses.dataclass(frozen=True)
class ComparisonReport:
    """Alignment numbers between a posterior and hidden states (:func:`compare_posteriors`).

    Attributes:
        probe_r2: held-out :math:`R^2` of the ridge probe ``h_t -> clr(p_t)``.
        probe_r2_per_state: ``(K,)`` per clr coordinate.
        canonical_correlations: ``(min(Hd, K-1),)`` CCA between ``h_t`` and ``clr(p_t)``.
        matched_units: ``(K,)`` unit matched to each state (Hungarian on correlation).
        matched_correlations: ``(K,)`` their correlations with ``P(s_t = k)``.
        mean_matched_correlation: their mean.
        readout_kl: mean ``KL(p_t || q_t)`` of the readout (``None`` if none given).
        num_sequences: number of sequences.
        num_timesteps: number of valid steps.
        hidden_dim: width of the states ``H``.
        num_states: ``K``.
    """

    probe_r2: float
    probe_r2_per_state: np.ndarray
    canonical_correlations: np.ndarray
    matched_units: np.ndarray
    matched_correlations: np.ndarray
    mean_matched_correlation: float
    readout_kl: float | None
    num_sequences: int
    num_timesteps: int
    hidden_dim: int
    num_states: int

    def to_dict(self) -> dict:
        """Plain Python types (lists, floats, ints; NaN as ``None``), ready for ``json.dumps``."""
        return {f.name: _json(getattr(self, f.name)) for f in dataclasses.fields(self)}


def compare_posteriors(
    P: Float[np.ndarray, "N T K"],
    H: Float[np.ndarray, "N T Hd"],
    *,
    readout_probs: Float[np.ndarray, "N T K"] | None = None,
    lengths: Sequence[int] | None = None,
    train_fraction: float = 0.7,
    ridge: float = 1e-3,
    absolute: bool = False,
    seed: int = 0,
) -> ComparisonReport:
    """Every alignment measure of this module between a posterior and hidden states.

    Runs :func:`linear_probe` (``H -> clr(P)``, held out by sequence), :func:`cca`
    (``H`` vs ``clr(P)``, ``min(Hd, K - 1)`` components: clr coordinates span ``K - 1``
    dimensions), :func:`match_units` (``H`` vs ``P``) and, given a readout,
    :func:`readout_kl`.

    Args:
        P: ``(N, T, K)`` posterior probabilities (exact filter, VMP, ...).
        H: ``(N, T, Hd)`` hidden states of a cell run on the same sequences.
        readout_probs: optional ``(N, T, K)`` the cell's readout of ``s_t``.
        lengths: ``(N,)`` valid lengths.
        train_fraction, ridge, seed: of :func:`linear_probe`.
        absolute: of :func:`match_units`.

    Returns:
        :class:`ComparisonReport` (``.to_dict()`` for JSON).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> P = rng.dirichlet(np.ones(3), size=(6, 10))
        >>> rep = compare_posteriors(P, np.log(P), readout_probs=P)
        >>> round(rep.probe_r2, 6), rep.readout_kl
        (1.0, 0.0)
    """
    lens = _lengths(lengths, np.shape(P))
    P = _probabilities(P, "P", (3,), lengths=lens)
    H = _array(H, "H", (3,), lens)
    _same_steps(H, P, "H", "P")
    if lens is not None:  # padding is never used; make it valid so no check trips on it
        pad = np.arange(P.shape[1])[None, :] >= lens[:, None]
        P = np.where(pad[..., None], 1.0 / P.shape[-1], P)
        H = np.where(pad[..., None], 0.0, H)
        if readout_probs is not None:
            readout_probs = np.where(pad[..., None], 1.0 / P.shape[-1], readout_probs)
    K = P.shape[-1]
    if K < 2:
        raise ValueError(f"`P` must have K >= 2 states, got {K}")
    probe = linear_probe(H, P, train_fraction=train_fraction, ridge=ridge, lengths=lens, seed=seed)
    c = cca(H, clr(P), min(H.shape[-1], K - 1), lengths=lens)
    m = match_units(H, P, absolute=absolute, lengths=lens)
    kl = None if readout_probs is None else readout_kl(P, readout_probs, lengths=lens)
    steps = int(P.shape[0] * P.shape[1] if lens is None else lens.sum())
    return ComparisonReport(
        probe_r2=probe.r2,
        probe_r2_per_state=probe.r2_per_output,
        canonical_correlations=c.correlations,
        matched_units=m.units,
        matched_correlations=m.correlations,
        mean_matched_correlation=m.mean_correlation,
        readout_kl=kl,
        num_sequences=int(P.shape[0]),
        num_timesteps=steps,
        hidden_dim=int(H.shape[-1]),
        num_states=int(K),
    )


# ---------------------------------------------------------------------------
# direct route: the cell built from the model
# ---------------------------------------------------------------------------


def direct_route_states(params, ys, us=None, *, log: bool = True) -> Float[np.ndarray, "N T K"]:
    r"""States of the minGRU built from a switching model, for every sequence.

    The cell of :func:`switchssm.bridges.mingru_from_model` (positive states,
    ``candidate="log_softmax"``, ``log h_0 = log pi``) run on
    :func:`~switchssm.bridges.model_inputs`: for a gated model its states are the exact
    filter ``P(s_t | x_{1:t})`` (docs/theory.md, fact 2.2), for an always-emitting model the
    same construction as an approximation. Compare a trained cell to it with
    :func:`compare_posteriors` (``log=True`` gives states linear in ``clr(p_t)``).

    Args:
        params: a :class:`~switchssm.models.SwitchingParams`.
        ys: ``N`` observation sequences of any lengths (a list, or an array with a leading
            ``N`` axis).
        us: ``N`` cue sequences (or ``None`` without a cue).
        log: return ``log h`` (default) or ``h``.

    Returns:
        ``(N, T_max, K)``, zero-padded after each sequence's end (the cell is causal, so
        padding never changes a real step).

    Example:
        >>> from switchssm.data import example_switching_params
        >>> p = example_switching_params("categorical", 2, gated=True, cue=False)
        >>> direct_route_states(p, [np.array([0, 1, 1]), np.array([1])]).shape
        (2, 3, 2)
    """
    from switchssm.bridges import AlwaysEmittingWarning
    from switchssm.bridges import mingru_from_model
    from switchssm.bridges import model_inputs
    from switchssm.rnn import mingru_log
    from switchssm.sequences import pad

    V.check_bool(log, "log")
    ys = list(ys)
    if not ys:
        raise ValueError("`ys` is empty: give at least one sequence")
    us = [None] * len(ys) if us is None else list(us)
    if len(us) != len(ys):
        raise ValueError(f"`us` must have one cue sequence per `ys` sequence ({len(ys)})")
    xs = [np.asarray(model_inputs(params, y, u)) for y, u in zip(ys, us, strict=True)]
    lengths = [x.shape[0] for x in xs]
    with warnings.catch_warnings():  # the minGRU route on purpose, also for always-emitting
        warnings.simplefilter("ignore", AlwaysEmittingWarning)
        bridge = mingru_from_model(params, space="log")
    log_h = np.asarray(
        mingru_log(bridge.cell, pad(xs), bridge.initial_log_state, candidate="log_softmax")
    )
    out = np.array(log_h if log else np.exp(log_h))  # a writable copy
    for i, L in enumerate(lengths):
        out[i, L:] = 0.0
    return out
