"""Level sets of a log-density with its score as arrows (SPEC section 2, item 1)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np
from jaxtyping import Array, Float
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .._errors import InputError
from ._grid import aspect_of, eval_on_grid, finite_floor, grid_points, parse_lims, setup_spatial
from ._render import new_figure


def density_and_score(
    log_prob_fn: Callable[[Float[Array, "2"]], Float[Array, ""]],
    score_fn: Callable[..., Float[Array, "2"]] | None = None,
    *,
    sigma: float | None = None,
    lims=(-1.0, 1.0),
    grid: int = 100,
    arrows: int = 10,
    depth: float | None = 30.0,
    cap: float | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Filled level sets of log p on a grid with the score grad log p drawn as arrows.

    Arguments:
        log_prob_fn: ``x (2,) -> log p(x)`` on one point (e.g. ``target.log_prob``);
            an unnormalised log-density is fine.
        score_fn: ``x (2,) -> grad log p(x)``, or ``x, sigma -> score`` when ``sigma`` is
            given (the library's score-function convention). Default: the gradient of
            ``log_prob_fn`` by autodiff.
        sigma: noise level passed to ``score_fn`` as its second argument (data units).
        lims: plot range, (lo, hi) for both axes or ((xlo, xhi), (ylo, yhi)).
        grid: points per axis for the level sets (100 in the reference).
        arrows: arrows per axis (10 in the reference).
        depth: colour only the top ``depth`` nats of log p (lower values share the lowest
            colour), so a far tail does not flatten the interesting part; None: full range.
        cap: cap arrow lengths at this quantile of |score| (e.g. 0.9) so a few huge arrows
            far out do not shrink the rest; None: lengths proportional to |score|.
        title: axes title; a default names the content.
        ax: draw into this Axes instead of a new figure.

    Returns:
        The Figure (``ax.figure`` when ``ax`` is given). Arrow lengths are proportional
        to |score| (up to ``cap``), on one scale for the whole panel.
    """
    if not callable(log_prob_fn):
        raise InputError("log_prob_fn must be a callable x (2,) -> log p(x)")
    if int(arrows) < 1:
        raise InputError(f"arrows={arrows!r} must be a positive number of arrows per axis")
    if score_fn is None:
        field = jax.grad(log_prob_fn)
    elif sigma is None:
        field = score_fn
    else:
        field = lambda x: score_fn(x, sigma)  # noqa: E731

    if ax is None:
        fig = new_figure((6.4, 0.6 + 5.0 * aspect_of(lims)))
        ax = fig.add_subplot()
    else:
        fig = ax.figure

    X, Y = grid_points(lims, grid)
    Z = finite_floor(eval_on_grid(log_prob_fn, X, Y))
    if depth is not None:
        if not depth > 0:
            raise InputError(f"depth={depth!r} must be a positive number of nats, or None")
        Z = np.maximum(Z, Z.max() - depth)
    filled = ax.contourf(X, Y, Z, levels=20, cmap="viridis")
    ax.contour(X, Y, Z, levels=10, colors="white", linewidths=0.5, alpha=0.5)
    fig.colorbar(filled, ax=ax, label="log p(x)  (up to a constant)", shrink=0.82)

    # Arrows sit at cell centres, not on the frame where they would be clipped.
    (x0, x1), (y0, y1) = ax_lims = parse_lims(lims)
    xs = x0 + (np.arange(arrows) + 0.5) * (x1 - x0) / arrows
    ys = y0 + (np.arange(arrows) + 0.5) * (y1 - y0) / arrows
    AX, AY = np.meshgrid(xs, ys, indexing="xy")
    S = eval_on_grid(field, AX, AY)
    if cap is not None:
        if not 0 < cap <= 1:
            raise InputError(f"cap={cap!r} must be a quantile in (0, 1], or None")
        mag = np.linalg.norm(S, axis=-1, keepdims=True)
        limit = np.quantile(mag, cap)
        S = np.where(mag > limit, S * limit / np.maximum(mag, 1e-30), S)
    ax.quiver(
        AX, AY, S[..., 0], S[..., 1], color="white", edgecolor="black",
        linewidth=0.4, angles="xy", pivot="mid", width=0.006,
    )
    setup_spatial(ax, ax_lims)
    ax.set_title(title if title is not None else "log-density level sets and score ∇ log p")
    return fig

