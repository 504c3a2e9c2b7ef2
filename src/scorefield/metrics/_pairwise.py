"""Sums over all pairs of two point sets, block by block, so that the n x m matrix of
pair values never exists in memory (10^5 x 10^5 pairs would be 40 GB in float32)."""

from __future__ import annotations

from typing import Callable

import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float

# Elements of one (block, block, D) difference tensor: 2^21 float32 = 8 MB per block.
_BLOCK_BUDGET = 1 << 21


def block_size(d: int, budget: int = _BLOCK_BUDGET) -> int:
    """Rows per block for D-dimensional points: B with B*B*D about `budget`, in [8, 1024]."""
    return max(8, min(1024, int((budget / max(d, 1)) ** 0.5)))


def _blocks(x: Float[Array, "n d"], b: int) -> tuple[Float[Array, "nb b d"], Float[Array, "nb b"]]:
    n = x.shape[0]
    nb = -(-n // b)
    pad = nb * b - n
    xp = jnp.pad(x, ((0, pad), (0, 0)))
    mask = jnp.pad(jnp.ones((n,), x.dtype), (0, pad))
    return xp.reshape(nb, b, x.shape[1]), mask.reshape(nb, b)


def pair_sum(
    phi: Callable[[Float[Array, "..."]], Float[Array, "..."]],
    x: Float[Array, "n d"],
    y: Float[Array, "m d"],
    *,
    block: int | None = None,
) -> Float[Array, ""]:
    """sum_{i,j} phi(|x_i - y_j|^2) over all n*m pairs, diagonal included.

    Arguments:
        phi: elementwise function of the squared Euclidean distance; must be finite at 0
            (padding rows are masked by multiplication, not by selection).
        x, y: point sets of shapes (n, d) and (m, d).
        block: rows per block (default from `block_size(d)`); memory is O(block^2 d).
    Returns:
        the sum, a float scalar. Block sums are summed as one array at the end (a tree
        reduction) rather than accumulated in a loop, which keeps float32 error small.
    """
    b = block_size(x.shape[1]) if block is None else block
    xb, wx = _blocks(x, min(b, x.shape[0]))
    yb, wy = _blocks(y, min(b, y.shape[0]))

    def row(args):
        xi, wi = args

        def cell(args2):
            yj, wj = args2
            # Differences, not |x|^2 + |y|^2 - 2 x.y: that form cancels catastrophically
            # for near points, and energy distance takes sqrt of these values.
            d2 = jnp.sum(jnp.square(xi[:, None, :] - yj[None, :, :]), axis=-1)
            return jnp.sum(wi[:, None] * wj[None, :] * phi(d2))

        return lax.map(cell, (yb, wy))

    return jnp.sum(lax.map(row, (xb, wx)))
