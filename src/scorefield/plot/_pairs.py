"""Point clouds of any dimension: a pair plot (scatter matrix) of samples over data, and
the projection onto the data's principal axes that it uses when D is large."""

from __future__ import annotations

import numpy as np
from jaxtyping import ArrayLike, Float
from matplotlib.figure import Figure

from .._errors import InputError
from ._render import new_figure


def _points(arr, name: str) -> np.ndarray:
    a = np.asarray(arr, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise InputError(f"{name} has shape {a.shape}; expected an (N, D) array of points")
    return a


def principal_axes(data: Float[ArrayLike, "M D"], k: int) -> tuple[np.ndarray, np.ndarray]:
    """The data's mean and its first k principal axes (largest variance first).

    Returns:
        (mean (D,), axes (D, k)) with orthonormal columns; ``(x - mean) @ axes`` projects.
        The sign of each axis is fixed (its largest entry positive), so a figure is
        reproducible.
    """
    d = _points(data, "data")
    mean = d.mean(axis=0)
    _, _, vt = np.linalg.svd(d - mean, full_matrices=False)
    axes = vt[: int(k)].T
    flip = np.sign(axes[np.argmax(np.abs(axes), axis=0), np.arange(axes.shape[1])])
    return mean, axes * np.where(flip == 0, 1.0, flip)


def pair_plot(
    data: Float[ArrayLike, "M D"],
    samples: ArrayLike,  # validated: (N, D), the same D as data
    *,
    max_dims: int = 4,
    principal: bool | None = None,
    bins: int = 40,
    max_points: int = 4000,
    title: str | None = None,
) -> Figure:
    """Scatter matrix of samples (blue) over data (grey) for point clouds of any D.

    Below the diagonal: pairs of coordinates (i, j), samples drawn over the data; on the
    diagonal: 1-D histograms (densities) of both; above it: nothing. Every panel of one
    column shares its x range, taken from the data's 0.5-99.5 percentiles with a margin.

    Arguments:
        data: (M, D) data points.
        samples: (N, D) generated points.
        max_dims: at most this many coordinates are shown.
        principal: show the data's principal components instead of raw coordinates;
            default: when D > max_dims. The samples are projected on the data's axes.
        bins: bins of the diagonal histograms.
        max_points: points drawn per scatter panel (the first ones).
        title: figure title.

    Returns:
        The Figure, k x k axes (k = min(D, max_dims)) in row-major order.
    """
    d = _points(data, "data")
    s = _points(samples, "samples")
    if d.shape[1] != s.shape[1]:
        raise InputError(f"data has {d.shape[1]} columns but samples has {s.shape[1]}; give the same D")
    if int(max_dims) < 1 or int(bins) < 1 or int(max_points) < 1:
        raise InputError("max_dims, bins and max_points must be positive integers")
    D = d.shape[1]
    k = min(D, int(max_dims))
    if principal is None:
        principal = D > k
    if principal:
        mean, axes = principal_axes(d, k)
        d, s = (d - mean) @ axes, (s - mean) @ axes
        names = [f"PC{i + 1}" for i in range(k)]
    else:
        d, s = d[:, :k], s[:, :k]
        names = [f"x{i}" for i in range(k)]
    lo, hi = np.percentile(d, 0.5, axis=0), np.percentile(d, 99.5, axis=0)
    pad = 0.15 * np.maximum(hi - lo, 1e-6)
    lo, hi = lo - pad, hi + pad
    dp, sp = d[: int(max_points)], s[: int(max_points)]
    size = float(np.clip(2000.0 / max(len(dp), len(sp)), 0.3, 10.0))
    fig = new_figure((2.3 * k + 0.6, 2.3 * k + 0.6))
    axs = np.asarray(fig.subplots(k, k, squeeze=False))
    for i in range(k):
        for j in range(k):
            ax = axs[i, j]
            if j > i:
                ax.set_axis_off()
                continue
            if i == j:
                edges = np.linspace(lo[i], hi[i], int(bins) + 1)
                ax.hist(d[:, i], bins=edges, density=True, color="0.6", alpha=0.7, label="data")
                ax.hist(s[:, i], bins=edges, density=True, histtype="step", color="tab:blue", lw=1.4,
                        label="samples")
                ax.set_yticks([])
            else:
                ax.scatter(dp[:, j], dp[:, i], s=size, c="0.55", alpha=0.5, linewidths=0, label="data")
                ax.scatter(sp[:, j], sp[:, i], s=size, c="tab:blue", alpha=0.5, linewidths=0,
                           label="samples")
                ax.set_ylim(lo[i], hi[i])
            ax.set_xlim(lo[j], hi[j])
            if i == k - 1:
                ax.set_xlabel(names[j])
            else:
                ax.tick_params(labelbottom=False)
            if j == 0 and i > 0:
                ax.set_ylabel(names[i])
            elif j > 0:
                ax.tick_params(labelleft=False)
    handles, labels = axs[0, 0].get_legend_handles_labels()
    if k > 1:
        fig.legend(handles, labels, loc="upper right")
    else:
        axs[0, 0].legend(loc="upper right")
    what = "principal components" if principal else "coordinates"
    fig.suptitle(title if title is not None
                 else f"data ({len(d):,}) vs samples ({len(s):,}), first {k} of {D} {what}")
    return fig
