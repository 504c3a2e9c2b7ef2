"""Numerically stable pieces shared by the closed-form targets."""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax.scipy.special import erfc, ndtr
from jaxtyping import Array, Float

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_SQRT2 = math.sqrt(2.0)


def log_normal_pdf(z: Float[Array, "..."]) -> Float[Array, "..."]:
    """log of the standard normal density at `z`."""
    return -0.5 * z * z - _LOG_SQRT_2PI


def _erfcx(x: Float[Array, "..."]) -> Float[Array, "..."]:
    """Scaled complementary error function exp(x^2) erfc(x) for x >= 0.

    Written here because jax.scipy.special.erfcx (jax 0.10, float32) returns 0 on
    roughly [9.2, 9.4].
    """
    small = x < 5.0
    xs = jnp.where(small, x, 0.0)
    direct = jnp.exp(xs * xs) * erfc(xs)
    # Asymptotic series erfcx(x) = 1/(x sqrt(pi)) sum_k (-1)^k (2k-1)!! / (2x^2)^k; at
    # x >= 5 its terms keep shrinking past k = 10, where they are below 1e-8.
    xl = jnp.where(small, 5.0, x)
    t = 1.0 / (2.0 * xl * xl)
    acc = jnp.ones_like(xl)
    for k in range(10, 0, -1):
        acc = 1.0 - (2 * k - 1) * t * acc
    return jnp.where(small, direct, acc / (xl * math.sqrt(math.pi)))


def log_ndtr_diff(u: Float[Array, "..."], v: Float[Array, "..."]) -> Float[Array, "..."]:
    """`log(Phi(u) - Phi(v))` for `u > v`; see `log_normal_mass`."""
    return log_normal_mass(0.5 * (u + v), u - v)


def log_normal_mass(mid: Float[Array, "..."], w: Float[Array, "..."]) -> Float[Array, "..."]:
    """`log(Phi(mid + w/2) - Phi(mid - w/2))`: the log standard-normal mass of an interval
    of width `w > 0` centred at `mid`.

    Stable in both tails and for tiny `w`; finite with finite gradients for any finite
    `mid` and `w > 0`, so it can be differentiated (the score of a smoothed box) far from
    the box. Taking the width separately avoids losing it to rounding when `|mid| >> w`.
    """
    # The mass is even in mid; work on the left tail, where Phi is small and accurate.
    mid = -jnp.abs(mid)
    u = mid + 0.5 * w
    v = mid - 0.5 * w

    # Three regimes, each evaluated on safe inputs where it is not selected so that
    # neither its value nor its gradient can poison the result through `where`.
    narrow = w * (1.0 + jnp.abs(mid)) < 0.05
    left = (~narrow) & (u <= 0.0)
    centre = (~narrow) & (u > 0.0)

    # Narrow interval: midpoint rule with its second-order correction; the next term is
    # O((w mid)^4) < 1e-8 in this regime.
    wn = jnp.where(narrow, w, 1e-3)
    mn = jnp.where(narrow, mid, 0.0)
    val_narrow = jnp.log(wn) + log_normal_pdf(mn) + jnp.log1p(wn * wn * (mn * mn - 1.0) / 24.0)

    # Left tail: Phi(t) = exp(-t^2/2) erfcx(-t/sqrt2) / 2, and (v^2 - u^2)/2 = w |mid|
    # exactly, which keeps the huge exponents apart from the O(1) difference. Both terms
    # of the bracket are non-negative (erfcx decreases on [0, inf)).
    wl = jnp.where(left, w, 1.0)
    ml = jnp.where(left, mid, -1.5)
    ul = ml + 0.5 * wl
    vl = ml - 0.5 * wl
    ea = _erfcx(-ul / _SQRT2)
    eb = _erfcx(-vl / _SQRT2)
    bracket = (ea - eb) + (-jnp.expm1(wl * ml)) * eb
    val_left = -0.5 * ul * ul + jnp.log(0.5) + jnp.log(bracket)

    # Straddling zero with a wide interval: the plain difference is O(1), no cancellation.
    uc = jnp.where(centre, u, 1.0)
    vc = jnp.where(centre, v, -1.0)
    val_centre = jnp.log(ndtr(uc) - ndtr(vc))

    return jnp.where(narrow, val_narrow, jnp.where(left, val_left, val_centre))
