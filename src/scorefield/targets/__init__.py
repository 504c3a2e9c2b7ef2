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


def __getattr__(name: str):
    # numpyro (with scipy.fft under it) costs about 0.6 CPU s to import, and only the Python
    # API's NumpyroTarget needs it: every command line command would pay it otherwise
    if name == "NumpyroTarget":
        from ._numpyro import NumpyroTarget

        return NumpyroTarget
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
