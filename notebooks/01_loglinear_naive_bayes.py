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
# # Log-linear models are naive-Bayes posteriors
#
# A linear layer followed by a softmax can be read two ways: as a *discriminative*
# model of $P(c \mid x)$ (softmax or logistic regression), or as the *posterior* of a
# generative classifier $P(c)\,P(x \mid c)$. This notebook derives the map between the
# two (docs/theory.md, section 1), in both directions, and checks every identity numerically
# against an independent computation (Bayes' rule by hand, `scipy.stats` densities,
# scikit-learn):
#
# 1. categorical inputs: $W = \log B$, $b = \log P(c)$;
# 2. Gaussian inputs with one shared covariance: $W_c = S^{-1}\mu_c$;
# 3. the inverse maps, and what the posterior does *not* identify;
# 4. unequal covariances: the posterior is quadratic, and a linear map is wrong;
# 5. learning: logistic regression against naive Bayes mapped to logistic weights, on
#    well-specified and misspecified data (Ng & Jordan, 2001).
#
# Everything uses `switchssm.bridges.naive_bayes`; the other side of every check is
# written here from the definitions.

# %%
import time
import warnings

import jax

jax.config.update("jax_enable_x64", True)  # exact identities are checked to 1e-12

import matplotlib.pyplot as plt
import numpy as np
import scipy.special as sps
import scipy.stats as st
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

from switchssm.bridges import SoftmaxRegression
from switchssm.bridges import categorical_nb_to_softmax
from switchssm.bridges import fit_gaussian_nb
from switchssm.bridges import gaussian_nb_to_logistic
from switchssm.bridges import gaussian_nb_to_softmax
from switchssm.bridges import gaussian_nb_unequal_to_quadratic
from switchssm.bridges import softmax_to_categorical_nb
from switchssm.bridges import softmax_to_gaussian_nb
from switchssm.verify import max_abs_error

EXACT = 1e-12  # tolerance for every exact identity below (float64, well-conditioned)
rng = np.random.default_rng(0)
t_start = time.perf_counter()


def bayes_posterior(log_joint):
    """P(c | x) from log P(c) + log P(x | c), normalized over the last axis."""
    return np.exp(log_joint - sps.logsumexp(log_joint, axis=-1, keepdims=True))


# %% [markdown]
# ## 1. The posterior of a generative classifier is a linear function plus a constant
#
# For any generative classifier, Bayes' rule gives
#
# $$
# \log P(c \mid x) = \log P(x \mid c) + \log P(c) - \log \sum_{c'} P(x \mid c')\,P(c'),
# $$
#
# and the last term does not depend on $c$: it is absorbed by the softmax. So whenever
# $\log P(x \mid c)$ is *linear in some features of $x$, up to a class-independent
# term*, the posterior is a softmax regression on those features.
#
# **Categorical inputs.** Let $x \in \{1, \dots, V\}$ be one symbol, written as a one-hot
# vector $e_x$, with $P(x = v \mid c) = B_{cv}$. Then
# $\log P(x \mid c) = \sum_v (e_x)_v \log B_{cv} = (\log B\, e_x)_c$, so
#
# $$
# P(c \mid x) = \operatorname{softmax}(W e_x + b)_c, \qquad W = \log B,\quad b = \log P(c).
# $$
#
# The same weights read a *bag* of $T$ symbols drawn independently given $c$ (naive
# Bayes over a sequence): $\log P(c \mid x_{1:T}) = b_c + \sum_t (W e_{x_t})_c + \text{const}
# = (W n + b)_c + \text{const}$, with $n = \sum_t e_{x_t}$ the vector of counts. This is
# the "cumulative evidence" row of the cell-to-model table (docs/theory.md, section 5).

# %%
C, V = 3, 6
class_probs = rng.dirichlet(2.0 * np.ones(C))
emission_probs = rng.dirichlet(np.ones(V), size=C)  # B, one row per class

sm = categorical_nb_to_softmax(class_probs, emission_probs)

# Other side: Bayes' rule by hand, P(c | x = v) = P(c) B[c, v] / sum_c' P(c') B[c', v].
joint = class_probs[:, None] * emission_probs  # (C, V)
posterior_by_hand = (joint / joint.sum(axis=0)).T  # (V, C)

assert max_abs_error(sm.weights, np.log(emission_probs)) < EXACT
assert max_abs_error(sm.bias, np.log(class_probs)) < EXACT
assert max_abs_error(sm.posterior(np.eye(V)), posterior_by_hand) < EXACT

# A bag of T symbols: the same softmax applied to the counts.
T = 40
symbols = rng.integers(0, V, size=T)
counts = np.bincount(symbols, minlength=V).astype(float)
log_joint_seq = np.log(class_probs) + np.log(emission_probs[:, symbols]).sum(axis=1)
err_seq = max_abs_error(sm.posterior(counts), bayes_posterior(log_joint_seq))
assert err_seq < EXACT
print(
    f"one symbol: max |softmax - Bayes| = {max_abs_error(sm.posterior(np.eye(V)), posterior_by_hand):.1e}"
)
print(f"bag of {T} symbols (softmax of counts): max error = {err_seq:.1e}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
im = axes[0].imshow(emission_probs, cmap="viridis", aspect="auto")
axes[0].set(
    title="emission probabilities $B$", xlabel="symbol $v$", ylabel="class $c$", yticks=range(C)
)
fig.colorbar(im, ax=axes[0])
im = axes[1].imshow(np.asarray(sm.weights), cmap="magma", aspect="auto")
axes[1].set(
    title="softmax weights $W = \\log B$", xlabel="symbol $v$", ylabel="class $c$", yticks=range(C)
)
fig.colorbar(im, ax=axes[1])
bottom = np.zeros(V)
for c in range(C):
    axes[2].bar(np.arange(V), posterior_by_hand[:, c], bottom=bottom, label=f"c = {c}")
    axes[2].plot(np.arange(V), bottom + np.asarray(sm.posterior(np.eye(V)))[:, c], "k_", ms=18)
    bottom += posterior_by_hand[:, c]
axes[2].set(title="$P(c \\mid x = v)$: bars Bayes, ticks softmax", xlabel="symbol $v$")
axes[2].legend(fontsize=8, loc="lower right")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 2. Gaussian inputs with a shared covariance
#
# With $x \mid c \sim \mathcal N(\mu_c, S)$,
#
# $$
# \log \mathcal N(x \mid \mu_c, S) = \mu_c^\top S^{-1} x - \tfrac12 \mu_c^\top S^{-1}\mu_c
# \;\underbrace{-\;\tfrac12 x^\top S^{-1} x
#   - \tfrac12 \log\det(2\pi S)}_{\text{same for every class}},
# $$
#
# so the posterior logits are affine in $x$:
#
# $$
# \mathrm{logits}_c = W_c^\top x + b_c, \qquad W_c = S^{-1}\mu_c, \qquad
# b_c = \log P(c) - \tfrac12 \mu_c^\top S^{-1} \mu_c .
# $$
#
# With two classes, subtracting the logits of class 0 gives logistic regression,
# $P(c = 1 \mid x) = \sigma(w^\top x + b)$ with
#
# $$
# w = S^{-1}(\mu_1 - \mu_0), \qquad
# b = \log\frac{P_1}{P_0} - \tfrac12\left(\mu_1^\top S^{-1}\mu_1 - \mu_0^\top S^{-1}\mu_0\right).
# $$
#
# (Seed 000 writes the scalar case as the log-odds of class 0 against class 1, i.e.
# $-w, -b$; here the positive direction favours class 1.) The other side of the check is
# `scipy.stats.multivariate_normal` and Bayes' rule.

# %%
D = 2
means = np.array([[0.0, 0.0], [2.5, 0.5], [0.5, 2.5]])
A = rng.standard_normal((D, D))
cov = A @ A.T / D + 0.6 * np.eye(D)
class_probs_g = np.array([0.5, 0.3, 0.2])

sm_g = gaussian_nb_to_softmax(class_probs_g, means, cov)

x_test = rng.normal(1.0, 2.0, size=(2000, D))
log_joint = np.log(class_probs_g) + np.stack(
    [st.multivariate_normal(m, cov).logpdf(x_test) for m in means], axis=-1
)
err_softmax = max_abs_error(sm_g.posterior(x_test), bayes_posterior(log_joint))
assert err_softmax < EXACT
assert max_abs_error(sm_g.weights, np.linalg.solve(cov, means.T).T) < EXACT

# Two classes: logistic regression.
lr_g = gaussian_nb_to_logistic(class_probs_g[:2] / class_probs_g[:2].sum(), means[:2], cov)
# (Dropping class 2 and renormalizing the prior adds one constant to both log joints.)
p1_scipy = bayes_posterior(log_joint[:, :2])[:, 1]
p1_logistic = sps.expit(x_test @ np.asarray(lr_g.weight) + float(lr_g.bias))
assert max_abs_error(p1_logistic, p1_scipy) < EXACT
assert max_abs_error(lr_g.weight, np.linalg.solve(cov, means[1] - means[0])) < EXACT
print(f"3-class softmax vs scipy Bayes: max error {err_softmax:.1e}")
print(f"2-class logistic vs scipy Bayes: max error {max_abs_error(p1_logistic, p1_scipy):.1e}")
print(
    "logistic weights w =", np.round(np.asarray(lr_g.weight), 4), " b =", round(float(lr_g.bias), 4)
)

# %% [markdown]
# The figure shows samples from the generative model with its covariance ellipses and the
# posterior computed by the softmax regression: the regions where each class has the
# largest posterior are separated by straight lines, as they must be when the logits are
# affine.


# %%
def grid(lo, hi, n=200):
    g1, g2 = np.meshgrid(np.linspace(lo, hi, n), np.linspace(lo, hi, n))
    return g1, g2, np.stack([g1.ravel(), g2.ravel()], axis=-1)


def ellipse(ax, mean, cov, **kw):
    vals, vecs = np.linalg.eigh(cov)
    t = np.linspace(0, 2 * np.pi, 100)
    pts = mean[:, None] + 2 * vecs @ (np.sqrt(vals)[:, None] * np.stack([np.cos(t), np.sin(t)]))
    ax.plot(pts[0], pts[1], **kw)


colors = ["C0", "C1", "C2"]
g1, g2, pts = grid(-4, 6)
post = np.asarray(sm_g.posterior(pts)).reshape(*g1.shape, C)
labels = rng.choice(C, size=300, p=class_probs_g)
samples = means[labels] + rng.standard_normal((300, D)) @ np.linalg.cholesky(cov).T

fig, ax = plt.subplots(figsize=(5.5, 5))
ax.contourf(g1, g2, post.argmax(-1), levels=[-0.5, 0.5, 1.5, 2.5], colors=colors, alpha=0.15)
cs = ax.contour(g1, g2, post.max(-1), levels=[0.5, 0.8, 0.95], colors="k", linewidths=0.6)
ax.clabel(cs, fontsize=7)
for c in range(C):
    ax.scatter(*samples[labels == c].T, s=6, color=colors[c], label=f"class {c}")
    ellipse(ax, means[c], cov, color=colors[c], lw=1.5)
ax.set(
    title="shared covariance: affine logits, straight boundaries", xlabel="$x_1$", ylabel="$x_2$"
)
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 3. The inverse, and what the posterior does not identify
#
# A softmax regression $(W, b)$ is the posterior of a whole *family* of generative
# models; the posterior leaves these free:
#
# * **Shifts.** For every vector $a$ and scalar $k$,
#   $$\operatorname{softmax}(Wx + b) = \operatorname{softmax}\big((W + \mathbf 1 a^\top)x
#   + b + k\mathbf 1\big):$$
#   the rows of $W$ are identified only up to a common shift.
# * **Gaussian case: $S$ is free.** For *any* SPD $S$, set $\mu_c = S W_c$; then
#   $S^{-1}\mu_c = W_c$ and the logits are $W_c^\top x + \log P(c) - \tfrac12 W_c^\top S W_c$.
#   Choosing $P(c) \propto \exp(b_c + \tfrac12 W_c^\top S W_c)$ recovers $b$ up to a
#   constant. The *canonical inverse* fixes $S$ (identity unless given).
# * **Categorical case: the symbol marginal is free.** The posterior is unchanged by a
#   per-symbol shift $W_{cv} \to W_{cv} + k_v$, and every $k \in \mathbb R^V$ gives a valid
#   model $B_{cv} \propto e^{W_{cv} + k_v}$, $P(c) \propto e^{b_c}\sum_v e^{W_{cv} + k_v}$.
#   The free $k$ is exactly the marginal $P(x = v)$: given that marginal the model is
#   unique.
#
# The checks: every member of the family is a *different* generative model whose Bayes
# posterior, computed by hand, is the *same* function.

# %%
# A softmax regression learned from data carries arbitrary shifts: per-symbol column
# shifts k_v of W and a constant on b. Emulate that, then invert.
k_true = rng.normal(size=V)
sm_learned = SoftmaxRegression(sm.weights + k_true[None, :], sm.bias + 1.7)
assert max_abs_error(sm_learned.posterior(np.eye(V)), posterior_by_hand) < EXACT  # same posterior

# Three members of the family, indexed by the symbol marginal they are given.
true_marginal = class_probs @ emission_probs
marginals = {
    "canonical (k = 0)": None,
    "true marginal": true_marginal,
    "uniform marginal": np.full(V, 1.0 / V),
}
family = {
    name: softmax_to_categorical_nb(sm_learned.weights, sm_learned.bias, symbol_probs=m)
    for name, m in marginals.items()
}
for name, nb in family.items():
    # Bayes' rule by hand on the returned generative model.
    joint_nb = np.asarray(nb.class_probs)[:, None] * np.asarray(nb.emission_probs)
    post_nb = (joint_nb / joint_nb.sum(axis=0)).T
    assert max_abs_error(post_nb, posterior_by_hand) < EXACT, name
    if marginals[name] is not None:
        marginal_nb = np.asarray(nb.class_probs) @ np.asarray(nb.emission_probs)
        assert max_abs_error(marginal_nb, marginals[name]) < EXACT, name
    print(
        f"{name:>18}: max |B - B_true| = {max_abs_error(nb.emission_probs, emission_probs):.3f}, "
        f"posterior error {max_abs_error(post_nb, posterior_by_hand):.1e}"
    )
# Given the true symbol marginal, the inverse is the original model, exactly.
assert max_abs_error(family["true marginal"].emission_probs, emission_probs) < EXACT
assert max_abs_error(family["true marginal"].class_probs, class_probs) < EXACT
# The other two are genuinely different generative models.
assert max_abs_error(family["canonical (k = 0)"].emission_probs, emission_probs) > 0.05
assert max_abs_error(family["uniform marginal"].emission_probs, emission_probs) > 0.05

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), sharey=True, layout="constrained")
vmax = max(float(np.max(nb.emission_probs)) for nb in family.values())
for ax, (name, nb) in zip(axes, family.items(), strict=True):
    im = ax.imshow(np.asarray(nb.emission_probs), cmap="viridis", vmin=0, vmax=vmax)
    ax.set(title=name, xlabel="symbol $v$", yticks=range(C))
axes[0].set_ylabel("class $c$")
fig.colorbar(im, ax=axes, shrink=0.8)
fig.suptitle("emission matrices $B$ of three generative models with one posterior $P(c \\mid x)$")
plt.show()

# %%
# Gaussian: the canonical inverse for several covariances, and for shifted rows.
covs_to_try = {
    "S = I (canonical)": None,
    "S = true S": cov,
    "S = [[0.5, -0.3], [-0.3, 2]]": np.array([[0.5, -0.3], [-0.3, 2.0]]),
}
inverses = {}
for name, S in covs_to_try.items():
    nb = softmax_to_gaussian_nb(sm_g.weights, sm_g.bias, cov=S)
    inverses[name] = nb
    lj = np.log(np.asarray(nb.class_probs)) + np.stack(
        [
            st.multivariate_normal(np.asarray(m), np.asarray(nb.cov)).logpdf(x_test)
            for m in nb.means
        ],
        -1,
    )
    err = max_abs_error(bayes_posterior(lj), sm_g.posterior(x_test))
    assert err < EXACT, name
    print(
        f"{name:>28}: means {np.round(np.asarray(nb.means), 2).tolist()}, posterior error {err:.1e}"
    )
# With the true S the inverse returns the original model.
assert max_abs_error(inverses["S = true S"].means, means) < EXACT
assert max_abs_error(inverses["S = true S"].class_probs, class_probs_g) < EXACT

# Shifting every row of W by a moves every mean by S a and changes nothing observable.
a_shift = np.array([1.0, -2.0])
nb_shift = softmax_to_gaussian_nb(np.asarray(sm_g.weights) + a_shift, sm_g.bias, cov=cov)
assert max_abs_error(nb_shift.means, means + cov @ a_shift) < EXACT
assert (
    max_abs_error(gaussian_nb_to_softmax(*nb_shift).posterior(x_test), sm_g.posterior(x_test))
    < EXACT
)

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 4.3), sharex=True, sharey=True)
for ax, (name, nb) in zip(axes, inverses.items(), strict=True):
    m_nb, S_nb = np.asarray(nb.means), np.asarray(nb.cov)
    lab = rng.choice(C, size=300, p=np.asarray(nb.class_probs))
    smp = m_nb[lab] + rng.standard_normal((300, D)) @ np.linalg.cholesky(S_nb).T
    for c in range(C):
        ax.scatter(*smp[lab == c].T, s=5, color=colors[c], alpha=0.6)
        ellipse(ax, m_nb[c], S_nb, color=colors[c], lw=1.5)
    # The posterior of *this* model, by scipy + Bayes: the contour lines coincide.
    lj = np.log(np.asarray(nb.class_probs)) + np.stack(
        [st.multivariate_normal(m, S_nb).logpdf(pts) for m in m_nb], -1
    )
    post_nb = bayes_posterior(lj).reshape(*g1.shape, C)
    for c in range(C):
        ax.contour(g1, g2, post_nb[..., c], levels=[0.5, 0.9], colors=colors[c], linewidths=0.8)
    ax.set(title=name, xlim=(-4, 6), ylim=(-4, 6), xlabel="$x_1$")
axes[0].set_ylabel("$x_2$")
fig.suptitle(
    "different data (samples, 2-sigma ellipses), identical posteriors: "
    "contours $P(c \\mid x) = 0.5, 0.9$ (scipy + Bayes on each model)"
)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Unequal covariances: the posterior is quadratic
#
# With $x \mid c \sim \mathcal N(\mu_c, S_c)$ and precision $P_c = S_c^{-1}$,
#
# $$
# \mathrm{logits}_c = x^\top Q_c x + w_c^\top x + b_c, \qquad
# Q_c = -\tfrac12 P_c, \quad w_c = P_c \mu_c, \quad
# b_c = \log P(c) - \tfrac12 \mu_c^\top P_c \mu_c - \tfrac12 \log\det S_c .
# $$
#
# The term $x^\top Q_c x$ now differs between classes, so it no longer cancels: the
# posterior is log-linear in the features $(x x^\top, x, 1)$, not in $x$. No softmax
# regression on $x$ equals it. The toolkit refuses the linear map (a `ValueError` that
# points to the quadratic one) rather than returning a wrong answer. To see *how* wrong
# a linear map would be, we build the one a careless user might: pool the covariances
# ($\bar S = \sum_c P(c) S_c$) and apply the shared-covariance formula.

# %%
covs = np.stack(
    [
        np.array([[1.0, 0.0], [0.0, 1.0]]),
        np.array([[4.0, 1.5], [1.5, 1.0]]),
        np.array([[0.3, 0.0], [0.0, 3.0]]),
    ]
)
means_u = np.array([[0.0, 0.0], [2.0, 1.0], [0.5, 2.0]])

try:
    gaussian_nb_to_softmax(class_probs_g, means_u, covs)
    raise AssertionError("a stack of covariances must be refused")
except ValueError as e:
    print("ValueError:", e)

quad = gaussian_nb_unequal_to_quadratic(class_probs_g, means_u, covs)

# Other side: scipy densities + Bayes' rule, on samples from the model itself.
lab_u = rng.choice(C, size=4000, p=class_probs_g)
x_u = np.stack([rng.multivariate_normal(means_u[c], covs[c]) for c in lab_u])
lj_u = np.log(class_probs_g) + np.stack(
    [st.multivariate_normal(means_u[c], covs[c]).logpdf(x_u) for c in range(C)], -1
)
p_true = bayes_posterior(lj_u)
err_quad = max_abs_error(quad.posterior(x_u), p_true)
assert err_quad < EXACT

# The quadratic posterior *is* a softmax regression on the features (vec(x x'), x).
features = np.concatenate([np.einsum("ni,nj->nij", x_u, x_u).reshape(len(x_u), -1), x_u], axis=1)
as_softmax = SoftmaxRegression(
    np.concatenate([np.asarray(quad.quad).reshape(C, -1), np.asarray(quad.linear)], axis=1),
    quad.bias,
)
assert max_abs_error(as_softmax.posterior(features), p_true) < EXACT

# The wrong linear map: pooled covariance.
pooled = np.einsum("c,cij->ij", class_probs_g, covs)
p_lin = np.asarray(gaussian_nb_to_softmax(class_probs_g, means_u, pooled).posterior(x_u))
kl_lin = np.sum(p_true * (np.log(p_true) - np.log(p_lin)), axis=-1)
acc_true = np.mean(p_true.argmax(-1) == lab_u)
acc_lin = np.mean(p_lin.argmax(-1) == lab_u)
print(f"quadratic map vs scipy Bayes: max error {err_quad:.1e}")
print(
    f"pooled linear map: max |P_lin - P_true| = {max_abs_error(p_lin, p_true):.3f}, "
    f"mean KL(P_true || P_lin) = {kl_lin.mean():.3f} nats"
)
print(f"accuracy: Bayes (quadratic) {acc_true:.3f}, pooled linear {acc_lin:.3f}")
assert max_abs_error(p_lin, p_true) > 0.3 and kl_lin.mean() > 0.05  # the linear map is badly wrong

# %% [markdown]
# In one dimension the failure is easy to see. Two classes with nearby means and very
# different variances: the Bayes posterior $P(c = 1 \mid x)$ is U-shaped (class 1, the
# wide one, wins in *both* tails), which no sigmoid of an affine function can draw. The
# pooled linear map, and even the best logistic regression (fitted by scikit-learn on
# $2\times 10^5$ samples), are monotone, so they are wrong on one side; the quadratic map
# is exact.

# %%
pi_1d = np.array([0.5, 0.5])
means_1d = np.array([[0.0], [1.0]])
covs_1d = np.array([[[1.0]], [[9.0]]])
xs = np.linspace(-8, 8, 400)[:, None]
lj_1d = np.log(pi_1d) + np.stack(
    [st.norm(means_1d[c, 0], np.sqrt(covs_1d[c, 0, 0])).logpdf(xs[:, 0]) for c in range(2)], -1
)
p1_true = bayes_posterior(lj_1d)[:, 1]
p1_quad = np.asarray(gaussian_nb_unequal_to_quadratic(pi_1d, means_1d, covs_1d).posterior(xs))[:, 1]
p1_pooled = np.asarray(
    gaussian_nb_to_logistic(pi_1d, means_1d, np.array([[pi_1d @ covs_1d[:, 0, 0]]])).posterior(xs)
)[:, 1]
assert max_abs_error(p1_quad, p1_true) < EXACT

lab_1d = rng.integers(0, 2, size=200_000)
x_1d = means_1d[lab_1d, 0] + np.sqrt(covs_1d[lab_1d, 0, 0]) * rng.standard_normal(len(lab_1d))
best_linear = SkLogisticRegression(C=1e6).fit(x_1d[:, None], lab_1d)
p1_best_linear = best_linear.predict_proba(xs)[:, 1]

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(xs[:, 0], p1_true, "k", lw=3, alpha=0.3, label="Bayes (scipy)")
ax.plot(xs[:, 0], p1_quad, "C0--", label="quadratic map (exact)")
ax.plot(xs[:, 0], p1_pooled, "C3", label="pooled-covariance linear map")
ax.plot(xs[:, 0], p1_best_linear, "C1", label="best logistic regression (sklearn)")
ax.set(
    xlabel="$x$",
    ylabel="$P(c=1 \\mid x)$",
    title="$\\mathcal{N}(0, 1)$ vs $\\mathcal{N}(1, 9)$: the posterior is not a sigmoid",
)
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
print(f"max error of the best logistic regression: {max_abs_error(p1_best_linear, p1_true):.2f}")
assert max_abs_error(p1_best_linear, p1_true) > 0.3

# %% [markdown]
# ## 5. Learning: naive Bayes converges faster, logistic regression is better asymptotically
#
# Ng & Jordan (2001, "On discriminative vs. generative classifiers") compared the two
# members of such a pair as *learners*: fit the generative model by maximum likelihood
# and map it to logistic weights (section 2), or fit the logistic regression directly.
# Both produce a classifier of the same form $\sigma(w^\top x + b)$. Their point:
#
# * the generative fit approaches its asymptote faster (it estimates means and a
#   covariance in closed form, using the density of $x$ as extra information);
# * when the generative model is wrong, that asymptote is worse: logistic regression
#   minimizes the log-loss over *all* linear classifiers, and wins with enough data.
#
# Here `fit_gaussian_nb` (shared-covariance Gaussian, i.e. LDA; D = 6) mapped with
# `gaussian_nb_to_logistic` plays naive Bayes, and scikit-learn's `LogisticRegression`
# with a negligible ridge (`C = 1e4`, so both are maximum-likelihood fits; with the
# default `C = 1` the ridge itself regularizes small samples and changes the picture)
# plays logistic regression. Two data sets:
#
# * **well-specified**: $x \mid c \sim \mathcal N(\mu_c, S)$, so both learners have the
#   Bayes posterior as their asymptote;
# * **misspecified**: exponential class-conditionals, $x_j \mid c \sim \mathrm{Exp}(\lambda_{cj})$
#   independently. The log-odds
#   $\sum_j (\lambda_{0j} - \lambda_{1j}) x_j + \sum_j \log(\lambda_{1j}/\lambda_{0j})$
#   are *exactly* linear, so logistic regression is well-specified, but the classes have
#   different covariances, so the Gaussian model is not.
#
# Metric: held-out log-loss (nats), median over repeats, against the Bayes log-loss of
# the true posterior.

# %%
D_lc = 6
A_lc = rng.standard_normal((D_lc, D_lc)) / np.sqrt(D_lc)
cov_lc = A_lc @ A_lc.T + 0.5 * np.eye(D_lc)
means_lc = np.stack([np.zeros(D_lc), 0.5 * rng.standard_normal(D_lc)])
chol_lc = np.linalg.cholesky(cov_lc)
rate0 = np.ones(D_lc)
w_exp = np.array([0.8, 0.7, -3.0, -3.0, 0.5, 0.0])  # true logistic weights
rate1 = rate0 - w_exp


def sample_gaussian(n, rng):
    y = rng.integers(0, 2, size=n)
    return means_lc[y] + rng.standard_normal((n, D_lc)) @ chol_lc.T, y


def sample_exponential(n, rng):
    y = rng.integers(0, 2, size=n)
    return rng.exponential(1.0, size=(n, D_lc)) / np.where(y[:, None] == 1, rate1, rate0), y


def log_loss(log_odds, y):
    return float(np.mean(np.logaddexp(0.0, np.where(y == 1, -log_odds, log_odds))))


# The true posteriors (Bayes log-odds) of both data sets.
bayes_gauss = gaussian_nb_to_logistic(np.array([0.5, 0.5]), means_lc, cov_lc)
settings = {
    "well-specified (Gaussian, shared S)": (
        sample_gaussian,
        lambda x: x @ np.asarray(bayes_gauss.weight) + float(bayes_gauss.bias),
    ),
    "misspecified (exponential classes)": (
        sample_exponential,
        lambda x: x @ w_exp + np.sum(np.log(rate1 / rate0)),
    ),
}
sizes = np.array([12, 20, 35, 60, 120, 250, 500, 1000, 2500])
repeats = 12

curves = {}
for name, (sample, bayes_log_odds) in settings.items():
    x_te, y_te = sample(20_000, np.random.default_rng(1))
    losses = np.zeros((2, len(sizes), repeats))  # (LR, NB)
    for i, n in enumerate(sizes):
        for r in range(repeats):
            while True:  # both classes with >= 2 samples, so every fit is defined
                x_tr, y_tr = sample(int(n), rng)
                if 2 <= y_tr.sum() <= n - 2:
                    break
            with warnings.catch_warnings():
                # Separable small samples: the near-ML fit stops at max_iter; that is the point.
                warnings.simplefilter("ignore", ConvergenceWarning)
                lr_fit = SkLogisticRegression(C=1e4, solver="newton-cholesky", max_iter=200).fit(
                    x_tr, y_tr
                )
            nb_fit = gaussian_nb_to_logistic(*fit_gaussian_nb(x_tr, y_tr, 2))
            losses[0, i, r] = log_loss(lr_fit.decision_function(x_te), y_te)
            losses[1, i, r] = log_loss(x_te @ np.asarray(nb_fit.weight) + float(nb_fit.bias), y_te)
    # Each learner's asymptote: a fit on 2e5 samples.
    x_big, y_big = sample(200_000, np.random.default_rng(2))
    nb_big = gaussian_nb_to_logistic(*fit_gaussian_nb(x_big, y_big, 2))
    lr_big = SkLogisticRegression(C=1e4, solver="newton-cholesky").fit(x_big, y_big)
    curves[name] = dict(
        losses=losses,
        bayes=log_loss(bayes_log_odds(x_te), y_te),
        nb_asymptote=log_loss(x_te @ np.asarray(nb_big.weight) + float(nb_big.bias), y_te),
        lr_asymptote=log_loss(lr_big.decision_function(x_te), y_te),
    )

for name, cv in curves.items():
    med = np.median(cv["losses"], axis=-1)
    print(name)
    print(
        f"  Bayes {cv['bayes']:.4f}; asymptotes: "
        f"NB {cv['nb_asymptote']:.4f}, LR {cv['lr_asymptote']:.4f}"
    )
    print("  N      " + " ".join(f"{n:>7d}" for n in sizes))
    print("  LR     " + " ".join(f"{v:7.3f}" for v in med[0]))
    print("  NB     " + " ".join(f"{v:7.3f}" for v in med[1]))

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
for ax, (name, cv) in zip(axes, curves.items(), strict=True):
    for k, (label, color) in enumerate(
        [("logistic regression (sklearn)", "C3"), ("naive Bayes -> logistic weights", "C0")]
    ):
        q25, med, q75 = np.percentile(cv["losses"][k], [25, 50, 75], axis=-1)
        ax.plot(sizes, med, "o-", color=color, label=label)
        ax.fill_between(sizes, q25, q75, color=color, alpha=0.15)
    ax.axhline(cv["bayes"], color="k", ls="--", lw=1, label="Bayes (true posterior)")
    ax.axhline(cv["nb_asymptote"], color="C0", ls=":", lw=1, label="NB asymptote")
    ax.set(xscale="log", yscale="log", title=name, xlabel="training size N")
    ax.legend(fontsize=8)
axes[0].set_ylabel("held-out log-loss (nats), median and IQR")
fig.tight_layout()
plt.show()

# %% [markdown]
# Both of Ng & Jordan's claims, as numbers: at small sizes (N = 20, 35) naive Bayes has
# the lower held-out loss in both settings; on well-specified data the two meet at the Bayes
# loss; on misspecified data logistic regression overtakes and converges to the Bayes
# loss while naive Bayes stays at a worse asymptote.

# %%
for name, cv in curves.items():
    med = np.median(cv["losses"], axis=-1)
    # N = 20 and 35. (At N = 12 = 2D both fits are near-singular and either may be worse.)
    assert np.all(med[1, 1:3] < med[0, 1:3]), f"{name}: NB should win at small N"
well, mis = curves.values()
med_well, med_mis = np.median(well["losses"], -1), np.median(mis["losses"], -1)
# Well-specified: both reach the Bayes loss (within sampling error of a 2500-sample fit).
assert abs(med_well[0, -1] - well["bayes"]) < 0.01 and abs(med_well[1, -1] - well["bayes"]) < 0.01
assert abs(well["nb_asymptote"] - well["bayes"]) < 0.002
# Misspecified: LR wins at large N and reaches Bayes; NB's asymptote is strictly worse.
assert np.all(med_mis[0, -3:] < med_mis[1, -3:])
assert abs(mis["lr_asymptote"] - mis["bayes"]) < 0.002
assert mis["nb_asymptote"] - mis["bayes"] > 0.02
print(f"misspecified: NB asymptotic excess log-loss {mis['nb_asymptote'] - mis['bayes']:.3f} nats")
print(f"notebook ran in {time.perf_counter() - t_start:.1f} s")
