"""Naive NumPy references for the RNN cells: one Python loop per equation.

Written from the equations (docs/theory.md section 0; Feng et al. 2024; Ravanelli et
al. 2018), independently of ``switchssm.rnn``: float64 NumPy, no JAX, no scans.
Parameters are read by field name only.
"""

import dataclasses

import numpy as np


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def g(v):
    """Feng et al.'s positive activation: v + 1/2 for v >= 0, sigmoid(v) below."""
    return np.where(v >= 0, v + 0.5, sigmoid(np.minimum(v, 0.0)))


def softmax(v):
    e = np.exp(v - v.max())
    return e / e.sum()


def _w(p, name):
    return np.asarray(getattr(p, name), dtype=np.float64)


def lin(p, part, x_t):
    return _w(p, f"{part}_weight") @ x_t + _w(p, f"{part}_bias")


def rec(p, part, h):
    return _w(p, f"{part}_recurrent") @ h


def hidden_dim(p):
    return _w(p, dataclasses.fields(p)[0].name).shape[0]


def _h0(p, h0, default):
    return np.full(hidden_dim(p), default) if h0 is None else np.array(h0, dtype=np.float64)


CANDIDATES = {
    None: (lambda v: v, 0.0),  # logit states: linear candidate, h0 = 0
    "g": (g, 0.5),  # g(0) = 1/2
    "exp": (np.exp, 1.0),
    "log_softmax": (softmax, None),  # h0 = 1/H, filled in below
}


def _candidate(p, candidate, h0):
    act, default = CANDIDATES[candidate]
    if default is None:
        default = 1.0 / hidden_dim(p)
    return act, _h0(p, h0, default)


def mingru(p, x, h0=None, candidate=None):
    """h_t = (1 - z) h_{t-1} + z act(W_h x + b_h), z = sigmoid(W_z x + b_z)."""
    act, h = _candidate(p, candidate, h0)
    out = []
    for x_t in np.asarray(x, dtype=np.float64):
        z = sigmoid(lin(p, "gate", x_t))
        h = (1 - z) * h + z * act(lin(p, "candidate", x_t))
        out.append(h)
    return np.array(out)


def minlstm(p, x, h0=None, candidate=None):
    """h_t = f/(f+i) h_{t-1} + i/(f+i) act(W_h x + b_h)."""
    act, h = _candidate(p, candidate, h0)
    out = []
    for x_t in np.asarray(x, dtype=np.float64):
        f = sigmoid(lin(p, "forget", x_t))
        i = sigmoid(lin(p, "input", x_t))
        h = f / (f + i) * h + i / (f + i) * act(lin(p, "candidate", x_t))
        out.append(h)
    return np.array(out)


def minlstm_gates(p, x):
    f = sigmoid(np.asarray(x) @ _w(p, "forget_weight").T + _w(p, "forget_bias"))
    i = sigmoid(np.asarray(x) @ _w(p, "input_weight").T + _w(p, "input_bias"))
    return f / (f + i), i / (f + i)


def selective(p, x, h0=None, decay="sigmoid"):
    """h_t = a h_{t-1} + W_b x + b_b with a = sigmoid(k) or exp(-log(1 + e^k))."""
    h = _h0(p, h0, 0.0)
    out = []
    for x_t in np.asarray(x, dtype=np.float64):
        k = lin(p, "decay", x_t)
        a = sigmoid(k) if decay == "sigmoid" else np.exp(-np.log1p(np.exp(k)))
        h = a * h + lin(p, "drive", x_t)
        out.append(h)
    return np.array(out)


def gru(p, x, h0=None):
    h = _h0(p, h0, 0.0)
    out = []
    for x_t in np.asarray(x, dtype=np.float64):
        z = sigmoid(lin(p, "gate", x_t) + rec(p, "gate", h))
        r = sigmoid(lin(p, "reset", x_t) + rec(p, "reset", h))
        cand = np.tanh(lin(p, "candidate", x_t) + rec(p, "candidate", r * h))
        h = (1 - z) * h + z * cand
        out.append(h)
    return np.array(out)


def lstm(p, x, h0=None, c0=None):
    h = _h0(p, h0, 0.0)
    c = _h0(p, c0, 0.0)
    hs, cs = [], []
    for x_t in np.asarray(x, dtype=np.float64):
        f = sigmoid(lin(p, "forget", x_t) + rec(p, "forget", h))
        i = sigmoid(lin(p, "input", x_t) + rec(p, "input", h))
        o = sigmoid(lin(p, "output", x_t) + rec(p, "output", h))
        c = f * c + i * np.tanh(lin(p, "candidate", x_t) + rec(p, "candidate", h))
        h = o * np.tanh(c)
        hs.append(h)
        cs.append(c)
    return np.array(hs), np.array(cs)


def elman(p, x, h0=None):
    h = _h0(p, h0, 0.0)
    out = []
    for x_t in np.asarray(x, dtype=np.float64):
        h = np.tanh(lin(p, "candidate", x_t) + rec(p, "candidate", h))
        out.append(h)
    return np.array(out)


def ligru(p, x, h0=None, activation="relu"):
    act = (lambda v: np.maximum(v, 0.0)) if activation == "relu" else np.tanh
    h = _h0(p, h0, 0.0)
    out = []
    for x_t in np.asarray(x, dtype=np.float64):
        z = sigmoid(lin(p, "gate", x_t) + rec(p, "gate", h))
        h = z * h + (1 - z) * act(lin(p, "candidate", x_t) + rec(p, "candidate", h))
        out.append(h)
    return np.array(out)


def mingru_log_space(p, x, log_h0, candidate="exp"):
    """log h_t by a float64 logaddexp loop (for states that underflow in real space)."""
    log_act = {"exp": lambda v: v, "log_softmax": lambda v: np.log(softmax(v))}[candidate]
    lh = np.array(log_h0, dtype=np.float64)
    out = []
    for x_t in np.asarray(x, dtype=np.float64):
        k = lin(p, "gate", x_t)
        log_z = -np.log1p(np.exp(-k))
        log_1mz = -np.log1p(np.exp(k))
        lh = np.logaddexp(log_1mz + lh, log_z + log_act(lin(p, "candidate", x_t)))
        out.append(lh)
    return np.array(out)
