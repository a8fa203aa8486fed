"""Brute-force enumeration of every ``(s_0, s_1:T, z_1:T)`` path of the categorical switching
model: the reference the exact algorithms are tested against.

Written with NumPy/SciPy only, sharing no code with the exact recursions. Cost
:math:`O(K^{T+1} 2^T T)`: for tiny problems (``T <= 6``, ``K <= 3``).
"""

import itertools

import numpy as np
from scipy import stats
from scipy.special import logsumexp

__all__ = [
    "brute_force",
    "cue_loglik",
    "emission_loglik",
    "path_log_joint",
]


def emission_loglik(params, y):
    """log P(y_t | s = k), (T, K), from scipy."""
    em = params.emission
    y = np.asarray(y)
    if hasattr(em, "probs"):
        B = np.asarray(em.probs)
        return np.log(B[:, y].T)
    means, cov = np.asarray(em.means), np.asarray(em.cov)
    return np.stack([stats.multivariate_normal(m, cov).logpdf(y).reshape(-1) for m in means], -1)


def cue_loglik(params, u):
    """log P(u_t | z), (T, 2), from scipy (zeros without a cue)."""
    if params.cue is None:
        return None
    m = np.asarray(params.cue.means)
    tau = np.asarray(params.cue.scale)
    u = np.asarray(u)
    if m.ndim == 1:
        return np.stack([stats.norm(m[z], tau).logpdf(u) for z in (0, 1)], -1)
    return np.stack([stats.norm(m[z], tau).logpdf(u).sum(-1) for z in (0, 1)], -1)


def path_log_joint(params, y, u):
    """All paths and their log joint with the data.

    Returns (S, Z, logp): S (N, T+1) with s_0 first, Z (N, T), logp (N,).
    """
    pi = np.asarray(params.initial_probs, dtype=float)
    rho = float(params.switch_prob)
    K = pi.shape[0]
    ll = emission_loglik(params, y)
    T = ll.shape[0]
    cl = cue_loglik(params, u)
    bg = logsumexp(ll + np.log(pi), axis=1)  # log Pbar(y_t)
    S = np.array(list(itertools.product(range(K), repeat=T + 1)))
    Z = np.array(list(itertools.product((0, 1), repeat=T)))
    S = np.repeat(S, len(Z), axis=0)
    Z = np.tile(Z, (len(S) // len(Z), 1))
    with np.errstate(divide="ignore"):
        logp = np.log(pi[S[:, 0]])
        for t in range(T):
            z, s, sp = Z[:, t], S[:, t + 1], S[:, t]
            trans = np.where(z == 1, rho * pi[s], (1 - rho) * (s == sp))
            logp = logp + np.log(trans)
            em = ll[t, s]
            if params.gated:
                em = np.where(z == 1, em, bg[t])
            logp = logp + em
            if cl is not None:
                logp = logp + cl[t, z]
    return S, Z, logp


def brute_force(params, y, u=None):
    """Exact log-likelihood, filtered and smoothed marginals by enumeration."""
    K = np.asarray(params.initial_probs).shape[0]
    T = len(y)
    S, Z, logp = path_log_joint(params, y, u)
    loglik = logsumexp(logp)
    w = np.exp(logp - loglik)
    smoothed_s = np.stack([np.bincount(S[:, t + 1], weights=w, minlength=K) for t in range(T)])
    smoothed_z = np.array([w[Z[:, t] == 1].sum() for t in range(T)])
    filtered_s, filtered_z = [], []
    for t in range(T):
        uu = None if u is None else np.asarray(u)[: t + 1]
        St, Zt, lpt = path_log_joint(params, np.asarray(y)[: t + 1], uu)
        wt = np.exp(lpt - logsumexp(lpt))
        filtered_s.append(np.bincount(St[:, t + 1], weights=wt, minlength=K))
        filtered_z.append(wt[Zt[:, t] == 1].sum())
    return dict(
        log_likelihood=loglik,
        filtered_s=np.array(filtered_s),
        filtered_z=np.array(filtered_z),
        smoothed_s=smoothed_s,
        smoothed_z=smoothed_z,
    )
