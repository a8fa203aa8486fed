"""Naive NumPy references for the sequence layers: one Python loop per equation.

Written from the equations (Katharopoulos et al. 2020; Orvieto et al. 2023; Gu and Dao
2023), independently of ``switchssm.rnn``: float64 (complex128) NumPy, no JAX, no scans,
no FFTs. Parameters are read by field name only.
"""

import numpy as np


def _w(p, name):
    return np.asarray(getattr(p, name), dtype=np.float64)


def features(a, feature_map, omega=None):
    a = np.asarray(a, dtype=np.float64)
    if feature_map == "elu":
        return np.where(a > 0, a + 1.0, np.exp(np.minimum(a, 0.0)))
    if feature_map == "relu":
        return np.maximum(a, 0.0)
    if feature_map == "identity":
        return a
    omega = np.asarray(omega, dtype=np.float64)
    return np.exp(omega @ a - 0.5 * a @ a) / np.sqrt(omega.shape[0])


def linear_attention(p, x, feature_map="elu", normalize=True, S0=None, z0=None, eps=0.0):
    """h_i = phi(q_i)' S_i / (phi(q_i)' z_i + eps), S_i = S_{i-1} + phi(k_i) v_i'."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3:
        return np.stack([linear_attention(p, xb, feature_map, normalize, S0, z0, eps) for xb in x])
    wq, wk, wv = _w(p, "query_weight"), _w(p, "key_weight"), _w(p, "value_weight")
    omega = _w(p, "feature_projection")
    out = []
    for i in range(len(x)):
        # The literal masked sum of eq. (4): every j <= i, no running memory.
        fq = features(wq @ x[i], feature_map, omega)
        num = np.zeros(wv.shape[0]) if S0 is None else fq @ np.asarray(S0, np.float64)
        den = 0.0 if z0 is None else fq @ np.asarray(z0, np.float64)
        for j in range(i + 1):
            a = fq @ features(wk @ x[j], feature_map, omega)
            num = num + a * (wv @ x[j])
            den = den + a
        out.append(num / (den + eps) if normalize else num)
    return np.array(out)


def lti(p, x):
    """s_i = A s_{i-1} + B x_i, h_i = C s_i + D x_i, s_0 = 0."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3:
        return np.stack([lti(p, xb) for xb in x])
    A, B = _w(p, "transition"), _w(p, "input_weight")
    Cm, D = _w(p, "output_weight"), _w(p, "feedthrough")
    s = np.zeros(A.shape[0])
    out = []
    for x_t in x:
        s = A @ s + B @ x_t
        out.append(Cm @ s + D @ x_t)
    return np.array(out)


def lti_diagonal(p, x):
    """Complex s_i = lam * s_{i-1} + Bbar x_i, h_i = Re(Cbar s_i) + D x_i."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3:
        return np.stack([lti_diagonal(p, xb) for xb in x])
    lam = _w(p, "eigenvalues_re") + 1j * _w(p, "eigenvalues_im")
    return _complex_diagonal_loop(p, x, lam)


def lru(p, x):
    """lambda = exp(-exp(nu_log) + i exp(theta_log)); s = lambda s + gamma (B x)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3:
        return np.stack([lru(p, xb) for xb in x])
    lam = np.exp(-np.exp(_w(p, "nu_log")) + 1j * np.exp(_w(p, "theta_log")))
    return _complex_diagonal_loop(p, x, lam, gamma=np.exp(_w(p, "gamma_log")))


def _complex_diagonal_loop(p, x, lam, gamma=None):
    """s_i = lam * s_{i-1} + [gamma *] (B x_i), h_i = Re(C s_i) + D x_i from s_0 = 0, with
    complex B = input_re + i input_im, C = output_re + i output_im and D = feedthrough."""
    B = _w(p, "input_re") + 1j * _w(p, "input_im")
    Cm = _w(p, "output_re") + 1j * _w(p, "output_im")
    D = _w(p, "feedthrough")
    s = np.zeros(lam.shape, complex)
    out = []
    for x_t in x:
        s = lam * s + (B @ x_t if gamma is None else gamma * (B @ x_t))
        out.append((Cm @ s).real + D @ x_t)
    return np.array(out)


def softplus(v):
    return np.log1p(np.exp(-np.abs(v))) + np.maximum(v, 0.0)


def s6(p, x, discretization="zoh"):
    """Per channel d and state n: s = exp(Delta_d A_dn) s + Bbar_dn x_d; h_d = C.s_d + skip x_d."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3:
        return np.stack([s6(p, xb, discretization) for xb in x])
    Wd, bd = _w(p, "step_weight"), _w(p, "step_bias")
    Wb, bb = _w(p, "input_weight"), _w(p, "input_bias")
    Wc, bc = _w(p, "output_weight"), _w(p, "output_bias")
    A = -np.exp(_w(p, "log_rate"))
    skip = _w(p, "skip")
    D, N = A.shape
    s = np.zeros((D, N))
    out = []
    for x_t in x:
        delta = softplus(Wd @ x_t + bd)
        b = Wb @ x_t + bb
        c = Wc @ x_t + bc
        h = np.zeros(D)
        for d in range(D):
            for n in range(N):
                a = np.exp(delta[d] * A[d, n])
                if discretization == "zoh":
                    bbar = (a - 1.0) / A[d, n] * b[n]
                else:
                    bbar = delta[d] * b[n]
                s[d, n] = a * s[d, n] + bbar * x_t[d]
            h[d] = c @ s[d] + skip[d] * x_t[d]
        out.append(h)
    return np.array(out)


def causal_conv(u, w, b):
    """y_{t,e} = b_e + sum_j w_{e,j} u_{t-j,e} with np.convolve per channel."""
    u = np.asarray(u, dtype=np.float64)
    T = u.shape[0]
    out = np.empty_like(u)
    for e in range(u.shape[1]):
        out[:, e] = np.convolve(u[:, e], np.asarray(w[e], np.float64))[:T] + b[e]
    return out


def silu(v):
    return v / (1.0 + np.exp(-v))


def mamba(p, x, discretization="zoh"):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3:
        return np.stack([mamba(p, xb, discretization) for xb in x])
    win = _w(p, "in_weight")
    E = win.shape[0] // 2
    xz = x @ win.T
    u = silu(causal_conv(xz[:, :E], _w(p, "conv_weight"), _w(p, "conv_bias")))
    y = s6(p.ssm, u, discretization)
    return (y * silu(xz[:, E:])) @ _w(p, "out_weight").T
