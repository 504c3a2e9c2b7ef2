"""`scorefield plot density`: the run's learned density (probability-flow ODE, one solve per
grid cell; for an energy run exp(-E) itself, normalised numerically over the box) beside the
exact density and their difference."""

from __future__ import annotations

import argparse

# default cells along the longer side for an energy run (one energy per cell, no ODE)
ENERGY_RESOLUTION = 256


def resolution(text: str) -> int:
    """argparse type: an integer from 2 to MAX_RESOLUTION."""
    from ..likelihood import MAX_RESOLUTION

    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer; give 2 to {MAX_RESOLUTION} cells") from None
    if not 2 <= v <= MAX_RESOLUTION:
        raise argparse.ArgumentTypeError(f"{v} must be from 2 to {MAX_RESOLUTION} (cells along the longer side)")
    return v


def add_arguments(p) -> None:
    p.add_argument("--resolution", type=resolution, default=None, metavar="R",
                   help="'density': grid cells along the longer side, 2 to 4096, one ODE solve each "
                   f"(default: 4 per image pixel up to 112, else 64); an energy run needs one energy per "
                   f"cell (default {ENERGY_RESOLUTION})")
    p.add_argument("--exact", metavar="SPEC", default=None,
                   help="'density': data whose exact density (smoothed at the run's sigma_min) is drawn beside "
                   "the model (default: the run's own data, where it has one)")


def draw(args, run_dir, r):
    """The density-map figure of loaded run `r` (2-D)."""
    import sys

    from .._errors import InputError
    from .. import plot
    from ..likelihood import data_box, density_map
    from ._eval_likelihood import _sigmas_of

    dataset = r.dataset()
    if args.exact is not None:
        from ..data import load

        ref = load(args.exact)
        if ref.dim != 2 or not ref.has_exact_score:
            raise InputError(f"--exact {args.exact} has no closed-form 2-D density to draw beside the model; "
                             "give an image, mnist or a toy set with one")
    else:
        ref = dataset if dataset.has_exact_score else None
    smin, smax, centre = _sigmas_of(r.config)
    box = data_box(ref if ref is not None else dataset)
    target = None if ref is None else ref.target
    grid = getattr(target, "grid", target)
    res = args.resolution
    if res is None:
        res = min(112, 4 * max(grid.height, grid.width)) if hasattr(grid, "height") else 64
    exact = None if target is None else (lambda z: target.smoothed_log_prob(z, smin))
    from ..nets._energy import is_energy

    model = r.ema_model if args.ema else r.model
    if is_energy(model):
        from ..likelihood import energy_density_map

        dm = energy_density_map(lambda z: model.log_prob(z, smin), box,
                                resolution=args.resolution or ENERGY_RESOLUTION, sigma_min=smin, exact_log_prob=exact)
        line = (f"model density exp(-E) at sigma {smin:.4g}, normalised numerically over the box "
                f"({len(dm.xs)}x{len(dm.ys)} cells)")
        how = "exp(-E), normalised over the box"
    else:
        dm = density_map(r.score_fn(ema=args.ema), box, resolution=res, sigma_min=smin, sigma_max=smax,
                         exact_log_prob=exact, prior_centre=centre, progress=sys.stderr.isatty())
        line = f"model density integrates to {dm.integral:.4f} over the box ({len(dm.xs)}x{len(dm.ys)} cells)"
        how = "learned density"
    if dm.exact_integral is not None:
        line += f"; the exact one to {dm.exact_integral:.4f}"
    if dm.unresolved:
        line += (f"; {dm.unresolved} cells far from the data are blank (their probability-flow solves ran out "
                 "of steps) and left out of the integral")
    print(line)
    what = "" if ref is None else f" beside the exact density of {ref.spec}"
    return plot.density_map_figure(
        dm, title=f"{run_dir.name} (step {r.step}): {how} at σ = {smin:.3g}{what}, "
        f"{len(dm.xs)}x{len(dm.ys)} grid")
