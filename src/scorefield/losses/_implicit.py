from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._registry import Option
from ._base import OBJECTIVES, Objective, ObjectiveContext


def _perturb(x, sigma, key):
    return x + sigma * jax.random.normal(key, x.shape) if sigma > 0 else x


@OBJECTIVES.register
class ExactScoreMatching(Objective):
    """Hyvarinen's score matching: E_p[ tr(J_x s(x)) + 0.5 |s(x)|^2 ].

    The Jacobian trace is exact (a D x D Jacobian per sample by forward-mode autodiff):
    cheap in low dimension, costly in high. The model is evaluated at the fixed level
    `sigma`; with sigma > 0 the data are first perturbed by N(0, sigma^2 I), so the minimiser
    is the score of the smoothed density p_sigma (sigma = 0 learns the score of p itself,
    which then needs a smooth p).
    """

    sigma: float = eqx.field(static=True, default=0.0)

    name = "exact"

    @classmethod
    def from_options(cls, context: ObjectiveContext) -> "ExactScoreMatching":
        return cls(sigma=float(context.sigma_min))

    def __call__(self, model, x: Float[Array, "b d"], *, key: PRNGKeyArray) -> Float[Array, ""]:
        x = _perturb(x, self.sigma, key)
        level = jnp.asarray(max(self.sigma, 1e-12))

        def one(xi):
            s = model(xi, level)
            jac = jax.jacfwd(lambda y: model(y, level))(xi)
            return jnp.trace(jac) + 0.5 * jnp.sum(s**2)

        return jnp.mean(jax.vmap(one)(x))


@OBJECTIVES.register
class SlicedScoreMatching(Objective):
    """Sliced score matching (Song et al. 2019), the variance-reduced form:

        E_p E_v [ v^T J_x s(x) v + 0.5 |s(x)|^2 ],   v ~ N(0, I),

    with `n_projections` random directions per sample and one Jacobian-vector product each.
    The level handling is that of :class:`ExactScoreMatching`.
    """

    sigma: float = eqx.field(static=True, default=0.0)
    n_projections: int = eqx.field(static=True, default=1)

    name = "ssm"
    options = (Option("ssm_projections", int, 1, "random directions per sample", low=1),)

    @classmethod
    def from_options(cls, context: ObjectiveContext, *, ssm_projections) -> "SlicedScoreMatching":
        return cls(sigma=float(context.sigma_min), n_projections=ssm_projections)

    def __call__(self, model, x: Float[Array, "b d"], *, key: PRNGKeyArray) -> Float[Array, ""]:
        kx, kv = jax.random.split(key)
        x = _perturb(x, self.sigma, kx)
        level = jnp.asarray(max(self.sigma, 1e-12))
        v = jax.random.normal(kv, (x.shape[0], self.n_projections, x.shape[1]))

        def one(xi, vi):
            f = lambda y: model(y, level)  # noqa: E731
            s, jv = jax.vmap(lambda w: jax.jvp(f, (xi,), (w,)))(vi)
            return jnp.mean(jnp.sum(vi * jv, axis=-1)) + 0.5 * jnp.sum(s[0] ** 2)

        return jnp.mean(jax.vmap(one)(x, v))
