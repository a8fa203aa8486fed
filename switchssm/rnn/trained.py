"""Using a trained cell: its states, predictions, held-out metrics and update gates.

Inputs are validated and padded like :func:`~switchssm.rnn.train_cell`'s (a list of
``(T_i, D_in)`` arrays, or a padded array with ``lengths``); outputs are NumPy arrays
``(N, T_max, ...)`` (states at padded steps are not meaningful: cut them with
:meth:`~switchssm.sequences.Sequences.unpad`).
"""

# ruff: noqa: F722

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from switchssm._docstrings import fill_doc
from switchssm.rnn import _common as C
from switchssm.rnn import minimal as _minimal
from switchssm.rnn._training import GaussianPrediction
from switchssm.rnn._training import TrainResult
from switchssm.rnn._training import forward_jit
from switchssm.rnn._training import metrics_of
from switchssm.rnn._training import prepare_inputs
from switchssm.rnn._training import prepare_targets
from switchssm.rnn._training import spec_of
from switchssm.rnn._training import sums_jit
from switchssm.types import Array
from switchssm.types import Float

__all__ = ["evaluate", "hidden_states", "predict", "update_gates"]

_GATED = ("mingru", "minlstm", "selective", "gru", "ligru", "lstm")

#: The set-up of every example below: a minGRU trained for two steps on random bits.
_EXAMPLE = """\
>>> import jax, numpy as np
>>> y = np.random.default_rng(0).integers(0, 2, size=(6, 5))
>>> from switchssm.rnn import train_cell
>>> res = train_cell(jax.random.PRNGKey(0), "mingru", np.eye(2)[y], y,
...                  hidden_dim=3, num_steps=2, progress=False)"""


def check_result(result) -> TrainResult:
    if not isinstance(result, TrainResult):
        raise ValueError(f"`result` must be a TrainResult, got {type(result).__name__}")
    return result


@fill_doc(_EXAMPLE, "{trained_example}")
def hidden_states(
    result: TrainResult, x: Float[Array, "N T D"] | Sequence, *, lengths=None
) -> Float[np.ndarray, "N T H"]:
    """The trained cell's states ``h_t`` for every sequence and step.

    Args:
        result: from :func:`~switchssm.rnn.train_cell` (or :func:`~switchssm.rnn.load_checkpoint`).
        x: ``(N, T, D_in)`` inputs or a list of ``(T_i, D_in)`` arrays (zero-padded to the
            longest; the states at padded steps are those of the padded input and are
            not meaningful).
        lengths: ``(N,)`` valid lengths of padded ``x`` (validated; padded steps are
            zeroed before the cell runs).

    Returns:
        ``h``: ``(N, T, H)`` NumPy array (``T`` the longest length). For the LSTM, the
        output state ``h`` (not the cell state).

    Example:
        {trained_example}
        >>> hidden_states(res, [np.eye(2)[[0, 1]], np.eye(2)[[1, 1, 0]]]).shape
        (2, 3, 3)
    """
    result = check_result(result)
    data = prepare_inputs(x, lengths, result.config.input_dim)
    h, _ = forward_jit(spec_of(result.config), result.params, data.values)
    return np.asarray(h)


@fill_doc(_EXAMPLE, "{trained_example}")
def predict(result: TrainResult, x, *, lengths=None):
    """The readout's prediction at every step.

    Args:
        result: from :func:`~switchssm.rnn.train_cell`.
        x: inputs as in :func:`hidden_states`.
        lengths: ``(N,)`` valid lengths of padded ``x``.

    Returns:
        ``(N, T, C)`` class probabilities (cross-entropy; for ``task="next_observation"``
        the prediction at step ``t`` is for ``y_{t+1}``), ``(N, T, D)`` means (``"mse"``),
        or :class:`GaussianPrediction` (``"gaussian_nll"``).

    Example:
        {trained_example}
        >>> np.allclose(predict(res, np.eye(2)[y]).sum(-1), 1.0)
        True
    """
    result = check_result(result)
    cfg = result.config
    data = prepare_inputs(x, lengths, cfg.input_dim)
    _, out = forward_jit(spec_of(cfg), result.params, data.values)
    if cfg.loss == "cross_entropy":
        return np.asarray(jax.nn.softmax(out, axis=-1))
    if cfg.loss == "mse":
        return np.asarray(out)
    D = cfg.output_dim
    return GaussianPrediction(np.asarray(out[..., :D]), np.asarray(jnp.exp(out[..., D:])))


@fill_doc(_EXAMPLE, "{trained_example}")
def evaluate(result: TrainResult, x, targets, *, lengths=None) -> dict:
    """The training loss and metrics of a trained cell on new sequences.

    Same alignment and masking as :func:`~switchssm.rnn.train_cell` (for next-observation
    prediction, pairs ``(h_t, y_{t+1})`` with ``t + 1`` inside the sequence).

    Args:
        result: from :func:`~switchssm.rnn.train_cell`.
        x: inputs as in :func:`~switchssm.rnn.train_cell`.
        targets: targets as in :func:`~switchssm.rnn.train_cell`.
        lengths: ``(N,)`` valid lengths of padded ``x``.

    Returns:
        dict with ``loss`` and ``accuracy`` + ``log_loss`` (cross-entropy) or ``mse``, and
        the counts ``num_timesteps`` (valid pairs), ``num_sequences``.

    Example:
        {trained_example}
        >>> evaluate(res, np.eye(2)[y], y)["num_timesteps"]
        24
    """
    result = check_result(result)
    cfg = result.config
    data = prepare_inputs(x, lengths, cfg.input_dim)
    tp, mask, _, _ = prepare_targets(targets, data, cfg.task, cfg.loss, cfg.num_classes)
    if cfg.loss != "cross_entropy" and tp.shape[-1] != cfg.output_dim:
        raise ValueError(
            f"`targets` must have last dimension {cfg.output_dim} (the trained readout's), "
            f"got {tp.shape[-1]}"
        )
    out = sums_jit(spec_of(cfg), result.params, data.values, jnp.asarray(tp), jnp.asarray(mask))
    return metrics_of(cfg, *out, data.num_sequences)


@fill_doc(_EXAMPLE, "{trained_example}")
def update_gates(result: TrainResult, x, *, lengths=None) -> Float[np.ndarray, "N T H"]:
    r"""Each unit's update strength at every step: the weight of the new candidate.

    The quantity that plays the switch posterior ``g_t`` in ``h_t = (1 - g_t) h_{t-1} +
    g_t \tilde h_t`` (docs/theory.md, fact 2.2):

    - ``"mingru"``: ``z_t = sigmoid(W_z x_t + b_z)``;
    - ``"minlstm"``: the normalized input gate ``i'_t``;
    - ``"selective"``: ``1 - a(x_t)`` (one minus the decay);
    - ``"gru"``: ``z_t = sigmoid(W_z x_t + U_z h_{t-1} + b_z)``;
    - ``"ligru"``: ``1 - z_t`` (Li-GRU's ``z`` weighs the previous state);
    - ``"lstm"``: ``1 - f_t``, one minus the forget gate.

    The other cells (Elman, the attention and state-space layers) have no update gate
    (``ValueError``).

    Args:
        result: from :func:`~switchssm.rnn.train_cell`.
        x: inputs as in :func:`hidden_states`.
        lengths: ``(N,)`` valid lengths of padded ``x``.

    Returns:
        ``(N, T, H)`` values in ``[0, 1]``.

    Example:
        {trained_example}
        >>> update_gates(res, np.eye(2)[y]).shape
        (6, 5, 3)
    """
    result = check_result(result)
    cfg = result.config
    if cfg.cell not in _GATED:
        raise ValueError(
            f"`result`: the {cfg.cell} cell has no update gate (gated cells: {sorted(_GATED)})"
        )
    x = prepare_inputs(x, lengths, cfg.input_dim).values
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
        h, _ = forward_jit(spec_of(cfg), result.params, x)
        h_prev = jnp.concatenate([jnp.zeros_like(h[:, :1]), h[:, :-1]], axis=1)
        part = {"gru": "gate", "ligru": "gate", "lstm": "forget"}[cfg.cell]
        pre = C.linear(x, getattr(p, f"{part}_weight"), getattr(p, f"{part}_bias"))
        pre = pre + h_prev @ getattr(p, f"{part}_recurrent").T
        g = jax.nn.sigmoid(pre) if cfg.cell == "gru" else jax.nn.sigmoid(-pre)
    return np.asarray(g)
