"""RNN cells as pure functions over parameter pytrees (no probability here).

Cells whose gates read only the input run as diagonal linear scans, sequential or
parallel (:mod:`switchssm.rnn.minimal`): :func:`mingru` (logit or positive/log
states), :func:`minlstm`, :func:`selective`. Classic cells whose gates read the
previous state run step by step (:mod:`switchssm.rnn.classic`): :func:`gru`,
:func:`lstm`, :func:`elman`, :func:`ligru`. Each has a parameter pytree
(``<Cell>Params``), an initializer ``init_<cell>(key, input_dim, hidden_dim)``, a
sequence function taking ``x`` of shape ``(T, D_in)`` or ``(B, T, D_in)`` and a
one-step function ``<cell>_step(params, h_prev, x_t)``. :func:`readout` maps states
to class probabilities.

Example:
    >>> import jax, jax.numpy as jnp
    >>> from switchssm.rnn import init_mingru, mingru
    >>> params = init_mingru(jax.random.PRNGKey(0), 3, 8)
    >>> mingru(params, jnp.ones((10, 3)), mode="parallel").shape
    (10, 8)
"""

from switchssm.rnn._common import g_activation, log_g_activation
from switchssm.rnn.classic import (
    ElmanParams,
    GRUParams,
    LiGRUParams,
    LSTMParams,
    LSTMState,
    elman,
    elman_step,
    gru,
    gru_step,
    init_elman,
    init_gru,
    init_ligru,
    init_lstm,
    ligru,
    ligru_step,
    lstm,
    lstm_step,
)
from switchssm.rnn.minimal import (
    MinGRUParams,
    MinLSTMGates,
    MinLSTMParams,
    SelectiveParams,
    init_mingru,
    init_minlstm,
    init_selective,
    mingru,
    mingru_log,
    mingru_log_step,
    mingru_step,
    minlstm,
    minlstm_gates,
    minlstm_log,
    minlstm_log_step,
    minlstm_step,
    selective,
    selective_step,
)
from switchssm.rnn.readout import ReadoutParams, init_readout, readout, readout_log
from switchssm.rnn.train import (
    CELLS,
    DataSplit,
    GaussianPrediction,
    TrainConfig,
    TrainedCell,
    TrainHistory,
    TrainResult,
    evaluate,
    hidden_states,
    load_checkpoint,
    predict,
    save_checkpoint,
    train_cell,
    update_gates,
)

__all__ = [
    "CELLS",
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
    "ElmanParams",
    "GRUParams",
    "LSTMParams",
    "LSTMState",
    "LiGRUParams",
    "MinGRUParams",
    "MinLSTMGates",
    "MinLSTMParams",
    "ReadoutParams",
    "SelectiveParams",
    "elman",
    "elman_step",
    "g_activation",
    "gru",
    "gru_step",
    "init_elman",
    "init_gru",
    "init_ligru",
    "init_lstm",
    "init_mingru",
    "init_minlstm",
    "init_readout",
    "init_selective",
    "ligru",
    "ligru_step",
    "log_g_activation",
    "lstm",
    "lstm_step",
    "mingru",
    "mingru_log",
    "mingru_log_step",
    "mingru_step",
    "minlstm",
    "minlstm_gates",
    "minlstm_log",
    "minlstm_log_step",
    "minlstm_step",
    "readout",
    "readout_log",
    "selective",
    "selective_step",
]
