"""Initial distributions of the particles: where a sampler starts."""

from __future__ import annotations

import math

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._errors import ConfigError, InputError


class AbstractInit(eqx.Module):
    """Draws the starting position of one particle."""

    @abc.abstractmethod
    def sample(self, key: PRNGKeyArray, dim: int) -> Float[Array, " d"]:
        """One starting point of shape (dim,)."""


class GaussianInit(AbstractInit):
    """N(centre, scale^2 I): the prior of variance-exploding samplers (scale = sigma_max).

    Arguments:
        scale: standard deviation per coordinate, data units.
        centre: mean, a scalar or a (D,) array (default 0).
    """

    scale: float
    centre: Float[ArrayLike, "..."] | float = 0.0

    def __check_init__(self):
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise ConfigError(f"Gaussian init scale={self.scale} must be a positive finite number")

    def sample(self, key, dim):
        centre = jnp.broadcast_to(jnp.asarray(self.centre, jnp.float32), (dim,))
        return centre + self.scale * jax.random.normal(key, (dim,), jnp.float32)


class MatchedGaussianInit(AbstractInit):
    """N(centre, sigma^2 I + spread): the Gaussian with the mean and covariance of the data
    smoothed at `sigma` (p_sigma = p * N(0, sigma^2 I) has covariance Cov(p) + sigma^2 I).

    A VE prior N(centre, sigma_max^2 I) misses the data's own covariance; a deterministic
    sampler (an ODE flow is a bijection) keeps that mismatch to the end (BENCHMARKS.md
    section 6), so the few-step samplers start here when the context knows the spread.

    Arguments:
        sigma: the noise level of the start, data units (> 0).
        centre: the data mean, (D,).
        spread: the data's covariance about `centre`: a (D, D) symmetric positive
            semi-definite array, or one variance per coordinate (a scalar).
    """

    centre: Float[Array, " d"]
    chol: Float[Array, "d d"]

    def __init__(self, sigma: float, centre, spread):
        c = np.asarray(centre, np.float64).reshape(-1)
        d = c.shape[0]
        cov = np.asarray(spread, np.float64)
        cov = cov * np.eye(d) if cov.ndim == 0 else cov.reshape(d, d)
        if not (np.isfinite(sigma) and sigma > 0) or not np.all(np.isfinite(cov)):
            raise ConfigError(f"matched Gaussian init needs a positive finite sigma and a finite spread, got sigma={sigma}")
        try:
            chol = np.linalg.cholesky(float(sigma) ** 2 * np.eye(d) + 0.5 * (cov + cov.T))
        except np.linalg.LinAlgError:
            raise ConfigError("matched Gaussian init: sigma^2 I + spread is not positive definite; "
                              "spread must be a covariance (symmetric positive semi-definite)") from None
        self.centre = jnp.asarray(c, jnp.float32)
        self.chol = jnp.asarray(chol, jnp.float32)

    def sample(self, key, dim):
        z = jax.random.normal(key, (dim,), jnp.float32)
        return self.centre + self.chol @ z


class UniformInit(AbstractInit):
    """Uniform on the box [low, high]^D (the NCSN toy experiment starts from [-8, 8]^2)."""

    low: float
    high: float

    def __check_init__(self):
        if not (np.isfinite(self.low) and np.isfinite(self.high) and self.low < self.high):
            raise ConfigError(f"uniform init needs finite LOW < HIGH, got LOW={self.low}, HIGH={self.high}")

    def sample(self, key, dim):
        return jax.random.uniform(key, (dim,), jnp.float32, self.low, self.high)


def parse_init(text: str, *, what: str = "init") -> AbstractInit:
    """Parse an init spec: `uniform:LOW,HIGH` or `gaussian:SCALE[,CENTRE]`.

    Arguments:
        text: the spec.
        what: how messages name it (the CLI passes "--init").
    Raises:
        InputError naming `what`, the spec and the accepted forms.
    """
    forms = "'uniform:LOW,HIGH' (e.g. uniform:-8,8) or 'gaussian:SCALE[,CENTRE]'"
    kind, _, rest = str(text).strip().partition(":")
    try:
        values = [float(v) for v in rest.split(",")] if rest else []
    except ValueError:
        raise InputError(f"{what} {text!r} has a value that is not a number; valid forms are {forms}") from None
    if not all(math.isfinite(v) for v in values):
        raise InputError(f"{what} {text!r} has a value that is not finite (nan or inf); give finite numbers, "
                         f"valid forms are {forms}")
    if kind == "uniform" and len(values) == 2:
        return UniformInit(values[0], values[1])
    if kind == "gaussian" and len(values) in (1, 2):
        return GaussianInit(values[0], values[1] if len(values) == 2 else 0.0)
    raise InputError(f"{what} {text!r} is not understood; valid forms are {forms}")
