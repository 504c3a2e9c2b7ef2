from __future__ import annotations

import itertools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._errors import ConfigError
from .._registry import Option
from ._base import NETS, NetContext, ScoreNet, normal_init
from ._film import FilmMLP, sigma_frequencies
from ._pixels import (OPT_PIXEL_TABLE, OPT_PIXEL_TABLE_NLL, blurred_pixel_table, new_table, pixel_edge_features,
                      table_data_loss)

# the grid and energy networks' option: how grid points blend (functions in BLENDS below)
OPT_GRID_BLEND = Option("grid_blend", str, "linear", "how the grid points blend: linear (multilinear) or quadratic "
                        "(a C^1 quadratic B-spline: a continuous gradient, so an energy's score is continuous)",
                        choices=("linear", "quadratic"))


@NETS.register
class GridNet(ScoreNet):
    """A continuous-sigma score network on multi-resolution feature grids, for low D (2-3).

    Trainable feature grids at several resolutions cover the cube ``centre +- half_width``;
    a point's features are their multilinear interpolation (clamped outside the cube), as in
    Instant-NGP without hashing. With the centred, scaled input as a skip and log sigma
    through sin/cos features that scale and shift every hidden layer (FiLM), a small SiLU
    MLP maps them to the score, divided by sigma as in NCSNv2. Fine grids hold pixel-scale
    detail at a cost per point independent of the resolution, which makes it far cheaper
    than a wide MLP on random features for images.

    With `pixel_cell` (the side of a pixel cell of a piecewise-constant image density, whose
    cell edges lie at whole multiples of it) the MLP also sees, per coordinate, where the
    point is relative to the nearest pixel edge in units of sigma: with c the offset from
    that edge in cells (|c| <= 1/2) and d = c cell / sigma, the features
    ``cos(pi c)^2 exp(-d^2/2)`` and ``cos(pi c)^2 erf(d / sqrt 2)``: the shapes of the
    smoothed density's score and value across one edge, which a multilinear grid cannot
    form once sigma is below its grid step. The envelope cos(pi c)^2 vanishes with its slope
    at the pixel centres, where the nearest edge changes sides, so the features (and the
    score) stay continuously differentiable. At sigma well above a pixel they are constant.
    """

    grids: tuple[Float[Array, "..."], ...]
    freqs: Float[Array, " k"]
    centre: Float[Array, " d"]
    half_width: Float[Array, ""]
    trunk: FilmMLP
    table: Float[Array, "..."] | None
    table_origin: Float[Array, " d"] | None
    pixel_cell: float | None = eqx.field(static=True, default=None)
    pixel_edges: bool = eqx.field(static=True, default=True)
    blend: str = eqx.field(static=True, default="linear")
    table_nll: float = eqx.field(static=True, default=0.0)

    frozen = ("freqs", "centre", "half_width", "table_origin")
    name = "grid"
    options = (
        Option("grid_resolutions", list, [8, 16, 32, 64], "grid points per side of each grid", low=2),
        Option("grid_features", int, 4, "features stored at each grid point", low=1),
        OPT_GRID_BLEND,
        Option("width", int, 128, "hidden width of the MLP", low=1),
        Option("depth", int, 3, "number of hidden layers of the MLP", low=1),
        Option("pixel_edges", bool, False, "on a piecewise-constant image density: features of the distance to the "
               "nearest pixel edge in units of sigma (no effect on other data)"),
        OPT_PIXEL_TABLE,
        OPT_PIXEL_TABLE_NLL,
    )

    @classmethod
    def from_options(cls, context: NetContext, *, grid_resolutions, grid_features, width, depth,
                     pixel_edges=False, grid_blend="linear", pixel_table=0, pixel_table_nll=0.0) -> "GridNet":
        if context.half_width is None:
            raise ConfigError("net=\"grid\" needs half_width, the half side of the cube its grids cover")
        cell = context.pixel_cell if (pixel_edges or pixel_table) else None
        return cls(context.dim, resolutions=tuple(grid_resolutions), n_grid_features=grid_features, width=width,
                   depth=depth, centre=context.centre, half_width=float(context.half_width), pixel_cell=cell,
                   blend=grid_blend, pixel_edges=bool(pixel_edges), table_features=int(pixel_table),
                   table_nll=float(pixel_table_nll), key=context.key)

    def __init__(
        self,
        dim: int,
        *,
        resolutions: tuple[int, ...] = (8, 16, 32, 64),
        n_grid_features: int = 4,
        width: int = 64,
        depth: int = 2,
        sigma_features: int = 16,
        centre: Float[Array, " d"] | None = None,
        half_width: float = 1.0,
        pixel_cell: float | None = None,
        blend: str = "linear",
        pixel_edges: bool = True,
        table_features: int = 0,
        table_nll: float = 0.0,
        key: PRNGKeyArray,
    ):
        """Arguments:
            dim: D, the data dimension (grids have R^D cells: keep D <= 3).
            resolutions: grid points per side of each grid.
            n_grid_features: features stored at each grid point.
            width, depth: hidden width and number of hidden layers of the MLP.
            sigma_features: number of sin/cos frequencies of log sigma.
            centre, half_width: the cube the grids cover, in data units.
            pixel_cell: the side of a pixel cell (data units) of a piecewise-constant image
                density with cell edges at its whole multiples, for the pixel-edge features
                (2 D more inputs of the MLP); None: no such features.
            blend: "linear" (multilinear) or "quadratic" (C^1 quadratic B-spline) blending
                of the grid points.
            pixel_edges: with `pixel_cell`, the pixel-edge features.
            table_features: with `pixel_cell`, F learned features per pixel cell of the cube,
                blurred exactly by sigma (:func:`blurred_pixel_table`): their values and
                slopes are MLP inputs, and the score of the histogram in channel 0 is added
                to the MLP's output; 0: none.
            table_nll: the weight of the histogram's negative log-likelihood on the clean
                training batch (:meth:`data_loss`), added to the objective's loss; 0: the
                histogram is trained by the objective alone.
            key: split so that every part has its own randomness.
        """
        if pixel_cell is not None and not (math.isfinite(pixel_cell) and pixel_cell > 0):
            raise ConfigError(f"pixel_cell={pixel_cell!r} must be a positive number (a pixel's side in data units)")
        kg, kt = jax.random.split(key)
        self.grids = tuple(
            1e-2 * normal_init(k, (r,) * dim + (n_grid_features,))
            for k, r in zip(jax.random.split(kg, len(resolutions)), resolutions)
        )
        self.freqs = sigma_frequencies(sigma_features)
        self.centre = jnp.zeros(dim) if centre is None else jnp.asarray(centre, jnp.float32)
        self.half_width = jnp.asarray(half_width, jnp.float32)
        self.pixel_cell = None if pixel_cell is None else float(pixel_cell)
        self.blend = check_blend(blend, resolutions)
        self.pixel_edges = pixel_cell is not None and bool(pixel_edges)
        self.table, self.table_origin = None, None
        if pixel_cell is not None and table_features:
            self.table, self.table_origin = new_table(self.centre, half_width, pixel_cell, table_features,
                                                      jax.random.fold_in(key, 1))
        n_in = (len(resolutions) * n_grid_features + dim + (2 * dim if self.pixel_edges else 0)
                + ((1 + dim) * table_features + dim if self.table is not None else 0))
        self.trunk = FilmMLP(n_in, dim, 2 * sigma_features, width, depth, key=kt)
        self.table_nll = float(table_nll)

    def __call__(self, x: Float[Array, " d"], sigma: Float[ArrayLike, ""]) -> Float[Array, " d"]:
        u = (x - self.centre) / self.half_width  # the cube is [-1, 1]^D
        t = jnp.clip(0.5 * (u + 1.0), 0.0, 1.0)
        feats = [BLENDS[self.blend](g, t) for g in self.grids] + [u]
        if self.pixel_edges:
            feats += pixel_edge_features(x, sigma, self.pixel_cell)
        head = 0.0
        if self.table is not None:
            value, slope, head = blurred_pixel_table(self.table, self.table_origin, x, sigma, self.pixel_cell)
            feats += [value, slope, head]
        return (self.trunk(jnp.concatenate(feats), jnp.log(sigma) * self.freqs) + head) / sigma

    def data_loss(self, x: Float[Array, "b d"]) -> Float[Array, ""] | None:
        """`table_nll` times the mean negative log-likelihood (nats per point, densities per
        unit area) of the table's histogram at the clean batch `x` (:func:`table_log_density`);
        None without a table or with weight 0."""
        return table_data_loss(self.table, self.table_origin, x, self.pixel_cell, self.table_nll)


def _interpolate(grid: Float[Array, "..."], t: Float[Array, " d"]) -> Float[Array, " f"]:
    """Multilinear interpolation of `grid` (R^D points x F features) at t in [0, 1]^D."""
    d = t.shape[0]
    res = jnp.asarray(grid.shape[:d])
    pos = t * (res - 1)
    i0 = jnp.clip(jnp.floor(pos).astype(jnp.int32), 0, res - 2)
    w = pos - i0
    out = 0.0
    for corner in itertools.product((0, 1), repeat=d):
        c = jnp.asarray(corner)
        weight = jnp.prod(jnp.where(c == 1, w, 1.0 - w))
        out = out + weight * grid[tuple(i0 + c)]
    return out


def _interpolate_quadratic(grid: Float[Array, "..."], t: Float[Array, " d"]) -> Float[Array, " f"]:
    """Quadratic B-spline blend of `grid` (R^D points x F features, R >= 3) at t in [0, 1]^D.

    Unlike the multilinear blend its gradient in t is continuous (the blend is C^1), so an
    energy built on these features has a continuous score."""
    d = t.shape[0]
    res = jnp.asarray(grid.shape[:d])
    pos = t * (res - 1)
    i = jnp.clip(jnp.round(pos).astype(jnp.int32), 1, res - 2)
    f = pos - i
    weights = (0.5 * (0.5 - f) ** 2, 0.75 - f**2, 0.5 * (0.5 + f) ** 2)  # each of shape (D,)
    out = 0.0
    for corner in itertools.product((0, 1, 2), repeat=d):
        weight = jnp.prod(jnp.stack([weights[c][k] for k, c in enumerate(corner)]))
        out = out + weight * grid[tuple(i + jnp.asarray(corner) - 1)]
    return out


BLENDS = {"linear": _interpolate, "quadratic": _interpolate_quadratic}


def check_blend(blend: str, resolutions: tuple[int, ...]) -> str:
    """`blend` if it is a known blend that the grids' resolutions allow (none: no grids),
    else ConfigError."""
    if blend not in BLENDS:
        raise ConfigError(f"grid_blend={blend!r} must be one of {', '.join(BLENDS)}")
    if blend == "quadratic" and resolutions and min(resolutions) < 3:
        raise ConfigError(f"grid_blend=\"quadratic\" needs at least 3 points per side in every grid "
                          f"(grid_resolutions={list(resolutions)})")
    return blend
