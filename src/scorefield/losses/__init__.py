"""Score-matching objectives: ``objective(model, x, key=key) -> scalar loss``.

Each objective is one class; importing its module here registers it (``OBJECTIVES``)."""

from ._base import OBJECTIVES, Objective, ObjectiveContext
from ._dsm import DenoisingScoreMatching, denoising_loss, second_order_residual
from ._implicit import SlicedScoreMatching, ExactScoreMatching

__all__ = ["OBJECTIVES", "Objective", "ObjectiveContext", "DenoisingScoreMatching", "denoising_loss", "second_order_residual",
           "ExactScoreMatching", "SlicedScoreMatching"]
