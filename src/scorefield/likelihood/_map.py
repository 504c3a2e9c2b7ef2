"""The model's log-density on a grid of 2-D points: one probability-flow solve per cell."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import numpy as np

from .._errors import InputError
from .._types import ScoreFn
from ._ode import log_likelihood

MAX_RESOLUTION = 4096


@dataclasses.dataclass(frozen=True)
class DensityMap:
    """Log-densities at the centres of a grid of square-ish cells over a 2-D box.

    Attributes:
        xs: (W,) cell centres along x (left to right).
        ys: (H,) cell centres along y (bottom to top).
        log_prob: (H, W) the model's log p at (xs[j], ys[i]) in row i, column j, so that
            `imshow(log_prob, origin="lower", extent=extent)` is upright (x right, y up).
        exact_log_prob: (H, W) the exact log-density on the same grid, or None.
        extent: (x0, x1, y0, y1), the box.
        cell_area: area of one cell.
        integral: sum of exp(log_prob) * cell_area, the model's mass inside the box (close
            to 1 when the box holds the data and the likelihood is consistent).
        exact_integral: the same for the exact density, or None.
        sigma_min: the level the model's density is taken at.
        seconds: wall time of the solves.
        unresolved: cells whose solve failed within the step budget (NaN in `log_prob`,
            left out of `integral`): far from the data a small sigma_min makes the flow stiff.
    """

    xs: np.ndarray
    ys: np.ndarray
    log_prob: np.ndarray
    exact_log_prob: np.ndarray | None
    extent: tuple[float, float, float, float]
    cell_area: float
    integral: float
    exact_integral: float | None
    sigma_min: float
    seconds: float
    unresolved: int = 0

    @property
    def difference(self) -> np.ndarray | None:
        """(H, W) log p_model - log p_exact, or None without an exact density."""
        return None if self.exact_log_prob is None else self.log_prob - self.exact_log_prob


# a map cell's step budget: a solve that needs more is far from the data, where the flow from
# a small sigma_min is stiff (the default model of the "5": 28 of 64 cells of an 8 x 8 map ran
# out of 4,096 steps), and a chunk waits for its slowest cell
MAP_MAX_STEPS = 1024


def check_resolution(resolution) -> int:
    """The resolution as an int in [2, MAX_RESOLUTION], or InputError."""
    try:
        r = int(resolution)
    except (TypeError, ValueError):
        r = None
    if r is None or r != resolution or not 2 <= r <= MAX_RESOLUTION:
        raise InputError(f"resolution={resolution!r} must be an integer from 2 to {MAX_RESOLUTION} (cells along the longer side)")
    return r


def grid_cells(extent, resolution: int | float) -> tuple[np.ndarray, np.ndarray, float]:
    """Cell centres (xs, ys) and cell area of a grid with `resolution` cells along the
    longer side of `extent` = (x0, x1, y0, y1) and as many along the shorter side as keep
    the cells close to square."""
    x0, x1, y0, y1 = (float(v) for v in extent)
    if not (np.isfinite([x0, x1, y0, y1]).all() and x1 > x0 and y1 > y0):
        raise InputError(f"extent={extent!r} must be finite (x0, x1, y0, y1) with x0 < x1 and y0 < y1")
    r = check_resolution(resolution)
    w, h = x1 - x0, y1 - y0
    nx = r if w >= h else max(2, round(r * w / h))
    ny = r if h >= w else max(2, round(r * h / w))
    dx, dy = w / nx, h / ny
    xs = x0 + (np.arange(nx) + 0.5) * dx
    ys = y0 + (np.arange(ny) + 0.5) * dy
    return xs, ys, dx * dy


def cell_points(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """The (H * W, 2) float32 cell centres of the grid `xs` (W,) by `ys` (H,), row by row
    (y outer, x inner), so that a (H * W,) result reshapes to (H, W)."""
    X, Y = np.meshgrid(xs, ys, indexing="xy")
    return np.stack([X.ravel(), Y.ravel()], axis=-1).astype(np.float32)


def density_map(
    score_fn: ScoreFn,
    extent: tuple[float, float, float, float],
    *,
    resolution: int | float,  # checked by check_resolution: an integer-valued number from 2 to MAX_RESOLUTION
    sigma_min: float,
    sigma_max: float,
    exact_log_prob: Callable | None = None,
    **options,
) -> DensityMap:
    """The model's log-density at sigma_min on a grid over `extent`, beside the exact one.

    Each cell centre gets its own probability-flow solve (`log_likelihood`, chunked), so any
    resolution works; cost grows with the number of cells (resolution^2 for a square box).

    Arguments:
        score_fn: the model's `score_fn(x (2,), sigma)`.
        extent: (x0, x1, y0, y1) box in data coordinates.
        resolution: cells along the longer side, 2 to 4096.
        sigma_min, sigma_max: as in `log_likelihood`.
        exact_log_prob: `x (2,) -> log p(x)`, e.g. the target smoothed at sigma_min, drawn
            beside the model; or None.
        options: passed to `log_likelihood` (prior_centre, rtol, atol, chunk_size,
            progress, ...); here `max_steps` defaults to MAP_MAX_STEPS and `on_failure` to
            "nan" (a cell whose solve fails is drawn blank and counted in `unresolved`).
    Returns:
        a `DensityMap`.
    """
    xs, ys, area = grid_cells(extent, resolution)
    pts, shape = cell_points(xs, ys), (len(ys), len(xs))
    options = {"max_steps": MAP_MAX_STEPS, "on_failure": "nan", **options}
    res = log_likelihood(score_fn, pts, sigma_min=sigma_min, sigma_max=sigma_max, **options)
    lp = res.log_prob.reshape(shape)
    exact = exact_int = None
    if exact_log_prob is not None:
        exact = np.asarray(jax.jit(jax.vmap(exact_log_prob))(pts), np.float64).reshape(shape)
        exact_int = float(np.sum(np.exp(exact)) * area)
    return DensityMap(
        xs=xs, ys=ys, log_prob=lp, exact_log_prob=exact, extent=tuple(float(v) for v in extent), cell_area=area,
        integral=float(np.nansum(np.exp(lp)) * area), exact_integral=exact_int, sigma_min=res.sigma_min,
        seconds=res.wall_time, unresolved=res.n_failed,
    )


def data_box(dataset, *, margin: float = 0.05, key=None) -> tuple[float, float, float, float]:
    """The box a density map of `dataset` covers: an image's extent (or a grid target's
    squares), or the 0.1-99.9 percentile box of 4,000 draws, widened by `margin` of its
    side on every side."""
    target = getattr(dataset, "target", dataset)
    grid = getattr(target, "grid", target)
    if hasattr(grid, "cell") and hasattr(grid, "origin") and hasattr(grid, "height"):
        (gx, gy), h = grid.origin, grid.cell
        x0, x1, y0, y1 = gx, gx + h * grid.width, gy, gy + h * grid.height
    else:
        key = jax.random.key(0) if key is None else key
        pts = np.asarray(dataset.sample(key, 4000), np.float64)
        if pts.shape[1] != 2:
            raise InputError(f"a density map needs 2-D data; this data is {pts.shape[1]}-D")
        lo, hi = np.percentile(pts, 0.1, axis=0), np.percentile(pts, 99.9, axis=0)
        x0, y0 = lo
        x1, y1 = hi
    mx, my = margin * (x1 - x0), margin * (y1 - y0)
    return (float(x0 - mx), float(x1 + mx), float(y0 - my), float(y1 + my))
