"""The pieces shared by training and using RNN cells: the cell table, the result types,
the data layout (:class:`~switchssm.sequences.Sequences`) and the per-step losses."""

# ruff: noqa: F722

from __future__ import annotations

import functools
from typing import Any
from typing import ClassVar
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from switchssm import _validation as V
from switchssm._pytree import is_params
from switchssm._pytree import params_pytree
from switchssm.rnn import _common as C
from switchssm.rnn import attention as _attention
from switchssm.rnn import bilinear as _bilinear
from switchssm.rnn import bilinear_params as _bparams
from switchssm.rnn import classic as _classic
from switchssm.rnn import minimal as _minimal
from switchssm.rnn import selective_ssm as _selective
from switchssm.rnn import ssm as _ssm
from switchssm.rnn import stacking as _stacking
from switchssm.rnn.readout import ReadoutParams
from switchssm.sequences import Sequences
from switchssm.sequences import as_sequences

__all__ = [
    "CELLS",
    "DataSplit",
    "GaussianPrediction",
    "LOSSES",
    "TASKS",
    "TrainConfig",
    "TrainHistory",
    "TrainResult",
    "TrainedCell",
]

TASKS = ("next_observation", "latent")


LOSSES = ("cross_entropy", "mse", "gaussian_nll")


class Cell(NamedTuple):
    init: Any
    run: Any
    params_cls: type
    kwargs: tuple  # keyword arguments of ``run`` that ``cell_kwargs`` may set
    init_kwargs: tuple = ()  # keyword arguments of ``init`` that ``init_kwargs`` may set


CELL_TABLE = {
    "mingru": Cell(
        _minimal.init_mingru, _minimal.mingru, _minimal.MinGRUParams, ("mode", "space", "candidate")
    ),
    "minlstm": Cell(
        _minimal.init_minlstm,
        _minimal.minlstm,
        _minimal.MinLSTMParams,
        ("mode", "space", "candidate"),
    ),
    "selective": Cell(
        _minimal.init_selective, _minimal.selective, _minimal.SelectiveParams, ("mode", "decay")
    ),
    "gru": Cell(_classic.init_gru, _classic.gru, _classic.GRUParams, ()),
    "lstm": Cell(_classic.init_lstm, _classic.lstm, _classic.LSTMParams, ()),
    "elman": Cell(_classic.init_elman, _classic.elman, _classic.ElmanParams, ()),
    "ligru": Cell(_classic.init_ligru, _classic.ligru, _classic.LiGRUParams, ("activation",)),
    # Sequence layers read as state-space models (switchssm.rnn.attention, .ssm, .stacking).
    "linear_attention": Cell(
        _attention.init_linear_attention,
        _attention.linear_attention,
        _attention.LinearAttentionParams,
        ("form", "feature_map", "normalize", "chunk_size"),
    ),
    "lti": Cell(_ssm.init_lti, _ssm.lti, _ssm.LTIParams, ("form", "mode")),
    "lru": Cell(_ssm.init_lru, _ssm.lru, _ssm.LRUParams, ("mode",)),
    "mamba": Cell(
        _selective.init_mamba, _selective.mamba, _selective.MambaParams, ("mode", "discretization")
    ),
    # Bilinear state transitions h_t = A(x_t) h_{t-1} (switchssm.rnn.bilinear).
    "bilinear": Cell(
        _bparams.init_bilinear,
        _bilinear.bilinear,
        _bparams.BilinearParams,
        ("mode", "normalize"),
        ("additive",),
    ),
    "cp": Cell(
        _bparams.init_cp_bilinear,
        _bilinear.bilinear,
        _bparams.CPBilinearParams,
        ("mode", "normalize"),
        ("rank", "additive"),
    ),
    "block": Cell(
        _bparams.init_block_bilinear,
        _bilinear.bilinear,
        _bparams.BlockBilinearParams,
        ("mode", "normalize"),
        ("block_size", "additive"),
    ),
    "rotation": Cell(
        _bparams.init_rotation,
        _bilinear.bilinear,
        _bparams.RotationParams,
        ("mode", "normalize"),
        ("scale", "additive"),
    ),
    "complex": Cell(
        _bparams.init_complex_diagonal,
        _bilinear.bilinear,
        _bparams.ComplexDiagonalParams,
        ("mode", "normalize"),
        ("additive",),
    ),
    "diagonal": Cell(
        _bparams.init_diagonal_bilinear,
        _bilinear.bilinear,
        _bparams.DiagonalBilinearParams,
        ("mode", "normalize"),
        ("additive",),
    ),
    "s6_stack": Cell(
        functools.partial(_stacking.init_stack, layer="s6"),
        _stacking.stack,
        _stacking.StackParams,
        ("mode",),
    ),
    "lru_stack": Cell(
        functools.partial(_stacking.init_stack, layer="lru"),
        _stacking.stack,
        _stacking.StackParams,
        ("mode",),
    ),
}


#: Cell names accepted by :func:`train_cell`.
CELLS = tuple(CELL_TABLE)


@params_pytree(promote=False)
class TrainedCell:
    """Parameters of a trained model: the cell and its linear readout (a pytree).

    Attributes:
        cell: the cell's parameter pytree (e.g. :class:`~switchssm.rnn.MinGRUParams`).
        readout: :class:`~switchssm.rnn.ReadoutParams` with ``num_outputs`` rows:
            ``C`` class logits, ``D`` means (``"mse"``) or ``2D`` (means, log-scales;
            ``"gaussian_nll"``).
    """

    cell: Any
    readout: ReadoutParams
    _children: ClassVar[tuple] = ("cell", "readout")

    def _validate(self):
        if not is_params(self.cell):
            raise ValueError(f"`cell` must be a cell's parameters, got {type(self.cell).__name__}")
        if not isinstance(self.readout, ReadoutParams):
            raise ValueError(
                f"`readout` must be a ReadoutParams, got {type(self.readout).__name__}"
            )


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
        init_kwargs: keyword arguments of the cell's initializer (e.g. ``{"rank": 8}``).
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
    init_kwargs: dict = {}  # a NamedTuple default (shared, never mutated)

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
            ``log_loss`` (cross-entropy) or ``mse`` (real targets); the counts
            ``num_timesteps`` (valid prediction steps) and ``num_sequences``.
        config: :class:`TrainConfig`.
        split: :class:`DataSplit`.
        diverged: the training diverged (:func:`~switchssm.rnn.train_cell` says when and
            warns with :class:`~switchssm.rnn.TrainingDivergedWarning`).
    """

    params: TrainedCell
    history: TrainHistory
    metrics: dict
    config: TrainConfig
    split: DataSplit
    diverged: bool = False


class GaussianPrediction(NamedTuple):
    """Predictive mean and standard deviation of a ``"gaussian_nll"`` model, each ``(N, T, D)``."""

    mean: np.ndarray
    scale: np.ndarray


def prepare_inputs(x, lengths=None, input_dim: int | None = None) -> Sequences:
    """Validated, zero-padded cell inputs: a list of ``(T_i, D_in)`` arrays or a padded
    ``(N, T, D_in)`` array with ``lengths`` (one ``(T, D_in)`` sequence is a batch of one)."""
    data = as_sequences(x, lengths=lengths, step_ndim=1, names=("x", "u"), allow_single=False)
    if input_dim is not None and data.values.shape[-1] != input_dim:
        raise ValueError(
            f"`x` must have last dimension input_dim = {input_dim} (the trained cell's), "
            f"got {data.values.shape[-1]}"
        )
    return data


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


def prepare_targets(targets, x: Sequences, task, loss, num_classes, name="targets"):
    """Padded targets aligned with ``x`` and the mask of valid (input step, target) pairs."""
    lengths = np.asarray(x.lengths)
    is_list = isinstance(targets, list | tuple)
    N, T = x.mask.shape
    if not is_list and (np.ndim(targets) < 2 or np.shape(targets)[0] != N
                        or np.shape(targets)[1] < T):  # fmt: skip
        raise ValueError(
            f"`{name}` must have leading shape (N, T) = {(N, T)} like `x`, got {np.shape(targets)}"
        )
    t = as_sequences(
        targets,
        lengths=None if is_list else lengths,
        step_ndim=None,
        names=(name, "u"),
        allow_single=False,
    )
    tp = np.asarray(t.values)
    loss = _infer_loss(task, loss, tp.ndim)
    if tp.shape[0] != N or not np.array_equal(np.asarray(t.lengths), lengths):
        raise ValueError(
            f"`{name}` must have one sequence per input sequence with the same lengths, "
            f"got lengths {np.asarray(t.lengths).tolist()} for x lengths {lengths.tolist()}"
        )
    mask = np.asarray(x.mask)
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


def check_cell_kwargs(cell: str, cell_kwargs, name: str = "cell_kwargs") -> dict:
    """``cell_kwargs`` (or, with ``name="init_kwargs"``, the initializer's keyword
    arguments) as a dict of JSON scalars that the cell accepts."""
    if cell_kwargs is None:
        return {}
    if not isinstance(cell_kwargs, dict):
        raise ValueError(f"`{name}` must be a dict or None, got {type(cell_kwargs).__name__}")
    entry = CELL_TABLE[cell]
    allowed = entry.init_kwargs if name == "init_kwargs" else entry.kwargs
    for k, v in cell_kwargs.items():
        if k not in allowed:
            raise ValueError(
                f"`{name}` for cell={cell!r} may set {allowed or 'nothing'}, got {k!r}"
            )
        if not isinstance(v, str | int | float | bool | type(None)):
            raise ValueError(f"`{name}[{k!r}]` must be a str, number, bool or None")
    return dict(cell_kwargs)


class Spec(NamedTuple):
    """The hashable part of a :class:`TrainConfig` that fixes the computation (jit static)."""

    cell: str
    loss: str
    kwargs: tuple


def spec_of(config: TrainConfig) -> Spec:
    return Spec(config.cell, config.loss, tuple(sorted(config.cell_kwargs.items())))


def run_cell(spec: Spec, cell_params, x):
    return CELL_TABLE[spec.cell].run(cell_params, x, **dict(spec.kwargs))


def forward(spec: Spec, params: TrainedCell, x):
    h = run_cell(spec, params.cell, x)
    return h, C.linear(h, params.readout.weight, params.readout.bias)


def step_losses(loss: str, out, target):
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


def sums(spec: Spec, params, x, target, mask):
    _, out = forward(spec, params, x)
    loss, stat = step_losses(spec.loss, out, target)
    m = mask.astype(out.dtype)
    return jnp.sum(loss * m), jnp.sum(stat * m), jnp.sum(m)


# One compilation per (cell, loss, cell_kwargs) and shapes, shared by every call.
sums_jit = jax.jit(sums, static_argnums=0)


forward_jit = jax.jit(forward, static_argnums=0)


def metrics_of(config: TrainConfig, loss_sum, stat_sum, count, num_sequences) -> dict:
    count = float(count)
    loss = float(loss_sum) / count
    out = {"loss": loss}
    if config.loss == "cross_entropy":
        out["log_loss"] = loss
        out["accuracy"] = float(stat_sum) / count
    else:
        out["mse"] = float(stat_sum) / count
    out["num_timesteps"] = int(round(count))
    out["num_sequences"] = int(num_sequences)
    return out
