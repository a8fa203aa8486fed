"""Bilinear cells: sequential vs parallel forms, forward and gradient, against the elementwise
floor and the project's minGRU on the same shapes.

Every bilinear kind (``switchssm.rnn.bilinear``: full, CP, block b = 2, rotation, complex,
diagonal) runs normalized (unit states, as state tracking trains them) on one sequence of
``T`` random inputs of width ``D = 8`` with ``H`` hidden units, in its sequential
(``lax.scan``) and parallel (``lax.associative_scan`` over the operators) forms; each output
and parameter gradient is first checked against the float64 sequential form (on the first
1024 steps: longer products of random operators drift apart in float32). The floor is
``a*b + c`` over ``(T, H)`` arrays. The parallel form of the dense kinds composes ``H x H``
matrices, ``O(T H^3)`` work against ``O(T H^2 D)`` sequentially: the table says where it stops
paying on CPU.

    .venv/bin/python benchmarks/bench_bilinear.py           # full grid, a few minutes
    .venv/bin/python benchmarks/bench_bilinear.py --quick   # smoke test, < 1 minute

Writes ``bilinear.json`` and ``bilinear.md`` (``bilinear_quick.*`` with ``--quick``) to
``--out``. All timed computations are float32; compile time is reported separately.
"""

from __future__ import annotations

from _common import Section
from _common import form_check
from _common import reference
from _common import run_sizes
from _common import setup_jax

setup_jax(x64=False, quiet_peers=False)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from switchssm import rnn  # noqa: E402

DTYPE = jnp.float32
D = 8
FULL_GRID = ((1024, 16), (1024, 64), (16384, 16), (16384, 64))
QUICK_GRID = ((64, 8),)
CHECK_T = 1024
QUICK_KINDS = ("bilinear", "rotation", "diagonal")  # a smoke test: one dense, two elementwise
KINDS = {
    "bilinear": lambda k, H: rnn.init_bilinear(k, D, H, dtype=DTYPE),
    "cp": lambda k, H: rnn.init_cp_bilinear(k, D, H, dtype=DTYPE),
    "block": lambda k, H: rnn.init_block_bilinear(k, D, H, block_size=2, dtype=DTYPE),
    "rotation": lambda k, H: rnn.init_rotation(k, D, H, dtype=DTYPE),
    "complex": lambda k, H: rnn.init_complex_diagonal(k, D, H, dtype=DTYPE),
    "diagonal": lambda k, H: rnn.init_diagonal_bilinear(k, D, H, dtype=DTYPE),
}


def cell_fn(mode):
    return lambda p, x: rnn.bilinear(p, x, mode=mode, normalize=True)


def bench_size(T, H, args):
    print(f"T={T}, H={H}", flush=True)
    sec = Section(f"T={T} H={H}", args)
    x = jax.random.normal(jax.random.PRNGKey(T + H), (T, D), DTYPE)
    # Checked on the first CHECK_T steps: over longer products of random operators the
    # float32 and float64 directions drift apart (products of 10^4 random matrices amplify
    # rounding; one-hot inputs of a trained cell are far better conditioned), which says
    # nothing about the forms. Timed on all T steps.
    xc = x[:CHECK_T]
    kinds = {k: v for k, v in KINDS.items() if not args.quick or k in QUICK_KINDS}
    for i, (kind, init) in enumerate(kinds.items()):
        p = init(jax.random.PRNGKey(i), H)
        ref = reference(cell_fn("sequential"), p, xc)
        for mode in ("sequential", "parallel"):
            sec.add(f"{kind} {mode}", cell_fn(mode), p, x, state=H)
            sec.checks[f"{kind} {mode}"] = form_check(cell_fn(mode), p, xc, ref)
    mg = rnn.init_mingru(jax.random.PRNGKey(99), D, H, dtype=DTYPE)
    for mode in ("sequential", "parallel"):
        f = lambda p, x, mode=mode: rnn.mingru(p, x, mode=mode)  # noqa: E731
        sec.add(f"minGRU {mode}", f, mg, x, state=H)
        sec.checks[f"minGRU {mode}"] = form_check(f, mg, xc, reference(f, mg, xc))
    timings = sec.run()
    return dict(T=T, H=H, timings=timings, checks=sec.checks)


def _ms(s):
    return f"{1e3 * s:.3g}"


def write_markdown(path, result):
    L = [f"# Bilinear cells benchmark{' (quick)' if result['quick'] else ''}\n"]
    load = ", ".join(f"{v:.1f}" for v in result["machine"]["loadavg_start"])
    L.append(
        f"float32, one sequence, D = {D}, normalized states; {result['machine']['cpu_count']} "
        f"CPUs, load {load} at start; jax "
        f"{result['versions'].get('jax')}. Times are medians of interleaved rounds (ms); "
        "x floor = time / the floor `a*b + c` over (T, H); par/seq = parallel time / "
        "sequential time. Compile times (s) separate. Errors: relative to the float64 "
        f"sequential form on the first {CHECK_T} steps (outputs; parameter gradients); the "
        "forms are checked equal in float64 (relative 1e-9), and the float32 errors, which "
        "measure the conditioning of products of random operators, are reported.\n"
    )
    for rec in result["records"]:
        t = rec["timings"]
        L.append(f"\n## T = {rec['T']}, H = {rec['H']}\n")
        L.append("| cell | seq fwd | x floor | par fwd | x floor | par/seq fwd | seq grad | "
                 "par grad | par/seq grad | compile seq / par (s) | "
                 "float32 err seq / par (out; grad) | forms equal (float64) |")  # fmt: skip
        L.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for kind in (*KINDS, "minGRU"):
            if f"{kind} sequential" not in t:
                continue
            s, p = t[f"{kind} sequential"], t[f"{kind} parallel"]
            sg, pg = t[f"{kind} sequential | grad"], t[f"{kind} parallel | grad"]
            cs, cp = (rec["checks"][f"{kind} {m}"] for m in ("sequential", "parallel"))
            ok = cs["ok"] and cp["ok"]
            err = (f"{cs['out_rel_err']:.1e} / {cp['out_rel_err']:.1e}; "
                   f"{cs['grad_rel_err']:.1e} / {cp['grad_rel_err']:.1e}")  # fmt: skip
            L.append(
                f"| {kind} | {_ms(s['median_s'])} | {s['ratio_to_floor']:.1f} | "
                f"{_ms(p['median_s'])} | {p['ratio_to_floor']:.1f} | "
                f"{p['median_s'] / s['median_s']:.2f} | {_ms(sg['median_s'])} | "
                f"{_ms(pg['median_s'])} | {pg['median_s'] / sg['median_s']:.2f} | "
                f"{s['compile_s']:.2f} / {p['compile_s']:.2f} | {err} | "
                f"{'ok' if ok else 'FAILED'} |"
            )
    L.append("\n## Observations\n")
    L += [f"- {o}" for o in result["observations"]]
    path.write_text("\n".join(L) + "\n")


def observations(result):
    out = []
    for rec in result["records"]:
        t = rec["timings"]
        ratios = {
            k: t[f"{k} parallel"]["median_s"] / t[f"{k} sequential"]["median_s"]
            for k in (*KINDS, "minGRU")
            if f"{k} sequential" in t
        }
        pays = [k for k, r in ratios.items() if r < 1.0]
        out.append(
            f"T = {rec['T']}, H = {rec['H']}: parallel/sequential forward "
            + ", ".join(f"{k} {r:.2f}" for k, r in ratios.items())
            + (
                f"; the parallel form pays for {', '.join(pays)}"
                if pays
                else "; the parallel form pays for none on this CPU"
            )  # fmt: skip
        )
    return out


def main(argv=None):
    grid = (FULL_GRID, QUICK_GRID)
    return run_sizes(
        __doc__, "bilinear", grid, bench_size, write_markdown, argv=argv, observations=observations
    )


if __name__ == "__main__":
    raise SystemExit(main())
