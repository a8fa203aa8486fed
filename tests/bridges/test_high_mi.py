"""minGRU as the posterior recursion under high mutual information (theory.md 2.3).

References computed independently of the code under test:

- ``I(u; z)``: adaptive ``scipy.integrate.quad`` of the mixture entropy ``H(u) - H(u|z)``
  (a different formula from the module's ``H(z) - E[H(z|u)]`` trapezoid rule), the small-``d``
  closed form ``rho (1 - rho) d^2 / 2`` and ``scipy.stats.bernoulli.entropy``;
- beliefs: plain NumPy loops over time with ``scipy.stats.norm`` cue densities;
- the exact filter: a NumPy forward recursion over ``(z_t, s_t)``; KL: ``scipy.special.rel_entr``.

Exact identities use ``EXACT = 1e-12`` (float64, rounding only). Statistical statements use
common random numbers across separations and a paired 3-standard-error margin.
"""

import jax
import numpy as np
import pytest
import scipy.integrate as si
import scipy.special as sps
import scipy.stats as st

from switchssm.bridges.checks import Check
from switchssm.bridges.high_mi import (
    MISweep,
    binary_entropy,
    cue_mutual_information,
    default_mi_params,
    high_mi_checks,
    logit_mingru_belief,
    markdown_table,
    mi_sweep,
    mi_sweep_sequences,
    selective_belief,
    sweep_table,
    with_separation,
)
from switchssm.models import CategoricalEmission, GaussianCue, SwitchingParams
from switchssm.plots.curves import plot_mi_curve

EXACT = 1e-12
SEPS = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 40.0)
T, N = 200, 48  # the checks below reuse these shapes, so nothing compiles twice


@pytest.fixture(scope="module")
def sweep():
    return mi_sweep(separations=SEPS, num_timesteps=T, num_sequences=N, key=jax.random.PRNGKey(0))


# ---------------------------------------------------------------------------------------
# Mutual information


def reference_mi(rho, d):
    """``H(u) - H(u | z)`` with ``H(u)`` by adaptive quadrature of the mixture density."""

    def neg_plogp(x):
        p = (1 - rho) * st.norm.pdf(x) + rho * st.norm.pdf(x, loc=d)
        return -p * np.log(p) if p > 0 else 0.0

    pts = sorted({0.0, d / 2, d})
    h_u = si.quad(neg_plogp, -15, d + 15, points=pts, limit=500, epsabs=1e-14, epsrel=1e-13)[0]
    return h_u - 0.5 * np.log(2 * np.pi * np.e)


@pytest.mark.parametrize(
    "rho, d",
    [
        (0.05, 0.0),
        (0.05, 0.7),
        (0.05, 3.0),
        (0.5, 1.0),
        (0.5, 4.0),
        (0.9, 2.5),
        (0.2, 8.0),
        (0.01, 15.0),
        (0.3, 25.0),
    ],
)
def test_mutual_information_matches_scipy_quadrature(rho, d):
    assert abs(cue_mutual_information(rho, d) - reference_mi(rho, d)) < 1e-10


def test_mutual_information_limits_and_monotone():
    for rho in (0.05, 0.5, 0.8):
        h = binary_entropy(rho)
        assert h == pytest.approx(float(st.bernoulli(rho).entropy()), abs=EXACT)
        grid = np.linspace(0.0, 10.0, 41)
        mi = np.array([cue_mutual_information(rho, d) for d in grid])
        assert mi[0] == 0.0
        assert np.all(np.diff(mi) > 0)  # strictly increasing while H - I is resolved
        assert np.all(mi <= h)
        assert h - cue_mutual_information(rho, 40.0) < EXACT
        # Small separations: I = rho (1 - rho) d^2 / 2 + O(d^4).
        d = 1e-2
        assert cue_mutual_information(rho, d) / (rho * (1 - rho) * d**2 / 2) == pytest.approx(
            1.0, abs=1e-3
        )
    assert cue_mutual_information(0.0, 3.0) == 0.0 == binary_entropy(1.0)


# ---------------------------------------------------------------------------------------
# Beliefs against naive loops


def naive_beliefs(params, y, u):
    """``(logit minGRU, selective)`` beliefs by a Python loop (cue densities from scipy)."""
    pi = np.asarray(params.initial_probs)
    rho = float(params.switch_prob)
    m = np.asarray(params.cue.means)
    tau = float(params.cue.scale)
    llr = st.norm.logpdf(u, m[1], tau) - st.norm.logpdf(u, m[0], tau)
    g = sps.expit(np.log(rho / (1 - rho)) + llr)
    B = np.asarray(params.emission.probs)
    h_min = np.log(pi).copy()
    h_sel = np.log(pi).copy()
    out_min, out_sel = [], []
    for t in range(len(y)):
        lt = np.log(B[:, int(y[t])])
        h_min = (1 - g[t]) * h_min + g[t] * (np.log(pi) + lt)
        h_sel = (1 - g[t]) * h_sel + g[t] * np.log(pi) + lt
        out_min.append(h_min)
        out_sel.append(h_sel)
    return np.array(out_min), np.array(out_sel)


def numpy_filter(params, y, u):
    """Exact ``P(s_t | x_1:t)`` by the normalized forward recursion over ``(z_t, s_t)``."""
    pi = np.asarray(params.initial_probs)
    rho = float(params.switch_prob)
    B = np.asarray(params.emission.probs)
    m = np.asarray(params.cue.means)
    tau = float(params.cue.scale)
    alpha, out = pi, []
    for t in range(len(y)):
        ly = B[:, int(y[t])]
        cue = st.norm.pdf(u[t], m, tau)
        stay = pi @ ly if params.gated else ly
        a = (1 - rho) * alpha * stay * cue[0] + rho * pi * ly * cue[1]
        alpha = a / a.sum()
        out.append(alpha)
    return np.array(out)


@pytest.mark.parametrize("gated", [True, False])
def test_beliefs_match_naive_loop(gated):
    params, (y, u, _, _) = mi_sweep_sequences(
        separation=2.5, gated=gated, num_timesteps=T, num_sequences=N
    )
    y, u = y[0], u[0]
    ref_min, ref_sel = naive_beliefs(params, np.asarray(y), np.asarray(u))
    np.testing.assert_allclose(logit_mingru_belief(params, y, u), ref_min, atol=1e-10, rtol=0)
    np.testing.assert_allclose(selective_belief(params, y, u), ref_sel, atol=1e-10, rtol=0)


@pytest.mark.parametrize("rho", [0.0, 1.0])
def test_degenerate_switch_probabilities_are_exact(rho):
    """``rho in {0, 1}`` makes every gate hard: softmax(h_t) is the exact filter."""
    B = np.array([[0.6, 0.3, 0.1], [0.1, 0.3, 0.6]])
    params = SwitchingParams(
        np.array([0.3, 0.7]),
        rho,
        CategoricalEmission(B),
        GaussianCue(np.array([0.0, 1.0]), 1.0),
        gated=True,
    )
    y = np.array([0, 2, 2, 1, 0, 2])
    u = np.linspace(-1, 2, 6)
    q = sps.softmax(np.asarray(logit_mingru_belief(params, y, u)), axis=-1)
    np.testing.assert_allclose(q, numpy_filter(params, y, u), atol=EXACT)


def test_sweep_kl_matches_direct_computation(sweep):
    for i in (1, 4):
        for gated, per in (
            (True, sweep.gated_kl_per_sequence),
            (False, sweep.always_kl_per_sequence),
        ):
            params, (ys, us, _, _) = mi_sweep_sequences(
                separation=SEPS[i], gated=gated, num_timesteps=T, num_sequences=N
            )
            assert float(params.cue.separation) == pytest.approx(SEPS[i], abs=EXACT)
            for n in (0, 7):
                y, u = np.asarray(ys[n]), np.asarray(us[n])
                p = numpy_filter(params, y, u)
                q = sps.softmax(naive_beliefs(params, y, u)[0], axis=-1)
                kl = sps.rel_entr(p, q).sum(-1).mean()
                assert per[i, n] == pytest.approx(kl, rel=1e-8, abs=EXACT)


# ---------------------------------------------------------------------------------------
# The curve


def paired_z(per, i, j):
    """z-score of ``gap[i] - gap[j]`` over sequences (common random numbers)."""
    diff = per[i] - per[j]
    return diff.mean() / (diff.std(ddof=1) / np.sqrt(diff.size))


def test_sweep_information_column(sweep):
    assert isinstance(sweep, MISweep)
    for d, mi in zip(sweep.separations, sweep.mutual_information, strict=True):
        assert mi == pytest.approx(cue_mutual_information(0.05, d), abs=EXACT)
    assert sweep.switch_entropy == pytest.approx(binary_entropy(0.05), abs=EXACT)
    assert sweep.information_ratio[-1] == pytest.approx(1.0, abs=EXACT)


def test_gap_decays_to_zero_beyond_its_peak(sweep):
    per = sweep.gated_kl_per_sequence
    gap = sweep.gated_kl
    peak = int(np.argmax(gap[:-1]))
    # The peak sits at intermediate information, not at d = 0 (measured: d = 1..3).
    assert 1.0 <= SEPS[peak] <= 3.0
    # From d = 3 (I/H = 0.70) on, steps in d lower the gap by more than 3 paired standard
    # errors (next to the peak the decrease is within noise; from d = 6 on the gap comes from
    # rare ambiguous cues, a few per N * T = 9600 steps, so single steps are not resolved:
    # d = 5 is compared with d = 8). The means are non-increasing all the way and at d = 8
    # the gap is below 1e-3 of the peak.
    i = SEPS.index
    for a, b in ((3.0, 4.0), (4.0, 5.0), (5.0, 8.0)):
        assert paired_z(per, i(a), i(b)) > 3.0, (a, b)
    assert np.all(np.diff(gap[peak:]) <= 0)
    assert gap[SEPS.index(8.0)] < 1e-3 * gap[peak]
    # Hard gates (d = 40 saturates sigmoid in float64): the logit minGRU is exact.
    assert abs(gap[-1]) < EXACT


def test_gap_rises_from_zero_separation(sweep):
    """Not monotone in I: a weak cue makes the log-linear pooling error larger first."""
    assert paired_z(sweep.gated_kl_per_sequence, SEPS.index(2.0), 0) > 3.0


def test_always_emitting_gaps(sweep):
    # The minGRU gates its input, the exact always-emitting filter does not: no convergence.
    assert np.all(sweep.always_kl > 0.1)
    # The selective SSM is exact at hard gates (theory.md 2, fact 4).
    assert abs(sweep.always_selective_kl[-1]) < EXACT
    assert sweep.always_selective_kl[SEPS.index(8.0)] < 1e-2 * sweep.always_selective_kl[0]


def test_rates_reported(sweep):
    assert np.isfinite(sweep.rate_d2) and sweep.rate_d2 < 0
    assert np.isfinite(sweep.rate_residual) and sweep.rate_residual > 0


def test_table_markdown_and_figure(sweep, tmp_path):
    rows = sweep_table(sweep)
    assert len(rows) == len(SEPS)
    assert rows[3]["d"] == 3.0 and rows[3]["gated_kl"] == sweep.gated_kl[3]
    md = markdown_table(rows, ["d", "I_over_H", "gated_kl"])
    assert md.count("\n") == len(SEPS) + 1 and md.startswith("| d | I_over_H | gated_kl |")
    fig = plot_mi_curve(sweep, path=tmp_path / "mi.png")
    assert (tmp_path / "mi.png").stat().st_size > 0
    assert len(fig.axes) == 2


def test_checks_pass(sweep):
    checks = high_mi_checks(num_timesteps=T, num_sequences=N)
    assert all(isinstance(c, Check) for c in checks)
    assert all(c.passed for c in checks), [c for c in checks if not c.passed]
    names = {c.name for c in checks}
    assert {
        "high-mi/quadrature",
        "high-mi/gap-decreasing",
        "high-mi/hard-gates",
        "high-mi/gap-rises",
    } <= names
    rises = next(c for c in checks if c.name == "high-mi/gap-rises")
    assert rises.error > 1.0
    assert {c.kind for c in checks} == {"exact", "approximate"}


# ---------------------------------------------------------------------------------------
# Validation


def test_vector_cue_separation():
    params = default_mi_params().replace(
        cue=GaussianCue(np.zeros((2, 3)), np.array([1.0, 2.0, 0.5]))
    )
    moved = with_separation(params, 4.0)
    assert float(moved.cue.separation) == pytest.approx(4.0, abs=EXACT)
    moved2 = with_separation(moved, 1.5)
    d1 = np.asarray(moved.cue.means[1] - moved.cue.means[0]) / np.array([1, 2, 0.5])
    d2 = np.asarray(moved2.cue.means[1] - moved2.cue.means[0]) / np.array([1, 2, 0.5])
    np.testing.assert_allclose(d2 / 1.5, d1 / 4.0, atol=EXACT)  # direction kept


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: cue_mutual_information(1.5, 1.0), "switch_prob"),
        (lambda: cue_mutual_information(0.5, -1.0), "separation"),
        (lambda: cue_mutual_information(0.5, np.nan), "separation"),
        (lambda: cue_mutual_information(0.5, [1.0, 2.0]), "separation"),
        (lambda: binary_entropy(-0.1), "switch_prob"),
        (lambda: mi_sweep(separations=[[1.0]]), "separations"),
        (lambda: mi_sweep(separations=[-1.0]), "separations"),
        (lambda: mi_sweep(separations=[1.0], num_timesteps=0), "num_timesteps"),
        (lambda: mi_sweep(separations=[1.0], num_sequences=2.5), "num_sequences"),
        (lambda: mi_sweep("model", separations=[1.0]), "params"),
        (lambda: sweep_table([]), "sweep"),
        (lambda: with_separation(default_mi_params(), -2.0), "separation"),
        (lambda: logit_mingru_belief(default_mi_params(), np.zeros(4, int)), "u"),
    ],
)
def test_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()
