"""Linear attention as accumulated sufficient statistics: the count model and the no-switch row.

Independent sides: counts taken with a NumPy loop (the Dirichlet posterior mean in closed
form), the existing ``cumulative_evidence`` cell, and naive Bayes over the sequence written
with NumPy. float64; every identity at rounding (1e-12).
"""

import numpy as np
import pytest

from switchssm.bridges import attention as A
from switchssm.bridges import cumulative_evidence
from switchssm.bridges import linear_attention_memory
from switchssm.bridges import sufficient_statistics
from switchssm.models import CategoricalEmission
from switchssm.models import GaussianEmission
from switchssm.models import SwitchingParams

TOL = 1e-12


def counts_reference(q, k, v, K, alpha, m):
    """(alpha m + sum of v_j with k_j = q_t, j <= t) / (alpha + count), by counting."""
    out = []
    for t in range(len(q)):
        sel = [j for j in range(t + 1) if k[j] == q[t]]
        total = alpha * m + sum((v[j] for j in sel), np.zeros(v.shape[1]))
        with np.errstate(invalid="ignore"):  # 0/0 for an unseen key with alpha = 0
            out.append(total / (alpha + len(sel)))
    return np.array(out)


@pytest.mark.parametrize("alpha", [0.0, 2.5])
def test_count_attention_is_the_conditional_mean_given_the_key(alpha):
    rng = np.random.default_rng(0)
    K, V, T = 3, 4, 40
    k = rng.integers(0, K, T)
    q = k.copy()
    q[5:] = rng.integers(0, K, T - 5)
    k[:10] = rng.integers(0, K - 1, 10)  # key K-1 unseen until step 10 ...
    q[6] = K - 1  # ... and queried at step 6
    symbols = rng.integers(0, V, T)
    v = np.eye(V)[symbols]  # one-hot values: a categorical P(v | key)
    m = rng.dirichlet(np.ones(V))
    bridge = A.count_attention(K, V, prior_strength=alpha, prior_mean=m)
    x = A.count_attention_inputs(q, k, v, K)
    ref = counts_reference(q, k, v, K, alpha, m)
    ok = np.array([np.any(k[: t + 1] == q[t]) for t in range(T)]) | (alpha > 0)
    for form in ("parallel", "recurrent", "chunked"):
        h = np.asarray(bridge(x, form=form, chunk_size=8))
        np.testing.assert_allclose(h[ok], ref[ok], rtol=0, atol=TOL)
        # a posterior mean of a categorical: a probability vector
        np.testing.assert_allclose(h[ok].sum(-1), 1.0, atol=TOL)
    if alpha == 0.0:  # an unseen key gives 0/0, as documented
        assert not ok[6] and np.all(np.isnan(np.asarray(bridge(x))[6]))


def test_count_attention_with_real_values_is_a_running_group_mean():
    rng = np.random.default_rng(1)
    K, T = 2, 25
    k = rng.integers(0, K, T)
    v = rng.normal(size=(T, 2))
    bridge = A.count_attention(K, 2, prior_strength=1.0, prior_mean=np.zeros(2))
    h = np.asarray(bridge(A.count_attention_inputs(k, k, v, K)))
    for t in (0, 10, T - 1):
        grp = v[: t + 1][k[: t + 1] == k[t]]
        # a normal prior N(0, sigma^2) on the group mean with unit-variance observations
        # has posterior mean sum / (n + 1): one pseudo-observation at 0
        np.testing.assert_allclose(h[t], grp.sum(0) / (len(grp) + 1), atol=TOL)


def models():
    rng = np.random.default_rng(2)
    cat = SwitchingParams(
        rng.dirichlet(np.ones(3)), 0.0, CategoricalEmission(rng.dirichlet(np.ones(4), size=3))
    )
    L = rng.normal(size=(2, 2))
    gauss = SwitchingParams(
        rng.dirichlet(np.ones(3)),
        0.0,
        GaussianEmission(rng.normal(size=(3, 2)), L @ L.T + np.eye(2)),
    )
    return [cat, gauss]


@pytest.mark.parametrize("which", [0, 1], ids=["categorical", "gaussian"])
def test_unnormalized_attention_is_the_no_switch_filter(which):
    p = models()[which]
    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 30) if which == 0 else rng.normal(size=(30, 2))
    bridge = A.attention_from_model(p)
    x = A.evidence_attention_inputs(p, y)
    h = np.asarray(bridge(x))
    # the existing no-switch row (cumulative evidence, a diagonal scan with a = 1)
    np.testing.assert_allclose(h, cumulative_evidence(p, y), rtol=0, atol=1e-11)
    # and naive Bayes over y_{1:t} written from the model (log pi + sum log P(y | s))
    pi = np.asarray(p.initial_probs)
    if which == 0:
        ll = np.log(np.asarray(p.emission.probs))[:, y].T
    else:
        mu, S = np.asarray(p.emission.means), np.asarray(p.emission.cov)
        Si = np.linalg.inv(S)
        d = y[:, None, :] - mu[None]
        ll = -0.5 * np.einsum("tkd,de,tke->tk", d, Si, d)  # + const(y_t), the same for all s
    post = np.log(pi) + np.cumsum(ll, axis=0)
    post = np.exp(post - post.max(1, keepdims=True))
    post /= post.sum(1, keepdims=True)
    for form in ("parallel", "chunked"):
        np.testing.assert_allclose(A.attention_posterior(bridge, x, form=form), post, atol=1e-11)
    # the dual reading: keys T(y), values 1 accumulate the statistics themselves
    S = np.asarray(linear_attention_memory(sufficient_statistics(p, y), np.ones((30, 1))))[..., 0]
    np.testing.assert_allclose(S, np.cumsum(np.asarray(sufficient_statistics(p, y)), 0), atol=TOL)


def test_bad_input():
    with pytest.raises(ValueError, match="prior_strength"):
        A.count_attention(2, 2, prior_strength=-1.0)
    with pytest.raises(ValueError, match="prior_mean"):
        A.count_attention(2, 2, prior_mean=np.ones(3))
    with pytest.raises(ValueError, match="keys"):
        A.count_attention_inputs([0, 1], [0, 2], np.ones((2, 1)), 2)
    with pytest.raises(ValueError, match="one length"):
        A.count_attention_inputs([0], [0, 1], np.ones((2, 1)), 2)
    with pytest.raises(ValueError, match="initial_probs"):
        A.attention_from_model(
            SwitchingParams(np.array([1.0, 0.0]), 0.0, CategoricalEmission(np.full((2, 2), 0.5)))
        )
