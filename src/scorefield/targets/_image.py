"""An image read as a probability distribution over its pixel coordinates."""

from __future__ import annotations

import numpy as np
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._errors import DataSpecError
from ._grid import GridDensity


class ImageDensity(GridDensity):
    """Density proportional to pixel intensity (SPEC section 3).

    Coordinates: points are (x, y), x right, y up; with m = max(H, W), pixel (r, c)
    covers x in `[c/m, (c+1)/m]`, y in `[(H-1-r)/m, (H-r)/m]`, so the longer side spans
    [0, 1] and the aspect ratio is kept (`extent == (W/m, H/m)`). By default the density
    is uniform inside each pixel cell (`centres=False`); `centres=True` puts point masses
    at the pixel centres ((c + 0.5)/m, (H - r - 0.5)/m).

    Attributes:
        probs: normalised intensities `(H, W)` in image order (row 0 = top), sum 1.
        height, width: H and W (static).
        centres: point masses at pixel centres instead of uniform cells (static).
    """

    def __init__(self, probs: Float[Array, "h w"], *, centres: bool = False):
        """`probs`: non-negative intensities `(H, W)` with a positive sum (normalised
        here). Use `from_array` for host-side validation with clear errors."""
        probs = jnp.asarray(probs, jnp.float32)
        self.probs = probs / jnp.sum(probs)
        self.height, self.width = probs.shape
        self.centres = bool(centres)

    @classmethod
    def from_array(cls, image, *, centres: bool = False, name: str = "image array") -> "ImageDensity":
        """Validated constructor from intensities `(H, W)` (any non-negative scale).

        Raises `DataSpecError` (naming `name`) for a wrong shape, NaN/inf, negative
        values, or zero total intensity.
        """
        if isinstance(image, jax.core.Tracer):
            return cls(image, centres=centres)
        a = np.asarray(image, dtype=np.float64)
        if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
            raise DataSpecError(f"{name} has shape {a.shape}; expected a 2-D grey image (H, W)")
        if not np.all(np.isfinite(a)):
            raise DataSpecError(f"{name} contains NaN or inf intensities; all must be finite and >= 0")
        if np.any(a < 0):
            raise DataSpecError(f"{name} has negative intensities (min {a.min():.3g}); all must be >= 0")
        total = a.sum()
        if not total > 0:
            raise DataSpecError(
                f"{name} has zero total intensity, so it defines no distribution; "
                "it needs at least one pixel > 0 (for dark-on-light images use invert)"
            )
        return cls(jnp.asarray(a / total, jnp.float32), centres=centres)

    @property
    def cell(self) -> float:
        """Side of one pixel cell: 1 / max(H, W)."""
        return 1.0 / max(self.height, self.width)

    @property
    def origin(self) -> tuple[float, float]:
        return (0.0, 0.0)

    @property
    def extent(self) -> tuple[float, float]:
        """(width, height) of the image in data coordinates: (W/m, H/m)."""
        m = max(self.height, self.width)
        return (self.width / m, self.height / m)
