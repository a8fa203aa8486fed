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
* **layer timing** -- :class:`Section` (compile, check against :func:`reference`, time
  with an elementwise floor, as in ``bench_layers`` and ``bench_bilinear``).
* **machine info** -- :func:`host_info`, :func:`package_versions`, :func:`jax_backend_info`
  and their combination :func:`machine_info` (``bench_exact`` and ``bench_fit``);
  :func:`sources_sha256` (the code under test) and :func:`proc_field` (``/proc`` files).
* **output** -- :func:`make_parser` (``--quick``, ``--out``), :func:`announce` (the first line
  printed), :func:`prepare_output`, :func:`write_results` (``<stem>.json`` + ``<stem>.md``),
  :func:`machine_text` (the machine line of a report), :func:`close_markdown` (observations
  and notes at the end of a report) and :func:`report` (write, print, exit status).
* **the switching-model problem of bench_exact and bench_fit** -- constants, :func:`make_params`,
  :func:`sample_numpy` and :func:`hmm_chain` (the equivalent 2K-state HMM's initial
  distribution and transition matrix), numpy only: independent of the code under test.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import importlib
import json
import os
import platform
import resource
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

warnings.filterwarnings("ignore", category=DeprecationWarning)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
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


def run_timings(impls: dict, repeats: int, long_call_s: float, min_sample_s: float = 0.02,
                warmup_below_s: float = 2.0, settle: bool = True):  # fmt: skip
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
    charged to whatever runs next (``settle=False`` skips these pauses: quick smoke runs,
    whose timings are not read). Implementations whose first call (compilation included)
    took less than ``warmup_below_s`` get one untimed sample first: in the committed fit
    benchmark the first two samples of sub-millisecond calls were 1.4-2.3x the others.
    """
    times = {n: [] for n in impls}
    pause = time.sleep if settle else (lambda s: None)  # settle=False: --quick smoke runs
    pause(2.0)
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
                pause(min(2.0, 0.1 * total))
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


def proc_field(path: str, key: str) -> str | None:
    """The value after ``key:`` on the first line of ``path`` (a ``/proc`` file such as
    ``/proc/cpuinfo``) that starts with ``key``; ``None`` if there is none or it cannot be read."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return None
    return next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith(key)), None)


def host_info() -> dict:
    """Date, Python, platform, CPU, memory and the load average now."""
    cpu = proc_field("/proc/cpuinfo", "model name")
    if cpu is None:
        cpu = platform.processor()
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


def sources_sha256() -> str:
    """First 16 hex digits of a SHA-256 over every ``switchssm/**/*.py`` (path and bytes)."""
    h = hashlib.sha256()
    for f in sorted((REPO / "switchssm").rglob("*.py")):
        h.update(f.relative_to(REPO).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


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
# Measurement helpers of the layer benchmarks (bench_layers, bench_bilinear)


def compile_fn(f, *args):
    t0 = time.perf_counter()
    compiled = jax.jit(f).lower(*args).compile()
    return compiled, time.perf_counter() - t0


def round_robin(entries: dict, repeats: int, budget_s: float) -> dict:
    """Median of interleaved calls per entry (name -> (fn, args)); one warm-up call each.

    Each entry also gets ``minflt_per_call``: the median number of minor page faults of its
    calls (``getrusage``), the cost of fresh pages that the allocator maps for the call's
    buffers. On these machines a page fault costs microseconds, so a program whose buffers
    are unmapped and mapped again on every call pays for them in every timing.
    """
    warm = {n: timed(fn, *a)[0] for n, (fn, a) in entries.items()}
    rounds = repeats
    if sum(warm.values()) * repeats > budget_s:
        rounds = max(5, int(budget_s // max(sum(warm.values()), 1e-9)))
    times = {n: [] for n in entries}
    faults = {n: [] for n in entries}
    for _ in range(rounds):
        for n, (fn, a) in entries.items():
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            times[n].append(timed(fn, *a)[0])
            faults[n].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return {
        n: dict(
            median_s=statistics.median(t),
            times_s=t,
            minflt_per_call=statistics.median(faults[n]),
        )
        for n, t in times.items()
    }


def rel(x, ref) -> float:
    x, ref = np.asarray(x, np.float64), np.asarray(ref, np.float64)
    if not np.all(np.isfinite(x)):
        return float("inf")
    return float(np.max(np.abs(x - ref)) / max(np.max(np.abs(ref)), 1e-30))


def tree_rel(a, b) -> float:
    return max(
        rel(u, v)
        for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True)
    )


def to64(tree):
    return jax.tree_util.tree_map(lambda w: jnp.asarray(np.asarray(w, np.float64)), tree)


def grad_of(f):
    return jax.grad(lambda p, x: jnp.sum(f(p, x)))


class Section:
    """Compile forward and gradient of each form, check them against a float64 reference
    (relative errors ``out_rtol``, ``grad_rtol``), time them interleaved with an elementwise
    floor ``a*b + c`` over arrays of the state's size (``bench_layers``, ``bench_bilinear``).
    ``args`` holds ``repeats`` and ``size_budget_s``."""

    def __init__(self, tag, args, *, dtype=None, out_rtol=1e-4, grad_rtol=1e-3):
        self.tag, self.args = tag, args
        self.dtype = jnp.float32 if dtype is None else dtype
        self.out_rtol, self.grad_rtol = out_rtol, grad_rtol
        self.entries, self.compile_s, self.checks, self.floor_of = {}, {}, {}, {}

    def floor(self, state_size, n):
        """The floor over ``(n, state_size)`` arrays (one per size, made once)."""
        name = f"floor {state_size}"
        if name not in self.entries:
            rng = np.random.default_rng(0)
            a, b, c = (
                jnp.asarray(rng.standard_normal((n, state_size)), self.dtype) for _ in range(3)
            )
            fn, cs = compile_fn(lambda a, b, c: a * b + c, a, b, c)
            self.entries[name], self.compile_s[name] = (fn, (a, b, c)), cs
        return name

    def add(self, name, f, params, x, ref=None, with_grad=True, *, state):
        """Compile (and check) ``f(params, x)``; its floor is ``(n, state)`` (``state`` reals)."""
        self.floor_of[name] = self.floor_of[name + " | grad"] = self.floor(state, x.shape[0])
        fn, cs = compile_fn(f, params, x)
        self.entries[name], self.compile_s[name] = (fn, (params, x)), cs
        out = fn(params, x)
        check = {}
        if with_grad:
            g = grad_of(f)
            gfn, gcs = compile_fn(g, params, x)
            self.entries[name + " | grad"], self.compile_s[name + " | grad"] = (
                (gfn, (params, x)),
                gcs,
            )
        if ref is not None:
            h64, g64 = ref
            check["out_rel_err"] = rel(out, h64)
            ok = check["out_rel_err"] <= self.out_rtol
            if with_grad and g64 is not None:
                check["grad_rel_err"] = tree_rel(gfn(params, x), g64)
                ok = ok and check["grad_rel_err"] <= self.grad_rtol
            check["ok"] = bool(ok)
            self.checks[name] = check
        return out

    def run(self):
        t = round_robin(self.entries, self.args.repeats, self.args.size_budget_s)
        for n, r in t.items():
            r["compile_s"] = self.compile_s[n]
            r["floor"] = self.floor_of.get(n, n)
            r["ratio_to_floor"] = r["median_s"] / t[r["floor"]]["median_s"]
        return t


def reference(f, params, x, with_grad=True):
    """The same layer in float64, sequential: outputs and parameter gradients."""
    with jax.enable_x64(True):
        p64, x64 = to64(params), jnp.asarray(np.asarray(x, np.float64))
        h = np.asarray(jax.jit(f)(p64, x64))
        g = jax.jit(grad_of(f))(p64, x64) if with_grad else None
        g = None if g is None else jax.tree_util.tree_map(np.asarray, g)
    return h, g


FORM_RTOL = 1e-9  # forms of one layer compared in float64 (form_check)


def form_check(f, p, x, ref):
    """Does ``f`` compute the same function as the float64 sequential reference ``ref``
    (from :func:`reference`), and how far is its float32 answer from it?

    The gate (``ok``) is the agreement in float64 (``f`` on float64 parameters), to
    ``FORM_RTOL``. The float32 errors are reported beside it, not gated: for products of
    random operators over long sequences they measure conditioning (another random draw can
    lose a digit more), not a defect of the form. ``grad_finite`` says whether the float32
    gradient is finite at all.
    """
    h64, g64 = ref
    h_f, g_f = reference(f, p, x)  # this form, in float64
    g32 = jax.jit(grad_of(f))(p, x)
    out = {
        "out_rel_err": rel(jax.jit(f)(p, x), h64),
        "grad_rel_err": tree_rel(g32, g64),
        "grad_finite": bool(all(np.all(np.isfinite(v)) for v in jax.tree_util.tree_leaves(g32))),
        "float64_out_rel_err": rel(h_f, h64),
        "float64_grad_rel_err": tree_rel(g_f, g64),
    }
    out["ok"] = bool(
        out["float64_out_rel_err"] <= FORM_RTOL and out["float64_grad_rel_err"] <= FORM_RTOL
    )
    return out


def run_sizes(doc, name, grid, bench_size, write_markdown, *, argv=None, observations=None):
    """The ``main`` of a :class:`Section` benchmark over a grid of sizes.

    ``grid`` is ``(full, quick)``, tuples of size tuples passed to ``bench_size(*size, args)``,
    which returns a record with ``checks`` (name -> dict with ``ok``). Options: ``--quick``,
    ``--out``, ``--repeats`` (default 7; quick 3) and ``--size-budget-s`` (default 60; quick 5).
    Writes ``<name>.json`` / ``<name>.md``; returns the exit status (1 if a check failed).
    """
    ap = make_parser(doc, "one tiny size (checks only; dispatch-dominated timings)")
    ap.add_argument("--repeats", type=int, default=None, help="timed rounds (default 7; quick 3)")
    ap.add_argument("--size-budget-s", type=float, default=None,
                    help="cap on timed seconds per size (default 60; quick 5)")  # fmt: skip
    args = ap.parse_args(argv)
    args.repeats = args.repeats or (3 if args.quick else 7)
    args.size_budget_s = args.size_budget_s or (5.0 if args.quick else 60.0)
    out, stem = prepare_output(args, name)
    t0 = time.perf_counter()
    sizes = grid[1] if args.quick else grid[0]
    records = [bench_size(*size, args) for size in sizes]
    result = dict(
        quick=args.quick, machine={**host_info(), **jax_backend_info("float32")},
        versions=package_versions("jax", "jaxlib"), grid=[list(g) for g in sizes],
        records=records, seconds=time.perf_counter() - t0,
    )  # fmt: skip
    result["all_checks_pass"] = all(c["ok"] for r in records for c in r["checks"].values())
    result["observations"] = observations(result) if observations else []
    write_results(out, stem, result, write_markdown)
    print(f"wrote {out / (stem + '.md')} ({result['seconds']:.0f} s); checks "
          f"{'pass' if result['all_checks_pass'] else 'FAIL'}")  # fmt: skip
    return 0 if result["all_checks_pass"] else 1


# --------------------------------------------------------------------------------------
# Command line and output


def make_parser(doc: str, quick_help: str) -> argparse.ArgumentParser:
    """Parser described by the docstring's first paragraph, with ``--quick`` and ``--out``."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help=quick_help)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"), help="output folder")
    return ap


def announce(name: str, info: dict, details: str) -> None:
    """Print the first line of a run: the script, jax and its backend, CPUs, load, ``details``."""
    print(
        f"{name}: jax {info['jax']} {info['backend']}, {info['cpu_count']} CPUs, "
        f"load {info['loadavg_start']}, {details}",
        flush=True,
    )


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


def machine_text(result: dict, jax_text: str) -> str:
    """The machine line of a report, ``<date> - jax <jax_text>, <n> CPUs (<model>), load
    average at start ..., at end ...`` (1, 5 and 15 minutes), from ``result["machine"]``
    (:func:`host_info`) and ``result["loadavg_end"]``."""
    m = result["machine"]
    start = ", ".join(f"{v:.1f}" for v in m["loadavg_start"])
    end = ", ".join(f"{v:.1f}" for v in result["loadavg_end"])
    return (
        f"{m['date_utc']} - jax {jax_text}, {m['cpu_count']} CPUs ({m['cpu_model']}), "
        f"load average at start {start}, at end {end}"
    )


def close_markdown(path: Path, L: list[str], result: dict) -> None:
    """Write the report lines ``L`` to ``path``, closed by the generated observations (where
    ``result`` has them) and the notes (where there are any)."""
    if "observations" in result:
        L.append("\n## Observations (generated)\n")
        L.extend(f"- {o}" for o in result["observations"])
    if result.get("notes"):
        L.append("\n## Notes\n")
        L.extend(f"- {n}" for n in result["notes"])
    path.write_text("\n".join(L) + "\n")


def report(out: Path, stem: str, result: dict, write_markdown, t0: float) -> int:
    """Record the wall time since ``t0`` (``wall_s``), write ``<stem>.json`` and ``<stem>.md``,
    print the Markdown and where it went; the exit status (1 if ``all_checks_pass`` is false)."""
    result["wall_s"] = time.perf_counter() - t0
    json_path, md_path = write_results(out, stem, result, write_markdown)
    print(md_path.read_text())
    print(f"wrote {json_path} and {md_path} in {result['wall_s']:.0f} s")
    return 0 if result["all_checks_pass"] else 1


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
