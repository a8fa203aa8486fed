"""State-tracking training (switchssm.pipelines.state_tracking) and ``switchssm statetrack``:
a full bilinear cell learns parity and extrapolates to long sequences; the reported numbers
are recomputed from the saved predictions' definition; the report round-trips; bad options
exit 2 with one line."""

import json

import numpy as np
import pytest

from switchssm.cli.main import main
from switchssm.pipelines import train_state_tracker

SMALL = dict(hidden_dim=4, num_steps=150, learning_rates=(0.05,), num_train=256, num_val=16,
             num_test=64, progress=False)  # fmt: skip


def test_full_bilinear_learns_parity_and_extrapolates():
    r = train_state_tracker("parity", "bilinear", key=0, test_length=200, **SMALL)
    assert r.train_accuracy == 1.0
    assert r.test_accuracy == 1.0  # trained on lengths 2-10, exact at 200
    np.testing.assert_array_equal(r.accuracy_by_length, 1.0)
    assert r.chance_accuracy == 0.5 and r.normalized_accuracy == 1.0
    assert r.nonfinite_fraction == 0.0  # normalized states never overflow


def test_reported_numbers_follow_their_definitions():
    r = train_state_tracker("modadd", "diagonal", key=1, test_length=60, **SMALL)
    assert r.accuracy_by_length.shape == (60,)
    assert r.test_accuracy == r.accuracy_by_length[-1]
    assert r.normalized_accuracy == pytest.approx(
        (r.test_accuracy - r.chance_accuracy) / (1 - r.chance_accuracy)
    )
    assert r.chance_accuracy == pytest.approx(0.2)
    assert set(r.val_accuracy) == {0.05} and r.learning_rate == 0.05
    assert r.config["cell_kwargs"] == {"normalize": True}
    # the accuracy after each prefix averages 0/1 outcomes over num_test sequences
    assert np.all(np.isclose(r.accuracy_by_length * 64, np.round(r.accuracy_by_length * 64)))


def test_additive_bilinear_runs_unnormalized_and_baselines_refuse_it():
    r = train_state_tracker("parity", "rotation", key=2, additive=True, test_length=30, **SMALL)
    assert r.config["cell_kwargs"] == {"normalize": False}
    assert r.config["init_kwargs"] == {"additive": True}
    with pytest.raises(ValueError, match="additive"):
        train_state_tracker("parity", "lstm", additive=True, **SMALL)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(cell="transformer"), "cell"),
        (dict(cell="rotation", hidden_dim=5), "even"),
        (dict(cell="bilinear", learning_rates=()), "learning_rates"),
        (dict(cell="bilinear", learning_rates=(-1.0,)), "learning_rates"),
        (dict(cell="bilinear", train_lengths=(2,)), "train_lengths"),
        (dict(cell="bilinear", test_length=0), "test_length"),
    ],
)
def test_bad_settings_raise(kw, match):
    settings = {**SMALL, **kw}
    cell = settings.pop("cell")
    with pytest.raises(ValueError, match=match):
        train_state_tracker("parity", cell, **settings)


def test_statetrack_command_writes_its_report(tmp_path):
    out = tmp_path / "st"
    rc = main(["statetrack", "--task", "modadd", "--modulus", "3", "--cell", "bilinear",
               "--hidden", "6", "--steps", "200", "--learning-rates", "0.03",
               "--test-length", "100", "--out", str(out), "--quiet"])  # fmt: skip
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    for key in ("task", "cell", "test_length", "test_accuracy", "chance_accuracy",
                "train_accuracy", "steps", "seconds"):  # fmt: skip
        assert key in res, key
    assert res["task"] == "modadd(m=3)" and res["test_length"] == 100 and res["steps"] == 200
    assert res["test_accuracy"] == res["accuracy_by_length"][-1]
    assert res["chance_accuracy"] == pytest.approx(1 / 3)
    assert (out / "accuracy_by_length.png").stat().st_size > 10_000
    assert "modadd(m=3)" in (out / "results.md").read_text()


@pytest.mark.parametrize(
    "args",
    [
        ["--modulus", "1"],
        ["--learning-rates", "fast"],
        ["--learning-rates", "0,-1"],
        ["--cell", "transformer"],
        ["--task", "parity", "--modulus", "3"],
        ["--cell", "rotation", "--hidden", "5"],
    ],
)
def test_statetrack_bad_options_exit_2(args, tmp_path, capsys):
    rc = main(["statetrack", *args, "--steps", "1", "--out", str(tmp_path / "x")])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) >= 1 and ("error" in err[-1])
