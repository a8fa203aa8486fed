"""The command line: the demo writes its report; verify's exit code follows the exact rows."""

import json

import jax
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from switchssm.cli.main import main
from switchssm.data import sample_dataset
from switchssm.fit import FitResult
from switchssm.fit import LargeAlphabetWarning
from switchssm.inference import batch_log_likelihood
from switchssm.inference import smooth
from switchssm.io import load_fit
from switchssm.io import load_inference_data
from switchssm.io import save_fit
from switchssm.models import CategoricalEmission
from switchssm.models import SwitchingParams
from switchssm.pipelines import demo_params
from switchssm.verify import Check


def test_demo_writes_report(tmp_path):
    out = tmp_path / "report"
    rc = main(["demo", "--out", str(out), "--num-sequences", "8", "--num-timesteps", "60",
               "--em-iters", "5", "--train-steps", "30", "--num-warmup", "20",
               "--num-samples", "20", "--skip-verify", "--quiet"])  # fmt: skip
    assert rc == 0
    files = ("report.md", "metrics.json", "fit.npz", "posterior.png", "posterior_vs_states.png",
             "posterior.nc", "posterior_summary.csv", "manifest.json")  # fmt: skip
    for name in files:
        assert (out / name).is_file(), name
    m = json.loads((out / "metrics.json").read_text())
    # Independent recomputation of the held-out numbers: the same data (the demo's key
    # split, seed 0), the saved fit, the exact smoother, Hungarian matching by scipy.
    k_data = jax.random.split(jax.random.PRNGKey(0), 5)[0]
    seqs = sample_dataset(k_data, demo_params(), [60] * 8)
    fit = load_fit(out / "fit.npz")
    test = seqs[6:]  # 8 // 4 = 2 held out
    posts = [smooth(fit.params, y, u) for y, u, _s, _z in test]
    ll = sum(float(p.log_likelihood) for p in posts)
    assert m["heldout"]["log_likelihood"] == pytest.approx(ll, rel=1e-10)
    cost = np.abs(np.asarray(demo_params().emission.probs)[:, None]
                  - np.asarray(fit.params.emission.probs)[None]).sum(-1)  # fmt: skip
    _, perm = linear_sum_assignment(cost)
    hits = [perm[q[2]] == np.argmax(p.smoothed_s, 1) for p, q in zip(posts, test, strict=True)]
    acc = np.mean(np.concatenate(hits))
    assert m["heldout"]["state_accuracy"]["exact_smoother"] == pytest.approx(acc, abs=1e-12)
    # VMP is a lower bound on the exact log-likelihood
    assert m["heldout"]["vmp_elbo"] <= m["heldout"]["log_likelihood"] + 1e-6
    # the Bayesian step: 2 chains of 20 draws in posterior.nc, the table's intervals are the
    # draws' quantiles, and its convergence verdict follows ArviZ's r_hat
    idata = load_inference_data(out / "posterior.nc")
    draws = idata.posterior["switch_prob"].values
    assert draws.shape == (2, 20)
    row = next(r for r in m["bayes"]["parameters"] if r["parameter"] == "switch_prob")
    np.testing.assert_allclose([row["lower"], row["upper"]], np.quantile(draws, [0.05, 0.95]))
    assert row["covered"] == (row["lower"] <= 0.05 <= row["upper"]) and row["truth"] == 0.05
    report = (out / "report.md").read_text()
    assert "## Bayesian step (NUTS)" in report
    converged = m["bayes"]["converged"]
    assert ("did not converge" in report) == (not converged)
    # a converged posterior covers the true switch probability (else the report said so)
    assert row["covered"] or not converged


@pytest.mark.parametrize("error,expected", [(0.0, 0), (1.0, 1)])
def test_verify_exit_code(monkeypatch, tmp_path, error, expected, capsys):
    rows = [
        Check("a", "an identity", "exact", "max abs error", error, 1e-9),
        Check("b", "a gap", "approximate", "nats", 0.5),
    ]
    monkeypatch.setattr("switchssm.verify.run_all_checks", lambda seed=0: rows)
    rc = main(["verify", "--json", str(tmp_path / "v.json")])
    assert rc == expected
    saved = json.loads((tmp_path / "v.json").read_text())
    assert [r["passed"] for r in saved] == [error == 0.0, True]
    out = capsys.readouterr().out
    assert f"{1 - expected}/1 exact identities hold" in out


def test_bad_arguments_exit_2(capsys):
    assert main(["demo", "--num-timesteps", "0"]) == 2
    assert "--num-timesteps: must be an integer >= 2, got 0" in capsys.readouterr().err
    assert main(["demo", "--num-sequences", "1"]) == 2
    assert "--num-sequences" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory):
    """Three sequences of different lengths from the demo model, with a cue column."""
    seqs = sample_dataset(jax.random.PRNGKey(3), demo_params(), [40, 25, 33])
    path = tmp_path_factory.mktemp("data") / "obs.csv"
    rows = ["sequence,y,u"]
    for i, (y, u, _s, _z) in enumerate(seqs):
        pairs = zip(np.asarray(y), np.asarray(u), strict=True)
        rows += [f"s{i},{int(a)},{float(b)!r}" for a, b in pairs]  # repr: exact round trip
    path.write_text("\n".join(rows) + "\n")
    return path, [np.asarray(q[0]) for q in seqs], [np.asarray(q[1]) for q in seqs]


@pytest.mark.parametrize("method", ["em", "svi"])
def test_fit_and_compare_on_csv(tmp_path, tiny_csv, method):
    path, ys, us = tiny_csv
    out = tmp_path / "fit"
    extra = (
        ["--iters", "5", "--restarts", "1"]
        if method == "em"
        else ["--iters", "30", "--num-samples", "20"]
    )
    rc = main(["fit", str(path), "--num-states", "2", "--method", method, "--out", str(out),
               "--quiet", *extra])  # fmt: skip
    assert rc == 0
    names = ["fit.npz", "fit.json", "posterior.png"]
    if method == "svi":
        names += ["posterior.nc", "posterior_summary.csv", "posterior_summary.md"]
    for name in names:
        assert (out / name).is_file(), name
    summary = json.loads((out / "fit.json").read_text())
    fit = load_fit(out / "fit.npz")
    assert summary["num_sequences"] == 3 and summary["cue"] is True
    assert fit.metadata["method"] == method and fit.params.num_states == 2
    # the stored log-likelihood is that of the stored parameters on the file's data
    # (recomputed here by the batched forward pass, from the arrays sampled above)
    ll = float(np.sum(np.asarray(batch_log_likelihood(fit.params, ys, us))))
    assert summary["log_likelihood"] == pytest.approx(ll, rel=1e-9)
    if method == "svi":
        idata = load_inference_data(out / "posterior.nc")
        assert idata.posterior["switch_prob"].shape == (1, 20)

    cmp_out = tmp_path / "compare"
    rc = main(["compare", str(path), "--fit", str(out / "fit.npz"), "--train-steps", "5",
               "--window", "20", "--out", str(cmp_out), "--quiet"])  # fmt: skip
    assert rc == 0
    for name in ("compare.json", "posterior_vs_states.png", "switch_vs_gates.png"):
        assert (cmp_out / name).is_file(), name
    res = json.loads((cmp_out / "compare.json").read_text())
    assert res["exact_log_likelihood"] == pytest.approx(ll, rel=1e-9)
    # VMP's ELBO is a lower bound on the exact log-likelihood
    assert res["vmp_elbo"] <= res["exact_log_likelihood"] + 1e-6
    assert res["trained_cell_vs_exact_filter"]["num_states"] == 2
    # no `s` column: the cell learns the next observation, no latent is scored
    assert res["target"] == "next" and res["task"] == "next_observation"
    assert res["latent"] is None


@pytest.mark.parametrize(
    "content,problem",
    [("y\n0\nabc\n", "is not a number"), ("y,w\n0,1\n", "unexpected column")],
)
def test_fit_bad_file_exits_2(tmp_path, capsys, content, problem):
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    rc = main(["fit", str(bad), "--num-states", "2", "--out", str(tmp_path / "o"), "--quiet"])
    assert rc == 2
    err = capsys.readouterr().err
    assert str(bad) in err and problem in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_fit_missing_file_and_bad_fit_exit_2(tmp_path, capsys):
    missing = tmp_path / "nope.npy"
    assert main(["fit", str(missing), "--num-states", "2", "--quiet"]) == 2
    assert str(missing) in capsys.readouterr().err
    data = tmp_path / "y.npy"
    np.save(data, np.array([0, 1, 1, 0]))
    not_a_fit = tmp_path / "fit.npz"
    not_a_fit.write_text("not an archive")
    rc = main(["compare", str(data), "--fit", str(not_a_fit), "--out", str(tmp_path / "c")])
    assert rc == 2
    assert str(not_a_fit) in capsys.readouterr().err


def test_fit_categorical_rejects_real_values(tmp_path, capsys):
    path = tmp_path / "real.npy"
    np.save(path, np.array([0.5, 1.5, 2.0]))
    assert main(["fit", str(path), "--num-states", "2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "--emission gaussian" in err


# --------------------------------------------------------------------------------------
# compare with a known latent (CSV column `s`)

# fitted state j is true state PERM[j]: the fit's labels are a permutation of the truth
PERM = np.array([2, 0, 1])


@pytest.fixture(scope="module")
def latent_case(tmp_path_factory):
    """Four sequences of 50 steps with their true latent, and a fit with permuted labels."""
    true = demo_params()
    seqs = sample_dataset(jax.random.PRNGKey(5), true, [50] * 4)
    folder = tmp_path_factory.mktemp("latent")
    rows = ["sequence,y,u,s"]
    for i, (y, u, s, _z) in enumerate(seqs):
        triples = zip(np.asarray(y), np.asarray(u), np.asarray(s), strict=True)
        rows += [f"q{i},{int(a)},{float(b)!r},{int(c)}" for a, b, c in triples]
    (folder / "obs.csv").write_text("\n".join(rows) + "\n")
    (folder / "obs_no_s.csv").write_text("\n".join(",".join(r.split(",")[:3]) for r in rows) + "\n")
    params = SwitchingParams(
        initial_probs=np.asarray(true.initial_probs)[PERM],
        switch_prob=true.switch_prob,
        emission=CategoricalEmission(np.asarray(true.emission.probs)[PERM]),
        cue=true.cue,
        gated=False,
    )
    save_fit(folder / "fit.npz", FitResult(params, 0.0, np.zeros((1, 1)), np.array([True]),
                                           np.array([0.0]), {"method": "given"}))  # fmt: skip
    return folder, params, [tuple(np.asarray(a) for a in q) for q in seqs]


def test_compare_target_latent(tmp_path, latent_case, capsys):
    folder, params, seqs = latent_case
    out = tmp_path / "compare"
    # no --target: a file with an `s` column trains the cell on the latent
    rc = main(["compare", str(folder / "obs.csv"), "--fit", str(folder / "fit.npz"),
               "--train-steps", "20", "--window", "25", "--out", str(out), "--quiet"])  # fmt: skip
    assert rc == 0
    assert "trained on the known latent" in capsys.readouterr().out
    res = json.loads((out / "compare.json").read_text())
    assert res["target"] == "latent" and res["task"] == "latent"
    lat = res["latent"]

    # independent recomputation: exact smoother of the fitted model, the confusion as a
    # one-hot matrix product, and scipy's Hungarian matching (minimizing the negated sum)
    posts = [smooth(params, y, u) for y, u, _s, _z in seqs]
    S = np.concatenate([np.eye(3)[s] for _y, _u, s, _z in seqs])  # (T_all, K) one-hot truth
    Ps = np.concatenate([np.asarray(p.smoothed_s) for p in posts])
    Pf = np.concatenate([np.asarray(p.filtered_s) for p in posts])
    confusion = S.T @ Ps
    np.testing.assert_allclose(lat["confusion"], confusion, rtol=1e-9, atol=1e-12)
    rows, cols = linear_sum_assignment(-confusion)
    to_fitted = cols[np.argsort(rows)]
    # the matching recovers the permutation the fit was built with (a well-separated model)
    np.testing.assert_array_equal(to_fitted, np.argsort(PERM))
    assert lat["true_to_fitted"] == to_fitted.tolist()
    truth = np.concatenate([s for _y, _u, s, _z in seqs])
    acc_smooth = float(np.mean(to_fitted[truth] == Ps.argmax(1)))
    acc_filter = float(np.mean(to_fitted[truth] == Pf.argmax(1)))
    assert lat["exact_smoother_accuracy"] == pytest.approx(acc_smooth, abs=1e-12)
    assert lat["exact_filter_accuracy"] == pytest.approx(acc_filter, abs=1e-12)
    assert acc_smooth > 0.8  # the model that generated the data recovers its latent
    # the exact filter's accuracy on the cell's held-out windows, recomputed from them
    hits = [to_fitted[seqs[i][2][a:b]] == np.asarray(posts[i].filtered_s)[a:b].argmax(1)
            for i, a, b in res["heldout_windows"]]  # fmt: skip
    assert lat["exact_filter_heldout_accuracy"] == pytest.approx(
        float(np.mean(np.concatenate(hits))), abs=1e-12
    )
    kl = res["trained_cell_vs_exact_filter"]["readout_kl"]
    assert kl is not None and kl >= 0.0
    assert res["exact_log_likelihood"] == pytest.approx(
        sum(float(p.log_likelihood) for p in posts), rel=1e-9
    )


def test_compare_latent_errors_exit_2(tmp_path, latent_case, capsys):
    folder, _params, _seqs = latent_case
    fit = str(folder / "fit.npz")
    no_s = folder / "obs_no_s.csv"
    rc = main(["compare", str(no_s), "--fit", fit, "--target", "latent",
               "--out", str(tmp_path / "a"), "--quiet"])  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err
    assert str(no_s) in err and "no 's' column" in err and "Traceback" not in err
    assert not (tmp_path / "a").exists()

    # a latent id >= K (the fit has K = 3)
    big = tmp_path / "big.csv"
    big.write_text("sequence,y,u,s\na,0,0.1,0\na,1,0.2,3\na,2,0.3,1\n")
    rc = main(["compare", str(big), "--fit", fit, "--out", str(tmp_path / "b"), "--quiet"])
    assert rc == 2
    err = capsys.readouterr().err
    assert str(big) in err and "latent state 3" in err and "0..2" in err
    assert not (tmp_path / "b").exists()

    # a malformed latent: the reader's message (file, line, column) reaches the user
    bad = tmp_path / "bad.csv"
    bad.write_text("y,u,s\n0,0.1,0\n1,0.2,x\n")
    assert main(["compare", str(bad), "--fit", fit, "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "line 3, column 's'" in err


def test_user_errors_exit_2_with_one_line(tmp_path, tiny_csv, capsys):
    """K = 1 fits cannot be compared, a K whose arrays cannot fit in memory is refused before
    anything is allocated, tampered or foreign fit files are named, and bad --out paths are
    refused before the fit runs: each with status 2, one line, no traceback."""
    path, _, _ = tiny_csv
    one = tmp_path / "one"
    assert main(["fit", str(path), "--num-states", "1", "--iters", "2", "--restarts", "1",
                 "--out", str(one), "--quiet"]) == 0  # fmt: skip
    capsys.readouterr()
    rc = main(["compare", str(path), "--fit", str(one / "fit.npz"), "--out", str(tmp_path / "c"),
               "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "K = 1" in err and "Traceback" not in err
    rc = main(["fit", str(path), "--num-states", "100000000", "--out", str(tmp_path / "h"),
               "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "GiB" in err and len(err.strip().splitlines()) == 1
    # a fit file with a complex array, and a CSV given as the fit
    with np.load(one / "fit.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["params.switch_prob"] = np.array(0.1 + 0j)
    np.savez(tmp_path / "tampered.npz", **arrays)
    for bad in (tmp_path / "tampered.npz", path):
        rc = main(["compare", str(path), "--fit", str(bad), "--out", str(tmp_path / "c")])
        err = capsys.readouterr().err
        assert rc == 2 and str(bad) in err and "pickle" not in err and "Traceback" not in err
    # --out an existing file, or under a missing folder: refused before fitting
    afile = tmp_path / "afile"
    afile.write_text("x")
    for out in (afile, tmp_path / "missing" / "deeper"):
        rc = main(["fit", str(path), "--num-states", "2", "--out", str(out), "--quiet"])
        err = capsys.readouterr().err
        assert rc == 2 and "--out" in err and "Traceback" not in err


@pytest.mark.parametrize("num_timesteps", [1000, 120])
def test_fit_and_compare_on_one_sequence(tmp_path, num_timesteps, capsys):
    """The README's `obs.csv` case: one sequence, no `sequence` column. `compare` trains and
    holds out the cell on windows cut from it (1000 steps: five windows of 200; 120 steps:
    one window of 200 is too few, halved to two of 60)."""
    ((y, _u, _s, _z),) = sample_dataset(jax.random.PRNGKey(7), demo_params(), [num_timesteps])
    y = np.asarray(y)
    path = tmp_path / "obs.csv"
    path.write_text("y\n" + "\n".join(str(int(a)) for a in y) + "\n")
    fit_out, cmp_out = tmp_path / "fit", tmp_path / "cmp"
    assert main(["fit", str(path), "--num-states", "2", "--iters", "3", "--restarts", "1",
                 "--out", str(fit_out), "--quiet"]) == 0  # fmt: skip
    rc = main(["compare", str(path), "--fit", str(fit_out / "fit.npz"), "--train-steps", "5",
               "--out", str(cmp_out), "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0, err
    res = json.loads((cmp_out / "compare.json").read_text())
    assert res["num_sequences"] == 1 and res["lengths"] == [num_timesteps]
    # the windows, recomputed from the rule in the README
    window = 200 if num_timesteps >= 400 else num_timesteps // 2
    assert res["training_windows"] == num_timesteps // window
    held = res["heldout_windows"]
    assert 1 <= len(held) < res["training_windows"]
    for i, a, b in held:
        assert i == 0 and a % window == 0 and b == a + window <= num_timesteps
    fit = load_fit(fit_out / "fit.npz")
    ll = float(smooth(fit.params, y).log_likelihood)
    assert res["exact_log_likelihood"] == pytest.approx(ll, rel=1e-9)


def _one_line_exit_2(capsys, argv, *needles):
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)
    return out, err


def test_user_caused_failures_exit_2_with_one_line(tmp_path, capsys, monkeypatch):
    """Bad --out paths (refused before fitting), degenerate data, huge or malformed CSV
    cells: each exits with status 2 and one line naming the problem."""
    ok = tmp_path / "ok.csv"
    ok.write_text("y\n0\n1\n1\n0\n")
    fit = ["fit", "--num-states", "2", "--iters", "1", "--restarts", "1", "--quiet"]
    # /proc takes no new folder even where os.access says it is writable (as root)
    out, _ = _one_line_exit_2(capsys, [*fit, str(ok), "--out", "/proc/switchssm-x"], "--out")
    assert "[2/3]" not in out  # refused before the fit ran
    cases = {
        "single.csv": ("y\n1.5\n", ["--emission", "gaussian"], "`y` holds 1 step"),
        "const_y.csv": ("y\n2.5\n2.5\n2.5\n", ["--emission", "gaussian"], "`y` is constant"),
        "const_u.csv": ("y,u\n0,1\n1,1\n0,1\n1,1\n", [], "`u` is constant"),
        "overflow.csv": ("y\n0\n99999999999999999999\n", [], "far too large"),
        "arabic.csv": ("y\n0\n\u0661\n1\n", [], "ASCII digits"),
        "underscore.csv": ("y\n0\n1_0\n1\n", [], "ASCII digits"),
    }
    for name, (text, extra, needle) in cases.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        _one_line_exit_2(capsys, [*fit, str(path), *extra, "--out", str(tmp_path / "o")],
                         str(path), needle)  # fmt: skip
        assert not (tmp_path / "o").exists()
    # one stray symbol 10^8: its memory is checked before anything is allocated (the
    # available memory is set to 1 GiB here, so the check does not depend on the machine)
    monkeypatch.setattr("switchssm.fit._spec.available_memory", lambda: 2**30)
    stray = tmp_path / "stray.csv"
    stray.write_text("y\n0\n1\n100000000\n")
    with pytest.warns(LargeAlphabetWarning, match="100000001"):
        _one_line_exit_2(capsys, [*fit, str(stray), "--out", str(tmp_path / "o")], "GiB",
                         "V = 100000001")  # fmt: skip


def test_csv_symbols_written_as_integral_floats_and_a_sparse_alphabet(tmp_path, capsys):
    """'1.0' is the symbol 1 (as the library accepts integral floats); a stray 10^6 fits but
    warns that V = 10^6 + 1 symbols are implied while 3 occur."""
    y = np.array([0, 1, 1, 0, 2, 1, 0, 0])
    path = tmp_path / "floats.csv"
    path.write_text("y\n" + "\n".join(f"{a}.0" if i % 2 else str(a) for i, a in enumerate(y)))
    fit = ["fit", "--num-states", "2", "--iters", "2", "--restarts", "1", "--quiet"]
    assert main([*fit, str(path), "--out", str(tmp_path / "f")]) == 0
    res = load_fit(tmp_path / "f" / "fit.npz")
    assert res.params.emission.num_symbols == 3
    ll = float(np.sum(np.asarray(batch_log_likelihood(res.params, [y]))))
    assert res.log_likelihood == pytest.approx(ll, rel=1e-12)
    sparse = tmp_path / "sparse.csv"
    sparse.write_text("y\n" + "\n".join(str(a) for a in [*y, 1000000]) + "\n")
    with pytest.warns(LargeAlphabetWarning, match="1000001 symbols but only 4"):
        assert main([*fit, str(sparse), "--out", str(tmp_path / "g")]) == 0


def test_fit_report_folder_is_one_unit(tmp_path, capsys, monkeypatch):
    """Two `fit` runs on one --out: fit.npz and fit.json always come from the same run (the
    second replaces the folder whole), and a run killed between the two writes leaves the
    previous report as it was. Every output file is mode 0644."""
    out = tmp_path / "fit"
    fit = ["fit", "--num-states", "2", "--iters", "2", "--restarts", "1", "--quiet"]
    files = []
    for i, y in enumerate(([0, 1, 1, 0, 2, 1], [2, 2, 0, 1, 0, 0, 1, 2, 2])):
        files.append(tmp_path / f"d{i}.csv")
        files[-1].write_text("y\n" + "\n".join(map(str, y)) + "\n")
        assert main([*fit, str(files[-1]), "--out", str(out)]) == 0

        def same_run(y=y):
            summary = json.loads((out / "fit.json").read_text())
            saved = load_fit(out / "fit.npz")
            assert summary["log_likelihood"] == pytest.approx(saved.log_likelihood, rel=1e-12)
            ll = float(np.sum(np.asarray(batch_log_likelihood(saved.params, [np.array(y)]))))
            assert saved.log_likelihood == pytest.approx(ll, rel=1e-9)

        same_run()
    for p in out.iterdir():
        assert oct(p.stat().st_mode & 0o777) == "0o644", p.name
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def killed(folder, obs, fit_result, **kw):
        from switchssm.io import save_fit

        save_fit(folder.file("fit.npz"), fit_result)
        raise OSError("killed between fit.npz and fit.json")

    monkeypatch.setattr("switchssm.pipelines.write_fit_report", killed)
    assert main([*fit, str(files[0]), "--out", str(out)]) == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    same_run()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d0.csv", "d1.csv", "fit"]
