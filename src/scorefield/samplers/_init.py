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
