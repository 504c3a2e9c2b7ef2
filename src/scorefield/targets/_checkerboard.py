"""The checkerboard toy density as a closed-form target."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ._grid import GridDensity


def _board() -> np.ndarray:
    # Row 0 is the top row (y in [2, 4]); cell (r, c) is occupied when the column index
    # counted from the left plus the row index counted from the bottom is even, which puts
    # mass on [-4,-2] x [-4,-2] (bottom-left): the usual FFJORD board scaled by 2.
    r = np.arange(4)[:, None]
    c = np.arange(4)[None, :]
    return (((3 - r) + c) % 2 == 0).astype(np.float32) / 8.0


class Checkerboard(GridDensity):
    """Uniform on 8 of the 16 squares of side 2 tiling [-4, 4]^2, alternating like a
    chessboard, with [-4, -2] x [-4, -2] occupied (density 1/32 there). Exact sampling,
    log-density and sigma-smoothed score via the per-cell normal-CDF factorisation of
    :class:`GridDensity` (a 4 x 4 grid of cells of side 2 with its corner at (-4, -4)).

    It is a grid density but not an image: code that treats images specially tests
    ``isinstance(target, ImageDensity)``.
    """

    def __init__(self):
        self.probs = jnp.asarray(_board())
        self.height = 4
        self.width = 4
        self.centres = False

    @property
    def cell(self) -> float:
        return 2.0

    @property
    def origin(self) -> tuple[float, float]:
        return (-4.0, -4.0)
