"""Shared helpers: plot limits, evaluating a function on a grid of 2-D points (one jit,
one vmap), array validation, and the faint backgrounds drawn behind particles."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeAlias

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import InputError

# (lo, hi) for both axes, or ((xlo, xhi), (ylo, yhi)).
Lims: TypeAlias = tuple[float, float] | tuple[tuple[float, float], tuple[float, float]]


def parse_lims(lims, name: str = "lims") -> tuple[tuple[float, float], tuple[float, float]]:
    """Normalise plot limits to ((xlo, xhi), (ylo, yhi)) with lo < hi on both axes."""
    try:
        arr = np.asarray(lims, dtype=float)
    except (TypeError, ValueError):
        arr = np.empty(0)
    if arr.shape == (2,):
        arr = np.stack([arr, arr])
    if arr.shape != (2, 2) or not np.all(np.isfinite(arr)) or np.any(arr[:, 0] >= arr[:, 1]):
        raise InputError(
            f"{name}={lims!r} is not valid; give (lo, hi) with lo < hi, or "
            "((xlo, xhi), (ylo, yhi))"
        )
    return (float(arr[0, 0]), float(arr[0, 1])), (float(arr[1, 0]), float(arr[1, 1]))


def grid_points(lims, n: int) -> tuple[np.ndarray, np.ndarray]:
    """An n x n grid over ``lims``: X, Y of shape (n, n), row i at y = ys[i] (y up when
    drawn with origin='lower' or by contour)."""
    if int(n) < 2:
        raise InputError(f"grid size {n!r} is too small; use at least 2 points per axis")
    (x0, x1), (y0, y1) = parse_lims(lims)
    xs = np.linspace(x0, x1, int(n))
    ys = np.linspace(y0, y1, int(n))
    return np.meshgrid(xs, ys, indexing="xy")


def eval_on_grid(fn: Callable, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Evaluate ``fn(x)`` (x of shape (2,)) at every grid point in one jitted vmap.

    Returns:
        float64 array of shape X.shape + fn's output shape.
    """
    pts = jnp.asarray(np.stack([X.ravel(), Y.ravel()], axis=-1), dtype=jnp.float32)
    out = np.asarray(jax.jit(jax.vmap(fn))(pts), dtype=np.float64)
    return out.reshape(X.shape + out.shape[1:])


def as_points(arr, name: str, *, ndim: int = 2) -> np.ndarray:
    """Validate a float array whose last axis is 2 (x, y) with ``ndim`` dimensions."""
    a = np.asarray(arr, dtype=np.float64)
    if a.ndim != ndim or a.shape[-1] != 2:
        want = {2: "(N, 2)", 3: "(T, N, 2)"}.get(ndim, f"{ndim}-D with last axis 2")
        raise InputError(f"{name} has shape {a.shape}; expected {want} points (x, y)")
    if a.shape[0] == 0 or (ndim == 3 and a.shape[1] == 0):
        raise InputError(f"{name} is empty; give at least one point")
    return a


def as_probs(probs, name: str = "probs") -> np.ndarray:
    """Validate an (H, W) array of non-negative pixel weights with a positive sum."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.size == 0 or not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise InputError(
            f"{name} (shape {p.shape}) must be a 2-D (H, W) array of finite non-negative "
            "pixel weights with a positive sum"
        )
    return p / p.sum()


def image_extent(height: int, width: int) -> tuple[float, float, float, float]:
    """(left, right, bottom, top) of an H x W image in SPEC coordinates: the longer
    side spans [0, 1], x right, y up."""
    m = max(height, width)
    return 0.0, width / m, 0.0, height / m


def finite_floor(values: np.ndarray) -> np.ndarray:
    """Replace -inf/nan (log-density outside the support) by the lowest finite value,
    so contours of log-densities with holes still draw."""
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v)
    if not ok.any():
        raise InputError("the log-density is not finite anywhere on the plotted grid; widen lims")
    return np.where(ok, v, v[ok].min())


def draw_background(ax, background, lims, *, grid: int = 100, cmap: str = "Greys") -> None:
    """Draw a faint backdrop: log-density contours (``background`` a callable x -> log p)
    or an (H, W) image in SPEC coordinates (``background`` an array)."""
    if background is None:
        return
    if callable(background):
        X, Y = grid_points(lims, grid)
        Z = finite_floor(eval_on_grid(background, X, Y))
        ax.contourf(X, Y, Z, levels=20, cmap=cmap, alpha=0.45, zorder=0)
        ax.contour(X, Y, Z, levels=10, colors="0.4", linewidths=0.5, alpha=0.7, zorder=0)
        return
    img = as_probs(background, "background")
    ax.imshow(
        img, origin="upper", extent=image_extent(*img.shape), cmap=cmap,
        alpha=0.4, interpolation="nearest", zorder=0,
    )


def pick_levels(count: int, max_panels: int) -> list[int]:
    """Up to ``max_panels`` indices spread evenly over range(count), first and last kept."""
    if count <= max_panels:
        return list(range(count))
    return sorted({int(round(i)) for i in np.linspace(0, count - 1, max_panels)})


def aspect_of(lims) -> float:
    """Height over width of the plotted box, clamped to [0.4, 2.5] for figure sizing."""
    (x0, x1), (y0, y1) = parse_lims(lims)
    return float(np.clip((y1 - y0) / (x1 - x0), 0.4, 2.5))


def setup_spatial(ax, lims, *, xlabel: str = "x", ylabel: str = "y") -> None:
    """Equal aspect, limits, axis labels: every spatial panel looks the same."""
    (x0, x1), (y0, y1) = parse_lims(lims)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def seq(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64).reshape(-1)
    if a.size == 0 or not np.all(np.isfinite(a)):
        raise InputError(f"{name} must be a non-empty sequence of finite numbers")
    return a
