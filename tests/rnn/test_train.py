"""Training cells on switching-model data, against the exact filter and NumPy computations.

References: the exact filter (``switchssm.inference.filter``) gives the Bayes-optimal
next-symbol log-loss and the MAP accuracy a causal reader of ``x_{1:t}`` can reach;
masked losses and gates are recomputed in NumPy from the states, one unpadded sequence at
a time; Gaussian losses with ``scipy.stats.norm``. The data are drawn with a NumPy sampler
written here (not the package's). Statistical margins are stated where used.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from scipy.special import expit
from scipy.special import log_softmax

from switchssm import rnn
from switchssm.data import example_switching_params
from switchssm.inference import filter
from switchssm.rnn import DataSplit
from switchssm.rnn import TrainConfig
from switchssm.rnn import TrainedCell
from switchssm.rnn import TrainHistory
from switchssm.rnn import TrainResult
from switchssm.rnn import evaluate
from switchssm.rnn import hidden_states
from switchssm.rnn import load_checkpoint
from switchssm.rnn import predict
from switchssm.rnn import save_checkpoint
from switchssm.rnn import train_cell
from switchssm.rnn import update_gates

K, V, N, T = 3, 4, 160, 30
RHO = 0.1


def np_sample(rng, params, n, length):
    """``(y, u, s, z)`` arrays ``(n, length)`` from an always-emitting categorical model."""
    pi = np.asarray(params.initial_probs)
    B = np.asarray(params.emission.probs)
    rho = float(params.switch_prob)
    z = (rng.random((n, length)) < rho).astype(int)
    s = np.empty((n, length), int)
    prev = rng.choice(len(pi), size=n, p=pi)
    fresh = rng.choice(len(pi), size=(n, length), p=pi)
    for t in range(length):
        prev = np.where(z[:, t] == 1, fresh[:, t], prev)
        s[:, t] = prev
    y = (rng.random((n, length))[..., None] > np.cumsum(B, axis=1)[s]).sum(-1)
    u = np.asarray(params.cue.means)[z] + float(params.cue.scale) * rng.normal(size=(n, length))
    return y, u, s, z


def np_gru(cell, x):
    """States and update gates of a GRU, ``x`` ``(n, T, D)``, as a float64 NumPy loop."""
    g = {f.name: np.asarray(getattr(cell, f.name)) for f in dataclasses.fields(cell)}
    h = np.zeros((x.shape[0], g["gate_bias"].shape[0]))
    hs, zs = [], []
    for t in range(x.shape[1]):
        xt = x[:, t]
        z = expit(xt @ g["gate_weight"].T + h @ g["gate_recurrent"].T + g["gate_bias"])
        r = expit(xt @ g["reset_weight"].T + h @ g["reset_recurrent"].T + g["reset_bias"])
        cand = np.tanh(
            xt @ g["candidate_weight"].T
            + (r * h) @ g["candidate_recurrent"].T
            + g["candidate_bias"]
        )
        h = (1 - z) * h + z * cand
        hs.append(h)
        zs.append(z)
    return np.stack(hs, 1), np.stack(zs, 1)


def np_mingru(cell, x):
    """Logit-state minGRU states for one sequence ``x`` ``(T, D)``, a float64 NumPy loop."""
    W_z, b_z = np.asarray(cell.gate_weight), np.asarray(cell.gate_bias)
    W_h, b_h = np.asarray(cell.candidate_weight), np.asarray(cell.candidate_bias)
    h, hs = np.zeros(b_z.shape[0]), []
    for xt in x:
        z = expit(W_z @ xt + b_z)
        h = (1 - z) * h + z * (W_h @ xt + b_h)
        hs.append(h)
    return np.stack(hs)


@pytest.fixture(scope="module")
def data():
    params = example_switching_params("categorical", K, cue=True, switch_prob=RHO)
    y, u, s, z = np_sample(np.random.default_rng(0), params, N, T)
    x = np.concatenate([np.eye(V)[y], u[..., None]], axis=-1)  # [onehot(y_t), u_t]
    return params, x, y, u, s


def train_mingru(seed, x, target, **options):
    """The module's shared fits: a minGRU with 8 units, 300 steps of batches of 32,
    evaluated every 100 steps on a quarter of the sequences."""
    return train_cell(
        jax.random.PRNGKey(seed),
        "mingru",
        x,
        target,
        hidden_dim=8,
        num_steps=300,
        batch_size=32,
        val_fraction=0.25,
        eval_every=100,
        progress=False,
        **options,
    )


@pytest.fixture(scope="module")
def latent(data, tmp_path_factory):
    """A minGRU trained to report s_t; checkpoints written during training."""
    _, x, _, _, s = data
    ckpt = tmp_path_factory.mktemp("ckpt")
    res = train_mingru(0, x, s, task="latent", learning_rate=2e-2, checkpoint_dir=ckpt)
    return res, ckpt


@pytest.fixture(scope="module")
def nextobs(data):
    """A minGRU trained to predict y_{t+1}."""
    _, x, y, _, _ = data
    return train_mingru(1, x, y, task="next_observation", learning_rate=1e-2)


def test_next_observation_training_reduces_held_out_loss(data, nextobs):
    params, x, y, u, _ = data
    res = nextobs
    val = res.split.val_index
    h = res.history
    assert h.step.tolist() == [0, 100, 200, 300]
    assert h.val_loss[-1] < h.val_loss[0] - 0.15
    assert res.metrics["log_loss"] == pytest.approx(h.val_loss[-1], rel=1e-12)
    # Reference 1: a constant predictor with the training symbol frequencies.
    freq = (
        np.bincount(y[res.split.train_index].ravel(), minlength=V) / y[res.split.train_index].size
    )
    marginal_ce = -np.mean(np.log(freq[y[val][:, 1:]]))
    # Reference 2 (Bayes optimal): the exact filter's predictive law
    # P(y_{t+1} | x_{1:t}) = ((1 - rho) p_t + rho pi) @ B.
    pi, B = np.asarray(params.initial_probs), np.asarray(params.emission.probs)
    ce = []
    for i in val:
        p = np.asarray(filter(params, y[i], u[i]).filtered_s)
        pred = ((1 - RHO) * p[:-1] + RHO * pi) @ B
        ce.append(-np.log(pred[np.arange(T - 1), y[i, 1:]]))
    bayes_ce = float(np.mean(ce))
    print(
        f"next-obs CE: cell {res.metrics['log_loss']:.4f}, exact filter {bayes_ce:.4f}, "
        f"marginal {marginal_ce:.4f}, untrained {h.val_loss[0]:.4f}"
    )
    assert res.metrics["log_loss"] < marginal_ce - 0.1
    # 1160 held-out pairs: the cell cannot beat the Bayes predictor beyond sampling noise.
    assert res.metrics["log_loss"] > bayes_ce - 0.03


def test_latent_accuracy_approaches_exact_filter_map(data, latent):
    params, x, y, u, s = data
    res, _ = latent
    val = res.split.val_index
    filt = np.stack([np.asarray(filter(params, y[i], u[i]).filtered_s) for i in val])
    filter_acc = float(np.mean(filt.argmax(-1) == s[val]))
    cell_acc = res.metrics["accuracy"]
    probs = predict(res, x[val])
    np.testing.assert_allclose(cell_acc, np.mean(probs.argmax(-1) == s[val]), rtol=1e-12)
    chance = np.bincount(s[val].ravel()).max() / s[val].size
    print(
        f"latent accuracy: cell {cell_acc:.4f}, exact filter MAP {filter_acc:.4f}, "
        f"chance {chance:.4f}"
    )
    assert cell_acc > chance + 0.3
    # The filter MAP is the best causal rule in expectation; on 1200 held-out steps a
    # cell can exceed it only by sampling noise (slack 0.02).
    assert cell_acc <= filter_acc + 0.02
    assert cell_acc >= filter_acc - 0.06


def test_masked_losses_match_unpadded_numpy(data, nextobs):
    """Padding + masks: evaluate on ragged sequences equals NumPy on each sequence alone."""
    _, x, y, _, _ = data
    res = nextobs
    i = res.split.val_index[:3]
    lens = [T, 17, 5]
    xs = [x[j, :L] for j, L in zip(i, lens, strict=True)]
    ys = [y[j, :L] for j, L in zip(i, lens, strict=True)]
    got = evaluate(res, xs, ys)
    W, b = (np.asarray(a) for a in (res.params.readout.weight, res.params.readout.bias))
    nll, correct = [], []
    for xi, yi in zip(xs, ys, strict=True):
        h = np_mingru(res.params.cell, xi)  # this sequence alone, no padding
        logp = log_softmax(h @ W.T + b, axis=-1)[:-1]  # h_t predicts y_{t+1}
        nll.append(-logp[np.arange(len(yi) - 1), yi[1:]])
        correct.append(logp.argmax(-1) == yi[1:])
    assert got["num_timesteps"] == sum(L - 1 for L in lens)
    assert got["log_loss"] == pytest.approx(np.concatenate(nll).mean(), rel=1e-10)
    assert got["accuracy"] == pytest.approx(np.concatenate(correct).mean(), rel=1e-12)
    # Padded array + lengths is the same computation as the list.
    xp = np.zeros((3, T, x.shape[-1]))
    yp = np.zeros((3, T), int)
    for k, (xi, yi) in enumerate(zip(xs, ys, strict=True)):
        xp[k, : len(yi)], yp[k, : len(yi)] = xi, yi
    assert evaluate(res, xp, yp, lengths=np.array(lens)) == got


def test_gaussian_losses_match_scipy(rng):
    """MSE and Gaussian NLL of next-observation prediction, against scipy.stats.norm."""
    D, n, L, Hd = 2, 3, 6, 4
    x = rng.normal(size=(n, L, 3))
    yobs = rng.normal(size=(n, L, D))
    lens = np.array([6, 4, 2])
    cell = rnn.init_mingru(jax.random.PRNGKey(0), 3, Hd)
    for loss, rows in (("gaussian_nll", 2 * D), ("mse", D)):
        readout = rnn.ReadoutParams(rng.normal(size=(rows, Hd)), rng.normal(size=rows))
        config = TrainConfig(
            "mingru", "next_observation", loss, 3, Hd, None, D, 1, 0.1, 2, 0.5, 1.0, 1, {}
        )
        empty = np.zeros(0)
        res = TrainResult(
            TrainedCell(cell, readout),
            TrainHistory(empty, empty, empty),
            {},
            config,
            DataSplit(empty, empty),
        )
        got = evaluate(res, x, yobs, lengths=lens)
        terms, sq = [], []
        for k in range(n):
            h = np.asarray(rnn.mingru(cell, x[k, : lens[k]]))[:-1]
            out = h @ np.asarray(readout.weight).T + np.asarray(readout.bias)
            target = yobs[k, 1 : lens[k]]
            mean = out[:, :D]
            sq.append(np.mean((mean - target) ** 2, -1))
            if loss == "gaussian_nll":
                terms.append(-stats.norm.logpdf(target, mean, np.exp(out[:, D:])).sum(-1))
        assert got["num_timesteps"] == int((lens - 1).sum())
        assert got["mse"] == pytest.approx(np.concatenate(sq).mean(), rel=1e-10)
        expected = np.concatenate(terms if terms else sq).mean()
        assert got["loss"] == pytest.approx(expected, rel=1e-10)
    pred = predict(res, x)
    assert pred.shape == (n, L, D)


def test_gaussian_nll_training_and_checkpoint(rng, tmp_path):
    """A ragged list of real sequences, trained a few steps, saved and loaded back."""
    xs = [rng.normal(size=(L, 2)) for L in (5, 3, 4, 2)]
    res = train_cell(
        jax.random.PRNGKey(0),
        "mingru",
        xs,
        [2 * x for x in xs],
        loss="gaussian_nll",
        hidden_dim=3,
        num_steps=3,
        val_fraction=0.25,
        checkpoint_dir=tmp_path,
        progress=False,
    )
    assert res.params.readout.weight.shape == (4, 3)  # means and log-scales of D = 2
    pred = predict(res, xs)
    assert pred.mean.shape == (4, 5, 2) and np.all(pred.scale > 0)
    back = load_checkpoint(tmp_path)
    assert back.config == res.config and back.config.num_outputs == 4
    assert back.metrics == res.metrics


def test_update_gates_against_numpy(data, latent):
    _, x, _, _, _ = data
    xs = x[:2, :12]
    res, _ = latent
    c = res.params.cell
    expected = expit(xs @ np.asarray(c.gate_weight).T + np.asarray(c.gate_bias))
    np.testing.assert_allclose(update_gates(res, xs), expected, rtol=1e-12)
    np.testing.assert_allclose(
        hidden_states(res, xs), np.stack([np_mingru(c, xi) for xi in xs]), rtol=1e-10
    )
    # GRU (gates read h_{t-1}): an untrained result with random weights; a NumPy loop of
    # the recurrence gives both the states and the update gate.
    rng = np.random.default_rng(3)
    D, Hd = x.shape[-1], 4
    shapes = [(Hd, D), (Hd, Hd), (Hd,)] * 3
    gru_cell = rnn.GRUParams(*[0.8 * rng.normal(size=sh) for sh in shapes])
    gru_res = res._replace(
        params=TrainedCell(gru_cell, rnn.ReadoutParams(rng.normal(size=(K, Hd)), np.zeros(K))),
        config=res.config._replace(cell="gru", hidden_dim=Hd),
    )
    hs, zs = np_gru(gru_cell, xs)
    np.testing.assert_allclose(hidden_states(gru_res, xs), hs, rtol=1e-10)
    np.testing.assert_allclose(update_gates(gru_res, xs), zs, rtol=1e-10)


def test_checkpoint_round_trip_is_exact(data, latent, tmp_path):
    res, ckpt = latent
    for directory in (ckpt, tmp_path / "again"):  # written by train_cell, then re-saved
        if directory != ckpt:
            save_checkpoint(directory, res)
        back = load_checkpoint(directory)
        assert back.config == res.config
        assert back.metrics == res.metrics
        for a, b in zip(
            jax.tree_util.tree_leaves(back.params),
            jax.tree_util.tree_leaves(res.params),
            strict=True,
        ):
            assert a.dtype == b.dtype and np.array_equal(np.asarray(a), np.asarray(b))
        assert type(back.params.cell) is type(res.params.cell)
        for f in ("step", "train_loss", "val_loss"):
            np.testing.assert_array_equal(getattr(back.history, f), getattr(res.history, f))
        np.testing.assert_array_equal(back.split.val_index, res.split.val_index)
    x = data[1][:2]
    np.testing.assert_array_equal(hidden_states(back, x), hidden_states(res, x))
    assert not any(p.name.endswith(".pkl") for p in ckpt.iterdir())
    # One file, in the package's save format; a leaf of the wrong shape is refused.
    assert sorted(p.name for p in ckpt.iterdir()) == ["checkpoint.npz"]
    with np.load(ckpt / "checkpoint.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["params.readout.bias"] = np.zeros(7)
    np.savez(tmp_path / "again" / "checkpoint.npz", **arrays)
    with pytest.raises(ValueError, match="ReadoutParams.bias"):
        load_checkpoint(tmp_path / "again")
    with pytest.raises(ValueError, match="directory"):
        load_checkpoint(tmp_path / "missing")


SMALL_X = np.random.default_rng(1).normal(size=(6, 5, 3))
SMALL_Y = np.random.default_rng(2).integers(0, 3, size=(6, 5))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"cell": "transformer"}, "`cell`"),
        ({"task": "smooth"}, "`task`"),
        ({"hidden_dim": 0}, "hidden_dim"),
        ({"num_steps": 1.5}, "num_steps"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"batch_size": 0}, "batch_size"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"x": SMALL_X[0]}, "`x` must be"),
        ({"x": np.where(SMALL_X > 1.5, np.nan, SMALL_X)}, r"`x\[\d\]` contains \d+ NaN"),
        ({"targets": SMALL_Y[:, :4]}, "`targets` must have leading shape"),
        ({"num_classes": 2}, "num_classes"),
        ({"targets": SMALL_Y - 1}, ">= 0"),
        ({"targets": SMALL_Y + 0.5}, "integer"),
        ({"task": "latent", "loss": "mse"}, "loss"),
        ({"loss": "hinge"}, "loss"),
        ({"targets": SMALL_X, "num_classes": 3}, "num_classes"),
        ({"x": SMALL_X[:, :1], "targets": SMALL_Y[:, :1]}, "at least 2 steps"),
        ({"x": SMALL_X[:1], "targets": SMALL_Y[:1]}, "at least 2 sequences"),
        ({"lengths": np.array([5, 5, 5])}, "lengths"),
        ({"lengths": np.array([5, 5, 5, 5, 5, 6])}, "lengths"),
        ({"x": list(SMALL_X), "lengths": [5] * 5 + [4]}, "lengths"),
        ({"x": list(SMALL_X), "targets": [t[:4] for t in SMALL_Y]}, "same lengths"),
        ({"cell_kwargs": {"h0": 1.0}}, "cell_kwargs"),
        ({"cell": "gru", "cell_kwargs": {"mode": "parallel"}}, "cell_kwargs"),
        ({"cell_kwargs": {"space": "bogus"}}, "space"),
    ],
)
def test_bad_inputs_raise(kwargs, match):
    args = {"cell": "mingru", "x": SMALL_X, "targets": SMALL_Y, "num_steps": 1}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        train_cell(
            jax.random.PRNGKey(0),
            args.pop("cell"),
            args.pop("x"),
            args.pop("targets"),
            progress=False,
            **args,
        )


def test_result_functions_validate(latent):
    res, _ = latent
    with pytest.raises(ValueError, match="result"):
        hidden_states(res._asdict(), SMALL_X)
    with pytest.raises(ValueError, match="input_dim"):
        hidden_states(res, SMALL_X)
    with pytest.raises(ValueError, match="num_classes"):
        evaluate(res, np.zeros((2, 3, 5)), np.full((2, 3), 7))
    assert jnp.asarray(res.params.readout.weight).shape == (K, 8)


@pytest.mark.parametrize("cell", ["mingru", "lstm"])
def test_divergence_is_reported(cell):
    """learning_rate=1e6 on a tiny 3-class task: the loss stays finite but rises far above
    chance (log 3) or the weights blow up. train_cell warns, on screen and as
    TrainingDivergedWarning, and says so in the result; the same run at 1e-2 does not warn
    (warnings are errors in the test suite)."""
    y = np.random.default_rng(0).integers(0, 3, size=(12, 10))
    x = np.eye(3)[y]
    kw = dict(hidden_dim=4, num_steps=20, eval_every=10, progress=False)
    with pytest.warns(rnn.TrainingDivergedWarning, match="diverged"):
        bad = train_cell(jax.random.PRNGKey(0), cell, x, y, learning_rate=1e6, **kw)
    assert bad.diverged
    # independent reading of the same rule: final held-out loss vs 10x chance / its start,
    # or the largest weight against its initial scale
    ref = max(float(bad.history.val_loss[0]), np.log(3))
    w = max(float(np.max(np.abs(a))) for a in jax.tree_util.tree_leaves(bad.params))
    assert bad.history.val_loss[-1] > ref + 10 * ref or w > 1e3
    good = train_cell(jax.random.PRNGKey(0), cell, x, y, learning_rate=1e-2, **kw)
    assert not good.diverged
    assert good.history.val_loss[-1] <= good.history.val_loss[0] + 10 * good.history.val_loss[0]
