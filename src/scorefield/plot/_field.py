"""The learned vector field at a grid of noise levels (SPEC section 2, item 6)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Float
from matplotlib.figure import Figure

from .._errors import InputError
from .._types import ScoreFn
from ._grid import as_points, aspect_of, draw_background, parse_lims, pick_levels, seq, setup_spatial
from ._render import new_figure


def default_levels(num_levels: int) -> list[int]:
    """Levels 0, 3, ..., 24 (the reference's 3 x 3 grid) when there are enough,
    otherwise up to nine levels spread evenly over the schedule."""
    if num_levels >= 25:
        return list(range(0, 25, 3))
    return pick_levels(num_levels, 9)


def vector_field_grid(
    score_fn: ScoreFn,
    sigmas: Float[ArrayLike, " L"] | Sequence[float],
    levels: Sequence[int] | None = None,
    *,
    lims=(0.0, 1.0),
    arrows: int = 15,
    ncols: int = 3,
    background=None,
    points: Float[ArrayLike, "M 2"] | None = None,
    title: str | None = None,
) -> Figure:
    """One quiver panel per noise level of a noise-conditional score ``score_fn(x, sigma)``.

    Arguments:
        score_fn: ``x (2,), sigma -> score (2,)`` on one point, sigma the standard deviation
            of the Gaussian perturbation in data units (e.g. ``run.score_fn()``).
        sigmas: the noise schedule, indexed by level.
        levels: indices into ``sigmas`` to draw; default `default_levels`.
        lims: plot range, (lo, hi) for both axes or ((xlo, xhi), (ylo, yhi)).
        arrows: arrows per axis (15 in the reference).
        ncols: panels per row.
        background: optional backdrop, a log-density callable or an (H, W) image drawn in
            SPEC coordinates.
        points: optional data points (M, 2) drawn faintly under the arrows (for point
            clouds, which have no density to draw); at most 5,000 are drawn.
        title: figure title.

    Returns:
        The Figure. Arrow lengths are scaled per panel (the score grows like 1/sigma);
        each panel's title gives its sigma and largest |score|.
    """
    sig = seq(sigmas, "sigmas")
    if levels is None:
        levels = default_levels(sig.size)
    levels = [int(level) for level in levels]
    bad = [level for level in levels if not 0 <= level < sig.size]
    if not levels or bad:
        raise InputError(
            f"levels {bad or levels} are not valid; give indices in [0, {sig.size - 1}] "
            f"into the {sig.size} noise levels"
        )
    if int(arrows) < 1 or int(ncols) < 1:
        raise InputError("arrows and ncols must be positive integers")
    pts_bg = None if points is None else as_points(points, "points")[:5000]
    (x0, x1), (y0, y1) = parse_lims(lims)
    xs = x0 + (np.arange(arrows) + 0.5) * (x1 - x0) / arrows
    ys = y0 + (np.arange(arrows) + 0.5) * (y1 - y0) / arrows
    AX, AY = np.meshgrid(xs, ys, indexing="xy")
    pts = jnp.asarray(np.stack([AX.ravel(), AY.ravel()], -1), jnp.float32)
    chosen = jnp.asarray(sig[levels], jnp.float32)
    # One compiled call for every level and arrow.
    field = jax.jit(jax.vmap(jax.vmap(score_fn, in_axes=(0, None)), in_axes=(None, 0)))
    S = np.asarray(field(pts, chosen), np.float64).reshape(len(levels), *AX.shape, 2)

    ncols = min(int(ncols), len(levels))
    nrows = math.ceil(len(levels) / ncols)
    fig = new_figure((3.2 * ncols, (0.55 + 2.9 * aspect_of(lims)) * nrows + 0.4))
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)
    for k, ax in enumerate(axes.ravel()):
        if k >= len(levels):
            ax.set_visible(False)
            continue
        draw_background(ax, background, lims)
        if pts_bg is not None:
            ax.scatter(pts_bg[:, 0], pts_bg[:, 1], s=3, c="0.45", alpha=0.35, linewidths=0, zorder=0)
        mag = np.linalg.norm(S[k], axis=-1)
        ax.quiver(
            AX, AY, S[k, ..., 0], S[k, ..., 1], mag, cmap="plasma",
            angles="xy", pivot="mid", width=0.008,
        )
        setup_spatial(ax, lims)
        ax.label_outer()
        ax.set_title(f"level {levels[k]}: σ = {sig[levels[k]]:.3g}\nmax |s| = {mag.max():.3g}", fontsize=9)
    fig.suptitle(title if title is not None else "learned score field s(x, σ) by noise level")
    return fig
