"""Plot limits chosen from the data: what `scorefield plot` draws over, for a Python user too."""

from __future__ import annotations

import numpy as np
from jaxtyping import ArrayLike, Float

from ._grid import image_extent

__all__ = ["data_view", "square_box"]

VIEW_SAMPLES = 4000  # draws the box of a dataset without an image is taken from


def square_box(points: Float[ArrayLike, "n 2"]) -> tuple[tuple[float, float], tuple[float, float]]:
    """A square box ((xlo, xhi), (ylo, yhi)) around the 0.5-99.5 percentiles of 2-D points,
    its half side 0.6 times the larger percentile range (a 20% margin): square, so arrows and
    aspect stay honest."""
    pts = np.asarray(points)
    lo, hi = np.percentile(pts, 0.5, axis=0), np.percentile(pts, 99.5, axis=0)
    centre, half = (lo + hi) / 2, 0.6 * float(np.max(hi - lo)) + 1e-6
    x0, x1, y0, y1 = (float(v) for v in (centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half))
    return (x0, x1), (y0, y1)


def data_view(dataset, *, key=None):
    """Plot limits and a backdrop for a 2-D dataset (a `scorefield.data.Dataset`).

    Arguments:
        dataset: the data; its `target` decides the view when it is an image density.
        key: PRNG key of the draws the box is taken from (default: seed 0's legacy key,
            `jax.random.PRNGKey(0)`, what `scorefield plot` uses).
    Returns:
        (lims, background): for an image density, the image's extent in SPEC coordinates
        and its (H, W) pixel probabilities; otherwise `square_box` of 4,000 draws and None.
    """
    from ..targets import ImageDensity

    target = dataset.target
    if isinstance(target, ImageDensity):
        p = np.asarray(target.probs)
        x0, x1, y0, y1 = image_extent(*p.shape)
        return ((float(x0), float(x1)), (float(y0), float(y1))), p
    if key is None:
        import jax

        key = jax.random.PRNGKey(0)
    return square_box(np.asarray(dataset.sample(key, VIEW_SAMPLES))), None
