"""Rows of ``switchssm verify`` for the sequence layers and their probabilistic readings.

Each row computes both sides independently, in float64 (inside ``jax.enable_x64``,
whatever the global setting): a layer's forms against each other and against a plain
NumPy loop written here from the equations; the Kalman recurrence against a textbook
covariance-form filter written here; the attention and S6 bridges against closed forms and
the switching model's exact filter. ``"exact"`` rows must meet their tolerance;
``"approximate"`` rows report a measured gap. Small problems: a few seconds in total.
"""

from __future__ import annotations

import numpy as np

from switchssm._docstrings import fill_doc
from switchssm.verify.checks import SEEDED_CHECKS
from switchssm.verify.checks import Check

__all__ = ["layer_checks"]

EXACT_TOL = 1e-9


def _max_abs(*pairs) -> float:
    return float(max(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b))) for a, b in pairs))


def _mean_kl(p, q) -> float:
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0)
    return float(np.mean(terms.sum(-1)))


# ---------------------------------------------------------------------------------------
# NumPy loops written from the equations (no JAX)


def _np_attention(wq, wk, wv, x):
    """Masked sum of eq. (4) with elu + 1 features, one output at a time."""
    phi = lambda a: np.where(a > 0, a + 1.0, np.exp(np.minimum(a, 0.0)))  # noqa: E731
    out = []
    for i in range(len(x)):
        fq = phi(wq @ x[i])
        a = np.array([fq @ phi(wk @ x[j]) for j in range(i + 1)])
        out.append(a @ (x[: i + 1] @ wv.T) / a.sum())
    return np.array(out)


def _np_linear(A, B, Cm, D, x):
    s = np.zeros(A.shape[0], dtype=A.dtype)
    out = []
    for x_t in x:
        s = A * s + B @ x_t if A.ndim == 1 else A @ s + B @ x_t
        out.append(np.real(Cm @ s) + D @ x_t)
    return np.array(out)


def _np_s6(p, x):
    sp = lambda v: np.logaddexp(0.0, v)  # noqa: E731
    g = {
        f: np.asarray(getattr(p, f), np.float64)
        for f in (
            "step_weight",
            "step_bias",
            "input_weight",
            "input_bias",
            "output_weight",
            "output_bias",
            "log_rate",
            "skip",
        )
    }
    A = -np.exp(g["log_rate"])
    s = np.zeros(A.shape)
    out = []
    for x_t in x:
        delta = sp(g["step_weight"] @ x_t + g["step_bias"])[:, None]
        b = g["input_weight"] @ x_t + g["input_bias"]
        c = g["output_weight"] @ x_t + g["output_bias"]
        a = np.exp(delta * A)
        s = a * s + (a - 1.0) / A * b[None, :] * x_t[:, None]
        out.append(s @ c + g["skip"] * x_t)
    return np.array(out)


def _np_kalman(mu0, S0, A, Q, Cm, R, y):
    """Textbook covariance-form Kalman filter (predict, then update), z_1 ~ N(mu0, S0)."""
    m, P = mu0, S0
    out = []
    for t, y_t in enumerate(y):
        if t > 0:
            m, P = A @ m, A @ P @ A.T + Q
        S = Cm @ P @ Cm.T + R
        K = P @ Cm.T @ np.linalg.inv(S)
        m = m + K @ (y_t - Cm @ m)
        P = P - K @ S @ K.T
        out.append(m)
    return np.array(out)


# ---------------------------------------------------------------------------------------
# Rows


def _layer_rows(r) -> list[Check]:

    from switchssm import rnn

    rows = []
    T, D, H = 24, 3, 4
    x = r.standard_normal((T, D))

    # linear attention: three forms against the masked sum
    p = rnn.LinearAttentionParams(
        *(r.standard_normal(s) / np.sqrt(D) for s in ((H, D), (H, D), (H, D))), np.zeros((1, H))
    )
    ref = _np_attention(*(np.asarray(w) for w in (p.query_weight, p.key_weight, p.value_weight)), x)
    got = [
        rnn.linear_attention(p, x, form=f, chunk_size=5)
        for f in ("parallel", "recurrent", "chunked")
    ]
    rows.append(
        Check(
            "layers/attention-forms",
            "causal linear attention: parallel (masked) = recurrent (S_t, z_t) = chunked = loop",
            "exact",
            "max abs error",
            _max_abs(*((g, ref) for g in got)),
            EXACT_TOL,
        )
    )
    q, k = 0.4 * r.standard_normal(4), 0.4 * r.standard_normal(4)
    omega = r.standard_normal((4096, 4))
    est = float(
        rnn.attention_features(q, "random", omega) @ rnn.attention_features(k, "random", omega)
    )
    rows.append(
        Check(
            "layers/random-features",
            "positive random features (M = 4096): phi(q)'phi(k) estimates exp(q'k) without bias",
            "approximate",
            "relative error",
            abs(est / np.exp(q @ k) - 1.0),
        )
    )

    # LTI: scan, FFT convolution, complex diagonal
    A = r.standard_normal((5, 5))
    A = 0.9 * A / np.max(np.abs(np.linalg.eigvals(A)))
    lp = rnn.LTIParams(
        A, r.standard_normal((5, D)), r.standard_normal((H, 5)), r.standard_normal((H, D))
    )
    ref = _np_linear(
        A, *(np.asarray(w) for w in (lp.input_weight, lp.output_weight, lp.feedthrough)), x
    )
    err = _max_abs(
        (rnn.lti(lp, x), ref),
        (rnn.lti(lp, x, form="convolution"), ref),
        (rnn.lti(lp, x, mode="parallel"), ref),
    )
    rows.append(
        Check(
            "layers/lti-conv-scan",
            "LTI layer: sequential scan = parallel scan = FFT convolution with K_m = C A^m B",
            "exact",
            "max abs error",
            err,
            EXACT_TOL,
        )
    )
    rows.append(
        Check(
            "layers/lti-diagonal",
            "diagonalizable A = P Lambda P^-1: complex-diagonal layer (P^-1 B, C P) = dense",
            "exact",
            "max abs error",
            _max_abs((rnn.lti_diagonal(rnn.diagonalize(lp), x), ref)),
            EXACT_TOL,
        )
    )

    # LRU and S6, Mamba: sequential = parallel = loop
    # Parameters drawn with NumPy (eager JAX initializers compile op by op: seconds).
    n = 6
    lr = rnn.LRUParams(
        np.log(-0.5 * np.log(r.uniform(0.5, 0.99, n) ** 2)),
        np.log(r.uniform(0.1, np.pi, n)),
        r.normal(-0.5, 0.1, n),
        *(r.standard_normal(s) / 2 for s in ((n, D), (n, D), (H, n), (H, n), (H, D))),
    )
    lam = np.asarray(rnn.lru_eigenvalues(lr))
    Bc = (np.asarray(lr.input_re) + 1j * np.asarray(lr.input_im)) * np.exp(
        np.asarray(lr.gamma_log)
    )[:, None]
    Cc = np.asarray(lr.output_re) + 1j * np.asarray(lr.output_im)
    ref = _np_linear(lam, Bc, Cc, np.asarray(lr.feedthrough), x)
    err = _max_abs((rnn.lru(lr, x, mode="sequential"), ref), (rnn.lru(lr, x, mode="parallel"), ref))
    rows.append(
        Check(
            "layers/lru",
            "LRU: sequential = parallel complex diagonal scan = loop",
            "exact",
            "max abs error",
            err,
            EXACT_TOL,
        )
    )
    sp = rnn.S6Params(
        *(0.5 * r.standard_normal(s) for s in ((D, D), (D,), (4, D), (4,), (4, D), (4,))),
        np.log(np.tile(np.arange(1.0, 5.0), (D, 1))),
        np.ones(D),
    )
    ref = _np_s6(sp, x)
    err = _max_abs((rnn.s6(sp, x, mode="sequential"), ref), (rnn.s6(sp, x, mode="parallel"), ref))
    rows.append(
        Check(
            "layers/s6",
            "selective S6 (zero-order hold): sequential = parallel = loop",
            "exact",
            "max abs error",
            err,
            EXACT_TOL,
        )
    )
    E = 2 * D
    inner = rnn.S6Params(
        *(0.5 * r.standard_normal(s) for s in ((E, E), (E,), (4, E), (4,), (4, E), (4,))),
        np.log(np.tile(np.arange(1.0, 5.0), (E, 1))),
        np.ones(E),
    )
    mp = rnn.MambaParams(
        0.5 * r.standard_normal((2 * E, D)),
        0.5 * r.standard_normal((E, 4)),
        np.zeros(E),
        inner,
        0.5 * r.standard_normal((H, E)),
    )
    err = _max_abs((rnn.mamba(mp, x, mode="parallel"), rnn.mamba(mp, x, mode="sequential")))
    rows.append(
        Check(
            "layers/mamba",
            "Mamba block: parallel = sequential selective scan",
            "exact",
            "max abs error",
            err,
            EXACT_TOL,
        )
    )

    # bidirectional wrapper against the reversed sequence by hand
    bp = rnn.BidirectionalParams(lr, lr.replace(theta_log=lr.theta_log - 0.3))
    hand = np.concatenate(
        [np.asarray(rnn.lru(bp.forward, x)), np.asarray(rnn.lru(bp.backward, x[::-1]))[::-1]],
        axis=-1,
    )
    rows.append(
        Check(
            "layers/bidirectional",
            "bidirectional = [f(x) ; reverse(g(reverse(x)))] computed by hand",
            "exact",
            "max abs error",
            _max_abs((rnn.bidirectional(rnn.lru, bp, x), hand)),
            EXACT_TOL,
        )
    )
    return rows


def _kalman_rows(r) -> list[Check]:
    from switchssm.bridges import kalman

    N, M, T = 3, 2, 150
    A = r.standard_normal((N, N))
    A = 0.95 * A / np.max(np.abs(np.linalg.eigvals(A)))
    L = r.standard_normal((N, N))
    Q = L @ L.T / N + 0.1 * np.eye(N)
    Cm = r.standard_normal((M, N))
    R = 0.5 * np.eye(M)
    mu0 = r.standard_normal(N)
    p = kalman.LGSSMParams(mu0, 2.0 * np.eye(N), A, Q, Cm, R)
    y = r.standard_normal((T, M))
    ref = _np_kalman(mu0, 2.0 * np.eye(N), A, Q, Cm, R, y)
    err = _max_abs(
        *((kalman.kalman_filter_means(p, y, mode=m), ref) for m in ("sequential", "parallel"))
    )
    rates = kalman.convergence_rates(p, y)
    return [
        Check(
            "kalman/time-varying",
            "filtered means m_t = (I - K_t C) A m_{t-1} + K_t y_t (dense scan) = Kalman filter",
            "exact",
            "max abs error",
            err,
            EXACT_TOL,
        ),
        Check(
            "kalman/steady-state-rate",
            f"steady-state LTI layer approaches the filter at rho(Phi) = {rates['contraction']:.4f}"
            f" per step (fitted {rates['mean_rate']:.4f})",
            "approximate",
            "relative error of the fitted rate",
            abs(rates["mean_rate"] / rates["contraction"] - 1.0),
        ),
        Check(
            "kalman/gain-rate",
            f"gains converge at the Riccati contraction rho(Phi)^2 = "
            f"{rates['riccati_contraction']:.4f} (fitted {rates['gain_rate']:.4f})",
            "approximate",
            "relative error of the fitted rate",
            abs(rates["gain_rate"] / rates["riccati_contraction"] - 1.0),
        ),
    ]


def _sample(r, params, T):
    """(y, u) from the categorical switching model (docs/theory.md section 2), NumPy."""
    pi = np.asarray(params.initial_probs)
    K = len(pi)
    z = r.random(T) < float(params.switch_prob)
    s = np.empty(T, int)
    prev = r.choice(K, p=pi)
    for t in range(T):
        prev = s[t] = r.choice(K, p=pi) if z[t] else prev
    emitter = np.where(z, s, r.choice(K, size=T, p=pi)) if params.gated else s
    B = np.asarray(params.emission.probs)
    y = np.array([r.choice(B.shape[1], p=B[e]) for e in emitter])
    u = np.asarray(params.cue.means)[z.astype(int)] + float(params.cue.scale) * r.standard_normal(T)
    return y, u


def _bridge_rows(r) -> list[Check]:
    from switchssm.bridges import attention as att
    from switchssm.bridges import cumulative_evidence
    from switchssm.bridges import mamba as mb
    from switchssm.bridges import mingru_from_model
    from switchssm.bridges import mingru_posterior
    from switchssm.bridges import model_inputs
    from switchssm.bridges import selective_from_model
    from switchssm.bridges import selective_posterior
    from switchssm.inference import filter as exact_filter
    from switchssm.models import CategoricalEmission
    from switchssm.models import GaussianCue
    from switchssm.models import SwitchingParams

    rows = []
    # count model: Dirichlet posterior mean by counting
    K, V, T, alpha = 3, 4, 40, 1.5
    keys = r.integers(0, K, T)
    vals = r.integers(0, V, T)
    m = np.full(V, 1.0 / V)
    h = att.count_attention(K, V, prior_strength=alpha)(
        att.count_attention_inputs(keys, keys, np.eye(V)[vals], K)
    )
    ref = np.array(
        [
            (alpha * m + np.bincount(vals[: t + 1][keys[: t + 1] == keys[t]], minlength=V))
            / (alpha + np.sum(keys[: t + 1] == keys[t]))
            for t in range(T)
        ]
    )
    rows.append(
        Check(
            "attention/count-model",
            "one-hot keys, normalized: h_t = Dirichlet posterior mean of P(v | key = q_t)",
            "exact",
            "max abs error",
            _max_abs((h, ref)),
            EXACT_TOL,
        )
    )

    B = r.dirichlet(np.full(V, 2.0), size=K)
    pi = r.dirichlet(np.full(K, 3.0))
    p0 = SwitchingParams(pi, 0.0, CategoricalEmission(B))
    y = r.integers(0, V, T)
    h = att.attention_from_model(p0)(att.evidence_attention_inputs(p0, y))
    rows.append(
        Check(
            "attention/no-switch",
            "unnormalized attention, constant key/query, values l_t = cumulative evidence",
            "exact",
            "max abs error",
            _max_abs((h, cumulative_evidence(p0, y))),
            EXACT_TOL,
        )
    )

    def model(sep, gated):
        return SwitchingParams(
            pi,
            0.2,
            CategoricalEmission(B),
            GaussianCue(np.array([-0.5, 0.5]) * sep * 0.8, 0.8),
            gated,
        )

    k = np.linspace(-30, 30, 61)
    rows.append(
        Check(
            "mamba/keep-gate",
            "S6 keep gate exp(Delta A), A = -1, Delta = softplus(k) = 1 - g = sigmoid(-k)",
            "exact",
            "max abs error",
            _max_abs((mb.keep_gate(np.logaddexp(0.0, k)), 1 / (1 + np.exp(k)))),
            1e-12,
        )
    )
    soft = model(1.5, True)
    y, u = _sample(r, soft, 60)
    x = model_inputs(soft, y, u)
    s6_soft = mb.s6_posterior(mb.s6_from_model(soft), x)
    rows.append(
        Check(
            "mamba/zoh-s6-mingru",
            "zero-order-hold S6 (B = C = 1) = logit-space minGRU, at every gate value",
            "exact",
            "max abs error",
            _max_abs((s6_soft, mingru_posterior(mingru_from_model(soft, space="logit"), x))),
            EXACT_TOL,
        )
    )
    rows.append(
        Check(
            "mamba/zoh-s6-gated-soft",
            "gated model, soft gates (d = 1.5): S6 = log-linear pooling, a gap",
            "approximate",
            "mean KL (nats)",
            _mean_kl(exact_filter(soft, y, u).filtered_s, s6_soft),
        )
    )
    hard = model(60.0, True)
    y, u = _sample(r, hard, 60)
    rows.append(
        Check(
            "mamba/zoh-s6-gated-hard",
            "gated model, hard gates: zero-order-hold S6 = exact filter",
            "exact",
            "max abs error",
            _max_abs(
                (
                    mb.s6_posterior(mb.s6_from_model(hard), model_inputs(hard, y, u)),
                    exact_filter(hard, y, u).filtered_s,
                )
            ),
            EXACT_TOL,
        )
    )
    always = model(60.0, False)
    y, u = _sample(r, always, 60)
    x = model_inputs(always, y, u)
    exact = exact_filter(always, y, u).filtered_s
    sel = _max_abs((selective_posterior(selective_from_model(always), x), exact))
    rows.append(
        Check(
            "mamba/always-hard",
            f"always emitting, hard gates: S6's gated drive drops l_t (the selective cell, "
            f"ungated, is exact: {sel:.1e})",
            "approximate",
            "mean KL (nats)",
            _mean_kl(exact, mb.s6_posterior(mb.s6_from_model(always), x)),
        )
    )
    return rows


@fill_doc(SEEDED_CHECKS, "{seeded_checks}")
def layer_checks(seed: int = 0) -> list[Check]:
    """Every identity and measured gap of the sequence layers and their readings.

    Layers (forms against each other and a NumPy loop), the Kalman filter as a linear
    recurrence (exact) and its steady-state LTI layer (rates), linear attention as
    sufficient statistics (count model, no-switch row), Mamba's S6 against the switching
    rows (exact where exact, gaps where not).

    {seeded_checks}

    Example:
        >>> rows = layer_checks()
        >>> all(c.passed for c in rows), len(rows) > 10
        (True, True)
    """
    import jax

    r = np.random.default_rng(seed)
    with jax.enable_x64(True):
        return _layer_rows(r) + _kalman_rows(r) + _bridge_rows(r)
