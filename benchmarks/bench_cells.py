"""Every cell of ``switchssm.rnn``, in each of its forms, forward and gradient, against the
elementwise floor: one table, written the same way on any backend.

The cells are those :func:`switchssm.rnn.train_cell` knows (``switchssm.rnn.CELLS``), with
their default settings, plus the positive-state (``space="log"``) minGRU and minLSTM. A cell
with a ``mode`` runs in both forms (``"sequential"``: ``lax.scan``; ``"parallel"``:
``lax.associative_scan``), the others sequentially. Each output and parameter gradient is
checked against the same cell in float64, sequential, before timing (the bilinear cells,
products of random operators whose float32 drift over 16384 steps is conditioning, are
checked equal in float64 and their float32 errors reported); the floor is
``a*b + c`` over ``(T, H)``. Nothing here depends on the CPU: on a GPU or TPU the same command
measures the forms where the parallel ones are meant to pay (``mode=None`` picks them there).

    .venv/bin/python benchmarks/bench_cells.py           # (T, D) in {(1024, 64), (16384, 16)}
    .venv/bin/python benchmarks/bench_cells.py --quick   # (64, 8), a smoke test

Writes ``cells.json`` and ``cells.md`` (``cells_quick.*`` with ``--quick``) to ``--out``.
float32; compile times reported separately.
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

from switchssm.rnn._training import CELL_TABLE  # noqa: E402

DTYPE = jnp.float32
FULL_GRID = ((1024, 64), (16384, 16))
QUICK_GRID = ((64, 8),)
# settings per cell beyond the defaults (bilinear cells as state tracking runs them)
EXTRA = {
    "mingru log": ("mingru", {"space": "log"}),
    "minlstm log": ("minlstm", {"space": "log"}),
}
BILINEAR = ("bilinear", "cp", "block", "rotation", "complex", "diagonal")


def cells():
    """name -> (table entry name, fixed kwargs)."""
    out = {}
    for name in CELL_TABLE:
        out[name] = (name, {"normalize": True} if name in BILINEAR else {})
        if name == "minlstm":
            out.update({k: v for k, v in EXTRA.items() if v[0] == "minlstm"})
        if name == "mingru":
            out.update({k: v for k, v in EXTRA.items() if v[0] == "mingru"})
    return out


def bench_size(T, D, args):
    print(f"T={T}, D={D}", flush=True)
    sec = Section(f"T={T} D={D}", args)
    x = jax.random.normal(jax.random.PRNGKey(T + D), (T, D), DTYPE)
    forms = {}
    for i, (label, (name, kw)) in enumerate(cells().items()):
        entry = CELL_TABLE[name]
        p = entry.init(jax.random.PRNGKey(i), D, D, dtype=DTYPE)
        modes = ("sequential", "parallel") if "mode" in entry.kwargs else (None,)
        forms[label] = [m or "sequential" for m in modes]

        def f_of(mode, run=entry.run, kw=kw):
            extra = {} if mode is None else {"mode": mode}
            return lambda params, x: run(params, x, **kw, **extra)

        ref = reference(f_of("sequential" if modes[0] else None), p, x)
        for mode in modes:
            key = f"{label} {mode or 'sequential'}"
            if name in BILINEAR:  # products of random operators: forms gated in float64
                sec.add(key, f_of(mode), p, x, state=D)
                sec.checks[key] = form_check(f_of(mode), p, x, ref)
            else:
                sec.add(key, f_of(mode), p, x, ref, state=D)
    return dict(T=T, D=D, forms=forms, timings=sec.run(), checks=sec.checks)


def write_markdown(path, result):
    load = ", ".join(f"{v:.1f}" for v in result["machine"]["loadavg_start"])
    L = [f"# Every cell, every form{' (quick)' if result['quick'] else ''}\n"]
    L.append(
        f"float32, one sequence, H = D; backend {result['machine']['backend']}, "
        f"{result['machine']['cpu_count']} CPUs, load {load} at start; jax "
        f"{result['versions'].get('jax')}. Medians of interleaved rounds (ms); x floor = time / "
        "`a*b + c` over (T, H); compile (s) separate.\n"
    )
    for rec in result["records"]:
        t = rec["timings"]
        L.append(f"\n## T = {rec['T']}, D = H = {rec['D']}\n")
        L.append("| cell | form | fwd ms | x floor | grad ms | x floor | compile fwd / grad (s) "
                 "| float32 err (out / grad) | check |")  # fmt: skip
        L.append("|---|---|---|---|---|---|---|---|---|")
        for label, modes in rec["forms"].items():
            for m in modes:
                f, g = t[f"{label} {m}"], t[f"{label} {m} | grad"]
                c = rec["checks"][f"{label} {m}"]
                grad = ("not finite" if not c.get("grad_finite", True)
                        else f"{c.get('grad_rel_err', float('nan')):.1e}")  # fmt: skip
                L.append(
                    f"| {label} | {m} | {1e3 * f['median_s']:.3g} | {f['ratio_to_floor']:.1f} | "
                    f"{1e3 * g['median_s']:.3g} | {g['ratio_to_floor']:.1f} | "
                    f"{f['compile_s']:.2f} / {g['compile_s']:.2f} | "
                    f"{c['out_rel_err']:.1e} / {grad} | {'ok' if c['ok'] else 'FAILED'} |"
                )
    L.append(
        "\nCheck: against the same cell in float64, sequential (relative 1e-4 outputs, 1e-3 "
        "gradients); the bilinear cells are checked equal to it in float64 (relative 1e-9), "
        "their float32 errors reported, not gated: a product of 16384 random operators drifts "
        "in float32. A float32 gradient that is not finite is the limit documented in "
        "`switchssm.rnn.bilinear` (a decayed channel's state underflows while its cotangent "
        "overflows)."
    )
    path.write_text("\n".join(L) + "\n")


def main(argv=None):
    grid = (FULL_GRID, QUICK_GRID)
    return run_sizes(__doc__, "cells", grid, bench_size, write_markdown, argv=argv)


if __name__ == "__main__":
    raise SystemExit(main())
