from __future__ import annotations

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ..nets._base import scores_on_grid
from ..noise import log_uniform, random_levels
from .._registry import Option
from ._base import OBJECTIVES, Objective, ObjectiveContext

Levels = Literal["all", "random", "continuous"]


@OBJECTIVES.register
class DenoisingScoreMatching(Objective):
    """Noise-conditional denoising score matching (Vincent 2011; Song and Ermon 2019).

    Each sample is perturbed, x~ = x + sigma z with z ~ N(0, I) (covariance sigma^2 I), and
    the model regresses on the score of the perturbation kernel, -(x~ - x)/sigma^2 = -z/sigma:

        l(sigma) = 0.5 E |s(x~, sigma) + z/sigma|^2,   weighted by lambda(sigma) = sigma^2,

    i.e. 0.5 E |sigma s(x~, sigma) + z|^2, summed over coordinates and averaged over samples
    and levels. (In 2-D this equals the reference's mean over coordinates of the squared
    error without the 0.5, so its logged losses compare directly.)

    `levels` chooses how sigma is drawn: "all" perturbs every sample once at every level of
    `sigmas` (the reference); "random" draws one level per sample; "continuous" draws one
    sigma per sample log-uniformly between the smallest and largest of `sigmas`.
    """

    sigmas: Float[Array, " L"]
    levels: Levels = eqx.field(static=True, default="all")

    name = "dsm"
    options = (
        Option("levels", str, "continuous", "how sigma is drawn: every level, one level, or log-uniform per sample",
               choices=("all", "random", "continuous")),
    )

    @classmethod
    def from_options(cls, context: ObjectiveContext, *, levels) -> "DenoisingScoreMatching":
        return cls(context.sigmas, levels=levels)

    def __call__(self, model, x: Float[Array, "b d"], *, key: PRNGKeyArray,
                 labels: Int[Array, " b"] | None = None) -> Float[Array, ""]:
        """The loss of `model` on the batch `x`; with `labels`, a conditional model is called
        as ``model(x~, sigma, label)`` (a label of n_classes means "no label")."""
        ks, kz = jax.random.split(key)
        b = x.shape[0]
        if labels is not None:
            model = _Labelled(model)
            if self.levels == "all":
                z = jax.random.normal(kz, (b, len(self.sigmas)) + x.shape[1:])
                xt = x[:, None, :] + self.sigmas[:, None] * z
                s = jax.vmap(jax.vmap(model, (0, 0, None)), (0, None, 0))(xt, self.sigmas, labels)
                return _weighted_error(s, jnp.broadcast_to(self.sigmas, (b, len(self.sigmas))), z)
        if self.levels == "all":
            z = jax.random.normal(kz, (b, len(self.sigmas)) + x.shape[1:])
            xt = x[:, None, :] + self.sigmas[:, None] * z
            # one shared grid of levels: networks may compute it faster than a vmap
            s = scores_on_grid(model, xt, self.sigmas)
            return _weighted_error(s, jnp.broadcast_to(self.sigmas, (b, len(self.sigmas))), z)
        if self.levels == "random":
            sig = self.sigmas[random_levels(ks, len(self.sigmas), b)][:, None]
        else:
            sig = log_uniform(ks, jnp.min(self.sigmas), jnp.max(self.sigmas), b)[:, None]
        z = jax.random.normal(kz, sig.shape + x.shape[1:])
        if labels is not None:
            xt = x[:, None, :] + sig[..., None] * z
            s = jax.vmap(jax.vmap(model, (0, 0, None)), (0, 0, 0))(xt, sig, labels)
            return _weighted_error(s, sig, z)
        return denoising_loss(model, x, sig, z)


class _Labelled(eqx.Module):
    """``model(x, sigma, label)`` of a conditional network, as a plain callable for vmap."""

    model: eqx.Module

    def __call__(self, x, sigma, label):
        return self.model(x, sigma, label)


def denoising_loss(
    model, x: Float[Array, "b d"], sig: Float[Array, "b k"], z: Float[Array, "b k d"]
) -> Float[Array, ""]:
    """The sigma^2-weighted denoising loss for given perturbations, the deterministic core of
    :class:`DenoisingScoreMatching`: each sample x_b is perturbed at its k levels sig[b, k] by
    x~ = x_b + sig z[b, k], and the loss is 0.5 * mean_{b,k} |sig s(x~, sig) + z|^2.
    """
    xt = x[:, None, :] + sig[..., None] * z
    return _weighted_error(jax.vmap(jax.vmap(model))(xt, sig), sig, z)


def _weighted_error(s: Float[Array, "b k d"], sig: Float[Array, "b k"], z: Float[Array, "b k d"]) -> Float[Array, ""]:
    return 0.5 * jnp.mean(jnp.sum((sig[..., None] * s + z) ** 2, axis=-1))
