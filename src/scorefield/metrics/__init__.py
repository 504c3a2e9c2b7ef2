"""Sample-quality and score-error measures.

Every two-sample metric works in any dimension and is computed in blocks, so that large
sample sizes never need memory quadratic in N. Each has a finite-sample *floor*: its value
between exact samples of the target at the same sizes, which is what a perfect sampler
would score; report a metric next to its floor.
"""

from ._energy import energy_distance
from ._evaluate import evaluate
from ._fisher import fisher_divergence, perturbed_points
from ._floor import Floor, two_sample_floor
from ._images import frechet_distance, image_report, nearest_neighbours
from ._hist import cell_counts, hist_tv, hist_tv_floor, image_probs
from ._mmd import median_bandwidth, mmd2
from ._modes import mode_weights, responsibilities
from ._points import marginal_ks, outside_shells, within_std_ratio
from ._sliced import sliced_wasserstein, wasserstein_1d

__all__ = [
    "Floor",
    "cell_counts",
    "energy_distance",
    "evaluate",
    "frechet_distance",
    "image_report",
    "nearest_neighbours",
    "fisher_divergence",
    "hist_tv",
    "hist_tv_floor",
    "image_probs",
    "marginal_ks",
    "median_bandwidth",
    "mmd2",
    "mode_weights",
    "outside_shells",
    "perturbed_points",
    "responsibilities",
    "sliced_wasserstein",
    "two_sample_floor",
    "wasserstein_1d",
    "within_std_ratio",
]
