"""Score networks: Equinox modules called as ``net(x, sigma)`` on one example.

Each network is one file; importing it here registers it (``NETS``) under its `name`."""

from ._base import NETS, NetContext, ScoreNet, trainable
from ._reference import ReferenceNet
from ._resmlp import ResMLP
from ._sigma import SigmaNet
from ._grid import GridNet
from ._energy import EnergyNet
from ._unet import GuidedScore, UNet, guided_score

__all__ = ["NETS", "NetContext", "ScoreNet", "trainable", "ReferenceNet", "SigmaNet", "GridNet", "EnergyNet",
           "ResMLP", "UNet", "GuidedScore", "guided_score"]
