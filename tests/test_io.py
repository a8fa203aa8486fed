"""Saving and loading parameters and fits (switchssm.io): exact round trips over many
parameter structures and dtypes, and a ValueError naming the file for every kind of bad
file."""

import json
import os
import tempfile
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from switchssm.fit import FitResult
from switchssm.io import FORMAT_VERSION
from switchssm.io import load_fit
from switchssm.io import load_params
from switchssm.io import save_fit
from switchssm.io import save_params
from switchssm.models import CategoricalEmission
from switchssm.models import GaussianCue
from switchssm.models import GaussianEmission
from switchssm.models import GaussianLatentParams
from switchssm.models import SwitchingParams


def _arr(x, dtype):
    # A JAX array keeps its float dtype through the constructors (NumPy input is converted to
    # the default float), so float32 parameters can be built.
    return jnp.asarray(np.asarray(x, dtype=dtype))


def _spd(rng, d, dtype):
    A = rng.normal(size=(d, d))
    return _arr(A @ A.T + d * np.eye(d), dtype)


def _probs(rng, shape, dtype):
    p = rng.dirichlet(np.ones(shape[-1]), size=shape[:-1]).astype(dtype)
    return _arr(p / p.sum(-1, keepdims=True), dtype)


def _cue(rng, kind, dtype):
    if kind is None:
        return None
    if kind == "scalar":
        return GaussianCue(_arr(rng.normal(size=2), dtype), _arr(rng.uniform(0.5, 2), dtype))
    Du = int(rng.integers(1, 4))
    scale = rng.uniform(0.5, 2) if kind == "vector" else rng.uniform(0.5, 2, size=Du)
    return GaussianCue(_arr(rng.normal(size=(2, Du)), dtype), _arr(scale, dtype))


def _switching(rng, emission, cue, gated, dtype):
    K = int(rng.integers(1, 5))
    if emission == "categorical":
        em = CategoricalEmission(_probs(rng, (K, int(rng.integers(1, 6))), dtype))
    else:
        D = int(rng.integers(1, 4))
        em = GaussianEmission(_arr(rng.normal(size=(K, D)), dtype), _spd(rng, D, dtype))
    return SwitchingParams(
        _probs(rng, (K,), dtype),
        _arr(rng.uniform(), dtype),
        em,
        _cue(rng, cue, dtype),
        gated=gated,
    )


def _gaussian_latent(rng, cue, gated, dtype):
    K, D = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    return GaussianLatentParams(
        _arr(rng.normal(size=K), dtype),
        _spd(rng, K, dtype),
        _arr(rng.normal(size=(D, K)), dtype),
        _spd(rng, D, dtype),
        _arr(rng.uniform(), dtype),
        _cue(rng, cue, dtype),
        gated=gated,
    )


def assert_identical(a, b):
    """Same classes and static fields, leaves with the same dtype, shape and bits."""
    assert type(a) is type(b)
    ta, tb = jax.tree_util.tree_structure(a), jax.tree_util.tree_structure(b)
    assert ta == tb  # includes the static fields (gated) and where the Nones are
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes()


PARAMS = st.builds(
    lambda seed, family, emission, cue, gated, dtype: (
        _switching(np.random.default_rng(seed), emission, cue, gated, dtype)
        if family == "switching"
        else _gaussian_latent(np.random.default_rng(seed), cue, gated, dtype)
    ),
    seed=st.integers(0, 2**32 - 1),
    family=st.sampled_from(["switching", "gaussian_latent"]),
    emission=st.sampled_from(["categorical", "gaussian"]),
    cue=st.sampled_from([None, "scalar", "vector", "vector_scale"]),
    gated=st.booleans(),
    dtype=st.sampled_from([np.float32, np.float64]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=PARAMS)
def test_params_round_trip_is_exact(params):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "p.npz")
        save_params(path, params)
        back = load_params(path)
    assert_identical(back, params)
    assert back.gated == params.gated
    assert all(isinstance(x, jax.Array) for x in jax.tree_util.tree_leaves(back))


def _fit(params):
    rng = np.random.default_rng(1)
    return FitResult(
        params,
        -1234.5678901234567,
        rng.normal(size=(3, 7)),
        np.array([True, False, True]),
        rng.normal(size=3),
        {
            "method": "em",
            "lengths": [5, 3],
            "prior": {"switch_beta": [1.0, 2.0]},
            "tol": 1e-8,
            "cue": None,
            "note": "ünïcode",
        },
    )


def test_fit_round_trip_is_exact(tmp_path):
    params = _switching(np.random.default_rng(0), "gaussian", "vector", True, np.float64)
    fit = _fit(params)
    path = tmp_path / "fit.npz"
    save_fit(path, fit)
    back = load_fit(path)
    assert isinstance(back, FitResult)
    assert_identical(back.params, fit.params)
    assert back.log_likelihood == fit.log_likelihood
    for name in ("history", "converged", "restart_log_likelihoods"):
        a, b = getattr(back, name), getattr(fit, name)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name
    assert back.metadata == fit.metadata
    # the params of a fit file load on their own, too
    assert_identical(load_params(path), fit.params)
    # overwriting in place leaves no temporary files behind
    save_fit(path, fit)
    assert sorted(os.listdir(tmp_path)) == ["fit.npz"]


def test_archive_is_plain_npz_with_a_json_header(tmp_path):
    params = _switching(np.random.default_rng(3), "categorical", "scalar", False, np.float64)
    path = tmp_path / "p.npz"
    save_params(path, params)
    with np.load(path, allow_pickle=False) as z:
        header = json.loads(str(z["__switchssm__"]))
        assert header["format"] == "switchssm" and header["version"] == FORMAT_VERSION
        assert header["params"]["class"] == "SwitchingParams"
        assert header["params"]["fields"]["gated"] == {"value": False}
        np.testing.assert_array_equal(z["params.emission.probs"], params.emission.probs)


# --------------------------------------------------------------------------------------
# Bad files and bad arguments


def _write_npz(path, header=None, **arrays):
    if header is not None:
        arrays["__switchssm__"] = np.array(
            header if isinstance(header, str) else json.dumps(header)
        )
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _valid(tmp_path):
    params = _switching(np.random.default_rng(4), "categorical", "scalar", True, np.float64)
    path = tmp_path / "ok.npz"
    save_params(path, params)
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return json.loads(str(arrays.pop("__switchssm__"))), arrays, params


def _bad_files(tmp_path):
    header, arrays, _ = _valid(tmp_path)
    cases = {}

    def case(name, problem, write):
        path = tmp_path / f"{name}.npz"
        write(path)
        cases[name] = (path, problem)

    def npz(h, a=arrays):
        return lambda p: _write_npz(p, h, **a)

    def edited(**changes):
        h = json.loads(json.dumps(header))
        h.update(changes)
        return h

    def field(path_keys, value):
        h = json.loads(json.dumps(header))
        node = h["params"]
        for k in path_keys[:-1]:
            node = node["fields"][k]
        node["fields"][path_keys[-1]] = value
        return h

    case("random_bytes", "not a readable", lambda p: p.write_bytes(os.urandom(200)))
    case("empty", "not a readable", lambda p: p.write_bytes(b""))
    ok = (tmp_path / "ok.npz").read_bytes()
    case("truncated", "not a readable", lambda p: p.write_bytes(ok[: len(ok) // 2]))

    def npy(p):
        with open(p, "wb") as f:
            np.save(f, np.zeros(3))

    case("plain_npy", "plain .npy", npy)
    case("no_header", "no '__switchssm__'", npz(None))
    case("header_not_json", "invalid JSON", npz("{not json"))
    case(
        "header_not_string",
        "corrupt header",
        lambda p: _write_npz(p, None, __switchssm__=np.zeros(2), **arrays),
    )
    case("other_format", "not a switchssm file", npz(edited(format="other")))
    case("newer_version", "newer", npz(edited(version=FORMAT_VERSION + 1)))
    case("bad_version", "format version", npz(edited(version="1")))
    case("bad_kind", "unknown kind", npz(edited(kind="model")))
    case(
        "unknown_class",
        "unknown class 'os.system'",
        npz(field(["emission"], {"class": "os.system", "fields": {}})),
    )
    case(
        "missing_field",
        "needs fields",
        npz(
            field(
                ["cue"],
                {"class": "GaussianCue", "fields": {"means": {"array": "params.cue.means"}}},
            )
        ),
    )
    missing = {k: v for k, v in arrays.items() if k != "params.initial_probs"}
    case("missing_array", "'params.initial_probs' is missing", npz(header, missing))
    bad = dict(arrays, **{"params.initial_probs": np.array([0.9, 0.9])})
    case("invalid_values", "initial_probs", npz(header, bad))
    bad = dict(arrays, **{"params.switch_prob": np.array("x")})
    case("string_array", "non-numeric", npz(header, bad))
    case("bad_static", "static field", npz(field(["gated"], {"value": [1, 2]})))
    case("bad_node", "expected a node", npz(field(["emission"], 3)))

    def pickled(p):
        with zipfile.ZipFile(p, "w") as zf:
            with zf.open("__switchssm__.npy", "w") as f:
                np.lib.format.write_array(f, np.array([{"a": 1}], dtype=object))  # a pickle

    case("pickled_object", "not a readable", pickled)
    return cases  # fmt: skip


def test_bad_files_raise_value_error_naming_file_and_problem(tmp_path):
    for name, (path, problem) in _bad_files(tmp_path).items():
        with pytest.raises(ValueError) as exc:
            load_params(path)
        msg = str(exc.value)
        assert str(path) in msg and problem in msg, (name, msg)
    # a params file is not a fit; a fit file without its fit section is corrupt
    header, arrays, _ = _valid(tmp_path)
    with pytest.raises(ValueError, match="not a fit"):
        load_fit(tmp_path / "ok.npz")
    header["kind"] = "fit"
    _write_npz(tmp_path / "fit_missing.npz", header, **arrays)
    with pytest.raises(ValueError, match="fit_missing.npz.*fit section"):
        load_fit(tmp_path / "fit_missing.npz")
    with pytest.raises(FileNotFoundError):
        load_params(tmp_path / "nope.npz")
    with pytest.raises(ValueError, match="is a directory"):
        load_params(tmp_path)


def test_corrupt_fit_sections(tmp_path):
    params = _switching(np.random.default_rng(5), "categorical", None, False, np.float64)
    save_fit(tmp_path / "fit.npz", _fit(params))
    with np.load(tmp_path / "fit.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(str(arrays.pop("__switchssm__")))
    h = json.loads(json.dumps(header))
    del h["fit"]["history"]
    _write_npz(tmp_path / "a.npz", h, **arrays)
    with pytest.raises(ValueError, match="a.npz.*fit.history"):
        load_fit(tmp_path / "a.npz")
    h = json.loads(json.dumps(header))
    h["fit"]["metadata"] = [1, 2]
    _write_npz(tmp_path / "b.npz", h, **arrays)
    with pytest.raises(ValueError, match="b.npz.*metadata"):
        load_fit(tmp_path / "b.npz")
    _write_npz(tmp_path / "c.npz", header, **dict(arrays, **{"fit.log_likelihood": np.zeros(2)}))
    with pytest.raises(ValueError, match="c.npz.*log_likelihood"):
        load_fit(tmp_path / "c.npz")


def test_bad_arguments_to_save(tmp_path):
    params = _switching(np.random.default_rng(6), "categorical", None, False, np.float64)
    with pytest.raises(ValueError, match="`params`"):
        save_params(tmp_path / "x.npz", {"pi": np.ones(2)})
    with pytest.raises(ValueError, match="`fit`"):
        save_fit(tmp_path / "x.npz", params)
    fit = _fit(params)
    with pytest.raises(ValueError, match="fit.metadata"):
        save_fit(tmp_path / "x.npz", fit._replace(metadata={"f": object()}))
    with pytest.raises(ValueError, match="fit.metadata"):
        save_fit(tmp_path / "x.npz", fit._replace(metadata={"x": float("nan")}))
    with pytest.raises(ValueError, match="fit.metadata"):
        save_fit(tmp_path / "x.npz", fit._replace(metadata=[1]))
    # a batch of parameters (leading axis) is not a valid SwitchingParams: refused at save
    batched = jax.tree_util.tree_map(lambda x: jnp.stack([x, x]), params)
    with pytest.raises(ValueError, match="`params` cannot be saved"):
        save_params(tmp_path / "x.npz", batched)
    assert not any(p.name.startswith("x.npz") for p in tmp_path.iterdir())


def _rewrite(src, dst, **changes):
    """Copy an archive, replacing some of its arrays (or the header, key __switchssm__)."""
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(changes)
    np.savez(dst, **arrays)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.array([0.5, 0.5], dtype=complex), "complex"),
        (np.array([True, False]), "bool"),
        (np.array([0.5, 0.5], dtype=np.float16), "16-bit"),
        # one float32 array among float64 ones: mismatched scan carries before this check
        (np.array([0.5, 0.5], dtype=np.float32), "float32"),
    ],
)
def test_tampered_dtypes_are_refused_naming_the_field(tmp_path, bad, match):
    params = SwitchingParams(np.array([0.5, 0.5]), 0.1, CategoricalEmission(np.eye(2) * 0.6 + 0.2))
    save_fit(tmp_path / "fit.npz", _fit(params))
    _rewrite(tmp_path / "fit.npz", tmp_path / "bad.npz", **{"params.initial_probs": bad})
    with pytest.raises(ValueError, match=f"bad.npz.*initial_probs.*{match}"):
        load_fit(tmp_path / "bad.npz")


def test_big_endian_arrays_load_and_compute(tmp_path):
    from switchssm.inference import smooth

    B = np.eye(2) * 0.6 + 0.2
    params = SwitchingParams(np.array([0.3, 0.7]), 0.1, CategoricalEmission(B))
    save_params(tmp_path / "p.npz", params)
    _rewrite(tmp_path / "p.npz", tmp_path / "be.npz",
             **{"params.emission.probs": B.astype(">f8")})  # fmt: skip
    back = load_params(tmp_path / "be.npz")
    np.testing.assert_array_equal(back.emission.probs, B)
    y = np.array([0, 1, 1, 0])
    np.testing.assert_allclose(smooth(back, y).smoothed_s, smooth(params, y).smoothed_s)


def test_hostile_headers_and_other_files(tmp_path):
    params = SwitchingParams(np.array([0.5, 0.5]), 0.1, CategoricalEmission(np.eye(2) * 0.6 + 0.2))
    save_params(tmp_path / "p.npz", params)
    deep = '{"format": "switchssm", "version": 1, "kind": "params", "params": ' + "[" * 100000
    deep += "]" * 100000 + "}"
    _rewrite(tmp_path / "p.npz", tmp_path / "deep.npz", __switchssm__=np.array(deep))
    with pytest.raises(ValueError, match="deep.npz.*nested too deeply"):
        load_params(tmp_path / "deep.npz")
    for name, content in (("fit.csv", "y\n0\n1\n"), ("fit.json", '{"a": 1}')):
        (tmp_path / name).write_text(content)
        with pytest.raises(ValueError) as exc:
            load_fit(tmp_path / name)
        assert "pickle" not in str(exc.value) and name in str(exc.value)
        assert "got a text file" in str(exc.value)  # says what the file is, not "object arrays"
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object))  # pickles by default
    (tmp_path / "obj.npy").rename(tmp_path / "obj.npz")
    with pytest.raises(ValueError) as exc:
        load_fit(tmp_path / "obj.npz")
    assert "pickle" not in str(exc.value)
