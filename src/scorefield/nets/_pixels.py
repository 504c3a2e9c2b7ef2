"""What a network on a piecewise-constant image density knows of its pixels: features of
the nearest pixel edge, and a learned histogram over the pixel cells blurred exactly by sigma."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._registry import Option
from ._base import normal_init


def pixel_edge_features(x: Float[Array, " d"], sigma: Float[ArrayLike, ""], cell: float) -> list[Float[Array, " d"]]:
    """Per coordinate, the envelope-weighted Gaussian and erf of d = (offset from the nearest
    pixel edge) / sigma, for cell edges at whole multiples of `cell` (see :class:`GridNet`).

    Arguments:
        x: (D,) a point (data units); sigma: the noise level (data units); cell: a pixel's side.
    Returns:
        [g, e], each (D,): cos(pi c)^2 exp(-d^2 / 2) and cos(pi c)^2 erf(d / sqrt 2), with c
        the offset from the nearest edge in cells (|c| <= 1/2) and d = c cell / sigma.
    """
    q = x / cell
    c = q - jnp.round(q)
    d = c * (cell / sigma)
    envelope = jnp.cos(jnp.pi * c) ** 2  # zero, with zero slope, at the pixel centres
    return [envelope * jnp.exp(-0.5 * d * d), envelope * jax.scipy.special.erf(d * (1.0 / math.sqrt(2.0)))]


WINDOW = 5  # cells per axis around a point that a blurred pixel table sums over: its own and 2 each side
# channel 0 of a pixel table times this is the histogram's logit: Adam moves a parameter by
# about the learning rate per step, and a histogram's logits must move further and faster
# than the grid features (BENCHMARKS.md section 5: at 1 the learned ratios of neighbouring
# pixels were off by up to 8x and hist_tv at 100,000 was 1.49x its floor; at 10, 1.31x)
LOGIT_GAIN = 10.0

# the grid and energy networks' option (an image density's pixel cell comes from train.resolve)
OPT_PIXEL_TABLE = Option("pixel_table", int, 0, "on a piecewise-constant image density: learned features per pixel "
                         "cell, blurred exactly by sigma, the first a histogram whose score (energy, on an energy "
                         "net) is added below a pixel (0: none; no effect on other data)", low=0)

OPT_PIXEL_TABLE_NLL = Option("pixel_table_nll", float, 0.0, "with pixel_table: the weight of the histogram's negative "
                             "log-likelihood of the clean training batch, added to the loss (0: the histogram is "
                             "trained by score matching alone)", low=0.0)


def table_fade(sigma: Float[ArrayLike, ""], cell: float) -> Float[Array, ""]:
    """exp(-(2 sigma / cell)^2): how much of a pixel table's blurred output a network uses at
    sigma (1 far below a pixel, 0.37 at half a pixel, 0.02 at one)."""
    return jnp.exp(-((2.0 * sigma / cell) ** 2))


def table_side(half_width: float, cell: float) -> int:
    """Cells per axis of a pixel table that holds a cube of half side `half_width` wherever
    its centre lies (the count must not depend on the centre, which may be traced)."""
    return max(math.ceil(2.0 * half_width / cell) + 1, WINDOW)


def new_table(centre: Float[Array, " d"], half_width: float, cell: float, features: int,
              key: PRNGKeyArray) -> tuple[Float[Array, "..."], Float[Array, " d"]]:
    """A pixel table for the cube centre +- half_width and its origin: (n,) * D + (F,) values
    ~ N(0, 1e-4) (channel 0 near softplus(0): a near-uniform histogram) and the global index
    of its first cell per axis."""
    shape = (table_side(half_width, cell),) * centre.shape[0] + (features,)
    return 1e-2 * normal_init(key, shape), jnp.floor((centre - half_width) / cell)


def blurred_pixel_table(table: Float[Array, "..."], origin: Float[Array, " d"], x: Float[Array, " d"],
                        sigma: Float[ArrayLike, ""], cell: float) -> tuple[Float[Array, " f"], ...]:
    """A table of per-pixel features blurred exactly by N(0, sigma^2 I), near one point.

    The table holds F features on each cell [k, k + 1) x cell per axis (k counted from
    `origin`). Blurred by sigma, a cell weighs prod_axes (Phi(u_hi) - Phi(u_lo)), u the
    offsets of its edges from x in units of sigma, here summed over the 5^D cells around x
    (x's own cell and two more each side). Channel 0 is read as the log-intensity of a
    histogram, rho = softplus(LOGIT_GAIN f_0): its blurred mass and gradient give sigma grad log
    (rho * N_sigma)(x), sigma times the exact score of the learned histogram while sigma is
    below a cell. Where x crosses a cell edge the window moves by a cell: the cell that
    leaves and the one that enters are tapered to weight 0 there (cos^2 and sin^2 of x's
    offset in its cell), so every output is continuous in x; the taper only touches cells
    1 to 2 cells from x (their weight is below Phi(-cell / sigma)), and everything fades as
    exp(-(2 sigma / cell)^2), leaving larger sigmas to the grids.

    Arguments:
        table: (n,) * D + (F,) features per cell, axis k the k-th coordinate.
        origin: (D,) the global index of the table's first cell per axis (whole numbers).
        x: (D,) a point (data units); sigma: the noise level (data units); cell: a cell's side.
    Returns:
        (value (F,), sigma * gradient (D F,), sigma * score of the histogram (D,)), faded.
    """
    d = x.shape[0]
    block, w, dw = _window(table, origin, x, sigma, cell)

    def slope(k):
        return [dw[j] if j == k else w[j] for j in range(d)]

    rho = _histogram(block)
    value = _blur(block, list(w))
    grad = jnp.concatenate([_blur(block, slope(k)) for k in range(d)])
    score = jnp.stack([_blur(rho, slope(k)) for k in range(d)]) / _mass(rho, w)
    fade = table_fade(sigma, cell)
    return fade * value, fade * grad, fade * score


def blurred_table_energy(table: Float[Array, "..."], origin: Float[Array, " d"], x: Float[Array, " d"],
                         sigma: Float[ArrayLike, ""], cell: float) -> tuple[Float[Array, " f"], Float[Array, ""]]:
    """For an energy network: the table's blurred values near x and the energy of its
    histogram, -fade log (rho * N_sigma)(x), whose negative gradient is the histogram's
    faded score of :func:`blurred_pixel_table` (same table, window and fade).

    Returns:
        (value (F,), energy ()), both faded as exp(-(2 sigma / cell)^2).
    """
    block, w, _ = _window(table, origin, x, sigma, cell)
    fade = table_fade(sigma, cell)
    mass = _mass(_histogram(block), w)
    return fade * _blur(block, list(w)), -fade * jnp.log(mass)


def table_log_density(table: Float[Array, "..."], origin: Float[Array, " d"], x: Float[Array, "b d"],
                      cell: float) -> Float[Array, " b"]:
    """The log-density (per unit volume, data units) of the table's histogram, channel 0
    read as rho = softplus(LOGIT_GAIN f_0) and normalised over the table's cells, at a batch
    of points (each counted in its cell; points outside the table in its nearest edge cell).

    Maximising its mean over data draws is the histogram's maximum-likelihood fit: the
    cells' masses converge to the data's cell frequencies, where denoising score matching
    at small sigma sees a cell's mass relative to its neighbours' only within about sigma
    of their shared edge (BENCHMARKS.md section 5).
    """
    d = x.shape[1]
    rho = _histogram(table)
    n = jnp.asarray(table.shape[:d])
    idx = jnp.clip(jnp.floor(x / cell - origin).astype(jnp.int32), 0, n - 1)
    return jnp.log(rho[tuple(idx.T)]) - jnp.log(jnp.sum(rho)) - d * math.log(cell)


def table_data_loss(table: Float[Array, "..."] | None, origin: Float[Array, " d"] | None, x: Float[Array, "b d"],
                    cell: float | None, weight: float) -> Float[Array, ""] | None:
    """A network's :meth:`~scorefield.nets.ScoreNet.data_loss` for its pixel table: `weight`
    times the histogram's mean negative log-likelihood of the clean batch `x`
    (:func:`table_log_density`); None without a table or with weight 0."""
    if table is None or not weight:
        return None
    return -weight * jnp.mean(table_log_density(table, origin, x, cell))


def _window(table, origin, x, sigma, cell):
    """The table's 5^D cells around x, and per axis their tapered blur weights w and sigma dw/dx."""
    d = x.shape[0]
    q = x / cell
    n = jnp.asarray(table.shape[:d])
    start = jnp.clip(jnp.floor(q - origin).astype(jnp.int32) - 2, 0, n - WINDOW)
    edges = (start + origin)[:, None] + jnp.arange(WINDOW + 1)  # (D, W + 1) in cells
    u = (edges - q[:, None]) * (cell / sigma)
    hi, lo = u[:, 1:], u[:, :-1]
    ndtr = jax.scipy.special.ndtr
    w = jnp.where(lo > 0, ndtr(-lo) - ndtr(-hi), ndtr(hi) - ndtr(lo))  # each tail on its own side: no cancellation
    pdf = jnp.exp(-0.5 * u * u) * (1.0 / math.sqrt(2.0 * math.pi))
    dw = pdf[:, :-1] - pdf[:, 1:]  # sigma * dw / dx
    # the window moves by a cell where x crosses a cell edge (f: 1 -> 0): its first cell
    # leaves and a new last one enters with weights tapered to 0 there, so nothing jumps
    f = q - jnp.floor(q)
    one = jnp.ones_like(f)
    ends = jnp.stack([jnp.cos(0.5 * jnp.pi * f) ** 2, one, one, one, jnp.sin(0.5 * jnp.pi * f) ** 2], axis=1)
    block = jax.lax.dynamic_slice(table, tuple(start) + (0,), (WINDOW,) * d + (table.shape[-1],))
    return block, w * ends, dw * ends


# the least intensity of a histogram cell: maximum likelihood drives an empty cell's logit down
# by about Adam's learning rate every step, without end, and an intensity that underflows to 0
# in every cell near a point makes its blurred score 0/0 and its energy infinite
RHO_FLOOR = 1e-30


def _histogram(table):
    """The histogram intensity of each cell of a table (or block): softplus(LOGIT_GAIN f_0),
    at least RHO_FLOOR (where it gets no gradient: the logit stops there)."""
    return jnp.maximum(jax.nn.softplus(LOGIT_GAIN * table[..., 0]), RHO_FLOOR)


def _mass(rho, w):
    """The histogram's blurred mass near a point, at least RHO_FLOOR * 1e-5: far outside the
    table at a small sigma every weight of the window underflows to 0."""
    return jnp.maximum(_blur(rho, list(w)), RHO_FLOOR * 1e-5)


def _blur(vals, factors):
    for f in factors:  # contract the leading axis each time: axis k meets factor k
        vals = jnp.tensordot(f, vals, axes=(0, 0))
    return vals
