"""Helpers shared by the benchmark scripts; not a benchmark itself.

``bench_exact.py``, ``bench_fit.py`` and ``bench_mingru.py`` import this module as
``_common`` (run as ``python benchmarks/bench_<name>.py``, the scripts' folder is on
``sys.path``). It holds:

* **set-up** -- importing it ignores ``DeprecationWarning`` (before jax is imported, as every
  benchmark does), imports jax and puts the repository root on ``sys.path``; each script
  then calls :func:`setup_jax` with its own settings (``jax_enable_x64`` and quiet peers for
  the float64 ones, neither for the float32 ``bench_mingru``) before importing ``switchssm``
  or creating any array.
* **timing** -- :func:`timed` (one call, ended by ``jax.block_until_ready``) and
  :func:`run_timings` (interleaved round-robin medians, as in ``bench_exact`` and
  ``bench_fit``).
* **machine info** -- :func:`host_info`, :func:`package_versions`, :func:`jax_backend_info`
  and their combination :func:`machine_info` (``bench_exact`` and ``bench_fit``).
* **output** -- :func:`make_parser` (``--quick``, ``--out``), :func:`prepare_output` and
  :func:`write_results` (``<stem>.json`` + ``<stem>.md``).
* **the switching-model problem of bench_exact and bench_fit** -- constants, :func:`make_params`,
  :func:`sample_numpy` and :func:`hmm_chain` (the equivalent 2K-state HMM's initial
  distribution and transition matrix), numpy only: independent of the code under test.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

warnings.filterwarnings("ignore", category=DeprecationWarning)

import jax  # noqa: E402
import numpy as np  # noqa: E402

if TYPE_CHECKING:
    from switchssm.models import SwitchingParams

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def setup_jax(*, x64: bool, quiet_peers: bool) -> None:
    """Process-wide settings of the float64 benchmarks, before ``switchssm`` is imported.

    ``quiet_peers`` ignores ``FutureWarning`` and TensorFlow Probability's ``UserWarning``
    (raised when the peers are imported); ``x64`` turns on ``jax_enable_x64``.
    """
    if quiet_peers:
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module="tensorflow_probability")
    if x64:
        jax.config.update("jax_enable_x64", True)


# --------------------------------------------------------------------------------------
# Timing


def timed(fn, *args):
    """(wall seconds, output) of one call ``fn(*args)``, ended by ``jax.block_until_ready``."""
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return time.perf_counter() - t0, out


def _sample(fn, min_s: float):
    """Mean time per call over back-to-back calls lasting at least ``min_s`` (one call if it
    takes longer), and the total time."""
    n, total = 0, 0.0
    while total < min_s or n == 0:
        dt, _ = timed(fn)
        total += dt
        n += 1
    return total / n, total


def run_timings(
    impls: dict,
    repeats: int,
    long_call_s: float,
    min_sample_s: float = 0.02,
    warmup_below_s: float = 2.0,
):
    """Steady-state medians, round-robin over implementations (first calls already done).

    impls: name -> (fn, first_call_s). Implementations slower than ``long_call_s`` per call
    get 3 repeats instead of ``repeats``.

    Each sample is the mean over back-to-back calls lasting at least ``min_sample_s`` (one
    call for anything slower), so that a sub-millisecond call is not charged the wake-up of
    an idle thread pool. After a sample that took more than 0.5 s the machine is left to
    settle for 10% of its time (at most 2 s), and for 2 s before the first sample: a call
    that ran for seconds keeps the process busy for a while after it returns (measured: a
    20 ms switchssm call took 420 ms when it started right after an 18 s NumPyro call,
    350 ms after a 0.05 s pause, 15-30 ms after 0.5 s or more), which would otherwise be
    charged to whatever runs next. Implementations whose first call (compilation included)
    took less than ``warmup_below_s`` get one untimed sample first: in the committed fit
    benchmark the first two samples of sub-millisecond calls were 1.4-2.3x the others.
    """
    times = {n: [] for n in impls}
    time.sleep(2.0)
    for _n, (fn, first) in impls.items():  # one untimed round (first samples ran 1.5x slow)
        if first < warmup_below_s:
            _sample(fn, min_sample_s)
    for r in range(repeats):
        for n, (fn, _first) in impls.items():
            if r >= 3 and times[n] and statistics.median(times[n]) > long_call_s:
                continue
            per_call, total = _sample(fn, min_sample_s)
            times[n].append(per_call)
            if total > 0.5:
                time.sleep(min(2.0, 0.1 * total))
    out = {}
    for n, (_fn, first) in impls.items():
        med = statistics.median(times[n])
        out[n] = dict(
            median_s=med,
            times_s=times[n],
            first_call_s=first,
            compile_s=max(first - med, 0.0),
        )
    return out


# --------------------------------------------------------------------------------------
# Machine info

PEER_PACKAGES = ("numpy", "scipy", "dynamax", "hmmlearn", "numpyro", "funsor")


def host_info() -> dict:
    """Date, Python, platform, CPU, memory and the load average now."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        affinity = os.cpu_count()
    return dict(
        date_utc=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        python=platform.python_version(),
        platform=platform.platform(),
        cpu_model=cpu,
        cpu_count=os.cpu_count(),
        cpu_affinity=affinity,
        mem_total_gb=round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        loadavg_start=os.getloadavg(),
    )


def _pkg_version(name):
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:  # pragma: no cover
        return None


def package_versions(*names: str) -> dict:
    """name -> version, importing each package (jaxlib's from ``jax.lib`` or its metadata)."""
    out = {}
    for name in names:
        if name == "jaxlib":
            out[name] = getattr(jax.lib, "__version__", None) or _pkg_version("jaxlib")
        else:
            out[name] = importlib.import_module(name).__version__
    return out


def jax_backend_info(dtype: str) -> dict:
    """Backend, devices, whether x64 is on, and the dtype the benchmark computes in."""
    return dict(
        backend=jax.default_backend(),
        devices=[str(d) for d in jax.devices()],
        x64=bool(jax.config.jax_enable_x64),
        dtype=dtype,
    )


def machine_info(dtype: str = "float64", packages=PEER_PACKAGES) -> dict:
    """Host, jax versions and backend, then the versions of ``packages`` (imported first)."""
    versions = package_versions(*packages)
    return dict(
        **host_info(), **package_versions("jax", "jaxlib"), **jax_backend_info(dtype), **versions
    )


# --------------------------------------------------------------------------------------
# Command line and output


def make_parser(doc: str, quick_help: str) -> argparse.ArgumentParser:
    """Parser described by the docstring's first paragraph, with ``--quick`` and ``--out``."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help=quick_help)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"), help="output folder")
    return ap


def prepare_output(args, name: str) -> tuple[Path, str]:
    """The output folder (created if missing) and the file stem, ``name`` or ``name_quick``."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return out, f"{name}_quick" if args.quick else name


def write_results(
    out: Path,
    stem: str,
    result: dict,
    write_markdown: Callable[[Path, dict], None],
    *,
    indent: int = 1,
    final_newline: bool = False,
) -> tuple[Path, Path]:
    """Write ``<stem>.json`` (non-JSON numbers as floats) and ``<stem>.md``; their paths."""
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    text = json.dumps(result, indent=indent, default=float)
    json_path.write_text((text + "\n") if final_newline else text)
    write_markdown(md_path, result)
    return json_path, md_path


# --------------------------------------------------------------------------------------
# The switching-model problem of bench_exact and bench_fit (numpy only: independent of the
# code under test)

RHO = 0.02
CUE_MEANS = np.array([-0.5, 1.0])
CUE_SCALE = 0.8
NUM_SYMBOLS = 8
GAUSS_DIM = 2


def make_params(K: int, emission: str, seed: int = 0) -> SwitchingParams:
    from switchssm.models import CategoricalEmission
    from switchssm.models import GaussianCue
    from switchssm.models import GaussianEmission
    from switchssm.models import SwitchingParams

    rng = np.random.default_rng(seed + 1000 * K)
    pi = rng.dirichlet(np.full(K, 2.0))
    if emission == "categorical":
        em = CategoricalEmission(rng.dirichlet(np.ones(NUM_SYMBOLS), size=K))
    else:
        A = rng.normal(size=(GAUSS_DIM, GAUSS_DIM))
        em = GaussianEmission(
            rng.normal(size=(K, GAUSS_DIM)) * 1.5, A @ A.T + 0.5 * np.eye(GAUSS_DIM)
        )
    return SwitchingParams(pi, RHO, em, GaussianCue(CUE_MEANS, CUE_SCALE), gated=False)


def sample_numpy(params: SwitchingParams, T: int, seed: int):
    """Draw (y, u) from the always-emitting model with numpy (vectorized, fast at 10^6)."""
    from switchssm.models import CategoricalEmission

    rng = np.random.default_rng(seed)
    pi = np.asarray(params.initial_probs)
    K = len(pi)
    z = rng.random(T) < RHO
    fresh = rng.choice(K, size=T, p=pi)
    s0 = rng.choice(K, p=pi)
    last = np.maximum.accumulate(np.where(z, np.arange(T), -1))
    s = np.where(last >= 0, fresh[np.maximum(last, 0)], s0)
    em = params.emission
    if isinstance(em, CategoricalEmission):
        cum = np.cumsum(np.asarray(em.probs), axis=1)
        y = (rng.random(T)[:, None] > cum[s]).sum(1).clip(0, NUM_SYMBOLS - 1).astype(np.int32)
    else:
        L = np.linalg.cholesky(np.asarray(em.cov))
        y = np.asarray(em.means)[s] + rng.normal(size=(T, GAUSS_DIM)) @ L.T
    u = CUE_MEANS[z.astype(int)] + CUE_SCALE * rng.normal(size=T)
    return y, u


def hmm_chain(params: SwitchingParams):
    """Initial distribution and transition matrix of the dense 2K-state HMM over (z_t, s_t).

    State index ``z * K + s``.
    """
    pi = np.asarray(params.initial_probs)
    K = len(pi)
    rho = float(params.switch_prob)
    init = np.concatenate([(1 - rho) * pi, rho * pi])
    trans = np.zeros((2 * K, 2 * K))
    trans[:, K:] = rho * pi
    trans[np.arange(2 * K), np.arange(2 * K) % K] += 1 - rho
    return init, trans
