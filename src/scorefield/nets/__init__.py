"""Score networks: Equinox modules called as ``net(x, sigma)`` on one example."""

from ._base import ScoreNet, trainable
from ._grid import GridNet
from ._reference import ReferenceNet
from ._sigma import SigmaNet

__all__ = ["ScoreNet", "trainable", "ReferenceNet", "SigmaNet", "GridNet"]
