"""`scorefield eval --likelihood`: the probability-flow log-likelihood of a run's model (or
of the exact smoothed score, `--exact SPEC`) on held-out exact draws of its data; for a 2-D
energy run, the energy's own density exp(-E) normalised numerically (`--method`)."""

from __future__ import annotations

import argparse
import json
import math
import sys

from ._common import positive_float, positive_int
from .._seed import seed_key


def add_arguments(p) -> None:
    """The likelihood options of `scorefield eval` (a group of their own)."""
    g = p.add_argument_group("likelihood (--likelihood)")
    g.add_argument("--likelihood", action="store_true",
                   help="report the probability-flow log-likelihood (nll, bits/dim, and KL to the exact "
                   "density where the data has one) instead of judging --samples")
    g.add_argument("--method", choices=("auto", "ode", "energy"), default="auto",
                   help="ode: the probability-flow ODE (any score model); energy: exp(-E(x, sigma_min)) of an "
                   "energy run (net = \"energy\") normalised numerically over a box (2-D only, no ODE); "
                   "auto: energy for a 2-D energy run, else ode (default)")
    g.add_argument("--n", type=positive_int, default=2000, metavar="N",
                   help="held-out exact draws of the data to evaluate (default 2000)")
    g.add_argument("--trace", choices=("auto", "exact", "hutchinson"), default="auto",
                   help="divergence: exact (D Jacobian-vector products) or Hutchinson's estimator; "
                   "auto: exact for D <= 16 (default)")
    g.add_argument("--probes", type=positive_int, default=8, metavar="K",
                   help="Rademacher probes per point for Hutchinson's estimator (default 8)")
    g.add_argument("--rtol", type=positive_float, default=1e-5, help="relative tolerance of the ODE solver (default 1e-5)")
    g.add_argument("--atol", type=positive_float, default=1e-5, help="absolute tolerance of the ODE solver (default 1e-5)")
    g.add_argument("--sigma-min", type=positive_float, default=None, metavar="SIGMA",
                   help="where the flow starts (default: the smallest sigma of the run's sampler)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")


def _sigmas_of(config):
    """(sigma_min, sigma_max, centre) of a resolved config: its sampler's last level, its
    sigma_max, and the centre of its prior."""
    from ..train import build_sampler

    sampler, _ = build_sampler(config)
    sig = getattr(sampler, "sigmas", None)
    smin = float(sig[-1]) if sig is not None else float(getattr(sampler, "sigma", config.sigma_min))
    return smin, float(config.sigma_max), [float(c) for c in config.centre]


def run(args: argparse.Namespace) -> int:

    from .._errors import InputError
    from ..likelihood import EXACT_MAX_DIM, evaluate_likelihood

    if args.run is not None:
        from ..train import load_run

        run_ = load_run(args.run)
        dataset = run_.dataset()
        score_fn = run_.score_fn(ema=True)
        smin, smax, centre = _sigmas_of(run_.config)
        what = f"run {args.run} (step {run_.step}, EMA weights)"
    elif args.exact is not None:
        from ..data import load
        from ..train import preset, resolve

        dataset = load(args.exact)
        if not dataset.has_exact_score:
            raise InputError(f"--exact {args.exact}: this data has no closed-form smoothed score; "
                             "give an image, mnist, or toy:ncsn-mixture / 8gaussians / checkerboard")
        target = dataset.target
        score_fn = target.smoothed_score
        # the noise range the default recipe would train this data with
        smin, smax, centre = _sigmas_of(resolve(preset("default", data=args.exact), dataset))
        what = f"the exact smoothed score of {dataset.spec}"
    else:
        raise InputError("--likelihood needs a model: give --run RUN, or --exact SPEC for the exact smoothed score")
    if args.sigma_min is not None:
        smin = float(args.sigma_min)
        if not smin < smax:
            raise InputError(f"--sigma-min {smin:g} must be smaller than the run's sigma_max {smax:.4g}")
    dim = int(dataset.dim)
    from ..nets._energy import is_energy

    energy = args.run is not None and is_energy(run_.ema_model)
    method = args.method if args.method != "auto" else ("energy" if energy and dim == 2 else "ode")
    if method == "energy":
        if not energy:
            raise InputError("--method energy needs a run trained with net = \"energy\" (--run RUN); "
                             "this model has a score only, use --method ode")
        if dim != 2:
            raise InputError(f"--method energy normalises exp(-E) numerically in 2-D only; this data is {dim}-D, "
                             "use --method ode")
        from ..likelihood import evaluate_energy_likelihood

        model = run_.ema_model
        r = evaluate_energy_likelihood(lambda z: model.log_prob(z, smin), dataset, n=args.n, sigma_min=smin,
                                       sigma_max=smax, key=seed_key(args.seed))
        return _print(args, r, what)
    trace = args.trace if args.trace != "auto" else ("exact" if dim <= EXACT_MAX_DIM else "hutchinson")
    if args.trace == "auto" and trace == "hutchinson":
        print(f"note: {dim}-D data: the divergence is Hutchinson's estimator with {args.probes} Rademacher probes "
              f"(exact only for D <= {EXACT_MAX_DIM}; --trace exact forces it)", file=sys.stderr)
    r = evaluate_likelihood(
        score_fn, dataset, n=args.n, sigma_min=smin, sigma_max=smax, key=seed_key(args.seed), prior_centre=centre,
        trace=trace, n_probes=args.probes, rtol=args.rtol, atol=args.atol,
        progress=not args.quiet and sys.stderr.isatty(),
    )
    return _print(args, r, what)


def _print(args, r: dict, what: str) -> int:
    r["model"] = what
    if args.run is not None:
        r["run"] = str(args.run)
    for k in ("kl", "kl_se", "kl_floor"):
        r.setdefault(k, None)
    if args.json:
        from ._eval import _finite_or_none

        print(json.dumps(_finite_or_none(r), allow_nan=False))
    else:
        print(format_table(r))
    return 0


def _f(v, digits: int = 4) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.{digits}g}"


def format_table(r: dict) -> str:
    """A readable likelihood report of `evaluate_likelihood`'s dict."""
    draws = f"  on {r['n']:,} held-out exact draws of {r['data']} ({r['dim']}-D); "
    if r["trace"] == "energy":
        x0, x1, y0, y1 = r["normaliser_extent"]
        head = [draws + f"the energy's own density exp(-E(x, sigma {r['sigma_min']:.4g})), no ODE",
                f"  normalised numerically: {r['normaliser_cells'][0]}x{r['normaliser_cells'][1]} cells over "
                f"[{x0:.4g}, {x1:.4g}] x [{y0:.4g}, {y1:.4g}] ({r['normaliser_edge_mass']:.2g} of the mass in "
                "the outermost cells)"]
    else:
        how = (f"exact trace ({r['dim']} Jacobian-vector products per evaluation)" if r["trace"] == "exact"
               else f"Hutchinson's estimator, {r['n_probes']} Rademacher probes per point")
        head = [draws + f"probability-flow ODE from sigma {r['sigma_min']:.4g} to {r['sigma_max']:.4g}, "
                "prior N(centre, sigma_max^2 I)", f"  divergence: {how}"]
    lines = [
        f"likelihood of {r['model']}",
        *head,
        f"  nll            {_f(r['nll'])} +- {_f(r['nll_se'], 2)} nats per sample",
        f"  bits_per_dim   {_f(r['bits_per_dim'])}",
    ]
    if r.get("kl") is None:
        lines.append(f"  kl             not available: {r.get('kl_unavailable', 'no exact density')}")
    else:
        lines.append(f"  kl             {_f(r['kl'])} +- {_f(r['kl_se'], 2)} nats  (E_p[log p - log p_model])")
        if r.get("kl_floor") is not None:
            lines.append(f"  kl_floor       {_f(r['kl_floor'])} nats  (KL(p || p smoothed at sigma_min), "
                         f"{r['kl_floor_method']})")
            lines.append(f"  kl - kl_floor  {_f(r['kl_excess'])} +- {_f(r['kl_excess_se'], 2)} nats  "
                         "(paired on the same draws: E_p[log p_sigma_min - log p_model])")
        if r.get("entropy") is not None:
            lines.append(f"  entropy of p   {_f(r['entropy'])} nats")
    if r.get("prior_mismatch") is not None:
        lines.append(f"  prior mismatch {_f(r['prior_mismatch'])} nats  (exact p at sigma_max against the Gaussian prior)")
    kind = "energy" if r["trace"] == "energy" else "score"
    lines.append(f"  {r['seconds']:.1f} s, {r['score_evals_per_point']:.0f} {kind} evaluations per point")
    return "\n".join(lines)
