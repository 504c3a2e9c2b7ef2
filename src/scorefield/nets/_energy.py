"""An energy-parameterised network: a scalar E(x, sigma) whose negative gradient is the score."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._errors import ConfigError
from .._registry import Option
from ._base import NETS, NetContext, ScoreNet, normal_init
from ._film import FilmMLP, sigma_frequencies
from ._grid import BLENDS, OPT_GRID_BLEND, check_blend
from ._pixels import (OPT_PIXEL_TABLE, OPT_PIXEL_TABLE_NLL, blurred_table_energy, new_table, table_data_loss,
                      table_fade)
from ._trig import sincos_turns

BACKBONES = ("grid", "fourier")


@NETS.register
class EnergyNet(ScoreNet):
    """A network with a log-density: E(x, sigma) ~ -log p_sigma(x) + const, score -grad_x E.

    The energy is a Gaussian prior term plus a learned term divided by sigma,

        E(x, sigma) = 0.5 |x - c|^2 / (sigma^2 + prior_scale^2) + g(x, sigma) / sigma,

    where g is the scalar output of a score network's trunk (the FiLM MLP of the
    continuous-sigma networks) on the features of a backbone: the multi-resolution feature
    grids of :class:`GridNet` (``backbone="grid"``, D <= 3) or the random Fourier features of
    :class:`SigmaNet` (``backbone="fourier"``). The recipe blends the grid points with a
    quadratic B-spline (``blend="quadratic"``): a multilinear blend's gradient jumps at every
    grid line, and so would the score. Dividing by sigma keeps the trunk's gradient,
    sigma * s, O(1) at every level, as the score networks' output / sigma does. The prior
    term is the exact energy of Gaussian data of standard deviation `prior_scale` per
    coordinate; the trunk starts near 0, so training starts from that Gaussian, and far
    from the data (where the trunk has seen nothing) the density still decays. (Measured
    choices are in BENCHMARKS.md.)

    ``net(x, sigma)`` is the score ``-grad_x E`` (same shapes as every ScoreNet, so every
    objective trains it unchanged); :meth:`energy` and :meth:`log_prob` give the scalar.
    """

    backbone: str = eqx.field(static=True)
    blend: str = eqx.field(static=True)
    grids: tuple[Float[Array, "..."], ...]
    b: Float[Array, "f d"]
    freqs: Float[Array, " k"]
    centre: Float[Array, " d"]
    half_width: Float[Array, ""]
    prior_scale: Float[Array, ""]
    trunk: FilmMLP
    table: Float[Array, "..."] | None
    table_origin: Float[Array, " d"] | None
    prior: bool = eqx.field(static=True)
    pixel_cell: float | None = eqx.field(static=True, default=None)
    table_nll: float = eqx.field(static=True, default=0.0)
    table_gate: bool = eqx.field(static=True, default=False)

    frozen = ("b", "freqs", "centre", "half_width", "prior_scale", "table_origin")
    name = "energy"
    options = (
        Option("energy_backbone", str, "auto", "features of the energy network: grid (feature grids, D <= 3), "
               "fourier (random Fourier features) or auto (grid for D <= 2, else fourier)", choices=("auto",) + BACKBONES),
        Option("grid_resolutions", list, [8, 16, 32, 64], "grid points per side of each grid", low=2),
        OPT_GRID_BLEND,
        Option("grid_features", int, 4, "features stored at each grid point", low=1),
        Option("n_features", int, 128, "random Fourier frequencies (2 n_features features)", low=1),
        Option("feature_scale", float, 8.0, "std of the frequencies, cycles per data unit", low=0, low_open=True),
        Option("width", int, 128, "hidden width of the MLP", low=1),
        Option("depth", int, 3, "number of hidden layers of the MLP", low=1),
        OPT_PIXEL_TABLE,
        OPT_PIXEL_TABLE_NLL,
        Option("pixel_table_gate", bool, False, "with pixel_table: the trunk's energy and the prior term times "
               "(1 - exp(-(2 sigma / cell)^2))^2, so that far below a pixel the energy is the table's histogram's"),
    )

    @classmethod
    def from_options(cls, context: NetContext, *, energy_backbone, grid_resolutions, grid_blend, grid_features, n_features,
                     feature_scale, width, depth, pixel_table=0, pixel_table_nll=0.0, pixel_table_gate=False) -> "EnergyNet":
        backbone = ("grid" if context.dim <= 2 else "fourier") if energy_backbone == "auto" else energy_backbone
        if backbone == "grid" and context.dim > 3:
            raise ConfigError(f"net=\"energy\" with energy_backbone=\"grid\" is for data of dimension 1 to 3 "
                              f"(here {context.dim}); use energy_backbone=\"fourier\"")
        if context.half_width is None:
            raise ConfigError("net=\"energy\" needs half_width, the half side of a cube around the centre that holds the data")
        return cls(context.dim, backbone=backbone, resolutions=tuple(grid_resolutions), blend=grid_blend, n_grid_features=grid_features,
                   n_features=n_features, feature_scale=feature_scale, width=width, depth=depth,
                   centre=context.centre, half_width=float(context.half_width),
                   pixel_cell=context.pixel_cell if pixel_table else None, table_features=int(pixel_table),
                   table_nll=float(pixel_table_nll), table_gate=bool(pixel_table_gate), key=context.key)

    def __init__(
        self,
        dim: int,
        *,
        backbone: str = "grid",
        resolutions: tuple[int, ...] = (8, 16, 32, 64),
        blend: str = "linear",
        n_grid_features: int = 4,
        n_features: int = 128,
        feature_scale: float = 8.0,
        width: int = 64,
        depth: int = 2,
        sigma_features: int = 16,
        centre: Float[Array, " d"] | None = None,
        half_width: float = 1.0,
        prior_scale: float | None = None,
        prior: bool = True,
        pixel_cell: float | None = None,
        table_features: int = 0,
        table_nll: float = 0.0,
        table_gate: bool = False,
        key: PRNGKeyArray,
    ):
        """Arguments:
            dim: D, the data dimension.
            backbone: "grid" (feature grids, D <= 3) or "fourier" (random Fourier features).
            resolutions, n_grid_features: the grids (backbone "grid"; see GridNet).
            blend: "linear" (multilinear) or "quadratic" (C^1 quadratic B-spline) blending
                of the grid points.
            n_features, feature_scale: the Fourier features (backbone "fourier"; see SigmaNet).
            width, depth: hidden width and number of hidden layers of the trunk.
            sigma_features: number of sin/cos frequencies of log sigma.
            centre: c, the data centre (default the origin); half_width: the grids' cube.
            prior_scale: standard deviation of the Gaussian prior term, data units
                (default half_width / 2).
            prior: include the prior term (False: E = g / sigma alone).
            pixel_cell, table_features: with both, F learned features per pixel cell of a
                piecewise-constant image density (cell edges at whole multiples of
                pixel_cell), blurred exactly by sigma: their values are trunk inputs, and the
                energy of the histogram in channel 0 (:func:`blurred_table_energy`) is added.
            table_nll: the weight of the histogram's negative log-likelihood on the clean
                training batch (:meth:`data_loss`); 0: trained by the objective alone.
            table_gate: with a table, the trunk's energy and the prior term times
                (1 - table_fade)^2: far below a pixel, where the trunk's E / sigma would
                amplify any offset it holds between cells (DSM pins those only within sigma
                of an edge) and the prior tilts the image, the energy is the histogram's.
            key: split so that every part has its own randomness.
        """
        if backbone not in BACKBONES:
            raise ValueError(f"backbone={backbone!r} must be one of {', '.join(BACKBONES)}")
        # the backbones' own initialisation (GridNet's, SigmaNet's: the same key splits), so
        # features start as in the score networks
        kf, kt = jax.random.split(key)
        if backbone == "grid":
            self.grids = tuple(
                1e-2 * normal_init(k, (r,) * dim + (n_grid_features,))
                for k, r in zip(jax.random.split(kf, len(resolutions)), resolutions)
            )
            self.b = jnp.zeros((0, dim))
            in_size = len(resolutions) * n_grid_features + dim
        else:
            self.grids = ()
            self.b = feature_scale * jax.random.normal(kf, (n_features, dim))
            in_size = 2 * n_features + dim
        self.backbone = backbone
        self.blend = check_blend(blend, resolutions if backbone == "grid" else ())
        self.freqs = sigma_frequencies(sigma_features)
        self.centre = jnp.zeros(dim) if centre is None else jnp.asarray(centre, jnp.float32)
        self.half_width = jnp.asarray(half_width, jnp.float32)
        self.prior_scale = jnp.asarray(0.5 * half_width if prior_scale is None else prior_scale, jnp.float32)
        self.prior = bool(prior)
        self.table, self.table_origin, self.pixel_cell = None, None, None
        if pixel_cell is not None and table_features:
            self.table, self.table_origin = new_table(self.centre, half_width, pixel_cell, table_features,
                                                      jax.random.fold_in(key, 1))
            self.pixel_cell = float(pixel_cell)
            in_size += table_features
        self.table_nll = float(table_nll)
        self.table_gate = bool(table_gate) and self.table is not None
        trunk = FilmMLP(in_size, 1, 2 * sigma_features, width, depth, key=kt)
        # no bias in the last layer: a constant added to the energy changes no score, so it
        # would get no gradient (and the log-density is defined up to a constant anyway)
        out = eqx.nn.Linear(width, 1, use_bias=False, key=kt)
        self.trunk = eqx.tree_at(lambda t: t.out, trunk, eqx.tree_at(lambda l: l.weight, out, trunk.out.weight))

    def _features(self, u: Float[Array, " d"]) -> Float[Array, " f"]:
        if self.backbone == "grid":
            v = u / self.half_width  # the cube is [-1, 1]^D
            t = jnp.clip(0.5 * (v + 1.0), 0.0, 1.0)
            return jnp.concatenate([BLENDS[self.blend](g, t) for g in self.grids] + [v])
        sin, cos = sincos_turns(self.b @ u)
        return jnp.concatenate([cos, sin, u])

    def energy(self, x: Float[Array, " d"], sigma: Float[ArrayLike, ""]) -> Float[Array, ""]:
        """E(x, sigma), equal to -log p_sigma(x) up to a constant in x (dimensionless)."""
        sigma = jnp.asarray(sigma, jnp.float32)
        u = x - self.centre
        feats, head, gate = self._features(u), 0.0, 1.0
        if self.table is not None:
            value, head = blurred_table_energy(self.table, self.table_origin, x, sigma, self.pixel_cell)
            feats = jnp.concatenate([feats, value])
            if self.table_gate:
                gate = (1.0 - table_fade(sigma, self.pixel_cell)) ** 2
        e = gate * self.trunk(feats, jnp.log(sigma) * self.freqs)[0] / sigma + head
        if self.prior:
            e = e + gate * 0.5 * jnp.sum(u**2) / (sigma**2 + self.prior_scale**2)
        return e

    def log_prob(self, x: Float[Array, " d"], sigma: Float[ArrayLike, ""]) -> Float[Array, ""]:
        """-E(x, sigma): the unnormalised log-density of the data smoothed by sigma."""
        return -self.energy(x, sigma)

    def __call__(self, x: Float[Array, " d"], sigma: Float[ArrayLike, ""]) -> Float[Array, " d"]:
        return -jax.grad(self.energy)(x, sigma)

    def data_loss(self, x: Float[Array, "b d"]) -> Float[Array, ""] | None:
        """`table_nll` times the mean negative log-likelihood of the table's histogram at the
        clean batch `x` (:func:`table_data_loss`); None without a table or with weight 0."""
        return table_data_loss(self.table, self.table_origin, x, self.pixel_cell, self.table_nll)


def is_energy(model) -> bool:
    """True when `model` has a log-density (an :class:`EnergyNet`)."""
    return isinstance(model, EnergyNet)
