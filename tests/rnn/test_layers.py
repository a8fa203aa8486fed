"""Sequence layers (linear attention, LTI, LRU, S6, Mamba, bidirectional, stacks).

Every expected value comes from an independent computation: the equation as a float64
NumPy loop (tests/rnn/naive_layers.py), a closed form (matrix powers, the ring's area
law, the zero-order hold as a matrix exponential, the random-feature moment), or finite
differences. Every alternative form of a layer is checked against the others in values
and in gradients. Tolerance policy for this module: float64 identities at ``RTOL``/``ATOL``
(forms differ only in the order of floating-point operations); looser bounds are
commented where used.
"""

import dataclasses

import jax
import jax.numpy as jnp
import jax.test_util  # noqa: F401  (check_grads; not imported by `import jax`)
import numpy as np
import pytest
import scipy.linalg
import scipy.stats

from switchssm import rnn
from switchssm import scan
from switchssm.rnn import selective_ssm
from tests.rnn import naive_layers as naive

RTOL, ATOL = 1e-9, 1e-10
T, D_IN, H, B = 11, 3, 4, 2


def close(a, b, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


def trees_close(a, b, rtol=RTOL, atol=ATOL):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(la) == len(lb)
    for u, v in zip(la, lb, strict=True):
        close(u, v, rtol, atol)


def normal_like(shapes, rng, scale=0.7, **override):
    """A parameter object of ``shapes``' type with N(0, scale^2) leaves (some overridden)."""
    fields = {}
    for f in dataclasses.fields(shapes):
        if f.name in override:
            fields[f.name] = override[f.name]
        else:
            fields[f.name] = jnp.asarray(scale * rng.standard_normal(getattr(shapes, f.name).shape))
    return type(shapes)(**fields)


def shapes_of(init, *args, **kwargs):
    return jax.eval_shape(lambda k: init(k, *args, **kwargs), jax.random.PRNGKey(0))


def weighted_loss(run, weights):
    return lambda p, x: jnp.sum(weights * run(p, x))


def grads(run, p, x, weights):
    return jax.grad(weighted_loss(run, weights), argnums=(0, 1))(p, x)


def mode_grads_agree(layer, p, x, weights):
    """Gradients of ``layer`` in mode="parallel" equal those in mode="sequential" (which
    are returned)."""
    g_seq = grads(lambda pp, xx: layer(pp, xx, mode="sequential"), p, x, weights)
    g_par = grads(lambda pp, xx: layer(pp, xx, mode="parallel"), p, x, weights)
    trees_close(g_par, g_seq)
    return g_seq


@pytest.fixture
def x(rng):
    return jnp.asarray(rng.standard_normal((B, T, D_IN)))


# ---------------------------------------------------------------------------
# Linear attention
# ---------------------------------------------------------------------------


def attention_params(rng, F=3, M=5):
    shapes = shapes_of(rnn.init_linear_attention, D_IN, H, feature_dim=F, num_random_features=M)
    # Small random-feature scale: exp(omega' q) stays moderate for N(0, 0.5^2) weights.
    return normal_like(shapes, rng, scale=0.5)


# eps > 0 for relu: its features can all vanish (0 / 0), which is the documented case.
ATTN_CASES = [("elu", 0.0), ("relu", 0.3), ("identity", 0.0), ("random", 0.0)]


@pytest.mark.parametrize("feature_map,eps", ATTN_CASES)
@pytest.mark.parametrize("normalize", [True, False])
def test_linear_attention_three_forms_equal_the_masked_sum(rng, x, feature_map, eps, normalize):
    p = attention_params(rng)
    if feature_map == "identity" and normalize:
        # The identity map's normalizer can cross 0; start the memory at a positive one.
        z0 = 10.0 * np.ones(3)
        S0 = rng.standard_normal((3, H))
    else:
        S0 = z0 = None
    mem = None if S0 is None else rnn.AttentionMemory(S0, z0)
    ref = naive.linear_attention(p, x, feature_map, normalize, S0, z0, eps)
    for form, kw in [("parallel", {}), ("recurrent", {}), ("chunked", {"chunk_size": 4})]:
        got = rnn.linear_attention(
            p, x, mem, form=form, feature_map=feature_map, normalize=normalize, eps=eps, **kw
        )
        close(got, ref)


@pytest.mark.parametrize("normalize", [True, False])
def test_linear_attention_forms_have_equal_gradients(rng, x, normalize):
    p = attention_params(rng)
    w = jnp.asarray(rng.standard_normal((B, T, H)))
    runs = {
        form: (
            lambda pp, xx, form=form: rnn.linear_attention(
                pp, xx, form=form, normalize=normalize, chunk_size=4
            )
        )
        for form in ("parallel", "recurrent", "chunked")
    }
    g = {form: grads(run, p, x, w) for form, run in runs.items()}
    trees_close(g["recurrent"], g["parallel"])
    trees_close(g["chunked"], g["parallel"])
    # Against central finite differences of the naive loop (float64; step 1e-6 gives
    # O(1e-12) truncation, so 1e-7 bounds the rounding of the difference quotient).
    f = lambda xx: float(np.sum(np.asarray(w) * naive.linear_attention(p, xx, "elu", normalize)))
    xn = np.asarray(x)
    for idx in [(0, 0, 0), (1, 5, 2), (0, T - 1, 1)]:
        e = np.zeros_like(xn)
        e[idx] = 1e-6
        fd = (f(xn + e) - f(xn - e)) / 2e-6
        assert abs(fd - float(g["chunked"][1][idx])) < 1e-7 * max(1.0, abs(fd))


def test_linear_attention_chunk_sizes_and_single_step(rng, x):
    p = attention_params(rng)
    ref = naive.linear_attention(p, x)
    for c in (1, 3, T, 2 * T):
        close(rnn.linear_attention(p, x, form="chunked", chunk_size=c), ref)
    close(rnn.linear_attention(p, x[0, :1], form="chunked"), ref[0, :1])


def test_random_features_are_unbiased_for_the_softmax_kernel():
    # E[phi(q)' phi(k)] = exp(q'k) and Var of one feature product is
    # exp(2|q + k|^2 - |q|^2 - |k|^2) - exp(2 q'k) (Gaussian moment generating function).
    rng = np.random.default_rng(3)
    q, k = 0.4 * rng.standard_normal(4), 0.4 * rng.standard_normal(4)
    M = 200_000
    omega = rng.standard_normal((M, 4))
    est = float(
        rnn.attention_features(q, "random", omega) @ rnn.attention_features(k, "random", omega)
    )
    exact = np.exp(q @ k)
    var = np.exp(2 * (q + k) @ (q + k) - q @ q - k @ k) - np.exp(2 * q @ k)
    assert abs(est - exact) < 5 * np.sqrt(var / M)
    # and the features are positive
    assert np.all(np.asarray(rnn.attention_features(q, "random", omega[:10])) > 0)


def test_random_feature_projection_is_not_trained(rng, x):
    p = attention_params(rng)
    g = jax.grad(lambda pp: jnp.sum(rnn.linear_attention(pp, x, feature_map="random")))(p)
    assert np.all(np.asarray(g.feature_projection) == 0.0)
    assert np.any(np.asarray(g.query_weight) != 0.0)


def test_linear_attention_bad_input(rng, x):
    p = attention_params(rng)
    with pytest.raises(ValueError, match="causal"):
        rnn.linear_attention(p, x, causal=False)
    with pytest.raises(ValueError, match="chunk_size"):
        rnn.linear_attention(p, x, chunk_size=0)
    with pytest.raises(ValueError, match="form"):
        rnn.linear_attention(p, x, form="quadratic")
    with pytest.raises(ValueError, match="feature_map"):
        rnn.linear_attention(p, x, feature_map="softmax")
    with pytest.raises(ValueError, match="input_dim"):
        rnn.linear_attention(p, x[..., :2])
    with pytest.raises(ValueError, match="memory0.values"):
        rnn.linear_attention(p, x, rnn.AttentionMemory(np.zeros((3, H + 1)), np.zeros(3)))
    with pytest.raises(ValueError, match="key_weight"):
        rnn.LinearAttentionParams(
            p.query_weight, p.key_weight[:, :2], p.value_weight, p.feature_projection
        )


# ---------------------------------------------------------------------------
# LTI, diagonalization
# ---------------------------------------------------------------------------


def lti_params(rng, N=5, radius=0.8):
    shapes = shapes_of(rnn.init_lti, D_IN, H, state_dim=N)
    A = rng.standard_normal((N, N))
    A = radius * A / np.max(np.abs(np.linalg.eigvals(A)))  # random, non-normal, stable
    return normal_like(shapes, rng, transition=jnp.asarray(A))


def test_lti_forms_equal_the_loop(rng, x):
    p = lti_params(rng)
    ref = naive.lti(p, x)
    close(rnn.lti(p, x, mode="sequential"), ref)
    close(rnn.lti(p, x, mode="parallel"), ref)
    close(rnn.lti(p, x, form="convolution"), ref)
    # chunked: chunks of one step, chunks that do not divide T (a padded last chunk), one
    # chunk, and a chunk longer than the sequence; batched and unbatched
    for L in (1, 3, 4, T, T + 5):
        close(rnn.lti(p, x, form="chunked", chunk_size=L), ref)
        close(rnn.lti(p, x[0], form="chunked", chunk_size=L), ref[0])
    d = rnn.diagonalize(p)
    close(rnn.lti_diagonal(d, x, mode="sequential"), ref)
    close(rnn.lti_diagonal(d, x, mode="parallel"), ref)
    # the diagonal layer equals its own complex loop too
    close(naive.lti_diagonal(d, x), ref)


def test_convolution_kernel_is_matrix_powers(rng):
    p = lti_params(rng)
    K = rnn.convolution_kernel(p, 6)
    A, Bm, Cm = (np.asarray(getattr(p, n)) for n in ("transition", "input_weight", "output_weight"))
    for m in range(6):
        close(K[m], Cm @ np.linalg.matrix_power(A, m) @ Bm)


def test_lti_forms_have_equal_gradients(rng, x):
    p = lti_params(rng)
    w = jnp.asarray(rng.standard_normal((B, T, H)))
    g_seq = mode_grads_agree(rnn.lti, p, x, w)
    g_conv = grads(lambda pp, xx: rnn.lti(pp, xx, form="convolution"), p, x, w)
    trees_close(g_conv, g_seq)
    g_chunk = grads(lambda pp, xx: rnn.lti(pp, xx, form="chunked", chunk_size=4), p, x, w)
    trees_close(g_chunk, g_seq)
    # The diagonal form has other parameters; the input gradient and the feedthrough's
    # (shared by both parametrizations) must agree.
    d = rnn.diagonalize(p)
    gd = grads(lambda pp, xx: rnn.lti_diagonal(pp, xx, mode="sequential"), d, x, w)
    close(gd[1], g_seq[1])
    close(gd[0].feedthrough, g_seq[0].feedthrough)


def test_diagonalize_rotation_gives_complex_pairs_and_a_real_readout(rng, x):
    th = 0.7
    A = 0.9 * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    shapes = shapes_of(rnn.init_lti, D_IN, H, state_dim=2)
    p = normal_like(shapes, rng, transition=jnp.asarray(A))
    d = rnn.diagonalize(p)
    lam = np.asarray(d.eigenvalues_re) + 1j * np.asarray(d.eigenvalues_im)
    close(np.sort_complex(lam), np.sort_complex(0.9 * np.exp([-1j * th, 1j * th])))
    close(rnn.lti_diagonal(d, x), naive.lti(p, x))


def test_non_diagonalizable_transition_is_refused_or_approximated(rng, x):
    shapes = shapes_of(rnn.init_lti, D_IN, H, state_dim=3)
    J = np.array([[0.6, 1.0, 0.0], [0.0, 0.6, 1.0], [0.0, 0.0, 0.6]])  # one Jordan block
    p = normal_like(shapes, rng, transition=jnp.asarray(J))
    with pytest.raises(ValueError, match="not diagonalizable"):
        rnn.diagonalize(p)
    ref = naive.lti(p, x)
    errs = {}
    for delta in (1e-3, 1e-6):
        d = rnn.diagonalize(p, perturbation=delta, seed=0)
        got = np.asarray(rnn.lti_diagonal(d, x))
        # The approximate route is exact for the perturbed matrix A + delta G, G the
        # documented standard normal draw of seed 0 (rounding amplified by cond(P), which
        # grows like delta^(-2/3) for this size-3 block: ~1e-12 here, 1e-9 allowed) ...
        G = np.random.default_rng(0).standard_normal((3, 3))
        perturbed = p.replace(transition=jnp.asarray(J + delta * G))
        close(got, naive.lti(perturbed, x), rtol=0, atol=1e-9)
        errs[delta] = float(np.max(np.abs(got - ref)))
    # ... and its distance to A's layer is first order in delta (a thousandfold smaller
    # perturbation, a thousandfold smaller error, within a factor 2).
    assert 0.5e-3 < errs[1e-6] / errs[1e-3] < 2e-3


def test_lti_bad_input(rng, x):
    p = lti_params(rng)
    unstable = p.replace(transition=jnp.asarray(1.01 * np.asarray(p.transition) / 0.8))
    with pytest.raises(ValueError, match="spectral radius"):
        rnn.lti(unstable, x, form="convolution")
    rnn.lti(unstable, x)  # the scan form runs any A
    with pytest.raises(ValueError, match="input_dim"):
        rnn.lti(p, x[..., :2])
    with pytest.raises(ValueError, match="output_weight"):
        rnn.LTIParams(p.transition, p.input_weight, p.output_weight[:, :2], p.feedthrough)
    with pytest.raises(ValueError, match="form"):
        rnn.lti(p, x, form="fft")
    for bad in (0, -2, 2.5):
        with pytest.raises(ValueError, match="chunk_size"):
            rnn.lti(p, x, form="chunked", chunk_size=bad)
    # the chunked form, like the scan, runs any A (its powers stop at A^L)
    close(rnn.lti(unstable, x, form="chunked", chunk_size=4), rnn.lti(unstable, x))
    with pytest.raises(ValueError, match="mode"):
        rnn.lti(p, x, mode="fast")


# ---------------------------------------------------------------------------
# LRU
# ---------------------------------------------------------------------------


def lru_params(rng, N=6):
    return normal_like(shapes_of(rnn.init_lru, D_IN, H, state_dim=N), rng)


def test_lru_sequential_parallel_and_diagonal_equal_the_loop(rng, x):
    p = lru_params(rng)
    ref = naive.lru(p, x)
    close(rnn.lru(p, x, mode="sequential"), ref)
    close(rnn.lru(p, x, mode="parallel"), ref)
    close(rnn.lti_diagonal(rnn.lru_to_diagonal(p), x), ref)
    assert np.all(np.abs(np.asarray(rnn.lru_eigenvalues(p))) < 1.0)


def test_lru_forms_have_equal_gradients(rng, x):
    p = lru_params(rng)
    w = jnp.asarray(rng.standard_normal((B, T, H)))
    g_seq = mode_grads_agree(rnn.lru, p, x, w)
    f = lambda nu: float(np.sum(np.asarray(w) * naive.lru(p.replace(nu_log=nu), x)))
    nu = np.asarray(p.nu_log)
    e = np.zeros_like(nu)
    e[2] = 1e-6
    fd = (f(nu + e) - f(nu - e)) / 2e-6  # central differences, O(1e-12) truncation
    assert abs(fd - float(g_seq[0].nu_log[2])) < 1e-7 * max(1.0, abs(fd))


def test_lru_ring_initialization():
    p = rnn.init_lru(
        jax.random.PRNGKey(4), 2, 3, state_dim=4000, r_min=0.4, r_max=0.95, max_phase=np.pi
    )
    lam = np.asarray(rnn.lru_eigenvalues(p))
    r2 = np.abs(lam) ** 2
    assert r2.min() >= 0.4**2 - 1e-12 and r2.max() <= 0.95**2 + 1e-12
    # uniform on the ring's area <=> |lambda|^2 uniform on [r_min^2, r_max^2]
    assert scipy.stats.kstest(r2, "uniform", args=(0.4**2, 0.95**2 - 0.4**2)).pvalue > 1e-3
    assert scipy.stats.kstest(np.angle(lam) % (2 * np.pi), "uniform", args=(0, np.pi)).pvalue > 1e-3
    # gamma normalization: gamma^2 sum_m |lambda|^(2m) = gamma^2 / (1 - |lambda|^2) = 1
    gamma = np.exp(np.asarray(p.gamma_log))
    close(gamma**2 / (1 - r2), np.ones_like(r2), rtol=1e-9)


def test_lru_gamma_normalizes_the_impulse_response_energy():
    # With gamma = sqrt(1 - |lambda|^2), the state's response to a unit impulse through
    # one input has energy sum_m |gamma lambda^m B|^2 = |B|^2 (1 - |lambda|^(2T)).
    p = rnn.init_lru(jax.random.PRNGKey(1), 1, 1, state_dim=3, r_min=0.5, r_max=0.8)
    Tn = 400
    # read each state's real and imaginary part through C: state n, unit readout
    n = p.state_dim
    C_re = np.eye(n)
    eye = rnn.LRUParams(
        p.nu_log,
        p.theta_log,
        p.gamma_log,
        p.input_re,
        p.input_im,
        jnp.asarray(C_re),
        jnp.zeros((n, n)),
        jnp.zeros((n, 1)),
    )
    eye_im = eye.replace(output_re=jnp.zeros((n, n)), output_im=jnp.asarray(-C_re))
    impulse = np.zeros((Tn, 1))
    impulse[0] = 1.0
    re = np.asarray(rnn.lru(eye, impulse))
    im = np.asarray(rnn.lru(eye_im, impulse))  # Re(-i s) = Im(s)
    energy = np.sum(re**2 + im**2, axis=0)
    b2 = np.asarray(p.input_re[:, 0]) ** 2 + np.asarray(p.input_im[:, 0]) ** 2
    r2 = np.abs(np.asarray(rnn.lru_eigenvalues(p))) ** 2
    close(energy, b2 * (1 - r2**Tn), rtol=1e-9)


def test_lru_bad_input(rng, x):
    p = lru_params(rng)
    with pytest.raises(ValueError, match="r_min"):
        rnn.init_lru(jax.random.PRNGKey(0), 2, 3, r_min=0.9, r_max=0.5)
    with pytest.raises(ValueError, match="r_max"):
        rnn.init_lru(jax.random.PRNGKey(0), 2, 3, r_max=1.5)
    with pytest.raises(ValueError, match="theta_log"):
        p.replace(theta_log=p.theta_log[:2])
    with pytest.raises(ValueError, match="input_dim"):
        rnn.lru(p, x[..., :1])


# ---------------------------------------------------------------------------
# S6 and the Mamba block
# ---------------------------------------------------------------------------


def s6_params(rng, D=D_IN, N=3):
    return normal_like(shapes_of(rnn.init_s6, D, N), rng)


@pytest.mark.parametrize("discretization", ["zoh", "euler"])
def test_s6_sequential_and_parallel_equal_the_loop(rng, x, discretization):
    p = s6_params(rng)
    ref = naive.s6(p, x, discretization)
    for mode in ("sequential", "parallel"):
        close(rnn.s6(p, x, mode=mode, discretization=discretization), ref)


def s6_by_autodiff(p, x, discretization="zoh"):
    """S6 composed from public pieces that JAX differentiates itself (forward and reverse
    mode): the coefficients of `s6_coefficients`, a `diagonal_scan`, the readout."""
    a, bbar, c = rnn.s6_coefficients(p, x, discretization=discretization)
    flat = a.shape[:-2] + (a.shape[-2] * a.shape[-1],)
    drive = (bbar * x[..., None]).reshape(flat)
    s = scan.diagonal_scan(a.reshape(flat), drive, mode="sequential").reshape(a.shape)
    return jnp.einsum("...dn,...n->...d", s, c) + p.skip * x


@pytest.mark.parametrize("discretization", ["zoh", "euler"])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("fused", [False, True])
def test_s6_hand_written_gradient(rng, x, discretization, batched, fused, monkeypatch):
    # Both forms of `s6` differentiate through a hand-written VJP (the adjoint recursion and
    # every coefficient cotangent written out; sequential: a fused loop, or for small states
    # a sequential scan and whole-sequence cotangents; parallel: associative scans).
    # `fused=True` lowers the small-state bounds to 0 so that the sequential form takes its
    # fused backward loop, and runs the unjitted layer so that no cached trace bypasses that.
    # Independent references: JAX's autodiff of the same layer composed from public pieces,
    # and finite differences (float64, central, JAX's default step).
    p = s6_params(rng)
    xx = x if batched else x[0]
    w = jnp.asarray(rng.standard_normal(xx.shape))
    want = grads(lambda pp, xs: s6_by_autodiff(pp, xs, discretization), p, xx, w)
    if fused:
        monkeypatch.setattr(selective_ssm, "_VECTORIZED_MAX_STEP", 0)
        monkeypatch.setattr(selective_ssm, "_VECTORIZED_MAX_TOTAL", 0)
    for mode in ("sequential", "parallel"):

        def layer(pp, xs, mode=mode):
            if fused:
                return selective_ssm._s6(pp, xs, mode, discretization)
            return rnn.s6(pp, xs, mode=mode, discretization=discretization)

        close(layer(p, xx), s6_by_autodiff(p, xx, discretization))
        trees_close(grads(layer, p, xx, w), want)
        jax.test_util.check_grads(
            weighted_loss(layer, w), (p, xx), order=1, modes=["rev"], rtol=1e-6
        )


def test_s6_forward_mode_is_refused_and_has_a_public_route(rng, x):
    # `s6`'s hand-written VJP has no JVP (documented in `s6`); composed from
    # `s6_coefficients` and `diagonal_scan`, forward mode works and its directional
    # derivative equals `s6`'s reverse-mode gradient along the same direction.
    p = s6_params(rng)
    v = jax.tree_util.tree_map(lambda a: jnp.asarray(rng.standard_normal(a.shape)), p)
    w = jnp.asarray(rng.standard_normal(x.shape))
    _, forward = jax.jvp(lambda pp: jnp.sum(w * s6_by_autodiff(pp, x)), (p,), (v,))
    for mode in ("sequential", "parallel"):
        run = lambda pp, mode=mode: jnp.sum(w * rnn.s6(pp, x, mode=mode))  # noqa: E731
        reverse = jax.grad(run)(p)
        leaves = zip(jax.tree_util.tree_leaves(reverse), jax.tree_util.tree_leaves(v), strict=True)
        close(forward, sum(jnp.sum(a * b) for a, b in leaves))
        with pytest.raises(TypeError, match="forward-mode"):
            jax.jvp(run, (p,), (v,))


def test_s6_zero_order_hold_is_the_matrix_exponential(rng):
    # Van Loan: expm([[A, B], [0, 0]] * Delta) = [[exp(A Delta), int_0^Delta exp(A s) ds B],
    # [0, 1]]: the exact discretization of s' = A s + B x with x held over the step.
    p = s6_params(rng, D=2, N=3)
    xt = rng.standard_normal((1, 2))
    a, bbar, _ = rnn.s6_coefficients(p, xt)
    delta = naive.softplus(np.asarray(p.step_weight) @ xt[0] + np.asarray(p.step_bias))
    b = np.asarray(p.input_weight) @ xt[0] + np.asarray(p.input_bias)
    A = -np.exp(np.asarray(p.log_rate))
    for d in range(2):
        for n in range(3):
            M = scipy.linalg.expm(np.array([[A[d, n], b[n]], [0.0, 0.0]]) * delta[d])
            close(a[0, d, n], M[0, 0])
            close(bbar[0, d, n], M[0, 1])


def mamba_params(rng, H_out=H, N=3):
    shapes = shapes_of(rnn.init_mamba, D_IN, H_out, expand=2, state_dim=N, conv_size=3)
    ssm = normal_like(shapes.ssm, rng)
    return normal_like(shapes, rng, ssm=ssm)


def test_mamba_block_equals_the_loop_and_its_forms_agree(rng, x):
    p = mamba_params(rng)
    ref = naive.mamba(p, x)
    close(rnn.mamba(p, x, mode="sequential"), ref)
    close(rnn.mamba(p, x, mode="parallel"), ref)
    close(rnn.mamba(p, x, discretization="euler"), naive.mamba(p, x, "euler"))
    w = jnp.asarray(rng.standard_normal((B, T, H)))
    mode_grads_agree(rnn.mamba, p, x, w)


def test_causal_depthwise_conv_is_np_convolve(rng):
    u = rng.standard_normal((9, 4))
    w, b = rng.standard_normal((4, 3)), rng.standard_normal(4)
    close(rnn.causal_depthwise_conv(u, w, b), naive.causal_conv(u, w, b))


def test_s6_and_mamba_bad_input(rng, x):
    p = s6_params(rng)
    with pytest.raises(ValueError, match="discretization"):
        rnn.s6(p, x, discretization="bilinear")
    with pytest.raises(ValueError, match="log_rate"):
        p.replace(log_rate=p.log_rate[:, :1])
    with pytest.raises(ValueError, match="input_dim"):
        rnn.s6(p, x[..., :2])
    m = mamba_params(rng)
    with pytest.raises(ValueError, match="in_weight"):
        m.replace(in_weight=m.in_weight[:3])
    with pytest.raises(ValueError, match="channels of MambaParams.ssm"):
        m.replace(ssm=p)  # 3 channels, the block has 6


# ---------------------------------------------------------------------------
# Bidirectional wrapper and stacks
# ---------------------------------------------------------------------------


def test_bidirectional_equals_the_reversed_sequence_by_hand(rng, x):
    p = rnn.BidirectionalParams(lru_params(rng), lru_params(rng))
    got = np.asarray(rnn.bidirectional(rnn.lru, p, x, mode="sequential"))
    xn = np.asarray(x)
    fwd = naive.lru(p.forward, xn)
    bwd = naive.lru(p.backward, xn[:, ::-1])[:, ::-1]
    close(got, np.concatenate([fwd, bwd], axis=-1))
    # Not causal: the first output reads the last input (through the backward half only).
    jac = jax.jacobian(lambda xx: rnn.bidirectional(rnn.lru, p, xx)[0])(x[0])  # (2H, T, D)
    assert np.abs(np.asarray(jac[H:, T - 1])).max() > 1e-6
    assert np.abs(np.asarray(jac[:H, T - 1])).max() == 0.0
    with pytest.raises(ValueError, match="one layer"):
        rnn.BidirectionalParams(lru_params(rng), s6_params(rng))


def test_bidirectional_attention_by_hand(rng, x):
    p = rnn.BidirectionalParams(attention_params(rng), attention_params(rng))
    got = rnn.bidirectional(rnn.linear_attention, p, x, form="parallel")
    xn = np.asarray(x)
    ref = np.concatenate(
        [
            naive.linear_attention(p.forward, xn),
            naive.linear_attention(p.backward, xn[:, ::-1])[:, ::-1],
        ],
        axis=-1,
    )
    close(got, ref)


def _naive_stack(p, x):
    gelu = lambda v: np.asarray(jax.nn.gelu(jnp.asarray(v)))  # noqa: E731  (tanh approximation)
    u = np.asarray(x) @ np.asarray(p.embed_weight).T + np.asarray(p.embed_bias)
    layer = {
        "lru": naive.lru,
        "s6": naive.s6,
        "lti": naive.lti,
        "mamba": naive.mamba,
        "linear_attention": naive.linear_attention,
    }[p.layer]
    for lp, mp in zip(p.layers, p.mlps, strict=True):
        u = u + layer(lp, u)
        hdn = gelu(u @ np.asarray(mp.hidden_weight).T + np.asarray(mp.hidden_bias))
        u = u + hdn @ np.asarray(mp.output_weight).T + np.asarray(mp.output_bias)
    return u


@pytest.mark.parametrize("layer", rnn.stacking.STACK_LAYERS)
def test_stack_equals_composed_loops(layer, x):
    p = rnn.init_stack(jax.random.PRNGKey(2), D_IN, H, layer=layer, num_layers=2)
    close(rnn.stack(p, x, mode="sequential"), _naive_stack(p, x), rtol=1e-8, atol=1e-9)


def test_stack_modes_agree_in_values_and_gradients(rng, x):
    p = rnn.init_stack(jax.random.PRNGKey(2), D_IN, H, layer="s6", num_layers=1)
    w = jnp.asarray(rng.standard_normal((B, T, H)))
    mode_grads_agree(rnn.stack, p, x, w)


def test_trainer_fits_the_new_layers_and_checkpoints_them(tmp_path):
    # Tasks each layer can solve (chance loss is log 2 ~ 0.69): the recurrent layers
    # recall the symbol seen two steps ago; linear attention, which has no notion of
    # position, reports whether 1s have been the majority so far (a running average).
    # Three fits (compilation dominates); the other entries are traced below.
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=(48, 12))
    x = np.eye(2)[y]
    lag2 = np.concatenate([np.zeros((48, 2), int), y[:, :-2]], axis=1)
    majority = (np.cumsum(y, axis=1) / np.arange(1, 13) > 0.5).astype(int)
    tasks = {"s6_stack": lag2, "mamba": lag2, "linear_attention": majority}
    for cell, target in tasks.items():
        res = rnn.train_cell(
            jax.random.PRNGKey(0),
            cell,
            x,
            target,
            task="latent",
            hidden_dim=8,
            num_steps=60,
            learning_rate=2e-2,
            progress=False,
        )
        # the held-out loss falls well below its starting value
        assert res.history.val_loss[-1] < 0.8 * res.history.val_loss[0], cell
        if cell == "s6_stack":  # a nested pytree (tuples of layers) survives a checkpoint
            rnn.save_checkpoint(tmp_path, res)
            again = rnn.load_checkpoint(tmp_path)
            trees_close(again.params, res.params, rtol=0, atol=0)


def test_every_new_trainer_entry_initializes_and_runs_at_the_trainer_shapes():
    # What train_cell calls: init(key, input_dim, hidden_dim) and run(params, x) on (N, T, D)
    # batches giving (N, T, H); traced only (no compilation).
    from switchssm.rnn._training import CELL_TABLE  # the trainer's table: no public route

    for cell in ("linear_attention", "lti", "lru", "mamba", "s6_stack", "lru_stack"):
        entry = CELL_TABLE[cell]
        out = jax.eval_shape(
            lambda k, xx, entry=entry: entry.run(entry.init(k, 2, 5), xx),
            jax.random.PRNGKey(0),
            jax.ShapeDtypeStruct((3, 7, 2), jnp.float64),
        )
        assert out.shape == (3, 7, 5), cell


def test_parallel_attention_inside_an_outer_jit_at_large_n():
    # Regression: with jax 0.10.2 XLA:CPU returned garbage (1e13-1e21) for the parallel
    # form at T = 4096, E = H = 64 in float32 when the call sat inside an outer jit and the
    # memory was a compile-time constant (a separate phi(Q) S_0 product); it is now one
    # product with the memory as extra columns, and no product at all without a memory.
    n, e = 4096, 64
    p = rnn.init_linear_attention(jax.random.PRNGKey(n + e), e, e, dtype=jnp.float32)
    x = jax.random.normal(jax.random.PRNGKey(1), (n, e), jnp.float32)
    mem = rnn.AttentionMemory(np.full((e, e), 0.1, np.float32), np.full(e, 1.1, np.float32))
    for m in (None, mem):
        ref = np.asarray(rnn.linear_attention(p, x, m, form="recurrent"))
        got = jax.jit(lambda pp, xx, m=m: rnn.linear_attention(pp, xx, m, form="parallel"))(p, x)
        # float32 sums of 4096 positive terms: 1e-5 relative
        close(got, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
