"""The error metric shared by the ``"max abs error"`` rows and the notebooks."""

import numpy as np

from switchssm.verify import max_abs_error


def test_max_abs_error_against_a_loop():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 3)), rng.normal(size=3)  # broadcast over rows
    expected = max(abs(a[i, j] - b[j]) for i in range(5) for j in range(3))
    out = max_abs_error(a, b)
    assert type(out) is float
    assert out == expected
    assert max_abs_error([1, 2], (1, 2)) == 0.0
