"""Closed-form targets: densities with exact scores and, where a closed form exists,
exact sigma-smoothed scores (the "truth" that samplers and learned scores are measured
against).

All methods act on one unbatched example `x` of shape `(D,)`; callers `vmap`.
"""

from ._base import NoDensityError, NoSmoothedScoreError, SmoothedTarget, Target
from ._checkerboard import Checkerboard
from ._grid import GridDensity
from ._image import ImageDensity
from ._mixture import GaussianMixture
from ._numpyro import NumpyroTarget
from ._special import log_ndtr_diff, log_normal_mass

__all__ = [
    "Target",
    "SmoothedTarget",
    "GaussianMixture",
    "NumpyroTarget",
    "ImageDensity",
    "Checkerboard",
    "GridDensity",
    "NoSmoothedScoreError",
    "NoDensityError",
    "log_ndtr_diff",
    "log_normal_mass",
]
