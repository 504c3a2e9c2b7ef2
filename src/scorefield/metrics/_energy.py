"""Energy distance (Szekely and Rizzo) between two samples in any dimension."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from . import _validate
from ._pairwise import pair_sum


def _dist(d2):
    return jnp.sqrt(jnp.maximum(d2, 0.0))


@partial(jax.jit, static_argnames=("unbiased", "block"))
def _energy(x, y, unbiased, block):
    n, m = x.shape[0], y.shape[0]
    sxy = pair_sum(_dist, x, y, block=block)
    sxx = pair_sum(_dist, x, x, block=block)
    syy = pair_sum(_dist, y, y, block=block)
    # The diagonal |x_i - x_i| = 0 adds nothing, so only the divisor differs. Divisors as
    # Python floats: n * m overflows int32 once n, m > 46340.
    nx, ny = (float(n * (n - 1)), float(m * (m - 1))) if unbiased else (float(n * n), float(m * m))
    return 2.0 * sxy / float(n * m) - sxx / nx - syy / ny


def energy_distance(
    x: ArrayLike,
    y: ArrayLike,
    *,
    unbiased: bool = False,
    block: int | None = None,
) -> Float[Array, ""]:
    """Energy distance 2 E|X - Y| - E|X - X'| - E|Y - Y'| (Euclidean norms), in the units
    of the data (it is not squared again; scipy's 1-D `energy_distance` is its square root).

    Arguments:
        x, y: samples of shapes (n, d) and (m, d), any d, n and m may differ.
        unbiased: False (default): the V-statistic, the exact energy distance between the
            two empirical distributions; always >= 0, with mean E|X - X'| (1/n + 1/m)
            between two samples of one distribution (its floor).
            True: the U-statistic (diagonal pairs excluded from the within-sample terms);
            unbiased for the population value (0 when the distributions agree), can be < 0.
        block: rows per block; memory is O(block^2 d), never O(n m).
    Returns:
        float scalar.
    """
    x = _validate.points("x", x, min_n=2 if unbiased else 1)
    y = _validate.points("y", y, min_n=2 if unbiased else 1)
    _validate.same_dim("x", x, "y", y)
    dtype = jnp.result_type(x.dtype, y.dtype)
    return _energy(x.astype(dtype), y.astype(dtype), unbiased, block)
