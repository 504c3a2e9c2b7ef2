"""`scorefield sample`: draw samples from a trained run or a closed-form target."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .._errors import ConfigError, InputError
from ._common import positive_int, seed
from .._seed import seed_key
from ._options import flag_error, given, lazy_options

EPILOG = """examples:
  scorefield sample --exact toy:ncsn-mixture --n 10000 --out toy.npy --sampler annealed \\
      --sigma-max 20 --sigma-min 1 --levels 10 --steps-per-level 100 --eps 0.1 --init uniform:-8,8
  scorefield sample --run runs/five --n 100000 --out five.npy
  scorefield sample --exact mnist --n 10000 --out five.npy --sampler ode --rtol 1e-4
  scorefield sample --exact toy:ncsn-mixture --n 1000 --out m.npy --sampler nuts --steps 200

samplers (scorefield.samplers.SAMPLERS; each flag under "sampler options" says which take it):
annealed (annealed Langevin, NCSN), langevin (one level), pc (predictor-corrector for the VE
SDE), ode (probability-flow ODE, adaptive), uhmc (unadjusted HMC / underdamped Langevin from
the score alone); mala, hmc, nuts need a log-density (--exact targets only).
sigma is the std of the Gaussian perturbation, in data units; the grid defaults to the run's
(--run) or to NCSNv2's sigma_max (largest pairwise distance of the data) down to
1e-2 sigma_max (--exact). Writes float32 (N, D) .npy atomically; prints one summary line
(with the Metropolis acceptance rate for samplers that have one)."""




def _registry():
    from ..samplers import SAMPLERS

    return SAMPLERS


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
    p.add_argument("--sampler", metavar="NAME",
                   help="a registered sampler (see below); default: the run's own sampler (--run; see config.json) or pc (--exact)")
    p.add_argument("--seed", type=seed, default=0, help="PRNG seed (default 0)")
    p.add_argument("--init", metavar="INIT", help="start: uniform:LOW,HIGH or gaussian:SCALE[,CENTRE] (default N(data centre, sigma_max^2 I))")
    c = p.add_argument_group("class-conditional runs (labelled image data)")
    c.add_argument("--label", type=int, metavar="L", help="draw digits of label L (default: unconditional)")
    c.add_argument("--guidance", type=float, default=None, metavar="W",
                   help="classifier-free guidance weight: s_u + W (s_L - s_u); 0 unconditional, 1 conditional (default: the run's config key guidance, 1.5 for preset images, else 1)")
    g = p.add_argument_group("run")
    g.add_argument("--chunk-size", type=positive_int, default=65536, help="particles per compiled call (default 65536)")
    g.add_argument("--trajectory", metavar="FILE.npy", help="also write positions (F, N, D) every --trajectory-every steps")
    g.add_argument("--trajectory-every", type=positive_int, default=10, help="thinning of --trajectory (default 10)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    # one flag per option of every registered sampler, added when this command parses
    lazy_options(p, _registry, "sampler options (sigma_max and sigma_min also set the defaults of every sampler)",
                 choices="--sampler")
    p.set_defaults(func=run)


def _check_out(path: str, flag: str) -> Path:
    out = Path(path)
    if out.suffix != ".npy":
        raise InputError(f"{flag} {path} must be a .npy file name")
    if not out.parent.resolve().is_dir():
        raise InputError(f"{flag} {path}: the directory {out.parent} does not exist")
    if out.is_dir():
        raise InputError(f"{flag} {path} is a directory; give a .npy file name")
    import os

    if not os.access(out.parent.resolve(), os.W_OK | os.X_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise InputError(f"{flag} {path} cannot be written (permission denied or a read-only file system); "
                         "give a writable path")
    return out


def _check_room(paths_bytes: list[tuple[Path, int]]) -> None:
    """ScorefieldError (exit 1) before sampling when the outputs' file systems have less free
    space than the outputs need (N * D * 4 bytes, times the frames for a trajectory)."""
    import shutil

    from .._errors import ScorefieldError

    for path, need in paths_bytes:
        try:
            free = shutil.disk_usage(path.parent.resolve()).free
        except OSError:
            continue
        if free < need:
            raise ScorefieldError(f"{path} needs about {need / 2**20:.1f} MiB but its file system has "
                                  f"{free / 2**20:.1f} MiB free; free disk space, lower --n or choose another path")


def _remove_stale_temporaries(path: Path, older_than_s: float = 60.0) -> None:
    """Temporaries of an earlier write of `path` killed mid-way (``.NAME.XXXX.tmp``), not
    touched for `older_than_s` seconds (so a concurrent writer's live one is kept)."""
    import time

    for p in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            if time.time() - p.stat().st_mtime > older_than_s:
                p.unlink()
        except OSError:
            pass


def _save(path: Path, array) -> None:
    """save_npy_atomic; an OSError (disk full, read-only, ...) is one line, exit 1."""
    from .._errors import ScorefieldError
    from .._fs import save_npy_atomic

    try:
        save_npy_atomic(path, array)
    except OSError as e:
        raise ScorefieldError(f"could not write {path} ({e.strerror or type(e).__name__}); "
                              "free disk space or choose another path") from None


def _context_flag(args, name: str):
    """sigma_max / sigma_min as given (checked like the option), or None."""
    value = getattr(args, name, None)
    if value is None:
        return None
    from .._registry import Option

    v = Option(name, float, low=0.0, low_open=True).parse(value, "scorefield sample")
    return v


def run(args) -> int:
    out = _check_out(args.out, "--out")
    traj_out = _check_out(args.trajectory, "--trajectory") if args.trajectory else None
    if traj_out is not None and traj_out.resolve() == out.resolve():
        raise InputError(f"--trajectory {args.trajectory} is the same file as --out {args.out}; "
                         "give two different file names")
    from ._common import check_output, run_inputs, spec_path

    inputs = run_inputs(args.run) if args.run else {f"the data file of --exact {args.exact}": spec_path(args.exact)}
    check_output(out, "--out", inputs)
    if traj_out is not None:
        check_output(traj_out, "--trajectory", inputs)
    SAMPLERS = _registry()
    name = args.sampler
    try:
        smax, smin = _context_flag(args, "sigma_max"), _context_flag(args, "sigma_min")
    except ConfigError as e:
        raise flag_error(e) from None
    if smax is not None and smin is not None and not smin < smax:
        raise ConfigError(f"--sigma-min {smin:g} must be smaller than --sigma-max {smax:g}")

    import dataclasses

    import numpy as np

    from .. import samplers as S

    given_init = S.parse_init(args.init, what="--init") if args.init else None  # before any work

    context_flags = ("sigma_max", "sigma_min")
    if args.run:
        from ..train import image_plan, load_run, sampler_context

        run_ = load_run(args.run)
        if args.label is not None:
            run_.check_label(args.label, "--label ")
        elif args.guidance is not None:
            raise InputError(f"--guidance {args.guidance:g} needs --label L (guidance sharpens a label)")
        if args.guidance is not None and not np.isfinite(args.guidance):
            raise InputError(f"--guidance {args.guidance} must be a finite number (0 unconditional, 1 conditional)")
        weight = run_.config.guidance if args.guidance is None else args.guidance
        score_fn = run_.score_fn(ema=True, label=args.label, guidance=weight)
        context = sampler_context(run_.config, model=run_.ema_model)  # an energy network's log-density too
        context = dataclasses.replace(context, sigma_max=smax or context.sigma_max, sigma_min=smin or context.sigma_min)
        source = f"run {args.run}" + ("" if args.label is None else f", label {args.label}, guidance {weight:g}")
    else:
        if args.label is not None or args.guidance is not None:
            raise InputError("--label and --guidance apply to a class-conditional run (--run RUN); "
                             f"--exact {args.exact} has no labels")
        from ..data import load

        data = load(args.exact)
        if not data.has_exact_score:
            raise InputError(
                f"--exact {args.exact} has no closed-form smoothed score; use a closed-form spec "
                "(toy:ncsn-mixture, toy:8gaussians, toy:checkerboard, mnist, image:PATH) or train a run and use --run"
            )
        score_fn = data.target.smoothed_score
        context = S.SamplerContext.from_dataset(data, key=seed_key(args.seed ^ 0x5EED), sigma_max=smax, sigma_min=smin)
        source = f"--exact {args.exact}"
    if not context.sigma_min < context.sigma_max:
        raise ConfigError(f"--sigma-min {context.sigma_min:g} must be smaller than --sigma-max {context.sigma_max:g}")

    try:
        if name is None and args.run:
            # the sampler the run's recipe was made for, with any options given here replacing its own
            recipe = run_.config.sampler["name"]
            sampler, init = run_.sampler(**given(args, SAMPLERS, recipe, also=context_flags))
        else:
            name = name or "pc"
            sampler = SAMPLERS.build(name, context, given(args, SAMPLERS, name, also=context_flags))
            init = S.default_start(sampler, context)
    except ConfigError as e:
        if args.run and "needs a log-density" in str(e):
            raise ConfigError(f"--sampler {name} needs a log-density, which only a run trained with net = \"energy\" "
                              f"or an --exact target has; this run's network gives a score only, so use a score "
                              f"sampler ({_score_only(SAMPLERS)})") from None
        raise flag_error(e) from None
    if args.exact and not isinstance(sampler, S.AbstractLogDensitySampler):
        _check_unsmoothed(sampler, data.target, args.exact)
    if given_init is not None:
        init = given_init
    log_prob = context.log_prob_for(sampler)

    for p in (out, traj_out):
        if p is not None:
            _remove_stale_temporaries(p)
    from .._limits import check_sample_memory, sample_frames

    every = args.trajectory_every if traj_out else None
    frames = sample_frames(sampler, every)
    check_sample_memory(args.n, context.dim, frames, every=every, n_name="--n ", every_name="--trajectory-every ")
    _check_room([(out, args.n * context.dim * 4 + 4096)]
                + ([(traj_out, frames * args.n * context.dim * 4 + 4096)] if traj_out else []))
    chunk_size, block_size = args.chunk_size, None
    if args.run and run_.image_shape is not None:
        # a U-Net holds tens of feature maps per particle: bound the particles in flight
        # (results do not depend on the chunk or block size)
        chunk_size, block_size = image_plan(args.chunk_size)
    result = S.sample(
        sampler,
        score_fn,
        seed_key(args.seed),
        n=args.n,
        dim=context.dim,
        init=init,
        log_prob=log_prob,
        chunk_size=chunk_size,
        block_size=block_size,
        trajectory_every=args.trajectory_every if traj_out else None,
        progress=not args.quiet and sys.stderr.isatty(),
    )
    samples = np.asarray(result.samples, np.float32)
    if args.run and run_.image_shape is not None:
        from ..data import to_image_units

        samples = to_image_units(samples)
    _save(out, np.ascontiguousarray(samples, np.float32))
    if traj_out:
        _save(traj_out, np.ascontiguousarray(result.trajectory, np.float32))
    print(f"wrote {args.n} samples (D={context.dim}) from {source} with {sampler.name} to {out}: "
          f"{summary(result, sampler)}{_outside_support(sampler, log_prob, result.samples)}", file=sys.stdout)
    return 0


def _outside_support(sampler, log_prob, samples) -> str:
    """A warning for the summary line where chains of a Metropolis sampler on an unsmoothed
    density (sigma 0, the only density here with zeros: smoothed ones are positive
    everywhere) end where it is zero: a chain started outside its support rejects every
    proposal that stays outside it, so those samples are where it started. "" where none did."""
    if log_prob is None or getattr(sampler, "smoothed", False) or sampler.level_sigma(0) != 0:
        return ""
    import jax
    import numpy as np

    fn = jax.jit(jax.vmap(log_prob))
    x = np.asarray(samples, np.float32)
    bad = sum(int(np.sum(~np.isfinite(np.asarray(fn(x[i:i + 65536]))))) for i in range(0, len(x), 65536))
    if not bad:
        return ""
    return (f"; WARNING: {bad} of {len(x)} chains end where the density is zero (log-density -inf at sigma=0): "
            "started outside its support, a Metropolis chain never moves, so those samples are their starts; "
            "give --sigma > 0 (positive everywhere) or --init inside the support")


def _check_unsmoothed(sampler, target, spec: str) -> None:
    """--sigma 0 (the unsmoothed density) with a score sampler on an image or grid target:
    that density is constant inside each pixel, so its score is zero almost everywhere (and
    the smoothed score at sigma 0 is 0/0); refuse with the smallest useful sigma instead of
    diverging at step 0. Log-density samplers (mala, hmc, nuts) take sigma 0 on any target."""
    from ..targets import GridDensity

    if not isinstance(target, GridDensity):
        return
    try:
        zero = any(float(sampler.level_sigma(lv)) == 0.0 for lv in range(int(sampler.n_levels)))
    except Exception:  # noqa: BLE001 - a sampler whose levels cannot be listed: nothing to check
        return
    if zero:
        pixel = 1.0 / max(int(target.height), int(target.width)) if hasattr(target, "height") else None
        hint = f", e.g. one pixel: --sigma {pixel:.3g}" if pixel else ""
        raise ConfigError(f"--sigma 0 asks {sampler.name} for the unsmoothed density of --exact {spec}, which is constant "
                          f"inside each pixel, so its score is zero almost everywhere and no score sampler can follow "
                          f"it; give --sigma > 0{hint}, or a log-density sampler (mala, hmc, nuts), which takes sigma 0")


def _score_only(SAMPLERS) -> str:
    from ..samplers import AbstractLogDensitySampler

    return ", ".join(c.name for c in SAMPLERS if not issubclass(c, AbstractLogDensitySampler))


def summary(result, sampler=None) -> str:
    """The summary line's tail: evaluations per sample, acceptance (where there is one: per
    level, and a warning where it collapsed), time."""
    text = f"{result.n_score_evals_per_sample:.1f} score evaluations per sample"
    acc = result.acceptance
    if acc is not None:
        from ..samplers import acceptance_summary

        text += ", " + acceptance_summary(sampler, acc)
    return text + f", {result.wall_time:.1f} s"
