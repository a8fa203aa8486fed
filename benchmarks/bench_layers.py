#!/usr/bin/env python
"""Sequence layers on CPU: linear attention's three forms, LTI forms, S6 and LRU against memax.

All timed computations are **float32** (``jax_enable_x64`` stays off). One sequence, no batch.

Sections:

* **attention** -- ``switchssm.rnn.linear_attention`` (``elu`` features, normalized) in the
  ``parallel`` (masked ``n x n``), ``recurrent`` (memories ``(S_t, z_t)`` in a
  ``lax.scan``) and ``chunked`` (``chunk_size=64``) forms, forward and gradient of
  ``sum(h)`` w.r.t. all weights, over ``n`` with ``D_in = F = H = e``. The lecture predicts
  a parallel cost ``O(n^2 e)`` against a recurrent ``O(n e^2)``: the **crossover** is the
  ``n`` where the two times meet (log-log interpolation), reported for each ``e`` beside
  ``e`` and ``e^2``.
* **lti** -- ``switchssm.rnn.lti`` with ``D_in = H = N``: sequential scan, parallel prefix
  scan (dense, ``O(n N^3)``), FFT convolution (``K_m = C A^m B``), the chunked form
  (``chunk_size=8``: convolution inside chunks, recurrence across them), and the
  complex-diagonal layer of ``diagonalize`` (``lti_diagonal``, sequential).
* **peers** -- the S6 recurrence and the LRU against memax (equinox backend) on mapped
  weights (outputs checked equal first): memax's ``S6`` has one state per channel with
  per-channel ``B, C`` projections, so ours runs with ``N = 1`` and memax's ``B``/``C`` rows
  all set to ours (their biases too); memax's ``LRU`` maps field by field (``D`` vector ->
  ``diag``). Beside them, the project's ``mingru`` and ``selective`` cells on the same
  ``(n, D)`` shapes.
* **mamba** -- S6 with ``N = 16`` states per channel and the whole ``mamba`` block
  (``N = 16``, ``E = 2 D``), sequential, in a section of their own: interleaved with the
  peers, their 16-32x larger buffers, freed back to the OS after each call, made the peer
  rows after them pay for mapping fresh pages.

The **no-scan** rows (forward only) run a layer with its recurrence replaced by one
elementwise pass (``switchssm.scan.diagonal_scan`` patched to ``a + b`` while the layer is
traced): its projections, gates, discretization and readout, which the elementwise floor
does not count, plus one pass over the coefficients in place of the scan. The cells
(minGRU, selective) are traced in their sequential form; S6 and the LRU, whose sequential
forms run fused loops without a separate scan, in their parallel form, which materializes
coefficients that the fused loops never write (so that their no-scan time can exceed the
sequential time: it is not a lower bound for those two). The **projections** rows (forward
only) time work that every form of the layer does: for S6 its input projections
``Delta = softplus(W_Delta x + b)``, ``B(x)``, ``C(x)``; for the LRU its input projection,
readout and feedthrough, applied with the recurrence replaced by the identity
``h_t = b_t``. **Recurrence cost** = ``(sequential - no-scan) / floor``: what the
recurrence costs beyond one elementwise pass, in floors.

Each row also reports its **minor page faults per call** (median): how many fresh pages the
allocator mapped for the call's buffers. A page fault costs microseconds here, so a program
whose temporaries exceed glibc's mmap threshold (32 MiB at most) pays for thousands of them
in every call; the column says when a time is that and not arithmetic.

**Floor** -- each layer's recurrent form is compared with ``jit(lambda a, b, c: a * b + c)``
over three arrays of the recurrent state's full size over the sequence (``n x`` state
size: ``e * H`` for attention, ``N`` for the LTI scan, ``2 N`` reals for a complex state,
``D N`` for S6): the memory-bound cost of touching every state once, which no recurrence
that materializes its states can beat. ``ratio = time / floor time``, same size, same run.

Checks before timing (the script exits non-zero if one fails): every form against the
sequential form of the same layer run in float64 (``jax.enable_x64``), ``max|err| /
max|ref|`` <= 1e-4 (outputs) and <= 1e-3 (gradients; float32 sums of ``n`` terms); memax
against ours on mapped weights, <= 1e-4.

Timing: compile time is ``jit(f).lower(...).compile()`` wall time, reported separately and
excluded; steady state is the median of ``--repeats`` interleaved calls (>= 5), each ended
by ``jax.block_until_ready``.

Usage::

    .venv/bin/python benchmarks/bench_layers.py --quick   # smoke test, < 1 minute
    .venv/bin/python benchmarks/bench_layers.py           # full grid

Writes ``layers.json`` and ``layers.md`` (``layers_quick.*`` with ``--quick``) to ``--out``.
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path
from unittest import mock

from _common import Section
from _common import close_markdown
from _common import host_info
from _common import jax_backend_info
from _common import machine_text
from _common import make_parser
from _common import package_versions
from _common import prepare_output
from _common import reference
from _common import rel
from _common import report
from _common import setup_jax
from _common import sources_sha256

setup_jax(x64=False, quiet_peers=True)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from switchssm import rnn  # noqa: E402
from switchssm import scan  # noqa: E402
from switchssm.rnn import minimal  # noqa: E402
from switchssm.rnn import selective_ssm  # noqa: E402
from switchssm.rnn import ssm  # noqa: E402

DTYPE = jnp.float32
LTI_CHUNK = 8  # the chunked LTI form's chunk size (lti's default)
OUT_RTOL, GRAD_RTOL, PEER_RTOL = 1e-4, 1e-3, 1e-4

FULL = dict(
    attention_n=(256, 1024, 4096, 16384),
    attention_e=(16, 64),
    lti_n=(256, 1024, 4096, 16384),
    lti_N=16,
    peer_n=(1024, 16384),
    peer_D=64,
    peer_N=16,
)
QUICK = dict(
    attention_n=(64, 128),
    attention_e=(8,),
    lti_n=(64,),
    lti_N=4,
    peer_n=(64,),
    peer_D=8,
    peer_N=4,
)


# --------------------------------------------------------------------------------------
# Sections


def bench_attention(n, e, args):
    print(f"attention n={n}, e={e}", flush=True)
    key = jax.random.PRNGKey(n + e)
    p = rnn.init_linear_attention(key, e, e, dtype=DTYPE)
    x = jax.random.normal(jax.random.PRNGKey(1), (n, e), DTYPE)
    sec = Section(f"attention n={n} e={e}", args)
    forms = {
        "parallel": lambda pp, xx: rnn.linear_attention(pp, xx, form="parallel"),
        "recurrent": lambda pp, xx: rnn.linear_attention(pp, xx, form="recurrent"),
        "chunked": lambda pp, xx: rnn.linear_attention(pp, xx, form="chunked", chunk_size=64),
    }
    ref = reference(forms["recurrent"], p, x)
    for name, f in forms.items():
        sec.add(name, f, p, x, ref, state=e * e)  # the memory S_t: e x H = e^2
    return dict(section="attention", n=n, e=e, rows=sec.run(), checks=sec.checks)


def bench_lti(n, N, args):
    print(f"lti n={n}, N={N}", flush=True)
    p = rnn.init_lti(jax.random.PRNGKey(n), N, N, dtype=DTYPE)
    x = jax.random.normal(jax.random.PRNGKey(2), (n, N), DTYPE)
    sec = Section(f"lti n={n}", args)
    ref = reference(lambda pp, xx: rnn.lti(pp, xx, mode="sequential"), p, x)
    forms = {
        "scan sequential": lambda pp, xx: rnn.lti(pp, xx, mode="sequential"),
        "scan parallel": lambda pp, xx: rnn.lti(pp, xx, mode="parallel"),
        "fft convolution": lambda pp, xx: rnn.lti(pp, xx, form="convolution"),
        "chunked": lambda pp, xx: rnn.lti(pp, xx, form="chunked", chunk_size=LTI_CHUNK),
    }
    for name, f in forms.items():
        sec.add(name, f, p, x, ref, state=N)
    d = rnn.diagonalize(p)
    # The diagonal layer has its own parameters: its output is checked against the dense
    # reference, its gradient (w.r.t. its own parameters) only timed.
    sec.add(
        "diagonal sequential",
        lambda pp, xx: rnn.lti_diagonal(pp, xx, mode="sequential"),
        d,
        x,
        (ref[0], None),
        state=2 * N,  # complex states: 2N reals
    )
    return dict(section="lti", n=n, N=N, rows=sec.run(), checks=sec.checks)


def _memax_s6(p, D):
    import equinox as eqx
    from memax.equinox.semigroups.s6 import S6

    m = S6(D, D, jax.random.PRNGKey(0))
    row = lambda w: jnp.broadcast_to(w, (D, D))  # noqa: E731  (ours: one B, C row, N = 1)
    m = eqx.tree_at(lambda q: q.dt.layers[0].weight, m, p.step_weight)
    m = eqx.tree_at(lambda q: q.dt.layers[0].bias, m, p.step_bias)
    m = eqx.tree_at(lambda q: q.B.weight, m, row(p.input_weight))
    m = eqx.tree_at(lambda q: q.B.bias, m, jnp.broadcast_to(p.input_bias, (D,)))
    m = eqx.tree_at(lambda q: q.C.weight, m, row(p.output_weight))
    m = eqx.tree_at(lambda q: q.C.bias, m, jnp.broadcast_to(p.output_bias, (D,)))
    m = eqx.tree_at(lambda q: q.A_log, m, p.log_rate[:, 0])
    return m


def _memax_lru(p, D, N):
    import equinox as eqx
    from memax.equinox.semigroups.lru import LRU

    m = LRU(N, D, jax.random.PRNGKey(0))
    for f, v in (
        ("nu_log", p.nu_log),
        ("theta_log", p.theta_log),
        ("gamma_log", p.gamma_log),
        ("B_re", p.input_re),
        ("B_im", p.input_im),
        ("C_re", p.output_re),
        ("C_im", p.output_im),
        ("D", jnp.diagonal(p.feedthrough)),
    ):
        m = eqx.tree_at(lambda q, f=f: getattr(q, f), m, v)
    return m


def _memax_run(model, x):
    start = jnp.zeros((x.shape[0],), bool)
    return model(model.initialize_carry(), (x, start))[1]


def _without_scan(layer, identity: bool = False):
    """``layer(p, x)`` with :func:`switchssm.scan.diagonal_scan` replaced, while it is traced,
    by one elementwise pass ``a + b`` (the "no-scan" rows), or with ``identity`` by the
    identity recurrence ``h_t = b_t``, which drops the decays as well (the LRU's
    "projections" row).
    ``layer`` must be an unjitted private form that calls ``scan.diagonal_scan``, so that no
    cached trace bypasses the patch."""

    def run(p, x):
        pass_ = (lambda a, b, *_, **__: b) if identity else (lambda a, b, *_, **__: a + b)
        with mock.patch.object(scan, "diagonal_scan", pass_):
            return layer(p, x)

    return run


def _vs_memax(sec, tag, layer, p, x, memax_name, make_memax, *, state):
    """Add the sequential and parallel forms of ``layer`` (checked against its float64
    sequential form), then memax's model ``make_memax()`` on the same input; memax's largest
    relative error against our sequential float64 output."""
    import equinox as eqx

    ref = reference(lambda pp, xx: layer(pp, xx, mode="sequential"), p, x)
    for mode in ("sequential", "parallel"):
        f = lambda pp, xx, mode=mode: layer(pp, xx, mode=mode)  # noqa: E731
        sec.add(f"{tag} {mode}", f, p, x, ref, state=state)
    params, static = eqx.partition(make_memax(), eqx.is_array)
    f = lambda pp, xx: _memax_run(eqx.combine(pp, static), xx)  # noqa: E731
    return rel(sec.add(memax_name, f, params, x, state=state), ref[0])


def bench_peers(n, D, args):
    print(f"peers n={n}, D={D}", flush=True)
    x = jax.random.normal(jax.random.PRNGKey(3), (n, D), DTYPE)
    sec = Section(f"peers n={n}", args)
    out = {}

    # S6, one state per channel (memax's shape), zero skip (memax has none)
    s6p = rnn.init_s6(jax.random.PRNGKey(4), D, 1, dtype=DTYPE)
    s6p = s6p.replace(
        skip=jnp.zeros((D,), DTYPE),
        input_bias=jnp.full((1,), 0.3, DTYPE),
        output_bias=jnp.full((1,), -0.2, DTYPE),
    )
    out["memax_s6_vs_ours"] = _vs_memax(
        sec, "s6 N=1", rnn.s6, s6p, x, "memax S6", lambda: _memax_s6(s6p, D), state=D
    )
    s6_noscan = _without_scan(lambda pp, xx: selective_ssm._s6(pp, xx, "parallel", "zoh"))
    sec.add("s6 N=1 no-scan", s6_noscan, s6p, x, with_grad=False, state=D)
    s6_inputs = lambda pp, xx: selective_ssm._s6_inputs(pp, xx)[:3]  # noqa: E731
    sec.add("s6 N=1 projections", s6_inputs, s6p, x, with_grad=False, state=D)

    # LRU with N = D: memax's LRU.backward_map annotates its (D,) output as (N,), and
    # jaxtyping's runtime check rejects any N != D.
    lp = rnn.init_lru(jax.random.PRNGKey(5), D, D, state_dim=D, r_min=0.5, r_max=0.99, dtype=DTYPE)
    lp = lp.replace(feedthrough=jnp.diag(jnp.diagonal(lp.feedthrough)))  # memax: D is a vector
    out["memax_lru_vs_ours"] = _vs_memax(
        sec, "lru", rnn.lru, lp, x, "memax LRU", lambda: _memax_lru(lp, D, D), state=2 * D
    )
    lru_noscan = _without_scan(lambda pp, xx: ssm._lru.__wrapped__(pp, xx, "parallel"))
    sec.add("lru no-scan", lru_noscan, lp, x, with_grad=False, state=2 * D)
    lru_proj = _without_scan(lambda pp, xx: ssm._lru.__wrapped__(pp, xx, "parallel"), True)
    sec.add("lru projections", lru_proj, lp, x, with_grad=False, state=2 * D)

    # the project's cells and the Mamba block, same (n, D)
    mg = rnn.init_mingru(jax.random.PRNGKey(6), D, D, dtype=DTYPE)
    sec.add(
        "mingru sequential", lambda pp, xx: rnn.mingru(pp, xx, mode="sequential"), mg, x, state=D
    )
    h0 = jnp.zeros((D,), DTYPE)
    mg_noscan = _without_scan(
        lambda pp, xx: minimal._mingru_logit.__wrapped__(pp, xx, h0, "sequential")
    )
    sec.add("mingru no-scan", mg_noscan, mg, x, with_grad=False, state=D)
    sel = rnn.init_selective(jax.random.PRNGKey(7), D, D, dtype=DTYPE)
    sec.add(
        "selective sequential",
        lambda pp, xx: rnn.selective(pp, xx, mode="sequential"),
        sel,
        x,
        state=D,
    )
    sel_noscan = _without_scan(
        lambda pp, xx: minimal._selective.__wrapped__(pp, xx, h0, "sequential", "sigmoid")
    )
    sec.add("selective no-scan", sel_noscan, sel, x, with_grad=False, state=D)
    for k in ("memax_s6_vs_ours", "memax_lru_vs_ours"):
        sec.checks[k] = dict(out_rel_err=out[k], ok=bool(out[k] <= PEER_RTOL))
    return dict(section="peers", n=n, D=D, rows=sec.run(), checks=sec.checks)


def bench_mamba(n, D, N, args):
    """S6 with ``N`` states per channel and the whole Mamba block, sequential. A section of
    their own: their (n, D, N) buffers are 16-32x the peers' and, interleaved with them, would
    make every peer row pay for re-mapping pages that these rows' frees return to the OS."""
    print(f"mamba n={n}, D={D}, N={N}", flush=True)
    x = jax.random.normal(jax.random.PRNGKey(3), (n, D), DTYPE)
    sec = Section(f"mamba n={n}", args)
    s6n = rnn.init_s6(jax.random.PRNGKey(8), D, N, dtype=DTYPE)
    mb = rnn.init_mamba(jax.random.PRNGKey(9), D, D, state_dim=N, dtype=DTYPE)
    for name, layer, p, state in (
        ("s6", rnn.s6, s6n, D * N),
        ("mamba", rnn.mamba, mb, 2 * D * N),  # E = 2 D channels, N states each
    ):
        f = lambda pp, xx, layer=layer: layer(pp, xx, mode="sequential")  # noqa: E731
        sec.add(f"{name} N={N} sequential", f, p, x, reference(f, p, x), state=state)
    for name, private, p, state in (
        ("s6", selective_ssm._s6, s6n, D * N),
        ("mamba", selective_ssm._mamba, mb, 2 * D * N),
    ):
        noscan = _without_scan(lambda pp, xx, f=private: f(pp, xx, "parallel", "zoh"))
        sec.add(f"{name} N={N} no-scan", noscan, p, x, with_grad=False, state=state)
    return dict(section="mamba", n=n, D=D, N=N, rows=sec.run(), checks=sec.checks)


# --------------------------------------------------------------------------------------
# Reporting


def crossover(records, e):
    """n where parallel and recurrent times meet (log-log interpolation), or a bound."""
    recs = sorted(
        (r for r in records if r["section"] == "attention" and r["e"] == e), key=lambda r: r["n"]
    )
    res = {}
    for kind, suffix in (("forward", ""), ("grad", " | grad")):
        ratio = [
            (
                r["n"],
                math.log(
                    r["rows"]["parallel" + suffix]["median_s"]
                    / r["rows"]["recurrent" + suffix]["median_s"]
                ),
            )
            for r in recs
        ]
        value = None
        for (n0, l0), (n1, l1) in zip(ratio, ratio[1:], strict=False):
            if (l0 <= 0 < l1) or (l1 <= 0 < l0):
                t = l0 / (l0 - l1)
                value = float(math.exp(math.log(n0) + t * (math.log(n1) - math.log(n0))))
        if value is None:
            value = f"< {ratio[0][0]}" if ratio[0][1] > 0 else f"> {ratio[-1][0]}"
        res[kind] = value
    return res


def _fmt_n(v):
    return v if isinstance(v, str) else f"{v:.0f}"


def _version(name):
    from importlib.metadata import version

    return version(name)


def _ms(s):
    return f"{s * 1e3:.3g}"


def _faults(row):
    return f"{row['minflt_per_call']:.0f}" if "minflt_per_call" in row else "-"


def write_markdown(path: Path, result: dict):
    info = result["machine"]
    L = [f"# Sequence layers benchmark{' (quick)' if result['quick'] else ''}\n"]
    L.append(
        machine_text(result, f"{info['jax']} ({info['backend']})")
        + f". Wall time {result['wall_s']:.0f} s. float32; medians (ms) of interleaved calls; "
        "compile time excluded (its own column); ratio = time / floor of the same size (module "
        f"docstring). All checks pass: **{result['all_checks_pass']}**.\n"
    )
    for section in ("attention", "lti", "peers", "mamba"):
        recs = [r for r in result["records"] if r["section"] == section]
        if not recs:
            continue
        L.append(f"\n## {section}\n")
        L.append(
            "| size | row | fwd ms | fwd ratio | grad ms | grad ratio | compile s (fwd/grad) "
            "| rel. err. (out/grad) | page faults / call (fwd/grad) |"
        )
        L.append("|---|---|---|---|---|---|---|---|---|")
        for r in recs:
            size = " ".join(f"{k}={r[k]}" for k in ("n", "e", "N", "D") if k in r)
            for name, t in r["rows"].items():
                if name.endswith(" | grad") or name.startswith("floor"):
                    continue
                g = r["rows"].get(name + " | grad")
                c = r["checks"].get(name, {})
                err = (
                    "-"
                    if not c
                    else f"{c.get('out_rel_err', float('nan')):.1e}/"
                    + (f"{c['grad_rel_err']:.1e}" if "grad_rel_err" in c else "-")
                )
                faults = _faults(t)
                if g:
                    grad_cols = f"{_ms(g['median_s'])} | {g['ratio_to_floor']:.1f}"
                    comp = f"{t['compile_s']:.2f}/{g['compile_s']:.2f}"
                    faults += f"/{_faults(g)}"
                else:
                    grad_cols, comp = "- | -", f"{t['compile_s']:.2f}"
                L.append(
                    f"| {size} | {name} | {_ms(t['median_s'])} | {t['ratio_to_floor']:.1f} | "
                    f"{grad_cols} | {comp} | {err} | {faults} |"
                )
        if section == "peers":
            for r in recs:
                L.append(
                    f"\nmemax outputs vs ours (n={r['n']}): S6 "
                    f"{r['checks']['memax_s6_vs_ours']['out_rel_err']:.1e}, LRU "
                    f"{r['checks']['memax_lru_vs_ours']['out_rel_err']:.1e} (max rel.)"
                )
    close_markdown(path, L, result)


def _signed(ratio):
    """``+ 1.6x`` or ``- 2.0x`` (a no-scan row that is not a lower bound)."""
    return f"{'+' if round(ratio, 1) >= 0 else '-'} {abs(ratio):.1f}x"


def recurrence_cost(rows, name):
    """``(time - no-scan time) / floor`` of the forward row ``name``: what its recurrence
    costs beyond one elementwise pass, in floors (module docstring)."""
    noscan = rows[name.replace(" sequential", " no-scan")]
    return rows[name]["ratio_to_floor"] - noscan["ratio_to_floor"]


def observations(result):
    out = []
    recs = result["records"]
    for e in sorted({r["e"] for r in recs if r["section"] == "attention"}):
        c = result["crossover"][str(e)]
        out.append(
            f"attention e={e} (e^2 = {e * e}): parallel and recurrent forward times cross at "
            f"n ~ {_fmt_n(c['forward'])}, gradients at n ~ {_fmt_n(c['grad'])}."
        )
    for section, names in (
        ("attention", ("recurrent", "chunked")),
        ("lti", ("scan sequential", "chunked", "diagonal sequential", "fft convolution")),
        ("peers", ("s6 N=1 sequential", "lru sequential", "memax S6", "memax LRU")),
        ("mamba", None),  # all its rows (their names carry N)
    ):
        sel = [r for r in recs if r["section"] == section]
        if not sel:
            continue
        big = max(r["n"] for r in sel)
        for r in [r for r in sel if r["n"] == big]:
            size = ", ".join(f"{k}={r[k]}" for k in ("n", "e", "N", "D") if k in r)
            rows = names or [n for n in r["rows"] if not n.startswith("floor") and "|" not in n]
            parts = [f"{n} {r['rows'][n]['ratio_to_floor']:.1f}x" for n in rows if n in r["rows"]]
            out.append(f"{section} at {size}: time / floor: " + ", ".join(parts) + ".")
    for r in [r for r in recs if r["section"] in ("peers", "mamba")]:
        rw = r["rows"]
        parts = []
        for noscan in [n for n in rw if n.endswith(" no-scan")]:
            full = noscan.replace(" no-scan", " sequential")
            parts.append(
                f"{full.replace(' sequential', '')} {rw[full]['ratio_to_floor']:.1f}x = "
                f"{rw[noscan]['ratio_to_floor']:.1f}x (no-scan) "
                f"{_signed(recurrence_cost(rw, full))}"
                + (
                    f" (its projections alone {rw[proj]['ratio_to_floor']:.1f}x)"
                    if (proj := noscan.replace(" no-scan", " projections")) in rw
                    else ""
                )
            )
        if parts:
            out.append(
                f"{r['section']} n={r['n']}: forward time / floor = no-scan + recurrence cost: "
                + "; ".join(parts)
                + "."
            )
    for r in [r for r in recs if r["section"] == "peers"]:
        rw = r["rows"]
        out.append(
            f"peers n={r['n']}: memax S6 / ours sequential = "
            f"{rw['memax S6']['median_s'] / rw['s6 N=1 sequential']['median_s']:.2f} (fwd), "
            f"{rw['memax S6 | grad']['median_s'] / rw['s6 N=1 sequential | grad']['median_s']:.2f} "
            f"(grad); memax LRU / ours sequential = "
            f"{rw['memax LRU']['median_s'] / rw['lru sequential']['median_s']:.2f} (fwd), "
            f"{rw['memax LRU | grad']['median_s'] / rw['lru sequential | grad']['median_s']:.2f} "
            f"(grad); memax / ours parallel (both associative scans): S6 "
            f"{rw['memax S6']['median_s'] / rw['s6 N=1 parallel']['median_s']:.2f} (fwd), "
            f"{rw['memax S6 | grad']['median_s'] / rw['s6 N=1 parallel | grad']['median_s']:.2f}"
            f" (grad), LRU "
            f"{rw['memax LRU']['median_s'] / rw['lru parallel']['median_s']:.2f} (fwd), "
            f"{rw['memax LRU | grad']['median_s'] / rw['lru parallel | grad']['median_s']:.2f}"
            " (grad). A ratio above 1 means ours is faster."
        )
    return out


def main(argv=None):
    ap = make_parser(__doc__, "tiny sizes for smoke testing (< 1 min)")
    ap.add_argument("--repeats", type=int, default=None, help="timed rounds (default 7; quick 5)")
    ap.add_argument(
        "--size-budget-s",
        type=float,
        default=None,
        help="cap on timed seconds per size (default 40; quick 5)",
    )
    ap.add_argument("--sections", default="attention,lti,peers,mamba")
    args = ap.parse_args(argv)
    grid = QUICK if args.quick else FULL
    args.repeats = args.repeats or (5 if args.quick else 7)
    args.size_budget_s = args.size_budget_s or (5.0 if args.quick else 40.0)
    if args.repeats < 5:
        ap.error("--repeats must be >= 5")
    sections = args.sections.split(",")
    out, stem = prepare_output(args, "layers")
    t0 = time.perf_counter()
    info = dict(
        switchssm_sources_sha256=sources_sha256(),
        **host_info(),
        **package_versions("jax", "jaxlib", "numpy", "equinox"),
        memax=_version("memax"),
        **jax_backend_info("float32"),
    )
    records = []
    if "attention" in sections:
        for e in grid["attention_e"]:
            for n in grid["attention_n"]:
                records.append(bench_attention(n, e, args))
    if "lti" in sections:
        for n in grid["lti_n"]:
            records.append(bench_lti(n, grid["lti_N"], args))
    if "peers" in sections:
        for n in grid["peer_n"]:
            records.append(bench_peers(n, grid["peer_D"], args))
    if "mamba" in sections:
        for n in grid["peer_n"]:
            records.append(bench_mamba(n, grid["peer_D"], grid["peer_N"], args))
    result = dict(
        machine=info, quick=args.quick, args=vars(args), grid=grid, records=records, notes=[]
    )
    result["all_checks_pass"] = bool(all(c["ok"] for r in records for c in r["checks"].values()))
    result["crossover"] = {
        str(e): crossover(records, e) for e in grid["attention_e"] if "attention" in sections
    }
    result["observations"] = observations(result)
    result["loadavg_end"] = os.getloadavg()
    if args.quick:
        result["notes"].append("--quick: tiny sizes, dispatch-dominated; checks only.")
    load = max(info["loadavg_start"][0], result["loadavg_end"][0])
    if load >= (os.cpu_count() or 1):
        result["notes"].append(
            f"1-minute load average reached {load:.1f} on {info['cpu_count']} CPUs: the machine "
            "was shared; absolute times are inflated and ratios noisy. Rerun on an idle machine "
            "before quoting numbers."
        )
    status = report(out, stem, result, write_markdown, t0)
    if status:
        bad = {
            r["section"] + str(r["n"]): {k: c for k, c in r["checks"].items() if not c["ok"]}
            for r in records
        }
        print("CHECKS FAILED:", {k: v for k, v in bad.items() if v})
    return status


if __name__ == "__main__":
    sys.exit(main())
