"""The abstract `Target`: a density with an exact score and, where one exists in closed
form, an exact sigma-smoothed score."""

from __future__ import annotations

import abc

import equinox as eqx
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._errors import InputError


class NoSmoothedScoreError(InputError, NotImplementedError):
    """A target without a closed-form sigma-smoothed density was asked for one."""


class NoDensityError(InputError, NotImplementedError):
    """A target without a density (e.g. point masses) was asked for `log_prob` or `score`."""


class Target(eqx.Module):
    """A probability density on R^D with an exact score (abstract).

    Every method acts on one unbatched example `x` of shape `(D,)`; callers `vmap`.

    Smoothing: `smoothed_log_prob(x, sigma)` is `log (p * N(0, sigma^2 I))(x)`, the density
    of `x + sigma z` with `x ~ p`, `z ~ N(0, I)`; `sigma` is a standard deviation in data
    coordinates. Capabilities are types, following Equinox's abstract/final pattern: a
    target with that density in closed form is a :class:`SmoothedTarget` (test with
    ``isinstance``); the others implement the smoothed methods by raising
    `NoSmoothedScoreError` (an `InputError`). Concrete methods are never overridden.
    """

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """The dimension D of one example."""

    @abc.abstractmethod
    def log_prob(self, x: Float[ArrayLike, " d"]) -> Float[Array, ""]:
        """Log-density at one point `x` of shape `(D,)` (normalised)."""

    @abc.abstractmethod
    def score(self, x: Float[ArrayLike, " d"]) -> Float[Array, " d"]:
        """`grad_x log p(x)` at one point `x` of shape `(D,)`."""

    @abc.abstractmethod
    def sample(self, key: PRNGKeyArray, n: int) -> Float[Array, "n d"]:
        """`n` exact iid samples, float32 of shape `(n, D)`; jit-safe for static `n`."""

    @abc.abstractmethod
    def smoothed_log_prob(self, x: Float[ArrayLike, " d"], sigma: Float[Array, ""] | float) -> Float[Array, ""]:
        """`log (p * N(0, sigma^2 I))(x)` for `sigma > 0`; raises `NoSmoothedScoreError`
        unless the target is a :class:`SmoothedTarget`."""

    @abc.abstractmethod
    def smoothed_score(self, x: Float[ArrayLike, " d"], sigma: Float[Array, ""] | float) -> Float[Array, " d"]:
        """`grad_x log p_sigma(x)` at one point `x` of shape `(D,)`, `sigma > 0`; raises
        `NoSmoothedScoreError` unless the target is a :class:`SmoothedTarget`."""

    def score_fn(self, x: Float[ArrayLike, " d"], sigma: Float[Array, ""] | float) -> Float[Array, " d"]:
        """The smoothed score with the library's `score_fn(x, sigma)` signature."""
        return self.smoothed_score(x, sigma)


class SmoothedTarget(Target):
    """A target whose sigma-smoothed density and score exist in closed form, at every
    `sigma > 0` (abstract): the truth that learned scores are measured against."""


def no_smoothed_score(target: Target) -> NoSmoothedScoreError:
    """The error a target that is not a :class:`SmoothedTarget` raises from its smoothed
    methods."""
    return NoSmoothedScoreError(
        f"{type(target).__name__} has no closed-form sigma-smoothed density; "
        "use a SmoothedTarget (GaussianMixture, ImageDensity, Checkerboard)"
    )
