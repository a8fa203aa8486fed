"""Data sets shipped with switchssm, synthetic samplers and readers for user files.

- Real data: :func:`load_nile` (Nile flow at Aswan 1871-1970, a Gaussian-latent
  changepoint series) and :func:`load_chloroplast` (the *Arabidopsis thaliana* chloroplast
  genome, a categorical sequence over ``A, C, G, T`` with composition changes between
  regions). Provenance and licences: ``switchssm/data/README.md``.
- Synthetic data: :func:`example_switching_params` and :func:`sample_dataset`.
- State-tracking tasks (finite-state machines: parity, modular addition and arithmetic,
  random permutation automata, the S3 and S5 word problems): :func:`state_tracking_task`,
  :func:`sample_state_tracking`.
- User files: :func:`read_sequences` / :func:`read_dataset` (``.csv`` and ``.npy``).
"""

from switchssm.data.datasets import CHLOROPLAST_ALPHABET
from switchssm.data.datasets import CHLOROPLAST_REGION_LENGTHS
from switchssm.data.datasets import CHLOROPLAST_REGION_NAMES
from switchssm.data.datasets import ChloroplastData
from switchssm.data.datasets import NileData
from switchssm.data.datasets import Standardized
from switchssm.data.datasets import load_chloroplast
from switchssm.data.datasets import load_nile
from switchssm.data.datasets import load_nile_standardized
from switchssm.data.datasets import standardize
from switchssm.data.readers import SequenceData
from switchssm.data.readers import read_dataset
from switchssm.data.readers import read_sequences
from switchssm.data.state_tracking import STATE_TRACKING_TASKS
from switchssm.data.state_tracking import StateTrackingData
from switchssm.data.state_tracking import StateTrackingTask
from switchssm.data.state_tracking import chance_accuracy
from switchssm.data.state_tracking import run_fsm
from switchssm.data.state_tracking import sample_state_tracking
from switchssm.data.state_tracking import state_tracking_task
from switchssm.data.synthetic import KINDS
from switchssm.data.synthetic import example_switching_params
from switchssm.data.synthetic import sample_dataset

__all__ = [
    "CHLOROPLAST_ALPHABET",
    "CHLOROPLAST_REGION_LENGTHS",
    "CHLOROPLAST_REGION_NAMES",
    "KINDS",
    "STATE_TRACKING_TASKS",
    "ChloroplastData",
    "NileData",
    "SequenceData",
    "StateTrackingData",
    "StateTrackingTask",
    "Standardized",
    "chance_accuracy",
    "example_switching_params",
    "load_chloroplast",
    "load_nile",
    "load_nile_standardized",
    "read_dataset",
    "read_sequences",
    "run_fsm",
    "sample_dataset",
    "sample_state_tracking",
    "standardize",
    "state_tracking_task",
]
