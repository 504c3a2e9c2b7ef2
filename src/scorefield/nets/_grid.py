from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._errors import ConfigError
from .._registry import Option
from ._base import NETS, NetContext, ScoreNet, normal_init
from ._film import FilmMLP, sigma_frequencies


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
    """

    grids: tuple[Float[Array, "..."], ...]
    freqs: Float[Array, " k"]
    centre: Float[Array, " d"]
    half_width: Float[Array, ""]
    trunk: FilmMLP

    frozen = ("freqs", "centre", "half_width")
    name = "grid"
    options = (
        Option("grid_resolutions", list, [8, 16, 32, 64], "grid points per side of each grid", low=2),
        Option("grid_features", int, 4, "features stored at each grid point", low=1),
        Option("width", int, 128, "hidden width of the MLP", low=1),
        Option("depth", int, 3, "number of hidden layers of the MLP", low=1),
    )

    @classmethod
    def from_options(cls, context: NetContext, *, grid_resolutions, grid_features, width, depth) -> "GridNet":
        if context.half_width is None:
            raise ConfigError("net=\"grid\" needs half_width, the half side of the cube its grids cover")
        return cls(context.dim, resolutions=tuple(grid_resolutions), n_grid_features=grid_features, width=width,
                   depth=depth, centre=context.centre, half_width=float(context.half_width), key=context.key)

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
        key: PRNGKeyArray,
    ):
        """Arguments:
            dim: D, the data dimension (grids have R^D cells: keep D <= 3).
            resolutions: grid points per side of each grid.
            n_grid_features: features stored at each grid point.
            width, depth: hidden width and number of hidden layers of the MLP.
            sigma_features: number of sin/cos frequencies of log sigma.
            centre, half_width: the cube the grids cover, in data units.
            key: split so that every part has its own randomness.
        """
        kg, kt = jax.random.split(key)
        self.grids = tuple(
            1e-2 * normal_init(k, (r,) * dim + (n_grid_features,))
            for k, r in zip(jax.random.split(kg, len(resolutions)), resolutions)
        )
        self.freqs = sigma_frequencies(sigma_features)
        self.centre = jnp.zeros(dim) if centre is None else jnp.asarray(centre, jnp.float32)
        self.half_width = jnp.asarray(half_width, jnp.float32)
        self.trunk = FilmMLP(len(resolutions) * n_grid_features + dim, dim, 2 * sigma_features, width, depth, key=kt)

    def __call__(self, x: Float[Array, " d"], sigma: Float[ArrayLike, ""]) -> Float[Array, " d"]:
        u = (x - self.centre) / self.half_width  # the cube is [-1, 1]^D
        t = jnp.clip(0.5 * (u + 1.0), 0.0, 1.0)
        feats = [_interpolate(g, t) for g in self.grids]
        return self.trunk(jnp.concatenate(feats + [u]), jnp.log(sigma) * self.freqs) / sigma


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
