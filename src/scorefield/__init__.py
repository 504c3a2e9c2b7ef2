"""scorefield: score-based generative modelling in JAX.

Learn the score (gradient of the log-density) of data by score matching, then draw
samples from it with Langevin-type samplers.
"""

from __future__ import annotations

__version__ = "0.1.0"

from ._errors import (
    CheckpointError,
    ComponentRequiredError,
    ConfigError,
    DataSpecError,
    DivergenceError,
    InputError,
    ScorefieldError,
)

__all__ = [
    "__version__",
    "ScorefieldError",
    "InputError",
    "DataSpecError",
    "ConfigError",
    "CheckpointError",
    "ComponentRequiredError",
    "DivergenceError",
]
