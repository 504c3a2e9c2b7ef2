"""Adapter: any numpyro distribution as a `Target` (score by autodiff of log_prob)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as nd
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._errors import InputError
from ._base import Target, no_smoothed_score


class NumpyroTarget(Target):
    """Wraps a numpyro distribution with `batch_shape == ()` and event shape `(D,)` or
    `()` (then D = 1 and examples have shape `(1,)`).

    `log_prob` is the distribution's, `score` its autodiff gradient, `sample` its own
    sampler. No closed-form smoothing in general: not a `SmoothedTarget`, and the smoothed
    methods raise `NoSmoothedScoreError`.

    Arguments:
        dist: e.g. `MixtureSameFamily`, `TransformedDistribution` with bijectors,
            `MultivariateNormal`; must have a support on which `log_prob` is
            differentiable.
    """

    dist: nd.Distribution
    _scalar: bool = eqx.field(static=True)

    def __init__(self, dist: nd.Distribution):
        if not isinstance(dist, nd.Distribution):
            raise InputError(f"NumpyroTarget needs a numpyro Distribution; got {type(dist).__name__}")
        if dist.batch_shape != ():
            raise InputError(
                f"NumpyroTarget needs batch_shape (); got {dist.batch_shape} "
                "(wrap it in numpyro.distributions.Independent to make those dimensions an event)"
            )
        if len(dist.event_shape) > 1:
            raise InputError(f"NumpyroTarget needs event shape (D,) or (); got {dist.event_shape}")
        self.dist = dist
        self._scalar = dist.event_shape == ()

    @property
    def dim(self) -> int:
        return 1 if self._scalar else self.dist.event_shape[0]

    def log_prob(self, x: Float[ArrayLike, " d"]) -> Float[Array, ""]:
        return self.dist.log_prob(x[0] if self._scalar else x)

    def score(self, x: Float[ArrayLike, " d"]) -> Float[Array, " d"]:
        return jax.grad(self.log_prob)(x)

    def smoothed_log_prob(self, x: Float[ArrayLike, " d"], sigma) -> Float[Array, ""]:
        raise no_smoothed_score(self)

    def smoothed_score(self, x: Float[ArrayLike, " d"], sigma) -> Float[Array, " d"]:
        raise no_smoothed_score(self)

    def sample(self, key: PRNGKeyArray, n: int) -> Float[Array, "n d"]:
        x = self.dist.sample(key, (n,))
        return jnp.reshape(x, (n, self.dim)).astype(jnp.float32)
