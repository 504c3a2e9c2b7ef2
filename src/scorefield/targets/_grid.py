"""Densities on a 2-D grid of square cells: piecewise constant (uniform in each cell) or
point masses at cell centres. Exact sampling, and the exact log-density of the grid
smoothed by N(0, sigma^2 I), which factorises per cell into one factor along x times one
along y."""

from __future__ import annotations

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ._base import NoDensityError, SmoothedTarget
from ._special import log_normal_mass, log_normal_pdf


class GridDensity(SmoothedTarget):
    """Base of `ImageDensity` and `Checkerboard`: mass `probs[r, c]` on the square cell of
    row r (row 0 at the top, y decreasing with r) and column c (x increasing with c).

    The cell (r, c) covers x in `[x0 + c h, x0 + (c+1) h]`, y in
    `[y0 + (H-1-r) h, y0 + (H-r) h]` with `(x0, y0) = origin` its bottom-left corner and
    `h = cell` the side. With `centres=True` the mass sits at the cell centre instead.
    """

    probs: Float[Array, "h w"]
    height: int = eqx.field(static=True)
    width: int = eqx.field(static=True)
    centres: bool = eqx.field(static=True)

    @property
    @abc.abstractmethod
    def origin(self) -> tuple[float, float]:
        """Bottom-left corner (x0, y0) of the grid in data coordinates."""

    @property
    @abc.abstractmethod
    def cell(self) -> float:
        """Side length of one square cell in data coordinates."""

    @property
    def dim(self) -> int:
        return 2

    def _edges(self):
        """Left edges of the columns (W,) and bottom edges of the rows (H,)."""
        x0, y0 = self.origin
        h = self.cell
        x_left = x0 + h * jnp.arange(self.width, dtype=jnp.float32)
        y_bottom = y0 + h * (self.height - 1 - jnp.arange(self.height, dtype=jnp.float32))
        return x_left, y_bottom

    def _log_probs(self):
        # Zero cells get -inf exactly; logsumexp gives them weight 0 and no NaN gradient.
        return jnp.where(self.probs > 0, jnp.log(jnp.where(self.probs > 0, self.probs, 1.0)), -jnp.inf)

    def smoothed_log_prob(self, x: Float[ArrayLike, " 2"], sigma) -> Float[Array, ""]:
        """Exact `log (p * N(0, sigma^2 I))(x)` at one point `x = (x, y)`, `sigma > 0`.

        Cells: sum_{r,c} P[r,c] gx_c(x) gy_r(y), gx_c(x) = (Phi((x-a_c)/sigma) -
        Phi((x-b_c)/sigma)) / (b_c - a_c); centres: the Gaussian mixture at the centres.
        Evaluated as a logsumexp over all H*W cells, so it stays finite for sigma down to
        ~1e-5 cell sides and far outside the grid; O(HW) per point.
        """
        sigma = jnp.asarray(sigma, jnp.float32)
        h = self.cell
        x_left, y_bottom = self._edges()
        zx = (x[0] - (x_left + 0.5 * h)) / sigma
        zy = (x[1] - (y_bottom + 0.5 * h)) / sigma
        if self.centres:
            lx = log_normal_pdf(zx) - jnp.log(sigma)
            ly = log_normal_pdf(zy) - jnp.log(sigma)
        else:
            w = h / sigma
            lx = log_normal_mass(zx, w) - math.log(h)
            ly = log_normal_mass(zy, w) - math.log(h)
        return jax.nn.logsumexp(self._log_probs() + ly[:, None] + lx[None, :])

    def smoothed_score(self, x: Float[ArrayLike, " 2"], sigma) -> Float[Array, " 2"]:
        """`grad_x` of :meth:`smoothed_log_prob`, by autodiff."""
        return jax.grad(self.smoothed_log_prob)(x, sigma)

    def _cell_index(self, x):
        x0, y0 = self.origin
        h = self.cell
        c = jnp.floor((x[0] - x0) / h).astype(jnp.int32)
        r = self.height - 1 - jnp.floor((x[1] - y0) / h).astype(jnp.int32)
        inside = (c >= 0) & (c < self.width) & (r >= 0) & (r < self.height)
        return r, c, inside

    def log_prob(self, x: Float[ArrayLike, " 2"]) -> Float[Array, ""]:
        """log of the piecewise-constant density: log(P[r, c] / h^2) inside cell (r, c),
        -inf outside the grid. Point masses (`centres=True`) have no density and raise
        `NoDensityError`; use `smoothed_log_prob`."""
        if self.centres:
            raise NoDensityError(
                f"{type(self).__name__} with centres=True is a sum of point masses and has no density; "
                "use smoothed_log_prob(x, sigma) with sigma > 0"
            )
        r, c, inside = self._cell_index(x)
        p = self.probs[jnp.clip(r, 0, self.height - 1), jnp.clip(c, 0, self.width - 1)]
        return jnp.where(inside & (p > 0), jnp.log(jnp.where(p > 0, p, 1.0)) - 2.0 * math.log(self.cell), -jnp.inf)

    def score(self, x: Float[ArrayLike, " 2"]) -> Float[Array, " 2"]:
        """Zero: the density is constant inside each cell (undefined on cell edges and
        outside the support, where zero is returned too). Raises for `centres=True`."""
        self.log_prob(x)  # raises for point masses
        return jnp.zeros_like(x)

    def sample(self, key: PRNGKeyArray, n: int) -> Float[Array, "n 2"]:
        """Exact samples: a cell drawn with probability `probs[r, c]` (inverse CDF, O(log HW)
        per sample), then uniform in the cell (or its centre for `centres=True`)."""
        kc, ku = jax.random.split(key)
        p = self.probs.reshape(-1)
        cdf = jnp.cumsum(p)
        u = jax.random.uniform(kc, (n,), jnp.float32) * cdf[-1]
        idx = jnp.searchsorted(cdf, u, side="right")
        # Rounding can push u onto the last value of the cdf; clamp to the last cell with
        # mass so a zero-mass cell is never drawn.
        last = p.shape[0] - 1 - jnp.argmax(p[::-1] > 0)
        idx = jnp.minimum(idx, last)
        r, c = jnp.divmod(idx, self.width)
        if self.centres:
            off = jnp.full((n, 2), 0.5, jnp.float32)
        else:
            off = jax.random.uniform(ku, (n, 2), jnp.float32)
        x0, y0 = self.origin
        h = self.cell
        xs = x0 + (c + off[:, 0]) * h
        ys = y0 + (self.height - 1 - r + off[:, 1]) * h
        return jnp.stack([xs, ys], axis=-1).astype(jnp.float32)
