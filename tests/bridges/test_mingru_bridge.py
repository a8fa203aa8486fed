"""Switching models <-> minGRU / selective SSM (docs/theory.md sections 2, 3, 5).

Every cell built from a model is run and compared with an independent computation: the
exact filter (``switchssm.inference.filter``), brute-force enumeration of all paths on tiny
``T`` (``tests/inference/brute_force.py``, NumPy/SciPy only), or a NumPy loop written
here from the formulas of docs/theory.md. Data are drawn here with NumPy (the identities hold
for any data; hard-gate cases put the cue at ``m_z`` plus unit noise).

Tolerance: exact identities are held to ``EXACT = 1e-10`` in float64 (the recursions are
normalized or log-space and run for at most 40 steps, so rounding stays near 1e-15; the
margin covers log/exp round trips in the naive-Bayes maps). Gaps that must exist are
asserted above ``GAP = 1e-4``, far above rounding.
"""

import jax
import numpy as np
import pytest
import scipy.special as sps
import scipy.stats as st

from switchssm.bridges import AlwaysEmittingWarning
from switchssm.bridges import FactorialBridge
from switchssm.bridges import InputLayout
from switchssm.bridges import MinGRUBridge
from switchssm.bridges import cumulative_evidence
from switchssm.bridges import evidence_attention
from switchssm.bridges import factorial_mingru_from_models
from switchssm.bridges import factorial_model_inputs
from switchssm.bridges import factorial_posterior
from switchssm.bridges import input_layout
from switchssm.bridges import linear_attention_memory
from switchssm.bridges import mingru_from_model
from switchssm.bridges import mingru_posterior
from switchssm.bridges import model_from_mingru
from switchssm.bridges import model_inputs
from switchssm.bridges import selective_from_model
from switchssm.bridges import selective_posterior
from switchssm.bridges import sufficient_statistics
from switchssm.inference import filter as exact_filter
from switchssm.models import CategoricalEmission
from switchssm.models import GaussianCue
from switchssm.models import GaussianEmission
from switchssm.models import SwitchingParams
from switchssm.rnn import MinGRUParams
from switchssm.verify.brute_force import brute_force

EXACT = 1e-10
GAP = 1e-4
T = 40


# ---------------------------------------------------------------------------------------
# Random models and data (NumPy)
# ---------------------------------------------------------------------------------------


def make_cue(rng, kind, separation, dim=2):
    """A cue with separation d = |m1 - m0| / tau (Mahalanobis norm for a vector cue)."""
    if kind is None:
        return None
    if kind == "scalar":
        tau = 0.8
        m0 = rng.normal()
        return GaussianCue(np.array([m0, m0 + separation * tau]), tau)
    scale = rng.uniform(0.5, 1.5, size=dim)
    direction = rng.normal(size=dim)
    direction /= np.linalg.norm(direction / scale)
    m0 = rng.normal(size=dim)
    return GaussianCue(np.stack([m0, m0 + separation * direction]), scale)


def cat_model(rng, *, K=3, V=4, rho=0.2, cue="scalar", separation=1.5, gated=True):
    B = rng.dirichlet(np.full(V, 2.0), size=K)
    pi = rng.dirichlet(np.full(K, 3.0))
    return SwitchingParams(
        pi, rho, CategoricalEmission(B), make_cue(rng, cue, separation), gated=gated
    )


def gauss_model(rng, *, K=3, D=2, rho=0.2, cue="vector", separation=1.5, gated=True):
    A = rng.normal(size=(D, D))
    cov = A @ A.T / D + 0.5 * np.eye(D)
    return SwitchingParams(
        rng.dirichlet(np.full(K, 3.0)),
        rho,
        GaussianEmission(rng.normal(size=(K, D)) * 1.5, cov),
        make_cue(rng, cue, separation),
        gated=gated,
    )


def random_data(rng, params, num_timesteps=T):
    """Observations anywhere in their space; cue at m_z + tau * noise with z ~ Bernoulli(rho)."""
    em = params.emission
    if isinstance(em, CategoricalEmission):
        y = rng.integers(0, em.num_symbols, size=num_timesteps)
    else:
        y = rng.normal(size=(num_timesteps, em.dim)) * 2.0
    if params.cue is None:
        return y, None
    z = (rng.random(num_timesteps) < float(params.switch_prob)).astype(int)
    m = np.asarray(params.cue.means)[z]
    return y, m + np.asarray(params.cue.scale) * rng.normal(size=m.shape)


def emission_loglik(params, y):
    """log P(y_t | s), (T, K), with scipy / table lookup."""
    em = params.emission
    if isinstance(em, CategoricalEmission):
        return np.log(np.asarray(em.probs))[:, y].T
    return np.stack(
        [st.multivariate_normal(m, np.asarray(em.cov)).logpdf(y) for m in np.asarray(em.means)],
        axis=-1,
    ).reshape(len(y), -1)


def cue_gate(params, u, num_timesteps):
    """P(z_t = 1 | u_t) by Bayes' rule with scipy densities."""
    rho = float(params.switch_prob)
    if params.cue is None:
        return np.full(num_timesteps, rho)
    m, tau = np.asarray(params.cue.means), np.asarray(params.cue.scale)
    lp = [st.norm(m[z], tau).logpdf(u) for z in (0, 1)]
    if m.ndim == 2:
        lp = [a.sum(-1) for a in lp]
    return sps.expit(np.log(rho) - np.log1p(-rho) + lp[1] - lp[0])


def mean_kl(p, q):
    p, q = np.asarray(p), np.asarray(q)
    return float(np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=-1)))


# ---------------------------------------------------------------------------------------
# Input layout
# ---------------------------------------------------------------------------------------


def test_model_inputs_layout(rng):
    p = cat_model(rng)
    y, u = random_data(rng, p, 6)
    x = np.asarray(model_inputs(p, y, u))
    np.testing.assert_array_equal(x, np.concatenate([np.eye(4)[y], u[:, None]], axis=1))
    assert input_layout(p) == InputLayout("categorical", 4, 1, True)

    g = gauss_model(rng, cue="vector")
    y, u = random_data(rng, g, 6)
    np.testing.assert_array_equal(np.asarray(model_inputs(g, y, u)), np.concatenate([y, u], 1))
    assert input_layout(g) == InputLayout("gaussian", 2, 2, False)
    assert input_layout(g).input_dim == 4

    n = cat_model(rng, cue=None)
    y, _ = random_data(rng, n, 6)
    np.testing.assert_array_equal(np.asarray(model_inputs(n, y)), np.eye(4)[y])
    with pytest.raises(ValueError, match="cue"):
        model_inputs(p, y)


# ---------------------------------------------------------------------------------------
# Gated model: positive-state minGRU is the exact filter (docs/theory.md 2.1, 2.2)
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, cue",
    [(cat_model, "scalar"), (cat_model, None), (gauss_model, "vector"), (gauss_model, "scalar")],
)
def test_positive_mingru_is_exact_filter_of_gated_model(rng, make, cue):
    for separation in (0.05, 1.0, 4.0):  # weak to strong cue
        params = make(rng, cue=cue, separation=separation)
        y, u = random_data(rng, params)
        bridge = mingru_from_model(params)
        x = model_inputs(params, y, u)
        post = exact_filter(params, y, u)
        np.testing.assert_allclose(mingru_posterior(bridge, x), post.filtered_s, rtol=0, atol=EXACT)
        # The shared gate is the exact switch posterior, a logistic regression of u alone.
        cell = bridge.cell
        gate = sps.expit(
            np.asarray(x) @ np.asarray(cell.gate_weight).T + np.asarray(cell.gate_bias)
        )
        np.testing.assert_allclose(gate, np.repeat(gate[:, :1], params.num_states, 1), atol=0)
        np.testing.assert_allclose(gate[:, 0], post.filtered_z, rtol=0, atol=EXACT)
        np.testing.assert_allclose(gate[:, 0], cue_gate(params, u, T), rtol=0, atol=EXACT)


def test_positive_mingru_matches_brute_force(rng):
    params = cat_model(rng, K=2, V=3, separation=1.0)
    y, u = random_data(rng, params, 5)
    bf = brute_force(params, y, u)
    probs = mingru_posterior(mingru_from_model(params), model_inputs(params, y, u))
    np.testing.assert_allclose(probs, bf["filtered_s"], rtol=0, atol=EXACT)


# ---------------------------------------------------------------------------------------
# Logit states: log-linear pooling, exact iff gates are hard (docs/theory.md 2.3)
# ---------------------------------------------------------------------------------------


def test_logit_mingru_exact_with_hard_gates(rng):
    params = cat_model(rng, separation=60.0)
    y, u = random_data(rng, params)
    x = model_inputs(params, y, u)
    post = exact_filter(params, y, u)
    g = np.asarray(post.filtered_z)
    assert np.all((g == 0) | (g == 1)) and 0 < g.sum() < T  # hard, and both values occur
    probs = mingru_posterior(mingru_from_model(params, space="logit"), x)
    np.testing.assert_allclose(probs, post.filtered_s, rtol=0, atol=EXACT)


def test_logit_mingru_is_geometric_pooling_and_differs_with_soft_gates(rng):
    params = cat_model(rng, separation=1.0)
    y, u = random_data(rng, params)
    probs = np.asarray(
        mingru_posterior(mingru_from_model(params, space="logit"), model_inputs(params, y, u))
    )
    # Independent: h_t = (1 - g_t) h_{t-1} + g_t (log pi + l_t), h_0 = log pi, in NumPy.
    g, ll = cue_gate(params, u, T), emission_loglik(params, y)
    h = np.log(np.asarray(params.initial_probs))
    naive = []
    for t in range(T):
        h = (1 - g[t]) * h + g[t] * (np.log(np.asarray(params.initial_probs)) + ll[t])
        naive.append(sps.softmax(h))
    np.testing.assert_allclose(probs, np.array(naive), rtol=0, atol=EXACT)
    exact = np.asarray(exact_filter(params, y, u).filtered_s)
    assert np.max(np.abs(probs - exact)) > GAP
    assert mean_kl(exact, probs) > 1e-6


# ---------------------------------------------------------------------------------------
# Always-emitting model (docs/theory.md 2.4)
# ---------------------------------------------------------------------------------------


def test_always_model_switch_posterior_depends_on_history(rng):
    params = cat_model(rng, separation=1.0, gated=False)
    u = np.array([0.3, -0.2, 0.1, 0.5])
    y1, y2 = np.array([0, 0, 0, 1]), np.array([3, 3, 3, 1])  # same u and y_t, other history
    z1 = np.asarray(exact_filter(params, y1, u).filtered_z)
    z2 = np.asarray(exact_filter(params, y2, u).filtered_z)
    assert abs(z1[-1] - z2[-1]) > 1e-3
    # Contrast: in the gated model the switch posterior is the cue-only gate.
    gated = params.replace(gated=True)
    np.testing.assert_allclose(
        exact_filter(gated, y1, u).filtered_z, exact_filter(gated, y2, u).filtered_z, atol=1e-14
    )


def test_always_model_hard_gates_is_selective_ssm_not_mingru(rng):
    params = cat_model(rng, separation=60.0, gated=False)
    y, u = random_data(rng, params)
    x = model_inputs(params, y, u)
    exact = np.asarray(exact_filter(params, y, u).filtered_s)
    # Independent: log p_t = (1 - g) log p_{t-1} + g log pi + l_t + const, in NumPy.
    g, ll = cue_gate(params, u, T), emission_loglik(params, y)
    assert np.all((g == 0) | (g == 1)) and 0 < g.sum() < T
    log_pi = np.log(np.asarray(params.initial_probs))
    h, naive = log_pi, []
    for t in range(T):
        h = (1 - g[t]) * h + g[t] * log_pi + ll[t]
        naive.append(sps.softmax(h))
    np.testing.assert_allclose(np.array(naive), exact, rtol=0, atol=EXACT)
    np.testing.assert_allclose(
        selective_posterior(selective_from_model(params), x), exact, rtol=0, atol=EXACT
    )
    for space in ("log", "logit"):  # minGRU gates the evidence: wrong for this model
        with pytest.warns(AlwaysEmittingWarning, match="selective_from_model"):
            bridge = mingru_from_model(params, space=space)  # and it says so
        probs = mingru_posterior(bridge, x)
        assert np.max(np.abs(np.asarray(probs) - exact)) > 1e-3


def test_selective_ssm_is_approximate_with_soft_gates(rng):
    params = cat_model(rng, separation=1.0, gated=False)
    y, u = random_data(rng, params)
    exact = np.asarray(exact_filter(params, y, u).filtered_s)
    probs = selective_posterior(selective_from_model(params), model_inputs(params, y, u))
    assert np.max(np.abs(np.asarray(probs) - exact)) > GAP


# ---------------------------------------------------------------------------------------
# Reverse engineering: cell -> model
# ---------------------------------------------------------------------------------------


def assert_same_candidate_up_to_gauge(layout, cell_a, cell_b):
    """Pre-activations differ only by terms constant across units (softmax gauge)."""
    obs = layout.obs_slice
    da = np.asarray(cell_a.candidate_weight)[:, obs] - np.asarray(cell_b.candidate_weight)[:, obs]
    db = np.asarray(cell_a.candidate_bias) - np.asarray(cell_b.candidate_bias)
    if layout.emission == "categorical":  # logits for symbol v: W[:, v] + b
        diff = da + db[:, None]
        np.testing.assert_allclose(diff, np.broadcast_to(diff[:1], diff.shape), atol=EXACT)
    else:  # logits W y + b for every y: rows of dW equal, entries of db equal
        np.testing.assert_allclose(da, np.broadcast_to(da[:1], da.shape), atol=EXACT)
        np.testing.assert_allclose(db, np.full_like(db, db[0]), atol=EXACT)


@pytest.mark.parametrize("make", [cat_model, gauss_model])
def test_round_trip_model_cell_model_cell(rng, make):
    params = make(rng)
    bridge = mingru_from_model(params)
    model2 = model_from_mingru(bridge)
    bridge2 = mingru_from_model(model2)
    c1, c2 = bridge.cell, bridge2.cell
    np.testing.assert_allclose(c2.gate_weight, c1.gate_weight, rtol=0, atol=EXACT)
    np.testing.assert_allclose(c2.gate_bias, c1.gate_bias, rtol=0, atol=EXACT)
    assert_same_candidate_up_to_gauge(bridge.layout, c1, c2)
    # Same outputs from the same initial state.
    y, u = random_data(rng, params)
    x = model_inputs(params, y, u)
    same_h0 = bridge2._replace(initial_log_state=bridge.initial_log_state)
    np.testing.assert_allclose(
        mingru_posterior(same_h0, x), mingru_posterior(bridge, x), rtol=0, atol=EXACT
    )
    # The read-back model's own exact filter is what its cell computes.
    np.testing.assert_allclose(
        exact_filter(model2, y, u).filtered_s, mingru_posterior(bridge2, x), rtol=0, atol=EXACT
    )
    # The second trip is the identity (the first one fixed the gauge).
    c3 = mingru_from_model(model_from_mingru(bridge2)).cell
    for name in ("gate_weight", "gate_bias", "candidate_weight", "candidate_bias"):
        np.testing.assert_allclose(getattr(c3, name), getattr(c2, name), rtol=0, atol=EXACT)


def canonical_cell(rng, emission, K=3, obs_dim=4, cue_dim=1):
    """A random cell in the canonical gauge documented by model_from_mingru, built directly."""
    w_u, c = rng.normal(size=cue_dim) * 2.0, rng.normal()
    gate = np.tile(np.concatenate([np.zeros(obs_dim), w_u]), (K, 1))
    log_pi = np.log(rng.dirichlet(np.full(K, 3.0)))
    if emission == "categorical":
        W = np.log(rng.dirichlet(np.full(obs_dim, 2.0), size=K))
        b = log_pi
    else:
        W = rng.normal(size=(K, obs_dim))
        W -= W.mean(0)
        b = log_pi - 0.5 * np.sum(W**2, axis=1)
    cand = np.concatenate([W, np.zeros((K, cue_dim))], axis=1)
    layout = InputLayout(emission, obs_dim, cue_dim, cue_dim == 1)
    return MinGRUParams(gate, np.full(K, c), cand, b), layout


@pytest.mark.parametrize("emission", ["categorical", "gaussian"])
def test_canonical_cell_model_cell_is_identity(rng, emission):
    cell, layout = canonical_cell(rng, emission)
    model = model_from_mingru(cell, layout)
    assert model.gated and model.num_states == 3
    # Canonical cue: tau = 1, means symmetric about 0, rho = sigmoid(gate bias).
    np.testing.assert_allclose(float(model.cue.scale), 1.0)
    np.testing.assert_allclose(np.sum(model.cue.means, axis=0), 0.0, atol=EXACT)
    np.testing.assert_allclose(float(model.switch_prob), sps.expit(cell.gate_bias[0]), atol=EXACT)
    back = mingru_from_model(model).cell
    for name in ("gate_weight", "gate_bias", "candidate_weight", "candidate_bias"):
        np.testing.assert_allclose(getattr(back, name), getattr(cell, name), rtol=0, atol=EXACT)


def test_strong_cue_gate_is_read_without_saturating(rng):
    # Cue means m0 = 0, m1 = 48 (tau = 0.8): gate logit w u + c with c about -1800, and
    # the canonical rho = sigmoid(c) is 0 in float64: refused with a pointer to switch_prob.
    params = cat_model(rng, separation=60.0)
    bridge = mingru_from_model(params)
    with pytest.raises(ValueError, match="switch_prob"):
        model_from_mingru(bridge)
    model = model_from_mingru(bridge, switch_prob=0.2)
    assert float(model.switch_prob) == 0.2
    # Same gate, read as a cue N(m_z, 1) with the bias moved into the midpoint.
    back = mingru_from_model(model).cell
    np.testing.assert_allclose(back.gate_weight, bridge.cell.gate_weight, rtol=1e-12)
    np.testing.assert_allclose(back.gate_bias, bridge.cell.gate_bias, rtol=1e-12)
    # Centred strong cue: the canonical reading works and keeps rho.
    centred = params.replace(cue=GaussianCue(np.array([-24.0, 24.0]), 0.8))
    model = model_from_mingru(mingru_from_model(centred))
    np.testing.assert_allclose(float(model.switch_prob), 0.2, rtol=1e-12)


def test_unreadable_cells_raise(rng):
    cell, layout = canonical_cell(rng, "categorical")
    gw = np.array(cell.gate_weight)
    gw[1, -1] += 0.5
    with pytest.raises(ValueError, match="factorial"):
        model_from_mingru(
            MinGRUParams(gw, cell.gate_bias, cell.candidate_weight, cell.candidate_bias), layout
        )
    gb = np.array(cell.gate_bias)
    gb[0] += 0.1
    with pytest.raises(ValueError, match="gates differ"):
        model_from_mingru(
            MinGRUParams(cell.gate_weight, gb, cell.candidate_weight, cell.candidate_bias), layout
        )
    gw = np.array(cell.gate_weight)
    gw[:, 0] = 1.0
    with pytest.raises(ValueError, match="observation columns"):
        model_from_mingru(
            MinGRUParams(gw, cell.gate_bias, cell.candidate_weight, cell.candidate_bias), layout
        )
    cw = np.array(cell.candidate_weight)
    cw[0, -1] = 1.0
    with pytest.raises(ValueError, match="cue"):
        model_from_mingru(
            MinGRUParams(cell.gate_weight, cell.gate_bias, cw, cell.candidate_bias), layout
        )
    with pytest.raises(ValueError, match="input columns"):
        model_from_mingru(cell, InputLayout("categorical", 3, 1, True))
    with pytest.raises(ValueError, match="InputLayout"):
        model_from_mingru(cell)


def test_builders_reject_degenerate_models(rng):
    for rho in (0.0, 1.0):
        with pytest.raises(ValueError, match="switch_prob"):
            mingru_from_model(cat_model(rng, rho=rho))
    with pytest.raises(ValueError, match="space"):
        mingru_from_model(cat_model(rng), space="prob")
    with pytest.raises(ValueError, match="K = 2"):
        factorial_mingru_from_models([cat_model(rng, K=3)])


# ---------------------------------------------------------------------------------------
# One switch per unit: factorial model (docs/theory.md section 3)
# ---------------------------------------------------------------------------------------


def chains(rng, separation):
    return [
        cat_model(rng, K=2, V=3, cue="scalar", separation=separation),
        gauss_model(rng, K=2, D=2, cue="vector", separation=separation),
        cat_model(rng, K=2, V=3, cue=None),
    ]


def run_chains(rng, models, space):
    data = [random_data(rng, m) for m in models]
    ys, us = [d[0] for d in data], [d[1] for d in data]
    bridge = factorial_mingru_from_models(models)
    probs = np.asarray(
        factorial_posterior(bridge, factorial_model_inputs(models, ys, us), space=space)
    )
    exact = np.stack(
        [
            np.asarray(exact_filter(m, y, u).filtered_s)[:, 1]
            for m, y, u in zip(models, ys, us, strict=True)
        ],
        axis=1,
    )
    return bridge, probs, exact


def test_factorial_positive_form_is_exact_per_unit(rng):
    models = chains(rng, separation=1.0)
    bridge, probs, exact = run_chains(rng, models, "log")
    assert isinstance(bridge, FactorialBridge) and bridge.cell.hidden_dim == 3
    np.testing.assert_allclose(probs, exact, rtol=0, atol=EXACT)
    # Block-diagonal weights: unit d reads only chain d's columns (4, 4, 3 of them).
    blocks = np.zeros((3, 11), bool)
    blocks[0, :4], blocks[1, 4:8], blocks[2, 8:] = True, True, True
    for w in (bridge.cell.gate_weight, bridge.cell.candidate_weight):
        assert np.all(np.asarray(w)[~blocks] == 0)
    # One switch per unit: not one switching model.
    with pytest.raises(ValueError, match="factorial"):
        model_from_mingru(bridge.cell, InputLayout("gaussian", 11, 0))


def test_factorial_logit_form_exact_iff_hard_gates(rng):
    _, probs, exact = run_chains(rng, chains(rng, separation=60.0)[:2], "logit")
    np.testing.assert_allclose(probs, exact, rtol=0, atol=EXACT)  # log-odds exact
    _, probs, exact = run_chains(rng, chains(rng, separation=1.0)[:2], "logit")
    assert np.max(np.abs(probs - exact)) > GAP


# ---------------------------------------------------------------------------------------
# No switch: cumulative evidence and linear attention (docs/theory.md section 5)
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [cat_model, gauss_model])
def test_no_switch_is_cumulative_evidence(rng, make):
    params = make(rng, rho=0.0, cue=None, gated=False)
    y, _ = random_data(rng, params)
    # Naive Bayes over the sequence, directly: P(s | y_1:t) ∝ pi(s) prod P(y_tau | s).
    naive = sps.softmax(
        np.log(np.asarray(params.initial_probs)) + np.cumsum(emission_loglik(params, y), 0), -1
    )
    np.testing.assert_allclose(exact_filter(params, y).filtered_s, naive, rtol=0, atol=EXACT)
    h = cumulative_evidence(params, y)
    np.testing.assert_allclose(jax.nn.softmax(h, -1), naive, rtol=0, atol=EXACT)
    h_att = evidence_attention(params, y)
    np.testing.assert_allclose(jax.nn.softmax(h_att, -1), naive, rtol=0, atol=EXACT)
    np.testing.assert_allclose(h_att, h, rtol=0, atol=1e-9)  # same numbers, not just softmax


def test_linear_attention_memory_accumulates_sufficient_statistics(rng):
    keys, values = rng.normal(size=(7, 3)), rng.normal(size=(7, 2))
    S = np.asarray(linear_attention_memory(keys, values))
    outer = np.einsum("tf,tv->tfv", keys, values)
    np.testing.assert_allclose(S, np.cumsum(outer, axis=0), rtol=0, atol=1e-12)
    # Keys = sufficient statistics, values = 1: the memory is the running count of symbols.
    params = cat_model(rng, rho=0.0, cue=None, gated=False)
    y, _ = random_data(rng, params, 9)
    stats = sufficient_statistics(params, y)
    S = np.asarray(linear_attention_memory(stats, np.ones((9, 1))))[..., 0]
    counts = np.stack([np.bincount(y[: t + 1], minlength=4) for t in range(9)])
    np.testing.assert_array_equal(S, counts)
    with pytest.raises(ValueError, match="same length"):
        linear_attention_memory(keys, values[:3])


def test_bridge_types(rng):
    params = cat_model(rng)
    bridge = mingru_from_model(params, space="logit")
    assert isinstance(bridge, MinGRUBridge) and bridge.candidate is None
    assert mingru_from_model(params).candidate == "log_softmax"
    with pytest.raises(ValueError, match="MinGRUBridge"):
        mingru_posterior(bridge.cell, np.zeros((3, 5)))
