"""Samplers: turn a score (or a log-density) into samples.

Each sampler is a small `eqx.Module` describing one particle (`init`/`step`/`finalize`);
`sample` runs many particles of any of them: vmapped, chunked, counted, checked.
`SAMPLERS` finds a sampler class by the name users type, and
`SAMPLERS.build(name, context, options)` makes one from its options (see `_base` for the
interface: `step(fn, state, level, key) -> (state, StepInfo)`). A new sampler is one new
file here plus one import line below.

    import jax, scorefield.samplers as S
    sampler = S.AnnealedLangevin(S.geometric(20.0, 1.0, 10), steps_per_level=100, eps=0.1)
    result = S.sample(sampler, score_fn, jax.random.key(0), n=10_000, dim=2)
    result.samples  # (10000, 2) float32
"""

from ._annealed import AnnealedLangevin, ncsnv2_eps
from ._annealed_mcmc import AnnealedHMC, AnnealedMALA, AnnealedNUTS, acceptance_summary
from ._base import (
    SAMPLERS,
    AbstractChainSampler,
    AbstractGridSampler,
    AbstractLogDensitySampler,
    AbstractSampler,
    SamplerContext,
    StepInfo,
    default_start,
    geometric,
    info,
)
from ._dpm2m import DPMSolver2M
from ._dpm3m import DPMSolver3M
from ._euler import Euler
from ._heun import Heun
from ._init import AbstractInit, GaussianInit, MatchedGaussianInit, UniformInit, parse_init
from ._langevin import Langevin
from ._mcmc import HMC, MALA, NUTS
from ._ode import ProbabilityFlowODE
from ._pc import PredictorCorrector
from ._runner import SampleResult, sample
from ._underdamped import UnderdampedLangevin

__all__ = [
    "SAMPLERS",
    "AbstractSampler",
    "AbstractGridSampler",
    "AbstractChainSampler",
    "AbstractLogDensitySampler",
    "SamplerContext",
    "StepInfo",
    "default_start",
    "info",
    "AbstractInit",
    "GaussianInit",
    "MatchedGaussianInit",
    "UniformInit",
    "parse_init",
    "geometric",
    "Langevin",
    "AnnealedLangevin",
    "AnnealedMALA",
    "AnnealedHMC",
    "AnnealedNUTS",
    "acceptance_summary",
    "ncsnv2_eps",
    "PredictorCorrector",
    "ProbabilityFlowODE",
    "Euler",
    "Heun",
    "DPMSolver2M",
    "DPMSolver3M",
    "UnderdampedLangevin",
    "MALA",
    "HMC",
    "NUTS",
    "sample",
    "SampleResult",
]
