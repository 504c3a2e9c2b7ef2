from __future__ import annotations

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._base import ScoreNet
from ._trig import sincos_turns


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
    inp: eqx.nn.Linear
    hidden: tuple[eqx.nn.Linear, ...]
    film: eqx.nn.Linear
    out: eqx.nn.Linear
    width: int = eqx.field(static=True)

    frozen = ("freqs", "centre", "half_width")

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
        kg, ki, kh, kf, ko = jax.random.split(key, 5)
        self.grids = tuple(
            1e-2 * jax.random.normal(k, (r,) * dim + (n_grid_features,))
            for k, r in zip(jax.random.split(kg, len(resolutions)), resolutions)
        )
        self.freqs = jnp.geomspace(1.0 / 16.0, 4.0, sigma_features) / (2 * jnp.pi)
        self.centre = jnp.zeros(dim) if centre is None else jnp.asarray(centre, jnp.float32)
        self.half_width = jnp.asarray(half_width, jnp.float32)
        self.inp = eqx.nn.Linear(len(resolutions) * n_grid_features + dim, width, key=ki)
        self.hidden = tuple(eqx.nn.Linear(width, width, key=k) for k in jax.random.split(kh, depth - 1))
        film = eqx.nn.Linear(2 * sigma_features, 2 * width * depth, key=kf)
        self.film = eqx.tree_at(lambda l: l.weight, film, film.weight * 0.1)
        out = eqx.nn.Linear(width, dim, key=ko)
        self.out = eqx.tree_at(lambda l: l.weight, out, out.weight * 0.1)
        self.width = width

    def __call__(self, x: Float[Array, " d"], sigma: Float[Array, ""]) -> Float[Array, " d"]:
        u = (x - self.centre) / self.half_width  # the cube is [-1, 1]^D
        t = jnp.clip(0.5 * (u + 1.0), 0.0, 1.0)
        feats = [_interpolate(g, t) for g in self.grids]
        h = self.inp(jnp.concatenate(feats + [u]))
        film = self.film(jnp.concatenate(sincos_turns(jnp.log(sigma) * self.freqs))).reshape(len(self.hidden) + 1, 2, self.width)
        for i, layer in enumerate((None,) + self.hidden):
            if layer is not None:
                h = layer(h)
            h = jax.nn.silu(h * (1.0 + film[i, 0]) + film[i, 1])
        return self.out(h) / sigma


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
