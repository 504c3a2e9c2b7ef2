"""hist_tv: total variation between a sample's histogram on an image's own pixel cells
and the image density (SPEC section 3), and its finite-sample floor."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jax import lax
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._errors import InputError
from . import _validate
from ._floor import Floor, floor_of


def image_probs(density_or_probs) -> Float[Array, "h w"]:
    """The normalised (h, w) probability image of an `ImageDensity` (its `.probs`) or of a
    plain array of non-negative intensities (row 0 = top of the image)."""
    probs = getattr(density_or_probs, "probs", density_or_probs)
    probs = jnp.asarray(probs)
    if probs.ndim != 2 or probs.size == 0:
        raise InputError(
            "the image density must be a 2-D (height, width) array of probabilities, "
            f"got shape {tuple(probs.shape)}"
        )
    if not jnp.issubdtype(probs.dtype, jnp.floating):
        probs = probs.astype(jnp.float32)
    if not isinstance(probs, jax.core.Tracer):
        total = float(jnp.sum(probs))
        if not (np.isfinite(total) and total > 0 and bool(jnp.all(probs >= 0))):
            raise InputError("the image probabilities must be finite, non-negative and not all zero")
    return probs / jnp.sum(probs)


@jax.jit
def cell_counts(
    probs: Float[Array, "h w"], samples: Float[Array, "n 2"]
) -> tuple[Float[Array, "h w"], Float[Array, ""]]:
    """Number of samples in each pixel cell (row 0 = top), and the number outside the image."""
    h, w = probs.shape
    m = max(h, w)
    # Pixel (r, c) covers x in [c/m, (c+1)/m] and y in [(h-1-r)/m, (h-r)/m]: y points up,
    # row 0 is the top, so the row counted from the top is h - 1 - floor(y m).
    u = samples[:, 0] * m
    v = samples[:, 1] * m
    inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)  # False for NaN too
    col = jnp.clip(jnp.floor(u), 0, w - 1).astype(jnp.int32)
    row = (h - 1) - jnp.clip(jnp.floor(v), 0, h - 1).astype(jnp.int32)
    # Integer counts: a float32 count stops growing at 2^24 samples in one cell.
    counts = jnp.zeros((h * w,), jnp.int32).at[row * w + col].add(inside.astype(jnp.int32))
    return counts.reshape(h, w).astype(probs.dtype), jnp.sum(~inside).astype(probs.dtype)


@jax.jit
def _hist_tv(probs, samples):
    counts, outside = cell_counts(probs, samples)
    n = samples.shape[0]
    return 0.5 * (jnp.sum(jnp.abs(counts / n - probs)) + outside / n)


def hist_tv(density_or_probs, samples: ArrayLike) -> Float[Array, ""]:
    """Total variation between the histogram of `samples` on the image's pixel cells and the
    image density: 0.5 * (sum over cells |counts/N - p| + f), f the fraction of samples
    outside the image (SPEC section 3).

    Arguments:
        density_or_probs: an `ImageDensity` (anything with `.probs`; a grid density with
            its own `origin` and `cell`, such as `Checkerboard`, is binned on its own cells)
            or an (h, w) array of pixel probabilities, row 0 = the TOP of the image
            (normalised here).
        samples: (N, 2) points (x, y), x right, y up; the image spans [0, 1] on its longer
            side m = max(h, w): pixel (r, c) covers x in [c/m, (c+1)/m], y in
            [(h-1-r)/m, (h-r)/m]. Non-finite points count as outside.
    Returns:
        hist_tv in [0, 1], a float scalar. Exact samples do not give 0 at finite N: compare
        with `hist_tv_floor` at the same N.
    """
    probs = image_probs(density_or_probs)
    samples = _validate.points("samples", samples, dim=2)
    return _hist_tv(probs, _unit_frame(density_or_probs, probs, samples.astype(probs.dtype)))


def _unit_frame(density, probs, samples):
    """`samples` in the frame of `cell_counts` (the grid's longer side spans [0, 1]): a grid
    density with its own `origin` and `cell` (e.g. `Checkerboard`, 4 cells of side 2 from
    (-4, -4)) is binned on its own cells; an image, whose cells already are that frame, and
    a plain array are left as they are."""
    origin, cell = getattr(density, "origin", None), getattr(density, "cell", None)
    if origin is None or cell is None:
        return samples
    scale = float(cell) * max(probs.shape)
    if tuple(float(o) for o in origin) == (0.0, 0.0) and abs(scale - 1.0) < 1e-12:
        return samples
    return (samples - jnp.asarray(origin, samples.dtype)) / jnp.asarray(scale, samples.dtype)


def hist_tv_floor(
    density_or_probs, n: int, *, key: PRNGKeyArray, repeats: int = 64
) -> Floor:
    """The floor of `hist_tv` at N samples: its mean over N exact iid samples.

    hist_tv depends on exact samples only through their cell counts, Multinomial(N, p)
    (none falls outside), so the floor draws N cells by their probabilities and counts
    them, without drawing positions inside the cells: exact in distribution, O(N) memory.

    Arguments:
        density_or_probs: as in `hist_tv`.
        n: number of samples N (the N of the `hist_tv` being judged).
        key: PRNG key.
        repeats: independent draws averaged (default 64).
    Returns:
        `Floor`: the mean hist_tv, its standard error, and the std and 95% range of ONE
        draw (compare one hist_tv value with `low`, `high`).
    """
    probs = image_probs(density_or_probs)
    n = _validate.positive_int("n", n)
    repeats = _validate.positive_int("repeats", repeats)
    return floor_of(_floor_values(probs, key, n, repeats))


@partial(jax.jit, static_argnums=(2, 3))
def _floor_values(probs, key, n, repeats):
    p = probs.reshape(-1)

    def one(k):
        # Cells by inverse-CDF draws, then counts: O(n) memory, unlike a Gumbel draw over
        # all cells, and far faster than jax.random.multinomial's per-cell binomials.
        idx = jr.choice(k, p.shape[0], (n,), p=p)
        counts = jnp.zeros(p.shape, jnp.int32).at[idx].add(1)
        return 0.5 * jnp.sum(jnp.abs(counts / n - p))

    return lax.map(one, jr.split(key, repeats))
