from __future__ import annotations

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ..nets._base import scores_on_grid
from ..noise import log_normal, log_uniform, random_levels
from .._errors import ConfigError
from .._registry import Option
from ._base import OBJECTIVES, Objective, ObjectiveContext

Levels = Literal["all", "random", "continuous"]

# EDM's median training sigma over the data's std: exp(P_mean = -1.2) / sigma_data = 0.5
_EDM_MEDIAN = 0.6


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
    sigma per sample between the smallest and largest of `sigmas`, log-uniformly
    (`sigma_draw` "log_uniform") or log-normally ("log_normal": ln sigma ~ N(ln
    `sigma_median`, `sigma_spread`^2) truncated to the range, Karras et al. 2022; the median
    defaults to 0.6 x the data's standard deviation, EDM's P_mean = -1.2 at sigma_data 0.5).

    `second_order` > 0 adds that weight times the second-order (Jacobian) term of
    :func:`second_order_residual` on the first `second_order_fraction` of each batch (one
    forward-mode product per sample, which also gives its score: on the whole batch about
    twice the cost of a step). First-order DSM trains the score
    only; the probability-flow ODE's density also depends on the score's Jacobian (its
    divergence), which this term trains (Lu et al. 2022, high-order DSM). Levels "random"
    or "continuous" only.
    """

    sigmas: Float[Array, " L"]
    levels: Levels = eqx.field(static=True, default="all")
    second_order: float = eqx.field(static=True, default=0.0)
    second_order_fraction: float = eqx.field(static=True, default=1.0)
    antithetic: bool = eqx.field(static=True, default=False)
    sigma_draw: str = eqx.field(static=True, default="log_uniform")
    sigma_median: float | None = eqx.field(static=True, default=None)
    sigma_spread: float = eqx.field(static=True, default=1.2)
    weight_std: float | None = eqx.field(static=True, default=None)

    name = "dsm"
    options = (
        Option("levels", str, "continuous", "how sigma is drawn: every level, one level, or log-uniform per sample",
               choices=("all", "random", "continuous")),
        Option("second_order", float, 0.0, "weight of the second-order (score Jacobian) term; 0 leaves it out",
               low=0.0),
        Option("second_order_fraction", float, 1.0, "fraction of each batch the second-order term is computed on",
               low=0.0, low_open=True, high=1.0),
        Option("antithetic", bool, False, "perturb each sample twice, by +sigma z and -sigma z (half the distinct "
               "samples per batch; lower-variance gradients at small sigma)"),
        Option("sigma_draw", str, "log_uniform", "with levels \"continuous\": sigma log-uniform on the range, "
               "or log-normal around sigma_median (EDM)", choices=("log_uniform", "log_normal")),
        Option("sigma_median", float, None, "log-normal draw: the median sigma (data units); default 0.6 x "
               "the data's standard deviation", low=0.0, low_open=True),
        Option("sigma_spread", float, 1.2, "log-normal draw: the standard deviation of ln sigma", low=0.0,
               low_open=True),
        Option("weighting", str, "noise", "\"noise\": every sigma's noise-prediction error counts alike; "
               "\"edm\": times (sigma^2 + sigma_data^2) / sigma_data^2, EDM's weighting (pair it with a "
               "network whose output is scaled by c_out)", choices=("noise", "edm")),
    )

    def __post_init__(self):
        if self.second_order and self.levels == "all":
            raise ConfigError("objective option second_order > 0 needs levels \"random\" or \"continuous\" "
                              "(one sigma per sample), not \"all\"")
        if self.antithetic and self.levels == "all":
            raise ConfigError("objective option antithetic needs levels \"random\" or \"continuous\" "
                              "(one sigma per sample), not \"all\"")
        if self.sigma_draw != "log_uniform" and self.levels != "continuous":
            raise ConfigError(f"objective option sigma_draw={self.sigma_draw!r} needs levels \"continuous\", "
                              f"not {self.levels!r}")

    @classmethod
    def from_options(cls, context: ObjectiveContext, *, levels, second_order=0.0,
                     second_order_fraction=1.0, antithetic=False, sigma_draw="log_uniform",
                     sigma_median=None, sigma_spread=1.2, weighting="noise") -> "DenoisingScoreMatching":
        def data_std(needs: str) -> float:
            if context.sigma_data is None:
                raise ConfigError(f"objective option {needs} data whose standard deviation is known")
            return float(context.sigma_data)

        if sigma_draw == "log_normal" and sigma_median is None:
            sigma_median = _EDM_MEDIAN * data_std("sigma_draw=\"log_normal\" needs sigma_median, or")
        weight_std = data_std("weighting=\"edm\" needs") if weighting == "edm" else None
        return cls(context.sigmas, levels=levels, second_order=float(second_order),
                   second_order_fraction=float(second_order_fraction), antithetic=bool(antithetic),
                   sigma_draw=sigma_draw, sigma_median=None if sigma_median is None else float(sigma_median),
                   sigma_spread=float(sigma_spread), weight_std=weight_std)

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
                return _weighted_error(s, jnp.broadcast_to(self.sigmas, (b, len(self.sigmas))), z, self.weight_std)
        if self.levels == "all":
            z = jax.random.normal(kz, (b, len(self.sigmas)) + x.shape[1:])
            xt = x[:, None, :] + self.sigmas[:, None] * z
            # one shared grid of levels: networks may compute it faster than a vmap
            s = scores_on_grid(model, xt, self.sigmas)
            return _weighted_error(s, jnp.broadcast_to(self.sigmas, (b, len(self.sigmas))), z, self.weight_std)
        if self.levels == "random":
            sig = self.sigmas[random_levels(ks, len(self.sigmas), b)][:, None]
        elif self.sigma_draw == "log_normal":
            sig = log_normal(ks, self.sigma_median, self.sigma_spread, jnp.min(self.sigmas), jnp.max(self.sigmas),
                             b)[:, None]
        else:
            sig = log_uniform(ks, jnp.min(self.sigmas), jnp.max(self.sigmas), b)[:, None]
        z = jax.random.normal(kz, sig.shape + x.shape[1:])
        if self.antithetic and b >= 2:
            # samples 2i and 2i+1 are x_i + sigma z_i and x_i - sigma z_i (an odd last one is
            # kept): where the model is smooth on the scale sigma the two noise terms of the
            # gradient cancel, which is most of its variance at small sigma
            h = b // 2
            pair = jnp.concatenate([jnp.repeat(jnp.arange(h), 2), jnp.arange(2 * h, b)])
            sign = jnp.concatenate([jnp.tile(jnp.array([1.0, -1.0], z.dtype), h), jnp.ones(b - 2 * h, z.dtype)])
            x, sig = x[pair], sig[pair]
            z = z[pair] * sign.reshape((b,) + (1,) * (z.ndim - 1))
            labels = None if labels is None else labels[pair]
        if self.second_order:
            kv = jax.random.fold_in(kz, 1)
            v = jax.random.rademacher(kv, z.shape, dtype=z.dtype)
            k = max(1, min(b, int(round(self.second_order_fraction * b))))
            if k == b:
                return second_order_loss(model, x, sig, z, v, self.second_order, labels, weight_std=self.weight_std)
            head = second_order_loss(model, x[:k], sig[:k], z[:k], v[:k], self.second_order,
                                     None if labels is None else labels[:k], fraction=k / b,
                                     weight_std=self.weight_std)
            tail = _first_order(model, x[k:], sig[k:], z[k:], None if labels is None else labels[k:], self.weight_std)
            return head + (b - k) / b * tail
        return _first_order(model, x, sig, z, labels, self.weight_std)


class _Labelled(eqx.Module):
    """``model(x, sigma, label)`` of a conditional network, as a plain callable for vmap."""

    model: eqx.Module

    def __call__(self, x, sigma, label):
        return self.model(x, sigma, label)


def denoising_loss(
    model, x: Float[Array, "b d"], sig: Float[Array, "b k"], z: Float[Array, "b k d"], *,
    weight_std: float | None = None,
) -> Float[Array, ""]:
    """The sigma^2-weighted denoising loss for given perturbations, the deterministic core of
    :class:`DenoisingScoreMatching`: each sample x_b is perturbed at its k levels sig[b, k] by
    x~ = x_b + sig z[b, k], and the loss is 0.5 * mean_{b,k} |sig s(x~, sig) + z|^2, each term
    times (sig^2 + weight_std^2) / weight_std^2 where `weight_std` is given (EDM's weighting).
    """
    xt = x[:, None, :] + sig[..., None] * z
    return _weighted_error(jax.vmap(jax.vmap(model))(xt, sig), sig, z, weight_std)


def second_order_residual(model, xt: Float[Array, " d"], sig: Float[Array, ""], z: Float[Array, " d"],
                          v: Float[Array, " d"]) -> tuple[Float[Array, " d"], Float[Array, ""]]:
    """The model's score at x~ = x + sig z and its second-order denoising residual along v.

    By Tweedie's second-order formula Cov[z | x~] = I + sig^2 grad s*(x~) for the true
    score s*, and E[z | x~] = -sig s*, so with w = z + sig s (s the model's score, its
    gradient stopped) the matrix I + sig^2 J_s(x~) regresses on w w^T. Along a probe v
    (Rademacher: E[v v^T] = I) the scalar residual is

        r = sig^2 v^T J_s v + |v|^2 - (v . w)^2,

    whose mean square is minimised where the symmetric part of I + sig^2 J_s equals
    Cov[z | x~]; its trace is the divergence the probability-flow ODE integrates.

    Arguments:
        model: ``model(x, sigma) -> score`` on one example.
        xt: (D,) the perturbed point; sig: its sigma (data units); z: (D,) the unit noise
            that made it; v: (D,) the probe.
    Returns:
        (s, r): the score (D,) and the residual (scalar), from one forward-mode product.
    """
    s, jv = jax.jvp(lambda y: model(y, sig), (xt,), (v,))
    w = z + sig * jax.lax.stop_gradient(s)
    return s, sig**2 * jnp.dot(v, jv) + jnp.dot(v, v) - jnp.dot(v, w) ** 2


def second_order_loss(model, x, sig, z, v, weight: float, labels=None, fraction: float = 1.0,
                      weight_std: float | None = None) -> Float[Array, ""]:
    """`fraction` x the first-order DSM loss plus `weight` x 0.5 mean r^2
    (`second_order_residual`), for per-sample sigmas ``sig`` (b, k), noise ``z`` and probes
    ``v`` (b, k, d). (`fraction`: the part of a larger batch these samples are.)"""
    xt = x[:, None, :] + sig[..., None] * z
    if labels is None:
        one = lambda y, s_, z_, v_: second_order_residual(model, y, s_, z_, v_)  # noqa: E731
        s, r = jax.vmap(jax.vmap(one))(xt, sig, z, v)
    else:
        def one(y, s_, z_, v_, lab):
            return second_order_residual(lambda a, b: model(a, b, lab), y, s_, z_, v_)
        s, r = jax.vmap(jax.vmap(one, (0, 0, 0, 0, None)))(xt, sig, z, v, labels)
    return fraction * _weighted_error(s, sig, z, weight_std) + weight * 0.5 * jnp.mean(r**2)


def _first_order(model, x, sig, z, labels, weight_std=None) -> Float[Array, ""]:
    """`denoising_loss`, with each sample's label passed to the model where there are labels."""
    if labels is None:
        return denoising_loss(model, x, sig, z, weight_std=weight_std)
    xt = x[:, None, :] + sig[..., None] * z
    return _weighted_error(jax.vmap(jax.vmap(model, (0, 0, None)), (0, 0, 0))(xt, sig, labels), sig, z, weight_std)


def _weighted_error(s: Float[Array, "b k d"], sig: Float[Array, "b k"], z: Float[Array, "b k d"],
                    weight_std: float | None = None) -> Float[Array, ""]:
    err = jnp.sum((sig[..., None] * s + z) ** 2, axis=-1)
    if weight_std is not None:
        # EDM's lambda(sigma) = 1 / c_out^2 on the denoiser's error: the network's raw output
        # F then has a unit-variance target at every sigma
        err = err * (1.0 + (sig / weight_std) ** 2)
    return 0.5 * jnp.mean(err)
