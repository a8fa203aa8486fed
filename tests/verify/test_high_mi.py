"""The high-mutual-information sweep (switchssm.verify.high_mi): the KL gap of the logit
minGRU against the cue strength, measured against independent NumPy references."""

import jax
import numpy as np
import pytest
import scipy.special as sps

from switchssm._markdown import markdown_table
from switchssm.bridges.high_mi import binary_entropy
from switchssm.bridges.high_mi import cue_mutual_information
from switchssm.models import GaussianCue
from switchssm.plots.curves import plot_mi_curve
from switchssm.verify import Check
from switchssm.verify.high_mi import MISweep
from switchssm.verify.high_mi import default_mi_params
from switchssm.verify.high_mi import high_mi_checks
from switchssm.verify.high_mi import mi_sweep
from switchssm.verify.high_mi import mi_sweep_sequences
from switchssm.verify.high_mi import sweep_table
from switchssm.verify.high_mi import with_separation
from tests.bridges.references import naive_beliefs
from tests.bridges.references import numpy_filter

EXACT = 1e-12
T, N = 200, 48  # the checks below reuse these shapes, so nothing compiles twice


SEPS = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 40.0)


@pytest.fixture(scope="module")
def sweep():
    return mi_sweep(separations=SEPS, num_timesteps=T, num_sequences=N, key=jax.random.PRNGKey(0))


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
    # The selective SSM is exact at hard gates (docs/theory.md 2, fact 4).
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
        (lambda: mi_sweep(separations=[[1.0]]), "separations"),
        (lambda: mi_sweep(separations=[-1.0]), "separations"),
        (lambda: mi_sweep(separations=[1.0], num_timesteps=0), "num_timesteps"),
        (lambda: mi_sweep(separations=[1.0], num_sequences=2.5), "num_sequences"),
        (lambda: mi_sweep("model", separations=[1.0]), "params"),
        (lambda: sweep_table([]), "sweep"),
        (lambda: with_separation(default_mi_params(), -2.0), "separation"),
    ],
)
def test_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()
