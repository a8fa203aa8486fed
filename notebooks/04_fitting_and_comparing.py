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
# # Fitting switching models, and comparing trained cells with the exact posterior
#
# The earlier notebooks take the parameters $\theta = (\pi, \rho, \text{emission},
# \text{cue})$ as given. Here they are learned from data (docs/theory.md, section 6), three
# ways, and the learned models are then set against RNN cells:
#
# 1. the data: several sequences of different lengths from the built-in
#    `example_switching_params`, and the likelihood of a padded batch;
# 2. **EM** with closed-form M-steps: the log-likelihood never decreases, and the
#    parameters are recovered up to a permutation of the states (Hungarian matching);
# 3. **gradients** through the forward pass (`fit_mle`) reach the EM optimum, and the EM
#    fixed point is a stationary point of an independently written likelihood;
# 4. **NUTS** over the globals with the discrete chain summed out, with ArviZ
#    diagnostics ($\hat R$, effective sample size, a trace plot);
# 5. a real sequence: the *Arabidopsis* chloroplast genome, segmented by a $K = 2$ model
#    fitted by EM, against the known region boundaries;
# 6. a **trained minGRU** against the exact filter: linear probe $R^2$, CCA, unit matching
#    and readout KL;
# 7. the **direct route**: the minGRU built from a fitted *gated* model is that model's
#    exact filter.
#
# The toolkit computes one side (`switchssm.inference`, `switchssm.rnn`,
# `switchssm.compare`); the other side is written here from the definitions: a NumPy
# forward recursion, finite differences, complete-data counts, Gelman-Rubin by hand.

# %%
import logging
import time
import warnings

import jax

jax.config.update("jax_enable_x64", True)  # likelihood identities are checked to 1e-9

import matplotlib.pyplot as plt
import numpy as np
import scipy.stats as st
from scipy.optimize import linear_sum_assignment

with warnings.catch_warnings():
    # Import-time notices only: ArviZ 0.23 announces its 1.0 refactor, and NumPyro's
    # tqdm.auto asks for ipywidgets when it finds itself in Jupyter.
    warnings.filterwarnings("ignore", message=r"(?s).*ArviZ is undergoing", category=FutureWarning)
    warnings.filterwarnings("ignore", message="IProgress not found")
    import arviz as az

    from switchssm.bridges import mingru_from_model
    from switchssm.bridges import model_inputs
    from switchssm.compare import compare_posteriors
    from switchssm.compare import direct_route_states
    from switchssm.data import CHLOROPLAST_REGION_NAMES
    from switchssm.data import example_switching_params
    from switchssm.data import load_chloroplast
    from switchssm.data import sample_dataset
    from switchssm.fit import fit_em
    from switchssm.fit import fit_mle
    from switchssm.fit import fit_nuts
    from switchssm.inference import batch_log_likelihood
    from switchssm.inference import filter as exact_filter
    from switchssm.inference import smooth
    from switchssm.plots import plot_posterior
    from switchssm.plots import plot_posterior_vs_states
    from switchssm.plots import plot_switch_vs_gates
    from switchssm.rnn import TrainedCell
    from switchssm.rnn import hidden_states
    from switchssm.rnn import init_mingru
    from switchssm.rnn import predict
    from switchssm.rnn import train_cell
    from switchssm.rnn import update_gates

logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)  # ArviZ asks for semibold
t_start = time.perf_counter()


def unpack(params):
    """NumPy copies of the parameters: pi, rho, emission, cue (None if absent), gated."""
    em = params.emission
    if hasattr(em, "probs"):
        emission = ("categorical", np.asarray(em.probs))
    else:
        emission = ("gaussian", (np.asarray(em.means), np.asarray(em.cov)))
    cue = None
    if params.cue is not None:
        cue = (np.asarray(params.cue.means), float(params.cue.scale))
    return np.asarray(params.initial_probs), float(params.switch_prob), emission, cue, params.gated


def np_forward(pi, rho, emission, cue, gated, y, u=None):
    """Log-likelihood and filter P(s_t | x_{1:t}) of one sequence, by a plain NumPy loop.

    alpha_t(k) = sum_z P(z) P(u_t | z) P(s_t = k | p_{t-1}, z) P(y_t | s_t = k, z): copy with
    prob. 1 - rho, fresh draw from pi with prob. rho; gated: y_t ~ Pbar when z_t = 0.
    """
    kind, par = emission
    if kind == "categorical":
        lik = par[:, np.asarray(y)].T  # (T, K)
    else:
        means, cov = par
        lik = np.stack([st.multivariate_normal(m, cov).pdf(y) for m in means], -1)
        lik = lik.reshape(len(y), len(pi))
    w0, w1 = np.full(len(y), 1.0 - rho), np.full(len(y), rho)
    if cue is not None:
        (m0, m1), tau = cue
        w0, w1 = w0 * st.norm(m0, tau).pdf(u), w1 * st.norm(m1, tau).pdf(u)
    p, ll, out = pi, 0.0, np.empty((len(y), len(pi)))
    for t in range(len(y)):
        # The transition sends p to (1 - rho) p + rho pi sum(p); sum(p) = 1 except at t = 1 when
        # pi itself is perturbed (finite differences in section 3), so it is kept.
        if gated:
            a = w0[t] * (lik[t] @ pi) * p + w1[t] * pi * lik[t] * p.sum()
        else:
            a = (w0[t] * p + w1[t] * pi * p.sum()) * lik[t]
        c = a.sum()
        ll += np.log(c)
        p = a / c
        out[t] = p
    return ll, out


def np_loglik(params, ys, us=None):
    """Sum over sequences of the NumPy log-likelihood (each sequence on its own: no padding)."""
    us = [None] * len(ys) if us is None else us
    return sum(np_forward(*unpack(params), y, u)[0] for y, u in zip(ys, us, strict=True))


def match_states(est_features, true_features):
    """perm with est[perm[k]] ~ true[k]: Hungarian assignment on squared distance."""
    cost = ((true_features[:, None, :] - est_features[None, :, :]) ** 2).sum(-1)
    rows, perm = linear_sum_assignment(cost)
    return perm


# %% [markdown]
# ## 1. Data: sequences of different lengths, and the likelihood of a padded batch
#
# The always-emitting model of docs/theory.md section 2, with $K = 3$ states, $V = 4$ symbols
# and a scalar cue:
#
# $$
# s_0 \sim \pi,\quad z_t \sim \mathrm{Bern}(\rho),\quad
# s_t = \begin{cases} s_{t-1} & z_t = 0 \\ \sim \pi & z_t = 1 \end{cases},\quad
# y_t \mid s_t \sim \mathrm{Cat}(B_{s_t \cdot}),\quad u_t \mid z_t \sim \mathcal N(m_{z_t}, \tau^2).
# $$
#
# The log-likelihood is the sum of the forward normalizers, $\log P(x_{1:T}) = \sum_t \log
# c_t$, with
#
# $$
# \alpha_t(k) = \big[(1-\rho)\,\mathcal N(u_t \mid m_0, \tau^2)\, p_{t-1}(k)
#   + \rho\, \mathcal N(u_t \mid m_1, \tau^2)\, \pi_k\big]\, B_{k y_t}, \qquad
# c_t = \sum_k \alpha_t(k), \qquad p_t = \alpha_t / c_t,\quad p_0 = \pi .
# $$
#
# A data set is many sequences of different lengths. The toolkit pads them at the end to one
# length and gives every padded step the log evidence $0$ for every $(z, s)$. The forward
# step there is the bare transition, whose normalizer is
# $c_t = (1-\rho)\sum_k p_{t-1}(k) + \rho \sum_k \pi_k = 1$: padded steps add
# $\log 1 = 0$, so the batched log-likelihood is the sum of the per-sequence ones. The check
# runs the NumPy loop above on each sequence *unpadded*.
#
# Drawing: `sample_dataset` compiles the sampler once per distinct length. The model is
# causal (nothing at step $t$ depends on later steps), so the first $T$ steps of a sample of
# length $900$ are a sample of length $T$; we draw five sequences of length $900$ (one
# compilation) and cut them to five different lengths.

# %%
p_true = example_switching_params("categorical", 3, cue=True, switch_prob=0.05)
K, V = 3, 4
lengths = [700, 450, 900, 300, 650]
raw = sample_dataset(jax.random.PRNGKey(0), p_true, [max(lengths)] * len(lengths))
ys = [y[:T] for (y, u, s, z), T in zip(raw, lengths, strict=True)]
us = [u[:T] for (y, u, s, z), T in zip(raw, lengths, strict=True)]
ss = [s[:T] for (y, u, s, z), T in zip(raw, lengths, strict=True)]
zs = [z[:T] for (y, u, s, z), T in zip(raw, lengths, strict=True)]
n_steps = sum(lengths)

ll_batch = np.asarray(batch_log_likelihood(p_true, ys, us))  # padded to 900 and masked
ll_numpy = np.array([np_forward(*unpack(p_true), y, u)[0] for y, u in zip(ys, us, strict=True)])
# float64 sums of <= 900 logs of O(1) numbers: agreement to ~1e-12 relative is expected.
assert np.max(np.abs(ll_batch - ll_numpy)) < 1e-9
print("lengths:", lengths, f"({n_steps} steps, {sum(int(z.sum()) for z in zs)} switches)")
print("per-sequence log-likelihood, padded batch:", np.round(ll_batch, 4))
print(f"max |padded batch - NumPy loop, unpadded| = {np.max(np.abs(ll_batch - ll_numpy)):.1e}")

# %% [markdown]
# ## 2. EM: monotone, and it recovers the parameters up to a permutation
#
# With the exact smoothed joint $\xi_t(z, k) = P(z_t = z, s_t = k \mid x)$ (forward-backward),
# the expected complete-data log-likelihood is maximized in closed form (the `learn` module
# docstring derives each line):
#
# $$
# \rho = \frac{\sum_t P(z_t = 1 \mid x)}{n}, \qquad
# \pi_k \propto P(s_0 = k \mid x) + \sum_t \xi_t(1, k), \qquad
# B_{kv} \propto \sum_t P(s_t = k \mid x)\,[y_t = v],
# $$
#
# $$
# m_z = \frac{\sum_t P(z_t = z \mid x)\, u_t}{\sum_t P(z_t = z \mid x)}, \qquad
# \tau^2 = \frac1n \sum_{t, z} P(z_t = z \mid x)\,(u_t - m_z)^2,
# $$
#
# sums running over all sequences and real steps ($n$ of them). EM's guarantee: with
# $Q(\theta' \mid \theta) = \mathbb E_{p(h \mid x, \theta)} \log p(x, h \mid \theta')$ and $h$
# the hidden path,
#
# $$
# \ell(\theta') - \ell(\theta) \;\ge\; Q(\theta' \mid \theta) - Q(\theta \mid \theta) \;\ge\; 0
# $$
#
# (the first inequality is Jensen's, with equality at $\theta' = \theta$; the second holds
# because the M-step maximizes $Q$). So every restart's log-likelihood must be
# non-decreasing. The labels of the states are arbitrary: we match fitted states to true
# ones by the Hungarian algorithm on the rows of $B$ before comparing.
#
# As a yardstick for the recovery errors we use the *complete-data* estimates, the counts
# one would make if $s$ and $z$ were observed, and their binomial standard errors.

# %%
t0 = time.perf_counter()
# tol: stop when the relative change is below 1e-11 (the default 1e-8 stops a little
# earlier; the stricter tolerance makes the finite-difference check of section 3 sharp).
em = fit_em(
    ys,
    us,
    num_states=K,
    num_restarts=4,
    num_iters=200,
    tol=1e-11,
    key=jax.random.PRNGKey(1),
    progress=False,
)
t_em = time.perf_counter() - t0
hist = em.history  # (restarts, iterations + 1)

# Monotone: the log-likelihood never decreases, along every restart. (Round-off in a sum
# of n = 3000 logs is ~1e-12 relative; allow 1e-10 relative.)
steps_ll = np.diff(hist, axis=1)
assert np.all(steps_ll >= -1e-10 * np.abs(hist[:, 1:])), steps_ll.min()
assert np.all(em.converged)
# The returned log-likelihood is that of the returned parameters (NumPy loop, unpadded).
ll_em_numpy = np_loglik(em.params, ys, us)
assert abs(ll_em_numpy - em.log_likelihood) < 1e-8
# A maximum of the likelihood is at least as likely as the truth.
ll_true = float(ll_batch.sum())
assert em.log_likelihood >= ll_true
print(f"EM: {hist.shape[1] - 1} iterations x {hist.shape[0]} restarts in {t_em:.1f} s")
print(f"  restart log-likelihoods: {np.round(em.restart_log_likelihoods, 5)}")
print(f"  smallest step: {steps_ll.min():.2e} (never negative)")
print(f"  log-lik: EM {em.log_likelihood:.4f} >= truth {ll_true:.4f}")

# %%
pi_t, rho_t, (_, B_t), ((m0_t, m1_t), tau_t), _ = unpack(p_true)
pi_e, rho_e, (_, B_e), ((m0_e, m1_e), tau_e), _ = unpack(em.params)
perm = match_states(B_e, B_t)
B_em, pi_em = B_e[perm], pi_e[perm]

# Complete-data estimates (s and z observed), and their standard errors.
s_all, z_all, y_all = np.concatenate(ss), np.concatenate(zs), np.concatenate(ys)
counts = np.stack([np.bincount(y_all[s_all == k], minlength=V) for k in range(K)])
n_k = counts.sum(1, keepdims=True)
B_cd, rho_cd = counts / n_k, z_all.mean()
se_B = np.sqrt(B_t * (1 - B_t) / n_k)
se_rho = np.sqrt(rho_t * (1 - rho_t) / n_steps)
z_B, z_rho = (B_em - B_t) / se_B, (rho_e - rho_t) / se_rho
print("true B:\n", B_t, "\nEM B (matched):\n", np.round(B_em, 3))
print(
    f"max |B_EM - B| = {np.abs(B_em - B_t).max():.3f}  "
    f"(complete data: {np.abs(B_cd - B_t).max():.3f}); max |z| = {np.abs(z_B).max():.2f}"
)
print(f"rho: true {rho_t}, EM {rho_e:.4f}, complete data {rho_cd:.4f}; z = {z_rho:.2f}")
print(f"pi: true {pi_t.round(3)}, EM {pi_em.round(3)}")
print(
    f"cue: true m = ({m0_t}, {m1_t}), tau = {tau_t}; EM m = ({m0_e:.3f}, {m1_e:.3f}), "
    f"tau = {tau_e:.3f}"
)
# Recovery within a few *complete-data* standard errors. The latents are not observed, so
# EM's own standard errors are larger (missing information): the bound 5 is loose on purpose.
assert np.abs(z_B).max() < 5 and abs(z_rho) < 5
assert np.all(np.abs(pi_em - pi_t) < 0.15)  # pi is learned from ~150 fresh draws only
assert abs(m0_e - m0_t) < 0.05 and abs(m1_e - m1_t) < 0.2 and abs(tau_e - tau_t) < 0.05

# %%
post = smooth(em.params, ys[0], us[0])
post = post._replace(
    smoothed_s=post.smoothed_s[:, perm], filtered_s=post.filtered_s[:, perm]
)  # fitted labels -> true labels
fig, ax = plt.subplots(figsize=(6, 3.2))
best = hist.max()
for r in range(hist.shape[0]):
    ax.plot(best - hist[r] + 1e-9, "o-", ms=3, label=f"restart {r}")
ax.set(
    yscale="log",
    xlabel="EM iteration",
    ylabel="best log-lik - log-lik (+1e-9)",
    title="EM: log-likelihood rises monotonically",
)
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
fig = plot_posterior(
    post,
    y=ys[0],
    true_s=ss[0],
    true_z=zs[0],
    title="sequence 0: smoothed posterior of the EM fit (states matched)",
)
plt.show()
assert np.mean(np.asarray(post.smoothed_s).argmax(-1) == ss[0]) > 0.9

# %% [markdown]
# ## 3. Gradients reach the EM optimum
#
# `fit_mle` maximizes the same $\ell(\theta) = \sum_n \log P(x^{(n)} \mid \theta)$ by Adam,
# differentiating through the forward pass in unconstrained coordinates ($\pi$ and each row
# of $B$ a softmax, $\rho$ a sigmoid, $\tau$ a softplus), from its own random starts. If both
# find the global maximum they agree up to the optimizers' stopping tolerances (relative
# changes of $10^{-7}$ per 25 Adam steps, $10^{-11}$ per EM step, on $\ell \approx -6\,000$).
#
# An independent check that EM stopped at a stationary point: central finite differences of
# the NumPy likelihood of section 1 at the EM estimate. On the simplex the condition is
# Lagrange's: $\partial \ell / \partial B_{kv}$ is the same for every $v$ of a row (it equals
# $\mathbb E[n_k]$, the expected number of steps in state $k$), likewise
# $\partial \ell / \partial \pi_k$ across $k$; the free parameters
# $\rho, m_0, m_1, \tau$ have zero derivative. So the *projected* gradient (minus the row
# mean on the simplex coordinates) must vanish.

# %%
t0 = time.perf_counter()
mle = fit_mle(
    ys,
    us,
    num_states=K,
    num_restarts=2,
    num_steps=300,
    learning_rate=0.1,
    num_lbfgs_steps=0,
    key=jax.random.PRNGKey(2),
    progress=False,
)
t_mle = time.perf_counter() - t0
gap = mle.log_likelihood - em.log_likelihood
print(
    f"fit_mle: {mle.history.shape[1] - 1} Adam steps in {t_mle:.1f} s; "
    f"log-lik {mle.log_likelihood:.6f} vs EM {em.log_likelihood:.6f} (gap {gap:+.1e})"
)
# Slack: 0.01 nats on l ~ -6000 (3e-6 per step), well above both stopping tolerances.
assert abs(gap) < 1e-2
pi_m, rho_m, (_, B_m), ((m0_m, m1_m), tau_m), _ = unpack(mle.params)
perm_m = match_states(B_m, B_em)
diff_params = max(
    np.abs(B_m[perm_m] - B_em).max(),
    np.abs(pi_m[perm_m] - pi_em).max(),
    abs(rho_m - rho_e),
    abs(m0_m - m0_e),
    abs(m1_m - m1_e),
    abs(tau_m - tau_e),
)
print(f"max |theta_MLE - theta_EM| after matching: {diff_params:.1e}")
assert diff_params < 1e-3


# %%
def np_ll_flat(theta):
    """NumPy log-likelihood of the data as a function of (pi, rho, B, m0, m1, tau) flattened."""
    pi, rho, B = theta[:K], theta[K], theta[K + 1 : K + 1 + K * V].reshape(K, V)
    m0, m1, tau = theta[-3:]
    return sum(
        np_forward(pi, rho, ("categorical", B), ((m0, m1), tau), False, y, u)[0]
        for y, u in zip(ys, us, strict=True)
    )


theta_em = np.concatenate([pi_e, [rho_e], B_e.ravel(), [m0_e, m1_e, tau_e]])
h = 1e-6
grad = np.array(
    [
        (np_ll_flat(theta_em + h * e) - np_ll_flat(theta_em - h * e)) / (2 * h)
        for e in np.eye(len(theta_em))
    ]
)
g_pi, g_rho, g_B, g_free = grad[:K], grad[K], grad[K + 1 : K + 1 + K * V].reshape(K, V), grad[-3:]
projected = np.concatenate(
    [g_pi - g_pi.mean(), [g_rho], (g_B - g_B.mean(1, keepdims=True)).ravel(), g_free]
)
print(f"raw gradient entries up to {np.abs(grad).max():.0f} (the Lagrange multipliers);")
print(f"projected gradient at the EM estimate: max |.| = {np.abs(projected).max():.1e}")
# Finite-difference error ~ eps * |l| / h ~ 1e-6; EM stops at a relative change of 1e-11,
# a few 1e-3 in the slowest direction (rho, whose curvature is ~ n / rho ~ 6e4 per unit^2).
assert np.abs(projected).max() < 0.01
# The multipliers are expected counts. dl/dB_kv = E[n_kv] / B_kv, and at the EM fixed point
# B_kv = E[n_kv] / E[n_k], so the row-k multiplier is E[n_k], the expected time in state k:
# summed over k it is n. Likewise dl/dpi_k = (uses of pi_k) / pi_k, where pi is used once per
# sequence (s_0) and once per switch: the multiplier is N + E[#switches] = N + rho_EM n.
lam_B, lam_pi = g_B.mean(1), g_pi.mean()
print(
    f"multipliers: sum_k lambda_B = {lam_B.sum():.3f} (n = {n_steps}); "
    f"lambda_pi = {lam_pi:.3f} (N + rho n = {len(ys) + rho_e * n_steps:.3f})"
)
assert abs(lam_B.sum() - n_steps) < 0.05
assert abs(lam_pi - (len(ys) + rho_e * n_steps)) < 0.05

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.2))
top = max(hist.max(), mle.history.max())
h_em, h_mle = hist[np.argmax(hist[:, -1])], mle.history[np.argmax(mle.history[:, -1])]
ax.plot(np.arange(1, len(h_em) + 1), top - h_em + 1e-9, "o-", ms=3, label="EM (best restart)")
ax.plot(np.arange(1, len(h_mle) + 1), top - h_mle + 1e-9, label="Adam, fit_mle (best restart)")
ax.set(
    xscale="log",
    yscale="log",
    xlabel="iterate (1 = start)",
    ylabel="gap to the best log-lik (+1e-9)",
    title="same optimum, two routes",
)
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. NUTS over the globals, with ArviZ diagnostics
#
# The Bayesian fit puts priors on $\theta$ ($\pi \sim \mathrm{Dir}(2)$, rows of
# $B \sim \mathrm{Dir}(1)$, $\rho \sim \mathrm{Beta}(1, 9)$) and samples
#
# $$
# p(\theta \mid x) \propto p(\theta)\, P(x \mid \theta),
# $$
#
# where $P(x \mid \theta)$ is the exact forward pass above, added to the NumPyro model as one
# `factor`: the discrete chain is summed out, so plain NUTS applies. The posterior has
# $K!$ symmetric modes (relabelling the states); `fit_nuts` relabels every draw to a pivot
# draw (Hungarian on the emission rows) before ArviZ computes its diagnostics.
#
# A small problem ($K = 2$, one sequence of $T = 200$, two chains of 200 warm-up and 400
# kept draws). Diagnostics: the rank-normalized split $\hat R$ (Vehtari et al. 2021; should
# be close to 1: the chains agree) and the bulk and tail effective sample sizes. $\hat R$ is
# recomputed below from its definition: split each chain in two halves; replace the draws by
# the normal scores of their ranks, $\Phi^{-1}((r - 3/8) / (S + 1/4))$; with $M$ halves of
# length $N$,
#
# $$
# \hat R = \sqrt{\frac{N - 1}{N} + \frac{B}{N\, W}}, \qquad
# B = N \operatorname{Var}_m(\bar\theta_m), \quad W = \operatorname{mean}_m s_m^2,
# $$
#
# and the reported value is the larger of this "bulk" $\hat R$ and the same on the folded
# draws $|\theta - \operatorname{median}\theta|$ ("tail").

# %%
p_small = example_switching_params("categorical", 2, cue=False, switch_prob=0.05)
((y_small, _, s_small, z_small),) = sample_dataset(jax.random.PRNGKey(5), p_small, 200)
t0 = time.perf_counter()
nuts = fit_nuts(
    y_small,
    num_states=2,
    num_warmup=200,
    num_samples=400,
    num_chains=2,
    key=jax.random.PRNGKey(6),
    progress=False,
)
t_nuts = time.perf_counter() - t0
summary = nuts.summary
print(f"NUTS: 2 chains x (200 + 400) in {t_nuts:.1f} s; {int(z_small.sum())} true switches")
print(summary.to_string())

# %%
rho_draws = nuts.samples["switch_prob"]
lo, hi = np.quantile(rho_draws, [0.005, 0.995])
n_div = int(nuts.idata.sample_stats["diverging"].sum())
print(f"true rho = 0.05; 99% posterior interval [{lo:.4f}, {hi:.4f}]; divergences: {n_div}")
assert summary["r_hat"].max() < 1.05
assert summary["ess_bulk"].min() > 100 and summary["ess_tail"].min() > 100
assert lo <= 0.05 <= hi
assert n_div <= 4  # a handful at most (none expected on this smooth target)

# The emission rows too, after matching the posterior mean to the truth.
B_draws = nuts.samples["emission_probs"]
perm_b = match_states(B_draws.mean(0), np.asarray(p_small.emission.probs))
B_lo, B_hi = np.quantile(B_draws[:, perm_b], [0.005, 0.995], axis=0)
inside = (B_lo <= p_small.emission.probs) & (p_small.emission.probs <= B_hi)
print(f"true B inside its 99% intervals: {int(inside.sum())} of {inside.size}")


def normal_scores(x):
    """Phi^-1((rank - 3/8) / (S + 1/4)) over all draws (average ranks for ties)."""
    r = st.rankdata(x, method="average").reshape(x.shape)
    return st.norm.ppf((r - 0.375) / (x.size + 0.25))


def split_rhat(x):
    """Split-R-hat of (chains, draws) after splitting each chain into two halves."""
    n = x.shape[1] // 2
    halves = np.concatenate([x[:, :n], x[:, -n:]], axis=0)
    b_over_n = np.var(halves.mean(1), ddof=1)
    w = np.mean(np.var(halves, axis=1, ddof=1))
    return np.sqrt((n - 1) / n + b_over_n / w)


def rank_rhat(x):
    bulk = split_rhat(normal_scores(x))
    tail = split_rhat(normal_scores(np.abs(x - np.median(x))))
    return max(bulk, tail)


rho_chains = nuts.idata.posterior["switch_prob"].values  # (chain, draw)
rhat_ours = rank_rhat(rho_chains)
rhat_az = float(az.rhat(nuts.idata, var_names=["switch_prob"])["switch_prob"])
print(f"R-hat of rho: by hand {rhat_ours:.6f}, ArviZ {rhat_az:.6f}")
assert abs(rhat_ours - rhat_az) < 1e-10

# %%
axes = az.plot_trace(
    nuts.idata, var_names=["switch_prob", "initial_probs"], compact=True, figsize=(10, 4)
)
axes[0, 0].axvline(0.05, color="k", ls="--", lw=1)
axes[0, 0].set_title("switch_prob (dashed: true 0.05)")
plt.gcf().tight_layout()
plt.show()
ax = az.plot_posterior(
    nuts.idata, var_names=["switch_prob"], hdi_prob=0.99, ref_val=0.05, figsize=(5, 3)
)
plt.show()

# %% [markdown]
# ## 5. A real sequence: the chloroplast genome of *Arabidopsis thaliana*
#
# The genome (154,478 bases) has four regions: a large single-copy region (LSC, GC fraction
# 0.34), an inverted repeat (IRb, 0.42), a small single-copy region (SSC, 0.29) and the
# second copy of the repeat (IRa, 0.42). Its first 20,000 bases all lie inside the LSC, so a
# window there has no boundary to find; and EM on tens of thousands of single bases costs
# seconds per restart, mostly to model base-scale fluctuations (genes, strands). We keep it
# cheap and coarse-grain instead: the whole genome in blocks of 100 bases, each block one
# symbol, its GC fraction binned at $0.30, 0.36, 0.42$ into $V = 4$ levels (about the
# quartiles), so $T = 1544$. A $K = 2$ switching model fitted by EM should find a GC-rich
# and an AT-rich state whose segments follow the region boundaries.
#
# Checks: the fit against the NumPy likelihood; the switching model against the iid
# model (the $K = 1$ case, maximum likelihood in closed form:
# $\sum_v n_v \log(n_v / n)$), which it contains and so must beat; and the segmentation
# against the published boundaries.

# %%
cp = load_chloroplast()
BLOCK = 100
n_blocks = len(cp.symbols) // BLOCK
gc_frac = np.isin(cp.symbols[: n_blocks * BLOCK], [1, 2]).reshape(n_blocks, BLOCK).mean(1)
y_cp = np.searchsorted([0.30, 0.36, 0.42], gc_frac, side="right")  # 0 (AT-rich) .. 3 (GC-rich)
region_of_block = cp.regions[: n_blocks * BLOCK].reshape(n_blocks, BLOCK)[:, BLOCK // 2]
t0 = time.perf_counter()
em_cp = fit_em(
    y_cp, num_states=2, num_restarts=3, num_iters=200, key=jax.random.PRNGKey(3), progress=False
)
t_cp = time.perf_counter() - t0
assert np.all(np.diff(em_cp.history, axis=1) >= -1e-10 * np.abs(em_cp.history[:, 1:]))
assert abs(np_loglik(em_cp.params, [y_cp]) - em_cp.log_likelihood) < 1e-8
n_v = np.bincount(y_cp, minlength=4)
ll_iid = float(np.sum(n_v * np.log(n_v / n_v.sum())))
assert em_cp.log_likelihood > ll_iid
B_cp = np.asarray(em_cp.params.emission.probs)
gc_state = int(np.argmax(B_cp @ np.arange(4)))  # the state emitting higher GC levels
print(f"EM on {n_blocks} blocks in {t_cp:.1f} s; rho = {float(em_cp.params.switch_prob):.3f}")
print(
    f"log-lik {em_cp.log_likelihood:.1f} vs iid {ll_iid:.1f}: "
    f"+{(em_cp.log_likelihood - ll_iid) / n_blocks:.3f} nats per block"
)
print(
    "emission over GC levels (rows: AT-rich, GC-rich state):\n",
    np.round(B_cp[[1 - gc_state, gc_state]], 3),
)

post_cp = smooth(em_cp.params, y_cp)
p_gc = np.asarray(post_cp.smoothed_s)[:, gc_state]
changes_kb = (np.flatnonzero(np.diff((p_gc > 0.5).astype(int))) + 1) * BLOCK / 1000
bounds_kb = cp.region_bounds[1:-1] / 1000
print("| region | bases | GC fraction | mean P(GC-rich state) |")
print("|---|---|---|---|")
mean_p = {}
for r, name in enumerate(CHLOROPLAST_REGION_NAMES):
    sel = region_of_block == r
    mean_p[name] = p_gc[sel].mean()
    print(f"| {name} | {sel.sum() * BLOCK} | {gc_frac[sel].mean():.3f} | {mean_p[name]:.2f} |")
nearest = [np.min(np.abs(changes_kb - b)) for b in bounds_kb]
print("distance of the nearest inferred change to each boundary (kb):", np.round(nearest, 2))
# The repeats are GC-rich and the small single-copy region AT-rich, and each of the three
# boundaries has an inferred change within 2 kb (20 blocks).
assert mean_p["IRb"] > 0.7 and mean_p["IRa"] > 0.7 and mean_p["SSC"] < 0.1
assert max(nearest) < 2.0

# %%
fig, ax = plt.subplots(figsize=(11, 3.4))
kb = (np.arange(n_blocks) + 0.5) * BLOCK / 1000
for r, name in enumerate(CHLOROPLAST_REGION_NAMES):
    a, b = cp.region_bounds[r] / 1000, cp.region_bounds[r + 1] / 1000
    ax.axvspan(a, b, color=f"C{r}", alpha=0.12, lw=0)
    ax.text((a + b) / 2, 1.03, name, ha="center", fontsize=9)
ax.plot(kb, gc_frac, color="0.6", lw=0.5, label="GC fraction of the block")
ax.plot(kb, p_gc, color="C3", lw=1.0, label="P(GC-rich state | all blocks), EM fit")
for b in bounds_kb:
    ax.axvline(b, color="k", lw=0.8, ls="--")
ax.set(
    xlim=(0, kb[-1]),
    ylim=(0, 1.1),
    xlabel="position (kb)",
    title="chloroplast genome: K = 2 segmentation vs the published region boundaries",
)
ax.legend(fontsize=8, loc="lower left")
fig.tight_layout()
plt.show()

# %% [markdown]
# The single-copy regions are not uniform: the LSC holds GC-rich stretches of its own
# (tRNA and ribosomal-protein genes), which the two-state model labels GC-rich, while the
# SSC is AT-rich throughout. The repeats are picked out as one long GC-rich segment each,
# with their edges close to the published ones.

# %% [markdown]
# ## 6. A minGRU trained on the latent, compared with the exact posterior
#
# For the always-emitting model the exact filter is *not* a minGRU: its switch posterior
# depends on the previous belief (docs/theory.md 2, fact 4). How close does a generic minGRU get
# when trained by supervision on the true $s_t$ (cross-entropy of a linear readout)? Inputs
# $x_t = [\mathrm{onehot}(y_t), u_t]$, $H = 8$ units, 60 fresh sequences of length 200 from
# the same model (48 for training, of which `train_cell` holds out 20% for validation; 12
# for the comparison). The comparison (`compare_posteriors`) against the exact filter
# $p_t = P(s_t \mid x_{1:t})$ of the true model:
#
# * **probe $R^2$**: a ridge regression from $h_t$ to $\operatorname{clr}(p_t) = \log p_t -
#   \overline{\log p_t}$ (coordinates in which Bayes updates are linear), held out by
#   sequence;
# * **CCA**: canonical correlations between $h_t$ and $\operatorname{clr}(p_t)$ ($K - 1 = 2$
#   of them);
# * **unit matching**: each state $k$ gets one unit (Hungarian on the correlation of
#   $h_{tj}$ with $p_t(k)$);
# * **readout KL**: $\mathrm{KL}(p_t \,\|\, q_t)$ of the cell's own readout $q_t$, in nats.
#
# Two references: a minGRU of the same size with random initial weights, and the minGRU
# *built from the true model* (the direct route of section 7), which is exact only for the
# gated model and here an approximation.

# %%
raw_rnn = sample_dataset(jax.random.PRNGKey(10), p_true, [200] * 60)
ys_r = [d[0] for d in raw_rnn]
us_r = [d[1] for d in raw_rnn]
s_r = np.stack([d[2] for d in raw_rnn])
X_r = np.stack([np.asarray(model_inputs(p_true, y, u)) for y, u in zip(ys_r, us_r, strict=True)])
filt_r = [exact_filter(p_true, y, u) for y, u in zip(ys_r, us_r, strict=True)]
P_r = np.stack([np.asarray(f.filtered_s) for f in filt_r])
pz_r = np.stack([np.asarray(f.filtered_z) for f in filt_r])
n_train, H_DIM = 48, 8
test = slice(n_train, None)

t0 = time.perf_counter()
trained = train_cell(
    jax.random.PRNGKey(11),
    "mingru",
    X_r[:n_train],
    s_r[:n_train],
    task="latent",
    hidden_dim=H_DIM,
    num_steps=300,
    batch_size=16,
    learning_rate=0.03,
    progress=False,
)
t_train = time.perf_counter() - t0
print(
    f"trained in {t_train:.1f} s; held-out metrics: "
    f"{ {k: round(v, 3) for k, v in trained.metrics.items()} }"
)

H_test, Q_test = hidden_states(trained, X_r[test]), predict(trained, X_r[test])
untrained = trained._replace(
    params=TrainedCell(
        init_mingru(jax.random.PRNGKey(11), X_r.shape[-1], H_DIM), trained.params.readout
    )
)
log_direct = direct_route_states(p_true, ys_r[n_train:], us_r[n_train:])  # (12, 200, K)
reports = {
    "trained minGRU (H = 8)": compare_posteriors(P_r[test], H_test, readout_probs=Q_test),
    "untrained minGRU (H = 8)": compare_posteriors(P_r[test], hidden_states(untrained, X_r[test])),
    "minGRU built from the model (H = K)": compare_posteriors(
        P_r[test], log_direct, readout_probs=np.exp(log_direct)
    ),
}
acc = {
    "exact filter": np.mean(P_r[test].argmax(-1) == s_r[test]),
    "trained readout": np.mean(Q_test.argmax(-1) == s_r[test]),
    "built from model": np.mean(log_direct.argmax(-1) == s_r[test]),
}
print("| cell | probe R^2 | CCA | matched corr. | readout KL (nats) |")
print("|---|---|---|---|---|")
for name, rep in reports.items():
    kl = "-" if rep.readout_kl is None else f"{rep.readout_kl:.3f}"
    print(
        f"| {name} | {rep.probe_r2:.3f} | {np.round(rep.canonical_correlations, 3)} | "
        f"{rep.mean_matched_correlation:.3f} | {kl} |"
    )
print("accuracy of the MAP state:", {k: round(float(v), 3) for k, v in acc.items()})

rep = reports["trained minGRU (H = 8)"]
assert rep.probe_r2 > 0.8 and rep.canonical_correlations.min() > 0.9
assert rep.probe_r2 > reports["untrained minGRU (H = 8)"].probe_r2 + 0.05
assert rep.readout_kl < 0.1
assert acc["trained readout"] > acc["exact filter"] - 0.03  # close to the Bayes-optimal reader
assert acc["trained readout"] <= acc["exact filter"] + 0.02  # and not better (up to noise)
# Built from the always-emitting model, the minGRU is only an approximation, and a poor one.
assert reports["minGRU built from the model (H = K)"].readout_kl > 5 * rep.readout_kl

# %% [markdown]
# Three readings of the table:
#
# * The trained cell's states are, up to a linear map, close to the exact posterior (probe
#   $R^2 \approx 0.9$, canonical correlations $\approx 0.95$) and its readout is a few
#   hundredths of a nat from it, with a MAP accuracy a point below the Bayes-optimal filter.
# * A *random* minGRU already does much of this ($R^2 \approx 0.78$): its units are gated
#   running averages of the one-hot inputs, and the posterior here is mostly a function of
#   the recent symbol counts, so random averages are a good linear basis (reservoir
#   computing). Its units even match single states slightly better, being positive averages
#   of one symbol each; training mixes the posterior across units, so the one-to-one matched
#   correlation is the weakest of the four measures, and the linear ones are the ones to read.
# * The minGRU *built* from the always-emitting model is poor (KL $\approx 0.6$ nats): its
#   gate is the cue-only switch posterior, while the exact gate also weighs how surprising
#   $y_t$ is under the current belief (docs/theory.md 2, fact 4). Training finds a better cell
#   than the naive construction.
#
# The heatmap shows the posterior of one held-out sequence above the z-scored states of the
# trained cell, matched units first; below it, the cell's update gates against the exact
# switch posterior $P(z_t = 1 \mid x_{1:t})$: the mean gate peaks at the switches.

# %%
match = rep.matched_units
order = list(match) + [j for j in range(H_DIM) if j not in set(match)]
fig = plot_posterior_vs_states(
    P_r[test],
    H_test,
    true_s=s_r[test],
    sequence=0,
    unit_order=order,
    title="exact filter (top) vs trained minGRU states (bottom)",
)
plt.show()
gates = update_gates(trained, X_r[test])
fig = plot_switch_vs_gates(
    pz_r[test], gates, sequence=0, title="switch posterior vs the trained cell's update gates"
)
plt.show()
r_gate = np.corrcoef(pz_r[test].ravel(), gates.mean(-1).ravel())[0, 1]
print(f"correlation of the mean gate with P(z_t = 1 | x_1:t) over all test steps: {r_gate:.3f}")
assert r_gate > 0.5

# %% [markdown]
# ## 7. The direct route: the minGRU built from a fitted gated model is its exact filter
#
# In the **gated** model ($y_t$ carries information about $s_t$ only when $z_t = 1$) the
# exact filter is (docs/theory.md 2, facts 1-2)
#
# $$
# p_t = (1 - g_t)\, p_{t-1} + g_t\, q_t, \qquad
# g_t = \sigma\big(\operatorname{logit}\rho + \log\mathcal N(u_t \mid m_1) - \log\mathcal N(u_t
#   \mid m_0)\big), \qquad q_t = \operatorname{softmax}(\log\pi + l_t),
# $$
#
# a positive-state minGRU whose gate is a logistic regression of $u_t$ and whose candidate
# is the naive-Bayes posterior of $y_t$. `mingru_from_model` reads these weights off *any*
# parameters, so it applies to a fitted model as well.
#
# Fitting the gated model: its likelihood factorizes into two iid mixtures, $\bar P(y_t)$
# and the cue mixture $(1 - \rho)\mathcal N(u_t \mid m_0) + \rho\,\mathcal N(u_t \mid m_1)$
# (the `fit_em` docstring). With a categorical emission the first is just a categorical
# distribution over single symbols, which leaves $B$ unidentified, so we use a Gaussian
# emission ($K = 3$ means $-4, 0, 4$, unit variance) whose mixture is identified up to the
# labels. The exact filter of the fitted model is computed three ways: `filter`, the
# minGRU built from it (`direct_route_states`), and the NumPy forward recursion of section 1,
# which knows nothing of gates or candidates.

# %%
p_gated = example_switching_params(
    "gaussian", 3, gated=True, cue=True, switch_prob=0.1, emission_dim=1, separation=4.0
)
raw_g = sample_dataset(jax.random.PRNGKey(20), p_gated, [200] * 20)
ys_g, us_g = [d[0] for d in raw_g], [d[1] for d in raw_g]
t0 = time.perf_counter()
em_g = fit_em(
    ys_g,
    us_g,
    num_states=3,
    emission="gaussian",
    gated=True,
    num_restarts=3,
    num_iters=200,
    key=jax.random.PRNGKey(21),
    progress=False,
)
t_g = time.perf_counter() - t0
assert np.all(np.diff(em_g.history, axis=1) >= -1e-10 * np.abs(em_g.history[:, 1:]))
means_g = np.asarray(em_g.params.emission.means)
perm_g = match_states(means_g, np.asarray(p_gated.emission.means))
print(
    f"gated EM in {t_g:.1f} s: means {np.round(means_g[perm_g, 0], 3)} (true -4, 0, 4), "
    f"var {float(em_g.params.emission.cov[0, 0]):.3f}, "
    f"rho {float(em_g.params.switch_prob):.3f} (true 0.1), "
    f"cue means {np.round(np.asarray(em_g.params.cue.means), 3)} (true 0, 1.5)"
)
assert np.abs(means_g[perm_g, 0] - np.array([-4.0, 0.0, 4.0])).max() < 0.2
assert abs(float(em_g.params.switch_prob) - 0.1) < 0.03

cell_probs = direct_route_states(em_g.params, ys_g, us_g, log=False)  # (20, 200, 3)
filter_probs = np.stack(
    [
        np.asarray(exact_filter(em_g.params, y, u).filtered_s)
        for y, u in zip(ys_g, us_g, strict=True)
    ]
)
numpy_probs = np.stack(
    [np_forward(*unpack(em_g.params), y, u)[1] for y, u in zip(ys_g, us_g, strict=True)]
)
err_cell = np.abs(cell_probs - filter_probs).max()
err_numpy = np.abs(cell_probs - numpy_probs).max()
print(f"max |built minGRU - filter| = {err_cell:.1e}; max |built minGRU - NumPy| = {err_numpy:.1e}")
assert err_cell < 1e-10 and err_numpy < 1e-10

# The built cell's gate row is the logistic regression of the cue written above:
# w = (m1 - m0) / tau^2, c = logit rho + (m0^2 - m1^2) / (2 tau^2), the same for every unit.
_, rho_g, _, ((gm0, gm1), gtau), _ = unpack(em_g.params)
cell = mingru_from_model(em_g.params).cell
w_expected = (gm1 - gm0) / gtau**2
c_expected = np.log(rho_g / (1 - rho_g)) + (gm0**2 - gm1**2) / (2 * gtau**2)
assert np.allclose(np.asarray(cell.gate_weight)[:, -1], w_expected, rtol=1e-12, atol=0)
assert np.allclose(np.asarray(cell.gate_weight)[:, :-1], 0.0, rtol=0, atol=0)  # y is not read
assert np.allclose(np.asarray(cell.gate_bias), c_expected, rtol=1e-12, atol=1e-12)
print(f"gate of the built cell: w = {w_expected:.3f}, c = {c_expected:.3f} (every unit)")

# %%
fig, axes = plt.subplots(2, 1, figsize=(10, 4.2), sharex=True)
t_ax = np.arange(200)
for k in range(3):
    axes[0].plot(t_ax, filter_probs[0, :, perm_g[k]], color=f"C{k}", lw=2.5, alpha=0.35)
    axes[0].plot(
        t_ax,
        cell_probs[0, :, perm_g[k]],
        "--",
        color=f"C{k}",
        lw=0.9,
        label=f"state mean {[-4, 0, 4][k]}",
    )
axes[0].set(
    ylabel="P(s_t | x_1:t)", title="fitted gated model: filter (thick) = built minGRU (dashed)"
)
axes[0].legend(fontsize=8, ncol=3, loc="upper right")
axes[1].plot(t_ax, ys_g[0][:, 0], ".", ms=3, color="0.3", label="y")
axes[1].plot(t_ax, us_g[0], color="C1", lw=0.8, label="cue u")
axes[1].plot(
    np.flatnonzero(raw_g[0][3]),
    np.full(int(raw_g[0][3].sum()), 6.0),
    "|",
    color="C3",
    ms=8,
    label="true switches",
)
axes[1].set(xlabel="t")
axes[1].legend(fontsize=8, ncol=3, loc="lower right")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Summary
#
# | claim | checked against | result |
# |---|---|---|
# | padded batch log-likelihood = sum over sequences | NumPy forward loop, unpadded | $< 10^{-9}$ |
# | EM never decreases the log-likelihood | its history, every restart | monotone |
# | EM recovers $\theta$ up to a permutation | truth, complete-data standard errors | $< 5$ s.e. |
# | gradients (Adam) reach the EM optimum | `fit_em` | $< 10^{-2}$ nats, $\theta$ to $10^{-3}$ |
# | the EM estimate is a stationary point | finite differences of the NumPy likelihood | projected gradient $\approx 0$ |
# | NUTS: chains agree, truth covered | ArviZ $\hat R$ (recomputed by hand), ESS; true $\rho$ | $\hat R < 1.05$, $\rho$ in the 99% interval |
# | chloroplast: K = 2 segments follow the regions | published boundaries; iid model | within 2 kb |
# | trained minGRU states ~ exact posterior | probe, CCA, unit matching, KL | $R^2 > 0.8$, KL $< 0.1$ |
# | minGRU built from a fitted gated model = its filter | `filter`, NumPy forward | $< 10^{-10}$ |

# %%
elapsed = time.perf_counter() - t_start
print(f"notebook ran in {elapsed:.1f} s")
