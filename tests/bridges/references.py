"""Reference filters written with NumPy from the definitions (shared by several tests)."""

import numpy as np
import scipy.special as sps
import scipy.stats as st


def naive_beliefs(params, y, u):
    """``(logit minGRU, selective)`` beliefs by a Python loop (cue densities from scipy)."""
    pi = np.asarray(params.initial_probs)
    rho = float(params.switch_prob)
    m = np.asarray(params.cue.means)
    tau = float(params.cue.scale)
    llr = st.norm.logpdf(u, m[1], tau) - st.norm.logpdf(u, m[0], tau)
    g = sps.expit(np.log(rho / (1 - rho)) + llr)
    B = np.asarray(params.emission.probs)
    h_min = np.log(pi).copy()
    h_sel = np.log(pi).copy()
    out_min, out_sel = [], []
    for t in range(len(y)):
        lt = np.log(B[:, int(y[t])])
        h_min = (1 - g[t]) * h_min + g[t] * (np.log(pi) + lt)
        h_sel = (1 - g[t]) * h_sel + g[t] * np.log(pi) + lt
        out_min.append(h_min)
        out_sel.append(h_sel)
    return np.array(out_min), np.array(out_sel)


def numpy_filter(params, y, u):
    """Exact ``P(s_t | x_1:t)`` by the normalized forward recursion over ``(z_t, s_t)``."""
    pi = np.asarray(params.initial_probs)
    rho = float(params.switch_prob)
    B = np.asarray(params.emission.probs)
    m = np.asarray(params.cue.means)
    tau = float(params.cue.scale)
    alpha, out = pi, []
    for t in range(len(y)):
        ly = B[:, int(y[t])]
        cue = st.norm.pdf(u[t], m, tau)
        stay = pi @ ly if params.gated else ly
        a = (1 - rho) * alpha * stay * cue[0] + rho * pi * ly * cue[1]
        alpha = a / a.sum()
        out.append(alpha)
    return np.array(out)
