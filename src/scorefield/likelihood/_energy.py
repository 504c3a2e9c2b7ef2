"""Densities of energy models (net = "energy") in 2-D without the ODE: exp(-E(x, sigma))
normalised numerically on a grid of cells over a box."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._errors import InputError
from ._map import DensityMap, cell_points, grid_cells
from ._ode import LikelihoodResult

# cells of the normalising grid along the longer side of the box (eval --likelihood)
NORMALISER_RESOLUTION = 512
# energies per compiled call; results do not depend on it (every call has the same shape)
_CHUNK = 8192


def _log_prob_at(log_prob: Callable, pts: np.ndarray) -> np.ndarray:
    """log_prob on every row of `pts` (M, D), in chunks of one compiled shape; float64."""
    f = jax.jit(jax.vmap(log_prob))
    m = len(pts)
    chunk = min(_CHUNK, m)
    out = []
    for lo in range(0, m, chunk):
        part = pts[lo:lo + chunk]
        if len(part) < chunk:  # pad to the compiled shape with copies of the last row
            part = np.concatenate([part, np.repeat(part[-1:], chunk - len(part), 0)])
        out.append(np.asarray(f(jnp.asarray(part, jnp.float32)), np.float64)[: min(chunk, m - lo)])
    return np.concatenate(out)


@dataclasses.dataclass(frozen=True)
class Normaliser:
    """log Z of an unnormalised 2-D density over a box, by the midpoint rule on its cells.

    Attributes:
        log_z: log sum_cells exp(log_prob(centre)) * cell_area, nats.
        xs, ys: (W,), (H,) cell centres; log_prob: (H, W) the unnormalised log-density at them.
        extent: (x0, x1, y0, y1); cell_area: area of one cell.
        edge_mass: the fraction of the normalised mass in the outermost ring of cells (a
            box too small for the model's mass shows here as a large value).
    """

    log_z: float
    xs: np.ndarray
    ys: np.ndarray
    log_prob: np.ndarray
    extent: tuple[float, float, float, float]
    cell_area: float
    edge_mass: float


def normaliser(log_prob: Callable[[Float[Array, "2"]], Float[Array, ""]], extent, *, resolution: int) -> Normaliser:
    """Numerical normalisation of exp(log_prob) over the box `extent` (2-D only).

    Arguments:
        log_prob: `x (2,) -> log p(x)` up to a constant, e.g. `lambda x: -model.energy(x, sigma)`.
        extent: (x0, x1, y0, y1), data units.
        resolution: cells along the longer side (2 to MAX_RESOLUTION).
    Returns:
        a `Normaliser`. Raises InputError if log_prob is not finite on the grid.
    """
    xs, ys, area = grid_cells(extent, resolution)
    lp = _log_prob_at(log_prob, cell_points(xs, ys)).reshape(len(ys), len(xs))
    if not np.all(np.isfinite(lp)):
        raise InputError(f"the model's log-density is NaN or inf at {int((~np.isfinite(lp)).sum())} of {lp.size} "
                         "grid cells, so it cannot be normalised")
    top = float(lp.max())
    w = np.exp(lp - top)
    log_z = top + math.log(float(w.sum()) * area)
    inner = w[1:-1, 1:-1].sum() if min(w.shape) > 2 else 0.0
    edge = float(1.0 - inner / w.sum())
    return Normaliser(log_z=log_z, xs=xs, ys=ys, log_prob=lp, extent=tuple(float(v) for v in extent),
                      cell_area=area, edge_mass=edge)


def energy_density_map(
    log_prob: Callable[[Float[Array, "2"]], Float[Array, ""]],
    extent,
    *,
    resolution: int,
    sigma_min: float,
    exact_log_prob: Callable | None = None,
) -> DensityMap:
    """A `DensityMap` of an energy model: exp(log_prob) normalised numerically over the box,
    so its `integral` is 1 by construction (no ODE; one energy per cell).

    Arguments:
        log_prob: `x (2,) -> -E(x, sigma_min)`, the model's unnormalised log-density.
        extent: (x0, x1, y0, y1); resolution: cells along the longer side.
        sigma_min: the level `log_prob` is taken at (recorded in the map).
        exact_log_prob: `x (2,) -> log p(x)` drawn beside the model, or None.
    """
    start = time.perf_counter()
    z = normaliser(log_prob, extent, resolution=resolution)
    lp = z.log_prob - z.log_z
    exact = exact_int = None
    if exact_log_prob is not None:
        exact = _log_prob_at(exact_log_prob, cell_points(z.xs, z.ys)).reshape(z.log_prob.shape)
        exact_int = float(np.sum(np.exp(exact)) * z.cell_area)
    return DensityMap(xs=z.xs, ys=z.ys, log_prob=lp, exact_log_prob=exact, extent=z.extent, cell_area=z.cell_area,
                      integral=float(np.sum(np.exp(lp)) * z.cell_area), exact_integral=exact_int,
                      sigma_min=float(sigma_min), seconds=time.perf_counter() - start)


def energy_log_likelihood(
    log_prob: Callable[[Float[Array, "2"]], Float[Array, ""]],
    points,
    *,
    extent,
    sigma_min: float,
    sigma_max: float,
    resolution: int = NORMALISER_RESOLUTION,
) -> tuple[LikelihoodResult, Normaliser]:
    """log p_model(x) = log_prob(x) - log Z of an energy model in 2-D, Z by the midpoint
    rule over the box `extent` (which should hold the model's mass: see `edge_mass`).

    Arguments:
        log_prob: `x (2,) -> -E(x, sigma_min)`.
        points: (N, 2) finite points.
        extent: the normalising box (x0, x1, y0, y1); resolution: its cells along the longer side.
        sigma_min: the level of `log_prob`; sigma_max: the run's (recorded only).
    Returns:
        (a `LikelihoodResult` with trace "energy", no ODE: `prior_log_prob` and
        `divergence_integral` are NaN, `endpoints` the points themselves; the `Normaliser`).
    """
    start = time.perf_counter()
    x = np.asarray(points, np.float32)
    if x.ndim != 2 or x.shape[1] != 2 or len(x) < 1:
        raise InputError(f"points has shape {x.shape}; the energy density is normalised numerically in 2-D only, "
                         "give an (N, 2) array")
    if not np.all(np.isfinite(x)):
        raise InputError("points contains NaN or inf; all must be finite")
    z = normaliser(log_prob, extent, resolution=resolution)
    lp = _log_prob_at(log_prob, x) - z.log_z
    nan = np.full(len(x), np.nan)
    res = LikelihoodResult(log_prob=lp, log_prob_exact_prior=None, prior_log_prob=nan, divergence_integral=nan,
                           endpoints=x, sigma_min=float(sigma_min), sigma_max=float(sigma_max), trace="energy",
                           n_probes=0, n_score_evals_per_point=1.0 + z.log_prob.size / len(x),
                           wall_time=time.perf_counter() - start)
    return res, z
