"""The target beside the samples as upright 2-D histograms (SPEC sections 2 and 3).

Every histogram here is an array in image order, row 0 at the TOP, shown with
``imshow(origin="upper", extent=(left, right, bottom, top))``: x to the right, y up,
the same way the image itself is shown. (The reference plotted (row, col) as (x, y),
which rotates the picture, and set an empty ylim; neither is copied.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from jaxtyping import Array, ArrayLike, Float
from matplotlib.figure import Figure

from .._errors import InputError
from ._grid import as_points, as_probs, eval_on_grid, image_extent, parse_lims
from ._render import new_figure

Extent = tuple[float, float, float, float]


def _bin_counts(bins, extent: Extent) -> tuple[int, int]:
    left, right, bottom, top = extent
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        if bins < 1:
            raise InputError(f"bins={bins!r} must be a positive number of bins")
        # k bins along the longer side, square cells.
        longer = max(right - left, top - bottom)
        return (max(1, round(bins * (right - left) / longer)),
                max(1, round(bins * (top - bottom) / longer)))
    try:
        nx, ny = (int(b) for b in bins)
    except (TypeError, ValueError):
        nx = ny = 0
    if nx < 1 or ny < 1:
        raise InputError(f"bins={bins!r} must be a positive int or a pair (nx, ny) of them")
    return nx, ny


def upright_histogram(
    samples: Float[ArrayLike, "N 2"],
    *,
    extent: Extent = (0.0, 1.0, 0.0, 1.0),
    bins: Any = 50,  # validated: int or (int, int)
    density: bool = False,
) -> tuple[np.ndarray, Extent]:
    """2-D histogram of (x, y) points as an upright image array.

    Arguments:
        samples: (N, 2) points (x, y), x right, y up.
        extent: (left, right, bottom, top) of the histogram's range, as for imshow.
        bins: an int k (k cells along the longer side, square cells) or (nx, ny).
        density: per unit area (integrates to the fraction inside) instead of fraction of
            samples per cell.

    Returns:
        (hist, extent): ``hist`` of shape (ny, nx), row 0 the top row (largest y), column 0
        the left column, so ``imshow(hist, origin="upper", extent=extent)`` shows it upright;
        entries are the fraction of all N samples in the cell (points outside the extent
        count in N but in no cell).
    """
    pts = as_points(samples, "samples")
    left, right, bottom, top = (float(e) for e in extent)
    if not (left < right and bottom < top):
        raise InputError(f"extent={extent!r} must be (left, right, bottom, top) with left < right, bottom < top")
    nx, ny = _bin_counts(bins, (left, right, bottom, top))
    xedges = np.linspace(left, right, nx + 1)
    yedges = np.linspace(bottom, top, ny + 1)
    counts, _, _ = np.histogram2d(pts[:, 0], pts[:, 1], bins=[xedges, yedges])
    # histogram2d indexes [x bin, y bin] with y ascending; image order is [row from top, col].
    hist = counts.T[::-1] / pts.shape[0]
    if density:
        hist = hist / ((right - left) / nx * (top - bottom) / ny)
    return np.ascontiguousarray(hist), (left, right, bottom, top)


def _fraction_outside(pts: np.ndarray, extent: Extent) -> float:
    left, right, bottom, top = extent
    inside = (pts[:, 0] >= left) & (pts[:, 0] <= right) & (pts[:, 1] >= bottom) & (pts[:, 1] <= top)
    return float(1.0 - inside.mean())


def _pair(title_left: str, title_right: str, left_arr, right_arr, extent, suptitle):
    w, h = extent[1] - extent[0], extent[3] - extent[2]
    fig = new_figure((10.0, 1.2 + 3.8 * max(0.4, min(1.6, h / w))))
    ax_l, ax_r = fig.subplots(1, 2, sharex=True, sharey=True)
    # One colour scale for both panels, so equal colours mean equal densities.
    vmax = float(max(np.max(left_arr), np.max(right_arr))) or 1.0
    for ax, arr, name in ((ax_l, left_arr, title_left), (ax_r, right_arr, title_right)):
        im = ax.imshow(arr, origin="upper", extent=extent, cmap="magma", interpolation="nearest",
                       aspect="equal", vmin=0.0, vmax=vmax)
        fig.colorbar(im, ax=ax, label="density", shrink=0.85)
        ax.set_title(name)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
    fig.suptitle(suptitle)
    return fig


def image_vs_samples(
    probs: Float[ArrayLike, "H W"],
    samples: Float[ArrayLike, "N 2"],
    *,
    bins: Any = None,  # validated: int, (int, int) or None
    title: str | None = None,
) -> Figure:
    """An image density beside a 2-D histogram of samples from it, both upright.

    Arguments:
        probs: (H, W) pixel weights (intensities or probabilities; normalised here), row 0
            the top row, as ``ImageDensity.probs``.
        samples: (N, 2) points in SPEC coordinates: the longer image side spans [0, 1],
            pixel (r, c) covers x in [c/m, (c+1)/m], y in [(H-1-r)/m, (H-r)/m], m = max(H, W).
        bins: histogram bins; default the image's own pixel grid (W x H); an int k puts k
            square cells along the longer side (the reference used 50).
        title: figure title.

    Returns:
        The Figure: left the image, right the histogram, both as densities per unit area
        over the image's extent.
    """
    p = as_probs(probs)
    pts = as_points(samples, "samples")
    H, W = p.shape
    extent = image_extent(H, W)
    hist, _ = upright_histogram(pts, extent=extent, bins=(W, H) if bins is None else bins, density=True)
    cell = (extent[1] / W) * (extent[3] / H)
    outside = _fraction_outside(pts, extent)
    return _pair(
        f"target image ({H}x{W} pixels)",
        f"{pts.shape[0]:,} samples, {hist.shape[0]}x{hist.shape[1]} bins"
        + (f", {100 * outside:.1f}% outside" if outside > 0 else ""),
        p / cell, hist, extent,
        title if title is not None else "image density vs samples",
    )


def density_vs_samples(
    log_prob_fn: Callable[[Float[Array, "2"]], Float[Array, ""]],
    samples: Float[ArrayLike, "N 2"],
    *,
    lims=(-1.5, 1.5),
    grid: int = 100,
    bins: Any = 50,  # validated: int or (int, int)
    title: str | None = None,
) -> Figure:
    """A closed-form 2-D density beside a histogram of samples, on the same range.

    Arguments:
        log_prob_fn: ``x (2,) -> log p(x)`` on one point (may be unnormalised: the plotted
            density is normalised over the plotted range).
        samples: (N, 2) points (x, y).
        lims: plot range, (lo, hi) for both axes or ((xlo, xhi), (ylo, yhi)).
        grid: density cells per axis (evaluated at cell centres).
        bins: histogram bins, int (square cells along the longer side) or (nx, ny).
        title: figure title.

    Returns:
        The Figure, both panels as densities per unit area over the plotted range.
    """
    pts = as_points(samples, "samples")
    (x0, x1), (y0, y1) = parse_lims(lims)
    extent = (x0, x1, y0, y1)
    if int(grid) < 2:
        raise InputError(f"grid size {grid!r} is too small; use at least 2 cells per axis")
    # Evaluate at cell centres: imshow paints each entry over its cell of the extent.
    xs = x0 + (np.arange(int(grid)) + 0.5) * (x1 - x0) / int(grid)
    ys = y0 + (np.arange(int(grid)) + 0.5) * (y1 - y0) / int(grid)
    X, Y = np.meshgrid(xs, ys, indexing="xy")
    logp = eval_on_grid(log_prob_fn, X, Y)
    logp = np.where(np.isfinite(logp), logp, -np.inf)
    if not np.isfinite(logp).any():
        raise InputError("the log-density is not finite anywhere on the plotted grid; widen lims")
    dens = np.exp(logp - logp.max())
    area = (x1 - x0) * (y1 - y0)
    dens = dens / (dens.mean() * area)  # normalised over the plotted range
    hist, _ = upright_histogram(pts, extent=extent, bins=bins, density=True)
    outside = _fraction_outside(pts, extent)
    return _pair(
        "target density",
        f"{pts.shape[0]:,} samples" + (f", {100 * outside:.1f}% outside" if outside > 0 else ""),
        dens[::-1], hist, extent,  # grid rows run up in y; image order runs down
        title if title is not None else "density vs samples",
    )


def data_vs_samples(
    data: Float[ArrayLike, "M 2"],
    samples: Float[ArrayLike, "N 2"],
    *,
    lims=None,
    bins: Any = 50,  # validated: int or (int, int)
    title: str | None = None,
) -> Figure:
    """Histograms of training data and of samples side by side, on the same range.

    Arguments:
        data: (M, 2) training points.
        samples: (N, 2) generated points.
        lims: plot range; default the data's 0.5-99.5 percentile box with a 10% margin.
        bins: histogram bins, int or (nx, ny).
        title: figure title.

    Returns:
        The Figure.
    """
    d = as_points(data, "data")
    pts = as_points(samples, "samples")
    if lims is None:
        lo, hi = np.percentile(d, 0.5, axis=0), np.percentile(d, 99.5, axis=0)
        pad = 0.1 * np.maximum(hi - lo, 1e-6)
        lims = ((lo[0] - pad[0], hi[0] + pad[0]), (lo[1] - pad[1], hi[1] + pad[1]))
    (x0, x1), (y0, y1) = parse_lims(lims)
    extent = (x0, x1, y0, y1)
    hd, _ = upright_histogram(d, extent=extent, bins=bins, density=True)
    hs, _ = upright_histogram(pts, extent=extent, bins=bins, density=True)
    return _pair(
        f"data ({d.shape[0]:,} points)", f"samples ({pts.shape[0]:,} points)", hd, hs, extent,
        title if title is not None else "data vs samples",
    )
