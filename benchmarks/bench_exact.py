#!/usr/bin/env python
"""Exact inference, side by side: switchssm vs dynamax, hmmlearn and NumPyro enumeration.

One process, one problem per grid cell, float64 throughout (``jax_enable_x64``):

* **smoother** -- ``switchssm.inference.smooth(..., mode="sequential")`` on the
  always-emitting switching model (categorical or Gaussian emission, scalar Gaussian cue)
  against the equivalent dense 2K-state HMM over ``(z_t, s_t)``:
  dynamax ``hmm_smoother`` (sequential), dynamax ``parallel_hmm_smoother`` (where XLA's
  planned memory fits under ``--mem-cap-gb``), and hmmlearn's forward-backward
  (``score_samples``: log-likelihood and posteriors in one pass; both the ``"scaling"`` and
  ``"log"`` implementations are timed and the faster one is the headline).
  The peers get the ``(T, 2K)`` log-likelihood matrix precomputed (not timed); ours computes
  its log evidence from the raw observations inside the timed call.
* **log-likelihood + gradient** -- ``jax.value_and_grad`` of
  ``switchssm.inference.log_likelihood`` w.r.t. ``switch_prob`` against NumPyro's
  funsor-backed enumerated ``log_density`` of ``enum(config_enumerate(switching_model))``.
* **scaling of ours to T = 10^6** -- time and memory (XLA's planned buffer sizes from
  ``compiled.memory_analysis()`` and a sampled peak-RSS delta) at T = 10^5 and 10^6.

Answers are checked before anything is timed (log-likelihood relative error, max abs error of
filtered/smoothed marginals). Compile time is first call minus steady-state median; steady
state is the median of ``--repeats`` calls, interleaved round-robin across implementations
so that load changes on a shared machine hit all of them alike. Peers that would take longer
than ``--max-call-s`` per call (extrapolated linearly from the previous T) or whose XLA plan
exceeds ``--mem-cap-gb`` are skipped with the reason recorded.

Usage::

    .venv/bin/python benchmarks/bench_exact.py --quick          # smoke test, < 1 minute
    .venv/bin/python benchmarks/bench_exact.py                  # full grid
    .venv/bin/python benchmarks/bench_exact.py --out /tmp/res   # results elsewhere

Writes ``exact.json`` and ``exact.md`` (``exact_quick.*`` with ``--quick``) to ``--out``
(default ``benchmarks/results``).
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
from pathlib import Path

from _common import CUE_MEANS  # set-up, timing, output and the problem shared with bench_fit
from _common import CUE_SCALE  # set-up, timing, output and the problem shared with bench_fit
from _common import GAUSS_DIM  # set-up, timing, output and the problem shared with bench_fit
from _common import NUM_SYMBOLS  # set-up, timing, output and the problem shared with bench_fit
from _common import REPO  # set-up, timing, output and the problem shared with bench_fit
from _common import RHO  # set-up, timing, output and the problem shared with bench_fit
from _common import announce  # set-up, timing, output and the problem shared with bench_fit
from _common import close_markdown  # set-up, timing, output and the problem shared with bench_fit
from _common import hmm_chain  # set-up, timing, output and the problem shared with bench_fit
from _common import machine_info  # set-up, timing, output and the problem shared with bench_fit
from _common import machine_text  # set-up, timing, output and the problem shared with bench_fit
from _common import make_params  # set-up, timing, output and the problem shared with bench_fit
from _common import make_parser  # set-up, timing, output and the problem shared with bench_fit
from _common import prepare_output  # set-up, timing, output and the problem shared with bench_fit
from _common import proc_field  # set-up, timing, output and the problem shared with bench_fit
from _common import report  # set-up, timing, output and the problem shared with bench_fit
from _common import run_timings  # set-up, timing, output and the problem shared with bench_fit
from _common import sample_numpy  # set-up, timing, output and the problem shared with bench_fit
from _common import setup_jax  # set-up, timing, output and the problem shared with bench_fit
from _common import timed  # set-up, timing, output and the problem shared with bench_fit

setup_jax(x64=True, quiet_peers=True)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import scipy.stats as sstats  # noqa: E402

from switchssm.inference import log_likelihood  # noqa: E402
from switchssm.inference import smooth  # noqa: E402
from switchssm.models import CategoricalEmission  # noqa: E402
from switchssm.models import SwitchingParams  # noqa: E402
from switchssm.models import switching_model  # noqa: E402

# Tolerances for "same answer" (float64). The log-likelihood is a sum of T per-step terms
# of size O(1), so its relative error grows like sqrt(T) * 1e-16; 1e-9 leaves ample room.
LL_RTOL = 1e-9
MARG_ATOL = 1e-8  # marginals are probabilities in [0, 1]
# dynamax's *smoothed* marginals drift from the exact ones as K and T grow (4e-8 at K=64,
# T=1e3; 2e-7 at T=1e4; 4e-6 at T=1e5, measured here), while switchssm's probability-space,
# log-space and dense-parallel smoothers agree with each other to ~1e-14 and with brute force
# (tests/inference/test_exact.py). The drift is dynamax's float64 rounding accumulating in
# its smoother, not a disagreement about the answer: allow it, and report it in the table.
SMOOTHED_ATOL_DYNAMAX = 1e-5
GRAD_RTOL = 1e-7  # gradients through two different recursions (ours vs funsor contraction)
FD_RTOL = 1e-5  # central finite difference, step 1e-6


# --------------------------------------------------------------------------------------
# Problem set-up (numpy / scipy only: independent of the code under test; the parameters,
# sampler and the HMM's chain are in _common, shared with bench_fit)


def hmm_equivalent(params: SwitchingParams, y, u):
    """Dense 2K-state HMM over (z_t, s_t), state index z * K + s (scipy likelihoods)."""
    init, trans = hmm_chain(params)
    em = params.emission
    if isinstance(em, CategoricalEmission):
        ll = np.log(np.asarray(em.probs)).T[y]
    else:
        means, cov = np.asarray(em.means), np.asarray(em.cov)
        ll = np.stack([sstats.multivariate_normal.logpdf(y, m, cov) for m in means], axis=1)
    cl = sstats.norm.logpdf(u[:, None], CUE_MEANS[None, :], CUE_SCALE)  # (T, 2)
    lik = np.concatenate([ll + cl[:, :1], ll + cl[:, 1:]], axis=1)
    return init, trans, lik


# --------------------------------------------------------------------------------------
# Peers


def _hmmlearn_class():
    from hmmlearn.base import BaseHMM

    class FixedLikelihoodHMM(BaseHMM):
        """hmmlearn HMM whose per-step log-likelihoods are a given (T, n) matrix."""

        lik = None

        def _compute_log_likelihood(self, X):
            return self.lik

        def _init(self, X, lengths=None):
            pass

        def _check(self):
            pass

    return FixedLikelihoodHMM


def make_hmmlearn(init, trans, lik, implementation):
    hl = _hmmlearn_class()(n_components=len(init), implementation=implementation)
    hl.startprob_, hl.transmat_, hl.lik = init, trans, lik
    X = np.zeros((len(lik), 1))
    return lambda: hl.score_samples(X)  # one forward-backward: (log_prob, posteriors)


def numpyro_value_and_grad(params: SwitchingParams, model_fn=switching_model):
    """value_and_grad w.r.t. switch_prob of NumPyro's enumerated log density."""
    from numpyro.contrib.funsor import config_enumerate
    from numpyro.contrib.funsor import enum
    from numpyro.contrib.funsor import log_density

    model = enum(config_enumerate(model_fn), first_available_dim=-1)

    def f(rho, y, u):
        return log_density(model, (params.replace(switch_prob=rho),), dict(y=y, u=u), {})[0]

    return jax.value_and_grad(f)


# --------------------------------------------------------------------------------------
# Measurement helpers


def xla_bytes(jitted, *args) -> dict:
    """Buffer sizes XLA plans for one call (arguments, outputs, temporaries)."""
    t0 = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    compile_s = time.perf_counter() - t0
    m = compiled.memory_analysis()
    d = dict(
        argument_bytes=int(m.argument_size_in_bytes),
        output_bytes=int(m.output_size_in_bytes),
        temp_bytes=int(m.temp_size_in_bytes),
    )
    d["total_bytes"] = d["argument_bytes"] + d["output_bytes"] + d["temp_bytes"]
    return d, compiled, compile_s


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_delta(fn) -> int:
    """Peak resident-set growth during one call, sampled every ~1 ms from another thread.

    Approximate (the allocator may reuse freed pages), but independent of JAX's own accounting.
    """
    base = _rss_bytes()
    peak = [base]
    done = threading.Event()

    def poll():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.001)

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    jax.block_until_ready(fn())
    done.set()
    th.join()
    peak[0] = max(peak[0], _rss_bytes())
    return peak[0] - base


def mem_available_bytes() -> int:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes, or 8 GiB where it cannot be read."""
    kib = proc_field("/proc/meminfo", "MemAvailable:")
    return 8 * 2**30 if kib is None else int(kib.split()[0]) * 1024


# --------------------------------------------------------------------------------------
# One grid cell


def _marg_errors(post, filt, smo, K):
    """Max abs errors of ours vs a (T, 2K) filtered/smoothed marginal from a peer."""
    smo = np.asarray(smo)
    e = dict(
        smoothed_s=float(np.max(np.abs(np.asarray(post.smoothed_s) - (smo[:, :K] + smo[:, K:])))),
        smoothed_z=float(np.max(np.abs(np.asarray(post.smoothed_z) - smo[:, K:].sum(1)))),
    )
    if filt is not None:
        filt = np.asarray(filt)
        e["filtered_s"] = float(
            np.max(np.abs(np.asarray(post.filtered_s) - (filt[:, :K] + filt[:, K:])))
        )
        e["filtered_z"] = float(np.max(np.abs(np.asarray(post.filtered_z) - filt[:, K:].sum(1))))
    return e


def _check(name, ll_ours, ll_peer, marg=None):
    rel = abs(float(ll_peer) - float(ll_ours)) / max(abs(float(ll_ours)), 1e-300)
    ok = bool(np.isfinite(float(ll_peer)) and rel <= LL_RTOL)
    rec = dict(loglik_rel_err=rel)
    if marg is not None:
        rec["marginal_max_abs_err"] = marg
        tol = {
            k: (
                SMOOTHED_ATOL_DYNAMAX
                if name == "dynamax" and k.startswith("smoothed")
                else MARG_ATOL
            )
            for k in marg
        }
        ok = ok and all(np.isfinite(v) and v <= tol[k] for k, v in marg.items())
    rec["agree"] = ok
    if not ok:
        print(f"    !! {name} disagrees with ours: {rec}", flush=True)
    return rec


def predicted_too_slow(prev, name, K, T, cap):
    """Skip reason if the last measured T for this peer, scaled linearly, exceeds cap."""
    if (name, K) not in prev:
        return None
    T0, t0 = prev[(name, K)]
    pred = t0 * T / T0
    if pred > cap:
        return (
            f"skipped: predicted {pred:.1f} s per call (linear from {t0:.2f} s at T={T0}) "
            f"> --max-call-s={cap:g}"
        )
    return None


def compile_peer(cell, kind, name, fn, fn_args, args, prev, skipped_kind, reason=None):
    """Compile a JAX peer ahead of time (for its memory plan), unless it is skipped.

    Skipped (the reason recorded as ``cell[kind][name]``; ``None`` returned) if ``reason`` is
    given, if it is predicted slower than ``--max-call-s``, if it was skipped for memory at a
    smaller T, or if XLA plans more than ``--mem-cap-gb`` for it (remembered in
    ``skipped_kind`` for the larger T of this K). Otherwise (compiled, compile seconds); the
    plan is recorded as ``cell[f"{kind}_xla_bytes_{name}"]``.
    """
    K, T = cell["K"], cell["T"]
    reason = predicted_too_slow(prev, name, K, T, args.max_call_s) or reason
    if not reason and skipped_kind.get((name, K)):
        reason = skipped_kind[(name, K)] + " (at a smaller T)"
    if not reason:
        t0 = time.perf_counter()
        mem, compiled, _ = xla_bytes(jax.jit(fn), *fn_args)
        compile_s = time.perf_counter() - t0
        cell[f"{kind}_xla_bytes_{name}"] = mem
        if mem["total_bytes"] > args.mem_cap_gb * 2**30:
            reason = (
                f"skipped: XLA plans {mem['total_bytes'] / 2**30:.1f} GiB "
                f"> --mem-cap-gb={args.mem_cap_gb:g}"
            )
            skipped_kind[(name, K)] = reason
    if reason:
        cell[kind][name] = dict(skipped=reason)
        return None
    return compiled, compile_s


def bench_cell(params, K, T, emission, args, prev, skipped_kind, with_peers, numpyro_here):
    seed = 17 + K + T
    y, u = sample_numpy(params, T, seed)
    y_j, u_j = jnp.asarray(y), jnp.asarray(u)
    cell = dict(K=K, T=T, emission=emission, peers=with_peers, checks={}, smoother={}, grad={})
    print(f"  K={K:3d} T={T:>8d} ({emission})", flush=True)

    # ---- ours: smoother
    def ours_smooth():
        return smooth(params, y_j, u_j, mode="sequential")

    if not with_peers:  # switchssm-only sizes: make sure the plan fits before running it
        plan, _, _ = xla_bytes(
            jax.jit(functools.partial(smooth, mode="sequential")), params, y_j, u_j
        )
        if plan["total_bytes"] > 0.6 * mem_available_bytes():
            reason = (
                f"skipped: XLA plans {plan['total_bytes'] / 2**30:.1f} GiB > 60% of "
                f"MemAvailable {mem_available_bytes() / 2**30:.1f} GiB"
            )
            print(f"    {reason}", flush=True)
            return None, reason

    first, post = timed(ours_smooth)
    smooth_impls = {"switchssm": (ours_smooth, first)}
    ll_ours = float(post.log_likelihood)
    cell["log_likelihood"] = ll_ours
    finite = bool(
        np.isfinite(ll_ours)
        and np.all(np.isfinite(np.asarray(post.smoothed_s)))
        and np.all(np.isfinite(np.asarray(post.filtered_s)))
    )
    cell["checks"]["switchssm_finite"] = finite

    # ---- ours: log-likelihood + gradient w.r.t. switch_prob
    ours_vg = jax.jit(
        jax.value_and_grad(lambda rho, y, u: log_likelihood(params.replace(switch_prob=rho), y, u))
    )
    rho0 = jnp.float64(RHO)

    def ours_grad():
        return ours_vg(rho0, y_j, u_j)

    first_g, (v_ours, g_ours) = timed(ours_grad)
    grad_impls = {"switchssm": (ours_grad, first_g)}
    cell["grad_value"] = float(g_ours)
    if T <= 10**5:  # central finite difference of our own log-likelihood (cheap sanity check)
        h = 1e-6
        fd = (float(ours_vg(rho0 + h, y_j, u_j)[0]) - float(ours_vg(rho0 - h, y_j, u_j)[0])) / (
            2 * h
        )
        rel = abs(fd - float(g_ours)) / max(abs(fd), 1e-300)
        cell["checks"]["grad_vs_finite_difference"] = dict(rel_err=rel, agree=bool(rel <= FD_RTOL))
    cell["checks"]["value_and_grad_loglik_matches_smooth"] = bool(
        abs(float(v_ours) - ll_ours) <= LL_RTOL * abs(ll_ours)
    )

    if with_peers:
        from dynamax.hidden_markov_model import hmm_smoother
        from dynamax.hidden_markov_model import parallel_hmm_smoother

        init, trans, lik = hmm_equivalent(params, y, u)
        init_j, trans_j, lik_j = map(jnp.asarray, (init, trans, lik))

        def add_dynamax(name, fn, compile_s=0.0):
            """Check a dynamax smoother against ours, then queue it for timing; the compile
            time of one compiled ahead of time is added to its first call, so that "compile"
            means the same for every implementation."""
            f, ref = timed(fn)
            marg = _marg_errors(post, ref.filtered_probs, ref.smoothed_probs, K)
            cell["checks"][name] = _check(name, ll_ours, ref.marginal_loglik, marg)
            smooth_impls[name] = (fn, f + compile_s)

        # dynamax sequential
        reason = predicted_too_slow(prev, "dynamax", K, T, args.max_call_s)
        if reason:
            cell["smoother"]["dynamax"] = dict(skipped=reason)
        else:
            add_dynamax("dynamax", lambda: hmm_smoother(init_j, trans_j, lik_j))

        # dynamax parallel (associative scan; O(T (2K)^2) memory)
        quick_skip = None
        if args.quick and T != args.quick_parallel_T:
            # (its compilation, ~5 s, dominates the quick run; one check per run is enough)
            quick_skip = "skipped: one T per --quick run"
        par = compile_peer(
            cell, "smoother", "dynamax_parallel", parallel_hmm_smoother, (init_j, trans_j, lik_j),
            args, prev, skipped_kind, reason=quick_skip,
        )  # fmt: skip
        if par:
            par_compiled, par_compile_s = par
            add_dynamax(
                "dynamax_parallel", lambda: par_compiled(init_j, trans_j, lik_j), par_compile_s
            )

        # hmmlearn, both implementations
        for impl in ("scaling", "log"):
            name = f"hmmlearn_{impl}"
            reason = predicted_too_slow(prev, name, K, T, args.max_call_s)
            if reason:
                cell["smoother"][name] = dict(skipped=reason)
                continue
            fn = make_hmmlearn(init, trans, lik, impl)
            f, (lp, gamma) = timed(fn)
            cell["checks"][name] = _check(name, ll_ours, lp, _marg_errors(post, None, gamma, K))
            smooth_impls[name] = (fn, f)

        # NumPyro enumerated log-likelihood + gradient
        if not numpyro_here:
            cell["grad"]["numpyro_enum"] = dict(skipped="skipped: not in this grid (--quick)")
        else:
            npr = compile_peer(
                cell, "grad", "numpyro_enum", numpyro_value_and_grad(params), (rho0, y_j, u_j),
                args, prev, skipped_kind,
            )  # fmt: skip
            if npr:
                compiled, lower_compile_s = npr

                def npf():
                    return compiled(rho0, y_j, u_j)

                f, (v_np, g_np) = timed(npf)
                rec = _check("numpyro_enum", ll_ours, v_np)
                rec["grad"] = float(g_np)
                rec["grad_finite"] = bool(np.isfinite(float(g_np)))
                rec["grad_rel_err"] = abs(float(g_np) - float(g_ours)) / max(
                    abs(float(g_ours)), 1e-300
                )
                rec["grad_agree"] = bool(rec["grad_rel_err"] <= GRAD_RTOL)
                rec["agree"] = rec["agree"] and rec["grad_agree"]
                if not rec["grad_agree"]:
                    print(f"    !! numpyro_enum gradient disagrees with ours: {rec}", flush=True)
                cell["checks"]["numpyro_enum"] = rec
                grad_impls["numpyro_enum"] = (npf, f + lower_compile_s)

    # ---- timings (answers checked above)
    res = run_timings(smooth_impls, args.repeats, args.long_call_s, settle=not args.quick)
    cell["smoother"].update(res)
    res = run_timings(grad_impls, args.repeats, args.long_call_s, settle=not args.quick)
    cell["grad"].update(res)
    for kind in ("smoother", "grad"):
        for name, r in cell[kind].items():
            if "median_s" in r:
                prev[(name, K)] = (T, r["median_s"])

    # ---- memory of ours (XLA plan for the public call, and sampled peak RSS growth)
    if args.memory and T >= args.memory_min_T:
        smooth_jit = jax.jit(functools.partial(smooth, mode="sequential"))
        cell["smoother_xla_bytes_switchssm"], _, _ = xla_bytes(smooth_jit, params, y_j, u_j)
        cell["smoother_peak_rss_delta_bytes_switchssm"] = peak_rss_delta(ours_smooth)
        cell["grad_xla_bytes_switchssm"], _, _ = xla_bytes(ours_vg, rho0, y_j, u_j)
        cell["grad_peak_rss_delta_bytes_switchssm"] = peak_rss_delta(ours_grad)

    for kind in ("smoother", "grad"):
        ours = cell[kind]["switchssm"]["median_s"]
        line = [f"ours {ours * 1e3:.2f} ms"]
        for name, r in cell[kind].items():
            if name == "switchssm":
                continue
            if "median_s" in r:
                r["ratio_vs_switchssm"] = r["median_s"] / ours
                line.append(f"{name} {r['median_s'] * 1e3:.1f} ms (x{r['ratio_vs_switchssm']:.1f})")
            else:
                line.append(f"{name} skipped")
        print(f"    {kind}: " + ", ".join(line), flush=True)
    return cell


# --------------------------------------------------------------------------------------
# Report


def _fmt_ms(r):
    if r is None:
        return "-"
    if "median_s" not in r:
        return "skipped"
    return f"{r['median_s'] * 1e3:.3g}"


def _e(x):
    return "-" if x is None else f"{x:.1e}"


def _fmt_ratio(r):
    if r is None or "ratio_vs_switchssm" not in r:
        return "-"
    return f"{r['ratio_vs_switchssm']:.1f}x"


def best_hmmlearn(sm: dict):
    cands = [(n, r) for n, r in sm.items() if n.startswith("hmmlearn_") and "median_s" in r]
    if not cands:
        return None, None
    return min(cands, key=lambda nr: nr[1]["median_s"])


def evaluate_targets(cells, emission, Tt=10**5):
    out = []
    by = {(c["K"], c["T"]): c for c in cells if c["emission"] == emission and c["peers"]}

    def ratio(c, name):
        if name == "hmmlearn":
            _, r = best_hmmlearn(c["smoother"])
        else:
            r = c["smoother"].get(name)
        return None if not r or "ratio_vs_switchssm" not in r else r["ratio_vs_switchssm"]

    specs = [
        (64, "dynamax", 10.0, "K=64: >= 10x faster than dynamax sequential smoother"),
        (64, "hmmlearn", 5.0, "K=64: >= 5x faster than hmmlearn"),
        (16, "dynamax", 1.0, "K=16: faster than dynamax sequential smoother"),
        (16, "hmmlearn", 1.0, "K=16: faster than hmmlearn"),
    ]
    for K, peer, need, text in specs:
        c = by.get((K, Tt))
        r = ratio(c, peer) if c else None
        status = "not measured" if r is None else ("met" if r >= need else "MISSED")
        out.append(dict(target=f"{text} (T={Tt:.0e})", needed=need, ratio=r, status=status))
    return out


SMOOTHER_COLUMNS = (
    "| K | T | switchssm ms | compile ms | dynamax ms | ratio | dynamax parallel ms | "
    "ratio | hmmlearn ms (impl) | ratio | max abs err vs dynamax |"
)
GRAD_COLUMNS = (
    "| K | T | switchssm ms | compile ms | NumPyro enum ms | ratio | compile s | "
    "loglik rel err | grad rel err |"
)
GROWTH_COLUMNS = (
    "| K | T | smooth ms | ns/step | smooth XLA MiB | smooth peak RSS MiB | "
    "grad ms | grad XLA MiB | grad peak RSS MiB |"
)


def _table(L, title, columns):
    """Section ``title``, then the head of a Markdown table with the ``columns`` line."""
    L += [f"\n## {title}\n", columns, "|" + "---|" * (columns.count("|") - 1)]


def write_markdown(path: Path, result: dict):
    info = result["machine"]
    L = []
    L.append(f"# Exact inference benchmark{' (quick)' if result['quick'] else ''}\n")
    L.append(
        machine_text(result, f"{info['jax']} ({info['backend']}, x64={info['x64']})")
        + f". dynamax {info['dynamax']}, hmmlearn {info['hmmlearn']}, numpyro {info['numpyro']}, "
        f"funsor {info['funsor']}.\n"
    )
    L.append(
        "All computations in float64. Times are steady-state medians of "
        f"{result['args']['repeats']} calls (interleaved), in milliseconds; compile time (first "
        "call minus median) is separate. Ratio = peer time / switchssm time (> 1: switchssm is "
        "faster). Peers get the (T, 2K) log-likelihood matrix of the equivalent 2K-state HMM "
        "precomputed; switchssm computes its evidence from the raw observations inside the "
        f"timed call. Switch probability rho = {RHO}, scalar Gaussian cue.\n"
    )
    L.append(
        f"Answers were checked before timing: log-likelihood relative error <= {LL_RTOL:g}, "
        f"filtered and smoothed marginals of s and z max abs error <= {MARG_ATOL:g}. "
        f"All checks passed: **{result['all_checks_pass']}**.\n"
    )
    for em in result["emissions"]:
        cells = [c for c in result["cells"] if c["emission"] == em]
        peer_cells = [c for c in cells if c["peers"]]
        _table(L, f"Smoother, {em} emission", SMOOTHER_COLUMNS)
        for c in peer_cells:
            sm = c["smoother"]
            hn, hr = best_hmmlearn(sm)
            dyn = c["checks"].get("dynamax", {}).get("marginal_max_abs_err")
            err = f"{max(dyn.values()):.1e}" if dyn else "-"
            par = sm.get("dynamax_parallel")
            par_txt = _fmt_ms(par) if par and "median_s" in par else "skipped"
            hl_txt = f"{_fmt_ms(hr)} ({hn.split('_', 1)[1]})" if hr else "skipped"
            L.append(
                f"| {c['K']} | {c['T']:.0e} | {_fmt_ms(sm['switchssm'])} | "
                f"{sm['switchssm']['compile_s'] * 1e3:.0f} | {_fmt_ms(sm.get('dynamax'))} | "
                f"{_fmt_ratio(sm.get('dynamax'))} | {par_txt} | {_fmt_ratio(par)} | {hl_txt} | "
                f"{_fmt_ratio(hr)} | {err} |"
            )
        L.append("\nhmmlearn, both implementations (ms):\n")
        for c in peer_cells:
            sm = c["smoother"]
            L.append(
                f"- K={c['K']}, T={c['T']:.0e}: scaling {_fmt_ms(sm.get('hmmlearn_scaling'))}, "
                f"log {_fmt_ms(sm.get('hmmlearn_log'))}"
            )
        _table(L, f"Log-likelihood + gradient (w.r.t. switch_prob), {em} emission", GRAD_COLUMNS)
        for c in peer_cells:
            g = c["grad"]
            npr = g.get("numpyro_enum", {})
            ck = c["checks"].get("numpyro_enum", {})
            comp = f"{npr['compile_s']:.1f}" if "compile_s" in npr else "-"
            L.append(
                f"| {c['K']} | {c['T']:.0e} | {_fmt_ms(g['switchssm'])} | "
                f"{g['switchssm']['compile_s'] * 1e3:.0f} | {_fmt_ms(npr)} | {_fmt_ratio(npr)} | "
                f"{comp} | {_e(ck.get('loglik_rel_err'))} | {_e(ck.get('grad_rel_err'))} |"
            )
        _table(L, f"switchssm alone, growth in T ({em} emission)", GROWTH_COLUMNS)
        for c in cells:
            sm, g = c["smoother"]["switchssm"], c["grad"]["switchssm"]
            xs = c.get("smoother_xla_bytes_switchssm", {}).get("total_bytes")
            xg = c.get("grad_xla_bytes_switchssm", {}).get("total_bytes")
            rs = c.get("smoother_peak_rss_delta_bytes_switchssm")
            rg = c.get("grad_peak_rss_delta_bytes_switchssm")

            def mib(b):
                return "-" if b is None else f"{b / 2**20:.0f}"

            L.append(
                f"| {c['K']} | {c['T']:.0e} | {_fmt_ms(sm)} | "
                f"{sm['median_s'] / c['T'] * 1e9:.0f} | "
                f"{mib(xs)} | {mib(rs)} | {_fmt_ms(g)} | {mib(xg)} | {mib(rg)} |"
            )
        lin = result.get("linearity", {}).get(em)
        if lin:
            L.append("")
            for line in lin:
                L.append(f"- {line}")
        L.append(f"\n## Targets ({em} emission)\n")
        for t in result["targets"][em]:
            r = "-" if t["ratio"] is None else f"{t['ratio']:.1f}x"
            L.append(f"- {t['target']}: needed {t['needed']:g}x, measured {r} -> **{t['status']}**")
    skips = []
    for c in result["cells"]:
        for kind in ("smoother", "grad"):
            for n, r in c[kind].items():
                if "skipped" in r:
                    skips.append(f"- {c['emission']} K={c['K']} T={c['T']:.0e} {n}: {r['skipped']}")
    if skips:
        L.append("\n## Skipped\n")
        L.extend(skips)
    close_markdown(path, L, result)  # the notes (no generated observations here)


def linearity(cells, emission, Ta=10**5, Tb=10**6):
    lines = []
    by = {(c["K"], c["T"]): c for c in cells if c["emission"] == emission}
    for K in sorted({k for k, _ in by}):
        a, b = by.get((K, Ta)), by.get((K, Tb))
        if not a or not b:
            continue
        rt = b["smoother"]["switchssm"]["median_s"] / a["smoother"]["switchssm"]["median_s"]
        rg = b["grad"]["switchssm"]["median_s"] / a["grad"]["switchssm"]["median_s"]
        s = f"K={K}, T {Ta:.0e} -> {Tb:.0e}: smooth time x{rt:.1f}, grad time x{rg:.1f}"
        for key, label in (
            ("smoother_xla_bytes_switchssm", "smooth XLA bytes"),
            ("grad_xla_bytes_switchssm", "grad XLA bytes"),
        ):
            if key in a and key in b:
                s += f", {label} x{b[key]['total_bytes'] / a[key]['total_bytes']:.1f}"
        for key, label in (
            ("smoother_peak_rss_delta_bytes_switchssm", "smooth peak RSS"),
            ("grad_peak_rss_delta_bytes_switchssm", "grad peak RSS"),
        ):
            if a.get(key, 0) >= 16 * 2**20 and b.get(key, 0) >= 16 * 2**20:
                s += f", {label} x{b[key] / a[key]:.1f}"
        lines.append(s + f" (T x{Tb // Ta}; linear means about x{Tb // Ta})")
    return lines


# --------------------------------------------------------------------------------------


def main(argv=None):
    ap = make_parser(__doc__, "tiny grid for smoke testing (<1 min)")
    ap.add_argument(
        "--repeats", type=int, default=None, help="timed calls per cell (default 5, quick 3)"
    )
    ap.add_argument("--emissions", default="categorical", help="comma list of categorical,gaussian")
    ap.add_argument(
        "--max-call-s",
        type=float,
        default=None,
        help="skip a peer whose predicted call time exceeds this (default 60, quick 5)",
    )
    ap.add_argument(
        "--long-call-s", type=float, default=5.0, help="calls slower than this get 3 repeats"
    )
    ap.add_argument(
        "--mem-cap-gb",
        type=float,
        default=None,
        help="skip a JAX peer whose XLA plan exceeds this (default min(8, 40%% of MemAvailable))",
    )
    ap.add_argument(
        "--no-memory", dest="memory", action="store_false", help="skip memory measurements"
    )
    ap.add_argument(
        "--memory-min-T",
        type=int,
        default=None,
        help="measure memory of ours from this T on (default: largest peer T)",
    )
    args = ap.parse_args(argv)

    if args.quick:
        Ks, Ts, ours_only_Ts = (4,), (300, 3000), (30000,)
        args.quick_parallel_T = Ts[0]
        numpyro_cells = {(4, 300)}
        args.repeats = args.repeats or 3
        args.max_call_s = args.max_call_s or 5.0
    else:
        Ks, Ts, ours_only_Ts = (16, 64), (10**3, 10**4, 10**5), (10**6,)
        numpyro_cells = None  # everywhere, subject to the time and memory caps
        args.repeats = args.repeats or 5
        args.max_call_s = args.max_call_s or 60.0
    if args.memory_min_T is None:
        args.memory_min_T = max(Ts)
    if args.mem_cap_gb is None:
        args.mem_cap_gb = round(min(8.0, 0.4 * mem_available_bytes() / 2**30), 1)
    emissions = [e.strip() for e in args.emissions.split(",") if e.strip()]
    for e in emissions:
        if e not in ("categorical", "gaussian"):
            ap.error(f"unknown emission {e!r}")

    out, stem = prepare_output(args, "exact")
    t_start = time.perf_counter()
    info = machine_info()
    announce("bench_exact", info, f"mem cap {args.mem_cap_gb} GiB")

    import hashlib

    sources = {
        rel: hashlib.sha256((REPO / rel).read_bytes()).hexdigest()[:16]
        for rel in (
            "switchssm/inference/exact.py",
            "switchssm/inference/_emissions.py",
            "switchssm/models/switching.py",
        )
    }
    result = dict(
        machine=info,
        source_sha256=sources,
        quick=args.quick,
        args=vars(args),
        grid=dict(K=list(Ks), T=list(Ts), T_switchssm_only=list(ours_only_Ts)),
        emissions=emissions,
        tolerances=dict(
            loglik_rtol=LL_RTOL,
            marginal_atol=MARG_ATOL,
            grad_rtol=GRAD_RTOL,
            finite_difference_rtol=FD_RTOL,
        ),
        model=dict(
            switch_prob=RHO,
            cue_means=CUE_MEANS.tolist(),
            cue_scale=CUE_SCALE,
            num_symbols=NUM_SYMBOLS,
            gaussian_dim=GAUSS_DIM,
            gated=False,
        ),
        cells=[],
        notes=[],
    )

    for em in emissions:
        for K in Ks:
            params = make_params(K, em)
            prev, skipped_kind = {}, {}
            for T in (*Ts, *ours_only_Ts):
                with_peers = T in Ts
                numpyro_here = numpyro_cells is None or (K, T) in numpyro_cells
                cell = bench_cell(
                    params, K, T, em, args, prev, skipped_kind, with_peers, numpyro_here
                )
                if isinstance(cell, tuple):
                    result["notes"].append(f"switchssm {em} K={K} T={T:.0e}: {cell[1]}")
                    continue
                result["cells"].append(cell)

    oks = []
    for c in result["cells"]:
        for v in c["checks"].values():
            if isinstance(v, dict) and "agree" in v:
                oks.append(v["agree"])
            elif isinstance(v, bool):
                oks.append(v)
    result["all_checks_pass"] = bool(all(oks))
    result["targets"] = {em: evaluate_targets(result["cells"], em) for em in emissions}
    result["linearity"] = {
        em: linearity(result["cells"], em, Ta=max(Ts), Tb=max(ours_only_Ts)) for em in emissions
    }
    result["loadavg_end"] = os.getloadavg()
    return report(out, stem, result, write_markdown, t_start)


if __name__ == "__main__":
    sys.exit(main())
