"""Bilinear cells (switchssm.rnn.bilinear) against plain NumPy loops over operators built
independently from the weights; sequential == parallel in values and gradients; the
normalized form finite at T = 10^5 in float32; Proposition 2 (commuting operators)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from switchssm.rnn import BlockBilinearParams
from switchssm.rnn import DiagonalBilinearParams
from switchssm.rnn import bilinear
from switchssm.rnn import bilinear_step
from switchssm.rnn import init_bilinear
from switchssm.rnn import init_block_bilinear
from switchssm.rnn import init_complex_diagonal
from switchssm.rnn import init_cp_bilinear
from switchssm.rnn import init_diagonal_bilinear
from switchssm.rnn import init_rotation
from switchssm.rnn import transition_matrices

D, H, T = 3, 6, 7


def _init(kind, key, additive=False, d=D, h=H, **kw):
    return {
        "bilinear": lambda: init_bilinear(key, d, h, additive=additive, **kw),
        "cp": lambda: init_cp_bilinear(key, d, h, rank=4, additive=additive, **kw),
        "block": lambda: init_block_bilinear(key, d, h, block_size=3, additive=additive, **kw),
        "rotation": lambda: init_rotation(key, d, h, scale=True, additive=additive, **kw),
        "rotation_unscaled": lambda: init_rotation(key, d, h, additive=additive, **kw),
        "complex": lambda: init_complex_diagonal(key, d, h, additive=additive, **kw),
        "diagonal": lambda: init_diagonal_bilinear(key, d, h, additive=additive, **kw),
    }[kind]()


KINDS = ["bilinear", "cp", "block", "rotation", "rotation_unscaled", "complex", "diagonal"]


def _numpy_operator(kind, p, x):
    """``A(x)`` for one input vector, written from the definitions (not from the library's
    block code)."""
    x = np.asarray(x, float)
    if kind == "bilinear":
        return np.einsum("ijk,k->ij", np.asarray(p.weight), x)
    if kind == "cp":
        U, Vf, W = (np.asarray(a) for a in (p.left, p.input_factor, p.right))
        return U @ np.diag(Vf.T @ x) @ W.T
    if kind == "block":
        w = np.asarray(p.weight)
        return scipy.linalg.block_diag(*[w[n] @ x for n in range(w.shape[0])])
    if kind.startswith("rotation"):
        theta = np.asarray(p.angle_weight) @ x
        r = np.ones_like(theta) if p.scale is None else np.exp(np.asarray(p.scale.weight) @ x)
        blocks = [
            r_ * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
            for t, r_ in zip(theta, r, strict=True)
        ]
        return scipy.linalg.block_diag(*blocks)
    if kind == "complex":
        lam = (np.asarray(p.real_weight) + 1j * np.asarray(p.imag_weight)) @ x
        # acting on interleaved (Re, Im) pairs: multiplication by a complex number
        blocks = [np.array([[z.real, -z.imag], [z.imag, z.real]]) for z in lam]
        return scipy.linalg.block_diag(*blocks)
    return np.diag(np.asarray(p.weight) @ x)


def _numpy_run(kind, p, x, normalize=False):
    x = np.asarray(x)
    batch = x.shape[:-2]
    out = np.zeros(batch + (x.shape[-2], p.hidden_dim))
    for idx in np.ndindex(*batch):
        h = np.asarray(p.initial_state, float)
        for t in range(x.shape[-2]):
            xt = x[idx + (t,)]
            h = _numpy_operator(kind, p, xt) @ h
            if p.additive is not None:
                h = h + np.asarray(p.additive.weight) @ xt
            if normalize:
                h = h / np.linalg.norm(h)
            out[idx + (t,)] = h
    return out


@pytest.mark.parametrize("additive", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_forms_equal_the_numpy_loop(kind, additive, key):
    p = _init(kind, key, additive)
    x = jax.random.normal(jax.random.PRNGKey(1), (2, T, D))
    ref = _numpy_run(kind, p, x)
    for mode in ("sequential", "parallel"):
        np.testing.assert_allclose(bilinear(p, x, mode=mode), ref, rtol=1e-10, atol=1e-12)
    # the dense operators the library reports are the same matrices
    np.testing.assert_allclose(
        transition_matrices(p, x[0, 0]), _numpy_operator(kind, p, x[0, 0]), atol=1e-13
    )
    # one step
    np.testing.assert_allclose(
        bilinear_step(p, p.initial_state, x[0, 0]), ref[0, 0], rtol=1e-12, atol=1e-13
    )


@pytest.mark.parametrize("kind", KINDS)
def test_normalized_forms_and_gradients_agree(kind, key):
    p = _init(kind, key)
    x = jax.random.normal(jax.random.PRNGKey(2), (2, T, D))
    ref = _numpy_run(kind, p, x, normalize=True)
    outs = {m: bilinear(p, x, mode=m, normalize=True) for m in ("sequential", "parallel")}
    for out in outs.values():
        np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 1.0, rtol=1e-12)

    # the loss weights each state by a fixed random vector so no gradient is trivially zero
    w = jax.random.normal(jax.random.PRNGKey(3), (2, T, H))

    def loss(p, x, mode, normalize):
        return jnp.sum(w * bilinear(p, x, mode=mode, normalize=normalize) ** 2 + w * 0.1)

    for normalize in (False, True):
        gs, gxs = jax.grad(loss, argnums=(0, 1))(p, x, "sequential", normalize)
        gp, gxp = jax.grad(loss, argnums=(0, 1))(p, x, "parallel", normalize)
        for a, b in zip(jax.tree_util.tree_leaves(gs), jax.tree_util.tree_leaves(gp), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(gxs, gxp, rtol=1e-9, atol=1e-11)
    # and against central finite differences in one weight direction
    leaves, tree = jax.tree_util.tree_flatten(p)
    direction = [
        jax.random.normal(jax.random.PRNGKey(4 + i), a.shape) for i, a in enumerate(leaves)
    ]
    shifted = lambda e: jax.tree_util.tree_unflatten(
        tree, [a + e * d for a, d in zip(leaves, direction, strict=True)]
    )
    eps = 1e-6
    fd = (
        loss(shifted(eps), x, "sequential", True) - loss(shifted(-eps), x, "sequential", True)
    ) / (2 * eps)
    g = jax.grad(loss)(p, x, "sequential", True)
    an = sum(jnp.sum(a * d) for a, d in zip(jax.tree_util.tree_leaves(g), direction, strict=True))
    np.testing.assert_allclose(an, fd, rtol=1e-6)


@pytest.mark.parametrize("kind", ["bilinear", "block", "rotation", "complex", "diagonal"])
def test_normalized_form_is_finite_at_a_hundred_thousand_steps_in_float32(kind):
    """Purely multiplicative states grow or decay geometrically; the normalized forms stay
    unit vectors in float32 and follow the float64 direction."""
    key = jax.random.PRNGKey(5)
    p64 = _init(kind, key, d=2, h=6)
    # scale the operators so unnormalized states would overflow float32 within ~100 steps
    p64 = jax.tree_util.tree_map(lambda a: a * 3.0, p64)
    p32 = jax.tree_util.tree_map(lambda a: a.astype(jnp.float32), p64)
    symbols = jax.random.randint(jax.random.PRNGKey(6), (100_000,), 0, 2)
    x = jax.nn.one_hot(symbols, 2)
    ref = np.asarray(bilinear(p64, x, mode="sequential", normalize=True))
    with jax.enable_x64(False):
        for mode in ("sequential", "parallel"):
            h = np.asarray(bilinear(p32, x.astype(jnp.float32), mode=mode, normalize=True))
            assert h.dtype == np.float32 and np.all(np.isfinite(h))
            np.testing.assert_allclose(np.linalg.norm(h, axis=-1), 1.0, rtol=1e-5)
            # the direction over the first 50 steps, before float32 rounding has had time
            # to drift apart chaotically (a full bilinear map is not a contraction)
            np.testing.assert_allclose(h[:50], ref[:50], atol=1e-3)
    if kind != "rotation":  # (initialized with zero log-scales: pure rotations keep the norm)
        # without normalization the float32 state leaves the float range within 200 steps
        with jax.enable_x64(False):
            raw = np.asarray(bilinear(p32, x[:200].astype(jnp.float32), mode="sequential"))
        norms = np.linalg.norm(raw.astype(np.float64), axis=-1)
        assert not np.all(np.isfinite(norms) & (norms > 0)) or norms.max() / norms.min() > 1e30


def test_block_of_size_one_is_the_diagonal_cell_and_of_size_h_the_full_cell(key):
    d = init_diagonal_bilinear(key, D, H)
    as_block = BlockBilinearParams(d.weight[:, None, None, :], d.initial_state)
    x = jax.random.normal(jax.random.PRNGKey(7), (T, D))
    np.testing.assert_allclose(bilinear(as_block, x), bilinear(d, x), rtol=1e-13)
    full = init_bilinear(key, D, H)
    one_block = BlockBilinearParams(full.weight[None], full.initial_state)
    np.testing.assert_allclose(bilinear(one_block, x), bilinear(full, x), rtol=1e-12)


@pytest.mark.parametrize("kind", ["rotation", "rotation_unscaled", "complex", "diagonal", "block"])
def test_shared_eigenbasis_operators_commute(kind, key):
    """Proposition 2: diagonal, complex-diagonal and rotation operators share an eigenbasis,
    so ``A(x) A(x') = A(x') A(x)`` for every pair of inputs; free 2x2 blocks and the full
    cell do not."""
    p = _init(kind, key)
    xs = jax.random.normal(jax.random.PRNGKey(8), (5, D))
    A = np.asarray(transition_matrices(p, xs))
    comm = max(np.abs(A[i] @ A[j] - A[j] @ A[i]).max() for i in range(5) for j in range(5))
    if kind == "block":
        assert comm > 1e-2
    else:
        assert comm < 1e-13


def test_full_and_cp_operators_do_not_commute(key):
    for p in (init_bilinear(key, D, H), init_cp_bilinear(key, D, H, rank=3)):
        A = np.asarray(transition_matrices(p, jnp.eye(D)))
        assert np.abs(A[0] @ A[1] - A[1] @ A[0]).max() > 1e-2


def test_initial_state_is_a_parameter_and_h0_overrides_it(key):
    p = init_bilinear(key, D, H)
    x = jax.random.normal(jax.random.PRNGKey(9), (T, D))
    h0 = jnp.arange(1.0, H + 1.0)
    np.testing.assert_allclose(
        bilinear(p, x, h0), bilinear(p.replace(initial_state=h0), x), rtol=1e-14
    )
    g = jax.grad(lambda p: jnp.sum(bilinear(p, x, normalize=True)[-1]))(p)
    assert np.abs(g.initial_state).max() > 0


def test_batched_equals_one_sequence_at_a_time(key):
    p = init_cp_bilinear(key, D, H, rank=3)
    x = jax.random.normal(jax.random.PRNGKey(10), (3, T, D))
    batch = bilinear(p, x, normalize=True)
    for i in range(3):
        np.testing.assert_allclose(batch[i], bilinear(p, x[i], normalize=True), rtol=1e-13)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda p: bilinear(p, np.ones((4, D + 1))), "last dimension"),
        (lambda p: bilinear(p, np.ones((0, D))), "at least one time step"),
        (lambda p: bilinear(p, np.full((4, D), np.nan)), "finite"),
        (lambda p: bilinear(p, np.ones((4, D)), mode="fast"), "mode"),
        (lambda p: bilinear(p, np.ones((4, D)), np.ones(H + 1)), "h0"),
        (lambda p: bilinear(p, np.ones((4, D)), np.zeros(H), normalize=True), "nonzero"),
        (lambda p: bilinear(p, np.ones((4, D)), normalize="yes"), "normalize"),
        (lambda p: bilinear(object(), np.ones((4, D))), "params"),
        (lambda p: transition_matrices(p, np.ones(D + 2)), "last dimension"),
    ],
)
def test_bad_input_raises(call, match, key):
    with pytest.raises(ValueError, match=match):
        call(init_bilinear(key, D, H))


def test_bad_parameters_raise(key):
    with pytest.raises(ValueError, match="normalize"):
        bilinear(init_bilinear(key, D, H, additive=True), np.ones((4, D)), normalize=True)
    with pytest.raises(ValueError, match="even"):
        init_rotation(key, D, 5)
    with pytest.raises(ValueError, match="multiple of `block_size`"):
        init_block_bilinear(key, D, 6, block_size=4)
    with pytest.raises(ValueError, match="rank"):
        init_cp_bilinear(key, D, H, rank=0)
    with pytest.raises(ValueError, match="DiagonalBilinearParams.initial_state"):
        DiagonalBilinearParams(np.ones((H, D)), np.ones(H + 1))
    with pytest.raises(ValueError, match="BlockBilinearParams.weight"):
        BlockBilinearParams(np.ones((2, 3, 2, D)), np.ones(6))
    with pytest.raises(ValueError, match="finite"):
        DiagonalBilinearParams(np.full((H, D), np.inf), np.ones(H))
