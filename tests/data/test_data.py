"""Shipped data sets, synthetic samplers and user-file readers (switchssm.data)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from switchssm.data import CHLOROPLAST_REGION_LENGTHS
from switchssm.data import example_switching_params
from switchssm.data import load_chloroplast
from switchssm.data import load_nile
from switchssm.data import load_nile_standardized
from switchssm.data import read_dataset
from switchssm.data import read_sequences
from switchssm.data import sample_dataset
from switchssm.data import standardize
from switchssm.models import GaussianLatentParams
from switchssm.models import SwitchingParams

# R's `datasets::Nile` as printed by `print(Nile)` in R (Start = 1871, End = 1970), transcribed
# independently of the shipped CSV (which was copied from statsmodels).
R_NILE_PRINTOUT = """
1120 1160  963 1210 1160 1160  813 1230 1370 1140  995  935 1110  994 1020
 960 1180  799  958 1140 1100 1210 1150 1250 1260 1220 1030 1100  774  840
 874  694  940  833  701  916  692 1020 1050  969  831  726  456  824  702
1120 1100  832  764  821  768  845  864  862  698  845  744  796 1040  759
 781  865  845  944  984  897  822 1010  771  676  649  846  812  742  801
1040  860  874  848  890  744  749  838 1050  918  986  797  923  975  815
1020  906  901 1170  912  746  919  718  714  740
"""


# --------------------------------------------------------------------------------------
# Nile
# --------------------------------------------------------------------------------------


def test_nile_shapes_and_years():
    nile = load_nile()
    assert nile.years.shape == (100,) and nile.flow.shape == (100,)
    assert nile.years.dtype == np.int64 and nile.flow.dtype == np.float64
    np.testing.assert_array_equal(nile.years, np.arange(1871, 1971))


def test_nile_matches_r_datasets_values():
    r_values = np.array(R_NILE_PRINTOUT.split(), dtype=np.float64)
    assert r_values.size == 100
    np.testing.assert_array_equal(load_nile().flow, r_values)


def test_nile_level_shift_around_1898():
    nile = load_nile()
    before = nile.flow[nile.years <= 1898]
    after = nile.flow[nile.years >= 1899]
    assert before.size == 28 and after.size == 72
    # Means of R's values: 30737 / 28 and 61198 / 72 (sums of the printout above).
    assert before.mean() == pytest.approx(30737 / 28) == pytest.approx(1097.75)
    assert after.mean() == pytest.approx(61198 / 72) == pytest.approx(849.9722, abs=1e-4)
    # The shift is large against the year-to-year noise (Welch t-test, scipy).
    t, p = scipy.stats.ttest_ind(before, after, equal_var=False)
    assert t > 5 and p < 1e-6


def test_nile_standardized_matches_scipy_zscore():
    nile, z = load_nile_standardized()
    np.testing.assert_allclose(z.values, scipy.stats.zscore(nile.flow), rtol=1e-12)
    np.testing.assert_allclose(z.invert(z.values), nile.flow, rtol=1e-12)
    _, z1 = load_nile_standardized(ddof=1)
    np.testing.assert_allclose(z1.values, scipy.stats.zscore(nile.flow, ddof=1), rtol=1e-12)


def test_standardize_columns_and_errors():
    x = np.array([[1.0, 10.0], [2.0, 30.0], [3.0, 20.0]])
    z = standardize(x)
    np.testing.assert_allclose(z.values, scipy.stats.zscore(x, axis=0), rtol=1e-12)
    np.testing.assert_allclose(z.invert(z.values), x)
    with pytest.raises(ValueError, match="constant"):
        standardize(np.ones(4))
    with pytest.raises(ValueError, match="NaN"):
        standardize(np.array([1.0, np.nan, 2.0]))
    with pytest.raises(ValueError, match="at least two"):
        standardize(np.array([1.0]))
    with pytest.raises(ValueError, match="shape"):
        standardize(np.ones((2, 2, 2)))


# --------------------------------------------------------------------------------------
# Chloroplast genome
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chloroplast():
    return load_chloroplast()


def _as_string(cp, a=0, b=None):
    return "".join(np.array(cp.alphabet)[cp.symbols[a:b]])


def test_chloroplast_shape_alphabet(chloroplast):
    cp = chloroplast
    assert cp.accession == "NC_000932.1"
    assert cp.alphabet == ("A", "C", "G", "T")
    assert cp.symbols.shape == (154478,) and cp.symbols.dtype == np.int32
    assert set(np.unique(cp.symbols).tolist()) == {0, 1, 2, 3}
    assert cp.regions.shape == cp.symbols.shape
    # Sato et al. (1999): 154,478 bp = LSC 84,170 + 2 x IR 26,264 + SSC 17,780.
    assert CHLOROPLAST_REGION_LENGTHS == (84170, 26264, 17780, 26264)
    np.testing.assert_array_equal(np.diff(cp.region_bounds), CHLOROPLAST_REGION_LENGTHS)
    np.testing.assert_array_equal(np.bincount(cp.regions), CHLOROPLAST_REGION_LENGTHS)


def test_chloroplast_ends_match_genbank_record(chloroplast):
    # First and last lines of the ORIGIN section of the NC_000932 GenBank flat file.
    first = "atgggcgaac gacgggaatt gaacccgcga tggtgaattc acaatccact gccttaatcc"
    last = "gcggaaaaag aaatcataat aacttggtcc cgggcatc"  # from base 154441
    assert _as_string(chloroplast, 0, 60) == first.replace(" ", "").upper()
    assert _as_string(chloroplast, 154440) == last.replace(" ", "").upper()


def test_chloroplast_inverted_repeats(chloroplast):
    cp = chloroplast
    seq = _as_string(cp)
    comp = str.maketrans("ACGT", "TGCA")

    def revcomp(s):
        return s.translate(comp)[::-1]

    lsc, irb, ssc, ira = (
        seq[a:b] for a, b in zip(cp.region_bounds[:-1], cp.region_bounds[1:], strict=True)
    )
    assert irb == revcomp(ira)
    # Maximal: IRb[i] pairs with IRa[-1 - i]; growing both repeats outwards (into the LSC,
    # and across the circular junction to base 1) or inwards (into the SSC) breaks it.
    assert lsc[-1] != revcomp(seq[0])
    assert ssc[0] != revcomp(ssc[-1])


def test_chloroplast_composition_differs_between_regions(chloroplast):
    cp = chloroplast
    gc = np.isin(cp.symbols, [1, 2])
    frac = np.array([gc[cp.regions == r].mean() for r in range(4)])
    lsc, irb, ssc, ira = frac
    assert irb == ira  # reverse complement keeps the GC count
    assert irb > lsc > ssc
    assert irb - ssc > 0.1  # a composition switch of more than 10 percentage points


# --------------------------------------------------------------------------------------
# Synthetic samplers
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["categorical", "gaussian", "gaussian_latent"])
def test_sample_dataset_lengths_and_shapes(key, kind):
    params = example_switching_params(kind, num_states=2, cue=True, emission_dim=2)
    lengths = [7, 3, 7]
    data = sample_dataset(key, params, lengths)
    assert len(data) == 3
    # one key per sequence: the two draws of the same length differ
    assert not np.array_equal(data[0][0], data[2][0])
    for (y, u, s, z), T in zip(data, lengths, strict=True):
        assert z.shape == (T,) and set(np.unique(z).tolist()) <= {0, 1}
        assert u.shape == (T,) and np.all(np.isfinite(u))
        if kind == "categorical":
            assert y.shape == (T,) and np.issubdtype(y.dtype, np.integer)
            assert y.min() >= 0 and y.max() < params.emission.num_symbols
        else:
            assert y.shape == (T, 2) and np.all(np.isfinite(y))
        if kind == "gaussian_latent":
            assert isinstance(params, GaussianLatentParams)
            assert s.shape == (T, 2)
            # the latent only moves at a switch
            np.testing.assert_array_equal(s[1:][z[1:] == 0], s[:-1][z[1:] == 0])
        else:
            assert isinstance(params, SwitchingParams)
            assert s.shape == (T,) and s.min() >= 0 and s.max() < 2
            assert np.all(s[1:][z[1:] == 0] == s[:-1][z[1:] == 0])


def test_sample_dataset_single_length_and_no_cue(key):
    params = example_switching_params("categorical", cue=False, gated=True)
    assert params.gated and params.cue is None
    [(y, u, s, z)] = sample_dataset(key, params, np.int64(7))
    assert y.shape == (7,) and u is None and s.shape == (7,) and z.shape == (7,)


def test_example_params_values():
    p = example_switching_params("categorical", 3, num_symbols=4, peak=0.7, switch_prob=0.1)
    np.testing.assert_allclose(p.emission.probs.sum(1), 1.0)
    np.testing.assert_allclose(np.diag(np.asarray(p.emission.probs)[:, :3]), 0.7)
    np.testing.assert_allclose(p.initial_probs, np.full(3, 1 / 3))
    assert float(p.switch_prob) == pytest.approx(0.1)
    g = example_switching_params("gaussian", 3, separation=2.0, cue=False)
    np.testing.assert_allclose(np.asarray(g.emission.means)[:, 0], [-2.0, 0.0, 2.0])


def test_example_params_and_sample_dataset_errors(key):
    with pytest.raises(ValueError, match="kind"):
        example_switching_params("poisson")
    with pytest.raises(ValueError, match="num_symbols"):
        example_switching_params("categorical", num_states=5, num_symbols=4)
    with pytest.raises(ValueError, match="switch_prob"):
        example_switching_params("gaussian", switch_prob=1.5)
    with pytest.raises(ValueError, match="num_states"):
        example_switching_params("gaussian", num_states=0)
    params = example_switching_params("categorical")
    with pytest.raises(ValueError, match="lengths"):
        sample_dataset(key, params, [5, 0])
    with pytest.raises(ValueError, match="lengths"):
        sample_dataset(key, params, [])
    with pytest.raises(ValueError, match="lengths"):
        sample_dataset(key, params, 2.5)
    with pytest.raises(ValueError, match="params"):
        sample_dataset(key, {"rho": 0.1}, [5])


# --------------------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------------------


def test_read_csv_single_column_roundtrip(tmp_path):
    y = np.array([0, 3, 1, 2, 2])
    path = tmp_path / "obs.csv"
    path.write_text("symbol\n" + "\n".join(str(v) for v in y) + "\n")
    [got] = read_sequences(path)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, y)


def test_read_csv_sequences_with_cue_roundtrip(tmp_path, rng):
    ys = [rng.normal(size=4), rng.normal(size=2)]
    us = [rng.normal(size=4), rng.normal(size=2)]
    lines = ["sequence,y,u"]
    for sid, y, u in zip(["run-a", "run-b"], ys, us, strict=True):
        lines += [f"{sid},{float(a)!r},{float(b)!r}" for a, b in zip(y, u, strict=True)]
    path = tmp_path / "obs.csv"
    path.write_text("\n".join(lines) + "\n")
    data = read_dataset(path)
    assert data.ids == ["run-a", "run-b"]
    for got, want in zip(data.y, ys, strict=True):
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, want)  # repr round-trips floats exactly
    for got, want in zip(data.u, us, strict=True):
        np.testing.assert_array_equal(got, want)
    assert len(read_sequences(path)) == 2


def test_read_csv_columns_in_any_order_without_cue(tmp_path):
    path = tmp_path / "obs.csv"
    path.write_text("Y,Sequence\n1,b\n0,b\n2,a\n")
    data = read_dataset(path)
    assert data.u is None and data.ids == ["b", "a"]
    np.testing.assert_array_equal(data.y[0], [1, 0])
    np.testing.assert_array_equal(data.y[1], [2])


def test_read_csv_latent_column(tmp_path):
    path = tmp_path / "obs.csv"
    path.write_text("s,sequence,y,u\n2,a,0,0.5\n0,a,3,1.5\n+1,b,1,-0.5\n")
    data = read_dataset(path)
    assert data.ids == ["a", "b"]
    assert [s.dtype for s in data.s] == [np.int64, np.int64]
    np.testing.assert_array_equal(data.s[0], [2, 0])
    np.testing.assert_array_equal(data.s[1], [1])
    np.testing.assert_array_equal(data.y[0], [0, 3])  # the latent does not leak into y
    np.testing.assert_array_equal(data.u[1], [-0.5])
    assert [len(y) for y in read_sequences(path)] == [2, 1]
    # without an `s` column (and always for .npy) there is no latent
    path.write_text("y,u\n0,0.5\n")
    assert read_dataset(path).s is None
    np.save(tmp_path / "obs.npy", np.array([0, 1]))
    assert read_dataset(tmp_path / "obs.npy").s is None


def assert_csv_refused(reader, path, text, problem):
    """``reader`` refuses ``path`` holding ``text``: a ValueError matching ``problem`` whose
    message starts with the documented ``cannot read sequences from '<path>':``."""
    path.write_text(text)
    with pytest.raises(ValueError, match=problem) as err:
        reader(path)
    assert str(err.value).startswith(f"cannot read sequences from '{path}':")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("y,s\n0,1\n1,1.5\n", r"line 3, column 's': '1.5' is not an integer state id"),
        ("y,s\n0,2.0\n", r"line 2, column 's': '2.0' is not an integer state id"),
        ("y,s\n0,abc\n", r"line 2, column 's': 'abc' is not an integer state id"),
        ("y,s\n0,nan\n", r"line 2, column 's': 'nan' is not an integer state id"),
        ("y,S\n0,0\n1,-1\n", r"line 3, column 'S': state id -1 is negative"),
        ("y,s\n0,1\n1,\n", r"line 3, column 's' \(latent state\) is empty"),
        ("s\n0\n1\n", "'s' is the latent-state column"),
        ("u,s\n0,1\n", "wrong columns"),
    ],
)
def test_read_csv_bad_latent_column(tmp_path, text, problem):
    assert_csv_refused(read_dataset, tmp_path / "bad_latent.csv", text, problem)


def test_read_npy_roundtrip(tmp_path, rng):
    one = rng.integers(0, 4, size=9)
    np.save(tmp_path / "one.npy", one)
    [got] = read_sequences(tmp_path / "one.npy")
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, one)
    many = rng.normal(size=(3, 6)).astype(np.float32)
    np.save(tmp_path / "many.npy", many)
    got = read_sequences(tmp_path / "many.npy")
    assert len(got) == 3 and all(g.shape == (6,) and g.dtype == np.float64 for g in got)
    np.testing.assert_array_equal(np.stack(got), many.astype(np.float64))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("\n\n", "empty"),
        ("y\n", "no data rows"),
        ("1\n2\n3\n", "header row is required"),
        ("y\n1\nabc\n", r"line 3, column 'y': 'abc' is not a number"),
        ("y\n1\nnan\n", "NaN"),
        ("y\n1\ninf\n", "NaN and infinite"),
        ("y,u\n1,\n", "column 'u' is empty"),
        ("y,z\n1,2\n", r"unexpected column\(s\) \['z'\]"),
        ("a,b\n1,2\n", "wrong columns"),
        ("u\n1\n", "wrong columns"),
        ("y,y\n1,2\n", "repeats a column"),
        ("y,u\n1,2,3\n", "line 2 has 3 field"),
        ("sequence,y\na,1\nb,2\na,3\n", "not contiguous"),
        ("sequence,y\n,1\n", "sequence id"),
    ],
)
def test_read_csv_bad_files(tmp_path, text, problem):
    assert_csv_refused(read_sequences, tmp_path / "bad.csv", text, problem)


def test_read_bad_paths(tmp_path):
    with pytest.raises(ValueError, match="file not found") as err:
        read_sequences(tmp_path / "missing.csv")
    assert "missing.csv" in str(err.value)
    with pytest.raises(ValueError, match="unsupported file type"):
        read_sequences(tmp_path / "data.txt")
    (tmp_path / "dir.npy").mkdir()
    with pytest.raises(ValueError, match="not a regular file"):
        read_sequences(tmp_path / "dir.npy")
    (tmp_path / "latin.csv").write_bytes(b"y\n\xff\xfe1\n")
    with pytest.raises(ValueError, match="UTF-8"):
        read_sequences(tmp_path / "latin.csv")


def test_read_npy_bad_files(tmp_path):
    cases = {
        "nan.npy": (np.array([1.0, np.nan]), "NaN"),
        "cube.npy": (np.zeros((2, 2, 2)), "1-D"),
        "scalar.npy": (np.array(3.0), "1-D"),
        "empty.npy": (np.zeros((0,)), "empty"),
        "text.npy": (np.array(["a", "b"]), "dtype"),
        "complex.npy": (np.array([1j]), "dtype"),
    }
    for name, (arr, problem) in cases.items():
        np.save(tmp_path / name, arr)
        with pytest.raises(ValueError, match=problem) as err:
            read_sequences(tmp_path / name)
        assert name in str(err.value)
    np.save(tmp_path / "obj.npy", np.array([1, "a"], dtype=object))  # np.save pickles objects
    with pytest.raises(ValueError, match="not a readable .npy"):
        read_sequences(tmp_path / "obj.npy")
    (tmp_path / "junk.npy").write_bytes(b"this is not numpy")
    with pytest.raises(ValueError, match="not a readable .npy"):
        read_sequences(tmp_path / "junk.npy")
    np.savez(tmp_path / "arch.npz", a=np.ones(3))
    (tmp_path / "arch.npz").rename(tmp_path / "arch.npy")
    with pytest.raises(ValueError, match="npz"):
        read_sequences(tmp_path / "arch.npy")
    (tmp_path / "zero.npy").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        read_sequences(tmp_path / "zero.npy")
