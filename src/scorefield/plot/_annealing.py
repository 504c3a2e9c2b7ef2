"""How the particle cloud sharpens across annealing levels (one panel per level)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from jaxtyping import ArrayLike, Float
from matplotlib.figure import Figure

from .._errors import InputError
from ._grid import as_points, aspect_of, draw_background, pick_levels, seq, setup_spatial
from ._render import new_figure


def annealing_strip(
    trajectory_by_level: Float[ArrayLike, "L N 2"],
    sigmas: ArrayLike | Sequence[float] | None,  # validated: (L,)
    *,
    lims=None,
    max_panels: int = 6,
    background=None,
    max_points: int = 5000,
    title: str | None = None,
    labels: Sequence[str] | None = None,
    ncols: int | None = None,
) -> Figure:
    """A row of scatter panels: the particles after each annealing level.

    Arguments:
        trajectory_by_level: (L, N, 2) particle positions at the end of each level, in the
            order they were run (largest sigma first for annealed Langevin).
        sigmas: (L,) the noise level of each entry, data units; may be None when `labels`
            names the panels instead.
        lims: plot range, (lo, hi) or ((xlo, xhi), (ylo, yhi)); default the final cloud's
            0.5-99.5 percentile box with a 25% margin (earlier, wider clouds are cropped).
        max_panels: at most this many levels, spread evenly, first and last kept.
        background: optional backdrop, a log-density callable or an (H, W) image in SPEC
            coordinates.
        max_points: particles drawn per panel (the first ones).
        title: figure title.
        labels: one panel title per entry (e.g. "step 50" for snapshots of a chain at one
            noise level); default "level l: σ = ..." (levels numbered from 0, as everywhere).
        ncols: panels per row (default: all in one row); 3 gives two rows of three, which
            stay readable when the figure is shown at page width.

    Returns:
        The Figure.
    """
    traj = as_points(trajectory_by_level, "trajectory_by_level", ndim=3)
    if labels is None:
        if sigmas is None:
            raise InputError("annealing_strip needs sigmas (one per level) or labels (one per panel)")
        sig = seq(sigmas, "sigmas")
        if sig.size != traj.shape[0]:
            raise InputError(
                f"sigmas has {sig.size} entries but trajectory_by_level has {traj.shape[0]} levels; "
                "give one sigma per level"
            )
        labels = [f"level {level}: σ = {sig[level]:.3g}" for level in range(sig.size)]
    elif len(labels) != traj.shape[0]:
        raise InputError(
            f"labels has {len(labels)} entries but trajectory_by_level has {traj.shape[0]}; give one per entry"
        )
    if int(max_panels) < 1 or int(max_points) < 1:
        raise InputError("max_panels and max_points must be positive integers")
    if lims is None:
        final = traj[-1]
        lo, hi = np.percentile(final, 0.5, axis=0), np.percentile(final, 99.5, axis=0)
        pad = 0.25 * np.maximum(hi - lo, 1e-3)
        lims = ((lo[0] - pad[0], hi[0] + pad[0]), (lo[1] - pad[1], hi[1] + pad[1]))
    levels = pick_levels(traj.shape[0], int(max_panels))
    n = min(traj.shape[1], int(max_points))
    size = float(np.clip(3000.0 / n, 0.5, 20.0))
    ncols = len(levels) if ncols is None else max(1, min(int(ncols), len(levels)))
    nrows = -(-len(levels) // ncols)
    fig = new_figure((2.7 * ncols + 0.3, 0.5 + (0.6 + 2.4 * aspect_of(lims)) * nrows))
    axes = np.asarray(fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)).ravel()
    for ax in axes[len(levels):]:
        ax.set_visible(False)
    for ax, level in zip(axes, levels):
        draw_background(ax, background, lims, cmap="Oranges")
        pts = traj[level, :n]
        ax.scatter(pts[:, 0], pts[:, 1], s=size, c="tab:blue", alpha=0.6, linewidths=0, zorder=2)
        setup_spatial(ax, lims)
        ax.label_outer()
        ax.set_title(labels[level], fontsize=9)
    fig.suptitle(title if title is not None else f"annealed particles ({traj.shape[1]:,}) by noise level")
    return fig


def frame_label(sampler, level: int, step: int) -> str:
    """The title of one trajectory frame (`SampleResult.trajectory_index` entry (level, step)):
    the start, the samples, or the level and step with the sigma the particles are at."""
    if level < 0:
        return "start"
    if level >= sampler.n_levels:
        return "samples"
    sigma = sampler.frame_sigma(level, step)
    at = "" if sigma is None else f", σ = {sigma:.3g}"
    where = f"level {level}, " if sampler.n_levels > 1 else ""
    return f"{where}step {step + 1}/{sampler.steps_per_level}{at}"
