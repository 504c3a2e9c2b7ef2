"""Log-likelihoods of score models through the probability-flow ODE, and the exact
reference numbers (entropy, KL floor) to judge them against (SPEC section 6).

`log_likelihood(score_fn, points, sigma_min=..., sigma_max=...)` gives log p_model(x) in
nats; `report` / `evaluate_likelihood` turn it into NLL, bits per dimension and, where the
data's density is known, KL(p || p_model) beside `kl_floor`; `density_map` evaluates the
model's log-density on a grid. An energy model (net = "energy") in 2-D has its density
directly: `energy_density_map`, `energy_log_likelihood` and `evaluate_energy_likelihood`
normalise exp(-E) numerically over a box.
"""

from ._floor import Estimate, entropy, has_density, kl_floor
from ._energy import energy_density_map, energy_log_likelihood, normaliser
from ._map import MAX_RESOLUTION, DensityMap, data_box, density_map
from ._ode import SOLVERS, LikelihoodResult, log_likelihood
from ._report import evaluate_energy_likelihood, evaluate_likelihood, report
from ._trace import EXACT_MAX_DIM, TRACES

__all__ = [
    "log_likelihood",
    "LikelihoodResult",
    "report",
    "evaluate_likelihood",
    "evaluate_energy_likelihood",
    "energy_log_likelihood",
    "energy_density_map",
    "normaliser",
    "kl_floor",
    "entropy",
    "has_density",
    "Estimate",
    "TRACES",
    "SOLVERS",
    "EXACT_MAX_DIM",
    "density_map",
    "DensityMap",
    "data_box",
    "MAX_RESOLUTION",
]
