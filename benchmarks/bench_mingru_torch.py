#!/usr/bin/env python
"""The positive-state minGRU against minGRU-pytorch on identical weights, in one process.

minGRU-pytorch (``pip install mingru-pytorch``, PyTorch on the CPU) computes the log-space
minGRU of Feng et al. (2024) with Heinsen's ``cumsum`` + ``logcumsumexp`` scan; switchssm's
``mingru(space="log")`` runs the same recurrence sequentially in linear space (a convex
combination: no log needed) or, in parallel mode, as an associative scan in log space. The
weights are mapped (``to_hidden_and_gate`` -> ``candidate_weight``, ``gate_weight``; no
biases; the same ``h_0 = 1/2``), outputs are checked against a float64 NumPy loop first, then
forward and gradient (of ``sum(h)`` w.r.t. the weights) are timed at ``T`` in
``{1024, 16384, 262144, 10^6}``, ``D = H = 8``, float32, one sequence. Also reported: the
switchssm logit minGRU on the same shapes (the positive-state form's target is at most 3x its
time) and each implementation's float32 error against float64.

minGRU-pytorch and torch are not test dependencies (CI stays light): install them next to the
package to run this (on this project's machines ``pip install torch==2.13.0`` takes a local
CPU build; a bare ``pip install torch`` may download a multi-GB CUDA build)::

    .venv/bin/pip install torch==2.13.0 mingru-pytorch
    .venv/bin/python benchmarks/bench_mingru_torch.py          # a few minutes
    .venv/bin/python benchmarks/bench_mingru_torch.py --quick  # T = 1024 only

Writes ``mingru_torch.json`` and ``mingru_torch.md`` (``_quick`` with ``--quick``) to
``--out``. Without torch it writes a result that says so and exits 0.
"""

from __future__ import annotations

import statistics
import time

from _common import _pkg_version
from _common import host_info
from _common import make_parser
from _common import package_versions
from _common import prepare_output
from _common import setup_jax
from _common import timed
from _common import write_results

setup_jax(x64=False, quiet_peers=False)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from switchssm.rnn import MinGRUParams  # noqa: E402
from switchssm.rnn import g_activation  # noqa: E402
from switchssm.rnn import mingru  # noqa: E402

D = 8
H0 = 0.5
FULL_T = (1024, 16384, 262144, 1_000_000)
QUICK_T = (1024,)


def numpy_reference(Wh, Wz, x, h0):
    """float64 loop: ``h_t = (1 - z_t) h_{t-1} + z_t g(W_h x_t)``, ``z_t = sigmoid(W_z x_t)``."""
    x = np.asarray(x, np.float64)
    pre_h, pre_z = x @ Wh.T.astype(np.float64), x @ Wz.T.astype(np.float64)
    cand = np.where(pre_h >= 0, pre_h + 0.5, 1.0 / (1.0 + np.exp(-pre_h)))
    z = 1.0 / (1.0 + np.exp(-pre_z))
    h = np.empty_like(cand)
    prev = np.full(cand.shape[1], h0)
    for t in range(cand.shape[0]):
        prev = (1.0 - z[t]) * prev + z[t] * cand[t]
        h[t] = prev
    return h


def median_time(fn, repeats):
    timed(fn)  # warm
    return statistics.median(timed(fn)[0] for _ in range(repeats))


def bench_T(T, args, torch, minGRU):
    print(f"T = {T}", flush=True)
    torch.manual_seed(0)
    model = minGRU(D, expansion_factor=1.0)
    W = model.to_hidden_and_gate.weight.detach().numpy()  # (2H, D): hidden rows, then gate
    Wh, Wz = W[:D], W[D:]
    params = MinGRUParams(jnp.asarray(Wz), jnp.zeros(D, jnp.float32), jnp.asarray(Wh),
                          jnp.zeros(D, jnp.float32))  # fmt: skip
    rng = np.random.default_rng(T)
    x = rng.standard_normal((T, D)).astype(np.float32)
    xt = torch.from_numpy(x)[None]
    h0_t = torch.full((1, 1, D), H0)
    h0 = jnp.full((D,), H0, jnp.float32)
    xj = jnp.asarray(x)

    ref = numpy_reference(Wh, Wz, x, H0)
    scale = np.abs(ref).max()
    out = {"T": T}

    def torch_fwd():
        with torch.no_grad():
            return model(xt, prev_hidden=h0_t)

    def torch_grad():
        model.zero_grad()
        model(xt, prev_hidden=h0_t).sum().backward()
        return model.to_hidden_and_gate.weight.grad

    h_torch = torch_fwd()[0].numpy()
    out["torch_rel_err"] = float(np.abs(h_torch - ref).max() / scale)

    fns = {}
    for mode in ("sequential", "parallel"):
        f = jax.jit(lambda p, x, mode=mode: mingru(p, x, h0, mode=mode, space="log"))
        g = jax.jit(jax.grad(lambda p, x, mode=mode: jnp.sum(mingru(p, x, h0, mode=mode,
                                                                     space="log"))))  # fmt: skip
        t0 = time.perf_counter()
        h = np.asarray(jax.block_until_ready(f(params, xj)))
        out[f"compile_fwd_{mode}_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        jax.block_until_ready(g(params, xj))
        out[f"compile_grad_{mode}_s"] = time.perf_counter() - t0
        out[f"switchssm_{mode}_rel_err"] = float(np.abs(h - ref).max() / scale)
        fns[f"switchssm positive {mode} fwd"] = lambda f=f: f(params, xj)
        fns[f"switchssm positive {mode} grad"] = lambda g=g: g(params, xj)
    flog = jax.jit(lambda p, x: mingru(p, x, mode="sequential", space="logit"))
    glog = jax.jit(jax.grad(lambda p, x: jnp.sum(mingru(p, x, mode="sequential", space="logit"))))
    jax.block_until_ready(flog(params, xj))
    jax.block_until_ready(glog(params, xj))
    fns["switchssm logit sequential fwd"] = lambda: flog(params, xj)
    fns["switchssm logit sequential grad"] = lambda: glog(params, xj)
    fns["minGRU-pytorch fwd"] = torch_fwd
    fns["minGRU-pytorch grad"] = torch_grad

    # gradients: ours against the same cell in float64; torch's against ours (reported only:
    # its float32 log-space scan drifts with T, see the h errors)
    gt = torch_grad().numpy()

    def grad_of(p, x):
        g = jax.grad(lambda p: jnp.sum(mingru(p, x, jnp.full((D,), H0, x.dtype), mode="sequential",
                                              space="log")))(p)  # fmt: skip
        return np.concatenate([np.asarray(g.candidate_weight, np.float64),
                               np.asarray(g.gate_weight, np.float64)])  # fmt: skip

    gj = grad_of(params, xj)
    with jax.enable_x64(True):
        p64 = jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a, np.float64)), params)
        g64 = grad_of(p64, jnp.asarray(x, jnp.float64))
    out["switchssm_grad_rel_err"] = float(np.abs(gj - g64).max() / np.abs(g64).max())
    out["torch_grad_rel_err"] = float(np.abs(gt - g64).max() / np.abs(g64).max())

    # the cell's work without its recurrence: projections, gate and candidate, one fused
    # combination with h0 (what any implementation of the cell must at least do)
    def without_recurrence(p, x):
        z = jax.nn.sigmoid(x @ p.gate_weight.T)
        return (1.0 - z) * h0 + z * g_activation(x @ p.candidate_weight.T)

    nofloor = jax.jit(without_recurrence)
    jax.block_until_ready(nofloor(params, xj))
    fns["cell without recurrence"] = lambda: nofloor(params, xj)

    reps = args.repeats if T < 262144 else max(3, args.repeats // 2)
    times = {}
    for name, fn in fns.items():
        if name.startswith("minGRU-pytorch"):  # torch returns when done: no blocking needed
            fn()
            times[name] = statistics.median(_torch_time(fn) for _ in range(reps))
        else:
            times[name] = median_time(fn, reps)
    out["times_s"] = times
    best_fwd = min(
        times["switchssm positive sequential fwd"], times["switchssm positive parallel fwd"]
    )
    best_grad = min(times["switchssm positive sequential grad"],
                    times["switchssm positive parallel grad"])  # fmt: skip
    out["torch_over_switchssm_fwd"] = times["minGRU-pytorch fwd"] / best_fwd
    out["torch_over_switchssm_grad"] = times["minGRU-pytorch grad"] / best_grad
    out["positive_over_logit_fwd"] = (
        times["switchssm positive sequential fwd"] / times["switchssm logit sequential fwd"]
    )
    out["ok"] = bool(out["switchssm_sequential_rel_err"] < 1e-4
                     and out["switchssm_parallel_rel_err"] < 1e-4
                     and out["switchssm_grad_rel_err"] < 1e-3)  # fmt: skip
    return out


def _torch_time(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def write_markdown(path, result):
    L = [f"# minGRU: switchssm vs minGRU-pytorch{' (quick)' if result['quick'] else ''}\n"]
    if result.get("skipped"):
        L.append(result["skipped"])
        path.write_text("\n".join(L) + "\n")
        return
    load = ", ".join(f"{v:.1f}" for v in result["machine"]["loadavg_start"])
    L.append(
        f"float32, D = H = {D}, one sequence, h_0 = 1/2, identical weights; "
        f"{result['machine']['cpu_count']} CPUs, load {load} at start; torch "
        f"{result['versions'].get('torch')}, mingru-pytorch "
        f"{result['versions'].get('mingru-pytorch')}, "
        f"jax {result['versions'].get('jax')}. Medians (ms); ratios are minGRU-pytorch time / the "
        "faster switchssm form. Relative errors: max |h - h64| / max |h64| against a float64 "
        "NumPy loop.\n"
    )
    L.append("| T | switchssm seq fwd | par fwd | seq grad | par grad | logit seq fwd | "
             "torch fwd | torch grad | torch/ours fwd | torch/ours grad | positive/logit fwd | "
             "err switchssm seq | err switchssm par | err torch | grad err switchssm | "
             "grad err torch | cell w/o recurrence |")  # fmt: skip
    L.append("|---|" + "---|" * 16)
    for r in result["records"]:
        t = {k: 1e3 * v for k, v in r["times_s"].items()}
        L.append(
            f"| {r['T']} | {t['switchssm positive sequential fwd']:.3g} | "
            f"{t['switchssm positive parallel fwd']:.3g} | "
            f"{t['switchssm positive sequential grad']:.3g} | "
            f"{t['switchssm positive parallel grad']:.3g} | "
            f"{t['switchssm logit sequential fwd']:.3g} | {t['minGRU-pytorch fwd']:.3g} | "
            f"{t['minGRU-pytorch grad']:.3g} | {r['torch_over_switchssm_fwd']:.1f} | "
            f"{r['torch_over_switchssm_grad']:.1f} | {r['positive_over_logit_fwd']:.2f} | "
            f"{r['switchssm_sequential_rel_err']:.1e} | {r['switchssm_parallel_rel_err']:.1e} | "
            f"{r['torch_rel_err']:.1e} | {r['switchssm_grad_rel_err']:.1e} | "
            f"{r['torch_grad_rel_err']:.1e} | {t['cell without recurrence']:.3g} |"
        )
    big = [r for r in result["records"] if r["T"] == 1_000_000]
    if big:
        r = big[0]
        L.append("\n## Targets (T = 10^6)\n")
        fast = min(r["torch_over_switchssm_fwd"], r["torch_over_switchssm_grad"])
        L.append(
            f"- at least 20x faster than minGRU-pytorch: forward "
            f"{r['torch_over_switchssm_fwd']:.1f}x, gradient {r['torch_over_switchssm_grad']:.1f}x"
            f" -> {'met' if fast >= 20 else '**missed**'}"
        )
        L.append(f"- positive-state form at most 3x the logit form: "
                 f"{r['positive_over_logit_fwd']:.2f}x -> "
                 f"{'met' if r['positive_over_logit_fwd'] <= 3 else '**missed**'}")  # fmt: skip
    path.write_text("\n".join(L) + "\n")


def main(argv=None):
    ap = make_parser(__doc__, "T = 1024 only")
    ap.add_argument("--repeats", type=int, default=5, help="timed calls per row (default 5)")
    args = ap.parse_args(argv)
    out, stem = prepare_output(args, "mingru_torch")
    versions = package_versions("jax", "jaxlib")
    versions.update({n: _pkg_version(n) for n in ("torch", "mingru-pytorch")})  # may be absent
    result = dict(quick=args.quick, machine=host_info(), versions=versions)
    try:
        import torch
        from minGRU_pytorch import minGRU
    except ImportError as exc:
        result["skipped"] = (f"skipped: {exc}; install the peer with `pip install torch==2.13.0 "
                             "mingru-pytorch` (see the module docstring)")  # fmt: skip
        write_results(out, stem, result, write_markdown)
        print(result["skipped"])
        return 0
    t0 = time.perf_counter()
    result["records"] = [
        bench_T(T, args, torch, minGRU) for T in (QUICK_T if args.quick else FULL_T)
    ]
    result["seconds"] = time.perf_counter() - t0
    result["all_checks_pass"] = all(r["ok"] for r in result["records"])
    write_results(out, stem, result, write_markdown)
    print(f"wrote {out / (stem + '.md')}; checks {'pass' if result['all_checks_pass'] else 'FAIL'}")
    return 0 if result["all_checks_pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
