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
# # Recurrent layers as state-space models
#
# A path from attention to Mamba, each step computed two ways and asserted:
#
# 1. linearized attention and its recurrent form (and random features for the softmax);
# 2. the general recurrent layer $s_i = f(s_{i-1}, x_i)$, $h_i = g(s_i, x_i)$: Elman and Li-GRU;
# 3. linear (LTI) state-space layers as a long convolution and as a scan;
# 4. diagonalization and the LRU;
# 5. associative scans: the six-element tree, the dense operator giving $(A^i, s_i)$;
# 6. selective SSMs and the Mamba block;
# 7. probabilistic readings: the Kalman filter is a linear recurrent layer, linear
#    attention's memories are sufficient statistics (a count model), and S6's keep gate is
#    the switch posterior of the selective row (exact where the theory says, a gap where not).
#
# Every reference below is written here with NumPy from the equations.

# %%
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from switchssm import rnn
from switchssm import scan
from switchssm.bridges import attention as attn_bridge
from switchssm.bridges import kalman
from switchssm.bridges import mamba
from switchssm.bridges import model_inputs
from switchssm.inference import filter as exact_filter
from switchssm.models import CategoricalEmission
from switchssm.models import GaussianCue
from switchssm.models import SwitchingParams
from switchssm.verify import max_abs_error
from switchssm.verify import with_separation

EXACT = 1e-10  # float64 identities
rng = np.random.default_rng(0)
t_start = time.perf_counter()


# %% [markdown]
# ## 1. Linearized attention
#
# Self-attention with a similarity $\alpha$ is $h_i = \sum_j \alpha(q_i, k_j) v_j / \sum_j
# \alpha(q_i, k_j)$. With a kernel $\alpha(q, k) = \phi(q)^\top\phi(k)$ the query's features
# leave the sum, and the causal version ($j \le i$) is
#
# $$
# h_i = \frac{\phi(q_i)^\top S_i}{\phi(q_i)^\top z_i}, \qquad
# S_i = S_{i-1} + \phi(k_i) v_i^\top, \quad z_i = z_{i-1} + \phi(k_i), \quad S_0 = 0,\ z_0 = 0:
# $$
#
# a recurrence with an $E \times H$ state, constant work per token. We compute the literal
# masked sum in NumPy and compare the layer's three forms: `parallel` (masked $n\times n$),
# `recurrent` (the memories), `chunked` (parallel inside chunks, recurrent across).

# %%
n, D, H = 40, 4, 3
x = rng.standard_normal((n, D))
p_att = rnn.init_linear_attention(jax.random.PRNGKey(0), D, H)
Wq, Wk, Wv = (np.asarray(w) for w in (p_att.query_weight, p_att.key_weight, p_att.value_weight))
phi = lambda a: np.where(a > 0, a + 1, np.exp(np.minimum(a, 0)))  # elu + 1

masked = np.array(
    [
        sum(phi(Wq @ x[i]) @ phi(Wk @ x[j]) * (Wv @ x[j]) for j in range(i + 1))
        / sum(phi(Wq @ x[i]) @ phi(Wk @ x[j]) for j in range(i + 1))
        for i in range(n)
    ]
)
forms = {
    f: rnn.linear_attention(p_att, x, form=f, chunk_size=7)
    for f in ("parallel", "recurrent", "chunked")
}
for f, h in forms.items():
    print(f"{f:9s} max |h - masked sum| = {max_abs_error(h, masked):.1e}")
    assert max_abs_error(h, masked) < EXACT

# %% [markdown]
# **Softmax attention through random features.** With standard normal rows $\omega_m$,
# $\phi(x) = \exp(\Omega x - \|x\|^2/2)/\sqrt M$ satisfies $E[\phi(q)^\top\phi(k)] = e^{q^\top k}$
# (the Gaussian moment generating function). Linear attention with these features
# approaches causal softmax attention as $M$ grows; the Monte Carlo error shrinks like
# $M^{-1/2}$.

# %%
q_all, k_all, v_all = 0.5 * x @ Wq.T, 0.5 * x @ Wk.T, x @ Wv.T
scores = np.exp(q_all @ k_all.T) * np.tril(np.ones((n, n)))
softmax_attn = scores @ v_all / scores.sum(1, keepdims=True)
half = rnn.LinearAttentionParams(0.5 * Wq, 0.5 * Wk, Wv, np.zeros((1, H)))
errs = {}
for M in (64, 1024, 16384):
    omega = np.random.default_rng(M).standard_normal((M, H))
    h = rnn.linear_attention(half.replace(feature_projection=omega), x, feature_map="random")
    errs[M] = max_abs_error(h, softmax_attn)
    print(f"M = {M:5d}: max |random-feature attention - softmax attention| = {errs[M]:.3f}")
assert errs[16384] < errs[64] and errs[16384] < 0.1

# %% [markdown]
# ## 2. The general recurrent layer: Elman and Li-GRU
#
# Any recurrent layer is $s_i = f(s_{i-1}, x_i)$, $h_i = g(s_i, x_i)$. Elman's vanilla layer
# takes $f = \tanh(A s + B x)$; the light GRU adds one gate. The lecture writes its gate
# $\gamma$ on the *update*, $f = \gamma \odot \tilde s + (1 - \gamma) \odot s$; the package's
# `ligru` follows Ravanelli et al.'s convention $z = 1 - \gamma$ on the *old* state. Both cells
# read $s_{i-1}$ inside the nonlinearity, so they run step by step.

# %%
pe = rnn.init_elman(jax.random.PRNGKey(1), D, H)
A_e, B_e, b_e = (
    np.asarray(w) for w in (pe.candidate_recurrent, pe.candidate_weight, pe.candidate_bias)
)
s, ref = np.zeros(H), []
for x_t in x:
    s = np.tanh(A_e @ s + B_e @ x_t + b_e)
    ref.append(s)
assert max_abs_error(rnn.elman(pe, x), ref) < EXACT

pl = rnn.init_ligru(jax.random.PRNGKey(2), D, H)
g = {
    f: np.asarray(getattr(pl, f))
    for f in (
        "gate_weight",
        "gate_recurrent",
        "gate_bias",
        "candidate_weight",
        "candidate_recurrent",
        "candidate_bias",
    )
}
s, ref = np.zeros(H), []
for x_t in x:
    gamma = 1 / (1 + np.exp(-(g["gate_weight"] @ x_t + g["gate_recurrent"] @ s + g["gate_bias"])))
    gamma = 1 - gamma  # the lecture's gate on the update
    cand = np.tanh(g["candidate_weight"] @ x_t + g["candidate_recurrent"] @ s + g["candidate_bias"])
    s = gamma * cand + (1 - gamma) * s
    ref.append(s)
assert max_abs_error(rnn.ligru(pl, x, activation="tanh"), ref) < EXACT
print("Elman and Li-GRU equal their loops")

# %% [markdown]
# ## 3. LTI state-space layers: a long convolution and a scan
#
# Without the nonlinearity, $s_i = A s_{i-1} + B x_i$, $h_i = C s_i + D x_i$ has the closed form
# $s_i = \sum_{j \le i} A^{i-j} B x_j$, so $h = K * x + D x$ with the kernel
# $K_m = C A^m B$ as long as the sequence (the lecture's $K$ in reverse order). `lti` computes
# it as a scan (sequential, or a parallel prefix scan), as an FFT convolution, or chunked: the
# convolution inside chunks of a few steps and the recurrence across them, carrying only the
# state that enters each chunk.

# %%
N = 5
A = rng.standard_normal((N, N))
A = 0.9 * A / np.max(np.abs(np.linalg.eigvals(A)))
p_lti = rnn.LTIParams(
    A, rng.standard_normal((N, D)), rng.standard_normal((H, N)), rng.standard_normal((H, D))
)
Bm, Cm, Dm = (np.asarray(w) for w in (p_lti.input_weight, p_lti.output_weight, p_lti.feedthrough))
closed = np.array(
    [
        sum(Cm @ np.linalg.matrix_power(A, i - j) @ Bm @ x[j] for j in range(i + 1)) + Dm @ x[i]
        for i in range(n)
    ]
)
for label, h in [
    ("scan, sequential", rnn.lti(p_lti, x, mode="sequential")),
    ("scan, parallel", rnn.lti(p_lti, x, mode="parallel")),
    ("FFT convolution", rnn.lti(p_lti, x, form="convolution")),
    ("chunked (3 steps)", rnn.lti(p_lti, x, form="chunked", chunk_size=3)),
]:
    print(f"{label:17s} max |h - closed form| = {max_abs_error(h, closed):.1e}")
    assert max_abs_error(h, closed) < EXACT
K = np.asarray(rnn.convolution_kernel(p_lti, n))
plt.figure(figsize=(5, 2.5))
plt.semilogy(np.linalg.norm(K.reshape(n, -1), axis=1), label="$\\|C A^m B\\|$")
plt.semilogy(0.9 ** np.arange(n) * np.linalg.norm(K[0]), "--", label="$0.9^m$ (spectral radius)")
plt.xlabel("lag m")
plt.legend()
plt.title("the convolution kernel decays with the spectral radius")
plt.tight_layout()

# %% [markdown]
# ## 4. Diagonalization and the LRU
#
# If $A = P\Lambda P^{-1}$, the state $\bar s = P^{-1} s$ obeys $\bar s_i = \Lambda \bar s_{i-1} +
# P^{-1}B x_i$ and $h_i = CP \bar s_i + D x_i$: one complex multiply-add per state. For real
# $A$ the eigenvalues come in conjugate pairs and the readout's imaginary part cancels. A
# Jordan block has no such $P$: `diagonalize` refuses it, or diagonalizes $A + \delta G$
# (exact for the perturbed matrix, $O(\delta)$ away from $A$'s layer).

# %%
d_lti = rnn.diagonalize(p_lti)
assert max_abs_error(rnn.lti_diagonal(d_lti, x), closed) < EXACT
jordan = p_lti.replace(transition=jnp.asarray(0.6 * np.eye(N) + np.eye(N, k=1)))
try:
    rnn.diagonalize(jordan)
    raise AssertionError("a Jordan block must be refused")
except ValueError as e:
    print("refused:", str(e)[:90], "...")
ref_j = np.asarray(rnn.lti(jordan, x))
gaps = {
    d: max_abs_error(rnn.lti_diagonal(rnn.diagonalize(jordan, perturbation=d), x), ref_j)
    for d in (1e-4, 1e-6)
}
print("perturbed-diagonalization error:", {k: f"{v:.1e}" for k, v in gaps.items()})
assert gaps[1e-6] < gaps[1e-4]

# %% [markdown]
# The LRU trains the diagonal form directly: $\lambda = \exp(-e^{\nu_{\log}} + i e^{\theta_{\log}})$
# keeps $|\lambda| < 1$ for every parameter value; $\gamma = \sqrt{1 - |\lambda|^2}$ normalizes
# each state's impulse response to unit energy; the ring initialization draws $|\lambda|^2$
# uniformly between $r_{\min}^2$ and $r_{\max}^2$.

# %%
p_lru = rnn.init_lru(
    jax.random.PRNGKey(3), D, H, state_dim=400, r_min=0.6, r_max=0.95, max_phase=np.pi
)
lam = np.asarray(rnn.lru_eigenvalues(p_lru))
assert np.all(np.abs(lam) < 1) and np.all(np.abs(lam) >= 0.6 - 1e-12)
gamma = np.exp(np.asarray(p_lru.gamma_log))
assert max_abs_error(gamma**2 / (1 - np.abs(lam) ** 2), 1.0) < 1e-12  # unit-energy normalization
for mode in ("sequential", "parallel"):
    assert (
        max_abs_error(rnn.lru(p_lru, x, mode=mode), rnn.lti_diagonal(rnn.lru_to_diagonal(p_lru), x))
        < EXACT
    )
fig, ax = plt.subplots(figsize=(3, 3))
ax.plot(lam.real, lam.imag, ".", ms=3)
t = np.linspace(0, 2 * np.pi, 200)
for r in (0.6, 0.95, 1.0):
    ax.plot(r * np.cos(t), r * np.sin(t), "k", lw=0.5)
ax.set_aspect("equal")
ax.set_title("LRU ring initialization")

# %% [markdown]
# ## 5. Associative scans
#
# The six-element example of the lecture: pairs first, then the second level, then the
# last two, 7 applications in 3 parallel rounds instead of 5 sequential ones. With the
# dense operator $(Z, z) \star (V, v) = (VZ, Vz + v)$ and elements $(A, Bx_i)$, the prefixes
# are $(A^i, s_i)$.


# %%
def star(first, second):
    (Z, z), (V, v) = first, second
    return V @ Z, V @ z + v


els = [(A, Bm @ x[i]) for i in range(6)]
S1, S2, S3 = star(els[0], els[1]), star(els[2], els[3]), star(els[4], els[5])  # round 1
P3, O1 = star(S1, els[2]), star(S1, S2)  # round 2
P5, P6 = star(O1, els[4]), star(O1, S3)  # round 3
tree = [els[0], S1, P3, O1, P5, P6]
s, seq = np.zeros(N), []
for i in range(6):
    s = A @ s + Bm @ x[i]
    seq.append(s)
for i, (Ai, si) in enumerate(tree):
    assert (
        max_abs_error(Ai, np.linalg.matrix_power(A, i + 1)) < EXACT
        and max_abs_error(si, seq[i]) < EXACT
    )
# the package's dense prefix scan is the same algebra over the whole sequence
assert (
    max_abs_error(
        scan.dense_scan(np.broadcast_to(A, (n, N, N)), x @ Bm.T, mode="parallel"),
        scan.dense_scan(np.broadcast_to(A, (n, N, N)), x @ Bm.T, mode="sequential"),
    )
    < EXACT
)
print("tree prefixes = (A^i, s_i)")

# %% [markdown]
# ## 6. Selective SSMs and the Mamba block
#
# Linear attention without its denominator, $h_i = \phi(q_i)^\top S_i$, is an SSM whose readout
# $C_i = \phi(q_i)^\top$ depends on the token: the memory is a diagonal recurrence with
# $a = 1$ over the $E H$ entries of $S$. Selective SSMs make $A, B, C$ token dependent; Mamba's
# S6 uses per-channel steps $\Delta_t = \mathrm{softplus}(W_\Delta x_t + b)$, the zero-order hold
# $\bar A = e^{\Delta A}$, $\bar B = (e^{\Delta A} - 1)A^{-1} B_t$ of a diagonal $A < 0$.

# %%
fq = np.asarray(rnn.attention_features(x @ Wq.T))
fk = np.asarray(rnn.attention_features(x @ Wk.T))
outer = (fk[:, :, None] * (x @ Wv.T)[:, None, :]).reshape(n, -1)
S_t = np.asarray(scan.diagonal_scan(np.ones_like(outer), outer)).reshape(n, H, H)
assert (
    max_abs_error(np.einsum("te,teh->th", fq, S_t), rnn.linear_attention(p_att, x, normalize=False))
    < EXACT
)

p_s6 = rnn.init_s6(jax.random.PRNGKey(4), D, 3)
A6 = -np.exp(np.asarray(p_s6.log_rate))
s, ref = np.zeros((D, 3)), []
for x_t in x:
    delta = np.logaddexp(0, np.asarray(p_s6.step_weight) @ x_t + np.asarray(p_s6.step_bias))[
        :, None
    ]
    b_t = np.asarray(p_s6.input_weight) @ x_t + np.asarray(p_s6.input_bias)
    c_t = np.asarray(p_s6.output_weight) @ x_t + np.asarray(p_s6.output_bias)
    s = np.exp(delta * A6) * s + (np.exp(delta * A6) - 1) / A6 * b_t * x_t[:, None]
    ref.append(s @ c_t + np.asarray(p_s6.skip) * x_t)
for mode in ("sequential", "parallel"):
    assert max_abs_error(rnn.s6(p_s6, x, mode=mode), ref) < EXACT
p_mb = rnn.init_mamba(jax.random.PRNGKey(5), D, H)
assert (
    max_abs_error(rnn.mamba(p_mb, x, mode="sequential"), rnn.mamba(p_mb, x, mode="parallel"))
    < EXACT
)
print(
    "S6 equals its loop; Mamba's sequential and parallel scans agree; out", rnn.mamba(p_mb, x).shape
)

# %% [markdown]
# ## 7. Probabilistic readings
#
# ### The Kalman filter is a linear recurrent layer
#
# For $z_t = A z_{t-1} + w_t$, $y_t = C z_t + v_t$ the filtered mean is
# $m_t = (I - K_t C) A m_{t-1} + K_t y_t$, and the gains $K_t$ come from the Riccati recursion,
# which never reads $y$: a time-varying linear recurrence with input-independent coefficients.
# At the steady-state gain it is an LTI layer $s_t = \Phi s_{t-1} + K y_t$,
# $\Phi = (I - KC)A$, which approaches the exact filter like $\rho(\Phi)^t$ (and its gains like
# $\rho(\Phi)^{2t}$: the linearized Riccati map is $X \mapsto \Phi X \Phi^\top$).

# %%
Nk, Mk, Tk = 3, 2, 120
Ak = rng.standard_normal((Nk, Nk))
Ak = 0.95 * Ak / np.max(np.abs(np.linalg.eigvals(Ak)))
L = rng.standard_normal((Nk, Nk))
Qk, Ck, Rk, mu0 = (
    L @ L.T / Nk + 0.1 * np.eye(Nk),
    rng.standard_normal((Mk, Nk)),
    0.5 * np.eye(Mk),
    3 * rng.standard_normal(Nk),
)
lg = kalman.LGSSMParams(mu0, 2 * np.eye(Nk), Ak, Qk, Ck, Rk)
yk = rng.standard_normal((Tk, Mk))
m, P, textbook = mu0, 2 * np.eye(Nk), []
for t, y_t in enumerate(yk):
    if t:
        m, P = Ak @ m, Ak @ P @ Ak.T + Qk
    S = Ck @ P @ Ck.T + Rk
    Kg = P @ Ck.T @ np.linalg.inv(S)
    m, P = m + Kg @ (y_t - Ck @ m), P - Kg @ S @ Kg.T
    textbook.append(m)
assert max_abs_error(kalman.kalman_filter_means(lg, yk), textbook) < EXACT
assert max_abs_error(kalman.kalman_filter_means(lg, yk, mode="parallel"), textbook) < EXACT
rates = kalman.convergence_rates(lg, yk)
print(
    f"rho(Phi) = {rates['contraction']:.4f}, fitted mean-gap rate {rates['mean_rate']:.4f}; "
    f"rho^2 = {rates['riccati_contraction']:.4f}, fitted gain-gap rate {rates['gain_rate']:.4f}"
)
assert abs(rates["mean_rate"] / rates["contraction"] - 1) < 0.05
assert abs(rates["gain_rate"] / rates["riccati_contraction"] - 1) < 0.05
plt.figure(figsize=(5, 2.5))
tt = np.arange(Tk)
plt.semilogy(rates["mean_gap"], label="|steady-state layer - filter|")
plt.semilogy(rates["gain_gap"], label="|K_t - K|")
plt.semilogy(rates["mean_gap"][3] * rates["contraction"] ** (tt - 3), "k--", lw=0.7, label="rho^t")
plt.semilogy(
    rates["gain_gap"][3] * rates["riccati_contraction"] ** (tt - 3), "k:", lw=0.7, label="rho^2t"
)
plt.ylim(1e-16, 10)
plt.legend(fontsize=7)
plt.tight_layout()

# %% [markdown]
# ### Linear attention accumulates sufficient statistics
#
# With one-hot keys and queries and the identity feature map, $z_t[c]$ counts key $c$ and
# $S_t[c]$ sums its values: the normalized layer returns the conditional mean of the values
# given the query's key, and with memories started at $(\alpha m, \alpha)$ the posterior mean
# under a $\mathrm{Dirichlet}(\alpha m)$ prior. The no-switch row of the cell-to-model table is
# the unnormalized layer with values $l_t$ (see `switchssm.bridges.attention`).

# %%
Kc, Vc, Tc, alpha = 3, 4, 50, 2.0
keys = rng.integers(0, Kc, Tc)
vals = rng.integers(0, Vc, Tc)
bridge = attn_bridge.count_attention(Kc, Vc, prior_strength=alpha)
h = np.asarray(bridge(attn_bridge.count_attention_inputs(keys, keys, np.eye(Vc)[vals], Kc)))
counted = np.array(
    [
        (alpha / Vc + np.bincount(vals[: t + 1][keys[: t + 1] == keys[t]], minlength=Vc))
        / (alpha + np.sum(keys[: t + 1] == keys[t]))
        for t in range(Tc)
    ]
)
assert max_abs_error(h, counted) < EXACT
print(
    "count model: attention = Dirichlet posterior mean, max error",
    f"{max_abs_error(h, counted):.1e}",
)

# %% [markdown]
# ### S6's keep gate is the switch posterior
#
# With $A = -1$ and $\Delta_t = \mathrm{softplus}(k_t)$ ($k_t$ the switch logit of the cue),
# $e^{\Delta_t A} = \sigma(-k_t) = 1 - g_t$ exactly, and the zero-order hold gives
# $\bar B_t = g_t$: S6 becomes the logit-space minGRU, the exact filter of the gated model when
# gates are hard. The always-emitting model needs its evidence added ungated, which S6's drive
# cannot do: there the gap is measured.

# %%
B_em = np.random.default_rng(7).dirichlet(np.full(4, 2.0), size=3)
pi = np.array([0.5, 0.3, 0.2])
base = SwitchingParams(pi, 0.2, CategoricalEmission(B_em), GaussianCue(np.array([-0.4, 0.4]), 0.8))


def draw(p, T, r):
    z = r.random(T) < 0.2
    s, prev = np.empty(T, int), r.choice(3, p=pi)
    for t in range(T):
        prev = s[t] = r.choice(3, p=pi) if z[t] else prev
    emitter = np.where(z, s, r.choice(3, size=T, p=pi)) if p.gated else s
    y = np.array([r.choice(4, p=B_em[e]) for e in emitter])
    return y, np.asarray(p.cue.means)[z.astype(int)] + 0.8 * r.standard_normal(T)


def kl(p, q):
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.mean(np.sum(np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0), -1)))


rows = {}
for sep in (1.0, 3.0, 60.0):
    for gated in (True, False):
        p = with_separation(base, sep, gated=gated)  # cue separation d = sep
        y, u = draw(p, 200, np.random.default_rng(int(sep)))
        belief = mamba.s6_posterior(mamba.s6_from_model(p), model_inputs(p, y, u))
        rows[(sep, gated)] = kl(np.asarray(exact_filter(p, y, u).filtered_s), np.asarray(belief))
for (sep, gated), v in rows.items():
    print(f"d = {sep:4.0f}, {'gated ' if gated else 'always'}: mean KL(exact || S6) = {v:.2e}")
assert rows[(60.0, True)] < 1e-12  # exact: hard gates, gated model
assert rows[(60.0, False)] > 1e-2  # the always-emitting model's ungated evidence is lost
print(f"notebook ran in {time.perf_counter() - t_start:.1f} s")
