"""RNN cells as pure functions over parameter pytrees (no probability here).

Cells whose gates read only the input run as diagonal linear scans, sequential or
parallel (:mod:`switchssm.rnn.minimal`): :func:`mingru` (logit or positive/log
states), :func:`minlstm`, :func:`selective`. Classic cells whose gates read the
previous state run step by step (:mod:`switchssm.rnn.classic`): :func:`gru`,
:func:`lstm`, :func:`elman`, :func:`ligru`. Each has a parameter pytree
(``<Cell>Params``), an initializer ``init_<cell>(key, input_dim, hidden_dim)``, a
sequence function taking ``x`` of shape ``(T, D_in)`` or ``(B, T, D_in)`` and a
one-step function ``<cell>_step(params, h_prev, x_t)``. :func:`readout` maps states
to class probabilities. :func:`train_cell` trains any of them with a readout
(:mod:`switchssm.rnn.train`), :mod:`switchssm.rnn.trained` uses the result and
:mod:`switchssm.rnn.checkpoint` saves it. Sequence layers read as state-space models:
linearized attention (:mod:`switchssm.rnn.attention`), LTI, LRU, S6 and the Mamba block
(:mod:`switchssm.rnn.ssm`, :mod:`switchssm.rnn.selective_ssm`), bidirectional wrappers and
stacks (:mod:`switchssm.rnn.stacking`).

Example:
    >>> import jax, jax.numpy as jnp
    >>> from switchssm.rnn import init_mingru, mingru
    >>> params = init_mingru(jax.random.PRNGKey(0), 3, 8)
    >>> mingru(params, jnp.ones((10, 3)), mode="parallel").shape
    (10, 8)
"""

from switchssm.rnn._common import g_activation as g_activation
from switchssm.rnn._common import log_g_activation as log_g_activation
from switchssm.rnn._training import CELLS as CELLS
from switchssm.rnn._training import LOSSES as LOSSES
from switchssm.rnn._training import TASKS as TASKS
from switchssm.rnn._training import DataSplit as DataSplit
from switchssm.rnn._training import GaussianPrediction as GaussianPrediction
from switchssm.rnn._training import TrainConfig as TrainConfig
from switchssm.rnn._training import TrainedCell as TrainedCell
from switchssm.rnn._training import TrainHistory as TrainHistory
from switchssm.rnn._training import TrainResult as TrainResult
from switchssm.rnn.attention import FEATURE_MAPS as FEATURE_MAPS
from switchssm.rnn.attention import FORMS as FORMS
from switchssm.rnn.attention import AttentionMemory as AttentionMemory
from switchssm.rnn.attention import LinearAttentionParams as LinearAttentionParams
from switchssm.rnn.attention import attention_features as attention_features
from switchssm.rnn.attention import init_linear_attention as init_linear_attention
from switchssm.rnn.attention import linear_attention as linear_attention
from switchssm.rnn.bilinear import bilinear as bilinear
from switchssm.rnn.bilinear import bilinear_step as bilinear_step
from switchssm.rnn.bilinear import transition_matrices as transition_matrices
from switchssm.rnn.bilinear_params import BILINEAR_KINDS as BILINEAR_KINDS
from switchssm.rnn.bilinear_params import BilinearParams as BilinearParams
from switchssm.rnn.bilinear_params import BlockBilinearParams as BlockBilinearParams
from switchssm.rnn.bilinear_params import ComplexDiagonalParams as ComplexDiagonalParams
from switchssm.rnn.bilinear_params import CPBilinearParams as CPBilinearParams
from switchssm.rnn.bilinear_params import DiagonalBilinearParams as DiagonalBilinearParams
from switchssm.rnn.bilinear_params import InputTerm as InputTerm
from switchssm.rnn.bilinear_params import RotationParams as RotationParams
from switchssm.rnn.bilinear_params import init_bilinear as init_bilinear
from switchssm.rnn.bilinear_params import init_block_bilinear as init_block_bilinear
from switchssm.rnn.bilinear_params import init_complex_diagonal as init_complex_diagonal
from switchssm.rnn.bilinear_params import init_cp_bilinear as init_cp_bilinear
from switchssm.rnn.bilinear_params import init_diagonal_bilinear as init_diagonal_bilinear
from switchssm.rnn.bilinear_params import init_rotation as init_rotation
from switchssm.rnn.checkpoint import load_checkpoint as load_checkpoint
from switchssm.rnn.checkpoint import save_checkpoint as save_checkpoint
from switchssm.rnn.classic import ElmanParams as ElmanParams
from switchssm.rnn.classic import GRUParams as GRUParams
from switchssm.rnn.classic import LiGRUParams as LiGRUParams
from switchssm.rnn.classic import LSTMParams as LSTMParams
from switchssm.rnn.classic import LSTMState as LSTMState
from switchssm.rnn.classic import elman as elman
from switchssm.rnn.classic import elman_step as elman_step
from switchssm.rnn.classic import gru as gru
from switchssm.rnn.classic import gru_step as gru_step
from switchssm.rnn.classic import init_elman as init_elman
from switchssm.rnn.classic import init_gru as init_gru
from switchssm.rnn.classic import init_ligru as init_ligru
from switchssm.rnn.classic import init_lstm as init_lstm
from switchssm.rnn.classic import ligru as ligru
from switchssm.rnn.classic import ligru_step as ligru_step
from switchssm.rnn.classic import lstm as lstm
from switchssm.rnn.classic import lstm_step as lstm_step
from switchssm.rnn.minimal import MinGRUParams as MinGRUParams
from switchssm.rnn.minimal import MinLSTMGates as MinLSTMGates
from switchssm.rnn.minimal import MinLSTMParams as MinLSTMParams
from switchssm.rnn.minimal import SelectiveParams as SelectiveParams
from switchssm.rnn.minimal import init_mingru as init_mingru
from switchssm.rnn.minimal import init_minlstm as init_minlstm
from switchssm.rnn.minimal import init_selective as init_selective
from switchssm.rnn.minimal import mingru as mingru
from switchssm.rnn.minimal import mingru_log as mingru_log
from switchssm.rnn.minimal import mingru_log_step as mingru_log_step
from switchssm.rnn.minimal import mingru_step as mingru_step
from switchssm.rnn.minimal import minlstm as minlstm
from switchssm.rnn.minimal import minlstm_gates as minlstm_gates
from switchssm.rnn.minimal import minlstm_log as minlstm_log
from switchssm.rnn.minimal import minlstm_log_step as minlstm_log_step
from switchssm.rnn.minimal import minlstm_step as minlstm_step
from switchssm.rnn.minimal import selective as selective
from switchssm.rnn.minimal import selective_step as selective_step
from switchssm.rnn.readout import ReadoutParams as ReadoutParams
from switchssm.rnn.readout import init_readout as init_readout
from switchssm.rnn.readout import readout as readout
from switchssm.rnn.readout import readout_log as readout_log
from switchssm.rnn.selective_ssm import DISCRETIZATIONS as DISCRETIZATIONS
from switchssm.rnn.selective_ssm import MambaParams as MambaParams
from switchssm.rnn.selective_ssm import S6Params as S6Params
from switchssm.rnn.selective_ssm import causal_depthwise_conv as causal_depthwise_conv
from switchssm.rnn.selective_ssm import init_mamba as init_mamba
from switchssm.rnn.selective_ssm import init_s6 as init_s6
from switchssm.rnn.selective_ssm import mamba as mamba
from switchssm.rnn.selective_ssm import s6 as s6
from switchssm.rnn.selective_ssm import s6_coefficients as s6_coefficients
from switchssm.rnn.ssm import LTI_FORMS as LTI_FORMS
from switchssm.rnn.ssm import DiagonalLTIParams as DiagonalLTIParams
from switchssm.rnn.ssm import LRUParams as LRUParams
from switchssm.rnn.ssm import LTIParams as LTIParams
from switchssm.rnn.ssm import convolution_kernel as convolution_kernel
from switchssm.rnn.ssm import diagonalize as diagonalize
from switchssm.rnn.ssm import init_lru as init_lru
from switchssm.rnn.ssm import init_lti as init_lti
from switchssm.rnn.ssm import lru as lru
from switchssm.rnn.ssm import lru_eigenvalues as lru_eigenvalues
from switchssm.rnn.ssm import lru_to_diagonal as lru_to_diagonal
from switchssm.rnn.ssm import lti as lti
from switchssm.rnn.ssm import lti_diagonal as lti_diagonal
from switchssm.rnn.stacking import STACK_LAYERS as STACK_LAYERS
from switchssm.rnn.stacking import BidirectionalParams as BidirectionalParams
from switchssm.rnn.stacking import MLPParams as MLPParams
from switchssm.rnn.stacking import StackParams as StackParams
from switchssm.rnn.stacking import bidirectional as bidirectional
from switchssm.rnn.stacking import init_bidirectional as init_bidirectional
from switchssm.rnn.stacking import init_mlp as init_mlp
from switchssm.rnn.stacking import init_stack as init_stack
from switchssm.rnn.stacking import mlp as mlp
from switchssm.rnn.stacking import stack as stack
from switchssm.rnn.train import TrainingDivergedWarning as TrainingDivergedWarning
from switchssm.rnn.train import train_cell as train_cell
from switchssm.rnn.trained import evaluate as evaluate
from switchssm.rnn.trained import hidden_states as hidden_states
from switchssm.rnn.trained import predict as predict
from switchssm.rnn.trained import update_gates as update_gates
