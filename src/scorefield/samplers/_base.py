"""The interface every sampler implements, and the small helpers they share.

A sampler is an immutable `eqx.Module` whose fields are its hyperparameters. It describes
one particle: `init` builds the per-particle state, `step` advances it by one step at a
noise level, `finalize` turns the last state into a sample. The runner
(`scorefield.samplers.sample`) vmaps these over particles, runs the steps of each level in
`lax.scan`, chunks large particle counts, counts evaluations and detects divergence.
"""

from __future__ import annotations

import abc
from typing import Any, Callable, ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from ..noise import geometric  # noqa: F401 - re-exported for samplers
from .._errors import ConfigError

State = PyTree[Any]
# What a sampler evaluates: a score function `(x, sigma) -> s` for score samplers, a
# log-density `x -> log p(x)` for those with a Metropolis test (`needs_log_prob`).
ModelFn = Callable[..., Any]


class AbstractSampler(eqx.Module):
    """A sampler of one particle, run by `scorefield.samplers.sample` over many.

    The schedule is `n_levels` levels of `steps_per_level` steps each (both Python ints,
    known at trace time). Methods act on one particle; keys are explicit.
    """

    needs_log_prob: ClassVar[bool] = False
    name: ClassVar[str] = "sampler"

    # Number of levels (compiled segments the runner reports progress and checks at) and
    # of `step` calls per level: Python ints, a static field or a property.
    n_levels: eqx.AbstractVar[int]
    steps_per_level: eqx.AbstractVar[int]

    def level_sigma(self, level: int) -> float | None:
        """The sigma of `level` for messages (host side), or None where it has none."""
        return None

    def default_init(self) -> Any | None:
        """The initial distribution when the caller gives none (e.g. the VE prior)."""
        return None

    @abc.abstractmethod
    def init(self, fn: ModelFn, x: Float[Array, " d"], key: PRNGKeyArray) -> tuple[State, Int[Array, ""]]:
        """Per-particle state at position `x`, and the number of model evaluations it cost."""

    @abc.abstractmethod
    def step(
        self, fn: ModelFn, state: State, level: Int[Array, ""], key: PRNGKeyArray
    ) -> tuple[State, Int[Array, ""]]:
        """One step at `level` (a traced int); returns the new state and its evaluation count."""

    @abc.abstractmethod
    def position(self, state: State) -> Float[Array, " d"]:
        """The particle's position in data space."""

    def finalize(self, fn: ModelFn, state: State, key: PRNGKeyArray) -> tuple[Float[Array, " d"], Int[Array, ""]]:
        """The sample returned for the final state (e.g. after a denoising step)."""
        return self.position(state), jnp.asarray(0, jnp.int32)


class AbstractGridSampler(AbstractSampler):
    """A sampler that visits a descending grid of noise levels, one level per sigma, from
    the prior N(0, sigma_1^2 I) by default."""

    sigmas: eqx.AbstractVar[Float[Array, " L"]]

    @property
    def n_levels(self):
        return int(self.sigmas.shape[0])

    def level_sigma(self, level):
        return float(self.sigmas[level])

    def default_init(self):
        from ._init import GaussianInit

        return GaussianInit(float(self.sigmas[0]))

    def init(self, fn, x, key):
        return x, count(0)


class AbstractChainSampler(AbstractSampler):
    """A sampler that runs one chain of `n_steps` steps (one level)."""

    n_steps: eqx.AbstractVar[int]

    @property
    def n_levels(self):
        return 1

    @property
    def steps_per_level(self):
        return self.n_steps


def as_sigmas(sigmas, what: str = "sigmas") -> Float[Array, " L"]:
    """Validate a descending grid of positive noise levels; returns a float32 array."""
    s = np.asarray(sigmas, np.float64).reshape(-1)
    if s.size == 0 or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ConfigError(f"{what}={list(s)} must be a non-empty list of positive finite noise levels")
    if np.any(np.diff(s) >= 0):
        raise ConfigError(f"{what} must be strictly descending (largest sigma first), got {list(s)}")
    return jnp.asarray(s, jnp.float32)


def positive(value: float, what: str) -> float:
    """`value` as a float if it is positive and finite, else a ConfigError naming it."""
    v = float(value)
    if not (np.isfinite(v) and v > 0):
        raise ConfigError(f"{what}={value} must be a positive finite number")
    return v


def count(n: int) -> Int[Array, ""]:
    return jnp.asarray(n, jnp.int32)
