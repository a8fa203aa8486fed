"""The cell-to-model table (docs/theory.md section 5): every row present, every exact row holds.

The rows compute both sides themselves (cell built from the model vs the exact filter);
the identities behind each row are tested independently in test_mingru_bridge.py. Here:
the table's exact rows must meet their 1e-9 tolerance and the approximate rows must report
a finite, strictly positive gap (soft gates are not hard gates).
"""

import jax
import numpy as np
import pytest

from switchssm.verify import Check
from switchssm.verify import cell_model_table

EXPECTED = {
    "gated-categorical/minGRU-positive": "exact",
    "gated-gaussian/minGRU-positive": "exact",
    "gated-hard/minGRU-logit": "exact",
    "gated-soft/minGRU-logit": "approximate",
    "always-hard/selective-SSM": "exact",
    "always-soft/selective-SSM": "approximate",
    "always-soft/minGRU-gated-construction": "approximate",
    "no-switch/cumulative-evidence": "exact",
    "no-switch/linear-attention": "exact",
    "factorial/minGRU-positive-per-unit": "exact",
    "factorial-hard/minGRU-logit-per-unit": "exact",
}


@pytest.fixture(scope="module")
def rows():
    return cell_model_table(num_timesteps=24, seeds=(0, 1))


def test_every_row_present_and_exact_rows_hold(rows):
    assert all(isinstance(r, Check) for r in rows)
    assert {r.name: r.kind for r in rows} == EXPECTED
    for r in rows:
        assert np.isfinite(r.error), r
        if r.kind == "exact":
            assert r.tolerance == 1e-9 and r.metric == "max abs error"
            assert r.passed and r.error <= 1e-9, r
        else:
            assert r.tolerance is None and r.metric == "mean KL (nats)"
            assert r.error > 1e-6, r  # soft gates: a real gap, far above rounding
        assert r.as_dict()["passed"] is True


def test_key_changes_the_data_not_the_verdicts(rows):
    other = cell_model_table(jax.random.PRNGKey(3), num_timesteps=24, seeds=(0, 1))
    assert all(r.passed for r in other)
    gaps = {r.name: r.error for r in rows if r.kind == "approximate"}
    gaps_other = {r.name: r.error for r in other if r.kind == "approximate"}
    assert all(gaps[n] != gaps_other[n] for n in gaps)


def test_arguments_are_validated():
    with pytest.raises(ValueError, match="num_timesteps"):
        cell_model_table(num_timesteps=0)
    with pytest.raises(ValueError, match="seeds"):
        cell_model_table(seeds=())
