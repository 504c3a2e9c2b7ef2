"""Particle paths over density contours (SPEC section 2, item 2)."""

from __future__ import annotations

import numpy as np
from jaxtyping import ArrayLike
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .._errors import InputError
from ._grid import as_points, draw_background, setup_spatial
from ._render import new_figure


def as_trajectory(traj, name: str = "trajectory") -> np.ndarray:
    """(T, N, 2) float array; a single path (T, 2) becomes (T, 1, 2)."""
    a = np.asarray(traj, dtype=np.float64)
    if a.ndim == 2:
        a = a[:, None, :]
    return as_points(a, name, ndim=3)


def paths(
    path_array: ArrayLike,  # validated: (T, N, 2) or (T, 2)
    *,
    background=None,
    lims=(-1.5, 1.5),
    grid: int = 100,
    max_paths: int = 50,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Draw the paths of particles, start (circle) to end (cross), over a backdrop.

    Arguments:
        path_array: positions over time, (T, N, 2) for N particles or (T, 2) for one;
            time runs along the first axis.
        background: a log-density callable ``x (2,) -> log p(x)`` drawn as level sets, or an
            (H, W) image drawn in SPEC coordinates, or None.
        lims: plot range, (lo, hi) for both axes or ((xlo, xhi), (ylo, yhi)).
        grid: grid points per axis for the backdrop's level sets.
        max_paths: draw at most this many particles (the first ones) to keep it legible.
        title: axes title.
        ax: draw into this Axes instead of a new figure.

    Returns:
        The Figure.
    """
    traj = as_trajectory(path_array, "path_array")
    if int(max_paths) < 1:
        raise InputError(f"max_paths={max_paths!r} must be a positive integer")
    T, N, _ = traj.shape
    shown = traj[:, : int(max_paths)]
    if ax is None:
        fig = new_figure((6.0, 5.4))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    draw_background(ax, background, lims, grid=grid, cmap="Blues")
    single = shown.shape[1] == 1
    colors = ["tab:red"] if single else [None] * shown.shape[1]
    for j in range(shown.shape[1]):
        (line,) = ax.plot(
            shown[:, j, 0], shown[:, j, 1], lw=1.0 if single else 0.7,
            alpha=0.9 if single else 0.6, color=colors[j],
        )
        ax.plot(*shown[0, j], "o", ms=5, color=line.get_color(), mec="black", mew=0.5)
        ax.plot(*shown[-1, j], "X", ms=7, color=line.get_color(), mec="black", mew=0.5)
    setup_spatial(ax, lims)
    if title is None:
        who = "one particle" if N == 1 else f"{shown.shape[1]} of {N} particles"
        title = f"paths of {who} over {T - 1} steps (o start, x end)"
    ax.set_title(title)
    return fig
