"""Fisher divergence per noise level between a score model and an exact smoothed score."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
from jax import lax
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._errors import InputError
from .._types import ScoreFn
from . import _validate


def perturbed_points(
    key: PRNGKeyArray, data: Float[ArrayLike, "n d"], sigmas: Float[ArrayLike, " l"]
) -> Float[Array, "l n d"]:
    """Points from each smoothed density p_sigma: x = data + sigma z, z ~ N(0, I), with a
    fresh z per level.

    Arguments:
        key: PRNG key.
        data: (n, d) exact samples of p.
        sigmas: (L,) noise standard deviations, data units.
    Returns:
        (L, n, d) points, level l drawn from p convolved with N(0, sigma_l^2 I).
    """
    data = _validate.points("data", data)
    sigmas = jnp.asarray(sigmas, data.dtype).reshape(-1)
    z = jr.normal(key, (sigmas.shape[0],) + data.shape, data.dtype)
    return data[None] + sigmas[:, None, None] * z


@eqx.filter_jit
def _fisher(score_fn, exact_score_fn, xs, sigmas, batch_size):
    def level(args):
        x, sigma = args

        def err(xi):
            return jnp.sum(jnp.square(score_fn(xi, sigma) - exact_score_fn(xi, sigma)))

        return jnp.mean(lax.map(err, x, batch_size=batch_size))

    return lax.map(level, (xs, sigmas))


def fisher_divergence(
    score_fn: ScoreFn,
    exact_score_fn: ScoreFn,
    xs: ArrayLike,
    sigmas: ArrayLike,
    *,
    batch_size: int = 1024,
) -> Float[Array, " l"]:
    """E_x |s_theta(x, sigma) - s(x, sigma)|^2 at each noise level, so one sees at which
    levels a model is wrong.

    Arguments:
        score_fn: the model, `score_fn(x, sigma) -> (d,)` on one example (ARCHITECTURE).
        exact_score_fn: the exact smoothed score grad log p_sigma, same signature (e.g. a
            target's `smoothed_score`).
        xs: the points: (L, n, d), level l's points drawn from p_sigma_l (see
            `perturbed_points`), or (n, d), the same points at every level.
        sigmas: (L,) noise standard deviations, data units.
        batch_size: points evaluated at once (memory of the model's activations).
    Returns:
        (L,) mean squared score error per level, in (1/data units)^2. It scales like
        1/sigma^2 for a fixed relative error; multiply by sigma^2 to compare levels.
    """
    sigmas = jnp.asarray(sigmas)
    if sigmas.ndim != 1 or sigmas.shape[0] < 1:
        raise InputError(f"sigmas must be a 1-D array of noise levels, got shape {tuple(sigmas.shape)}")
    xs = jnp.asarray(xs)
    if xs.ndim == 2:
        xs = jnp.broadcast_to(xs, (sigmas.shape[0],) + xs.shape)
    if xs.ndim != 3 or xs.shape[0] != sigmas.shape[0] or xs.shape[1] < 1:
        raise InputError(
            f"xs must have shape (n, d) or (L={sigmas.shape[0]}, n, d) with n >= 1, got {tuple(xs.shape)}"
        )
    if not jnp.issubdtype(xs.dtype, jnp.floating):
        xs = xs.astype(jnp.float32)
    batch_size = _validate.positive_int("batch_size", batch_size)
    return _fisher(score_fn, exact_score_fn, xs, sigmas.astype(xs.dtype), min(batch_size, xs.shape[1]))
