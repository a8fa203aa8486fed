"""``switchssm fit``: fit a switching model to a user's CSV/NPY file.

Fit a switching model to sequences in a .csv (header row; columns y, optional u and
sequence; a known-latent column s is allowed and used only by `compare`) or .npy ((T,)
or (N, T)) file. Writes fit.npz, fit.json, posterior.png and, for nuts/svi, posterior.nc
with its ArviZ summary.
"""

from __future__ import annotations

import time

import numpy as np

from switchssm.cli import _common as C

HELP = "fit a switching model to a CSV/NPY file"


def configure(f) -> None:
    """The command's arguments."""
    f.add_argument("data", help="observations: .csv or .npy")
    C.add_int(f, "--num-states", None, 1, "number of states K", required=True)
    f.add_argument("--emission", choices=("categorical", "gaussian"), default="categorical")
    f.add_argument("--gated", action="store_true", help="gated emission")
    f.add_argument("--method", choices=("em", "mle", "nuts", "svi"), default="em")
    C.add_int(
        f, "--iters", None, 1, "EM iterations (100) / MLE Adam steps (500) / SVI steps (2000)"
    )
    C.add_int(f, "--restarts", 5, 1, "restarts (em, mle)")
    C.add_int(f, "--num-warmup", 500, 0, "NUTS warm-up per chain")
    C.add_int(f, "--num-samples", 500, 1, "NUTS draws per chain / SVI guide draws")
    C.add_int(f, "--num-chains", 2, 1, "NUTS chains")
    C.add_common(f, out="switchssm-fit")


def run(args) -> int:
    C.setup()
    from switchssm.pipelines import ReportFolder
    from switchssm.pipelines import fit_dataset
    from switchssm.pipelines import load_observations
    from switchssm.pipelines import write_fit_report

    t0 = time.perf_counter()
    try:
        obs = load_observations(args.data, args.emission)
        folder = ReportFolder(args.out, "switchssm fit")
        folder.check()  # before the fit: a bad --out must not cost a fit
        print(
            f"[1/3] data: {len(obs.ys)} sequence(s), {obs.num_timesteps} steps from {args.data}"
            f"{' with a cue column u' if obs.us is not None else ''}"
            f"{' (latent column s not used by the fit)' if obs.ss is not None else ''}; "
            f"fitting K={args.num_states} ({args.emission}{', gated' if args.gated else ''}) "
            f"by {args.method}"
        )
        fit = fit_dataset(
            obs, num_states=args.num_states, emission=args.emission, gated=args.gated,
            method=args.method, iters=args.iters, restarts=args.restarts,
            num_warmup=args.num_warmup, num_samples=args.num_samples,
            num_chains=args.num_chains, seed=args.seed, progress=not args.quiet,
        )  # fmt: skip
        converged = bool(np.all(np.asarray(fit.converged)))
        verdict = {
            "em": "converged" if converged else "NOT converged (raise --iters)",
            "mle": "converged" if converged else "NOT converged (raise --iters)",
            "svi": "ELBO flat at the end" if converged else
                   "NOT converged: the ELBO was still moving (raise --iters)",
            "nuts": "chains agree (r_hat < 1.05, no divergences)" if converged else
                    "NOT converged: r_hat >= 1.05, divergences or a single chain "
                    "(raise --num-warmup/--num-samples, use --num-chains >= 2)",
        }[args.method]  # fmt: skip
        print(
            f"[2/3] {args.method} fit: log-likelihood {fit.log_likelihood:.2f} "
            f"({fit.log_likelihood / obs.num_timesteps:.4f} per step), switch probability "
            f"{float(fit.params.switch_prob):.4f}; {verdict}"
        )
        with folder:
            files = write_fit_report(folder, obs, fit, seconds=time.perf_counter() - t0)
    except C.USER_ERRORS as exc:
        return C.fail(f"cannot fit '{args.data}': {exc}")
    print(f"[3/3] written to {args.out}/: {', '.join(files)} ({time.perf_counter() - t0:.0f} s)")
    return 0
