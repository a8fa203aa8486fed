#!/usr/bin/env python
"""minGRU forward and gradient on CPU, against a fused elementwise floor measured in the same run.

All timed computations are **float32** (the usual training dtype; ``jax_enable_x64`` stays off).
Grid: ``(T, D)`` in ``{(1024, 256), (16384, 64), (262144, 16), (10^6, 8)}`` (one sequence, no
batch axis; the last is the size of the issue-14 targets).

Rows:

* **floor** -- ``jax.jit(lambda a, b, c: a * b + c)`` over three ``(T, D)`` arrays: one fused
  elementwise pass (read 3 arrays, write 1), the memory-bound floor that a diagonal scan
  (read ``a``, ``b``, write ``h``) cannot beat. Every ratio below is ``time / floor time``
  from the same size in the same run (timings are interleaved round-robin so that load
  changes on a shared machine hit all rows alike). The gradient of ``sum(a * b + c)`` w.r.t.
  ``(a, b)`` is timed as well (``floor grad``), for reference only.
* **scan-only** (given precomputed gates): ``h_t = a_t h_{t-1} + b_t`` with
  ``a = sigmoid(-k)``, ``b = sigmoid(k) g(c)`` (positive, so every row computes the same
  ``h``), ``k, c ~ N(0, 1)``, ``h_0 = 1/2``:

  - ``logit sequential`` / ``logit parallel``: ``switchssm.scan.diagonal_scan(a, b, h0, mode=)``;
  - ``log sequential`` / ``log parallel``: ``switchssm.scan.log_diagonal_scan(log a, log b,
    log h0, mode=)`` followed by ``exp`` (the minGRU log-space scan);
  - ``ref cumsum+logcumsumexp``: the formulation of public minGRU code (Heinsen's
    ``a* = cumsum(log a)``, ``log h = a* + logcumsumexp(log b - a*)``, with ``h_0``
    prepended). Not shipped in the package; implemented here for comparison only
    (``docs/numerics.md``: it loses accuracy in float32 as ``T`` grows).

  Gradient: ``jax.grad`` of ``sum(h)`` w.r.t. the scan inputs (``(a, b)`` or
  ``(log a, log b)``).
* **whole cell** (input projections included): ``x (T, D)``, ``H = D``;
  ``switchssm.rnn.mingru(params, x, mode=, space="logit")`` (linear candidate) and
  ``mingru(..., space="log")`` (candidate ``g``, positive states, returns ``h``), plus the
  reference formulation with the same projections (``space="log"`` maths), and a
  ``cell no-scan floor``: the same projections and gate nonlinearities followed by one fused
  ``a * h0 + b`` (everything a cell does except the recurrence). Gradient: ``jax.grad`` of
  ``sum(h)`` w.r.t. all four parameter arrays.

Accuracy (checked before timing, reported with the timings): scan-only ``h`` against a
float64 NumPy loop on the same (float32-rounded) inputs, max elementwise relative error
(``h > 0``); scan-only gradients against the float64 adjoint recursion
(``g_t = 1 + a_{t+1} g_{t+1}``, ``dL/db_t = g_t``, ``dL/da_t = g_t h_{t-1}``; times ``a``
or ``b`` for log inputs), max over inputs of ``max|err| / max|ref|``. Whole cell: against the
same cell run in float64 (``jax.enable_x64``, sequential mode), ``max|err| / max|ref|`` for
``h`` and for the parameter gradient.

Timing: compile time is ``jit(f).lower(...).compile()`` wall time, reported separately and
excluded from throughput; steady state is the median of ``--repeats`` calls (>= 5) of the
compiled executable, each ended by ``jax.block_until_ready``.

Usage (``--quick``: one tiny size, a smoke test of under a minute; without it, the full grid;
``--out DIR``: the results elsewhere)::

    .venv/bin/python benchmarks/bench_mingru.py [--quick] [--out DIR]

Writes ``mingru.json`` and ``mingru.md`` (``mingru_quick.*`` with ``--quick``) to ``--out``
(default ``benchmarks/results``).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

from _common import announce  # set-up, timing, machine info and output
from _common import close_markdown  # set-up, timing, machine info and output
from _common import host_info  # set-up, timing, machine info and output
from _common import jax_backend_info  # set-up, timing, machine info and output
from _common import machine_text  # set-up, timing, machine info and output
from _common import make_parser  # set-up, timing, machine info and output
from _common import package_versions  # set-up, timing, machine info and output
from _common import prepare_output  # set-up, timing, machine info and output
from _common import report  # set-up, timing, machine info and output
from _common import setup_jax  # set-up, timing, machine info and output
from _common import sources_sha256  # set-up, timing, machine info and output
from _common import timed  # set-up, timing, machine info and output

setup_jax(x64=False, quiet_peers=False)  # float32: x64 stays off; no peers to quiet

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from switchssm import scan  # noqa: E402
from switchssm.rnn import g_activation  # noqa: E402  # noqa: E402
from switchssm.rnn import init_mingru  # noqa: E402  # noqa: E402
from switchssm.rnn import log_g_activation  # noqa: E402  # noqa: E402
from switchssm.rnn import mingru  # noqa: E402  # noqa: E402

DTYPE = jnp.float32
FULL_GRID = ((1024, 256), (16384, 64), (262144, 16), (1_000_000, 8))
QUICK_GRID = ((64, 16),)  # one tiny size: compile time dominates (parallel grads ~5-10 s CPU)
H0 = 0.5  # initial state of the scan-only problem (the minGRU default for candidate g)

# Sanity bounds on float32 answers (the shipped forms; the reference row is reported, not
# checked). Elementwise relative error of a positive recurrence with decays < 1 stays at a
# few ulps times a small factor; 1e-4 leaves ample room. Gradients sum O(T) terms of one
# sign, so their float32 error grows slowly with T; 1e-3 normwise.
H_RTOL = 1e-4
GRAD_RTOL = 1e-3


# --------------------------------------------------------------------------------------
# Reference formulation of public minGRU code (not in the package)


def heinsen_log_scan(log_a, log_b, log_h0):
    """``log h`` via ``a* = cumsum(log a)``, ``log h = a* + logcumsumexp(log b - a*)``.

    ``h_0`` is prepended as in public minGRU code (``log_coeffs`` padded with 0,
    ``log_values`` led by ``log h0``); the first row is dropped afterwards.
    """
    la = jnp.concatenate([jnp.zeros_like(log_a[:1]), log_a], axis=0)
    lb = jnp.concatenate([log_h0[None], log_b], axis=0)
    a_star = jnp.cumsum(la, axis=0)
    log_h = a_star + jax.lax.cumlogsumexp(lb - a_star, axis=0)
    return log_h[1:]


# --------------------------------------------------------------------------------------
# Independent float64 references (NumPy loops)


def numpy_scan_and_grad(a, b, h0):
    """float64 ``h`` and the adjoint of ``sum(h)`` w.r.t. ``a`` and ``b``."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    T = a.shape[0]
    h = np.empty_like(b)
    prev = np.asarray(h0, np.float64)
    for t in range(T):
        prev = a[t] * prev + b[t]
        h[t] = prev
    g = np.empty_like(b)  # g_t = dL/dh_t including the path through later steps
    nxt = np.zeros(b.shape[1])
    for t in range(T - 1, -1, -1):
        nxt = 1.0 + (a[t + 1] * nxt if t + 1 < T else 0.0)
        g[t] = nxt
    h_prev = np.concatenate([np.broadcast_to(np.asarray(h0, np.float64), (1, b.shape[1])), h[:-1]])
    return h, g * h_prev, g  # h, dL/da, dL/db


def rel_elementwise(x, ref):
    x = np.asarray(x, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        e = np.abs(x - ref) / np.abs(ref)
    return float(np.nanmax(np.where(np.isfinite(x), e, np.inf)))


def rel_norm(x, ref):
    x = np.asarray(x, np.float64)
    if not np.all(np.isfinite(x)):
        return float("inf")
    return float(np.max(np.abs(x - ref)) / max(np.max(np.abs(ref)), 1e-300))


# --------------------------------------------------------------------------------------
# Problems


def scan_problem(T, D, seed):
    """Float32 gates ``(a, b)`` and their logs, with a float64 reference."""
    rng = np.random.default_rng(seed)
    k = rng.standard_normal((T, D)).astype(np.float32)
    c = rng.standard_normal((T, D)).astype(np.float32)
    # Gates computed in float32 (as a training step would); the reference runs in float64
    # on exactly these rounded values.
    k, c = jnp.asarray(k), jnp.asarray(c)
    a = jax.nn.sigmoid(-k)
    b = jax.nn.sigmoid(k) * g_activation(c)
    log_a = -jax.nn.softplus(k)
    log_b = -jax.nn.softplus(-k) + log_g_activation(c)
    h0 = jnp.full((D,), H0, DTYPE)
    log_h0 = jnp.log(h0)
    return dict(a=a, b=b, log_a=log_a, log_b=log_b, h0=h0, log_h0=log_h0)


def scan_fns(p):
    """name -> (forward f(u, v) -> h, the two timed inputs, 'linear'|'log')."""
    h0, log_h0 = p["h0"], p["log_h0"]

    def logit(mode):
        return lambda a, b: scan.diagonal_scan(a, b, h0, mode=mode)

    def log(mode):
        return lambda la, lb: jnp.exp(scan.log_diagonal_scan(la, lb, log_h0, mode=mode))

    lin, lg = (p["a"], p["b"]), (p["log_a"], p["log_b"])
    return {
        "logit sequential": (logit("sequential"), lin, "linear"),
        "logit parallel": (logit("parallel"), lin, "linear"),
        "log sequential": (log("sequential"), lg, "log"),
        "log parallel": (log("parallel"), lg, "log"),
        "ref cumsum+logcumsumexp": (
            lambda la, lb: jnp.exp(heinsen_log_scan(la, lb, log_h0)),
            lg,
            "log",
        ),
    }


def _ref_cell_h(params, x):
    """Reference minGRU cell (space="log", candidate g) with the cumsum formulation."""
    k = x @ params.gate_weight.T + params.gate_bias
    pre = x @ params.candidate_weight.T + params.candidate_bias
    log_h0 = jnp.full((params.hidden_dim,), np.log(H0), x.dtype)
    log_b = -jax.nn.softplus(-k) + log_g_activation(pre)
    log_h = heinsen_log_scan(-jax.nn.softplus(k), log_b, log_h0)
    return jnp.exp(log_h)


def _cell_floor_h(params, x):
    """Everything the logit cell does except the recurrence: projections, gates, one fused step."""
    k = x @ params.gate_weight.T + params.gate_bias
    cand = x @ params.candidate_weight.T + params.candidate_bias
    return jax.nn.sigmoid(-k) * H0 + jax.nn.sigmoid(k) * cand


def cell_fns():
    """name -> cell forward f(params, x) -> h."""
    return {
        "cell no-scan floor": _cell_floor_h,
        "cell logit sequential": lambda p, x: mingru(p, x, mode="sequential", space="logit"),
        "cell logit parallel": lambda p, x: mingru(p, x, mode="parallel", space="logit"),
        "cell log sequential": lambda p, x: mingru(p, x, mode="sequential", space="log"),
        "cell log parallel": lambda p, x: mingru(p, x, mode="parallel", space="log"),
        "cell ref cumsum+logcumsumexp": _ref_cell_h,
    }


# --------------------------------------------------------------------------------------
# Measurement


def compile_fn(f, *args):
    """(compiled executable, (wall s, process CPU s)) for ``jit(f)`` at these arguments.

    The CPU time (all threads of this process) shows the compile cost independently of how
    loaded a shared machine is; the wall time is what a user waits.
    """
    t0, c0 = time.perf_counter(), time.process_time()
    compiled = jax.jit(f).lower(*args).compile()
    return compiled, (time.perf_counter() - t0, time.process_time() - c0)


def run_round_robin(entries: dict, repeats: int, budget_s: float) -> dict:
    """Median of ``repeats`` calls per entry, interleaved; entries are name -> (fn, args).

    One warm-up call each first (not timed). If the whole size would exceed ``budget_s`` at
    ``repeats`` rounds (estimated from the warm-up), rounds drop to no fewer than 5.
    """
    warm = {}
    for name, (fn, args) in entries.items():
        warm[name], _ = timed(fn, *args)
    per_round = sum(warm.values())
    rounds = repeats
    if per_round * repeats > budget_s:
        rounds = max(5, int(budget_s // max(per_round, 1e-9)))
    times = {n: [] for n in entries}
    for _ in range(rounds):
        for name, (fn, args) in entries.items():
            dt, _ = timed(fn, *args)
            times[name].append(dt)
    return {
        n: dict(median_s=statistics.median(t), times_s=t, warmup_s=warm[n])
        for n, t in times.items()
    }


# --------------------------------------------------------------------------------------
# One size


def bench_size(T, D, args, seed=0):
    print(f"T={T}, D={D}: building problems and references", flush=True)
    t_size = time.perf_counter()
    rec = dict(T=T, D=D, elements=T * D, rows={}, checks={})

    # ---- scan-only problem, float64 reference
    p = scan_problem(T, D, seed)
    h_ref, ga_ref, gb_ref = numpy_scan_and_grad(p["a"], p["b"], p["h0"])
    a64, b64 = np.asarray(p["a"], np.float64), np.asarray(p["b"], np.float64)

    entries, compile_s = {}, {}
    rng = np.random.default_rng(seed + 1)
    fa, fb, fc = (jnp.asarray(rng.standard_normal((T, D)), DTYPE) for _ in range(3))
    floor = lambda a, b, c: a * b + c  # noqa: E731
    fn, cs = compile_fn(floor, fa, fb, fc)
    entries["floor a*b+c"], compile_s["floor a*b+c"] = (fn, (fa, fb, fc)), cs
    fg = jax.grad(lambda a, b, c: jnp.sum(floor(a, b, c)), argnums=(0, 1))
    fn, cs = compile_fn(fg, fa, fb, fc)
    entries["floor grad"], compile_s["floor grad"] = (fn, (fa, fb, fc)), cs

    for name, (f, ins, kind) in scan_fns(p).items():
        fn, cs = compile_fn(f, *ins)
        entries[name], compile_s[name] = (fn, ins), cs
        h = fn(*ins)
        loss = lambda u, v, f=f: jnp.sum(f(u, v))  # noqa: E731
        gfn, gcs = compile_fn(jax.grad(loss, argnums=(0, 1)), *ins)
        entries[name + " | grad"], compile_s[name + " | grad"] = (gfn, ins), gcs
        gu, gv = gfn(*ins)
        if kind == "log":  # d/dlog a = a d/da
            gref_u, gref_v = a64 * ga_ref, b64 * gb_ref
        else:
            gref_u, gref_v = ga_ref, gb_ref
        rec["checks"][name] = dict(
            h_max_rel_err=rel_elementwise(h, h_ref),
            grad_rel_err=max(rel_norm(gu, gref_u), rel_norm(gv, gref_v)),
            finite=bool(all(np.all(np.isfinite(np.asarray(v))) for v in (h, gu, gv))),
        )

    # ---- whole cell, float64 reference via the package in float64 (sequential)
    key = jax.random.PRNGKey(seed)
    params = init_mingru(key, D, D, dtype=DTYPE)
    x = jax.random.normal(jax.random.PRNGKey(seed + 7), (T, D), DTYPE)
    cell_refs = {}
    with jax.enable_x64(True):
        p64 = jax.tree_util.tree_map(lambda w: jnp.asarray(np.asarray(w, np.float64)), params)
        x64 = jnp.asarray(np.asarray(x, np.float64))
        for space in ("logit", "log"):
            f64 = jax.jit(
                lambda pp, xx, space=space: mingru(pp, xx, mode="sequential", space=space)
            )
            h64 = np.asarray(f64(p64, x64))
            g64 = jax.jit(jax.grad(lambda pp, xx, f64=f64: jnp.sum(f64(pp, xx))))(p64, x64)
            cell_refs[space] = (h64, [np.asarray(w) for w in jax.tree_util.tree_leaves(g64)])
    for name, f in cell_fns().items():
        fn, cs = compile_fn(f, params, x)
        entries[name], compile_s[name] = (fn, (params, x)), cs
        gfn, gcs = compile_fn(jax.grad(lambda pp, xx, f=f: jnp.sum(f(pp, xx))), params, x)
        entries[name + " | grad"], compile_s[name + " | grad"] = (gfn, (params, x)), gcs
        if "floor" in name:
            continue
        space = "logit" if "logit" in name else "log"
        h64, g64 = cell_refs[space]
        h = np.asarray(fn(params, x))
        g = [np.asarray(w) for w in jax.tree_util.tree_leaves(gfn(params, x))]
        rec["checks"][name] = dict(
            h_rel_err=rel_norm(h, h64),
            h_max_rel_err=rel_elementwise(h, h64) if space == "log" else None,
            grad_rel_err=max(rel_norm(gi, ri) for gi, ri in zip(g, g64, strict=True)),
            finite=bool(np.all(np.isfinite(h)) and all(np.all(np.isfinite(gi)) for gi in g)),
        )
    setup_s = time.perf_counter() - t_size
    print(
        f"  compiled {len(entries)} programs and checked answers in {setup_s:.1f} s; timing",
        flush=True,
    )

    timings = run_round_robin(entries, args.repeats, args.size_budget_s)
    floor_s = timings["floor a*b+c"]["median_s"]
    for name, t in timings.items():
        t["compile_s"], t["compile_cpu_s"] = compile_s[name]
        t["ratio_to_floor"] = t["median_s"] / floor_s
        t["ns_per_element"] = t["median_s"] / (T * D) * 1e9
        rec["rows"][name] = t
    rec["repeats"] = len(timings["floor a*b+c"]["times_s"])
    rec["wall_s"] = time.perf_counter() - t_size
    ok = []
    for name, c in rec["checks"].items():
        if name.startswith("ref") or name.startswith("cell ref"):
            c["checked"] = False
            continue
        good = c["finite"] and c["grad_rel_err"] <= GRAD_RTOL
        if "h_rel_err" in c:  # cell
            good = good and c["h_rel_err"] <= H_RTOL
        else:
            good = good and c["h_max_rel_err"] <= H_RTOL
        c["checked"], c["ok"] = True, bool(good)
        ok.append(good)
        if not good:
            print(f"  !! {name} answer out of tolerance: {c}", flush=True)
    rec["all_checks_pass"] = bool(all(ok))
    print(
        f"  floor {floor_s * 1e3:.3f} ms; size done in {rec['wall_s']:.1f} s "
        f"({rec['repeats']} rounds)",
        flush=True,
    )
    return rec


# --------------------------------------------------------------------------------------
# Reporting


def machine_info() -> dict:
    return dict(
        switchssm_sources_sha256=sources_sha256(),
        **host_info(),
        **package_versions("jax", "jaxlib", "numpy"),
        **jax_backend_info("float32"),
    )


SCAN_ROWS = (
    "logit sequential",
    "logit parallel",
    "log sequential",
    "log parallel",
    "ref cumsum+logcumsumexp",
)
CELL_ROWS = (
    "cell logit sequential",
    "cell logit parallel",
    "cell log sequential",
    "cell log parallel",
    "cell ref cumsum+logcumsumexp",
)


def _ms(s):
    return f"{s * 1e3:.3g}" if s >= 1e-3 else f"{s * 1e3:.2g}"


def _e(x):
    return "-" if x is None else ("inf" if not np.isfinite(x) else f"{x:.1e}")


def observations(result) -> list[str]:
    out = []
    for s in result["sizes"]:
        r = s["rows"]
        tag = f"T={s['T']}, D={s['D']}"
        fw = min(SCAN_ROWS, key=lambda n: r[n]["median_s"])
        gr = min(SCAN_ROWS, key=lambda n: r[n + " | grad"]["median_s"])
        cf = min(CELL_ROWS, key=lambda n: r[n]["median_s"])
        cg = min(CELL_ROWS, key=lambda n: r[n + " | grad"]["median_s"])
        seq_vs_par = r["log parallel"]["median_s"] / r["log sequential"]["median_s"]
        seq_vs_par_l = r["logit parallel"]["median_s"] / r["logit sequential"]["median_s"]
        out.append(
            f"{tag}: fastest scan forward **{fw}** ({r[fw]['ratio_to_floor']:.1f}x floor), "
            f"fastest scan gradient **{gr}** ({r[gr + ' | grad']['ratio_to_floor']:.1f}x floor); "
            f"parallel/sequential time: logit {seq_vs_par_l:.1f}x, log {seq_vs_par:.1f}x; "
            f"fastest whole cell **{cf}** forward, **{cg}** gradient."
        )
    return out


def write_markdown(path: Path, result: dict):
    info = result["machine"]
    L = [f"# minGRU benchmark{' (quick)' if result['quick'] else ''}\n"]
    jax_text = f"{info['jax']} / jaxlib {info['jaxlib']} ({info['backend']})"
    L.append(f"{machine_text(result, jax_text)}. Wall time {result['wall_s']:.0f} s.\n")
    L.append(
        "**float32** throughout (x64 off). Times are steady-state medians (ms) of the compiled "
        "executable, interleaved round-robin across rows, `jax.block_until_ready` after each "
        "call; compile time (`jit(f).lower().compile()`) is reported separately and excluded. "
        "**ratio** = time / floor time, floor = jitted `a * b + c` over three (T, D) float32 "
        "arrays (one fused elementwise pass), measured in the same run. Gradient = `jax.grad` "
        "of `sum(h)` w.r.t. the scan inputs (scan-only) or all cell parameters (whole cell); "
        "its ratio uses the same forward floor.\n"
    )
    L.append(
        "Rel. err.: scan-only `h` = max elementwise |h - h64| / h64 against a float64 NumPy loop "
        "on the same float32 inputs; grad = max |g - g64| / max |g64| against the float64 "
        "adjoint recursion. Whole cell: `h` = max |h - h64| / max |h64| against the same cell "
        "in float64. All checks of the shipped forms pass: "
        f"**{result['all_checks_pass']}** (h <= {H_RTOL:g}, grad <= {GRAD_RTOL:g}; the "
        "reference row is reported, not checked).\n"
    )
    tables = (  # title, rows, the error of h in its "h rel. err." column
        ("Scan only (precomputed gates a, b)", SCAN_ROWS, "h_max_rel_err"),
        (
            "Whole cell (input projections included, x (T, D), H = D)",
            ("cell no-scan floor",) + CELL_ROWS,
            "h_rel_err",
        ),
    )
    for title, names, h_err in tables:
        L.append(f"\n## {title}\n")
        L.append(
            "| T | D | row | fwd ms | fwd ratio | fwd compile s | grad ms | grad ratio | "
            "grad compile s | h rel. err. | grad rel. err. |"
        )
        L.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for s in result["sizes"]:
            r = s["rows"]
            if names is SCAN_ROWS:  # the floor heads the scan-only rows of each size
                fl, fg = r["floor a*b+c"], r["floor grad"]
                L.append(
                    f"| {s['T']} | {s['D']} | floor `a*b+c` | {_ms(fl['median_s'])} | 1 | "
                    f"{fl['compile_s']:.2f} | {_ms(fg['median_s'])} | {fg['ratio_to_floor']:.1f} | "
                    f"{fg['compile_s']:.2f} | - | - |"
                )
            for n in names:
                f, g = r[n], r[n + " | grad"]
                ck = s["checks"].get(n, {})
                L.append(
                    f"| {s['T']} | {s['D']} | {n} | {_ms(f['median_s'])} | "
                    f"{f['ratio_to_floor']:.1f} | {f['compile_s']:.2f} | {_ms(g['median_s'])} | "
                    f"{g['ratio_to_floor']:.1f} | {g['compile_s']:.2f} | "
                    f"{_e(ck.get(h_err))} | {_e(ck.get('grad_rel_err'))} |"
                )
    close_markdown(path, L, result)


def main(argv=None):
    ap = make_parser(__doc__, "tiny sizes for smoke testing (< 1 min)")
    ap.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed rounds per size (default 7; quick 5; never fewer than 5)",
    )
    ap.add_argument(
        "--size-budget-s",
        type=float,
        default=None,
        help="cap on timed seconds per size; rounds drop (to >= 5) to fit (default 60; quick 10)",
    )
    ap.add_argument(
        "--ncpu-load",
        type=float,
        default=float(os.cpu_count() or 1),
        help="load average at or above which the results carry a 'shared machine' note",
    )
    ap.add_argument("--sizes", default=None, help="override the grid, e.g. '1024x256,16384x64'")
    args = ap.parse_args(argv)
    if args.quick:
        grid = QUICK_GRID
        args.repeats = args.repeats or 5
        args.size_budget_s = args.size_budget_s or 10.0
    else:
        grid = FULL_GRID
        args.repeats = args.repeats or 7
        args.size_budget_s = args.size_budget_s or 60.0
    if args.sizes:
        grid = tuple(tuple(int(v) for v in s.split("x")) for s in args.sizes.split(","))
    if args.repeats < 5:
        ap.error("--repeats must be >= 5 (median of at least 5 calls)")

    out, stem = prepare_output(args, "mingru")
    t0 = time.perf_counter()
    info = machine_info()
    announce("bench_mingru", info, f"float32, grid {grid}")
    result = dict(
        machine=info,
        quick=args.quick,
        args=vars(args),
        grid=[list(g) for g in grid],
        problem=dict(
            scan_only="a = sigmoid(-k), b = sigmoid(k) * g(c), k, c ~ N(0, 1) float32, h0 = 1/2",
            whole_cell="init_mingru(U(+-1/sqrt(D)), zero biases), x ~ N(0, 1), H = D_in = D",
            floor="jit(lambda a, b, c: a * b + c), three (T, D) float32 arrays",
        ),
        tolerances=dict(h_rtol=H_RTOL, grad_rtol=GRAD_RTOL),
        sizes=[],
        notes=[],
    )
    for T, D in grid:
        result["sizes"].append(bench_size(T, D, args))
    result["all_checks_pass"] = bool(all(s["all_checks_pass"] for s in result["sizes"]))
    result["observations"] = observations(result)
    ref_err = {
        f"T={s['T']}": s["checks"]["ref cumsum+logcumsumexp"]["h_max_rel_err"]
        for s in result["sizes"]
    }
    result["notes"].append(
        "Reference cumsum+logcumsumexp form, float32 max elementwise relative error of h: "
        + ", ".join(f"{k} {v:.1e}" for k, v in ref_err.items())
        + " (the shipped log-space scans combine only neighbouring terms and stay near float32 "
        "rounding)."
    )
    result["loadavg_end"] = os.getloadavg()
    load = max(info["loadavg_start"][0], result["loadavg_end"][0])
    if load >= args.ncpu_load:
        result["notes"].append(
            f"1-minute load average reached {load:.1f} on {info['cpu_count']} CPUs during the "
            "run: the machine was shared. Wall times (compile included) are inflated and noisy, "
            "and the ratios are distorted too: XLA runs the large elementwise floor on its "
            "thread pool, which suffers more from descheduled threads than the single-threaded "
            "sequential scans. Rerun on an idle machine before quoting numbers; compile CPU "
            "seconds (in the JSON) are the load-independent compile cost."
        )
    if args.quick:
        result["notes"].append(
            "--quick: at this size every call is dominated by dispatch overhead (tens of "
            "microseconds), so the ratios say nothing about throughput; this run checks that "
            "the script works and that the answers are right."
        )
    return report(out, stem, result, write_markdown, t0)


if __name__ == "__main__":
    sys.exit(main())
