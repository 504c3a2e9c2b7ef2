"""Toy 2-D data sets with exact samplers, and their closed-form densities where one exists.

Definitions follow the FFJORD toy sets (Grathwohl et al. 2019), drawn iid per point:
    two-moons     sklearn's moons: upper arc (cos t, sin t), lower (1 - cos t, 0.5 - sin t),
                  t ~ U[0, pi], each with probability 1/2, + N(0, 0.1^2 I)
    swiss-roll    t = 1.5 pi (1 + 2u), (t cos t, t sin t) / 5 + N(0, 0.2^2 I)
    8gaussians    8 equal Gaussians at radius 2 sqrt 2, angles k pi/4, std 0.5/sqrt 2
    checkerboard  uniform on 8 alternating squares of side 2 in [-4, 4]^2
    pinwheel      5 arms: radial N(1, 0.3^2), tangential N(0, 0.1^2), rotated by the arm
                  angle + 0.25 exp(radial), scaled by 2
    two-spirals   r = 3 pi sqrt(u), (-r cos r + U[0, .5], r sin r + U[0, .5]) / 3 times a
                  random sign, + N(0, 0.1^2 I)
    rings         4 concentric circles of radii 3, 2.25, 1.5, 0.75 (equal mass, uniform
                  angle) + N(0, 0.08^2 I)
    ncsn-mixture  1/5 N((-5, -5), I) + 4/5 N((5, 5), I) (the NCSN paper's example)
Closed-form targets: 8gaussians and ncsn-mixture (GaussianMixture), checkerboard
(Checkerboard); the others have none (target None).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ..targets import Checkerboard, GaussianMixture, Target


def _two_moons(key, n):
    kt, kb, kz = jax.random.split(key, 3)
    t = jnp.pi * jax.random.uniform(kt, (n,))
    upper = jax.random.bernoulli(kb, 0.5, (n,))
    x = jnp.where(upper, jnp.cos(t), 1.0 - jnp.cos(t))
    y = jnp.where(upper, jnp.sin(t), 0.5 - jnp.sin(t))
    return jnp.stack([x, y], -1) + 0.1 * jax.random.normal(kz, (n, 2))


def _swiss_roll(key, n):
    kt, kz = jax.random.split(key)
    t = 1.5 * jnp.pi * (1.0 + 2.0 * jax.random.uniform(kt, (n,)))
    return jnp.stack([t * jnp.cos(t), t * jnp.sin(t)], -1) / 5.0 + 0.2 * jax.random.normal(kz, (n, 2))


def _pinwheel(key, n):
    kf, kl = jax.random.split(key)
    f = jax.random.normal(kf, (n, 2)) * jnp.array([0.3, 0.1]) + jnp.array([1.0, 0.0])
    arms = jax.random.randint(kl, (n,), 0, 5)
    a = 2.0 * jnp.pi * arms / 5.0 + 0.25 * jnp.exp(f[:, 0])
    c, s = jnp.cos(a), jnp.sin(a)
    return 2.0 * jnp.stack([f[:, 0] * c + f[:, 1] * s, -f[:, 0] * s + f[:, 1] * c], -1)


def _two_spirals(key, n):
    kr, ku, ks, kz = jax.random.split(key, 4)
    r = jnp.sqrt(jax.random.uniform(kr, (n,))) * 3.0 * jnp.pi
    u = 0.5 * jax.random.uniform(ku, (n, 2))
    p = jnp.stack([-jnp.cos(r) * r, jnp.sin(r) * r], -1) + u
    sign = jnp.where(jax.random.bernoulli(ks, 0.5, (n,)), 1.0, -1.0)[:, None]
    return sign * p / 3.0 + 0.1 * jax.random.normal(kz, (n, 2))


def _rings(key, n):
    kr, ka, kz = jax.random.split(key, 3)
    radius = 3.0 * (1.0 - 0.25 * jax.random.randint(kr, (n,), 0, 4))
    a = 2.0 * jnp.pi * jax.random.uniform(ka, (n,))
    return radius[:, None] * jnp.stack([jnp.cos(a), jnp.sin(a)], -1) + 0.08 * jax.random.normal(kz, (n, 2))


_SAMPLERS = {
    "two-moons": _two_moons,
    "swiss-roll": _swiss_roll,
    "pinwheel": _pinwheel,
    "two-spirals": _two_spirals,
    "rings": _rings,
}

DESCRIPTIONS = {
    "two-moons": "two interleaving half circles with Gaussian noise 0.1",
    "swiss-roll": "a 2-D swiss roll (1.5 turns) with Gaussian noise 0.2",
    "8gaussians": "8 equal Gaussians on a circle of radius 2.83, std 0.354",
    "checkerboard": "uniform on 8 alternating squares of side 2 in [-4, 4]^2",
    "pinwheel": "5 curved pinwheel arms",
    "two-spirals": "two interleaved spirals with Gaussian noise 0.1",
    "rings": "4 concentric rings of radii 0.75 to 3 with Gaussian noise 0.08",
    "ncsn-mixture": "1/5 N((-5,-5), I) + 4/5 N((5,5), I)",
}


class ToySampler(eqx.Module):
    """Exact sampler of a toy set without a closed-form target."""

    name: str = eqx.field(static=True)

    def sample(self, key: PRNGKeyArray, n: int) -> Float[Array, "n 2"]:
        return _SAMPLERS[self.name](key, n).astype(jnp.float32)


def toy_target(name: str) -> Target | None:
    """The closed-form density of toy set `name`, or None where there is none."""
    if name == "ncsn-mixture":
        return GaussianMixture(
            np.array([[-5.0, -5.0], [5.0, 5.0]]), np.ones((2, 2)), np.array([0.2, 0.8])
        )
    if name == "8gaussians":
        ang = np.arange(8) * np.pi / 4
        means = 2.0 * math.sqrt(2.0) * np.stack([np.cos(ang), np.sin(ang)], -1)
        return GaussianMixture(means, np.full((8, 2), 0.125))
    if name == "checkerboard":
        return Checkerboard()
    return None
