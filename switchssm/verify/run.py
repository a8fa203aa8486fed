"""Run every check the toolkit ships (``switchssm verify``)."""

from __future__ import annotations

from switchssm.verify.bilinear import bilinear_checks
from switchssm.verify.checks import Check
from switchssm.verify.checks import exact_inference_checks
from switchssm.verify.checks import naive_bayes_checks
from switchssm.verify.checks import vmp_checks
from switchssm.verify.gaussian import gaussian_info_checks
from switchssm.verify.high_mi import high_mi_checks
from switchssm.verify.layers import layer_checks
from switchssm.verify.table import cell_model_table

__all__ = [
    "run_all_checks",
]


def run_all_checks(seed: int = 0) -> list[Check]:
    """Every check the toolkit ships, in a stable order (seconds on a laptop CPU).

    Args:
        seed: the integer seed of the random problems the checks draw.

    Returns:
        :class:`~switchssm.verify.Check` rows: exact inference vs enumeration, naive Bayes,
        the cell-to-model table, the high-MI limit, the Gaussian latent, VMP, the sequence
        layers, the bilinear rows.
    """
    rows = []
    rows += exact_inference_checks(seed)
    rows += naive_bayes_checks(seed)
    rows += cell_model_table()
    rows += high_mi_checks()
    rows += gaussian_info_checks()
    rows += vmp_checks(seed)
    rows += layer_checks(seed)
    rows += bilinear_checks(seed)
    return rows
