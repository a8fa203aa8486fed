"""The Gaussian-latent sweep (switchssm.verify.gaussian): information-form minGRU vs the exact
run-length filter over the cue strength."""

import jax
import numpy as np
import pytest

from switchssm._markdown import markdown_table
from switchssm.bridges.high_mi import cue_mutual_information
from switchssm.plots.curves import plot_gaussian_gap
from switchssm.verify import Check
from switchssm.verify.gaussian import GaussianSweep
from switchssm.verify.gaussian import gaussian_info_checks
from switchssm.verify.gaussian import gaussian_latent_sweep
from switchssm.verify.gaussian import gaussian_sweep_sequences
from switchssm.verify.gaussian import gaussian_sweep_table

EXACT = 1e-9
T, N = 40, 16  # the checks below reuse these shapes, so nothing compiles twice


SEPS = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 40.0)


@pytest.fixture(scope="module")
def sweep():
    return gaussian_latent_sweep(
        separations=SEPS, num_timesteps=T, num_sequences=N, key=jax.random.PRNGKey(0)
    )


def test_covariance_gap_before_and_after_the_first_switch(sweep):
    """Hard gates (d = 40): the exact covariance is S0 before the first switch and J~^-1 after.

    So the gap closes only after the first switch: over all steps it keeps
    ``(first switch / T) tr(S0 - J~^-1)`` per sequence.
    """
    params, (_, _, _, z) = gaussian_sweep_sequences(
        separation=40.0, num_timesteps=T, num_sequences=N
    )
    z = np.asarray(z)
    S0 = np.asarray(params.initial_cov)
    C = np.asarray(params.emission_matrix)
    Jt = np.linalg.inv(S0) + C.T @ np.linalg.solve(np.asarray(params.emission_cov), C)
    plateau = np.trace(S0 - np.linalg.inv(Jt))
    first = np.where(z.any(1), np.argmax(z == 1, axis=1), T)
    i40 = SEPS.index(40.0)
    assert sweep.gated_cov_gap_all[i40] == pytest.approx(np.mean(first / T) * plateau, rel=1e-9)
    assert abs(sweep.gated_cov_gap[i40]) < EXACT
    assert abs(sweep.gated_kl[i40]) < EXACT
    assert plateau > 0.1 and np.mean(first) > 1  # the plateau is there to be seen


def test_gated_sweep_gaps(sweep):
    assert isinstance(sweep, GaussianSweep)
    assert np.all(sweep.gated_mean_error < EXACT)
    assert np.all(sweep.gated_min_eig > -EXACT)
    for d, mi in zip(sweep.separations, sweep.mutual_information, strict=True):
        assert mi == pytest.approx(cue_mutual_information(0.1, d), abs=1e-12)
    # The covariance gap after the first switch closes as the cue sharpens (common random
    # numbers: the means are non-increasing from d = 1 on; first-to-last by a wide margin).
    gap = sweep.gated_cov_gap
    i1 = SEPS.index(1.0)
    assert np.all(np.diff(gap[i1:]) <= 0)
    assert gap[SEPS.index(3.0)] < gap[0] - 3 * (
        sweep.gated_cov_gap_se[0] + sweep.gated_cov_gap_se[SEPS.index(3.0)]
    )
    assert gap[SEPS.index(8.0)] < 1e-2 * gap[0]
    assert np.all(np.diff(sweep.gated_kl[i1:]) <= 0)


def test_always_emitting_gaps(sweep):
    # The information-form minGRU (constant precision, gated input) stays off the exact
    # always-emitting filter at every cue strength ...
    assert np.all(sweep.always_mean_error > 0.1)
    assert np.all(sweep.always_kl > 0.1)
    # ... while the selective recursion (input not gated) is exact at hard gates: its mean and
    # covariance equal the run-length filter's at every step of every sequence.
    assert sweep.always_selective_max_error[-1] < EXACT
    assert sweep.always_selective_kl[SEPS.index(8.0)] < 1e-2 * sweep.always_selective_kl[0]


def test_table_markdown_and_figure(sweep, tmp_path):
    rows = gaussian_sweep_table(sweep)
    assert len(rows) == len(SEPS) and rows[2]["d"] == 2.0
    assert rows[2]["gated_cov_gap"] == sweep.gated_cov_gap[2]
    assert markdown_table(rows, ["d", "gated_cov_gap"]).count("\n") == len(SEPS) + 1
    fig = plot_gaussian_gap(sweep, path=tmp_path / "gauss.png")
    assert (tmp_path / "gauss.png").stat().st_size > 0 and len(fig.axes) == 2


def test_checks_pass(sweep):
    checks = gaussian_info_checks(num_timesteps=T, num_sequences=N)
    assert all(isinstance(c, Check) for c in checks)
    assert all(c.passed for c in checks), [c for c in checks if not c.passed]
    kinds = {c.name: c.kind for c in checks}
    assert kinds["gaussian/gated-mean"] == "exact"
    assert kinds["gaussian/gated-cov-gap"] == "approximate"
    assert kinds["gaussian/always-mean-gap"] == "approximate"


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: gaussian_latent_sweep(separations=[-1.0]), "separations"),
        (lambda: gaussian_latent_sweep(separations=[]), "separations"),
        (lambda: gaussian_latent_sweep(separations=[1.0], num_sequences=0), "num_sequences"),
        (lambda: gaussian_sweep_table(None), "sweep"),
    ],
)
def test_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()
