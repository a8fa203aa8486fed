r"""The Gaussian-latent bridges, measured: the information-form minGRU vs the exact filter.

:func:`gaussian_latent_sweep` draws sequences from a built-in Gaussian-latent model
(:func:`default_gaussian_params`) over a range of cue separations and compares the exact
run-length filter (:func:`switchssm.inference.run_length_filter`) with the information-form
minGRU and the selective information recursion (:mod:`switchssm.bridges.gaussian_info`): the
mean is exact in the gated model at every cue strength, the covariance gap closes as the cue
sharpens but only after the first switch (docs/theory.md section 4).
:func:`gaussian_info_checks` are its rows of ``switchssm verify``.
"""

# ruff: noqa: F722

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from switchssm import _validation as V
from switchssm.bridges.gaussian_info import InformationBelief
from switchssm.bridges.gaussian_info import check_gaussian_latent
from switchssm.bridges.gaussian_info import information_form_inputs
from switchssm.bridges.gaussian_info import information_form_mingru
from switchssm.bridges.gaussian_info import information_form_selective
from switchssm.bridges.gaussian_info import information_terms
from switchssm.bridges.gaussian_info import mingru_from_gaussian_latent
from switchssm.bridges.high_mi import check_separation
from switchssm.bridges.high_mi import cue_information
from switchssm.inference.changepoint import run_length_filter
from switchssm.models.gaussian_latent import GaussianLatentParams
from switchssm.models.gaussian_latent import sample_gaussian_latent
from switchssm.models.params import GaussianCue
from switchssm.types import PRNGKeyArray
from switchssm.verify.checks import Check
from switchssm.verify.checks import tolerance
from switchssm.verify.high_mi import with_separation

__all__ = [
    "GaussianSweep",
    "default_gaussian_params",
    "gaussian_info_checks",
    "gaussian_latent_sweep",
    "gaussian_sweep_sequences",
    "gaussian_sweep_table",
]


DEFAULT_GAUSSIAN_SEPARATIONS = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0)


def default_gaussian_params(separation: float = 2.0, *, gated: bool = True):
    """The built-in Gaussian-latent model of the sweep: ``K = D = 2``, ``rho = 0.1``.

    ``mu0 = (0.5, -1)``, ``S0 = [[1, .3], [.3, .8]]``, ``C = [[1, .2], [-.3, .9]]``,
    ``R = 0.5 I``, scalar cue ``u | z ~ N(z d, 1)``.

    Example:
        >>> default_gaussian_params(4.0).cue.separation.item()
        4.0
    """
    return GaussianLatentParams(
        initial_mean=np.array([0.5, -1.0]),
        initial_cov=np.array([[1.0, 0.3], [0.3, 0.8]]),
        emission_matrix=np.array([[1.0, 0.2], [-0.3, 0.9]]),
        emission_cov=0.5 * np.eye(2),
        switch_prob=0.1,
        cue=GaussianCue(np.array([0.0, float(separation)]), 1.0),
        gated=gated,
    )


def _np_spd_inv(A):
    return np.linalg.inv(A)


def _np_gauss_kl(m1, S1, m2, J2):
    """``KL(N(m1, S1) || N(m2, J2^-1))`` over leading axes (NumPy)."""
    K = m1.shape[-1]
    dm = m2 - m1
    quad = np.einsum("...i,...ij,...j->...", dm, J2, dm)
    tr = np.einsum("...ij,...ji->...", J2, S1)
    ld_S1 = np.linalg.slogdet(S1)[1]
    ld_J2 = np.linalg.slogdet(J2)[1]
    return 0.5 * (tr + quad - K - ld_J2 - ld_S1)


@functools.partial(jax.jit, static_argnames=("num_timesteps",))
def _sample_batch(params, keys, num_timesteps):
    return jax.vmap(lambda k: sample_gaussian_latent(k, params, num_timesteps))(keys)


@jax.jit
def _filter_batch(params, y, u):
    """Exact run-length filter moments and both information-form beliefs, batched (the
    public functions run unvalidated on tracers)."""

    def one(y, u):
        post = run_length_filter(params, y, u)
        return (
            post.filtered_mean,
            post.filtered_cov,
            information_form_mingru(params, y, u),
            information_form_selective(params, y, u),
        )

    return jax.vmap(one)(y, u)


def _batch_run(params, keys, num_timesteps):
    y, u, _, z = _sample_batch(params, keys, num_timesteps)
    m, S, info, sel = (
        jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), out)
        for out in _filter_batch(params, y, u)
    )
    return np.asarray(z), m, S, InformationBelief(*info), InformationBelief(*sel)


def gaussian_sweep_sequences(
    params: GaussianLatentParams | None = None,
    separation: float = 0.0,
    *,
    gated: bool = True,
    num_timesteps: int = 60,
    num_sequences: int = 32,
    key: PRNGKeyArray | None = None,
):
    """The sequences :func:`gaussian_latent_sweep` draws at one separation.

    ``N = num_sequences`` draws of :func:`~switchssm.models.sample_gaussian_latent` with the
    keys ``jax.random.split(key, N)`` (the same at every separation).

    Returns:
        ``(params_d, (y, u, s, z))``: the model at that separation and batched arrays of
        leading dimension ``N``.

    Example:
        >>> p, (y, u, s, z) = gaussian_sweep_sequences(separation=2.0, num_timesteps=10,
        ...                                            num_sequences=3)
        >>> y.shape, s.shape
        ((3, 10, 2), (3, 10, 2))
    """
    params = default_gaussian_params() if params is None else params
    check_gaussian_latent(params)
    check_separation(separation, "separation", scalar=True)
    T = V.check_int(num_timesteps, "num_timesteps")
    N = V.check_int(num_sequences, "num_sequences")
    key = jax.random.PRNGKey(0) if key is None else key
    params_d = with_separation(params, float(separation), gated=bool(gated))
    return params_d, _sample_batch(params_d, jax.random.split(key, N), T)


def _batch_stats(params, keys, num_timesteps):
    """Per-sequence statistics of the information-form beliefs against the exact filter."""
    T = num_timesteps
    z, m, S, info, sel = _batch_run(params, keys, T)
    Jt = info.precision[0, 0]
    gap = S - _np_spd_inv(Jt)
    tr_gap = np.trace(gap, axis1=-2, axis2=-1)
    kl = _np_gauss_kl(m, S, info.mean, Jt)
    has = np.any(z == 1, axis=1)
    first = np.where(has, np.argmax(z == 1, axis=1), T)
    mask = (np.arange(T)[None] >= first[:, None]).astype(np.float64)
    n = np.maximum(mask.sum(1), 1.0)
    d_info = m - info.mean
    d_sel = m - sel.mean
    sel_cov = _np_spd_inv(sel.precision)
    kl_sel = _np_gauss_kl(m, S, sel.mean, sel.precision)
    return {
        "valid": has,
        "mean_err_max": np.max(np.abs(d_info), axis=(1, 2)),
        "tr_gap_after": np.sum(mask * tr_gap, 1) / n,
        "kl_after": np.sum(mask * kl, 1) / n,
        "tr_gap_all": np.mean(tr_gap, 1),
        "min_eig": np.min(np.linalg.eigvalsh(0.5 * (gap + np.swapaxes(gap, -1, -2))), axis=(1, 2)),
        "mean_rms": np.sqrt(np.mean(np.sum(d_info**2, -1), 1)),
        "kl_all": np.mean(kl, 1),
        "sel_rms": np.sqrt(np.mean(np.sum(d_sel**2, -1), 1)),
        "sel_kl": np.mean(kl_sel, 1),
        "sel_err_max": np.maximum(
            np.max(np.abs(d_sel), axis=(1, 2)), np.max(np.abs(S - sel_cov), axis=(1, 2, 3))
        ),
    }


class GaussianSweep(NamedTuple):
    """Output of :func:`gaussian_latent_sweep` (NumPy arrays, ``n`` separations).

    Gated model (exact run-length filter vs :func:`information_form_mingru`):

    Attributes:
        separations: ``(n,)`` cue separations :math:`d`.
        mutual_information: ``(n,)`` :math:`I(u; z)` in nats.
        switch_entropy: :math:`H(z)` in nats.
        information_ratio: ``(n,)`` :math:`I/H`.
        gated_mean_error: ``(n,)`` max abs difference of the means, all steps and sequences
            (an exact identity: rounding only).
        gated_cov_gap, gated_cov_gap_se: ``(n,)`` mean of
            :math:`\\operatorname{tr}(\\Sigma_t - \\tilde J^{-1})` over the steps at and after
            the first true switch (sequences without a switch are left out), and its
            standard error over sequences.
        gated_kl, gated_kl_se: ``(n,)`` mean of
            :math:`KL(N(m_t, \\Sigma_t) \\| N(\\tilde J^{-1}\\eta_t, \\tilde J^{-1}))` over the same
            steps (the moment-matched exact posterior against the minGRU's Gaussian).
        gated_cov_gap_all: ``(n,)`` the trace gap over all steps (includes the
            :math:`S_0 - \\tilde J^{-1}` plateau before the first switch).
        gated_min_eig: ``(n,)`` smallest eigenvalue of :math:`\\Sigma_t - \\tilde J^{-1}` over
            all steps and sequences (nonnegative: the PSD claim).

    Always-emitting model (exact run-length filter vs the same minGRU, and vs
    :func:`information_form_selective`):

    Attributes:
        always_mean_error, always_mean_error_se: ``(n,)`` RMS over steps of
            :math:`\\lVert m_t - \\tilde J^{-1}\\eta_t\\rVert`, averaged over sequences.
        always_kl, always_kl_se: ``(n,)`` mean KL of the exact moments from the minGRU's
            Gaussian, all steps.
        always_selective_mean_error, always_selective_kl: ``(n,)`` the same for the
            selective recursion.
        always_selective_max_error: ``(n,)`` max abs error of the selective mean and
            covariance, all steps and sequences (0 up to rounding at hard gates).
        num_timesteps, num_sequences: simulation size.
    """

    separations: np.ndarray
    mutual_information: np.ndarray
    switch_entropy: float
    information_ratio: np.ndarray
    gated_mean_error: np.ndarray
    gated_cov_gap: np.ndarray
    gated_cov_gap_se: np.ndarray
    gated_kl: np.ndarray
    gated_kl_se: np.ndarray
    gated_cov_gap_all: np.ndarray
    gated_min_eig: np.ndarray
    always_mean_error: np.ndarray
    always_mean_error_se: np.ndarray
    always_kl: np.ndarray
    always_kl_se: np.ndarray
    always_selective_mean_error: np.ndarray
    always_selective_kl: np.ndarray
    always_selective_max_error: np.ndarray
    num_timesteps: int
    num_sequences: int


def _masked_mean_se(x, valid):
    x = np.asarray(x, np.float64)[np.asarray(valid, bool)]
    if x.size == 0:
        return float("nan"), float("nan")
    se = x.std(ddof=1) / np.sqrt(x.size) if x.size > 1 else float("nan")
    return float(x.mean()), float(se)


def gaussian_latent_sweep(
    params: GaussianLatentParams | None = None,
    separations=DEFAULT_GAUSSIAN_SEPARATIONS,
    *,
    num_timesteps: int = 60,
    num_sequences: int = 32,
    key: PRNGKeyArray | None = None,
) -> GaussianSweep:
    r"""Information-form minGRU against the exact run-length filter as the cue sharpens.

    For each separation :math:`d`, sequences are drawn with
    :func:`~switchssm.models.sample_gaussian_latent` from the gated and the always-emitting
    model (common random numbers: the same keys at every :math:`d`, so only the cue means
    move), filtered exactly by :func:`~switchssm.inference.run_length_filter` (no pruning),
    and compared with :func:`information_form_mingru` (and, always-emitting, with
    :func:`information_form_selective`); see :class:`GaussianSweep` for the measures.

    Args:
        params: a :class:`~switchssm.models.GaussianLatentParams` (its cue's :math:`m_0`,
            :math:`\tau` and direction are kept, :math:`m_1` is moved); ``None`` uses
            :func:`default_gaussian_params`. Its ``gated`` flag is ignored.
        separations: 1-D nonnegative separations.
        num_timesteps: ``T`` (the exact filter costs :math:`O(T^2)`).
        num_sequences: ``N`` per separation.
        key: PRNG key (default ``PRNGKey(0)``).

    Returns:
        :class:`GaussianSweep`.

    Example:
        >>> sw = gaussian_latent_sweep(separations=[0.0, 4.0], num_timesteps=20, num_sequences=4)
        >>> bool(sw.gated_mean_error.max() < 1e-4)  # rounding (float32 unless x64 is on)
        True
    """
    params = default_gaussian_params() if params is None else params
    if not isinstance(params, GaussianLatentParams):
        raise ValueError(
            f"`params` must be a GaussianLatentParams or None, got {type(params).__name__}"
        )
    d = np.asarray(separations, dtype=np.float64)
    if d.ndim != 1 or d.size < 1:
        raise ValueError(f"`separations` must be a non-empty 1-D list, got shape {d.shape}")
    check_separation(d, "separations")
    T = V.check_int(num_timesteps, "num_timesteps")
    N = V.check_int(num_sequences, "num_sequences")
    key = jax.random.PRNGKey(0) if key is None else key
    keys = jax.random.split(key, N)
    rho = float(params.switch_prob)
    mi, h = cue_information(jnp.asarray(rho, float), jnp.asarray(d, float))
    mi, h = np.asarray(mi, np.float64), float(h)

    rows = {k: [] for k in GaussianSweep._fields[4:18]}
    for dk in d:
        g = _batch_stats(with_separation(params, dk, gated=True), keys, T)
        a = _batch_stats(with_separation(params, dk, gated=False), keys, T)
        everyone = np.ones(N, bool)
        rows["gated_mean_error"].append(float(g["mean_err_max"].max()))
        m_, s_ = _masked_mean_se(g["tr_gap_after"], g["valid"])
        rows["gated_cov_gap"].append(m_)
        rows["gated_cov_gap_se"].append(s_)
        m_, s_ = _masked_mean_se(g["kl_after"], g["valid"])
        rows["gated_kl"].append(m_)
        rows["gated_kl_se"].append(s_)
        rows["gated_cov_gap_all"].append(float(g["tr_gap_all"].mean()))
        rows["gated_min_eig"].append(float(g["min_eig"].min()))
        m_, s_ = _masked_mean_se(a["mean_rms"], everyone)
        rows["always_mean_error"].append(m_)
        rows["always_mean_error_se"].append(s_)
        m_, s_ = _masked_mean_se(a["kl_all"], everyone)
        rows["always_kl"].append(m_)
        rows["always_kl_se"].append(s_)
        rows["always_selective_mean_error"].append(float(a["sel_rms"].mean()))
        rows["always_selective_kl"].append(float(a["sel_kl"].mean()))
        rows["always_selective_max_error"].append(float(a["sel_err_max"].max()))
    return GaussianSweep(
        separations=d,
        mutual_information=mi,
        switch_entropy=h,
        information_ratio=mi / h if h > 0 else np.zeros_like(mi),
        **{k: np.asarray(v) for k, v in rows.items()},
        num_timesteps=T,
        num_sequences=N,
    )


def gaussian_sweep_table(sweep: GaussianSweep) -> list[dict]:
    """One JSON-ready row per separation of a :class:`GaussianSweep`.

    Render with :func:`switchssm.bridges.high_mi.markdown_table`.

    Example:
        >>> sw = gaussian_latent_sweep(separations=[1.0], num_timesteps=10, num_sequences=2)
        >>> gaussian_sweep_table(sw)[0]["d"]
        1.0
    """
    if not isinstance(sweep, GaussianSweep):
        raise ValueError(f"`sweep` must be a GaussianSweep, got {type(sweep).__name__}")
    skip = {"switch_entropy", "num_timesteps", "num_sequences"}
    names = [f for f in GaussianSweep._fields if f not in skip]
    out = []
    for i in range(len(sweep.separations)):
        row = {"d" if n == "separations" else n: float(getattr(sweep, n)[i]) for n in names}
        out.append(row)
    return out


def gaussian_info_checks(
    params: GaussianLatentParams | None = None,
    *,
    num_timesteps: int = 40,
    num_sequences: int = 8,
    key: PRNGKeyArray | None = None,
) -> list[Check]:
    """Checks of docs/theory.md section 4 for ``switchssm verify`` (a few seconds).

    Runs :func:`gaussian_latent_sweep` at ``d = 0, 2, 4, 8, 40`` and returns:

    - ``gaussian/info-form-minGRU`` (exact): :func:`switchssm.rnn.mingru` with
      :func:`mingru_from_gaussian_latent` equals the direct recursion's :math:`\\eta_t`;
    - ``gaussian/gated-mean`` (exact): the information-form mean equals the exact filtered
      mean of the gated model at every separation;
    - ``gaussian/gated-cov-psd`` (exact): :math:`\\Sigma_t - \\tilde J^{-1} \\succeq 0`;
    - ``gaussian/gated-cov-gap`` (approximate): covariance trace gap after the first switch at
      ``d = 8`` relative to ``d = 0``;
    - ``gaussian/always-mean-gap`` (approximate): RMS mean error of the minGRU in the
      always-emitting model at ``d = 8``;
    - ``gaussian/always-selective-hard`` (exact): at ``d = 40`` the selective information
      recursion equals the exact always-emitting filter (mean and covariance).

    Example:
        >>> all(c.passed for c in gaussian_info_checks(num_timesteps=15, num_sequences=2))
        True
    """
    params = default_gaussian_params() if params is None else params
    check_gaussian_latent(params)
    seps = [0.0, 2.0, 4.0, 8.0, 40.0]
    sw = gaussian_latent_sweep(
        params, seps, num_timesteps=num_timesteps, num_sequences=num_sequences, key=key
    )
    # The minGRU identity is algebraic (it holds for any inputs): random ones will do.
    p = with_separation(params, 2.0, gated=True)
    rng = np.random.default_rng(1)
    y = rng.normal(size=(num_timesteps, p.emission_dim))
    u = rng.normal(size=(num_timesteps,) + np.shape(p.cue.means)[1:]) + 1.0
    from switchssm.rnn import mingru

    eta = information_form_mingru(p, y, u).eta
    Jt = information_terms(p)[2]
    eta_rnn = mingru(
        mingru_from_gaussian_latent(p),
        information_form_inputs(p, y, u),
        h0=Jt @ p.initial_mean,
        space="logit",
        mode="sequential",
    )
    scale = max(1.0, float(jnp.max(jnp.abs(eta))))
    rnn_err = float(jnp.max(jnp.abs(eta_rnn - eta))) / scale
    gap0, gap8 = sw.gated_cov_gap[0], sw.gated_cov_gap[3]
    return [
        Check(
            "gaussian/info-form-minGRU",
            "minGRU (logit states) with gate from the cue and candidate C'R^-1 y + S0^-1 mu0 "
            "computes the information vector eta_t",
            "exact",
            "max abs error / max |eta|",
            rnn_err,
            tolerance(1e-12, 1e-5),
        ),
        Check(
            "gaussian/gated-mean",
            "gated model, marginal background: J~^-1 eta_t equals the exact filtered mean "
            "(run-length filter) at d = " + ", ".join(f"{s:g}" for s in seps),
            "exact",
            "max abs error",
            float(np.max(sw.gated_mean_error)),
            tolerance(1e-9, 1e-4),
        ),
        Check(
            "gaussian/gated-cov-psd",
            "gated model: the exact posterior covariance exceeds J~^-1 (PSD difference)",
            "exact",
            "max(0, -min eigenvalue of Sigma_t - J~^-1)",
            float(max(0.0, -np.min(sw.gated_min_eig))),
            tolerance(1e-9, 1e-4),
        ),
        Check(
            "gaussian/gated-cov-gap",
            f"gated model: covariance gap tr(Sigma_t - J~^-1) after the first switch closes as "
            f"the cue sharpens ({gap0:.3g} at d = 0, {gap8:.3g} at d = 8; before the first "
            f"switch it stays tr(S0 - J~^-1) whatever the cue)",
            "approximate",
            "trace gap at d = 8 / trace gap at d = 0",
            float(gap8 / gap0) if gap0 > 0 else float("nan"),
        ),
        Check(
            "gaussian/always-mean-gap",
            "always-emitting model: the information-form minGRU mean is off the exact mean "
            "(the exact precision grows within a segment)",
            "approximate",
            "RMS mean error at d = 8",
            float(sw.always_mean_error[3]),
        ),
        Check(
            "gaussian/always-selective-hard",
            "always-emitting model, d = 40 (hard gates): the selective recursion "
            "eta_t = (1-g)eta_{t-1} + g S0^-1 mu0 + C'R^-1 y_t, J_t likewise, is the exact filter",
            "exact",
            "max abs error (mean and covariance)",
            float(sw.always_selective_max_error[-1]),
            tolerance(1e-9, 1e-4),
        ),
    ]
