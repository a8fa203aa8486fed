"""The command line: the demo writes its report; verify's exit code follows the exact rows."""

import json

import pytest

from switchssm.bridges.checks import Check
from switchssm.cli.main import main


def test_demo_writes_report(tmp_path):
    out = tmp_path / "report"
    rc = main(
        [
            "demo",
            "--out",
            str(out),
            "--num-sequences",
            "8",
            "--num-timesteps",
            "60",
            "--em-iters",
            "5",
            "--train-steps",
            "30",
            "--skip-verify",
            "--quiet",
        ]
    )
    assert rc == 0
    for name in (
        "report.md",
        "metrics.json",
        "fit.npz",
        "posterior.png",
        "posterior_vs_states.png",
    ):
        assert (out / name).is_file(), name
    m = json.loads((out / "metrics.json").read_text())
    assert m["num_sequences"] == 8
    # a held-out log-likelihood and an ELBO below it (VMP is a lower bound)
    assert m["heldout_vmp_elbo"] <= m["heldout_log_likelihood"] + 1e-6
    assert 0.0 <= m["state_accuracy"]["exact_smoother"] <= 1.0


@pytest.mark.parametrize("error,expected", [(0.0, 0), (1.0, 1)])
def test_verify_exit_code(monkeypatch, tmp_path, error, expected, capsys):
    rows = [
        Check("a", "an identity", "exact", "max abs error", error, 1e-9),
        Check("b", "a gap", "approximate", "nats", 0.5),
    ]
    monkeypatch.setattr("switchssm.bridges.verify.run_all_checks", lambda seed=0: rows)
    rc = main(["verify", "--json", str(tmp_path / "v.json")])
    assert rc == expected
    saved = json.loads((tmp_path / "v.json").read_text())
    assert [r["passed"] for r in saved] == [error == 0.0, True]
    out = capsys.readouterr().out
    assert f"{1 - expected}/1 exact identities hold" in out


def test_bad_arguments_exit_nonzero():
    assert main(["demo", "--num-timesteps", "0"]) == 2
    assert main(["demo", "--num-sequences", "1"]) == 2
