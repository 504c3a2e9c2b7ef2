"""Score-matching objectives: ``objective(model, x, key=key) -> scalar loss``."""

from ._base import Objective
from ._dsm import DenoisingScoreMatching, denoising_loss
from ._implicit import ExactScoreMatching, SlicedScoreMatching

__all__ = ["Objective", "DenoisingScoreMatching", "denoising_loss", "ExactScoreMatching", "SlicedScoreMatching"]
