r"""Training RNN cells on sequences: next-observation prediction or the latent state.

:func:`train_cell` fits a cell of :mod:`switchssm.rnn` plus a linear readout
(:class:`~switchssm.rnn.ReadoutParams`) by minibatch gradient descent (``optax``: Adam
after clipping the global gradient norm), holding out whole sequences for validation.
Two tasks, with ``h_t`` the cell state after reading ``x_{1:t}`` and
``o_t = W h_t + b`` the readout:

- ``task="next_observation"``: predict ``y_{t+1}`` from ``h_t`` (``t = 1..T-1``).
  Categorical ``y``: cross-entropy :math:`-\log \mathrm{softmax}(o_t)_{y_{t+1}}`;
  real ``y`` in ``R^D``: mean squared error :math:`\frac1D \|y_{t+1} - o_t\|^2`
  (``loss="mse"``) or the Gaussian negative log-likelihood with ``o_t = (\mu_t, \log\sigma_t)``
  (``loss="gaussian_nll"``, :math:`\sum_d \tfrac12\log 2\pi + \log\sigma_{td}
  + \tfrac12 ((y_{t+1,d} - \mu_{td}) / \sigma_{td})^2`).
- ``task="latent"``: predict a known latent ``s_t`` from ``h_t`` (cross-entropy), the
  supervised version of the filtering problem; the exact filter's MAP is the best any
  causal reader of ``x_{1:t}`` can do on average.

The loss is averaged over valid steps: sequences of different lengths are padded and
masked (``lengths``, or a list of sequences). Everything that touches data is validated
before any ``jit`` and raises ``ValueError`` naming the argument.

Checkpoints (``checkpoint_dir``) are written without pickle: the parameter leaves in
``params.npz`` (keyed by their pytree path, loaded with ``allow_pickle=False``) and the
configuration, history, metrics and split in ``checkpoint.json``; :func:`load_checkpoint`
rebuilds the parameter pytree from the configuration (``switchssm.io`` did not exist when
this was written; the format is private to this module).

Example:
    >>> import jax, numpy as np
    >>> x = np.random.default_rng(0).normal(size=(20, 6, 2))
    >>> s = (x[..., 0] > 0).astype(int)
    >>> res = train_cell(jax.random.PRNGKey(0), "mingru", x, s, task="latent",
    ...                  hidden_dim=4, num_steps=20, batch_size=8, progress=False)
    >>> hidden_states(res, x).shape
    (20, 6, 4)
"""

# ruff: noqa: F722  (jaxtyping shape strings such as "N T D" are not forward references)

from __future__ import annotations

import functools
import json
import math
import os
import tempfile
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from switchssm import _validation as V
from switchssm.rnn import _common as C
from switchssm.rnn import attention as _attention
from switchssm.rnn import classic as _classic
from switchssm.rnn import minimal as _minimal
from switchssm.rnn import ssm as _ssm
from switchssm.rnn import stacking as _stacking
from switchssm.rnn.readout import ReadoutParams, init_readout
from switchssm.types import Array, Float, PRNGKeyArray

__all__ = [
    "CELLS",
    "LOSSES",
    "TASKS",
    "DataSplit",
    "GaussianPrediction",
    "TrainConfig",
    "TrainHistory",
    "TrainResult",
    "TrainedCell",
    "evaluate",
    "hidden_states",
    "load_checkpoint",
    "predict",
    "save_checkpoint",
    "train_cell",
    "update_gates",
]

TASKS = ("next_observation", "latent")
LOSSES = ("cross_entropy", "mse", "gaussian_nll")


class _Cell(NamedTuple):
    init: Any
    run: Any
    params_cls: type
    kwargs: tuple  # keyword arguments of ``run`` that ``cell_kwargs`` may set


_CELL_TABLE = {
    "mingru": _Cell(
        _minimal.init_mingru, _minimal.mingru, _minimal.MinGRUParams, ("mode", "space", "candidate")
    ),
    "minlstm": _Cell(
        _minimal.init_minlstm,
        _minimal.minlstm,
        _minimal.MinLSTMParams,
        ("mode", "space", "candidate"),
    ),
    "selective": _Cell(
        _minimal.init_selective, _minimal.selective, _minimal.SelectiveParams, ("mode", "decay")
    ),
    "gru": _Cell(_classic.init_gru, _classic.gru, _classic.GRUParams, ()),
    "lstm": _Cell(_classic.init_lstm, _classic.lstm, _classic.LSTMParams, ()),
    "elman": _Cell(_classic.init_elman, _classic.elman, _classic.ElmanParams, ()),
    "ligru": _Cell(_classic.init_ligru, _classic.ligru, _classic.LiGRUParams, ("activation",)),
    # Sequence layers read as state-space models (switchssm.rnn.attention, .ssm, .stacking).
    "linear_attention": _Cell(
        _attention.init_linear_attention,
        _attention.linear_attention,
        _attention.LinearAttentionParams,
        ("form", "feature_map", "normalize", "chunk_size"),
    ),
    "lti": _Cell(_ssm.init_lti, _ssm.lti, _ssm.LTIParams, ("form", "mode")),
    "lru": _Cell(_ssm.init_lru, _ssm.lru, _ssm.LRUParams, ("mode",)),
    "mamba": _Cell(_ssm.init_mamba, _ssm.mamba, _ssm.MambaParams, ("mode", "discretization")),
    "s6_stack": _Cell(
        functools.partial(_stacking.init_stack, layer="s6"),
        _stacking.stack,
        _stacking.StackParams,
        ("mode",),
    ),
    "lru_stack": _Cell(
        functools.partial(_stacking.init_stack, layer="lru"),
        _stacking.stack,
        _stacking.StackParams,
        ("mode",),
    ),
}

#: Cell names accepted by :func:`train_cell`.
CELLS = tuple(_CELL_TABLE)

_FORMAT = "switchssm.rnn.train checkpoint"
_FORMAT_VERSION = 1


# ---------------------------------------------------------------------------
# result types
# ---------------------------------------------------------------------------


class TrainedCell(NamedTuple):
    """Parameters of a trained model: the cell and its linear readout (a pytree).

    Attributes:
        cell: the cell's parameter pytree (e.g. :class:`~switchssm.rnn.MinGRUParams`).
        readout: :class:`~switchssm.rnn.ReadoutParams` with ``num_outputs`` rows:
            ``C`` class logits, ``D`` means (``"mse"``) or ``2D`` (means, log-scales;
            ``"gaussian_nll"``).
    """

    cell: Any
    readout: ReadoutParams


class TrainConfig(NamedTuple):
    """Everything :func:`train_cell` was asked for (JSON-serializable via ``_asdict``).

    Attributes:
        cell: cell name (one of :data:`CELLS`).
        task: ``"next_observation"`` or ``"latent"``.
        loss: ``"cross_entropy"``, ``"mse"`` or ``"gaussian_nll"``.
        input_dim: ``D_in``.
        hidden_dim: ``H``.
        num_classes: ``C`` for the cross-entropy, else ``None``.
        output_dim: ``D`` of real targets, else ``None``.
        num_steps: optimizer steps.
        learning_rate: Adam step size.
        batch_size: sequences per step (at most the number of training sequences).
        val_fraction: fraction of sequences held out.
        clip_norm: global gradient-norm clip.
        eval_every: steps between validation evaluations.
        cell_kwargs: keyword arguments of the cell function (e.g. ``{"space": "log"}``).
    """

    cell: str
    task: str
    loss: str
    input_dim: int
    hidden_dim: int
    num_classes: int | None
    output_dim: int | None
    num_steps: int
    learning_rate: float
    batch_size: int
    val_fraction: float
    clip_norm: float
    eval_every: int
    cell_kwargs: dict

    @property
    def num_outputs(self) -> int:
        """Rows of the readout."""
        if self.loss == "cross_entropy":
            return self.num_classes
        return self.output_dim * (2 if self.loss == "gaussian_nll" else 1)


class TrainHistory(NamedTuple):
    """Losses at each evaluation (NumPy arrays of equal length).

    Attributes:
        step: optimizer steps done (the first entry is 0, before training).
        train_loss: mean minibatch loss over the steps since the previous evaluation
            (NaN at step 0).
        val_loss: held-out loss (mean over valid held-out steps).
    """

    step: np.ndarray
    train_loss: np.ndarray
    val_loss: np.ndarray


class DataSplit(NamedTuple):
    """Indices (into the sequences given to :func:`train_cell`) of the two sets."""

    train_index: np.ndarray
    val_index: np.ndarray


class TrainResult(NamedTuple):
    """Output of :func:`train_cell`.

    Attributes:
        params: :class:`TrainedCell` after the last step.
        history: :class:`TrainHistory`.
        metrics: held-out metrics of the final parameters: ``loss``, and ``accuracy``,
            ``log_loss`` (cross-entropy) or ``mse`` (real targets); ``num_steps`` and
            ``num_sequences`` counted.
        config: :class:`TrainConfig`.
        split: :class:`DataSplit`.
    """

    params: TrainedCell
    history: TrainHistory
    metrics: dict
    config: TrainConfig
    split: DataSplit


class GaussianPrediction(NamedTuple):
    """Predictive mean and standard deviation of a ``"gaussian_nll"`` model, each ``(N, T, D)``."""

    mean: np.ndarray
    scale: np.ndarray


# ---------------------------------------------------------------------------
# validation and data layout (NumPy, before any jit)
# ---------------------------------------------------------------------------


def _pad_sequences(x, name: str, lengths, *, feature: bool | None):
    """``x`` as a padded float/int array plus lengths.

    ``feature=True``: sequences are ``(T, F)``; ``False``: ``(T,)``; ``None``: either,
    the same for all. Lists are padded with zeros; arrays take ``lengths`` (default: full).
    """
    if isinstance(x, list | tuple):
        if lengths is not None:
            raise ValueError(
                f"`lengths` must be None when `{name}` is a list (the lengths are read off it)"
            )
        if not x:
            raise ValueError(f"`{name}` is an empty list: give at least one sequence")
        seqs = [np.asarray(a) for a in x]
        ndims = {a.ndim for a in seqs}
        allowed = {True: {2}, False: {1}, None: {1, 2}}[feature]
        if len(ndims) != 1 or not ndims <= allowed:
            what = {True: "(T_i, D)", False: "(T_i,)", None: "(T_i,) or (T_i, D)"}[feature]
            raise ValueError(
                f"`{name}` must be a list of {what} arrays (all of one rank), got shapes "
                f"{sorted({a.shape for a in seqs})}"
            )
        if seqs[0].ndim == 2 and len({a.shape[1] for a in seqs}) != 1:
            raise ValueError(
                f"`{name}`: every sequence must have the same last dimension, got "
                f"{sorted({a.shape[1] for a in seqs})}"
            )
        lens = np.array([a.shape[0] for a in seqs])
        if np.any(lens < 1):
            raise ValueError(f"`{name}` holds an empty sequence: each needs at least one step")
        dtype = np.result_type(*[a.dtype for a in seqs])
        out = np.zeros((len(seqs), int(lens.max())) + seqs[0].shape[1:], dtype=dtype)
        for i, a in enumerate(seqs):
            out[i, : a.shape[0]] = a
        return out, lens
    out = np.asarray(x)
    ranks = {True: (3,), False: (2,), None: (2, 3)}[feature]
    if out.ndim not in ranks:
        what = {True: "(N, T, D)", False: "(N, T)", None: "(N, T) or (N, T, D)"}[feature]
        raise ValueError(
            f"`{name}` must be an array of shape {what} or a list of sequences, got shape "
            f"{out.shape}"
        )
    N, T = out.shape[:2]
    if N < 1 or T < 1:
        raise ValueError(f"`{name}` is empty (shape {out.shape})")
    if lengths is None:
        return out, np.full(N, T)
    lens = np.asarray(lengths)
    if lens.shape != (N,) or lens.dtype.kind not in "iu":
        raise ValueError(f"`lengths` must be {N} integers (one per sequence), got {lengths!r}")
    if np.any(lens < 1) or np.any(lens > T):
        raise ValueError(f"`lengths` must lie in [1, {T}], got range [{lens.min()}, {lens.max()}]")
    return out, lens


def _valid_mask(lengths, T: int) -> np.ndarray:
    return np.arange(T)[None, :] < np.asarray(lengths)[:, None]


def _prepare_inputs(x, lengths, input_dim: int | None = None):
    xp, lens = _pad_sequences(x, "x", lengths, feature=True)
    if xp.dtype.kind not in "fiub":
        raise ValueError(f"`x` must hold real numbers, got dtype {xp.dtype}")
    if input_dim is not None and xp.shape[-1] != input_dim:
        raise ValueError(
            f"`x` must have last dimension input_dim = {input_dim} (the trained cell's), "
            f"got {xp.shape[-1]}"
        )
    valid = xp[_valid_mask(lens, xp.shape[1])]
    if not np.all(np.isfinite(valid)):
        raise ValueError("`x` contains NaN or infinite values in valid steps")
    xp = np.where(_valid_mask(lens, xp.shape[1])[..., None], xp, 0.0)
    return xp.astype(jnp.result_type(float)), lens


def _infer_loss(task: str, loss, target_ndim: int) -> str:
    if loss is not None and loss not in LOSSES:
        raise ValueError(f"`loss` must be one of {LOSSES} or None, got {loss!r}")
    if task == "latent":
        if loss not in (None, "cross_entropy"):
            raise ValueError(f"`task='latent'` takes loss='cross_entropy', got loss={loss!r}")
        return "cross_entropy"
    if loss is None:
        return "cross_entropy" if target_ndim == 2 else "mse"
    return loss


def _prepare_targets(targets, lengths, task, loss, num_classes, x_shape, name="targets"):
    """Padded, aligned targets and the mask of valid (input step, target) pairs."""
    is_list = isinstance(targets, list | tuple)
    tp, tlens = _pad_sequences(targets, name, None, feature=None)
    loss = _infer_loss(task, loss, tp.ndim)
    N, T = x_shape[:2]
    if is_list:
        if tlens.shape != lengths.shape or np.any(tlens != lengths):
            raise ValueError(
                f"`{name}` must have one sequence per input sequence with the same lengths, "
                f"got lengths {tlens.tolist()} for x lengths {np.asarray(lengths).tolist()}"
            )
        if tp.shape[1] < T:
            tp = np.concatenate(
                [tp, np.zeros((N, T - tp.shape[1]) + tp.shape[2:], tp.dtype)], axis=1
            )
    elif tp.shape[:2] != (N, T):
        raise ValueError(f"`{name}` must have leading shape (N, T) = {(N, T)}, got {tp.shape}")
    mask = _valid_mask(lengths, T)
    valid = tp[mask]
    if loss == "cross_entropy":
        if tp.ndim != 2:
            raise ValueError(
                f"`{name}` must be (N, T) integer classes for the cross-entropy, got shape "
                f"{tp.shape}"
            )
        if tp.dtype.kind == "f":
            if not np.all(np.isfinite(valid)) or not np.all(valid == np.round(valid)):
                raise ValueError(f"`{name}` must hold integer classes")
        elif tp.dtype.kind not in "iub":
            raise ValueError(f"`{name}` must hold integer classes, got dtype {tp.dtype}")
        if valid.min() < 0:
            raise ValueError(f"`{name}` must hold classes >= 0, found {valid.min()}")
        if num_classes is None:
            num_classes = max(int(valid.max()) + 1, 2)
        else:
            num_classes = V.check_int(num_classes, "num_classes")
            if valid.max() >= num_classes:
                raise ValueError(
                    f"`{name}` must hold classes in [0, {num_classes - 1}] (num_classes = "
                    f"{num_classes}), found {int(valid.max())}"
                )
        tp = np.where(mask, tp, 0).astype(np.int32)
    else:
        if num_classes is not None:
            raise ValueError(f"`num_classes` applies to the cross-entropy only, loss={loss!r}")
        if tp.ndim != 3:
            raise ValueError(
                f"`{name}` must be (N, T, D) real observations for loss={loss!r}, got shape "
                f"{tp.shape}"
            )
        if tp.dtype.kind not in "fiu" or not np.all(np.isfinite(valid)):
            raise ValueError(f"`{name}` must hold finite real numbers")
        tp = np.where(mask[..., None], tp, 0.0).astype(jnp.result_type(float))
    if task == "next_observation":
        if T < 2 or not np.any(lengths >= 2):
            raise ValueError(
                "`x` must have sequences of at least 2 steps for task='next_observation' "
                "(h_t predicts y_{t+1})"
            )
        tp = np.concatenate([tp[:, 1:], np.zeros_like(tp[:, :1])], axis=1)
        mask = np.arange(T)[None, :] + 1 < np.asarray(lengths)[:, None]
    return tp, mask, loss, num_classes


def _check_cell_kwargs(cell: str, cell_kwargs) -> dict:
    if cell_kwargs is None:
        return {}
    if not isinstance(cell_kwargs, dict):
        raise ValueError(f"`cell_kwargs` must be a dict or None, got {type(cell_kwargs).__name__}")
    allowed = _CELL_TABLE[cell].kwargs
    for k, v in cell_kwargs.items():
        if k not in allowed:
            raise ValueError(
                f"`cell_kwargs` for cell={cell!r} may set {allowed or 'nothing'}, got {k!r}"
            )
        if not isinstance(v, str | int | float | bool | type(None)):
            raise ValueError(f"`cell_kwargs[{k!r}]` must be a str, number, bool or None")
    return dict(cell_kwargs)


# ---------------------------------------------------------------------------
# model, loss
# ---------------------------------------------------------------------------


class _Spec(NamedTuple):
    """The hashable part of a :class:`TrainConfig` that fixes the computation (jit static)."""

    cell: str
    loss: str
    kwargs: tuple


def _spec(config: TrainConfig) -> _Spec:
    return _Spec(config.cell, config.loss, tuple(sorted(config.cell_kwargs.items())))


def _run_cell(spec: _Spec, cell_params, x):
    return _CELL_TABLE[spec.cell].run(cell_params, x, **dict(spec.kwargs))


def _forward(spec: _Spec, params: TrainedCell, x):
    h = _run_cell(spec, params.cell, x)
    return h, C.linear(h, params.readout.weight, params.readout.bias)


def _step_losses(loss: str, out, target):
    """Per-step loss and a second per-step statistic (correct / squared error)."""
    if loss == "cross_entropy":
        logp = jax.nn.log_softmax(out, axis=-1)
        nll = -jnp.take_along_axis(logp, target[..., None], axis=-1)[..., 0]
        return nll, (jnp.argmax(out, axis=-1) == target).astype(out.dtype)
    if loss == "mse":
        sq = jnp.mean((out - target) ** 2, axis=-1)
        return sq, sq
    D = target.shape[-1]
    mean, log_scale = out[..., :D], out[..., D:]
    z = (target - mean) * jnp.exp(-log_scale)
    nll = jnp.sum(0.5 * jnp.log(2 * jnp.pi) + log_scale + 0.5 * z**2, axis=-1)
    return nll, jnp.mean((mean - target) ** 2, axis=-1)


def _sums(spec: _Spec, params, x, target, mask):
    _, out = _forward(spec, params, x)
    loss, stat = _step_losses(spec.loss, out, target)
    m = mask.astype(out.dtype)
    return jnp.sum(loss * m), jnp.sum(stat * m), jnp.sum(m)


# One compilation per (cell, loss, cell_kwargs) and shapes, shared by every call.
_sums_jit = jax.jit(_sums, static_argnums=0)
_forward_jit = jax.jit(_forward, static_argnums=0)


def _metrics(config: TrainConfig, loss_sum, stat_sum, count, num_sequences) -> dict:
    count = float(count)
    loss = float(loss_sum) / count
    out = {"loss": loss}
    if config.loss == "cross_entropy":
        out["log_loss"] = loss
        out["accuracy"] = float(stat_sum) / count
    else:
        out["mse"] = float(stat_sum) / count
    out["num_steps"] = int(round(count))
    out["num_sequences"] = int(num_sequences)
    return out


# ---------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------


def train_cell(
    key: PRNGKeyArray,
    cell: str,
    x: Float[Array, "N T D"] | Sequence,
    targets: Array | Sequence,
    *,
    task: str = "next_observation",
    hidden_dim: int = 16,
    num_classes: int | None = None,
    num_steps: int = 500,
    learning_rate: float = 1e-2,
    batch_size: int = 32,
    val_fraction: float = 0.2,
    loss: str | None = None,
    lengths: Sequence[int] | None = None,
    clip_norm: float = 1.0,
    eval_every: int | None = None,
    cell_kwargs: dict | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> TrainResult:
    r"""Train a cell and a linear readout on sequences (module docstring for the losses).

    The minimized objective is the mean per-step loss over the valid steps of a minibatch
    of ``batch_size`` training sequences (drawn without replacement at every step),

    .. math:: \mathcal L = \frac{\sum_{i,t} m_{it}\, \ell(W h_{it} + b,\ \text{target}_{it})}
                                {\sum_{i,t} m_{it}},

    with the mask ``m`` marking steps inside each sequence (and, for next-observation
    prediction, steps whose successor is inside). Optimizer: ``optax.chain(
    clip_by_global_norm(clip_norm), adam(learning_rate))``; the steps run in jitted
    chunks of ``eval_every`` (a ``lax.fori_loop``), the held-out loss is computed after
    each chunk, and a ``tqdm`` bar reports it (``progress=False`` silences it).

    Args:
        key: PRNG key (initialization, split, minibatches).
        cell: one of :data:`CELLS` (``"mingru"``, ``"minlstm"``, ``"selective"``, ``"gru"``,
            ``"lstm"``, ``"elman"``, ``"ligru"``).
        x: inputs, ``(N, T, D_in)`` (with ``lengths`` for padded sequences) or a list of
            ``(T_i, D_in)`` arrays.
        targets: ``(N, T)`` integer classes (symbols ``y_t`` or latents ``s_t``) or ``(N, T, D)``
            real observations, or a list of per-sequence arrays; aligned with ``x`` (the
            shift to ``y_{t+1}`` is done here).
        task: ``"next_observation"`` or ``"latent"``.
        hidden_dim: ``H``.
        num_classes: ``C`` for integer targets (default: largest target + 1).
        num_steps: optimizer steps.
        learning_rate: Adam step size.
        batch_size: sequences per step (capped at the number of training sequences).
        val_fraction: fraction of the sequences held out (at least one in each set).
        loss: ``"cross_entropy"``, ``"mse"``, ``"gaussian_nll"`` or ``None`` (cross-entropy
            for integer targets, MSE for real ones).
        lengths: ``(N,)`` valid lengths of padded ``x`` (not with a list).
        clip_norm: gradient global-norm clip.
        eval_every: steps between evaluations (default ``max(1, num_steps // 20)``).
        cell_kwargs: keyword arguments of the cell function, e.g. ``{"space": "log",
            "candidate": "log_softmax"}`` for the positive-state minGRU.
        checkpoint_dir: if given, a checkpoint (see :func:`save_checkpoint`) is written there
            after every evaluation.
        progress: show a progress bar.

    Returns:
        :class:`TrainResult`.

    Raises:
        ValueError: naming the argument that is malformed.
        FloatingPointError: if the training loss becomes NaN or infinite.

    Example:
        >>> import jax, numpy as np
        >>> y = np.random.default_rng(0).integers(0, 3, size=(16, 8))
        >>> x = np.eye(3)[y]
        >>> res = train_cell(jax.random.PRNGKey(0), "gru", x, y, hidden_dim=4, num_steps=10,
        ...                  progress=False)
        >>> sorted(res.metrics)
        ['accuracy', 'log_loss', 'loss', 'num_sequences', 'num_steps']
    """
    if cell not in _CELL_TABLE:
        raise ValueError(f"`cell` must be one of {CELLS}, got {cell!r}")
    if task not in TASKS:
        raise ValueError(f"`task` must be one of {TASKS}, got {task!r}")
    hidden_dim = V.check_int(hidden_dim, "hidden_dim")
    num_steps = V.check_int(num_steps, "num_steps")
    batch_size = V.check_int(batch_size, "batch_size")
    learning_rate = V.check_float(learning_rate, "learning_rate", low=0, low_open=True)
    clip_norm = V.check_float(clip_norm, "clip_norm", low=0, low_open=True)
    eval_every = max(1, num_steps // 20) if eval_every is None else eval_every
    eval_every = min(V.check_int(eval_every, "eval_every"), num_steps)
    try:
        val_fraction = float(val_fraction)
    except (TypeError, ValueError):
        raise ValueError(
            f"`val_fraction` must be a number in (0, 1), got {val_fraction!r}"
        ) from None
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"`val_fraction` must lie in (0, 1), got {val_fraction!r}")
    kwargs = _check_cell_kwargs(cell, cell_kwargs)

    xp, lens = _prepare_inputs(x, lengths)
    tp, mask, loss, num_classes = _prepare_targets(targets, lens, task, loss, num_classes, xp.shape)
    N = xp.shape[0]
    if N < 2:
        raise ValueError(f"`x` must hold at least 2 sequences (one to hold out), got {N}")
    n_val = min(max(1, int(round(val_fraction * N))), N - 1)

    config = TrainConfig(
        cell=cell,
        task=task,
        loss=loss,
        input_dim=int(xp.shape[-1]),
        hidden_dim=hidden_dim,
        num_classes=num_classes,
        output_dim=None if loss == "cross_entropy" else int(tp.shape[-1]),
        num_steps=num_steps,
        learning_rate=learning_rate,
        batch_size=min(batch_size, N - n_val),
        val_fraction=val_fraction,
        clip_norm=clip_norm,
        eval_every=eval_every,
        cell_kwargs=kwargs,
    )
    k_init, k_read, k_split, k_batch = jax.random.split(key, 4)
    params = TrainedCell(
        _CELL_TABLE[cell].init(k_init, config.input_dim, hidden_dim),
        init_readout(k_read, hidden_dim, config.num_outputs),
    )
    # Trace once on concrete shapes: cell_kwargs values are checked by the cell itself
    # (ValueError naming the argument) before anything is compiled.
    spec = _spec(config)
    jax.eval_shape(lambda p, xx: _run_cell(spec, p, xx), params.cell, xp[:1])

    perm = np.asarray(jax.random.permutation(k_split, N))
    split = DataSplit(np.sort(perm[n_val:]), np.sort(perm[:n_val]))
    tr = split.train_index
    va = split.val_index
    data_tr = (jnp.asarray(xp[tr]), jnp.asarray(tp[tr]), jnp.asarray(mask[tr]))
    data_va = (jnp.asarray(xp[va]), jnp.asarray(tp[va]), jnp.asarray(mask[va]))
    if not np.any(mask[tr]) or not np.any(mask[va]):
        raise ValueError(
            "`x`: the training or held-out sequences have no valid prediction steps "
            "(next-observation prediction needs sequences of 2 or more steps)"
        )

    opt = optax.chain(optax.clip_by_global_norm(clip_norm), optax.adam(learning_rate))
    n_train = len(tr)
    bs = config.batch_size

    def batch_loss(p, xb, tb, mb):
        loss_sum, _, count = _sums(spec, p, xb, tb, mb)
        return loss_sum / jnp.maximum(count, 1.0)

    @jax.jit
    def run_chunk(p, opt_state, n, batches, X, Tg, M):
        def body(i, carry):
            p, opt_state, total = carry
            idx = batches[i]
            value, grads = jax.value_and_grad(batch_loss)(p, X[idx], Tg[idx], M[idx])
            updates, opt_state = opt.update(grads, opt_state, p)
            return optax.apply_updates(p, updates), opt_state, total + value

        zero = jnp.zeros((), X.dtype)
        p, opt_state, total = jax.lax.fori_loop(0, n, body, (p, opt_state, zero))
        return p, opt_state, total / n

    # Minibatches drawn in NumPy (seeded from `key`): one (eval_every, batch) index table
    # per chunk, so a single compiled chunk serves every chunk length.
    batch_rng = np.random.default_rng(np.asarray(jax.random.key_data(k_batch)).tolist())

    def draw_batches(n):
        table = np.zeros((eval_every, bs), dtype=np.int32)
        for i in range(n):
            table[i] = batch_rng.choice(n_train, size=bs, replace=False)
        return jnp.asarray(table)

    evaluate_sums = lambda p, X, Tg, M: _sums_jit(spec, p, X, Tg, M)

    def val_loss(p):
        s, _, c = evaluate_sums(p, *data_va)
        return float(s) / float(c)

    opt_state = opt.init(params)
    steps, train_hist, val_hist = [0], [math.nan], [val_loss(params)]
    done = 0
    with tqdm(total=num_steps, disable=not progress, desc=f"train {cell}") as bar:
        while done < num_steps:
            n = min(eval_every, num_steps - done)
            params, opt_state, tl = run_chunk(params, opt_state, n, draw_batches(n), *data_tr)
            done += n
            steps.append(done)
            train_hist.append(float(tl))
            val_hist.append(val_loss(params))
            bar.update(n)
            bar.set_postfix(train=f"{train_hist[-1]:.4f}", val=f"{val_hist[-1]:.4f}")
            if not np.isfinite(train_hist[-1]):
                raise FloatingPointError(
                    f"training diverged at step {done} (loss {train_hist[-1]}); lower "
                    "`learning_rate` or `clip_norm`"
                )
            history = TrainHistory(
                np.array(steps), np.array(train_hist), np.array(val_hist, dtype=float)
            )
            if checkpoint_dir is not None:
                save_checkpoint(checkpoint_dir, TrainResult(params, history, {}, config, split))
    metrics = _metrics(config, *evaluate_sums(params, *data_va), len(va))
    result = TrainResult(params, history, metrics, config, split)
    if checkpoint_dir is not None:
        save_checkpoint(checkpoint_dir, result)
    return result


# ---------------------------------------------------------------------------
# using a trained cell
# ---------------------------------------------------------------------------


def _check_result(result) -> TrainResult:
    if not isinstance(result, TrainResult):
        raise ValueError(f"`result` must be a TrainResult, got {type(result).__name__}")
    return result


def hidden_states(
    result: TrainResult, x: Float[Array, "N T D"] | Sequence, *, lengths=None
) -> Float[np.ndarray, "N T H"]:
    """The trained cell's states ``h_t`` for every sequence and step.

    Args:
        result: from :func:`train_cell` (or :func:`load_checkpoint`).
        x: ``(N, T, D_in)`` inputs or a list of ``(T_i, D_in)`` arrays (zero-padded to the
            longest; the states at padded steps are those of the padded input and are
            not meaningful).
        lengths: ``(N,)`` valid lengths of padded ``x`` (validated; padded steps are
            zeroed before the cell runs).

    Returns:
        ``h``: ``(N, T, H)`` NumPy array (``T`` the longest length). For the LSTM, the
        output state ``h`` (not the cell state).

    Example:
        >>> import jax, numpy as np
        >>> y = np.random.default_rng(0).integers(0, 2, size=(6, 5))
        >>> res = train_cell(jax.random.PRNGKey(0), "mingru", np.eye(2)[y], y,
        ...                  hidden_dim=3, num_steps=2, progress=False)
        >>> hidden_states(res, [np.eye(2)[[0, 1]], np.eye(2)[[1, 1, 0]]]).shape
        (2, 3, 3)
    """
    result = _check_result(result)
    xp, _ = _prepare_inputs(x, lengths, result.config.input_dim)
    h, _ = _forward_jit(_spec(result.config), result.params, jnp.asarray(xp))
    return np.asarray(h)


def predict(result: TrainResult, x, *, lengths=None):
    """The readout's prediction at every step.

    Args:
        result: from :func:`train_cell`.
        x: inputs as in :func:`hidden_states`.
        lengths: ``(N,)`` valid lengths of padded ``x``.

    Returns:
        ``(N, T, C)`` class probabilities (cross-entropy; for ``task="next_observation"``
        the prediction at step ``t`` is for ``y_{t+1}``), ``(N, T, D)`` means (``"mse"``),
        or :class:`GaussianPrediction` (``"gaussian_nll"``).

    Example:
        >>> import jax, numpy as np
        >>> y = np.random.default_rng(0).integers(0, 2, size=(6, 5))
        >>> res = train_cell(jax.random.PRNGKey(0), "mingru", np.eye(2)[y], y,
        ...                  hidden_dim=3, num_steps=2, progress=False)
        >>> np.allclose(predict(res, np.eye(2)[y]).sum(-1), 1.0)
        True
    """
    result = _check_result(result)
    cfg = result.config
    xp, _ = _prepare_inputs(x, lengths, cfg.input_dim)
    _, out = _forward_jit(_spec(cfg), result.params, jnp.asarray(xp))
    if cfg.loss == "cross_entropy":
        return np.asarray(jax.nn.softmax(out, axis=-1))
    if cfg.loss == "mse":
        return np.asarray(out)
    D = cfg.output_dim
    return GaussianPrediction(np.asarray(out[..., :D]), np.asarray(jnp.exp(out[..., D:])))


def evaluate(result: TrainResult, x, targets, *, lengths=None) -> dict:
    """The training loss and metrics of a trained cell on new sequences.

    Same alignment and masking as :func:`train_cell` (for next-observation prediction,
    pairs ``(h_t, y_{t+1})`` with ``t + 1`` inside the sequence).

    Args:
        result: from :func:`train_cell`.
        x: inputs as in :func:`train_cell`.
        targets: targets as in :func:`train_cell`.
        lengths: ``(N,)`` valid lengths of padded ``x``.

    Returns:
        dict with ``loss`` and ``accuracy`` + ``log_loss`` (cross-entropy) or ``mse``, and
        the counts ``num_steps`` (valid pairs), ``num_sequences``.

    Example:
        >>> import jax, numpy as np
        >>> y = np.random.default_rng(0).integers(0, 2, size=(6, 5))
        >>> res = train_cell(jax.random.PRNGKey(0), "mingru", np.eye(2)[y], y,
        ...                  hidden_dim=3, num_steps=2, progress=False)
        >>> evaluate(res, np.eye(2)[y], y)["num_steps"]
        24
    """
    result = _check_result(result)
    cfg = result.config
    xp, lens = _prepare_inputs(x, lengths, cfg.input_dim)
    tp, mask, _, _ = _prepare_targets(targets, lens, cfg.task, cfg.loss, cfg.num_classes, xp.shape)
    if cfg.loss != "cross_entropy" and tp.shape[-1] != cfg.output_dim:
        raise ValueError(
            f"`targets` must have last dimension {cfg.output_dim} (the trained readout's), "
            f"got {tp.shape[-1]}"
        )
    sums = _sums_jit(_spec(cfg), result.params, jnp.asarray(xp), jnp.asarray(tp), jnp.asarray(mask))
    return _metrics(cfg, *sums, xp.shape[0])


def update_gates(result: TrainResult, x, *, lengths=None) -> Float[np.ndarray, "N T H"]:
    r"""Each unit's update strength at every step: the weight of the new candidate.

    The quantity that plays the switch posterior ``g_t`` in ``h_t = (1 - g_t) h_{t-1} +
    g_t \tilde h_t`` (theory.md 2.2):

    - ``"mingru"``: ``z_t = sigmoid(W_z x_t + b_z)``;
    - ``"minlstm"``: the normalized input gate ``i'_t``;
    - ``"selective"``: ``1 - a(x_t)`` (one minus the decay);
    - ``"gru"``: ``z_t = sigmoid(W_z x_t + U_z h_{t-1} + b_z)``;
    - ``"ligru"``: ``1 - z_t`` (Li-GRU's ``z`` weighs the previous state);
    - ``"lstm"``: ``1 - f_t``, one minus the forget gate.

    The Elman cell has no gate (``ValueError``).

    Args:
        result: from :func:`train_cell`.
        x: inputs as in :func:`hidden_states`.
        lengths: ``(N,)`` valid lengths of padded ``x``.

    Returns:
        ``(N, T, H)`` values in ``[0, 1]``.

    Example:
        >>> import jax, numpy as np
        >>> y = np.random.default_rng(0).integers(0, 2, size=(6, 5))
        >>> res = train_cell(jax.random.PRNGKey(0), "mingru", np.eye(2)[y], y,
        ...                  hidden_dim=3, num_steps=2, progress=False)
        >>> update_gates(res, np.eye(2)[y]).shape
        (6, 5, 3)
    """
    result = _check_result(result)
    cfg = result.config
    if cfg.cell == "elman":
        raise ValueError("`result`: the Elman cell has no gate")
    xp, _ = _prepare_inputs(x, lengths, cfg.input_dim)
    x = jnp.asarray(xp)
    p = result.params.cell
    if cfg.cell == "mingru":
        g = jax.nn.sigmoid(C.linear(x, p.gate_weight, p.gate_bias))
    elif cfg.cell == "minlstm":
        g = _minimal.minlstm_gates(p, x).input
    elif cfg.cell == "selective":
        k = C.linear(x, p.decay_weight, p.decay_bias)
        decay = cfg.cell_kwargs.get("decay", "sigmoid")
        # 1 - sigmoid(k) = sigmoid(-k); "exp": 1 - exp(-softplus(k)) = sigmoid(k).
        g = jax.nn.sigmoid(-k) if decay == "sigmoid" else jax.nn.sigmoid(k)
    else:
        h, _ = _forward_jit(_spec(cfg), result.params, x)
        h_prev = jnp.concatenate([jnp.zeros_like(h[:, :1]), h[:, :-1]], axis=1)
        part = {"gru": "gate", "ligru": "gate", "lstm": "forget"}[cfg.cell]
        pre = C.linear(x, getattr(p, f"{part}_weight"), getattr(p, f"{part}_bias"))
        pre = pre + h_prev @ getattr(p, f"{part}_recurrent").T
        g = jax.nn.sigmoid(pre) if cfg.cell == "gru" else jax.nn.sigmoid(-pre)
    return np.asarray(g)


# ---------------------------------------------------------------------------
# checkpoints (npz + JSON, no pickle)
# ---------------------------------------------------------------------------


def _leaf_names(tree) -> tuple[list[str], list, Any]:
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree)
    names = [jax.tree_util.keystr(path).lstrip(".") for path, _ in flat]
    return names, [leaf for _, leaf in flat], treedef


def _template(config: TrainConfig) -> TrainedCell:
    """A :class:`TrainedCell` of the right structure and shapes (no computation)."""
    table = _CELL_TABLE[config.cell]
    return jax.eval_shape(
        lambda k: TrainedCell(
            table.init(k, config.input_dim, config.hidden_dim),
            init_readout(k, config.hidden_dim, config.num_outputs),
        ),
        jax.random.PRNGKey(0),
    )


def _atomic_write(path: str, write) -> None:
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_checkpoint(directory: str | os.PathLike, result: TrainResult) -> None:
    """Write a :class:`TrainResult` to ``directory`` without pickle.

    Files: ``params.npz`` (one array per parameter leaf, named by its pytree path, e.g.
    ``cell.gate_weight``, ``readout.bias``) and ``checkpoint.json`` (format tag, the
    :class:`TrainConfig`, leaf names/shapes/dtypes, history, metrics, split). Both are
    replaced atomically.

    Args:
        directory: created if missing.
        result: a :class:`TrainResult`.

    Example:
        >>> import jax, numpy as np, tempfile
        >>> y = np.random.default_rng(0).integers(0, 2, size=(6, 5))
        >>> res = train_cell(jax.random.PRNGKey(0), "gru", np.eye(2)[y], y, hidden_dim=3,
        ...                  num_steps=2, progress=False)
        >>> d = tempfile.mkdtemp()
        >>> save_checkpoint(d, res)
        >>> load_checkpoint(d).config == res.config
        True
    """
    result = _check_result(result)
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    names, leaves, _ = _leaf_names(result.params)
    arrays = {n: np.asarray(leaf) for n, leaf in zip(names, leaves, strict=True)}
    meta = {
        "format": _FORMAT,
        "version": _FORMAT_VERSION,
        "config": result.config._asdict(),
        "leaves": [
            {"name": n, "shape": list(a.shape), "dtype": str(a.dtype)} for n, a in arrays.items()
        ],
        "history": {k: np.asarray(v).tolist() for k, v in result.history._asdict().items()},
        "metrics": result.metrics,
        "split": {k: np.asarray(v).tolist() for k, v in result.split._asdict().items()},
    }

    def write_npz(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    def write_json(tmp):
        with open(tmp, "w") as f:
            json.dump(meta, f, indent=1)

    _atomic_write(os.path.join(directory, "params.npz"), write_npz)
    _atomic_write(os.path.join(directory, "checkpoint.json"), write_json)


def load_checkpoint(directory: str | os.PathLike) -> TrainResult:
    """Read a checkpoint written by :func:`save_checkpoint` (or by :func:`train_cell`).

    The parameter pytree is rebuilt from the stored configuration and every leaf is
    checked against it (name and shape), then validated by the parameter classes.

    Args:
        directory: the checkpoint directory.

    Returns:
        :class:`TrainResult` with the saved parameters (bit-for-bit), history, metrics,
        configuration and split.

    Raises:
        ValueError: if the files are missing, of another format, or do not match.
    """
    directory = os.fspath(directory)
    meta_path = os.path.join(directory, "checkpoint.json")
    npz_path = os.path.join(directory, "params.npz")
    if not (os.path.isfile(meta_path) and os.path.isfile(npz_path)):
        raise ValueError(
            f"`directory` {directory!r} must hold checkpoint.json and params.npz "
            "(written by save_checkpoint)"
        )
    with open(meta_path) as f:
        meta = json.load(f)
    if meta.get("format") != _FORMAT or meta.get("version") != _FORMAT_VERSION:
        raise ValueError(
            f"`directory` {directory!r}: not a {_FORMAT} version {_FORMAT_VERSION} checkpoint"
        )
    config = TrainConfig(**meta["config"])
    if config.cell not in _CELL_TABLE:
        raise ValueError(f"checkpoint names an unknown cell {config.cell!r}")
    names, shapes, treedef = _leaf_names(_template(config))
    with np.load(npz_path, allow_pickle=False) as z:
        stored = {k: z[k] for k in z.files}
    if set(stored) != set(names):
        raise ValueError(
            f"checkpoint leaves {sorted(stored)} do not match the {config.cell} model "
            f"{sorted(names)}"
        )
    leaves = []
    for n, s in zip(names, shapes, strict=True):
        a = stored[n]
        if a.shape != s.shape:
            raise ValueError(f"checkpoint leaf {n!r} has shape {a.shape}, expected {s.shape}")
        leaves.append(jnp.asarray(a))
    params = jax.tree_util.tree_unflatten(treedef, leaves)
    C.check_params(params.cell, _CELL_TABLE[config.cell].params_cls)
    C.check_params(params.readout, ReadoutParams)
    history = TrainHistory(**{k: np.asarray(v, dtype=float) for k, v in meta["history"].items()})
    history = history._replace(step=history.step.astype(int))
    split = DataSplit(**{k: np.asarray(v, dtype=int) for k, v in meta["split"].items()})
    return TrainResult(params, history, meta["metrics"], config, split)
