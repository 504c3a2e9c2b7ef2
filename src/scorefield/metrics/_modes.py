"""Mode weights of a Gaussian mixture, from the posterior responsibility of each sample."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax.scipy.stats import multivariate_normal
from jaxtyping import Array, ArrayLike, Float

from .._errors import InputError
from . import _validate


def mixture_params(mixture) -> tuple[Float[Array, "k d"], Float[Array, "k d d"], Float[Array, " k"]]:
    """(means, covariances, weights) of a Gaussian mixture given as a
    :class:`scorefield.targets.GaussianMixture` or as a tuple of the three arrays.
    Covariances are full (k, d, d) or diagonal variances (k, d). Weights are normalised
    here."""
    from ..targets import GaussianMixture

    if isinstance(mixture, GaussianMixture):
        means, covs, weights = mixture.means, mixture.covs, mixture.weights
    elif isinstance(mixture, (tuple, list)) and len(mixture) == 3:
        means, covs, weights = mixture
    else:
        raise InputError(
            "the mixture must be a GaussianMixture or a tuple (means (k, d), covariances (k, d, d), weights (k,)), "
            f"got a {type(mixture).__name__}"
        )
    means, covs, weights = jnp.asarray(means), jnp.asarray(covs), jnp.asarray(weights)
    if means.ndim != 2:
        raise InputError(f"mixture means must have shape (k, d), got {tuple(means.shape)}")
    k, d = means.shape
    if covs.shape == (k, d):
        covs = jax.vmap(jnp.diag)(covs)
    if covs.shape != (k, d, d):
        raise InputError(
            f"mixture covariances must have shape ({k}, {d}, {d}) or variances ({k}, {d}), "
            f"got {tuple(covs.shape)}"
        )
    if weights.shape != (k,):
        raise InputError(f"mixture weights must have shape ({k},), got {tuple(weights.shape)}")
    return means, covs, weights / jnp.sum(weights)


@jax.jit
def responsibilities(
    means: Float[Array, "k d"],
    covs: Float[Array, "k d d"],
    weights: Float[Array, " k"],
    x: Float[Array, " d"],
) -> Float[Array, " k"]:
    """Posterior probability of each component given one point x: w_k N(x; mu_k, S_k) / p(x)."""
    logp = jax.vmap(lambda mu, cov: multivariate_normal.logpdf(x, mu, cov))(means, covs)
    return jax.nn.softmax(jnp.log(weights) + logp)


@partial(jax.jit, static_argnames=("hard",))
def _mode_weights(means, covs, weights, samples, hard):
    r = jax.vmap(responsibilities, in_axes=(None, None, None, 0))(means, covs, weights, samples)
    if hard:
        r = jax.nn.one_hot(jnp.argmax(r, axis=1), means.shape[0], dtype=r.dtype)
    return jnp.mean(r, axis=0)


def mode_weights(mixture, samples: Float[ArrayLike, "n d"], *, hard: bool = False) -> Float[Array, " k"]:
    """The weight each mixture component gets from a sample.

    Arguments:
        mixture: a `GaussianMixture` or a tuple
            (means (k, d), covariances (k, d, d) or variances (k, d), weights (k,)).
        samples: (n, d) points to judge.
        hard: False (default): the mean posterior responsibility of each component over the
            samples. Under exact samples its expectation is exactly the mixture weight
            (E_p[w_k N_k / p] = w_k), even when components overlap. True: the fraction of
            samples whose most responsible component is k (intuitive for well-separated
            modes, but biased toward heavier components when they overlap).
    Returns:
        (k,) weights summing to 1, in the mixture's component order.
    """
    means, covs, weights = mixture_params(mixture)
    samples = _validate.points("samples", samples, dim=means.shape[1])
    dtype = jnp.result_type(means.dtype, samples.dtype)
    return _mode_weights(
        means.astype(dtype), covs.astype(dtype), weights.astype(dtype), samples.astype(dtype), bool(hard)
    )
