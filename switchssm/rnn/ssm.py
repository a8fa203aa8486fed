r"""Linear time-invariant state-space layers: LTI (scan, FFT convolution, complex diagonal), LRU.

Every layer here is a linear recurrence in its state followed by a readout,

.. math:: s_i = A s_{i-1} + B x_i, \qquad h_i = C s_i + D x_i, \qquad s_0 = 0,

and differs in how ``A, B, C`` are parametrized:

- **LTI** (:func:`lti`): fixed dense ``A, B, C, D``. Because ``s_i = sum_{j<=i} A^{i-j} B x_j``
  the outputs are a causal convolution with the kernel ``K_m = C A^m B`` (``m = 0..T-1``),
  ``h = K * x + D x``, computed with an FFT (``form="convolution"``), or the recurrence is
  scanned (``form="scan"``: sequential :func:`jax.lax.scan`, or the parallel prefix scan
  of :func:`switchssm.scan.dense_scan` with ``mode="parallel"``), or both are combined
  (``form="chunked"``: the convolution inside chunks, the recurrence across them).
- **Diagonal LTI** (:func:`lti_diagonal`): ``A = diag(lambda)`` with complex ``lambda`` and a
  real readout ``h = Re(C s) + D x``. :func:`diagonalize` turns a diagonalizable LTI layer
  ``A = P Lambda P^-1`` into the equivalent diagonal one (``B -> P^-1 B``, ``C -> C P``).
- **LRU** (:func:`lru`, Orvieto et al. 2023): a diagonal LTI layer with
  ``lambda = exp(-exp(nu_log) + i exp(theta_log))`` (so ``|lambda| < 1`` for every value of
  the parameters) and input normalization ``gamma = exp(gamma_log)``, initialized
  ``gamma = sqrt(1 - |lambda|^2)``.

The input-dependent (selective) layers, S6 and the Mamba block, are in
:mod:`switchssm.rnn.selective_ssm`. Diagonal recurrences run with
:func:`switchssm.scan.diagonal_scan` (``mode=``: ``"sequential"``, ``"parallel"``, ``None`` =
backend default).
"""

# ruff: noqa: F722  (jaxtyping shape strings such as "H D" are not forward references)

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from switchssm import _validation as V
from switchssm import scan
from switchssm._pytree import params_pytree
from switchssm._pytree import shape_dim
from switchssm.rnn import _common as C
from switchssm.types import Array
from switchssm.types import Float
from switchssm.types import PRNGKeyArray

__all__ = [
    "LTI_FORMS",
    "DiagonalLTIParams",
    "LRUParams",
    "LTIParams",
    "convolution_kernel",
    "diagonalize",
    "init_lru",
    "init_lti",
    "lru",
    "lru_eigenvalues",
    "lru_to_diagonal",
    "lti",
    "lti_diagonal",
]

LTI_FORMS = ("scan", "convolution", "chunked")


# ---------------------------------------------------------------------------
# LTI
# ---------------------------------------------------------------------------


@params_pytree(promote=False)
class LTIParams:
    """An LTI state-space layer: ``s_i = A s_{i-1} + B x_i``, ``h_i = C s_i + D x_i``.

    Args:
        transition: ``(N, N)`` ``A``.
        input_weight: ``(N, D_in)`` ``B``.
        output_weight: ``(H, N)`` ``C``.
        feedthrough: ``(H, D_in)`` ``D``.
    """

    transition: Float[Array, "N N"]
    input_weight: Float[Array, "N D"]
    output_weight: Float[Array, "H N"]
    feedthrough: Float[Array, "H D"]

    def _validate(self):
        V.check_ndim(self.transition, C.field_name(self, "transition"), 2, "(state_dim, state_dim)")
        n = np.shape(self.transition)[0]
        C.check_field(self, "transition", (n, n), "(state_dim, state_dim)")
        _, d = C.check_field(self, "input_weight", (n, None), "(state_dim, input_dim)")
        h, _ = C.check_field(self, "output_weight", (None, n), "(hidden_dim, state_dim)")
        C.check_field(self, "feedthrough", (h, d), "(hidden_dim, input_dim)")

    input_dim = shape_dim("input_weight", 1)
    hidden_dim = shape_dim("output_weight", 0)
    state_dim = shape_dim("transition", 0)


def _orthogonal(key, n, dtype):
    q, r = jnp.linalg.qr(jax.random.normal(key, (n, n), dtype))
    return q * jnp.sign(jnp.diagonal(r))


def init_lti(
    key: PRNGKeyArray,
    input_dim: int,
    hidden_dim: int,
    *,
    state_dim: int | None = None,
    radius: float = 0.9,
    dtype=None,
) -> LTIParams:
    """Random stable LTI weights: ``A = radius * Q`` (``Q`` orthogonal), so every eigenvalue
    has modulus ``radius``; ``B, C, D ~ U(+-1/sqrt(fan_in))``.

    Args:
        key: PRNG key.
        input_dim: ``D_in``.
        hidden_dim: ``H``.
        state_dim: ``N`` (default ``hidden_dim``).
        radius: spectral radius of ``A``, in ``(0, 1)``.
        dtype: float dtype (default: JAX's default float).

    Returns:
        :class:`LTIParams`.

    Example:
        >>> p = init_lti(jax.random.PRNGKey(0), 2, 3, state_dim=4)
        >>> p.transition.shape, round(float(jnp.abs(jnp.linalg.eigvals(p.transition)).max()), 4)
        ((4, 4), 0.9)
    """
    C.check_dims(input_dim, hidden_dim)
    n = hidden_dim if state_dim is None else V.check_int(state_dim, "state_dim")
    radius = V.check_float(radius, "radius", low=0.0, high=1.0, low_open=True, high_open=True)
    dtype = jnp.result_type(float) if dtype is None else dtype
    k = jax.random.split(key, 4)
    return LTIParams(
        radius * _orthogonal(k[0], n, dtype),
        C.uniform(k[1], (n, input_dim), input_dim, dtype),
        C.uniform(k[2], (hidden_dim, n), n, dtype),
        C.uniform(k[3], (hidden_dim, input_dim), input_dim, dtype),
    )


def _check_stable(transition, name="params.transition"):
    if not V.is_concrete(transition):
        return
    rho = float(np.max(np.abs(np.linalg.eigvals(np.asarray(transition, dtype=np.float64)))))
    if not rho < 1.0:
        raise ValueError(
            f"`{name}` must be stable (spectral radius < 1) for the convolution form, got "
            f"spectral radius {rho:.6g}: its kernel C A^m B does not decay; use form='scan'"
        )


def _kernel(params, T):
    """``K_m = C A^m B`` for ``m = 0..T-1``, ``(T, H, D)``, by a scan over powers."""

    def step(M, _):
        return params.transition @ M, M

    _, powers_B = lax.scan(step, params.input_weight, None, length=T)  # A^m B, (T, N, D)
    return jnp.einsum("hn,tnd->thd", params.output_weight, powers_B)


def convolution_kernel(params: LTIParams, num_timesteps: int) -> Float[Array, "T H D"]:
    r"""The LTI layer's impulse response :math:`K_m = C A^m B`, ``m = 0, ..., T-1``.

    ``h_i = sum_{m=0}^{i-1} K_m x_{i-m} + D x_i`` (the lecture's kernel
    ``(C A^{n-1} B, ..., C B)`` read in reverse order).

    Args:
        params: :class:`LTIParams`.
        num_timesteps: ``T >= 1``.

    Returns:
        ``(T, H, D_in)`` kernel.

    Example:
        >>> p = LTIParams(jnp.array([[0.5]]), jnp.array([[1.0]]), jnp.array([[2.0]]),
        ...               jnp.array([[0.0]]))
        >>> convolution_kernel(p, 3)[:, 0, 0].tolist()
        [2.0, 1.0, 0.5]
    """
    C.check_params(params, LTIParams)
    T = V.check_int(num_timesteps, "num_timesteps")
    return jax.jit(_kernel, static_argnums=1)(params, T)


def _lti_scan(params, x, parallel):
    bx = x @ params.input_weight.T  # (*B, T, N)
    if parallel:
        T, n = bx.shape[-2:]
        a = jnp.broadcast_to(params.transition, (T, n, n))
        s = scan.dense_scan(a, bx, mode="parallel")
    else:
        xs = jnp.moveaxis(bx, -2, 0)

        def step(s, b):
            s = s @ params.transition.T + b
            return s, s

        _, s = lax.scan(step, jnp.zeros(xs.shape[1:], bx.dtype), xs)
        s = jnp.moveaxis(s, 0, -2)
    return s @ params.output_weight.T + x @ params.feedthrough.T


def _lti_conv(params, x):
    T = x.shape[-2]
    K = _kernel(params, T)  # (T, H, D)
    L = 2 * T  # zero padding: the circular convolution of length 2T is the linear one
    Kf = jnp.fft.rfft(K, n=L, axis=0)  # (L/2+1, H, D)
    xf = jnp.fft.rfft(x, n=L, axis=-2)  # (*B, L/2+1, D)
    yf = jnp.einsum("fhd,...fd->...fh", Kf, xf)
    y = jnp.fft.irfft(yf, n=L, axis=-2)[..., :T, :]
    return y.astype(x.dtype) + x @ params.feedthrough.T


def _lti_chunked(params, x, chunk_size):
    """Within chunks of ``L`` steps the layer is a causal convolution written as one product
    with the ``(L, L)`` block-Toeplitz matrix of ``K_m = C A^m B``; across chunks only the
    state entering each chunk is carried, ``S_c = A^L S_{c-1} + sum_j A^{L-1-j} B x_{c,j}``,
    and read out inside the next chunk through ``C A^{i+1}``."""
    A, Bm, Cm = params.transition, params.input_weight, params.output_weight
    T = x.shape[-2]
    L = min(chunk_size, T)
    M = -(-T // L)  # chunks; the last is padded with zeros, which no earlier output reads
    pad = [(0, 0)] * (x.ndim - 2) + [(0, M * L - T), (0, 0)]
    X = jnp.pad(x, pad).reshape(x.shape[:-2] + (M, L, x.shape[-1]))  # (*B, M, L, D)

    def power(P, _):
        return A @ P, P

    _, P = lax.scan(power, jnp.eye(A.shape[0], dtype=A.dtype), None, length=L + 1)  # A^m
    PB = P[:L] @ Bm  # A^m B, (L, N, D)
    K = jnp.einsum("hn,mnd->mhd", Cm, PB)  # (L, H, D)
    lag = jnp.arange(L)[:, None] - jnp.arange(L)[None, :]
    toeplitz = jnp.where((lag >= 0)[..., None, None], K[jnp.maximum(lag, 0)], 0)
    y = jnp.einsum("ijhd,...cjd->...cih", toeplitz, X)
    local = jnp.einsum("jnd,...cjd->...cn", PB[::-1], X)  # each chunk's own final state

    def carry(S, u):
        return S @ P[L].T + u, S

    S0 = jnp.zeros(local.shape[:-2] + local.shape[-1:], local.dtype)
    _, entering = lax.scan(carry, S0, jnp.moveaxis(local, -2, 0))
    readout = jnp.einsum("hn,mnk->mhk", Cm, P[1:])  # C A^{i+1}, (L, H, N)
    y = y + jnp.einsum("ihn,c...n->...cih", readout, entering)
    y = y.reshape(y.shape[:-3] + (M * L, y.shape[-1]))[..., :T, :]
    return y + x @ params.feedthrough.T


@functools.partial(jax.jit, static_argnames=("form", "parallel", "chunk_size"))
def _lti(params, x, form, parallel, chunk_size=8):
    if form == "convolution":
        return _lti_conv(params, x)
    if form == "chunked":
        return _lti_chunked(params, x, chunk_size)
    return _lti_scan(params, x, parallel)


def lti(
    params: LTIParams,
    x: Float[Array, "*B T D"],
    *,
    form: str = "scan",
    mode: str | None = None,
    chunk_size: int = 8,
) -> Float[Array, "*B T H"]:
    r"""Run an LTI state-space layer, :math:`s_i = A s_{i-1} + B x_i`, :math:`h_i = C s_i + D x_i`.

    ``form="scan"``: the recurrence (``mode="sequential"``: :func:`jax.lax.scan`, ``O(T N^2)``;
    ``"parallel"``: :func:`switchssm.scan.dense_scan`'s prefix scan, ``O(T N^3)`` work).
    ``form="convolution"``: :math:`h = K * x + D x` with :math:`K_m = C A^m B`
    (:func:`convolution_kernel`) applied by FFT over ``2T`` points, ``O(T log T H D)``
    after the kernel; needs a stable ``A`` (spectral radius ``< 1``, checked).
    ``form="chunked"``: the convolution inside chunks of ``chunk_size`` steps (one product
    with the block-Toeplitz matrix of ``K_0, ..., K_{L-1}``) and the recurrence across them,
    carrying only the state entering each chunk, ``O(T L H D + T N^2 / L)``; any ``A``. On a
    CPU, with ``N = H = D = 16`` and ``T = 16384``, it measured 1.3x faster than the
    sequential scan forward and 1.65x for the gradient (``benchmarks/bench_layers.py``,
    ``docs/theory.md`` section 8.7); the work inside a chunk grows as ``L H D`` per step, so
    wider layers want smaller chunks. ``s_0 = 0``.

    Args:
        params: :class:`LTIParams`.
        x: ``(T, D_in)`` or ``(B, T, D_in)`` inputs.
        form: ``"scan"``, ``"convolution"`` or ``"chunked"``.
        mode: ``"sequential"``, ``"parallel"`` or ``None`` (``form="scan"`` only).
        chunk_size: ``L >= 1``, steps per chunk of the ``"chunked"`` form.

    Returns:
        ``h``: ``(T, H)`` or ``(B, T, H)``.

    Example:
        >>> p = init_lti(jax.random.PRNGKey(0), 2, 3)
        >>> x = jax.random.normal(jax.random.PRNGKey(1), (8, 2))
        >>> bool(jnp.allclose(lti(p, x), lti(p, x, form="convolution"), atol=1e-5))
        True
    """
    V.check_choice(form, "form", LTI_FORMS)
    parallel = scan.resolve_mode(mode) == "parallel"
    chunk_size = V.check_int(chunk_size, "chunk_size", low=1)
    x = C.prepare(params, LTIParams, x)
    if form == "convolution":
        _check_stable(params.transition)
    if form != "scan":
        parallel = False
    return _lti(params, x, form=form, parallel=parallel, chunk_size=chunk_size)


# ---------------------------------------------------------------------------
# Complex diagonal LTI, diagonalization
# ---------------------------------------------------------------------------


def _check_complex_diagonal(params, per_state: tuple[str, ...]) -> None:
    """Shapes of a complex-diagonal layer: ``per_state`` fields ``(N,)``, ``input_re/im``
    ``(N, D_in)``, ``output_re/im`` ``(H, N)``, ``feedthrough`` ``(H, D_in)``."""
    first = per_state[0]
    V.check_ndim(getattr(params, first), C.field_name(params, first), 1, "(state_dim,)")
    (n,) = np.shape(getattr(params, first))
    for f in per_state:
        C.check_field(params, f, (n,), "(state_dim,)")
    _, d = C.check_field(params, "input_re", (n, None), "(state_dim, input_dim)")
    C.check_field(params, "input_im", (n, d), "(state_dim, input_dim)")
    h, _ = C.check_field(params, "output_re", (None, n), "(hidden_dim, state_dim)")
    C.check_field(params, "output_im", (h, n), "(hidden_dim, state_dim)")
    C.check_field(params, "feedthrough", (h, d), "(hidden_dim, input_dim)")


@params_pytree(promote=False)
class DiagonalLTIParams:
    """A diagonal LTI layer with complex eigenvalues, stored as real and imaginary parts.

    ``s_i = lambda * s_{i-1} + Bbar x_i`` (complex ``s``), ``h_i = Re(Cbar s_i) + D x_i``.

    Args:
        eigenvalues_re, eigenvalues_im: ``(N,)`` ``lambda``.
        input_re, input_im: ``(N, D_in)`` ``Bbar``.
        output_re, output_im: ``(H, N)`` ``Cbar``.
        feedthrough: ``(H, D_in)`` ``D``.
    """

    eigenvalues_re: Float[Array, " N"]
    eigenvalues_im: Float[Array, " N"]
    input_re: Float[Array, "N D"]
    input_im: Float[Array, "N D"]
    output_re: Float[Array, "H N"]
    output_im: Float[Array, "H N"]
    feedthrough: Float[Array, "H D"]

    def _validate(self):
        _check_complex_diagonal(self, ("eigenvalues_re", "eigenvalues_im"))

    input_dim = shape_dim("input_re", 1)
    hidden_dim = shape_dim("output_re", 0)
    state_dim = shape_dim("eigenvalues_re", 0)


def _complex(re, im):
    return lax.complex(re, im)


def _diagonal_run(lam, b_in, c_out, feedthrough, x, mode):
    """``Re(C s) + D x`` with ``s_i = lam * s_{i-1} + Bbar x_i`` (complex), any batch axes.

    The projections are real matrix products on the real and imaginary parts: ``x`` is real
    and only ``Re(C s)`` is read, so a complex product would spend half its multiply-adds on
    terms that are zero or discarded (the LRU at T = 16384, D = N = 64, called repeatedly:
    forward 35 -> 23 ms, gradient 62 -> 51 ms).
    """
    bx = lax.complex(x @ jnp.real(b_in).T, x @ jnp.imag(b_in).T)  # (*B, T, N)
    if mode == "sequential":
        s = _time_invariant_scan(lam, bx)
    else:
        s = scan.diagonal_scan(jnp.broadcast_to(lam, bx.shape[-2:]), bx, mode=mode)
    return jnp.real(s) @ jnp.real(c_out).T - jnp.imag(s) @ jnp.imag(c_out).T + x @ feedthrough.T


def _time_invariant_scan(lam, u):
    """``s_t = lam * s_{t-1} + u_t`` along axis ``-2`` from ``s_0 = 0``, ``lam`` ``(N,)`` fixed.

    The loop closes over ``lam`` instead of scanning a ``(T, N)`` copy of it: at T = 16384,
    N = 64 (complex) that copy took the LRU's forward program from 25 to 34 MB of buffers,
    past glibc's 32 MiB mmap threshold, and its time from 9 to 21 ms (fresh pages on every
    call). Differentiated by JAX; at N = 64 the carry is 512 bytes, under the roughly 1 kB per
    step beyond which XLA:CPU runs a loop body operation by operation (``docs/numerics.md``),
    so much wider states may want the tangent-scan rule of :func:`switchssm.scan.diagonal_scan`.
    """
    u_t = jnp.moveaxis(u, -2, 0)

    def step(s, u_step):
        s = lam * s + u_step
        return s, s

    _, s = lax.scan(step, jnp.zeros(u_t.shape[1:], u.dtype), u_t)
    return jnp.moveaxis(s, 0, -2)


@functools.partial(jax.jit, static_argnames=("mode",))
def _lti_diagonal(params, x, mode):
    lam = _complex(params.eigenvalues_re, params.eigenvalues_im)
    b_in = _complex(params.input_re, params.input_im)
    c_out = _complex(params.output_re, params.output_im)
    return _diagonal_run(lam, b_in, c_out, params.feedthrough, x, mode)


def lti_diagonal(
    params: DiagonalLTIParams, x: Float[Array, "*B T D"], *, mode: str | None = None
) -> Float[Array, "*B T H"]:
    r"""Run a complex-diagonal LTI layer: :math:`s_i = \lambda \odot s_{i-1} + \bar B x_i`,
    :math:`h_i = \mathrm{Re}(\bar C s_i) + D x_i`, ``s_0 = 0``.

    One complex multiply-add per state and step (:func:`switchssm.scan.diagonal_scan`,
    sequential or parallel). Built from a dense layer by :func:`diagonalize` or from an LRU
    by :func:`lru_to_diagonal`.

    Args:
        params: :class:`DiagonalLTIParams`.
        x: ``(T, D_in)`` or ``(B, T, D_in)`` inputs.
        mode: ``"sequential"``, ``"parallel"`` or ``None`` (backend default).

    Returns:
        ``h``: ``(T, H)`` or ``(B, T, H)``, real.

    Example:
        >>> p = init_lti(jax.random.PRNGKey(0), 2, 3)
        >>> x = jax.random.normal(jax.random.PRNGKey(1), (8, 2))
        >>> bool(jnp.allclose(lti_diagonal(diagonalize(p), x), lti(p, x), atol=1e-4))
        True
    """
    mode = scan.resolve_mode(mode)
    x = C.prepare(params, DiagonalLTIParams, x)
    return _lti_diagonal(params, x, mode)


def diagonalize(
    params: LTIParams,
    *,
    perturbation: float = 0.0,
    seed: int = 0,
    max_condition: float = 1e8,
) -> DiagonalLTIParams:
    r"""The complex-diagonal layer equivalent to a diagonalizable LTI layer.

    With :math:`A = P \Lambda P^{-1}` the state :math:`\bar s = P^{-1} s` obeys
    :math:`\bar s_i = \Lambda \bar s_{i-1} + P^{-1} B x_i` and :math:`h_i = C P \bar s_i + D x_i`;
    for real ``A, B, C`` the imaginary part of ``C P s-bar`` is zero, so the real readout is
    exact. Computed with NumPy's ``eig`` on concrete parameters, in float64, then cast.

    A matrix that is not diagonalizable (a Jordan block) has no such ``P``: ``eig`` returns a
    (numerically) singular eigenvector matrix, which is refused when its condition number
    exceeds ``max_condition``. The approximate route: ``perturbation = delta > 0``
    diagonalizes ``A + delta G`` (``G`` a fixed standard normal matrix from ``seed``),
    which is diagonalizable with probability one. Its outputs differ from ``A``'s by
    ``O(delta)`` (the perturbation) plus rounding amplified by ``cond(P)``, which grows like
    ``delta^{-(k-1)/k}`` for a Jordan block of size ``k``: in float64, ``delta`` near
    ``1e-6`` to ``1e-9`` balances the two for small blocks.

    Args:
        params: :class:`LTIParams` (concrete).
        perturbation: ``delta >= 0`` (0: exact diagonalization or an error).
        seed: seed of ``G``.
        max_condition: largest accepted condition number of ``P``.

    Returns:
        :class:`DiagonalLTIParams` in the dtype of ``params``.

    Raises:
        ValueError: if ``A`` is not numerically diagonalizable and ``perturbation == 0``.

    Example:
        >>> jordan = LTIParams(jnp.array([[0.5, 1.0], [0.0, 0.5]]), jnp.ones((2, 1)),
        ...                    jnp.ones((1, 2)), jnp.zeros((1, 1)))
        >>> try:
        ...     diagonalize(jordan)
        ... except ValueError as e:
        ...     print(str(e)[:36])
        `params.transition` is not diagonali
        >>> diagonalize(jordan, perturbation=1e-6).state_dim
        2
    """
    C.check_params(params, LTIParams)
    if not V.all_concrete(params):
        raise ValueError("`params` must be concrete (diagonalize runs NumPy's eig, outside jit)")
    delta = V.check_float(perturbation, "perturbation", low=0.0)
    seed = V.check_int(seed, "seed", low=0)
    max_condition = V.check_float(max_condition, "max_condition", low=1.0)
    A = np.asarray(params.transition, dtype=np.float64)
    if delta > 0:
        A = A + delta * np.random.default_rng(seed).standard_normal(A.shape)
    lam, P = np.linalg.eig(A)
    cond = np.linalg.cond(P)
    if not np.isfinite(cond) or cond > max_condition:
        hint = (
            "pass perturbation > 0 for the approximate diagonalization of A + delta G"
            if delta == 0
            else "increase perturbation"
        )
        raise ValueError(
            f"`params.transition` is not diagonalizable to working precision: its eigenvector "
            f"matrix has condition number {cond:.3g} > max_condition = {max_condition:.3g} "
            f"(a Jordan block, e.g. a repeated eigenvalue with one eigenvector); {hint}, or "
            "run the dense layer (lti, form='scan' or 'convolution')"
        )
    b_bar = np.linalg.solve(P, np.asarray(params.input_weight, dtype=np.float64))
    c_bar = np.asarray(params.output_weight, dtype=np.float64) @ P
    dt = params.transition.dtype
    cast = lambda a: jnp.asarray(a, dtype=dt)  # noqa: E731
    return DiagonalLTIParams(
        cast(lam.real),
        cast(lam.imag),
        cast(b_bar.real),
        cast(b_bar.imag),
        cast(c_bar.real),
        cast(c_bar.imag),
        jnp.asarray(params.feedthrough),
    )


# ---------------------------------------------------------------------------
# LRU
# ---------------------------------------------------------------------------


@params_pytree(promote=False)
class LRUParams:
    r"""Linear recurrent unit weights (Orvieto et al. 2023).

    ``lambda = exp(-exp(nu_log) + i exp(theta_log))``, ``gamma = exp(gamma_log)``;
    ``s_i = lambda * s_{i-1} + gamma * ((B_re + i B_im) x_i)``,
    ``h_i = Re((C_re + i C_im) s_i) + D x_i``.

    Args:
        nu_log, theta_log, gamma_log: ``(N,)``.
        input_re, input_im: ``(N, D_in)`` ``B``.
        output_re, output_im: ``(H, N)`` ``C``.
        feedthrough: ``(H, D_in)`` ``D``.
    """

    nu_log: Float[Array, " N"]
    theta_log: Float[Array, " N"]
    gamma_log: Float[Array, " N"]
    input_re: Float[Array, "N D"]
    input_im: Float[Array, "N D"]
    output_re: Float[Array, "H N"]
    output_im: Float[Array, "H N"]
    feedthrough: Float[Array, "H D"]

    def _validate(self):
        _check_complex_diagonal(self, ("nu_log", "theta_log", "gamma_log"))

    input_dim = shape_dim("input_re", 1)
    hidden_dim = shape_dim("output_re", 0)
    state_dim = shape_dim("nu_log", 0)


def init_lru(
    key: PRNGKeyArray,
    input_dim: int,
    hidden_dim: int,
    *,
    state_dim: int | None = None,
    r_min: float = 0.0,
    r_max: float = 1.0,
    max_phase: float = 2 * np.pi,
    dtype=None,
) -> LRUParams:
    r"""LRU weights with the ring initialization of Orvieto et al. (2023).

    ``|lambda|^2`` is uniform on ``[r_min^2, r_max^2]`` (``lambda`` uniform on the ring's
    area), ``arg lambda`` uniform on ``[0, max_phase]``: ``nu = -log(|lambda|^2) / 2``,
    ``nu_log = log nu``, ``theta_log = log theta``; ``gamma = sqrt(1 - |lambda|^2)`` so that
    white-noise inputs give states of the variance of ``B x``. ``B ~ N(0, 1/(2 D_in))`` (real
    and imaginary parts), ``C ~ N(0, 1/N)``, ``D ~ N(0, 1/D_in)``. ``|lambda|^2`` is kept in
    ``[tiny, 1 - eps]`` of the dtype so that every parameter is finite.

    Args:
        key: PRNG key.
        input_dim: ``D_in``.
        hidden_dim: ``H``.
        state_dim: ``N`` (default ``hidden_dim``).
        r_min, r_max: ring radii, ``0 <= r_min < r_max <= 1``.
        max_phase: largest phase, ``> 0``.
        dtype: float dtype (default: JAX's default float).

    Returns:
        :class:`LRUParams`.

    Example:
        >>> p = init_lru(jax.random.PRNGKey(0), 2, 3, state_dim=5, r_min=0.5, r_max=0.9)
        >>> r = jnp.abs(lru_eigenvalues(p))
        >>> bool((r >= 0.5 - 1e-6).all() and (r <= 0.9 + 1e-6).all())
        True
    """
    C.check_dims(input_dim, hidden_dim)
    n = hidden_dim if state_dim is None else V.check_int(state_dim, "state_dim")
    r_min = V.check_float(r_min, "r_min", low=0.0, high=1.0)
    r_max = V.check_float(r_max, "r_max", low=0.0, high=1.0)
    if not r_min < r_max:
        raise ValueError(f"`r_min` must be < `r_max`, got r_min={r_min}, r_max={r_max}")
    max_phase = V.check_float(max_phase, "max_phase", low=0.0, low_open=True)
    dtype = jnp.result_type(float) if dtype is None else dtype
    k = jax.random.split(key, 7)
    finfo = jnp.finfo(dtype)
    r2 = r_min**2 + jax.random.uniform(k[0], (n,), dtype) * (r_max**2 - r_min**2)
    r2 = jnp.clip(r2, finfo.tiny, 1.0 - finfo.eps)
    nu = -0.5 * jnp.log(r2)
    theta = max_phase * jax.random.uniform(k[1], (n,), dtype, minval=finfo.eps)
    b_scale = 1.0 / np.sqrt(2 * input_dim)
    return LRUParams(
        jnp.log(nu),
        jnp.log(theta),
        0.5 * jnp.log1p(-r2),  # log sqrt(1 - |lambda|^2)
        b_scale * jax.random.normal(k[2], (n, input_dim), dtype),
        b_scale * jax.random.normal(k[3], (n, input_dim), dtype),
        jax.random.normal(k[4], (hidden_dim, n), dtype) / np.sqrt(n),
        jax.random.normal(k[5], (hidden_dim, n), dtype) / np.sqrt(n),
        jax.random.normal(k[6], (hidden_dim, input_dim), dtype) / np.sqrt(input_dim),
    )


def _lru_lambda(params):
    return jnp.exp(_complex(-jnp.exp(params.nu_log), jnp.exp(params.theta_log)))


def lru_eigenvalues(params: LRUParams) -> Array:
    r"""The LRU's diagonal :math:`\lambda = \exp(-e^{\nu_{\log}} + i e^{\theta_{\log}})`.

    ``|lambda| = exp(-exp(nu_log)) < 1`` for every finite ``nu_log``.

    Args:
        params: :class:`LRUParams`.

    Returns:
        ``(N,)`` complex eigenvalues.

    Example:
        >>> p = init_lru(jax.random.PRNGKey(0), 2, 3)
        >>> bool((jnp.abs(lru_eigenvalues(p)) < 1).all())
        True
    """
    C.check_params(params, LRUParams)
    return _lru_lambda(params)


def _lru_parts(params):
    lam = _lru_lambda(params)
    gamma = jnp.exp(params.gamma_log)
    b_in = _complex(params.input_re, params.input_im) * gamma[:, None]
    return lam, b_in, _complex(params.output_re, params.output_im)


@functools.partial(jax.jit, static_argnames=("mode",))
def _lru(params, x, mode):
    lam, b_in, c_out = _lru_parts(params)
    return _diagonal_run(lam, b_in, c_out, params.feedthrough, x, mode)


def lru(
    params: LRUParams, x: Float[Array, "*B T D"], *, mode: str | None = None
) -> Float[Array, "*B T H"]:
    r"""Run a linear recurrent unit.

    .. math:: s_i = \lambda \odot s_{i-1} + \gamma \odot (B x_i), \qquad
              h_i = \mathrm{Re}(C s_i) + D x_i, \qquad s_0 = 0,

    with :math:`\lambda = \exp(-e^{\nu_{\log}} + i e^{\theta_{\log}})` (:func:`lru_eigenvalues`),
    :math:`\gamma = e^{\gamma_{\log}}`; a complex diagonal scan, sequential or parallel.

    Args:
        params: :class:`LRUParams`.
        x: ``(T, D_in)`` or ``(B, T, D_in)`` inputs.
        mode: ``"sequential"``, ``"parallel"`` or ``None`` (backend default).

    Returns:
        ``h``: ``(T, H)`` or ``(B, T, H)``.

    Example:
        >>> p = init_lru(jax.random.PRNGKey(0), 2, 3)
        >>> x = jax.random.normal(jax.random.PRNGKey(1), (8, 2))
        >>> a, b = lru(p, x, mode="sequential"), lru(p, x, mode="parallel")
        >>> bool(jnp.allclose(a, b, atol=1e-5)), a.shape
        (True, (8, 3))
    """
    mode = scan.resolve_mode(mode)
    x = C.prepare(params, LRUParams, x)
    return _lru(params, x, mode)


def lru_to_diagonal(params: LRUParams) -> DiagonalLTIParams:
    r"""The LRU as a :class:`DiagonalLTIParams`: ``lambda``, ``Bbar = gamma * B``, ``Cbar = C``.

    Args:
        params: :class:`LRUParams`.

    Returns:
        :class:`DiagonalLTIParams` computing the same outputs with :func:`lti_diagonal`.

    Example:
        >>> p = init_lru(jax.random.PRNGKey(0), 2, 3)
        >>> lru_to_diagonal(p).state_dim
        3
    """
    C.check_params(params, LRUParams)
    lam, b_in, c_out = _lru_parts(params)
    return DiagonalLTIParams(
        jnp.real(lam),
        jnp.imag(lam),
        jnp.real(b_in),
        jnp.imag(b_in),
        jnp.real(c_out),
        jnp.imag(c_out),
        params.feedthrough,
    )
