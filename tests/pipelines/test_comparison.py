"""compare_fit on the inputs users give it: one sequence, a fit with one state."""

import jax
import numpy as np
import pytest

from switchssm.data import sample_dataset
from switchssm.pipelines import Observations
from switchssm.pipelines import compare_fit
from switchssm.pipelines import demo_params
from switchssm.pipelines.comparison import training_windows


def test_training_windows_cover_every_step_once():
    spans = training_windows([7, 1, 5], 3)
    covered = {(i, t) for i, a, b in spans for t in range(a, b)}
    # every step of every sequence but the lone 1-step one (a window needs 2 steps)
    assert covered == {(0, t) for t in range(6)} | {(2, t) for t in range(5)}
    assert all(b - a >= 2 for _, a, b in spans)
    # one short sequence: the window is halved until there is something to hold out
    assert len(training_windows([120], 200)) >= 2
    with pytest.raises(ValueError, match="at least 4"):
        training_windows([3], 200)


def test_single_sequence_and_one_state_fits():
    true = demo_params()
    ((y, u, _s, _z),) = sample_dataset(jax.random.PRNGKey(0), true, [120])
    obs = Observations("one.csv", [np.asarray(y)], [np.asarray(u)], ["0"], None)
    res = compare_fit(obs, true, train_steps=3, window=200, progress=False)
    assert res.numbers["training_windows"] >= 2 and len(res.numbers["heldout_windows"]) >= 1
    assert res.numbers["num_sequences"] == 1
    one_state = true.replace(
        initial_probs=np.ones(1), emission=type(true.emission)(true.emission.probs[:1])
    )
    with pytest.raises(ValueError, match="K = 1"):
        compare_fit(obs, one_state, train_steps=3, progress=False)
