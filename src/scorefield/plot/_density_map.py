"""The learned density on a grid (a `scorefield.likelihood.DensityMap`) beside the exact
one and their difference, drawn upright (x right, y up)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .._errors import InputError
from ._grid import aspect_of
from ._render import new_figure


def density_map_figure(dmap, *, depth: float | None = 12.0, title: str | None = None,
                       log: bool = True) -> Figure:
    """Panels of a density map: the model's log p (or p), the exact one, and their
    difference log p_model - log p_exact (where an exact density exists).

    Arguments:
        dmap: a `DensityMap` (`xs`, `ys`, `log_prob` (H, W) with row i at y = ys[i],
            `exact_log_prob` or None, `extent`, `integral`, `exact_integral`).
        depth: colour only the top `depth` nats of the log-densities (lower values share the
            lowest colour); None: the full range. Ignored with `log=False`.
        title: the figure's title; a default names the resolution and the integral.
        log: draw log p (default) or p itself.
    Returns:
        the Figure: imshow with origin "lower" on the map's extent, equal aspect.
    """
    lp = np.asarray(dmap.log_prob, np.float64)
    if lp.ndim != 2 or lp.shape != (len(dmap.ys), len(dmap.xs)):
        raise InputError(f"density map log_prob has shape {lp.shape}; expected (len(ys), len(xs))")
    exact = None if dmap.exact_log_prob is None else np.asarray(dmap.exact_log_prob, np.float64)
    panels = [("model", lp)] + ([("exact", exact)] if exact is not None else [])
    x0, x1, y0, y1 = dmap.extent
    n = len(panels) + (1 if exact is not None else 0)
    asp = aspect_of(((x0, x1), (y0, y1)))
    fig = new_figure((4.2 * n + 0.4, 0.9 + 3.6 * asp))
    axes = fig.subplots(1, n, squeeze=False)[0]
    top = max(np.nanmax(p) for _, p in panels)
    lo = top - depth if (log and depth is not None) else min(np.nanmin(p) for _, p in panels)
    for ax, (name, p) in zip(axes, panels):
        shown = np.clip(p, lo, top) if log else np.exp(p)
        im = ax.imshow(shown, origin="lower", extent=(x0, x1, y0, y1), cmap="viridis", interpolation="nearest",
                       vmin=lo if log else 0.0, vmax=top if log else float(np.exp(top)))
        fig.colorbar(im, ax=ax, shrink=0.8, label="log p(x)" if log else "p(x)")
        mass = dmap.integral if name == "model" else dmap.exact_integral
        ax.set_title(f"{name}: ∫ p over the box = {mass:.4f}")
    if exact is not None:
        ax = axes[-1]
        d = lp - exact
        # the difference where there is mass: far tails of both densities are noise
        keep = exact > exact.max() - (depth if depth is not None else np.inf)
        lim = float(np.nanmax(np.abs(d[keep]))) if keep.any() else float(np.nanmax(np.abs(d)))
        im = ax.imshow(np.where(keep, d, np.nan), origin="lower", extent=(x0, x1, y0, y1), cmap="RdBu_r",
                       vmin=-lim, vmax=lim, interpolation="nearest")
        fig.colorbar(im, ax=ax, shrink=0.8, label="log p_model - log p_exact")
        ax.set_title("difference (top %s nats of the exact)" % (f"{depth:g}" if depth is not None else "all"))
    for ax in axes:
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect("equal")
        ax.set_xlabel("x")
        ax.set_ylabel("y")
    h, w = lp.shape
    fig.suptitle(title if title is not None else f"density at σ = {dmap.sigma_min:.3g} on a {w}x{h} grid")
    return fig
