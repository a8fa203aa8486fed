"""The sequence container: every layout gives the same padded batch, validated at real steps."""

import numpy as np
import pytest

from switchssm.sequences import Sequences
from switchssm.sequences import as_sequences
from switchssm.sequences import pad


def test_layouts_agree():
    seqs = [np.array([0, 1, 2]), np.array([3])]
    data = as_sequences(seqs, kind="integer")
    assert isinstance(data, Sequences)
    np.testing.assert_array_equal(data.values, [[0, 1, 2], [3, 0, 0]])
    np.testing.assert_array_equal(data.mask, [[1, 1, 1], [1, 0, 0]])
    assert data.cue is None and data.num_timesteps == 4 and data.num_sequences == 2
    assert data.values.dtype == np.int32 and data.max_length == 3
    # padded input (garbage past the lengths, even out of range) is trimmed to the longest
    padded = as_sequences(np.array([[0, 1, 2, -9], [3, 9, 9, 9]]), lengths=[3, 1],
                          kind="integer", num_symbols=4)  # fmt: skip
    for a, b in zip(padded, data, strict=True):
        np.testing.assert_array_equal(a, b) if a is not None else None
    # one sequence is a batch of one
    one = as_sequences(np.array([0, 1, 2]), kind="integer")
    np.testing.assert_array_equal(one.values, [[0, 1, 2]])
    # unpad inverts pad, on any per-step array aligned with the batch
    back = data.unpad(data.values)
    assert [b.tolist() for b in back] == [[0, 1, 2], [3]]
    np.testing.assert_array_equal(pad(back), data.values)


def test_vector_steps_and_cue():
    rng = np.random.default_rng(0)
    ys = [rng.normal(size=(L, 2)) for L in (4, 2)]
    us = [rng.normal(size=L) for L in (4, 2)]
    data = as_sequences(ys, us, step_ndim=1)
    assert data.values.shape == (2, 4, 2) and data.cue.shape == (2, 4)
    np.testing.assert_array_equal(data.values[1, 2:], 0.0)
    np.testing.assert_array_equal(data.cue[1, 2:], 0.0)
    np.testing.assert_array_equal(data.split()[1][1], us[1])
    # NaN past a sequence's end is not data
    y_pad = np.full((2, 5, 2), np.nan)
    y_pad[0, :4], y_pad[1, :2] = ys
    again = as_sequences(y_pad, lengths=[4, 2], step_ndim=1)
    np.testing.assert_array_equal(again.values, data.values)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: as_sequences([]), "empty list"),
        (lambda: as_sequences([np.zeros(3), np.zeros(0)]), r"`y\[1\]` is empty"),
        (lambda: as_sequences([np.zeros(3)], lengths=[2]), "disagree"),
        (lambda: as_sequences(np.zeros((2, 3)), lengths=[3, 4]), "lengths"),
        (lambda: as_sequences(np.zeros((2, 3)), lengths=[3, 0]), "lengths"),
        (lambda: as_sequences(np.zeros((2, 3)), lengths=[3.5, 1]), "lengths"),
        (lambda: as_sequences(np.zeros((2, 3, 4))), "`y` must be"),
        (
            lambda: as_sequences([np.array([0, 5])], kind="integer", num_symbols=4),
            r"num_symbols = 4",
        ),  # fmt: skip
        (lambda: as_sequences([np.array([0.5])], kind="integer"), "integer"),
        (lambda: as_sequences([np.array([np.inf])]), r"`y\[0\]` contains 1 NaN"),
        (lambda: as_sequences(np.array(["a", "b"])), "real numbers"),
        (lambda: as_sequences([np.zeros(3)], np.zeros(3)), "list exactly when"),
        (lambda: as_sequences([np.zeros(3)], [np.zeros(2)]), r"`u\[0\]`"),
        (lambda: as_sequences(np.zeros(3), kind="text"), "kind"),
        (lambda: as_sequences(np.zeros((4, 2)), step_ndim=1, allow_single=False), "list of"),
        (lambda: pad([np.zeros((2, 3)), np.zeros((2, 4))]), r"arrays\[1\]"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
