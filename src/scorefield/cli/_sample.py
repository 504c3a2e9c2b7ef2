"""`scorefield sample`: draw samples from a trained run or a closed-form target."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ._common import positive_float, positive_int

from .._errors import ConfigError, InputError

SAMPLERS = ("annealed", "langevin", "pc", "ode", "uhmc", "mala", "hmc", "nuts")
LOG_DENSITY = ("mala", "hmc", "nuts")
FIXED_LEVEL = ("langevin", "uhmc", "mala", "hmc", "nuts")

EPILOG = """examples:
  scorefield sample --exact toy:ncsn-mixture --n 10000 --out toy.npy --sampler annealed \\
      --sigma-max 20 --sigma-min 1 --levels 10 --steps-per-level 100 --eps 0.1 --init uniform:-8,8
  scorefield sample --run runs/five --n 100000 --out five.npy
  scorefield sample --exact mnist --n 10000 --out five.npy --sampler ode --rtol 1e-4
  scorefield sample --exact toy:ncsn-mixture --n 1000 --out m.npy --sampler nuts --steps 200

samplers: annealed (annealed Langevin, NCSN), langevin (one level), pc (predictor-corrector
for the VE SDE), ode (probability-flow ODE, adaptive), uhmc (unadjusted HMC / underdamped
Langevin from the score alone); mala, hmc, nuts need a log-density (--exact targets only).
sigma is the std of the Gaussian perturbation, in data units; the grid defaults to the run's
(--run) or to NCSNv2's sigma_max (largest pairwise distance of the data) down to
3e-3 sigma_max (--exact). Writes float32 (N, D) .npy atomically; prints one summary line."""




def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sample",
        help="draw samples from a trained run or a closed-form target",
        description="Turn a score into samples: annealed Langevin, Langevin, predictor-corrector, "
        "the probability-flow ODE, unadjusted HMC; MALA/HMC/NUTS where a log-density exists.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", metavar="RUN", help="a run directory from 'scorefield train' (its EMA weights)")
    src.add_argument("--exact", metavar="SPEC", help="a data spec with a closed-form smoothed score (e.g. toy:ncsn-mixture, mnist)")
    p.add_argument("--n", type=positive_int, required=True, help="number of samples")
    p.add_argument("--out", required=True, metavar="FILE.npy", help="output file, float32 (N, D)")
    p.add_argument("--sampler", choices=SAMPLERS, help="default: the run's own sampler (--run; see config.json) or pc (--exact)")
    p.add_argument("--seed", type=int, default=0, help="PRNG seed (default 0)")
    g = p.add_argument_group("noise grid")
    g.add_argument("--sigma-max", type=positive_float, help="largest sigma (data units)")
    g.add_argument("--sigma-min", type=positive_float, help="smallest sigma (data units)")
    g.add_argument("--levels", type=positive_int, help="number of levels (default 100, or the run's recipe)")
    g.add_argument("--sigma", type=float, help="the one level of langevin/uhmc/mala/hmc/nuts (default --sigma-min; 0 = unsmoothed, --exact only)")
    g = p.add_argument_group("sampler options")
    g.add_argument("--steps-per-level", type=positive_int, help="annealed: T (default 100)")
    g.add_argument("--eps", type=positive_float, help="annealed: step scale, eta_i = eps sigma_i^2/sigma_L^2 (default: NCSNv2's rule)")
    g.add_argument("--no-denoise", action="store_true", help="annealed: skip the final denoising step")
    g.add_argument("--steps", type=positive_int, help="langevin/uhmc/mala/hmc/nuts: steps per particle (default 1000)")
    g.add_argument("--step-size", type=positive_float, help="langevin/uhmc/mala/hmc/nuts: step (default scales with --sigma-max)")
    g.add_argument("--leapfrog", type=positive_int, default=5, help="uhmc/hmc: leapfrog steps per step (default 5)")
    g.add_argument("--friction", type=positive_float, help="uhmc: friction gamma (default: full momentum refresh)")
    g.add_argument("--snr", type=positive_float, help="pc: corrector signal-to-noise ratio (default 0.16)")
    g.add_argument("--corrector-steps", type=int, help="pc: Langevin corrector steps per level (default 1)")
    g.add_argument("--rtol", type=positive_float, default=1e-4, help="ode: relative tolerance (default 1e-4)")
    g.add_argument("--atol", type=positive_float, default=1e-4, help="ode: absolute tolerance (default 1e-4)")
    g.add_argument("--init", metavar="INIT", help="start: uniform:LOW,HIGH or gaussian:SCALE[,CENTRE] (default N(data centre, sigma_max^2 I))")
    g = p.add_argument_group("run")
    g.add_argument("--chunk-size", type=positive_int, default=65536, help="particles per compiled call (default 65536)")
    g.add_argument("--trajectory", metavar="FILE.npy", help="also write positions (F, N, D) every --trajectory-every steps")
    g.add_argument("--trajectory-every", type=positive_int, default=10, help="thinning of --trajectory (default 10)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _check_out(path: str, flag: str) -> Path:
    out = Path(path)
    if out.suffix != ".npy":
        raise InputError(f"{flag} {path} must be a .npy file name")
    if not out.parent.resolve().is_dir():
        raise InputError(f"{flag} {path}: the directory {out.parent} does not exist")
    return out


def _save_atomic(path: Path, array) -> None:
    """Write with a temporary file and os.replace: an interrupt leaves no partial file."""
    import numpy as np

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.save(f, array)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def run(args) -> int:
    out = _check_out(args.out, "--out")
    traj_out = _check_out(args.trajectory, "--trajectory") if args.trajectory else None
    if args.corrector_steps is not None and args.corrector_steps < 0:
        raise InputError(f"--corrector-steps {args.corrector_steps} must be 0 or more")

    import jax
    import jax.numpy as jnp
    import numpy as np

    from .. import samplers as S
    from ..noise import sigma_max_ncsnv2

    log_prob = None
    if args.run:
        from ..train import load_run

        run_ = load_run(args.run)
        score_fn = run_.score_fn(ema=True)
        grid = np.asarray(run_.sigmas, np.float64)
        dim = int(run_.config.dim)
        centre = np.asarray(run_.config.centre, np.float32)
        if args.sampler in LOG_DENSITY:
            raise ConfigError(
                f"--sampler {args.sampler} needs a log-density and a trained score network (--run) has none; "
                "use --sampler annealed, langevin, pc, ode or uhmc, or --exact SPEC with a closed-form target"
            )
        sigma_max = args.sigma_max or float(grid[0])
        sigma_min = args.sigma_min or float(grid[-1])
        default_levels = len(grid)
        source = f"run {args.run}"
    else:
        from ..data import load

        data = load(args.exact)
        if not data.has_exact_score:
            raise InputError(
                f"--exact {args.exact} has no closed-form smoothed score; use a closed-form spec "
                "(toy:ncsn-mixture, toy:8gaussians, toy:checkerboard, mnist, image:PATH) or train a run and use --run"
            )
        target = data.target
        score_fn = target.smoothed_score
        dim = int(data.dim)
        x = np.asarray(data.sample(jax.random.key(args.seed ^ 0x5EED), 4096), np.float64)
        centre = x.mean(0).astype(np.float32)
        sigma_max = args.sigma_max or sigma_max_ncsnv2(x)
        # the default recipe's grid (BENCHMARKS.md): 1% of sigma_max resolves an image's pixels
        sigma_min = args.sigma_min or 1e-2 * sigma_max
        default_levels = 100
        source = f"--exact {args.exact}"
    if not sigma_min < sigma_max:
        raise ConfigError(f"--sigma-min {sigma_min:g} must be smaller than --sigma-max {sigma_max:g}")
    sigma = sigma_min if args.sigma is None else args.sigma
    if not (np.isfinite(sigma) and (sigma > 0 or (sigma == 0 and args.exact))):
        raise InputError(f"--sigma {args.sigma} must be positive (or 0 with --exact)")
    if args.sampler in LOG_DENSITY:
        log_prob = target.log_prob if sigma == 0 else (lambda x: target.smoothed_log_prob(x, sigma))

    step_size = args.step_size
    scale = sigma_max / 20.0  # default steps scale with the spread of the data
    steps = args.steps or 1000
    init = S.parse_init(args.init) if args.init else S.GaussianInit(float(sigma_max), jnp.asarray(centre))
    if args.sampler is None and args.run:
        # the sampler the run's recipe was made for, with any options given here replacing its own
        sampler, run_init = run_.sampler(
            levels=args.levels, sigma_min=args.sigma_min, snr=args.snr, corrector_steps=args.corrector_steps,
            steps_per_level=args.steps_per_level, eps=args.eps, sigma=args.sigma, step_size=args.step_size,
            steps=args.steps,
        )
        init = init if args.init else run_init
    elif (args.sampler or "pc") == "annealed":
        levels = args.levels or default_levels
        grid = S.geometric(sigma_max, sigma_min, levels) if (args.levels or args.sigma_max or args.sigma_min or args.exact) else jnp.asarray(grid)
        sampler = S.AnnealedLangevin(grid, args.steps_per_level or 100, eps=args.eps, denoise=not args.no_denoise)
    elif (args.sampler or "pc") == "pc":
        sampler = S.PredictorCorrector(S.geometric(sigma_max, sigma_min, args.levels or 100),
                                       1 if args.corrector_steps is None else args.corrector_steps, args.snr or 0.16)
    elif args.sampler == "ode":
        sampler = S.ProbabilityFlowODE(sigma_max, sigma_min, rtol=args.rtol, atol=args.atol)
    elif args.sampler == "langevin":
        sampler = S.Langevin(sigma, step_size or scale**2, steps)
    elif args.sampler == "uhmc":
        sampler = S.UnderdampedLangevin(sigma, step_size or scale, steps, args.leapfrog, args.friction)
    elif args.sampler == "mala":
        sampler = S.MALA(step_size or scale**2 / 2, steps)
    elif args.sampler == "hmc":
        sampler = S.HMC(step_size or scale, steps, args.leapfrog)
    else:
        sampler = S.NUTS(step_size or scale, steps)

    result = S.sample(
        sampler,
        score_fn,
        jax.random.key(args.seed),
        n=args.n,
        dim=dim,
        init=init,
        log_prob=log_prob,
        chunk_size=args.chunk_size,
        trajectory_every=args.trajectory_every if traj_out else None,
        progress=not args.quiet and sys.stderr.isatty(),
    )
    _save_atomic(out, np.ascontiguousarray(result.samples, np.float32))
    if traj_out:
        _save_atomic(traj_out, np.ascontiguousarray(result.trajectory, np.float32))
    print(
        f"wrote {args.n} samples (D={dim}) from {source} with {sampler.name} to {out}: "
        f"{result.n_score_evals_per_sample:.1f} score evaluations per sample, {result.wall_time:.1f} s",
        file=sys.stdout,
    )
    return 0
