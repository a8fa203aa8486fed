"""Maps between generative models and the classifiers or cells that compute their posteriors.

One module per bridge family (the rows of the cell-to-model table, docs/theory.md section 5):

======================================  =====================================================
generative assumption                   cell built here
======================================  =====================================================
naive Bayes                             :mod:`~switchssm.bridges.naive_bayes`: softmax /
                                        logistic regression, both directions
gated emission                          :func:`mingru_from_model`, positive states, exact
same, log-linear pooling                :func:`mingru_from_model` run in logit space,
                                        exact iff the gates are hard (``g_t in {0, 1}``)
always emitting, hard gates             :func:`selective_from_model`, exact
no switch (``rho = 0``), always         :func:`cumulative_evidence`, :func:`evidence_attention`
D independent binary chains             :func:`factorial_mingru_from_models`, per-unit gates
Gaussian latent                         :func:`mingru_from_gaussian_latent` (information form)
linear-Gaussian SSM                     :func:`kalman_recurrence`, :func:`steady_state_layer`
count model (one-hot keys)              :func:`count_attention` (linear attention)
always emitting, hard gates (Mamba)     :func:`s6_from_model` (S6 keep gate = switch)
======================================  =====================================================

:func:`model_from_mingru` reads a minGRU back as a switching model; cells read the inputs
:func:`model_inputs` lays out. The measurements of these maps (sweeps, the table, the checks
of ``switchssm verify``) live in :mod:`switchssm.verify`.
"""

from switchssm.bridges._inputs import InputLayout as InputLayout
from switchssm.bridges._inputs import input_layout as input_layout
from switchssm.bridges._inputs import model_inputs as model_inputs
from switchssm.bridges.attention import AttentionBridge as AttentionBridge
from switchssm.bridges.attention import attention_from_model as attention_from_model
from switchssm.bridges.attention import attention_posterior as attention_posterior
from switchssm.bridges.attention import count_attention as count_attention
from switchssm.bridges.attention import count_attention_inputs as count_attention_inputs
from switchssm.bridges.attention import evidence_attention_inputs as evidence_attention_inputs
from switchssm.bridges.bilinear import bilinear_from_fsm as bilinear_from_fsm
from switchssm.bridges.bilinear import bilinear_from_iohmm as bilinear_from_iohmm
from switchssm.bridges.bilinear import bilinear_from_switching as bilinear_from_switching
from switchssm.bridges.bilinear import check_fsm as check_fsm
from switchssm.bridges.bilinear import iohmm_filter as iohmm_filter
from switchssm.bridges.bilinear import iohmm_inputs as iohmm_inputs
from switchssm.bridges.bilinear import switching_operators as switching_operators
from switchssm.bridges.evidence import cumulative_evidence as cumulative_evidence
from switchssm.bridges.evidence import evidence_attention as evidence_attention
from switchssm.bridges.evidence import linear_attention_memory as linear_attention_memory
from switchssm.bridges.evidence import sufficient_statistics as sufficient_statistics
from switchssm.bridges.factorial import FactorialBridge as FactorialBridge
from switchssm.bridges.factorial import factorial_mingru_from_models as factorial_mingru_from_models
from switchssm.bridges.factorial import factorial_model_inputs as factorial_model_inputs
from switchssm.bridges.factorial import factorial_posterior as factorial_posterior
from switchssm.bridges.gaussian_info import InformationBelief as InformationBelief
from switchssm.bridges.gaussian_info import information_form_inputs as information_form_inputs
from switchssm.bridges.gaussian_info import information_form_mingru as information_form_mingru
from switchssm.bridges.gaussian_info import information_form_selective as information_form_selective
from switchssm.bridges.gaussian_info import (
    mingru_from_gaussian_latent as mingru_from_gaussian_latent,
)
from switchssm.bridges.high_mi import binary_entropy as binary_entropy
from switchssm.bridges.high_mi import cue_mutual_information as cue_mutual_information
from switchssm.bridges.high_mi import logit_mingru_belief as logit_mingru_belief
from switchssm.bridges.high_mi import selective_belief as selective_belief
from switchssm.bridges.kalman import KalmanRecurrence as KalmanRecurrence
from switchssm.bridges.kalman import LGSSMParams as LGSSMParams
from switchssm.bridges.kalman import SteadyState as SteadyState
from switchssm.bridges.kalman import convergence_rates as convergence_rates
from switchssm.bridges.kalman import kalman_filter_means as kalman_filter_means
from switchssm.bridges.kalman import kalman_recurrence as kalman_recurrence
from switchssm.bridges.kalman import steady_state as steady_state
from switchssm.bridges.kalman import steady_state_layer as steady_state_layer
from switchssm.bridges.mamba import S6Bridge as S6Bridge
from switchssm.bridges.mamba import keep_gate as keep_gate
from switchssm.bridges.mamba import s6_from_model as s6_from_model
from switchssm.bridges.mamba import s6_posterior as s6_posterior
from switchssm.bridges.mingru import AlwaysEmittingWarning as AlwaysEmittingWarning
from switchssm.bridges.mingru import MinGRUBridge as MinGRUBridge
from switchssm.bridges.mingru import mingru_from_model as mingru_from_model
from switchssm.bridges.mingru import mingru_posterior as mingru_posterior
from switchssm.bridges.mingru import model_from_mingru as model_from_mingru
from switchssm.bridges.naive_bayes import CategoricalNaiveBayes as CategoricalNaiveBayes
from switchssm.bridges.naive_bayes import GaussianNaiveBayes as GaussianNaiveBayes
from switchssm.bridges.naive_bayes import LogisticRegression as LogisticRegression
from switchssm.bridges.naive_bayes import QuadraticLogits as QuadraticLogits
from switchssm.bridges.naive_bayes import SoftmaxRegression as SoftmaxRegression
from switchssm.bridges.naive_bayes import categorical_nb_to_softmax as categorical_nb_to_softmax
from switchssm.bridges.naive_bayes import fit_gaussian_nb as fit_gaussian_nb
from switchssm.bridges.naive_bayes import gaussian_nb_to_logistic as gaussian_nb_to_logistic
from switchssm.bridges.naive_bayes import gaussian_nb_to_softmax as gaussian_nb_to_softmax
from switchssm.bridges.naive_bayes import (
    gaussian_nb_unequal_to_quadratic as gaussian_nb_unequal_to_quadratic,
)
from switchssm.bridges.naive_bayes import softmax_to_categorical_nb as softmax_to_categorical_nb
from switchssm.bridges.naive_bayes import softmax_to_gaussian_nb as softmax_to_gaussian_nb
from switchssm.bridges.selective import SelectiveBridge as SelectiveBridge
from switchssm.bridges.selective import selective_from_model as selective_from_model
from switchssm.bridges.selective import selective_posterior as selective_posterior
