"""Alignment measures between posteriors and hidden states, against independent computations.

Expected values come from constructions with a known answer (exact linear maps, data
built with prescribed canonical correlations, planted permutations), from scikit-learn
(ridge + R^2), from SciPy (generalized symmetric eigenproblem for CCA,
``scipy.stats.entropy`` for KL, brute-force permutations for the assignment) and from
the exact filter (the minGRU built from a gated model). Tolerances: 1e-9 for float64
closed forms; statistical statements say their margin where they are made.
"""

import itertools
import json

import matplotlib
import numpy as np
import pytest
from scipy import linalg
from scipy import stats
from scipy.special import softmax
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score

from switchssm.compare import cca
from switchssm.compare import clr
from switchssm.compare import compare_posteriors
from switchssm.compare import direct_route_states
from switchssm.compare import linear_probe
from switchssm.compare import match_units
from switchssm.compare import readout_kl
from switchssm.data import example_switching_params
from switchssm.inference import filter
from switchssm.plots.compare import plot_posterior_vs_states
from switchssm.plots.compare import plot_switch_vs_gates

N, T, K = 12, 25, 3


@pytest.fixture
def posterior(rng):
    """Smoothly varying posteriors (N, T, K): softmax of random walks."""
    logits = np.cumsum(rng.normal(scale=0.7, size=(N, T, K)), axis=1)
    return softmax(logits, axis=-1)


# ---------------------------------------------------------------------------
# clr
# ---------------------------------------------------------------------------


def test_clr_of_softmax_is_centred_logits(rng):
    h = rng.normal(size=(4, 5, K))
    np.testing.assert_allclose(clr(softmax(h, axis=-1)), h - h.mean(-1, keepdims=True), atol=1e-12)


# ---------------------------------------------------------------------------
# linear probe
# ---------------------------------------------------------------------------


def test_probe_exact_linear_function_gives_r2_one(rng, posterior):
    A = rng.normal(size=(K, 6))
    H = clr(posterior) @ A + rng.normal(size=6)  # Hd = 6 > rank K - 1: singular Gram
    res = linear_probe(H, posterior, ridge=0.0)
    assert res.r2 == pytest.approx(1.0, abs=1e-10)
    np.testing.assert_allclose(res.r2_per_output, 1.0, atol=1e-10)
    # log P itself differs from clr(P) by a per-step constant, which clr removes:
    # the log-states of a positive-state cell are an exact linear code too.
    res = linear_probe(np.log(posterior) + 3.0, posterior, ridge=0.0)
    assert res.r2 == pytest.approx(1.0, abs=1e-10)


def test_probe_independent_noise_gives_r2_near_zero(rng):
    # Independent steps (a random walk's strong autocorrelation would leave few effective
    # samples, and the train/held-out mean difference alone would push R^2 below 0).
    P = rng.dirichlet(np.ones(K), size=(40, 50))
    H = rng.normal(size=(40, 50, 4))
    r2 = linear_probe(H, P).r2
    # 1400 training steps, 4 features: the held-out R^2 of pure noise is -O(p/n) plus
    # sampling error of a few 1e-3.
    assert -0.03 < r2 < 0.01


def test_probe_matches_sklearn_ridge(rng, posterior):
    H = clr(posterior) @ rng.normal(size=(K, 5)) + 0.8 * rng.normal(size=(N, T, 5))
    lengths = rng.integers(5, T + 1, size=N)
    ridge = 0.05
    res = linear_probe(H, posterior, ridge=ridge, lengths=lengths, train_fraction=0.6, seed=3)
    tr, te = res.train_sequences, res.test_sequences
    assert len(set(tr) & set(te)) == 0 and sorted(np.r_[tr, te]) == list(range(N))

    def rows(A, idx):
        return np.concatenate([A[i, : lengths[i]] for i in idx])

    Y = clr(posterior)
    n_train = sum(lengths[i] for i in tr)
    ref = Ridge(alpha=ridge * n_train).fit(rows(H, tr), rows(Y, tr))
    pred = ref.predict(rows(H, te))
    expected = r2_score(rows(Y, te), pred, multioutput="variance_weighted")
    assert res.r2 == pytest.approx(expected, abs=1e-9)
    np.testing.assert_allclose(
        res.r2_per_output, r2_score(rows(Y, te), pred, multioutput="raw_values"), atol=1e-9
    )
    np.testing.assert_allclose(res.weight, ref.coef_.T, atol=1e-9)
    np.testing.assert_allclose(res.bias, ref.intercept_, atol=1e-9)


# ---------------------------------------------------------------------------
# CCA
# ---------------------------------------------------------------------------


def test_cca_recovers_constructed_canonical_correlations(rng):
    """Data whose *sample* canonical correlations are exactly ``r`` by construction.

    With orthonormal, centred columns ``q_1..q_5``: ``x_i = q_i`` (i = 1..3) and
    ``y_i = r_i q_i + sqrt(1 - r_i^2) q_{3+i}`` (i = 1, 2) are orthonormal within each set
    and ``corr(x_i, y_j) = r_i delta_ij``; any invertible mixing of either set keeps the
    canonical correlations.
    """
    n, r = 400, np.array([0.9, 0.35])
    Z = rng.normal(size=(n, 5))
    Q, _ = np.linalg.qr(Z - Z.mean(0))
    X = Q[:, :3] @ rng.normal(size=(3, 3)) + rng.normal(size=3)
    Y = (Q[:, :2] * r + Q[:, 3:5] * np.sqrt(1 - r**2)) @ rng.normal(size=(2, 2))
    res = cca(X, Y, regularization=0.0)
    np.testing.assert_allclose(res.correlations, r, atol=1e-10)
    # The returned directions give unit-variance variates with those correlations.
    u = (X - res.x_mean) @ res.x_weights
    v = (Y - res.y_mean) @ res.y_weights
    np.testing.assert_allclose(np.cov(u.T), np.eye(2), atol=1e-9)
    np.testing.assert_allclose(np.cov(v.T), np.eye(2), atol=1e-9)
    np.testing.assert_allclose(np.diag(np.cov(u.T, v.T)[:2, 2:]), r, atol=1e-9)


def test_cca_matches_generalized_eigenproblem(rng):
    """rho^2 are the eigenvalues of C_xy C_yy^-1 C_yx a = rho^2 C_xx a (scipy.linalg.eigh)."""
    X = rng.normal(size=(300, 4))
    Y = X[:, :3] @ rng.normal(size=(3, 3)) + 1.5 * rng.normal(size=(300, 3))
    C = np.cov(np.c_[X, Y].T)
    Cxx, Cyy, Cxy = C[:4, :4], C[4:, 4:], C[:4, 4:]
    evals = linalg.eigh(Cxy @ np.linalg.solve(Cyy, Cxy.T), Cxx, eigvals_only=True)
    expected = np.sqrt(np.clip(np.sort(evals)[::-1][:3], 0, None))
    np.testing.assert_allclose(cca(X, Y, regularization=0.0).correlations, expected, atol=1e-10)
    # Batched (N, T, p) input with lengths: the same as the valid rows stacked.
    lengths = np.array([30, 10, 20])
    Xb = np.zeros((3, 30, 4))
    Yb = np.zeros((3, 30, 3))
    start = 0
    for i, L in enumerate(lengths):
        Xb[i, :L], Yb[i, :L] = X[start : start + L], Y[start : start + L]
        start += L
    np.testing.assert_allclose(
        cca(Xb, Yb, lengths=lengths, regularization=0.0).correlations,
        cca(X[:60], Y[:60], regularization=0.0).correlations,
        atol=1e-12,
    )


def test_cca_rank_deficient_target_is_finite(posterior):
    """clr coordinates sum to zero (rank K - 1): the extra direction gets correlation 0."""
    Y = clr(posterior)
    res = cca(np.log(posterior), Y)
    assert np.all(np.isfinite(res.correlations))
    np.testing.assert_allclose(res.correlations[: K - 1], 1.0, atol=1e-6)
    assert res.correlations[K - 1] < 1e-3


# ---------------------------------------------------------------------------
# unit matching
# ---------------------------------------------------------------------------


def test_match_units_recovers_planted_permutation(rng, posterior):
    perm = np.array([4, 0, 2])  # state k is coded by unit perm[k]
    Hd = 5
    H = 0.3 * rng.normal(size=(N, T, Hd))
    H[..., perm] += 2.0 * posterior + 1.0
    res = match_units(H, posterior)
    np.testing.assert_array_equal(res.units, perm)
    assert np.all(res.correlations > 0.8)
    # A unit coding its state by being low is found with absolute=True.
    H2 = H.copy()
    H2[..., perm[1]] *= -1
    res2 = match_units(H2, posterior, absolute=True)
    np.testing.assert_array_equal(res2.units, perm)
    assert res2.correlations[1] < -0.8


def test_match_units_is_the_best_injective_assignment(rng):
    """Hungarian result equals the brute-force maximum over all injective maps."""
    H = rng.normal(size=(200, 5))
    P = rng.dirichlet(np.ones(3), size=200) + 0.3 * H[:, :3]
    res = match_units(H, P)
    Cm = np.array([[np.corrcoef(H[:, j], P[:, k])[0, 1] for k in range(3)] for j in range(5)])
    np.testing.assert_allclose(res.correlation_matrix, Cm, atol=1e-12)
    best = max(
        itertools.permutations(range(5), 3), key=lambda js: sum(Cm[j, k] for k, j in enumerate(js))
    )
    np.testing.assert_array_equal(res.units, best)
    assert res.mean_correlation == pytest.approx(np.mean([Cm[j, k] for k, j in enumerate(best)]))


def test_match_units_fewer_units_than_states(rng):
    P = rng.dirichlet(np.ones(3), size=100)
    res = match_units(P[:, [1]], P)
    assert res.units.tolist() == [-1, 0, -1]
    assert np.isnan(res.correlations[0]) and res.correlations[1] == pytest.approx(1.0)


# ---------------------------------------------------------------------------
# KL
# ---------------------------------------------------------------------------


def test_readout_kl_against_scipy_entropy(rng, posterior):
    assert readout_kl(posterior, posterior) == pytest.approx(0.0, abs=1e-14)
    Q = softmax(np.log(posterior) + rng.normal(scale=0.5, size=posterior.shape), axis=-1)
    per_step = readout_kl(posterior, Q, reduce=False)
    expected = stats.entropy(posterior, Q, axis=-1)
    np.testing.assert_allclose(per_step, expected, rtol=1e-10, atol=1e-14)
    assert np.all(per_step > 0)
    assert readout_kl(posterior, Q) == pytest.approx(expected.mean(), rel=1e-12)
    lengths = rng.integers(1, T + 1, size=N)
    masked = np.concatenate([expected[i, : lengths[i]] for i in range(N)])
    assert readout_kl(posterior, Q, lengths=lengths) == pytest.approx(masked.mean(), rel=1e-12)
    # zero-probability entries of P contribute 0 log 0 = 0
    p, q = np.array([[1.0, 0.0]]), np.array([[0.6, 0.4]])
    assert readout_kl(p, q) == pytest.approx(stats.entropy(p[0], q[0]), rel=1e-12)


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------


def test_compare_posteriors_report_bundles_the_parts(rng, posterior):
    H = np.log(posterior)[..., [2, 0, 1]] + 0.5 * rng.normal(size=(N, T, K))
    Q = softmax(np.log(posterior) + 0.2, axis=-1)
    lengths = rng.integers(3, T + 1, size=N)
    rep = compare_posteriors(posterior, H, readout_probs=Q, lengths=lengths, ridge=0.01, seed=1)
    probe = linear_probe(H, posterior, ridge=0.01, lengths=lengths, seed=1)
    assert rep.probe_r2 == probe.r2
    np.testing.assert_array_equal(
        rep.canonical_correlations, cca(H, clr(posterior), K - 1, lengths=lengths).correlations
    )
    np.testing.assert_array_equal(
        rep.matched_units, match_units(H, posterior, lengths=lengths).units
    )
    assert rep.readout_kl == readout_kl(posterior, Q, lengths=lengths)
    assert rep.num_timesteps == lengths.sum() and rep.hidden_dim == K and rep.num_states == K
    d = json.loads(json.dumps(rep.to_dict()))
    assert d["matched_units"] == rep.matched_units.tolist()
    assert d["probe_r2"] == pytest.approx(rep.probe_r2)
    assert compare_posteriors(posterior, H).readout_kl is None


def test_direct_route_cell_is_aligned_with_the_exact_filter(rng):
    """The minGRU built from a gated model: log-states are an exact linear code of the filter.

    Its positive states equal the exact filter (readout KL 0), so the probe on clr(P) has
    R^2 = 1, the CCA correlations are 1, and unit k is matched to state k.
    """
    params = example_switching_params("categorical", K, gated=True, cue=True, switch_prob=0.2)
    pi = np.asarray(params.initial_probs)
    B = np.asarray(params.emission.probs)
    n, L = 8, 30
    z = (rng.random((n, L)) < 0.2).astype(int)
    s = np.empty((n, L), int)
    prev = rng.choice(K, size=n, p=pi)
    fresh = rng.choice(K, size=(n, L), p=pi)
    for t in range(L):
        prev = np.where(z[:, t] == 1, fresh[:, t], prev)
        s[:, t] = prev
    emit = np.where(z == 1, s, rng.choice(K, size=(n, L), p=pi))
    y = (rng.random((n, L))[..., None] > np.cumsum(B, axis=1)[emit]).sum(-1)
    u = np.asarray(params.cue.means)[z] + float(params.cue.scale) * rng.normal(size=(n, L))
    P = np.stack([np.asarray(filter(params, y[i], u[i]).filtered_s) for i in range(n)])
    H = direct_route_states(params, y, u)
    assert readout_kl(P, np.exp(H)) < 1e-10
    rep = compare_posteriors(P, H, readout_probs=np.exp(H), ridge=0.0)
    assert rep.probe_r2 == pytest.approx(1.0, abs=1e-8)
    np.testing.assert_allclose(rep.canonical_correlations, 1.0, atol=1e-6)
    np.testing.assert_array_equal(rep.matched_units, np.arange(K))


# ---------------------------------------------------------------------------
# plots
# ---------------------------------------------------------------------------


def test_plots_draw_and_save(tmp_path, posterior):
    H = np.log(posterior)
    fig = plot_posterior_vs_states(
        posterior,
        H,
        true_s=posterior.argmax(-1),
        sequence=2,
        unit_order=[2, 0, 1],
        path=tmp_path / "a.png",
    )
    assert isinstance(fig, matplotlib.figure.Figure) and (tmp_path / "a.png").stat().st_size > 0
    g = posterior[..., 0]
    fig = plot_switch_vs_gates(
        g,
        np.stack([g, 1 - g], -1),
        true_z=(g > 0.5).astype(int),
        sequence=1,
        path=tmp_path / "b.png",
    )
    assert (tmp_path / "b.png").stat().st_size > 0
    with pytest.raises(ValueError, match="same length"):
        plot_posterior_vs_states(posterior[0], H[0, :-1])
    with pytest.raises(ValueError, match="sequence"):
        plot_switch_vs_gates(g, posterior, sequence=N)


# ---------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda P, H: linear_probe(H[0], P), "`H` must have 3"),
        (lambda P, H: linear_probe(H, P[:, :-1]), "same leading"),
        (lambda P, H: linear_probe(H, P * 2), "`target` must sum to 1"),
        (lambda P, H: linear_probe(H, P, train_fraction=1.0), "train_fraction"),
        (lambda P, H: linear_probe(H, P, ridge=-1), "ridge"),
        (lambda P, H: linear_probe(H, P, lengths=[1] * (N - 1)), "lengths"),
        (lambda P, H: linear_probe(H[:1], P[:1]), "at least 2 sequences"),
        (lambda P, H: linear_probe(H, P, transform="log"), "transform"),
        (lambda P, H: cca(H, P, num_components=5), "num_components"),
        (lambda P, H: cca(np.where(H < -1, np.nan, H), P), "NaN"),
        (lambda P, H: match_units(H, P[:, 1:]), "same leading"),
        (lambda P, H: readout_kl(P, P[..., :2]), "`readout_probs` must sum"),
        (lambda P, H: readout_kl(-P, P), "`P` must hold probabilities"),
        (lambda P, H: compare_posteriors(P, H, lengths=np.zeros(N, int)), "lengths"),
        (lambda P, H: direct_route_states(example_switching_params(), [], None), "empty"),
    ],
)
def test_bad_inputs_raise(posterior, call, match):
    H = np.log(posterior)
    with pytest.raises(ValueError, match=match):
        call(posterior, H)
