#!/usr/bin/env python
"""Fitting, side by side: one EM iteration vs hmmlearn, log-likelihood + gradient vs NumPyro.

One process, float64 throughout (``jax_enable_x64``), CPU, categorical emission (8 symbols):

* **one EM iteration** -- ``switchssm``'s EM step (the jitted E-step + closed-form M-step that
  :func:`switchssm.fit.fit_em` runs per iteration, one restart, no cue) against
  ``hmmlearn.hmm.CategoricalHMM.fit`` with ``n_iter=1`` on the *equivalent 2K-state HMM*
  over ``(z_t, s_t)``. hmmlearn cannot tie the transition matrix to ``(pi, rho)``, so it fits
  a **free** 2K-state HMM (dense ``(2K)^2`` transitions, ``2K`` emission rows): the same data
  and the same starting point, but a different (larger) model. What is compared is the cost
  of one EM iteration of each on the same data size. Both of hmmlearn's implementations
  (``"log"`` and ``"scaling"``) are timed; the faster is the headline. Also timed: the public
  ``fit_em(..., num_iters=10, num_restarts=1, init=..., tol=0)`` call divided by 10 (adds
  validation, padding and the final log-likelihood).
* **log-likelihood + gradient** -- ``jax.value_and_grad`` of
  ``switchssm.inference.log_likelihood`` with respect to *every* parameter leaf
  (``initial_probs``, ``switch_prob``, emission probabilities, cue means and scale) against
  the same of NumPyro's enumerated ``numpyro.contrib.funsor.log_density`` of
  ``enum(config_enumerate(switching_model))``, both jitted, scalar Gaussian cue.

Checks before timing: EM -- the log-likelihood our EM step reports at its input parameters
against hmmlearn's ``score`` of the equivalent HMM (relative error <= 1e-9); gradient -- value
(<= 1e-9 relative) and every gradient leaf (max abs error / max abs value <= 1e-7) against
NumPyro, the gradients of the simplex-valued leaves (``initial_probs``, emission rows)
projected on the simplex's tangent space first (NumPyro normalizes ``probs``, we do not: the
raw gradients differ by a multiple of ``(1, ..., 1)``, which has no meaning on the simplex).
The script exits non-zero if a check fails.

Timing: compile time = first call minus steady-state median (reported separately, excluded
from throughput); steady state = median of ``--repeats`` calls, interleaved round-robin across
implementations; ratios = peer median / ours. The gradient is timed twice: per jitted call
from Python, and per call inside a compiled loop (:func:`compiled_loop`, the way ``fit_mle``
evaluates it), which leaves out JAX's per-call dispatch (tens of microseconds, the same for
both sides, but most of a 0.2 ms call).

Usage::

    .venv/bin/python benchmarks/bench_fit.py --quick          # smoke test (K=4, T=10^3)
    .venv/bin/python benchmarks/bench_fit.py                  # K in {4, 16}, T in {1e3, 1e4}
    .venv/bin/python benchmarks/bench_fit.py --out /tmp/res

Writes ``fit.json`` and ``fit.md`` (``fit_quick.*`` with ``--quick``) to ``--out``
(default ``benchmarks/results``).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from _common import NUM_SYMBOLS  # set-up, timing, output and the problem shared with bench_exact
from _common import RHO  # set-up, timing, output and the problem shared with bench_exact
from _common import hmm_chain  # set-up, timing, output and the problem shared with bench_exact
from _common import machine_info  # set-up, timing, output and the problem shared with bench_exact
from _common import machine_text  # set-up, timing, output and the problem shared with bench_exact
from _common import make_params  # set-up, timing, output and the problem shared with bench_exact
from _common import make_parser  # set-up, timing, output and the problem shared with bench_exact
from _common import prepare_output  # set-up, timing, output and the problem shared with bench_exact
from _common import run_timings  # set-up, timing, output and the problem shared with bench_exact
from _common import sample_numpy  # set-up, timing, output and the problem shared with bench_exact
from _common import setup_jax  # set-up, timing, output and the problem shared with bench_exact
from _common import timed  # set-up, timing, output and the problem shared with bench_exact
from _common import write_results  # set-up, timing, output and the problem shared with bench_exact

setup_jax(x64=True, quiet_peers=True)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

from switchssm.fit import fit_em  # noqa: E402
from switchssm.fit._init import stack  # noqa: E402
from switchssm.fit.em import _em_iteration  # noqa: E402  (the step fit_em iterates)
from switchssm.fit.priors import FLAT  # noqa: E402
from switchssm.inference import log_likelihood  # noqa: E402
from switchssm.models import SwitchingParams  # noqa: E402
from switchssm.models import switching_model  # noqa: E402
from switchssm.sequences import as_sequences  # noqa: E402

LL_RTOL = 1e-9
GRAD_RTOL = 1e-7  # two different recursions (ours vs funsor's contraction), float64
TARGET_GRAD_RATIO = 20.0
FIT_EM_ITERS = 10


# --------------------------------------------------------------------------------------
# EM


def hmm_equivalent_no_cue(params: SwitchingParams):
    """The 2K-state HMM over (z_t, s_t) (index z * K + s) of the model without a cue."""
    init, trans = hmm_chain(params)
    B = np.asarray(params.emission.probs)
    return init, trans, np.vstack([B, B])


def make_hmmlearn_em(params, y, implementation):
    """One hmmlearn EM iteration (fresh model each call, same starting point)."""
    from hmmlearn.hmm import CategoricalHMM

    init, trans, emis = hmm_equivalent_no_cue(params)
    X = np.asarray(y, dtype=np.int64)[:, None]

    def model():
        m = CategoricalHMM(
            n_components=len(init),
            n_features=NUM_SYMBOLS,
            n_iter=1,
            tol=0.0,
            init_params="",
            params="ste",
            implementation=implementation,
        )
        m.startprob_, m.transmat_, m.emissionprob_ = init.copy(), trans.copy(), emis.copy()
        return m

    def one_iteration():
        return model().fit(X)

    return one_iteration, float(model().score(X))


def bench_em(K, T, args):
    params = make_params(K, "categorical").replace(cue=None)
    y, _ = sample_numpy(params, T, seed=11 + K + T)
    data = jax.device_put(as_sequences([y], kind="integer", num_symbols=NUM_SYMBOLS))
    params_R = stack([params])
    prior = FLAT  # prior=None in fit_em: maximum likelihood

    def ours():
        return _em_iteration(params_R, data, prior=prior)

    first, (_, obj, _) = timed(ours)
    ll_ours = float(obj[0])

    def ours_fit_em():
        return fit_em(
            [y], num_states=K, num_symbols=NUM_SYMBOLS, num_iters=FIT_EM_ITERS, num_restarts=1,
            init=params, tol=0.0, progress=False,
        ).log_likelihood  # fmt: skip

    first_fit, _ = timed(ours_fit_em)
    impls = {"switchssm": (ours, first), "switchssm_fit_em": (ours_fit_em, first_fit)}
    checks = {}
    for impl in ("log", "scaling"):
        fn, ll_peer = make_hmmlearn_em(params, y, impl)
        rel = abs(ll_peer - ll_ours) / abs(ll_ours)
        checks[f"hmmlearn_{impl}"] = dict(loglik_rel_err=rel, agree=bool(rel <= LL_RTOL))
        f, _ = timed(fn)
        impls[f"hmmlearn_{impl}"] = (fn, f)
    t = run_timings(impls, args.repeats, long_call_s=5.0, settle=not args.quick)
    t["switchssm_fit_em"]["per_iteration_s"] = t["switchssm_fit_em"]["median_s"] / FIT_EM_ITERS
    best = min(("hmmlearn_log", "hmmlearn_scaling"), key=lambda n: t[n]["median_s"])
    ours_s = t["switchssm"]["median_s"]
    return dict(
        K=K,
        T=T,
        log_likelihood=ll_ours,
        checks=checks,
        timings=t,
        best_hmmlearn=best,
        ratio_hmmlearn_over_ours=t[best]["median_s"] / ours_s,
        ratio_hmmlearn_over_fit_em=t[best]["median_s"] / t["switchssm_fit_em"]["per_iteration_s"],
        ours_iterations_per_s=1.0 / ours_s,
        hmmlearn_iterations_per_s=1.0 / t[best]["median_s"],
    )


# --------------------------------------------------------------------------------------
# Log-likelihood + gradient


def _tangent(g: SwitchingParams) -> list:
    """The gradient's leaves, simplex-valued ones projected on the simplex's tangent space.

    ``initial_probs`` and the rows of the emission probabilities live on the simplex, where
    only the tangent component of the gradient is defined: NumPyro's ``Categorical``
    normalizes ``probs`` inside its ``log_prob`` and ours does not, which changes the gradient
    by a multiple of ``(1, ..., 1)`` (measured: a constant 2.77 in every component of the
    ``initial_probs`` gradient at K=4, T=200) and nothing else.
    """
    B = g.emission.probs
    leaves = [
        g.initial_probs - jnp.mean(g.initial_probs),
        g.switch_prob,
        B - jnp.mean(B, axis=-1, keepdims=True),
    ]
    if g.cue is not None:
        leaves += [g.cue.means, g.cue.scale]
    return leaves


def _rel_tree_err(a, b):
    la, lb = _tangent(a), _tangent(b)
    num = max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(la, lb, strict=True))
    den = max(float(jnp.max(jnp.abs(y))) for y in lb)
    return num / max(den, 1e-300)


LOOP_SECONDS = 0.2  # target length of one compiled loop of value+grad calls


def compiled_loop(vg, n: int):
    """``n`` value+grad calls in one jitted ``lax.scan``, each call's parameters depending on
    the previous call's gradient (``p + 0 * g``: XLA does not fold ``0 * x`` for floats, so
    no call can be hoisted out of the loop, and the parameters do not change). This is how
    ``fit_mle`` runs its optimizer steps (``_adam_chunk``), so the time per call is the cost
    of a gradient during fitting, without the per-call dispatch of a jitted Python call."""

    @jax.jit
    def run(p, y, u):
        def body(p, _):
            v, g = vg(p, y, u)
            return jax.tree.map(lambda a, b: a + 0.0 * b, p, g), v

        return lax.scan(body, p, None, length=n)[1]

    return run


def bench_grad(K, T, args):
    from numpyro.contrib.funsor import config_enumerate
    from numpyro.contrib.funsor import enum
    from numpyro.contrib.funsor import log_density

    params = make_params(K, "categorical")
    y, u = sample_numpy(params, T, seed=23 + K + T)
    y_j, u_j = jnp.asarray(y), jnp.asarray(u)
    # device arrays, as in a fitting loop (numpy leaves cost both sides a copy per call)
    params = jax.device_put(params)
    ours_vg = jax.jit(jax.value_and_grad(lambda p, y, u: log_likelihood(p, y, u)))
    model = enum(config_enumerate(switching_model), first_available_dim=-1)
    np_vg = jax.jit(
        jax.value_and_grad(lambda p, y, u: log_density(model, (p,), dict(y=y, u=u), {})[0])
    )

    def ours():
        return ours_vg(params, y_j, u_j)

    def peer():
        return np_vg(params, y_j, u_j)

    f_ours, (v_ours, g_ours) = timed(ours)
    f_peer, (v_peer, g_peer) = timed(peer)
    rel_v = abs(float(v_peer) - float(v_ours)) / abs(float(v_ours))
    rel_g = _rel_tree_err(g_peer, g_ours)
    check = dict(
        loglik_rel_err=rel_v,
        grad_rel_err=rel_g,
        agree=bool(rel_v <= LL_RTOL and rel_g <= GRAD_RTOL),
    )
    t = run_timings({"switchssm": (ours, f_ours), "numpyro_enum": (peer, f_peer)}, args.repeats,
                    long_call_s=5.0, settle=not args.quick)  # fmt: skip
    ratio = t["numpyro_enum"]["median_s"] / t["switchssm"]["median_s"]

    # the same calls inside a compiled loop (as during fitting)
    loops, n_calls = {}, {}
    for name, vg, med in (
        ("switchssm", jax.value_and_grad(lambda p, y, u: log_likelihood(p, y, u)),
         t["switchssm"]["median_s"]),
        ("numpyro_enum",
         jax.value_and_grad(lambda p, y, u: log_density(model, (p,), dict(y=y, u=u), {})[0]),
         t["numpyro_enum"]["median_s"]),
    ):  # fmt: skip
        n = int(np.clip(round(LOOP_SECONDS / med), 2, 500))
        run = compiled_loop(vg, n)
        first, vals = timed(run, params, y_j, u_j)
        if not np.allclose(np.asarray(vals), float(v_ours), rtol=LL_RTOL, atol=0):
            raise SystemExit(f"compiled loop of {name}: values {vals} != {float(v_ours)}")
        loops[name] = (lambda run=run: run(params, y_j, u_j), first)
        n_calls[name] = n
    tl = run_timings(loops, args.repeats, long_call_s=30.0, settle=not args.quick)
    for name, n in n_calls.items():
        tl[name]["calls"] = n
        tl[name]["per_call_s"] = tl[name]["median_s"] / n
    ratio_loop = tl["numpyro_enum"]["per_call_s"] / tl["switchssm"]["per_call_s"]
    return dict(
        K=K,
        T=T,
        log_likelihood=float(v_ours),
        checks=dict(numpyro_enum=check),
        timings=t,
        timings_compiled_loop=tl,
        ratio_numpyro_over_ours=ratio,
        ratio_compiled_loop=ratio_loop,
        target_met_compiled_loop=bool(ratio_loop >= TARGET_GRAD_RATIO),
        ours_calls_per_s=1.0 / t["switchssm"]["median_s"],
        numpyro_calls_per_s=1.0 / t["numpyro_enum"]["median_s"],
        target_ratio=TARGET_GRAD_RATIO,
        target_met=bool(ratio >= TARGET_GRAD_RATIO),
    )


# --------------------------------------------------------------------------------------
# Output


def _ms(x):
    return f"{1e3 * x:.3g}"


def write_markdown(path: Path, res: dict):
    m = res["machine"]
    L = [
        "# Fitting: EM iteration and log-likelihood gradient"
        + (" (quick)" if res["quick"] else ""),
        "",
        machine_text(res, f"{m['jax']} ({m['backend']}, x64={m['x64']})")
        + f". hmmlearn {m['hmmlearn']}, numpyro {m['numpyro']}, funsor {m['funsor']}. Medians of "
        f"{res['args']['repeats']} interleaved calls; compile time excluded from throughput and "
        "shown separately; ratio = peer time / ours.",
        "",
        "## One EM iteration (categorical, 8 symbols, no cue)",
        "",
        "hmmlearn fits a **free** 2K-state HMM (dense (2K)^2 transition matrix, 2K emission "
        "rows) started at the switching model's equivalent HMM: it cannot tie the transitions "
        "to (pi, rho), so this compares the cost of one EM iteration of each on the same data, "
        "not the same estimator. `fit_em / iter` is the public `fit_em` call (10 iterations, "
        "one restart) divided by 10.",
        "",
        "| K | T | switchssm EM step ms | iters/s | compile s | fit_em / iter ms | "
        "hmmlearn log ms | hmmlearn scaling ms | ratio (best hmmlearn / ours) | "
        "loglik rel err |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in res["em"]:
        t = c["timings"]
        err = max(v["loglik_rel_err"] for v in c["checks"].values())
        L.append(
            f"| {c['K']} | {c['T']:.0e} | {_ms(t['switchssm']['median_s'])} | "
            f"{c['ours_iterations_per_s']:.3g} | {t['switchssm']['compile_s']:.2f} | "
            f"{_ms(t['switchssm_fit_em']['per_iteration_s'])} | "
            f"{_ms(t['hmmlearn_log']['median_s'])} | {_ms(t['hmmlearn_scaling']['median_s'])} | "
            f"{c['ratio_hmmlearn_over_ours']:.1f}x | {err:.1e} |"
        )
    L += [
        "",
        "## Log-likelihood + gradient (all parameter leaves), categorical + scalar cue",
        "",
        f"Target: NumPyro enumeration / switchssm >= {TARGET_GRAD_RATIO:g}x. Two measurements "
        "of the same jitted `value_and_grad` calls: **per call** from Python (each call pays "
        "JAX's dispatch: argument flattening, the hand-off to XLA's worker thread and back, "
        "tens of microseconds on this machine, the same for both), and **in a compiled loop** "
        "(`lax.scan` over calls, each depending on the previous gradient, as `fit_mle` runs "
        "its optimizer steps): the cost of a gradient during fitting.",
        "",
        "| K | T | switchssm ms | compile s | NumPyro enum ms | compile s | ratio per call | "
        "target | switchssm ms in loop | NumPyro ms in loop | ratio in loop | target | "
        "loglik rel err | grad rel err |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in res["grad"]:
        t = c["timings"]
        tl = c["timings_compiled_loop"]
        ch = c["checks"]["numpyro_enum"]
        L.append(
            f"| {c['K']} | {c['T']:.0e} | {_ms(t['switchssm']['median_s'])} | "
            f"{t['switchssm']['compile_s']:.2f} | "
            f"{_ms(t['numpyro_enum']['median_s'])} | {t['numpyro_enum']['compile_s']:.2f} | "
            f"{c['ratio_numpyro_over_ours']:.1f}x | "
            f"{'**met**' if c['target_met'] else '**MISSED**'} | "
            f"{_ms(tl['switchssm']['per_call_s'])} | {_ms(tl['numpyro_enum']['per_call_s'])} | "
            f"{c['ratio_compiled_loop']:.1f}x | "
            f"{'**met**' if c['target_met_compiled_loop'] else '**MISSED**'} | "
            f"{ch['loglik_rel_err']:.1e} | {ch['grad_rel_err']:.1e} |"
        )
    if res.get("notes"):
        L += ["", "## Notes", ""] + [f"- {n}" for n in res["notes"]]
    path.write_text("\n".join(L) + "\n")


def _progress(kind, rec, peers):
    """One line of progress: ``kind`` (EM or grad) at ``rec``'s K and T, ours, then ``peers``."""
    ours = _ms(rec["timings"]["switchssm"]["median_s"])
    print(f"  {kind:<4} K={rec['K']:2d} T={rec['T']:>6d}: ours {ours} ms, {peers}", flush=True)


def main(argv=None):
    ap = make_parser(__doc__, "K=4, T=10^3 only (smoke test)")
    ap.add_argument("--repeats", type=int, default=None, help="timed calls (default 9, quick 3)")
    args = ap.parse_args(argv)
    if args.quick:
        Ks, Ts = (4,), (10**3,)
        args.repeats = args.repeats or 3
    else:
        Ks, Ts = (4, 16), (10**3, 10**4)
        args.repeats = args.repeats or 9
    out, stem = prepare_output(args, "fit")
    info = machine_info()
    print(f"bench_fit: jax {info['jax']} {info['backend']}, load {info['loadavg_start']}")
    t0 = time.perf_counter()
    res = dict(
        machine=info,
        quick=args.quick,
        args=vars(args),
        grid=dict(K=list(Ks), T=list(Ts)),
        model=dict(switch_prob=RHO, num_symbols=NUM_SYMBOLS),
        tolerances=dict(loglik_rtol=LL_RTOL, grad_rtol=GRAD_RTOL),
        em=[],
        grad=[],
    )
    for K in Ks:
        for T in Ts:
            c = bench_em(K, T, args)
            res["em"].append(c)
            best = c["best_hmmlearn"]
            _progress("EM", c, f"hmmlearn ({best}) {_ms(c['timings'][best]['median_s'])} ms, "
                      f"ratio {c['ratio_hmmlearn_over_ours']:.1f}x")  # fmt: skip
            g = bench_grad(K, T, args)
            res["grad"].append(g)
            loop = g["timings_compiled_loop"]
            _progress("grad", g, f"NumPyro {_ms(g['timings']['numpyro_enum']['median_s'])} ms, "
                      f"ratio {g['ratio_numpyro_over_ours']:.1f}x; in a compiled loop "
                      f"{_ms(loop['switchssm']['per_call_s'])} vs "
                      f"{_ms(loop['numpyro_enum']['per_call_s'])} ms, "
                      f"{g['ratio_compiled_loop']:.1f}x")  # fmt: skip
    res["loadavg_end"] = os.getloadavg()
    res["seconds"] = time.perf_counter() - t0
    failed = [
        f"{kind} K={c['K']} T={c['T']} {name}"
        for kind in ("em", "grad")
        for c in res[kind]
        for name, ch in c["checks"].items()
        if not ch["agree"]
    ]
    res["failed_checks"] = failed
    notes = []
    if max(info["loadavg_start"][0], res["loadavg_end"][0]) >= (info["cpu_count"] or 1):
        notes.append(
            "the load average reached the CPU count during the run: absolute times are "
            "inflated; compare the ratios (same run, interleaved)"
        )
    if failed:
        notes.append("FAILED checks: " + "; ".join(failed))
    res["notes"] = notes
    write_results(out, stem, res, write_markdown, indent=2, final_newline=True)
    print(f"written {out / stem}.json and .md in {res['seconds']:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
