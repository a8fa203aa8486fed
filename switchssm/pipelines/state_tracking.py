"""State tracking (``switchssm statetrack``): train a cell on short sequences of a
finite-state machine, test it on long ones.

The protocol follows Ebrahimi & Memisevic (2025) as far as their text gives it: train on
lengths 2-10, test at length 500 (out of distribution), per-step cross-entropy on the label
of the state after every prefix, Adam, the best of three learning rates. Sizes and step
counts are scaled for a 2-core CPU (hidden 32 instead of 256, about a thousand steps instead
of 10^5); :class:`StateTrackingResult` records exactly what was run.

Bilinear cells run with ``normalize=True`` (unit states, in training and at test: the
readout sees the same thing at every length) unless they have an additive term, which
breaks the scale invariance; those, and the baselines, run as they are.

The learning rate is chosen by the final-step accuracy on a validation set drawn at the
test length (independently of the test set). The reported accuracy is that of the label
after the *last* symbol, over the test sequences; :attr:`StateTrackingResult.accuracy_by_length`
gives it after every prefix (one pass over the test sequences serves every length).
"""

from __future__ import annotations

import json
import math
import time
import warnings
from typing import NamedTuple

import jax
import numpy as np

from switchssm import _validation as V
from switchssm._markdown import markdown_table
from switchssm.data.state_tracking import StateTrackingTask
from switchssm.data.state_tracking import chance_accuracy
from switchssm.data.state_tracking import sample_state_tracking
from switchssm.data.state_tracking import state_tracking_task
from switchssm.rnn import TrainingDivergedWarning
from switchssm.rnn import TrainResult
from switchssm.rnn import predict
from switchssm.rnn import train_cell

__all__ = [
    "BILINEAR_CELLS",
    "STATETRACK_CELLS",
    "StateTrackingResult",
    "state_tracking_table",
    "train_state_tracker",
    "write_state_tracking_report",
]

#: The bilinear kinds (``switchssm.rnn.bilinear``), most expressive first.
BILINEAR_CELLS = ("bilinear", "cp", "block", "rotation", "complex", "diagonal")
#: Every cell :func:`train_state_tracker` accepts: the bilinear kinds and four baselines.
STATETRACK_CELLS = (*BILINEAR_CELLS, "lstm", "elman", "mingru", "selective")

#: Defaults sized for a 2-core CPU (the paper: hidden 256, 10^5 steps of 64).
DEFAULTS = dict(
    hidden_dim=32,
    num_steps=1000,
    batch_size=64,
    learning_rates=(1e-3, 3e-3, 1e-2),
    train_lengths=(2, 10),
    test_length=500,
    num_train=2000,
    num_val=100,
    num_test=200,
)


class StateTrackingResult(NamedTuple):
    """One cell trained on one task (:func:`train_state_tracker`).

    Attributes:
        task: the task's name (e.g. ``"modadd(m=5)"``).
        cell: the cell's name.
        additive: the bilinear cell had an additive input term.
        test_length: length of the test sequences.
        test_accuracy: accuracy of the label after the last symbol, over the test sequences.
        chance_accuracy: the most probable final label's frequency (exact).
        normalized_accuracy: ``(test - chance) / (1 - chance)``: 0 at chance, 1 perfect (NaN
            when chance is 1: a task whose final label is certain).
        train_accuracy: per-step accuracy on held-out sequences of the training lengths.
        nonfinite_fraction: fraction of test sequences whose last state is not finite
            (an unnormalized state that overflowed: its prediction counts as wrong).
        accuracy_by_length: ``(test_length,)`` accuracy of the label after each prefix.
        learning_rate: the chosen learning rate.
        val_accuracy: final-step validation accuracy for each learning rate tried
            (``NaN`` where training diverged).
        num_parameters: parameters of the cell and its readout.
        config: every setting of the run (JSON-serializable).
        seconds: wall time of the whole run (training every learning rate and testing).
        trained: the :class:`~switchssm.rnn.TrainResult` of the chosen learning rate (the
            trained cell and readout; :func:`~switchssm.rnn.predict` runs it).
    """

    task: str
    cell: str
    additive: bool
    test_length: int
    test_accuracy: float
    chance_accuracy: float
    normalized_accuracy: float
    train_accuracy: float
    nonfinite_fraction: float
    accuracy_by_length: np.ndarray
    learning_rate: float
    val_accuracy: dict
    num_parameters: int
    config: dict
    seconds: float
    trained: TrainResult | None = None

    def summary(self) -> dict:
        """The scalar fields (JSON-serializable), for tables and ``results.json``."""
        d = self._asdict()
        d.pop("accuracy_by_length")
        d.pop("trained")
        d["val_accuracy"] = {str(k): v for k, v in self.val_accuracy.items()}
        d["steps"] = self.config["num_steps"]
        return d


def _cell_settings(cell: str, additive: bool, mode):
    cell_kwargs, init_kwargs = {}, {}
    if cell in BILINEAR_CELLS:
        cell_kwargs = {"normalize": not additive}
        init_kwargs = {"additive": additive}
        if cell == "block":
            init_kwargs["block_size"] = 2
        if mode is not None:
            cell_kwargs["mode"] = mode
    elif additive:
        raise ValueError(f"`additive` applies to the bilinear cells {BILINEAR_CELLS}, not {cell!r}")
    elif mode is not None and cell in ("mingru", "selective"):
        cell_kwargs["mode"] = mode
    return cell_kwargs, init_kwargs


def _final_accuracy(result, data, num_symbols) -> tuple[float, np.ndarray, float]:
    """Accuracy of the last label and after every prefix, and the fraction of sequences whose
    last prediction is not finite (those count as wrong: an unnormalized state that
    overflowed predicts nothing)."""
    probs = predict(result, data.one_hot(num_symbols), lengths=data.lengths)
    ok = np.all(np.isfinite(probs), axis=-1)
    pred = np.where(ok, probs.argmax(-1), -1)
    by_length = np.mean(pred == data.labels, axis=0)
    return float(by_length[-1]), by_length, float(1.0 - ok[:, -1].mean())


def train_state_tracker(
    task: StateTrackingTask | str,
    cell: str,
    *,
    key=0,
    additive: bool = False,
    hidden_dim: int = DEFAULTS["hidden_dim"],
    num_steps: int = DEFAULTS["num_steps"],
    batch_size: int = DEFAULTS["batch_size"],
    learning_rates=DEFAULTS["learning_rates"],
    train_lengths=DEFAULTS["train_lengths"],
    test_length: int = DEFAULTS["test_length"],
    num_train: int = DEFAULTS["num_train"],
    num_val: int = DEFAULTS["num_val"],
    num_test: int = DEFAULTS["num_test"],
    mode: str | None = None,
    progress: bool = True,
) -> StateTrackingResult:
    """Train one cell on one state-tracking task and test it at a longer length.

    Args:
        task: a :class:`~switchssm.data.StateTrackingTask` or a task name (default settings).
        cell: one of :data:`STATETRACK_CELLS`.
        key: PRNG key or integer seed (data, initialization, minibatches).
        additive: bilinear cells only: add an input term ``B x_t`` (then unnormalized).
        hidden_dim: ``H``.
        num_steps: Adam steps per learning rate.
        batch_size: sequences per step.
        learning_rates: the learning rates tried (the best on validation is kept).
        train_lengths: ``(min, max)`` lengths of the training sequences.
        test_length: length of the validation and test sequences.
        num_train: training sequences (a tenth held out to report ``train_accuracy``).
        num_val: validation sequences (learning-rate choice).
        num_test: test sequences.
        mode: the bilinear and minimal cells' scan form (default: the backend's).
        progress: progress bars.

    Returns:
        :class:`StateTrackingResult`.

    Example:
        >>> r = train_state_tracker("parity", "diagonal", hidden_dim=4, num_steps=20,
        ...                         learning_rates=(0.05,), test_length=20, num_train=64,
        ...                         num_val=8, num_test=16, progress=False)
        >>> r.task, r.chance_accuracy, r.accuracy_by_length.shape
        ('parity', 0.5, (20,))
    """
    t0 = time.perf_counter()
    if isinstance(task, str):
        task = state_tracking_task(task)
    if not isinstance(task, StateTrackingTask):
        raise ValueError(f"`task` must be a StateTrackingTask or a task name, got {task!r}")
    V.check_choice(cell, "cell", STATETRACK_CELLS)
    additive = V.check_bool(additive, "additive")
    cell_kwargs, init_kwargs = _cell_settings(cell, additive, mode)
    hidden_dim = V.check_int(hidden_dim, "hidden_dim", low=2)
    if cell in ("rotation", "complex") and hidden_dim % 2:
        raise ValueError(f"`hidden_dim` must be even for the {cell} cell, got {hidden_dim}")
    test_length = V.check_int(test_length, "test_length")
    num_train = V.check_int(num_train, "num_train", low=2)
    try:
        lo, hi = (int(v) for v in train_lengths)
    except (TypeError, ValueError):
        raise ValueError(f"`train_lengths` must be (min, max), got {train_lengths!r}") from None
    lrs = tuple(V.check_float(lr, "learning_rates", low=0, low_open=True) for lr in learning_rates)
    if not lrs:
        raise ValueError("`learning_rates` must hold at least one learning rate")
    key = V.as_key(key)
    k_train, k_val, k_test, k_fit = jax.random.split(key, 4)
    train = sample_state_tracking(k_train, task, num_train, lo, hi)
    val = sample_state_tracking(k_val, task, V.check_int(num_val, "num_val"), test_length)
    test = sample_state_tracking(k_test, task, V.check_int(num_test, "num_test"), test_length)
    x_train = train.one_hot(task.num_symbols)

    best, val_acc = None, {}
    for i, lr in enumerate(lrs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TrainingDivergedWarning)
            try:
                res = train_cell(
                    jax.random.fold_in(k_fit, i),
                    cell,
                    x_train,
                    train.labels,
                    task="latent",
                    lengths=train.lengths,
                    hidden_dim=hidden_dim,
                    num_classes=task.num_classes,
                    num_steps=num_steps,
                    learning_rate=lr,
                    batch_size=batch_size,
                    val_fraction=0.1,
                    cell_kwargs=cell_kwargs,
                    init_kwargs=init_kwargs,
                    progress=progress,
                )
            except FloatingPointError:  # the loss became NaN: this learning rate failed
                val_acc[lr] = float("nan")
                continue
        acc, _, _ = _final_accuracy(res, val, task.num_symbols)
        val_acc[lr] = acc
        if (
            best is None
            or acc > val_acc[best[0]]
            or (acc == val_acc[best[0]] and res.metrics["loss"] < best[1].metrics["loss"])
        ):
            best = (lr, res)
    if best is None:
        raise FloatingPointError(
            f"training {cell} on {task.name} diverged at every learning rate {lrs}"
        )
    lr, res = best
    test_acc, by_length, nonfinite = _final_accuracy(res, test, task.num_symbols)
    chance = chance_accuracy(task, test_length)
    run = dict(task=task.name, cell=cell, additive=additive)  # in the config and the result
    config = dict(
        **run,
        hidden_dim=hidden_dim,
        num_steps=num_steps,
        batch_size=batch_size,
        learning_rates=list(lrs),
        train_lengths=[lo, hi],
        test_length=test_length,
        num_train=num_train,
        num_val=int(num_val),
        num_test=int(num_test),
        cell_kwargs=cell_kwargs,
        init_kwargs=init_kwargs,
        key=np.asarray(jax.random.key_data(key)).tolist(),
    )
    num_params = int(sum(np.size(a) for a in jax.tree_util.tree_leaves(res.params)))
    return StateTrackingResult(
        **run,
        test_length=test_length,
        test_accuracy=test_acc,
        chance_accuracy=chance,
        normalized_accuracy=(test_acc - chance) / (1.0 - chance) if chance < 1.0 else math.nan,
        train_accuracy=float(res.metrics["accuracy"]),
        nonfinite_fraction=nonfinite,
        accuracy_by_length=by_length,
        learning_rate=lr,
        val_accuracy=val_acc,
        num_parameters=num_params,
        config=config,
        seconds=time.perf_counter() - t0,
        trained=res,
    )


def state_tracking_table(
    tasks, cells, *, additive=(False,), key=0, progress: bool = True, on_result=None, **settings
) -> list[StateTrackingResult]:
    """Train every cell on every task (the paper's comparison): one result per pair.

    Args:
        tasks: :class:`~switchssm.data.StateTrackingTask` objects or task names.
        cells: cell names (:data:`STATETRACK_CELLS`).
        additive: for the bilinear cells, with and/or without the additive term.
        key: PRNG key or integer seed; every run uses the same data for a given task.
        progress: progress bars and one line per run.
        on_result: called with each result as it is produced (e.g. to save partial tables).
        **settings: passed to :func:`train_state_tracker`.

    Returns:
        The results, in task-major order.
    """
    out = []
    for task in tasks:
        for cell in cells:
            for add in additive if cell in BILINEAR_CELLS else (False,):
                r = train_state_tracker(
                    task, cell, key=key, additive=add, progress=False, **settings
                )
                if progress:
                    print(
                        f"{r.task:<28} {cell + (' +Bx' if add else ''):<14} "
                        f"test {r.test_accuracy:.3f} (chance {r.chance_accuracy:.3f}) "
                        f"train {r.train_accuracy:.3f}  lr {r.learning_rate:g}  "
                        f"{r.seconds:.0f} s",
                        flush=True,
                    )
                out.append(r)
                if on_result is not None:
                    on_result(r)
    return out


def _table_rows(results):
    return [
        {
            "task": r.task,
            "cell": r.cell + (" + Bx" if r.additive else ""),
            "test acc.": r.test_accuracy,
            "chance": r.chance_accuracy,
            "normalized": r.normalized_accuracy,
            "train acc.": r.train_accuracy,
            "overflowed": r.nonfinite_fraction,
            "lr": r.learning_rate,
            "params": r.num_parameters,
            "s": round(r.seconds),
        }
        for r in results
    ]


def write_state_tracking_report(folder, results, *, figure: bool = True) -> list[str]:
    """Write ``results.json`` (one object per run, or the single run's object),
    ``results.md`` and ``accuracy_by_length.png`` into a :class:`ReportFolder` being written.

    Args:
        folder: an open :class:`~switchssm.pipelines.ReportFolder`.
        results: a :class:`StateTrackingResult` or a list of them.
        figure: also draw the accuracy-vs-length figure.

    Returns:
        The names of the files written.
    """
    single = isinstance(results, StateTrackingResult)
    results = [results] if single else list(results)
    summaries = [r.summary() for r in results]
    for s, r in zip(summaries, results, strict=True):
        s["accuracy_by_length"] = [round(float(a), 6) for a in r.accuracy_by_length]
    payload = summaries[0] if single else summaries
    folder.file("results.json").write_text(json.dumps(payload, indent=2, default=float) + "\n")
    md = "# State tracking\n\n" + markdown_table(_table_rows(results), digits=3) + "\n"
    folder.file("results.md").write_text(md)
    names = ["results.json", "results.md"]
    if figure:
        from switchssm.plots import plot_accuracy_by_length

        plot_accuracy_by_length(results, path=folder.file("accuracy_by_length.png"))
        names.append("accuracy_by_length.png")
    return names
