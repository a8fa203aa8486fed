# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Bilinear state transitions and state tracking
#
# A bilinear cell multiplies its state by an operator the input selects,
# $h_t = A(x_t)\, h_{t-1}$ with $A(x)_{ij} = \sum_k W_{ijk} x_k$ (Ebrahimi and Memisevic 2025).
# This notebook (docs/theory.md, section 7):
#
# 1. builds the hierarchy of operators (full, CP, block, rotation, complex, diagonal) and
#    checks that sequential and parallel forms agree and that normalized states stay finite;
# 2. Proposition 1: a finite-state machine is the one-hot form of a bilinear cell;
# 3. an input-driven HMM's forward filter is a normalized bilinear cell;
# 4. the switching model's filter is its identity-plus-rank-one corner (the minGRU);
# 5. Proposition 2: operators with a shared eigenbasis commute, so they only track abelian
#    state; $2\times2$ blocks represent $S_3$ exactly but no group of permutations of 5 or more;
# 6. Proposition 3: a frozen random diagonal cell and two examples learn parity;
# 7. trained cells on modular addition and $S_3$, and the rotation angles an R2 cell learns.
#
# The full comparison table (every cell on every task) lives in
# `benchmarks/results/statetrack.md`; here a reduced grid keeps the notebook under two minutes.

# %%
import time

import jax

jax.config.update("jax_enable_x64", True)

import itertools

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from switchssm import rnn
from switchssm.bridges import bilinear_from_fsm
from switchssm.bridges import bilinear_from_switching
from switchssm.bridges import iohmm_filter
from switchssm.bridges import switching_operators
from switchssm.data import sample_state_tracking
from switchssm.data import state_tracking_task
from switchssm.inference import filter as exact_filter
from switchssm.models import CategoricalEmission
from switchssm.models import GaussianCue
from switchssm.models import IOHMMParams
from switchssm.models import SwitchingParams
from switchssm.models import sample
from switchssm.models import sample_iohmm
from switchssm.pipelines import train_state_tracker
from switchssm.plots import plot_accuracy_by_length
from switchssm.plots import plot_rotation_harmonics
from switchssm.verify import max_abs_error

EXACT = 1e-10
rng = np.random.default_rng(0)
t_start = time.perf_counter()


# %% [markdown]
# ## 1. The hierarchy of operators
#
# | kind | $A(x)$ | parameters of $A$ |
# |---|---|---|
# | full | $\sum_k W_{:,:,k} x_k$ | $H^2 D$ |
# | CP | $U \operatorname{diag}(V^\top x) W^\top$ | $R(2H + D)$ |
# | block | $H/b$ free $b \times b$ blocks | $H b D$ |
# | rotation (R2) | $H/2$ rotations by $\theta(x) = \Theta x$ | $H D / 2$ |
# | complex | $H/2$ eigenvalues $(W_{re} + i W_{im}) x$ | $H D$ |
# | diagonal | $\operatorname{diag}(W x)$ | $H D$ |
#
# The sequential form applies $A(x_t)$ step by step; the parallel form builds every operator
# and composes them with an associative scan. Below, both forms on random inputs, and the
# same cells with their operators scaled by 3 so that the raw state overflows float32
# within a few hundred steps while the normalized state (a unit vector, renormalized each
# step) stays finite at $T = 10^5$.

# %%
key = jax.random.PRNGKey(0)
D, H = 4, 8
cells = {
    "bilinear": rnn.init_bilinear(key, D, H),
    "cp": rnn.init_cp_bilinear(key, D, H, rank=4),
    "block": rnn.init_block_bilinear(key, D, H, block_size=2),
    "rotation": rnn.init_rotation(key, D, H),
    "complex": rnn.init_complex_diagonal(key, D, H),
    "diagonal": rnn.init_diagonal_bilinear(key, D, H),
}
x = jax.random.normal(jax.random.PRNGKey(1), (50, D))
print(f"{'kind':<10}{'params of A':>12}{'seq vs par':>12}{'commute':>10}")
for name, p in cells.items():
    gap = max_abs_error(rnn.bilinear(p, x, mode="sequential"), rnn.bilinear(p, x, mode="parallel"))
    assert gap < 1e-8 * (1 + float(jnp.abs(rnn.bilinear(p, x)).max()))
    A = np.asarray(rnn.transition_matrices(p, x[:2]))
    comm = np.abs(A[0] @ A[1] - A[1] @ A[0]).max()
    n_par = sum(np.size(a) for a in jax.tree_util.tree_leaves(p)) - H  # minus initial_state
    print(f"{name:<10}{n_par:>12}{gap:>12.1e}{'yes' if comm < 1e-12 else 'no':>10}")

onehot = np.eye(D, dtype=np.float32)[rng.integers(0, D, size=100_000)]
for name, p in cells.items():
    p32 = jax.tree_util.tree_map(lambda a: np.asarray(3.0 * a, np.float32), p)
    with jax.enable_x64(False):
        h = rnn.bilinear(p32, onehot, normalize=True)
        raw = np.asarray(rnn.bilinear(p32, onehot[:300]))
    assert bool(jnp.all(jnp.isfinite(h))) and abs(float(jnp.linalg.norm(h[-1])) - 1) < 1e-5
    n = np.linalg.norm(raw[-1].astype(np.float64)) if np.all(np.isfinite(raw[-1])) else np.inf
    print(f"{name:<10} float32 raw |h_300| = {n:.2e}; normalized: unit vectors up to t = 10^5")

# %% [markdown]
# ## 2. Finite-state machines (Proposition 1)
#
# With $W_{ijk} = [\delta(j, k) = i]$ and $h_0 = e_{q_0}$, $A(e_k) e_q = e_{\delta(q, k)}$: the
# state is the one-hot of the machine's state after every prefix, exactly (products of 0 and
# 1). Below a random machine (not a permutation automaton: some states are unreachable) and
# the 25-state permutation automaton of the `fsm` task, both at $T = 10^4$, against a loop.

# %%
for table, q0 in ((rng.integers(0, 12, size=(3, 12)), 5),
                  (state_tracking_task("fsm", num_states=25).transition, 0)):  # fmt: skip
    symbols = rng.integers(0, table.shape[0], size=10_000)
    q, states = q0, []
    for s in symbols:
        q = table[s, q]
        states.append(q)
    h = np.asarray(rnn.bilinear(bilinear_from_fsm(table, q0), jax.nn.one_hot(symbols, 3)))
    assert np.array_equal(h, np.eye(table.shape[1])[states])
    print(
        f"{table.shape[1]}-state machine, 10^4 steps: the state is one-hot and right at every step"
    )

# %% [markdown]
# ## 3. The input-driven HMM: the normalized form
#
# $\alpha_t(i) = E[i, y_t]\sum_j P_{x_t}[j, i]\,\alpha_{t-1}(j)$ is bilinear in the one-hot of
# the pair $(x_t, y_t)$; normalized to sum one it is the filter $P(s_t \mid x_{1:t}, y_{1:t})$.
# The reference is the textbook forward pass, written here.

# %%
K, X, Y = 3, 2, 3
io = IOHMMParams(rng.dirichlet(np.ones(K)), rng.dirichlet(np.ones(K) * 0.5, size=(X, K)),
                 rng.dirichlet(np.ones(Y), size=K))  # fmt: skip
xs = rng.integers(0, X, size=200)
s_true, ys = sample_iohmm(jax.random.PRNGKey(2), io, xs)
alpha, dense = np.asarray(io.initial_probs), []
for xt, yt in zip(xs, np.asarray(ys), strict=True):
    alpha = np.asarray(io.emission_probs)[:, yt] * (np.asarray(io.transition_probs)[xt].T @ alpha)
    alpha = alpha / alpha.sum()
    dense.append(alpha)
post = iohmm_filter(io, xs, ys)
print("IOHMM filter, bilinear vs dense forward pass:", max_abs_error(post, dense))
assert max_abs_error(post, dense) < EXACT

fig, ax = plt.subplots(figsize=(9, 2.6), layout="constrained")
ax.imshow(np.asarray(post).T, aspect="auto", cmap="viridis", interpolation="nearest")
ax.plot(np.asarray(s_true), "w.", ms=3, label="true state")
ax.set_xlabel("t")
ax.set_ylabel("state")
ax.set_title("input-driven HMM: P(s_t | x, y) from the normalized bilinear cell")
ax.legend(loc="upper right", fontsize=8)
plt.show()

# %% [markdown]
# ## 4. The switching model: identity plus rank one
#
# The exact filter of the switching model is $p_t \propto A_t p_{t-1}$ with
# $A_t = (1-\rho)\operatorname{diag}(e_t(0, \cdot)) + \rho\,(e_t(1, \cdot) \odot \pi)\mathbf 1^\top$;
# in the gated model $A_t = (1 - g_t) I + g_t q_t \mathbf 1^\top$, whose columns sum to one,
# so the positive-state minGRU is the bilinear recurrence that needs no normalization.

# %%
for gated in (True, False):
    sw = SwitchingParams(np.array([0.2, 0.5, 0.3]), 0.2,
                         CategoricalEmission(rng.dirichlet(np.ones(4), size=3)),
                         GaussianCue(np.array([-0.5, 0.8]), 0.6), gated=gated)  # fmt: skip
    y, u, _, _ = sample(jax.random.PRNGKey(3), sw, 300)
    p, out = np.asarray(sw.initial_probs), []
    for At in np.asarray(switching_operators(sw, y, u)):
        p = At @ p
        p = p / p.sum()
        out.append(p)
    gap = max_abs_error(out, exact_filter(sw, y, u).filtered_s)
    print(
        f"{'gated' if gated else 'always'}: normalized operator recurrence vs exact filter {gap:.1e}"
    )
    assert gap < EXACT
nocue = SwitchingParams(np.array([0.2, 0.5, 0.3]), 0.2,
                        CategoricalEmission(rng.dirichlet(np.ones(4), size=3)), gated=True)  # fmt: skip
y, _, _, _ = sample(jax.random.PRNGKey(4), nocue, 300)
h = rnn.bilinear(bilinear_from_switching(nocue), jax.nn.one_hot(y, 4))  # unnormalized
assert max_abs_error(h, exact_filter(nocue, y).filtered_s) < EXACT
print("cue-free gated model as a full bilinear cell over one-hot y: exact, no normalization")

# %% [markdown]
# ## 5. Commuting operators and non-abelian groups (Proposition 2)
#
# Rotation, complex and real-diagonal operators share an eigenbasis, so they commute and a
# word's letters can be reordered without changing the final state. In $S_3$ the words $ab$
# and $ba$ differ for two transpositions $a, b$: a commuting cell puts both in the same
# state, so no readout gets both right. Free $2\times2$ blocks do not commute, and $S_3$ has
# a faithful 2-dimensional representation (the symmetries of a triangle, acting on the plane
# $\{v \in \mathbb R^3 : \sum v = 0\}$): one block per group element is an exact $S_3$
# tracker. $S_5$ has no faithful representation in dimension 2, which is why $2\times2$
# blocks fail on random permutation automata with 5 or more states.

# %%
s3 = state_tracking_task("s3")
perms = list(itertools.permutations(range(3)))
basis = np.array([[1, -1, 0], [1, 1, -2]], float).T
basis /= np.linalg.norm(basis, axis=0)  # orthonormal basis of the sum-zero plane
rep = np.stack([basis.T @ np.eye(3)[list(g)].T @ basis for g in perms])  # (6, 2, 2)
rep_check = [
    np.allclose(rep[s3.transition[a, b]], rep[a] @ rep[b]) for a in range(6) for b in range(6)
]
assert all(rep_check)  # a homomorphism: rep(g_a o g_b) = rep(g_a) rep(g_b)
block_s3 = rnn.BlockBilinearParams(np.moveaxis(rep, 0, -1)[None], np.array([1.0, 0.3]))
data = sample_state_tracking(5, s3, 200, 500)
h = np.asarray(rnn.bilinear(block_s3, data.one_hot(6, np.float64)))
# the six states h = rep(g) h0 are distinct points on a circle: label each by the nearest
centres = np.stack([rep[g] @ np.array([1.0, 0.3]) for g in range(6)])
pred = np.argmin(((h[..., None, :] - centres) ** 2).sum(-1), axis=-1)
print("2x2 block from the S3 representation: accuracy at every step of length-500 words:",
      float(np.mean(pred == data.labels)))  # fmt: skip
assert np.array_equal(pred, data.labels)

a, b = 1, 2  # two transpositions in the itertools order: (0,2,1) and (1,0,2)
assert s3.transition[a, b] != s3.transition[b, a]
for name in ("rotation", "complex", "diagonal"):
    p = rnn.init_rotation(key, 6, 8) if name == "rotation" else (
        rnn.init_complex_diagonal(key, 6, 8) if name == "complex" else
        rnn.init_diagonal_bilinear(key, 6, 8))  # fmt: skip
    ab = rnn.bilinear(p, jax.nn.one_hot(jnp.array([b, a]), 6))[-1]
    ba = rnn.bilinear(p, jax.nn.one_hot(jnp.array([a, b]), 6))[-1]
    print(f"{name}: |h(ab) - h(ba)| = {max_abs_error(ab, ba):.1e} (the machine: different states)")
    assert max_abs_error(ab, ba) < 1e-13

# %% [markdown]
# ## 6. A frozen random diagonal cell learns parity from two examples (Proposition 3)
#
# With $A(e_0) = I$ and $A(e_1) = \operatorname{diag}(\sigma)$, random signs, the state takes
# two values only: $h_0$ after an even number of ones, $h_0 \odot \sigma$ after an odd number.
# A linear readout fitted to one even and one odd word (least squares on $\pm 1$ targets)
# therefore classifies every word of every length, unless $\sigma = \mathbf 1$: probability
# $1 - 2^{-H}$. With real entries $U(-1, 1)$ the moduli drift with the count of ones and two
# examples are not enough; the same experiment measures it.


# %%
def parity_from_two_examples(H, draws, signs, rng):
    ok = 0
    words = rng.integers(0, 2, size=(200, 300))
    odd = words.sum(1) % 2
    for _ in range(draws):
        a1 = rng.choice([-1.0, 1.0], size=H) if signs else rng.uniform(-1, 1, size=H)
        h0 = rng.normal(size=H)
        cell = rnn.DiagonalBilinearParams(np.stack([np.ones(H), a1], axis=1), h0)
        train = jax.nn.one_hot(np.array([[0, 0, 1], [0, 1, 1]]), 2)  # one odd, one even word
        feats = np.asarray(rnn.bilinear(cell, train, normalize=True))[:, -1]
        w, *_ = np.linalg.lstsq(np.c_[feats, np.ones(2)], np.array([1.0, -1.0]), rcond=None)
        test = np.asarray(rnn.bilinear(cell, jax.nn.one_hot(words, 2), normalize=True))[:, -1]
        ok += np.all((np.c_[test, np.ones(len(test))] @ w > 0) == (odd == 1))
    return ok / draws


draws = 300
rows = []
for H in (1, 2, 3, 4, 6):
    p_sign = parity_from_two_examples(H, draws, True, rng)
    p_real = parity_from_two_examples(H, draws, False, rng)
    rows.append((H, p_sign, 1 - 2.0**-H, p_real))
    se = np.sqrt((1 - 2.0**-H) * 2.0**-H / draws)
    assert abs(p_sign - (1 - 2.0**-H)) < 4 * se + 1e-12
print(" H   signs: measured  1 - 2^-H   U(-1,1): measured")
for H, ps, f, pr in rows:
    print(f"{H:2d}   {ps:15.3f} {f:9.3f} {pr:17.3f}")

# %% [markdown]
# ## 7. Trained cells
#
# The protocol of `switchssm statetrack` on a reduced grid: train on lengths 2-10, test at 500.
# The full bilinear cell extrapolates on modular addition and on $S_3$; the real diagonal
# cell stays at chance on $m = 3$ (it can only flip signs); the commuting rotation cell cannot
# represent $S_3$ (section 5). The rotation cell on $m = 3$ is the instructive failure: it can
# represent $\mathbb Z_3$ exactly (a rotation by $2\pi/3$) and is perfect at the training
# lengths, but an angle learned slightly off accumulates its error linearly with length, and
# by 500 symbols the phase points at a wrong class (the paper reports 0.00 for R2 at $m = 3$
# too). One learning rate and fewer steps than the table, to stay fast.

# %%
settings = dict(hidden_dim=16, num_steps=600, learning_rates=(1e-2,), num_train=1000,
                num_val=50, num_test=100, progress=False)  # fmt: skip
results = []
for task, cell in (("modadd", "bilinear"), ("modadd", "diagonal"), ("modadd", "rotation"),
                   ("s3", "bilinear"), ("s3", "rotation")):  # fmt: skip
    t = state_tracking_task(task, modulus=3) if task == "modadd" else state_tracking_task(task)
    r = train_state_tracker(t, cell, key=0, **settings)
    results.append(r)
    print(f"{r.task:<12}{cell:<10} test {r.test_accuracy:.2f} (chance {r.chance_accuracy:.2f}), "
          f"train {r.train_accuracy:.2f}")  # fmt: skip
acc = {(r.task, r.cell): r.test_accuracy for r in results}
assert acc[("modadd(m=3)", "bilinear")] > 0.99 and acc[("s3", "bilinear")] > 0.99
assert acc[("modadd(m=3)", "diagonal")] < 0.5  # chance is 1/3
assert acc[("s3", "rotation")] < 0.7  # ab and ba always share a state
plot_accuracy_by_length(results, title="train on lengths 2-10, test up to 500")
plt.show()

# %% [markdown]
# **Rotation angles (the paper's Figure 4).** An R2 cell trained on modular addition with
# $m = 10$ assigns each input integer $k$ an angle per block; a block that represents
# $\mathbb Z_m$ exactly rotates by $2\pi j k / m$ for an integer harmonic $j$, so the angle
# divided by $2\pi / m$ is $j k$ modulo $m$. The blocks are ordered by the norm of their
# readout weights.

# %%
r10 = train_state_tracker(state_tracking_task("modadd", modulus=10), "rotation", key=1,
                          hidden_dim=8, num_steps=800, learning_rates=(3e-2,), num_train=1000,
                          num_val=50, num_test=100, progress=False)  # fmt: skip
print(f"R2 on modadd(m=10): test accuracy {r10.test_accuracy:.2f}")
angles = np.asarray(r10.trained.params.cell.angle_weight)  # (blocks, m): theta_b(k), one-hot k
w = np.asarray(r10.trained.params.readout.weight).reshape(10, -1, 2)
order = np.argsort(-np.linalg.norm(w, axis=(0, 2)))
plot_rotation_harmonics(angles[order], 10)
plt.show()
harmonics = np.mod(angles[order] / (2 * np.pi / 10), 10)
print("harmonic of k = 1 per block (ordered by readout weight):", np.round(harmonics[:, 1], 2))

# %%
print(f"notebook ran in {time.perf_counter() - t_start:.0f} s")
