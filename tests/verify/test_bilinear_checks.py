"""The bilinear rows of ``switchssm verify``: every row passes, and the order-invariance
check is not vacuous (a full bilinear cell fails it)."""

import jax
import numpy as np

from switchssm.rnn import bilinear
from switchssm.rnn import init_bilinear
from switchssm.verify import bilinear_checks


def test_rows_pass_for_several_seeds():
    for seed in (0, 1):
        rows = bilinear_checks(seed)
        assert [c.name for c in rows] == [
            "fsm/bilinear-one-hot",
            "iohmm/bilinear-normalized",
            "switching/bilinear-identity-plus-rank-one",
            "commuting/order-invariant-state",
        ]
        assert all(c.kind == "exact" and c.passed for c in rows), rows


def test_order_invariance_fails_for_non_commuting_operators():
    rng = np.random.default_rng(0)
    p = init_bilinear(jax.random.PRNGKey(0), 6, 8)
    word = jax.nn.one_hot(rng.integers(0, 6, size=12), 6)
    shuffled = word[rng.permutation(12)]
    assert np.abs(bilinear(p, word)[-1] - bilinear(p, shuffled)[-1]).max() > 1e-2


def test_run_all_checks_includes_the_bilinear_rows(monkeypatch):
    import switchssm.verify.run as run

    for name in ("exact_inference_checks", "naive_bayes_checks", "vmp_checks", "layer_checks"):
        monkeypatch.setattr(run, name, lambda seed: [])
    for name in ("cell_model_table", "high_mi_checks", "gaussian_info_checks"):
        monkeypatch.setattr(run, name, lambda: [])
    names = [c.name for c in run.run_all_checks()]
    assert names == [c.name for c in bilinear_checks()]
