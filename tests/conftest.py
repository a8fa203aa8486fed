"""Shared test configuration: float64 everywhere, a PRNG key fixture."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
# Most of the suite's time is XLA compiling small programs, not running them. LLVM's
# optimization level changes how fast the generated code runs, not what it computes (XLA
# does not enable fast-math on CPU), and level 0 compiles about a third faster. Set before
# JAX starts, so the subprocesses the tests start (CLI, notebooks, benchmarks) inherit it.
# Benchmarks and users keep XLA's default.
if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"
    ).strip()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def key():
    return jax.random.PRNGKey(0)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _memory_mappings() -> int:
    try:
        with open(f"/proc/{os.getpid()}/maps") as f:
            return sum(1 for _ in f)
    except OSError:  # not Linux
        return 0


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled programs when a test process holds too many.

    Every compiled XLA:CPU program keeps about three memory mappings; a test process that
    compiles ~20,000 programs reaches Linux's default limit of 65,530 mappings
    (``vm.max_map_count``) and the next compilation dies with a segmentation fault (seen in
    CI, and reproduced: 65,199 mappings just before the crash). After each module, past
    30,000 mappings the caches are cleared (clearing after every module would cost the
    suite minutes of recompilation).
    """
    yield
    if _memory_mappings() > 30_000:
        jax.clear_caches()
