"""The layer rows of ``switchssm verify``: every exact row passes, every gap is a real gap."""

import math

import pytest

from switchssm.verify.checks import Check
from switchssm.verify.layers import layer_checks


@pytest.fixture(scope="module")
def rows():
    return layer_checks(seed=0)


def test_rows_are_well_formed_and_exact_rows_pass(rows):
    assert rows and all(isinstance(c, Check) for c in rows)
    names = [c.name for c in rows]
    assert len(names) == len(set(names))
    for c in rows:
        assert c.kind in ("exact", "approximate")
        assert math.isfinite(c.error), c
        if c.kind == "exact":
            assert c.tolerance is not None and c.error <= c.tolerance, c
            assert c.passed


def test_measured_gaps(rows):
    by = {c.name: c for c in rows}
    # the steady-state layer's fitted rates match rho(Phi) and rho(Phi)^2 within 5%
    assert by["kalman/steady-state-rate"].error < 0.05
    assert by["kalman/gain-rate"].error < 0.05
    # S6 cannot carry the always-emitting model's ungated evidence: a gap far from rounding
    assert by["mamba/always-hard"].error > 1e-2
    # soft gates: the log-linear pooling gap is positive
    assert by["mamba/zoh-s6-gated-soft"].error > 1e-5
    # 4096 random features: the Monte Carlo error is small but not zero
    assert 0 < by["layers/random-features"].error < 0.1


def test_other_seeds_pass_too():
    assert all(c.passed for c in layer_checks(seed=1) if c.kind == "exact")
