"""Array type aliases shared across switchssm.

Shapes are named with :mod:`jaxtyping` so that signatures document themselves:
``T`` time steps, ``K`` latent states, ``V`` categorical symbols, ``D`` emission
dimension, ``Du`` cue dimension, ``H`` hidden units, ``B`` batch.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jaxtyping import Array
from jaxtyping import Bool
from jaxtyping import Float
from jaxtyping import Int
from jaxtyping import PRNGKeyArray

ArrayLike = jax.Array | np.ndarray | float | int
PyTree = Any

__all__ = ["Array", "ArrayLike", "Bool", "Float", "Int", "PRNGKeyArray", "PyTree"]
