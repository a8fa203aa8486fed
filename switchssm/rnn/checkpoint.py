"""Checkpoints of trained cells, in the package's one save format (no pickle).

A checkpoint is one archive, ``<directory>/checkpoint.npz``, of kind ``"checkpoint"``
(:mod:`switchssm._archive`): the :class:`~switchssm.rnn.TrainedCell` parameter tree (one array
per leaf, ``params.cell.gate_weight``, ``params.readout.bias``, ...) and, in the JSON
header, the :class:`~switchssm.rnn.TrainConfig`, the history, the held-out metrics and the
split. Written atomically; loading validates the parameters and checks them against the
configuration (cell kind, shapes).
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
import numpy as np

from switchssm import _archive as A
from switchssm.rnn import _common as C
from switchssm.rnn._training import CELL_TABLE
from switchssm.rnn._training import DataSplit
from switchssm.rnn._training import TrainConfig
from switchssm.rnn._training import TrainedCell
from switchssm.rnn._training import TrainHistory
from switchssm.rnn._training import TrainResult
from switchssm.rnn.readout import init_readout

__all__ = ["load_checkpoint", "save_checkpoint"]

FILE_NAME = "checkpoint.npz"


def _template(config: TrainConfig) -> TrainedCell:
    """A :class:`TrainedCell` of the configured structure and shapes (no computation)."""
    table = CELL_TABLE[config.cell]
    return jax.eval_shape(
        lambda k: TrainedCell(
            table.init(k, config.input_dim, config.hidden_dim, **config.init_kwargs),
            init_readout(k, config.hidden_dim, config.num_outputs),
        ),
        jax.random.PRNGKey(0),
    )


def save_checkpoint(directory: str | os.PathLike, result: TrainResult) -> None:
    """Write a :class:`~switchssm.rnn.TrainResult` to ``directory/checkpoint.npz``.

    Args:
        directory: created if missing.
        result: a :class:`~switchssm.rnn.TrainResult`.

    Example:
        >>> import jax, numpy as np, tempfile
        >>> from switchssm.rnn import train_cell
        >>> y = np.random.default_rng(0).integers(0, 2, size=(6, 5))
        >>> res = train_cell(jax.random.PRNGKey(0), "gru", np.eye(2)[y], y, hidden_dim=3,
        ...                  num_steps=2, progress=False)
        >>> d = tempfile.mkdtemp()
        >>> save_checkpoint(d, res)
        >>> load_checkpoint(d).config == res.config
        True
    """
    if not isinstance(result, TrainResult):
        raise ValueError(f"`result` must be a TrainResult, got {type(result).__name__}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays: dict = {}
    header = {
        "params": A.encode(result.params, "params", arrays, "result.params"),
        "config": result.config._asdict(),
        "history": {
            k: A.encode(np.asarray(v), f"history.{k}", arrays, f"history.{k}")
            for k, v in result.history._asdict().items()
        },
        "metrics": result.metrics,
        "split": {
            k: A.encode(np.asarray(v), f"split.{k}", arrays, f"split.{k}")
            for k, v in result.split._asdict().items()
        },
    }
    A.write_archive(directory / FILE_NAME, "checkpoint", header, arrays)


def load_checkpoint(directory: str | os.PathLike) -> TrainResult:
    """Read a checkpoint written by :func:`save_checkpoint` (or by ``train_cell``).

    Args:
        directory: the checkpoint directory.

    Returns:
        :class:`~switchssm.rnn.TrainResult` with the saved parameters (bit-for-bit),
        history, metrics, configuration and split.

    Raises:
        ValueError: the file is missing, of another kind, corrupt, or does not match its
            configuration (the message names the file and the problem).
    """
    path = Path(directory) / FILE_NAME
    if not path.is_file():
        raise ValueError(
            f"`directory` {os.fspath(directory)!r} must hold {FILE_NAME} (written by "
            "save_checkpoint)"
        )
    header, arrays = A.read_archive(path, ("checkpoint",))
    try:
        cfg = header.get("config")
        if not isinstance(cfg, dict) or set(cfg) != set(TrainConfig._fields):
            raise A.FormatError("`config`: not a TrainConfig")
        config = TrainConfig(**cfg)
        if config.cell not in CELL_TABLE:
            raise A.FormatError(f"`config.cell`: unknown cell {config.cell!r}")
        params = A.decode(header.get("params"), arrays, "params")
        template = _template(config)
        want = jax.tree_util.tree_structure(template)
        if not isinstance(params, TrainedCell) or jax.tree_util.tree_structure(params) != want:
            raise A.FormatError(f"`params`: not the parameters of a {config.cell} cell")
        got_leaves = jax.tree_util.tree_leaves_with_path(params)
        for (path_, a), b in zip(got_leaves, jax.tree_util.tree_leaves(template), strict=True):
            if np.shape(a) != b.shape:
                name = "params" + jax.tree_util.keystr(path_)
                raise A.FormatError(f"`{name}` has shape {np.shape(a)}, expected {b.shape}")
        C.check_params(params.cell, CELL_TABLE[config.cell].params_cls)
        hist, spl = header.get("history"), header.get("split")
        if not isinstance(hist, dict) or set(hist) != set(TrainHistory._fields):
            raise A.FormatError("`history`: not a TrainHistory")
        if not isinstance(spl, dict) or set(spl) != set(DataSplit._fields):
            raise A.FormatError("`split`: not a DataSplit")
        history = TrainHistory(
            **{k: A.array(hist[k], arrays, f"history.{k}") for k in TrainHistory._fields}
        )
        split = DataSplit(**{k: A.array(spl[k], arrays, f"split.{k}") for k in DataSplit._fields})
        metrics = header.get("metrics")
        if not isinstance(metrics, dict):
            raise A.FormatError("`metrics`: expected a JSON object")
    except (A.FormatError, TypeError, KeyError, AttributeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    return TrainResult(params, history, metrics, config, split)
