"""Verification apart from the maths: references, sweeps, the cell-to-model table, the runner.

- :mod:`~switchssm.verify.brute_force`: enumeration of every path of the switching model, the
  reference the exact algorithms are tested against (NumPy/SciPy only);
- :mod:`~switchssm.verify.checks`: the :class:`Check` record and the small checks;
- :mod:`~switchssm.verify.table`: the cell-to-model table, measured;
- :mod:`~switchssm.verify.high_mi`, :mod:`~switchssm.verify.gaussian`: the sweeps over the cue
  strength and their checks;
- :mod:`~switchssm.verify.layers`: the sequence layers' equivalent forms and probabilistic
  readings;
- :mod:`~switchssm.verify.bilinear`: the bilinear rows (finite-state machines, input-driven
  HMMs, the switching model's identity-plus-rank-one operator, commuting kinds);
- :func:`run_all_checks`: everything ``switchssm verify`` prints.

Nothing in the maths (models, inference, cells, bridges) imports this package.
"""

from switchssm.verify.bilinear import bilinear_checks as bilinear_checks
from switchssm.verify.checks import Check as Check
from switchssm.verify.checks import exact_inference_checks as exact_inference_checks
from switchssm.verify.checks import format_table as format_table
from switchssm.verify.checks import max_abs_error as max_abs_error
from switchssm.verify.checks import naive_bayes_checks as naive_bayes_checks
from switchssm.verify.checks import tolerance as tolerance
from switchssm.verify.checks import vmp_checks as vmp_checks
from switchssm.verify.gaussian import GaussianSweep as GaussianSweep
from switchssm.verify.gaussian import default_gaussian_params as default_gaussian_params
from switchssm.verify.gaussian import gaussian_info_checks as gaussian_info_checks
from switchssm.verify.gaussian import gaussian_latent_sweep as gaussian_latent_sweep
from switchssm.verify.gaussian import gaussian_sweep_sequences as gaussian_sweep_sequences
from switchssm.verify.gaussian import gaussian_sweep_table as gaussian_sweep_table
from switchssm.verify.high_mi import MISweep as MISweep
from switchssm.verify.high_mi import check_sweep as check_sweep
from switchssm.verify.high_mi import default_mi_params as default_mi_params
from switchssm.verify.high_mi import high_mi_checks as high_mi_checks
from switchssm.verify.high_mi import mi_sweep as mi_sweep
from switchssm.verify.high_mi import mi_sweep_sequences as mi_sweep_sequences
from switchssm.verify.high_mi import sweep_table as sweep_table
from switchssm.verify.high_mi import with_separation as with_separation
from switchssm.verify.layers import layer_checks as layer_checks
from switchssm.verify.run import run_all_checks as run_all_checks
from switchssm.verify.table import cell_model_table as cell_model_table
