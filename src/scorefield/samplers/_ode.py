"""The probability-flow ODE of the variance-exploding SDE, solved with diffrax."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._errors import ConfigError
from ._base import (
    OPT_SIGMA_MAX,
    OPT_SIGMA_MIN,
    POSITIVE,
    SAMPLERS,
    AbstractSampler,
    Option,
    count,
    geometric,
    info,
    positive,
    resolve_grid,
)
from ._init import GaussianInit


@SAMPLERS.register
class ProbabilityFlowODE(AbstractSampler):
    """Deterministic transport of p_{sigma_max} to p_{sigma_min} along the VE probability flow.

    With the noise level itself as clock, dx/dsigma = -sigma s(x, sigma) (the drift
    -0.5 d(sigma^2)/dt s of Song et al. 2021); we integrate in t = log sigma,
    dx/dt = -sigma^2 s(x, sigma), from log sigma_max down to log sigma_min with an adaptive
    diffrax solver. The default start is the prior N(0, sigma_max^2 I).

    Evaluations are counted from diffrax's statistics: (stages - 1 if FSAL else stages) per
    attempted step (accepted or rejected) plus 1 (the first evaluation, shared by the
    initial step-size selection and first-same-as-last), per segment and per particle: the
    evaluations XLA runs, counted by a host callback in tests/test_contract_samplers.py
    (diffrax 0.7; an earlier formula, plus 3, counted two evaluations that are never run). Particles
    are vmapped, so a batch costs as much as its slowest particle.

    Arguments:
        sigma_max, sigma_min: the end points (data units).
        rtol, atol: tolerances of the PID step-size controller.
        solver: a diffrax Runge-Kutta solver (default Tsit5).
        n_segments: the solve is split at a geometric grid into this many segments, which
            the runner reports progress at and can record as a trajectory.
        max_steps: step budget per segment; a particle that exhausts it is reported as diverged.
    """

    sigma_max: float
    sigma_min: float
    rtol: float
    atol: float
    solver: "diffrax.AbstractSolver"  # noqa: F821 - diffrax is imported on first use
    n_segments: int = eqx.field(static=True)
    max_steps: int = eqx.field(static=True)
    name = "ode"
    label = "probability-flow ODE"
    options = (
        OPT_SIGMA_MAX,
        OPT_SIGMA_MIN,
        Option("rtol", float, 1e-4, "relative tolerance of the adaptive solver", **POSITIVE),
        Option("atol", float, 1e-4, "absolute tolerance of the adaptive solver", **POSITIVE),
    )

    @classmethod
    def from_options(cls, context, *, sigma_max, sigma_min, rtol, atol):
        smax, smin = resolve_grid(context, sigma_max, sigma_min, "sampler 'ode'")
        return cls(smax, smin, rtol=rtol, atol=atol)

    def __init__(
        self,
        sigma_max: float,
        sigma_min: float,
        *,
        rtol: float = 1e-5,
        atol: float = 1e-5,
        solver=None,
        n_segments: int = 1,
        max_steps: int = 4096,
    ):
        self.sigma_max = positive(sigma_max, "sigma_max")
        self.sigma_min = positive(sigma_min, "sigma_min")
        if not self.sigma_min < self.sigma_max:
            raise ConfigError(f"sigma_min={sigma_min} must be smaller than sigma_max={sigma_max}")
        self.rtol = positive(rtol, "rtol")
        self.atol = positive(atol, "atol")
        import diffrax

        self.solver = diffrax.Tsit5() if solver is None else solver
        if int(n_segments) < 1 or int(max_steps) < 1:
            raise ConfigError(f"n_segments={n_segments} and max_steps={max_steps} must be at least 1")
        self.n_segments = int(n_segments)
        self.max_steps = int(max_steps)
        self._evals_per_step()  # validates the solver here rather than inside jit

    @property
    def n_levels(self):
        return self.n_segments

    @property
    def steps_per_level(self):
        return 1

    def _grid(self):
        return jnp.log(geometric(self.sigma_max, self.sigma_min, self.n_segments + 1))

    def level_sigma(self, level):
        return float(np.asarray(geometric(self.sigma_max, self.sigma_min, self.n_segments + 1))[level])

    def default_init(self):
        return GaussianInit(self.sigma_max)

    def _evals_per_step(self) -> int:
        tableau = getattr(self.solver, "tableau", None)
        if tableau is None:
            raise ConfigError(f"solver {type(self.solver).__name__} is not a Runge-Kutta solver with a tableau")
        return tableau.num_stages - (1 if tableau.fsal else 0)

    def init(self, fn, x, key):
        return x, count(0)

    def finalize(self, fn, state, key):
        return state, count(0)

    def step(self, fn, state, level, key):
        import diffrax

        grid = self._grid()

        def drift(t, x, args):
            sigma = jnp.exp(t)
            return -(sigma**2) * fn(x, sigma)

        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(drift),
            self.solver,
            t0=grid[level],
            t1=grid[level + 1],
            dt0=None,
            y0=state,
            stepsize_controller=diffrax.PIDController(rtol=self.rtol, atol=self.atol),
            max_steps=self.max_steps,
            saveat=diffrax.SaveAt(t1=True),
            throw=False,
        )
        ok = sol.result == diffrax.RESULTS.successful
        # A failed solve (step budget exhausted, non-finite field) becomes NaN so the
        # runner reports it as a divergence instead of returning a half-solved sample.
        x = jnp.where(ok, sol.ys[-1], jnp.nan)
        n = self._evals_per_step() * sol.stats["num_steps"] + 1
        return x, info(n, solver_steps=sol.stats["num_steps"])

    def position(self, state):
        return state
