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

Checkpoints (``checkpoint_dir``) are written in the package's save format, without pickle
(:mod:`switchssm.rnn.checkpoint`).

Example:
    >>> import jax, numpy as np
    >>> x = np.random.default_rng(0).normal(size=(20, 6, 2))
    >>> s = (x[..., 0] > 0).astype(int)
    >>> res = train_cell(jax.random.PRNGKey(0), "mingru", x, s, task="latent",
    ...                  hidden_dim=4, num_steps=20, batch_size=8, progress=False)
    >>> from switchssm.rnn import hidden_states
    >>> hidden_states(res, x).shape
    (20, 6, 4)
"""

# ruff: noqa: F722  (jaxtyping shape strings such as "N T D" are not forward references)

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from switchssm import _validation as V
from switchssm.rnn._training import CELL_TABLE
from switchssm.rnn._training import CELLS
from switchssm.rnn._training import TASKS
from switchssm.rnn._training import DataSplit
from switchssm.rnn._training import TrainConfig
from switchssm.rnn._training import TrainedCell
from switchssm.rnn._training import TrainHistory
from switchssm.rnn._training import TrainResult
from switchssm.rnn._training import check_cell_kwargs
from switchssm.rnn._training import metrics_of
from switchssm.rnn._training import prepare_inputs
from switchssm.rnn._training import prepare_targets
from switchssm.rnn._training import run_cell
from switchssm.rnn._training import spec_of
from switchssm.rnn._training import sums
from switchssm.rnn._training import sums_jit
from switchssm.rnn.checkpoint import save_checkpoint
from switchssm.rnn.readout import init_readout
from switchssm.types import Array
from switchssm.types import Float
from switchssm.types import PRNGKeyArray

__all__ = ["TrainingDivergedWarning", "divergence", "train_cell"]


# ---------------------------------------------------------------------------
# result types
# ---------------------------------------------------------------------------


# ---------------------------------------------------------------------------
# validation and data layout (NumPy, before any jit)
# ---------------------------------------------------------------------------


# ---------------------------------------------------------------------------
# model, loss
# ---------------------------------------------------------------------------


# ---------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------


#: Divergence thresholds of :func:`train_cell` (see :func:`divergence`).
DIVERGED_LOSS_FACTOR = 10.0
DIVERGED_WEIGHT_FACTOR = 1e3


class TrainingDivergedWarning(UserWarning):
    """:func:`train_cell` diverged: the held-out loss rose far above its start (or chance),
    or the weights blew up, without becoming NaN. Lower ``learning_rate``."""


def divergence(config, val_start: float, val_end: float, w_start: float, w_end: float):
    r"""Why a run diverged, or ``None``.

    Diverged means: the final held-out loss exceeds its reference by more than
    ``DIVERGED_LOSS_FACTOR`` times the reference's size, the reference being the larger of
    the loss before training and (cross-entropy) chance, :math:`\log C`; or the largest
    absolute weight grew by more than ``DIVERGED_WEIGHT_FACTOR`` times (at least 1).
    """
    ref = val_start
    if config.loss == "cross_entropy":
        ref = max(ref, math.log(config.num_classes))
    if not math.isfinite(val_end) or val_end > ref + DIVERGED_LOSS_FACTOR * max(abs(ref), 1e-12):
        return (
            f"held-out loss {val_end:.4g} against {ref:.4g} before training (or chance), more "
            f"than {DIVERGED_LOSS_FACTOR:g}x above"
        )
    if w_end > DIVERGED_WEIGHT_FACTOR * max(w_start, 1.0):
        return f"largest weight {w_end:.4g}, {w_end / max(w_start, 1.0):.3g}x its start"
    return None


def _max_abs(tree) -> float:
    leaves = [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]
    return float(max((np.max(np.abs(x)) for x in leaves if x.size), default=0.0))


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
    init_kwargs: dict | None = None,
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
        cell: one of :data:`CELLS`: the minimal cells (``"mingru"``, ``"minlstm"``,
            ``"selective"``), the classic ones (``"gru"``, ``"lstm"``, ``"elman"``,
            ``"ligru"``), the sequence layers (``"linear_attention"``, ``"lti"``, ``"lru"``,
            ``"mamba"``, stacks) and the bilinear cells (``"bilinear"``, ``"cp"``,
            ``"block"``, ``"rotation"``, ``"complex"``, ``"diagonal"``).
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
        init_kwargs: keyword arguments of the cell's initializer, e.g. ``{"rank": 8}`` for
            ``"cp"`` or ``{"additive": True}`` for a bilinear cell with an input term.
        checkpoint_dir: if given, a checkpoint (see :func:`save_checkpoint`) is written there
            after every evaluation.
        progress: show a progress bar.

    Returns:
        :class:`TrainResult`.

    Raises:
        ValueError: naming the argument that is malformed.
        FloatingPointError: if the training loss becomes NaN or infinite.

    Warns:
        TrainingDivergedWarning: the run diverged without NaN (:func:`divergence`: held-out
            loss far above its start or chance, or exploding weights); the result's
            ``diverged`` is then True.

    Example:
        >>> import jax, numpy as np
        >>> y = np.random.default_rng(0).integers(0, 3, size=(16, 8))
        >>> x = np.eye(3)[y]
        >>> res = train_cell(jax.random.PRNGKey(0), "gru", x, y, hidden_dim=4, num_steps=10,
        ...                  progress=False)
        >>> sorted(res.metrics)
        ['accuracy', 'log_loss', 'loss', 'num_sequences', 'num_timesteps']
    """
    if cell not in CELL_TABLE:
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
    kwargs = check_cell_kwargs(cell, cell_kwargs)
    init_kw = check_cell_kwargs(cell, init_kwargs, "init_kwargs")

    data = prepare_inputs(x, lengths)
    xp = np.asarray(data.values)
    tp, mask, loss, num_classes = prepare_targets(targets, data, task, loss, num_classes)
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
        init_kwargs=init_kw,
    )
    k_init, k_read, k_split, k_batch = jax.random.split(key, 4)
    params = TrainedCell(
        CELL_TABLE[cell].init(k_init, config.input_dim, hidden_dim, **init_kw),
        init_readout(k_read, hidden_dim, config.num_outputs),
    )
    # Trace once on concrete shapes: cell_kwargs values are checked by the cell itself
    # (ValueError naming the argument) before anything is compiled.
    spec = spec_of(config)
    jax.eval_shape(lambda p, xx: run_cell(spec, p, xx), params.cell, xp[:1])

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
        loss_sum, _, count = sums(spec, p, xb, tb, mb)
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

    evaluate_sums = lambda p, X, Tg, M: sums_jit(spec, p, X, Tg, M)

    def val_loss(p):
        s, _, c = evaluate_sums(p, *data_va)
        return float(s) / float(c)

    opt_state = opt.init(params)
    w_start = _max_abs(params)
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
    metrics = metrics_of(config, *evaluate_sums(params, *data_va), len(va))
    why = divergence(config, val_hist[0], val_hist[-1], w_start, _max_abs(params))
    if why is not None:
        warnings.warn(
            f"train_cell({cell!r}) diverged: {why}; lower `learning_rate` (now {learning_rate:g})",
            TrainingDivergedWarning,
            stacklevel=2,
        )
    result = TrainResult(params, history, metrics, config, split, diverged=why is not None)
    if checkpoint_dir is not None:
        save_checkpoint(checkpoint_dir, result)
    return result


# ---------------------------------------------------------------------------
# using a trained cell
# ---------------------------------------------------------------------------


# ---------------------------------------------------------------------------
# checkpoints (npz + JSON, no pickle)
# ---------------------------------------------------------------------------
