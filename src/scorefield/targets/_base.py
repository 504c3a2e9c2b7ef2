"""The abstract `Target`: a density with an exact score and, where one exists in closed
form, an exact sigma-smoothed score."""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax
from jaxtyping import Array, Float, PRNGKeyArray

from .._errors import InputError


class NoSmoothedScoreError(InputError, NotImplementedError):
    """A target without a closed-form sigma-smoothed density was asked for one."""


class NoDensityError(InputError, NotImplementedError):
    """A target without a density (e.g. point masses) was asked for `log_prob` or `score`."""


class Target(eqx.Module):
    """A probability density on R^D with an exact score.

    Every method acts on one unbatched example `x` of shape `(D,)`; callers `vmap`.

    Smoothing: `smoothed_log_prob(x, sigma)` is `log (p * N(0, sigma^2 I))(x)`, the density
    of `x + sigma z` with `x ~ p`, `z ~ N(0, I)`; `sigma` is a standard deviation in data
    coordinates. Targets with a closed form set the class attribute
    `has_smoothed_score = True`; the others keep `False` and their smoothed methods raise
    `NoSmoothedScoreError` (an `InputError`), so callers can test the flag up front.
    """

    has_smoothed_score: ClassVar[bool] = False

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """The dimension D of one example."""

    @abc.abstractmethod
    def log_prob(self, x: Float[Array, " d"]) -> Float[Array, ""]:
        """Log-density at one point `x` of shape `(D,)` (normalised)."""

    def score(self, x: Float[Array, " d"]) -> Float[Array, " d"]:
        """`grad_x log p(x)` at one point `x` of shape `(D,)`."""
        return jax.grad(self.log_prob)(x)

    @abc.abstractmethod
    def sample(self, key: PRNGKeyArray, n: int) -> Float[Array, "n d"]:
        """`n` exact iid samples, float32 of shape `(n, D)`; jit-safe for static `n`."""

    def smoothed_log_prob(self, x: Float[Array, " d"], sigma: Float[Array, ""] | float) -> Float[Array, ""]:
        """`log (p * N(0, sigma^2 I))(x)` for `sigma > 0`. Raises `NoSmoothedScoreError`
        where the target has no closed form (`has_smoothed_score` is False)."""
        raise NoSmoothedScoreError(
            f"{type(self).__name__} has no closed-form sigma-smoothed density; "
            "use a target with has_smoothed_score=True (GaussianMixture, ImageDensity, Checkerboard)"
        )

    def smoothed_score(self, x: Float[Array, " d"], sigma: Float[Array, ""] | float) -> Float[Array, " d"]:
        """`grad_x log p_sigma(x)` at one point `x` of shape `(D,)`, `sigma > 0`."""
        return jax.grad(self.smoothed_log_prob)(x, sigma)

    def score_fn(self, x: Float[Array, " d"], sigma: Float[Array, ""] | float) -> Float[Array, " d"]:
        """The smoothed score with the library's `score_fn(x, sigma)` signature."""
        return self.smoothed_score(x, sigma)
