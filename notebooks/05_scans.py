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
# # Diagonal recurrences as prefix computations
#
# minGRU, minLSTM and selective state-space models all update their state with a
# *diagonal linear recurrence* $h_t = a_t \odot h_{t-1} + b_t$, where $(a_t, b_t)$ depend
# on the input $x_t$ only. This notebook derives why such a recurrence can run as a
# parallel prefix scan (docs/theory.md, section 0), and checks, with `switchssm.scan` and
# `switchssm.rnn`:
#
# 1. the associative operator $(a, b)\cdot(a', b') = (a a', a' b + b')$: a proof, and an
#    exact and a floating-point check on random triples;
# 2. parallel against sequential scans (and a naive loop), values and gradients;
# 3. the log-space scan behind the positive-state minGRU, and why the popular
#    cumulative-sum formulation of it loses float32 accuracy as $T$ grows;
# 4. timings of the two forms on CPU;
# 5. minLSTM's normalized gates ($f' + i' = 1$) and the length-independent scale they give;
# 6. minLSTM with $i' = z$ is minGRU.
#
# Parallel scans compile slowly on CPU (`docs/numerics.md`), so the notebook
# keeps to a handful of array shapes.

# %%
import time
from fractions import Fraction

import jax

jax.config.update("jax_enable_x64", True)  # float64 by default; float32 only where asked

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from switchssm import scan
from switchssm.rnn import MinGRUParams
from switchssm.rnn import MinLSTMParams
from switchssm.rnn import init_mingru
from switchssm.rnn import init_minlstm
from switchssm.rnn import log_g_activation
from switchssm.rnn import mingru
from switchssm.rnn import minlstm
from switchssm.rnn import minlstm_gates
from switchssm.verify import max_abs_error

EXACT = 1e-12  # float64 identities
rng = np.random.default_rng(0)
t_start = time.perf_counter()


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def naive_recurrence(a, b, h0):
    """h_t = a_t h_{t-1} + b_t by a Python loop over time (axis -2); float64 NumPy."""
    a, b = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float))
    h, out = np.array(h0, float), np.empty(b.shape)
    for t in range(b.shape[-2]):
        h = a[..., t, :] * h + b[..., t, :]
        out[..., t, :] = h
    return out


# %% [markdown]
# ## 1. The recurrence is a composition of affine maps
#
# Step $t$ applies the affine map $f_t(h) = a_t h + b_t$ (elementwise), so
# $h_t = (f_t \circ \dots \circ f_1)(h_0)$. Composing two such maps gives another one:
#
# $$
# (f' \circ f)(h) = a'(a h + b) + b' = (a a')\,h + (a' b + b'),
# $$
#
# so represent $f$ by the pair $(a, b)$ and write "apply $(a, b)$, then $(a', b')$" as
#
# $$
# (a, b) \cdot (a', b') = (a a',\; a' b + b').
# $$
#
# **Associativity.** Both groupings of three maps expand to the same pair:
#
# $$
# \begin{aligned}
# \big((a, b)\cdot(a', b')\big)\cdot(a'', b'') &= (a a',\, a' b + b')\cdot(a'', b'')
#   = \big(a a' a'',\; a''a' b + a'' b' + b''\big),\\
# (a, b)\cdot\big((a', b')\cdot(a'', b'')\big) &= (a, b)\cdot(a' a'',\, a'' b' + b'')
#   = \big(a a' a'',\; a' a'' b + a'' b' + b''\big),
# \end{aligned}
# $$
#
# equal because scalar (elementwise) products commute. (It is of course associativity of
# function composition; the pair form just makes the bookkeeping explicit.) The identity
# is $(1, 0)$, and the operator is **not** commutative: order matters. For dense
# transitions the same algebra reads $(A, b)\cdot(A', b') = (A'A,\, A'b + b')$; there the
# products do not commute and the order written is the only correct one.
#
# **Prefixes.** With $e_0 = (1, h_0)$, the second component of
# $e_0 \cdot (a_1, b_1) \cdot \dots \cdot (a_t, b_t)$ is $h_t$. Because the operator is
# associative, all $T$ prefixes can be computed with any bracketing, e.g. a tree of depth
# $O(\log T)$: this is `jax.lax.associative_scan`.


# %%
def op(x, y):
    """(a, b) . (a', b') = (a a', a' b + b'): apply x, then y. Works for numbers and arrays."""
    return (x[0] * y[0], y[0] * x[1] + y[1])


def rand_fraction():
    return Fraction(int(rng.integers(-20, 21)), int(rng.integers(1, 13)))


# Exact check in rational arithmetic: no rounding, so equality must be exact.
for _ in range(2000):
    p, q, r = [(rand_fraction(), rand_fraction()) for _ in range(3)]
    assert op(op(p, q), r) == op(p, op(q, r))
    assert op(p, (Fraction(1), Fraction(0))) == p == op((Fraction(1), Fraction(0)), p)
commutes = sum(
    op(p, q) == op(q, p)
    for p, q in (
        ((rand_fraction(), rand_fraction()), (rand_fraction(), rand_fraction()))
        for _ in range(2000)
    )
)
print(
    f"exact: associativity holds on 2000 rational triples; "
    f"the operator commuted in {commutes}/2000 pairs"
)

# Floating point: the two groupings round differently, by a few ulps of the terms' size.
n = 100_000
p, q, r = [(rng.normal(size=n), rng.normal(size=n)) for _ in range(3)]
left, right = op(op(p, q), r), op(p, op(q, r))
scale_b = np.abs(r[0] * q[0] * p[1]) + np.abs(r[0] * q[1]) + np.abs(r[1])
rel_a = np.max(np.abs(left[0] - right[0]) / np.abs(left[0]))
rel_b = np.max(np.abs(left[1] - right[1]) / scale_b)
eps = np.finfo(np.float64).eps
print(
    f"float64: max rounding gap {rel_a / eps:.1f} ulp (a), {rel_b / eps:.1f} ulp (b) on {n} triples"
)
assert rel_a < 4 * eps and rel_b < 4 * eps


# Dense transitions: (A, b) . (A', b') = (A' A, A' b + b'); matrices do not commute.
def op_dense(x, y):
    return (y[0] @ x[0], y[0] @ x[1] + y[1])


P, Q, R = [(rng.normal(size=(4, 4)), rng.normal(size=4)) for _ in range(3)]
L_, R_ = op_dense(op_dense(P, Q), R), op_dense(P, op_dense(Q, R))
assert max_abs_error(L_[0], R_[0]) < EXACT and max_abs_error(L_[1], R_[1]) < EXACT
wrong = (P[0] @ Q[0], Q[0] @ P[1] + Q[1])  # A A' instead of A' A
h_direct = Q[0] @ (P[0] @ R[1] + P[1]) + Q[1]
assert max_abs_error(op_dense(P, Q)[0] @ R[1] + op_dense(P, Q)[1], h_direct) < EXACT
assert max_abs_error(wrong[0] @ R[1] + wrong[1], h_direct) > 0.1

# %% [markdown]
# A different bracketing, written out by hand: the Hillis–Steele scan combines each
# element with the one `shift` places before it, doubling `shift` at every level; after
# $\lceil\log_2 T\rceil$ levels element $t$ holds the prefix $1..t$. The figure shows which
# elements combine for $T = 16$; the check runs it at $T = 1000$ against the sequential
# loop.


# %%
def hillis_steele(a, b, h0):
    """All prefixes e_0 . (a_1, b_1) . ... . (a_t, b_t), by log2(T) doubling levels."""
    a, b = a.copy(), b.copy()
    b[0] = a[0] * h0 + b[0]  # fold e_0 = (1, h0) into the first element
    shift, levels = 1, 0
    while shift < len(a):
        # element t becomes (element t - shift) . (element t); right-hand sides use the old values
        a[shift:], b[shift:] = a[:-shift] * a[shift:], a[shift:] * b[:-shift] + b[shift:]
        shift, levels = 2 * shift, levels + 1
    return b, levels


T_hs = 1000
a_hs, b_hs = rng.uniform(0.5, 1.0, size=(T_hs, 3)), rng.normal(size=(T_hs, 3))
h_hs, levels = hillis_steele(a_hs, b_hs, np.ones(3))
assert levels == int(np.ceil(np.log2(T_hs)))
assert max_abs_error(h_hs, naive_recurrence(a_hs, b_hs, np.ones(3))) < EXACT
print(
    f"Hillis-Steele: {levels} levels for T = {T_hs}, max gap to the loop "
    f"{max_abs_error(h_hs, naive_recurrence(a_hs, b_hs, np.ones(3))):.1e}"
)

fig, ax = plt.subplots(figsize=(9, 3))
T_fig = 16
for lev in range(4):
    shift = 2**lev
    for t in range(T_fig):
        ax.plot(t, -lev, "o", color="C0", ms=5)
        if t >= shift:
            ax.annotate(
                "",
                xy=(t, -lev - 1),
                xytext=(t - shift, -lev),
                arrowprops=dict(arrowstyle="->", color="C1", lw=0.7),
            )
        ax.annotate(
            "",
            xy=(t, -lev - 1),
            xytext=(t, -lev),
            arrowprops=dict(arrowstyle="->", color="0.7", lw=0.7),
        )
ax.plot(range(T_fig), [-4] * T_fig, "o", color="C2", ms=5)
ax.set(
    yticks=[0, -1, -2, -3, -4],
    yticklabels=[
        "input",
        "after shift 1",
        "after shift 2",
        "after shift 4",
        "after shift 8:\nall prefixes",
    ],
    xlabel="time step t",
    title="Hillis–Steele prefix scan: depth log2 T, every bracketing gives the same result",
)
ax.spines[["top", "right"]].set_visible(False)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 2. `switchssm.scan`: parallel and sequential agree, in values and gradients
#
# `diagonal_scan(a, b, h0, mode=...)` runs the recurrence with `jax.lax.scan`
# (`"sequential"`) or `jax.lax.associative_scan` with the operator above (`"parallel"`).
# The other side is the Python loop `naive_recurrence`.
#
# **Gradients, independently.** For a loss $L = \sum_t w_t^\top h_t$ the adjoint
# $\lambda_t = \partial L / \partial h_t$ (total derivative) obeys the *reversed* recurrence
#
# $$
# \lambda_t = w_t + a_{t+1}\,\lambda_{t+1}, \qquad \lambda_T = w_T,
# $$
#
# and then $\partial L/\partial b_t = \lambda_t$, $\partial L/\partial a_t = \lambda_t h_{t-1}$,
# $\partial L/\partial h_0 = a_1 \lambda_1$. So the backward pass of a linear recurrence
# is again a linear recurrence, run backwards (`reverse=True`) with the decays shifted by
# one step. We compute these by a NumPy loop and compare with `jax.grad` through both
# modes.

# %%
B, T, D = 4, 2048, 16
a = rng.uniform(0.3, 1.0, size=(B, T, D))
b = rng.normal(size=(B, T, D))
h0 = rng.normal(size=(B, D))
w = rng.normal(size=(B, T, D))


def loss_and_states(a, b, h0, mode):
    h = scan.diagonal_scan(a, b, h0, mode=mode)
    return jnp.sum(w * h), h


value_and_grads = {
    mode: jax.jit(
        jax.value_and_grad(
            lambda a, b, h0, m=mode: loss_and_states(a, b, h0, m), argnums=(0, 1, 2), has_aux=True
        )
    )
    for mode in ("sequential", "parallel")
}
compile_s, results = {}, {}
for mode, fn in value_and_grads.items():
    t0 = time.perf_counter()
    results[mode] = jax.block_until_ready(fn(a, b, h0))
    compile_s[mode] = time.perf_counter() - t0  # first call: trace + compile + run

# The naive side: forward loop, and the adjoint loop.
h_loop = naive_recurrence(a, b, h0)
lam = np.empty_like(b)
lam_next = np.zeros((B, D))
for t in range(T - 1, -1, -1):
    a_next = a[:, t + 1] if t + 1 < T else np.zeros((B, D))
    lam_next = w[:, t] + a_next * lam_next
    lam[:, t] = lam_next
h_prev = np.concatenate([h0[:, None], h_loop[:, :-1]], axis=1)
grads_loop = (lam * h_prev, lam, a[:, 0] * lam[:, 0])

for mode, ((loss, h), grads) in results.items():
    assert max_abs_error(h, h_loop) < EXACT, mode
    assert abs(float(loss) - np.sum(w * h_loop)) < 1e-9, mode
    for name, g, g_loop in zip(("a", "b", "h0"), grads, grads_loop, strict=True):
        assert max_abs_error(g, g_loop) < EXACT, (mode, name)
    print(
        f"{mode:>10}: max |h - loop| = {max_abs_error(h, h_loop):.1e}, "
        f"max |grad - adjoint loop| = "
        f"{max(max_abs_error(g, gl) for g, gl in zip(grads, grads_loop, strict=True)):.1e}"
    )

# The adjoint *is* a reverse diagonal scan with decays shifted by one step.
a_shifted = np.concatenate([a[:, 1:], np.zeros((B, 1, D))], axis=1)
lam_scan = scan.diagonal_scan(a_shifted, w, mode="sequential", reverse=True)
assert max_abs_error(lam_scan, lam) < EXACT
print(f"adjoint = reverse scan: max gap {max_abs_error(lam_scan, lam):.1e}")

# Dense transitions, (A, b) . (A', b') = (A' A, A' b + b'), against a loop: here the
# operator does not commute, so a parallel scan that got the order wrong would show.
Td, Dd = 32, 3
A_d = rng.normal(size=(Td, Dd, Dd)) / np.sqrt(Dd)
b_d = rng.normal(size=(Td, Dd))
h_dense = {m: scan.dense_scan(A_d, b_d, np.ones(Dd), mode=m) for m in ("sequential", "parallel")}
h, h_dense_loop = np.ones(Dd), []
for t in range(Td):
    h = A_d[t] @ h + b_d[t]
    h_dense_loop.append(h)
# Products of random matrices grow or shrink: compare relative to the size of the states.
scale = np.max(np.abs(h_dense_loop))
for m, hd in h_dense.items():
    assert max_abs_error(hd, h_dense_loop) / scale < 1e-12, m
print(
    f"dense scan: sequential and parallel match the loop to "
    f"{max_abs_error(h_dense['parallel'], h_dense_loop) / scale:.1e} (relative)"
)

# %% [markdown]
# ## 3. The log-space scan behind the positive-state minGRU
#
# The positive-state ("log-space") minGRU of Feng et al. keeps $h_t > 0$:
#
# $$
# h_t = (1 - z_t)\,h_{t-1} + z_t\,\tilde h_t, \qquad z_t = \sigma(k_t),\quad
# \tilde h_t = g(W_h x_t + b_h) > 0,
# $$
#
# a diagonal recurrence with $a_t = 1 - z_t$, $b_t = z_t \tilde h_t$, both positive, which
# it runs in log space so that products of many gates neither underflow nor overflow:
# $\log a_t = -\mathrm{softplus}(k_t)$, $\log b_t = -\mathrm{softplus}(-k_t) + \log \tilde h_t$.
#
# There are two ways to do that.
#
# **Cumulative sums (the public minGRU code, after Heinsen 2023).** Unrolling,
# $h_t = \sum_{s=0}^{t} \big(\prod_{r=s+1}^{t} a_r\big) b_s$ with $b_0 = h_0$. With
# $a^*_t = \sum_{r \le t} \log a_r$,
#
# $$
# \log h_t = a^*_t + \operatorname{logcumsumexp}_{s \le t}\big(\log b_s - a^*_s\big).
# $$
#
# **Neighbour-combining (`switchssm.scan.log_diagonal_scan`).**
# $\log h_t = \operatorname{logaddexp}(\log a_t + \log h_{t-1},\, \log b_t)$ sequentially, or
# the same operator as section 1 in log coordinates,
#
# $$
# (\ell a, \ell b)\cdot(\ell a', \ell b')
# = \big(\ell a + \ell a',\; \operatorname{logaddexp}(\ell a' + \ell b,\, \ell b')\big)
# $$
#
# in parallel.
#
# **Why the first loses accuracy.** $a^*_t$ is a sum of $t$ negative terms, so
# $|a^*_t| \approx t\, \mathbb E[\mathrm{softplus}(k)]$ grows linearly. In float32 it is
# stored with an absolute error of order $\epsilon |a^*_t|$ or more, as the sum
# accumulates rounding ($\epsilon = 2^{-24} \approx 6\times 10^{-8}$), and the formula then *subtracts* two numbers of that size
# to get $\log h_t = O(1)$: the absolute error $\epsilon |a^*_t|$ survives in
# $\log h_t$, which is a *relative* error $\approx \epsilon\, t\, \mathbb E[\mathrm{softplus}(k)]$
# in $h_t$: about $10^{-2}$ after $10^5$ steps. The neighbour-combining form never
# forms a large number it must cancel: the sequential step is a contraction
# ($a_t < 1$), so per-step rounding errors stay $O(\epsilon)$; in the parallel form the
# window sums $\ell a'$ do grow, but they only multiply terms $e^{\ell a' + \ell b}$ that are
# negligible exactly when $|\ell a'|$ is large.
#
# First, the library's positive-state minGRU (`mingru(..., space="log")`, which runs
# `log_diagonal_scan` on exactly these $\log a_t, \log b_t$) computes this recurrence:
# checked against a float64 loop written from the equations.

# %%
T_small, D_in, H = 300, 3, 4
params = init_mingru(jax.random.PRNGKey(0), D_in, H)
params = MinGRUParams(
    params.gate_weight, params.gate_bias + 0.5, 3 * params.candidate_weight, params.candidate_bias
)
x_small = rng.normal(size=(T_small, D_in))
h_cell = mingru(params, x_small, space="log", mode="sequential")  # candidate g, h0 = g(0) = 1/2

Wz, bz = np.asarray(params.gate_weight), np.asarray(params.gate_bias)
Wh, bh = np.asarray(params.candidate_weight), np.asarray(params.candidate_bias)


def g(v):  # Feng et al.'s positive activation
    return np.where(v >= 0, v + 0.5, sigmoid(np.minimum(v, 0.0)))


h, h_loop_gru = np.full(H, 0.5), []
for x_t in x_small:
    z = sigmoid(Wz @ x_t + bz)
    h = (1 - z) * h + z * g(Wh @ x_t + bh)
    h_loop_gru.append(h)
rel_cell = np.max(np.abs(np.asarray(h_cell) / np.array(h_loop_gru) - 1))
assert rel_cell < EXACT
print(f"positive-state minGRU vs float64 loop: max relative error {rel_cell:.1e}")

# %% [markdown]
# Now the precision experiment. One long minGRU-like sequence ($T = 2^{18}$, gate
# pre-activations $k \sim \mathcal N(0, 2^2)$, so $\mathbb E[\mathrm{softplus}(k)] \approx 1.07$),
# with $(\log a_t, \log b_t)$ rounded to float32 once and then scanned in float32 three
# ways. The reference is the float64 scan of exactly those float32 inputs, so every
# error below is the scan's own. The relative error at step $t$ is
# $|h^{32}_t / h^{64}_t - 1|$; the error "at length $T$" is its maximum over $t \le T$.
# (The float64 cumulative-sum form agrees with the float64 reference to about
# $10^{-10}$, so the formula is right; only its conditioning is bad.)

# %%
T_long = 2**18
k_long = 2.0 * rng.normal(size=(T_long, 4))  # four independent units
pre_long = 2.0 * rng.normal(size=(T_long, 4))
log_a32 = (-np.logaddexp(0.0, k_long)).astype(np.float32)
log_b32 = (-np.logaddexp(0.0, -k_long) + np.asarray(log_g_activation(pre_long))).astype(np.float32)
log_h0_32 = np.full(4, np.log(0.5), np.float32)


@jax.jit
def log_scan_cumsum(log_a, log_b, log_h0):
    """The cumulative-sum formulation: log h_t = a*_t + logcumsumexp_s(log b_s - a*_s)."""
    log_b = jnp.concatenate([log_h0[None], log_b])  # b_0 = h_0
    a_star = jnp.concatenate([jnp.zeros_like(log_h0)[None], jnp.cumsum(log_a, axis=0)])
    return (a_star + jax.lax.cumlogsumexp(log_b - a_star, axis=0))[1:]


methods = {
    "cumsum + logcumsumexp": lambda la, lb, l0: log_scan_cumsum(
        jnp.asarray(la), jnp.asarray(lb), jnp.asarray(l0)
    ),
    "log_diagonal_scan, sequential": lambda la, lb, l0: scan.log_diagonal_scan(
        la, lb, l0, mode="sequential"
    ),
    "log_diagonal_scan, parallel": lambda la, lb, l0: scan.log_diagonal_scan(
        la, lb, l0, mode="parallel"
    ),
}
reference = np.asarray(
    scan.log_diagonal_scan(
        log_a32.astype(float), log_b32.astype(float), log_h0_32.astype(float), mode="sequential"
    )
)
cum64 = np.asarray(
    methods["cumsum + logcumsumexp"](
        log_a32.astype(float), log_b32.astype(float), log_h0_32.astype(float)
    )
)
assert np.max(np.abs(np.expm1(cum64 - reference))) < 1e-8  # the formula itself is right

rel_err = {}
for name, fn in methods.items():
    out = np.asarray(fn(log_a32, log_b32, log_h0_32))
    assert out.dtype == np.float32, name
    rel_err[name] = np.abs(np.expm1(out.astype(float) - reference)).max(axis=-1)  # worst unit

lengths = 2 ** np.arange(6, 19, 2)
print("max relative error of h over t <= T (float32)")
print(f"{'T':>32} " + " ".join(f"{n:>9d}" for n in lengths))
for name, err in rel_err.items():
    running = np.maximum.accumulate(err)
    print(f"{name:>32} " + " ".join(f"{running[n - 1]:9.1e}" for n in lengths))

# %%
eps32 = np.finfo(np.float32).eps / 2  # unit roundoff 2^-24
edges = np.unique(np.round(np.logspace(0, np.log10(T_long), 60)).astype(int))
a_star_abs = np.abs(np.cumsum(log_a32.astype(float), axis=0)).max(axis=-1)

fig, ax = plt.subplots(figsize=(8, 4.5))
for (name, err), color in zip(rel_err.items(), ["C3", "C0", "C2"], strict=True):
    # The largest error in each logarithmic window of t, so the plot stays readable.
    peak = [err[lo - 1 : hi].max() for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    ax.plot(edges[1:], np.maximum(peak, 1e-9), color=color, label=name)
ax.plot(
    edges,
    eps32 * a_star_abs[edges - 1],
    "k--",
    lw=1,
    label="$\\epsilon_{32}\\,|a^*_t|$ (the argument above)",
)
ax.axhline(eps32, color="0.6", lw=0.8, ls=":", label="float32 unit roundoff")
ax.set(
    xscale="log",
    yscale="log",
    xlabel="time step $t$",
    ylabel="relative error of $h_t$ (float32)",
    title="positive-state minGRU scan in float32:\n"
    "cumulative sums drift, neighbour-combining does not",
)
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %%
worst = {name: err.max() for name, err in rel_err.items()}
# The cumulative-sum form's error grows roughly like eps * |a*_t|: > 1e-2 by T = 2^18.
assert worst["cumsum + logcumsumexp"] > 1e-2
assert np.maximum.accumulate(rel_err["cumsum + logcumsumexp"])[2**10 - 1] < 1e-3
# The neighbour-combining forms stay within a few float32 roundoffs at every length.
assert worst["log_diagonal_scan, sequential"] < 20 * eps32
assert worst["log_diagonal_scan, parallel"] < 40 * eps32
print({name: f"{v:.1e}" for name, v in worst.items()})

# %% [markdown]
# ## 4. Timings: on CPU the sequential scan wins
#
# A parallel scan does $O(T)$ work in $O(\log T)$ *depth*: it pays when many cores or a
# GPU run each level at once. On a CPU with two cores the extra work of the tree (about
# twice the operator applications, plus strided memory traffic) costs more than the
# depth saves, and `jax.lax.associative_scan` also compiles much more slowly. Hence
# `switchssm.scan.default_mode()` is `"sequential"` on CPU. Two sizes, reusing programs
# compiled above (only ratios are quoted; absolute times depend on the machine):
#
# * value and gradient (one jitted program) of a float64 diagonal scan,
#   $(B, T, D) = (4, 2048, 16)$;
# * a forward float32 log-space scan, $(T, D) = (2^{18}, 4)$, with the cumulative-sum
#   form for comparison.


# %%
def best_time(fn, *args, repeats=5):
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t0)
    return best


vg_times = {mode: best_time(fn, a, b, h0) for mode, fn in value_and_grads.items()}
log_times = {
    name: best_time(fn, log_a32, log_b32, log_h0_32, repeats=1 if "cumsum" in name else 3)
    for name, fn in methods.items()
}
ratios = {
    "(4, 2048, 16) value+grad:\nparallel / sequential": vg_times["parallel"]
    / vg_times["sequential"],
    "(4, 2048, 16) first call (compile):\nparallel / sequential": compile_s["parallel"]
    / compile_s["sequential"],
    "(2^18, 4) log scan:\nparallel / sequential": (
        log_times["log_diagonal_scan, parallel"] / log_times["log_diagonal_scan, sequential"]
    ),
    "(2^18, 4) log scan:\ncumsum form / sequential": (
        log_times["cumsum + logcumsumexp"] / log_times["log_diagonal_scan, sequential"]
    ),
}
print(f"backend: {jax.default_backend()}, default_mode() = {scan.default_mode()!r}")
for label, ratio in ratios.items():
    print(f"{label.replace(chr(10), ' '):<60} {ratio:6.1f}x")

fig, ax = plt.subplots(figsize=(7.5, 3))
ax.barh(list(ratios), list(ratios.values()), color=["C0", "C1", "C0", "C3"])
ax.axvline(1.0, color="k", lw=1)
ax.invert_yaxis()
ax.set(
    xscale="log",
    xlabel="time relative to the sequential scan (1 = same; log scale)",
    title=f"{jax.default_backend().upper()}: ratios > 1 mean the sequential scan is faster",
)
fig.tight_layout()
plt.show()

# %% [markdown]
# When this was written (a 2-core CPU shared with other jobs), the ratios were about
# 1.2-1.3x (value and gradient) and 2-2.5x (log-space scan) in favour of the sequential
# form, 10-15x for the first call (the parallel program compiles far more slowly), and
# 10-15x for the cumulative-sum form, whose `cumlogsumexp` lowers through a slow
# path on CPU. The one place the two forms come close on CPU is a single unit over a
# very long sequence, where the sequential loop's per-step overhead is not amortized
# over many units. On a GPU, where each level of the tree runs in parallel, the
# run-time ordering is expected to reverse at long $T$ (not measured here); the
# accuracy argument of section 3 does not depend on the hardware.

# %% [markdown]
# ## 5. minLSTM: normalized gates, and a scale that does not depend on length
#
# minLSTM has a forget gate $f_t = \sigma(W_f x_t + b_f)$ and an input gate
# $i_t = \sigma(W_i x_t + b_i)$, normalized to
#
# $$
# f'_t = \frac{f_t}{f_t + i_t}, \qquad i'_t = \frac{i_t}{f_t + i_t}, \qquad f'_t + i'_t = 1,
# \qquad h_t = f'_t\, h_{t-1} + i'_t\, \tilde h_t .
# $$
#
# Unrolled, $h_t = \sum_{s=1}^{t} \omega_{t,s}\, \tilde h_s + \omega_{t,0}\, h_0$ with
# $\omega_{t,s} = i'_s \prod_{r=s+1}^{t} f'_r$ (and $i'_0 := 1$). The weights are
# nonnegative, and their total $\Omega_t = \sum_s \omega_{t,s}$ obeys
# $\Omega_t = f'_t\,\Omega_{t-1} + i'_t$ with $\Omega_0 = 1$, so $\Omega_t = 1$ for all $t$:
# **$h_t$ is a convex combination of $h_0$ and the candidates**, and
# $|h_t| \le \max(|h_0|, \max_s |\tilde h_s|)$ whatever the length. Without the
# normalization (an LSTM-style $h_t = f_t h_{t-1} + i_t \tilde h_t$) the total weight
# obeys $\Omega_t = f_t \Omega_{t-1} + i_t$, which climbs towards $i/(1-f)$: with a
# forget gate near 1 the state's scale grows with the sequence length before it
# saturates, and differs between short and long inputs.

# %%
T5, D5, H5 = 4000, 3, 4
p5 = init_minlstm(jax.random.PRNGKey(1), D5, H5)
# Forget gates near 1 (bias +4), input gates ~0.7: the regime where normalization matters.
p5 = MinLSTMParams(
    p5.forget_weight,
    p5.forget_bias + 4.0,
    p5.input_weight,
    p5.input_bias + 1.0,
    p5.candidate_weight,
    p5.candidate_bias,
)
x5 = rng.normal(size=(T5, D5))

gates = minlstm_gates(p5, x5)
f = sigmoid(x5 @ np.asarray(p5.forget_weight).T + np.asarray(p5.forget_bias))
i = sigmoid(x5 @ np.asarray(p5.input_weight).T + np.asarray(p5.input_bias))
assert max_abs_error(gates.forget + gates.input, 1.0) < EXACT
assert (
    max_abs_error(gates.forget, f / (f + i)) < EXACT
    and max_abs_error(gates.input, i / (f + i)) < EXACT
)

h5 = minlstm(p5, x5, mode="sequential")  # h0 = 0
cand5 = x5 @ np.asarray(p5.candidate_weight).T + np.asarray(p5.candidate_bias)
h, h5_loop = np.zeros(H5), []
for t in range(T5):
    h = (f[t] / (f[t] + i[t])) * h + (i[t] / (f[t] + i[t])) * cand5[t]
    h5_loop.append(h)
assert max_abs_error(h5, h5_loop) < EXACT

# Total weight Omega_t: the same scans with candidates and h0 set to 1.
ones = np.ones((T5, H5))
omega_norm = scan.diagonal_scan(gates.forget, gates.input, ones[0], mode="sequential")
omega_raw = scan.diagonal_scan(f, i, ones[0], mode="sequential")
h_raw = scan.diagonal_scan(f, i * cand5, np.zeros(H5), mode="sequential")  # un-normalized cell
assert max_abs_error(omega_norm, 1.0) < EXACT
bound = np.max(np.abs(cand5))  # h0 = 0
assert np.all(np.abs(np.asarray(h5)) <= bound + EXACT)
print(
    f"normalized: Omega_t = 1 to {max_abs_error(omega_norm, 1.0):.1e}; "
    f"max |h_t| = {np.abs(h5).max():.2f} <= max |h~| = {bound:.2f}"
)
print(
    f"un-normalized: Omega_t reaches {np.asarray(omega_raw).max():.1f}; "
    f"max |h_t| = {np.abs(h_raw).max():.2f}"
)
assert np.asarray(omega_raw).max() > 10

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
ts = np.arange(1, T5 + 1)
axes[0].plot(ts, np.asarray(omega_raw)[:, 0], "C3", label="un-normalized $f, i$")
axes[0].plot(ts, np.asarray(omega_norm)[:, 0], "C0", label="minLSTM $f', i'$ (exactly 1)")
axes[0].set(
    xscale="log",
    yscale="log",
    xlabel="$t$",
    ylabel="total weight $\\Omega_t$",
    title="scale of the state vs sequence length (unit 0)",
)
axes[0].legend(fontsize=8)
axes[1].plot(ts, np.asarray(h_raw)[:, 0], "C3", lw=0.8, label="un-normalized")
axes[1].plot(ts, np.asarray(h5)[:, 0], "C0", lw=0.8, label="minLSTM")
axes[1].axhspan(-bound, bound, color="C0", alpha=0.08, label="$\\pm\\max|\\tilde h|$")
axes[1].set(xlabel="$t$", ylabel="$h_t$ (unit 0)", title="the states themselves")
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 6. minLSTM with $i' = z$ is minGRU
#
# minGRU is $h_t = (1 - z_t) h_{t-1} + z_t \tilde h_t$ with $z_t = \sigma(k_t)$,
# $k_t = W_z x_t + b_z$. minLSTM is $h_t = f'_t h_{t-1} + i'_t \tilde h_t$ with
# $f'_t = 1 - i'_t$, so the two coincide exactly when $i'_t = z_t$. Since
# $i' = i/(f+i) = \sigma(\log i - \log f)$, that needs $\log \sigma(u) - \log \sigma(v) = k$
# for the two gate pre-activations $u, v$. One choice makes it exact for every input:
# $u = k$, $v = -k$, because
#
# $$
# \log\sigma(k) - \log\sigma(-k) = \log\frac{1 + e^{k}}{1 + e^{-k}} = k .
# $$
#
# Then $f = \sigma(-k) = 1 - z$ and $i = \sigma(k) = z$ already sum to one, and the
# normalization changes nothing. So: `input` weights $= (W_z, b_z)$, `forget` weights
# $= (-W_z, -b_z)$, same candidate. Conversely, every minLSTM is a minGRU-form recurrence
# with gate $z = \sigma(\log \sigma(u) - \log \sigma(v))$, whose pre-activation is in
# general not affine in $x$: minLSTM's gates are a slightly richer family.

# %%
gru = init_mingru(jax.random.PRNGKey(2), D_in, H)
lstm = MinLSTMParams(
    -gru.gate_weight,
    -gru.gate_bias,
    gru.gate_weight,
    gru.gate_bias,
    gru.candidate_weight,
    gru.candidate_bias,
)
x6 = rng.normal(size=(200, D_in))
z6 = sigmoid(x6 @ np.asarray(gru.gate_weight).T + np.asarray(gru.gate_bias))
assert max_abs_error(minlstm_gates(lstm, x6).input, z6) < EXACT

for space, kw in (("logit", {}), ("log", {"candidate": "g"})):
    h_gru = mingru(gru, x6, space=space, mode="sequential", **kw)
    h_lstm = minlstm(lstm, x6, space=space, mode="sequential", **kw)
    err = max_abs_error(h_gru, h_lstm)
    assert err < EXACT, space
    print(f"space={space!r}: max |minGRU - minLSTM(i' = z)| = {err:.1e}")

# A generic minLSTM is *not* such a minGRU: its gate pre-activation is not affine in x.
pre = np.log(np.asarray(minlstm_gates(p5, x5[:500]).input)) - np.log(
    np.asarray(minlstm_gates(p5, x5[:500]).forget)
)
X1 = np.concatenate([x5[:500], np.ones((500, 1))], axis=1)
resid = pre - X1 @ np.linalg.lstsq(X1, pre, rcond=None)[0]
print(
    f"generic minLSTM: best affine fit of log i' - log f' leaves residual {np.abs(resid).max():.2f}"
)
assert np.abs(resid).max() > 1e-3
print(f"notebook ran in {time.perf_counter() - t_start:.1f} s")
