"""Shared type aliases, in one place.

Conventions used across scorefield:
- a *score function* acts on one unbatched example: ``score_fn(x, sigma) -> s`` with
  ``x`` of shape ``(D,)``, ``sigma`` a scalar, ``s`` of shape ``(D,)``. ``sigma`` is the
  standard deviation of the isotropic Gaussian perturbation (covariance ``sigma**2 I``)
  in data coordinates; ``s`` approximates ``grad_x log p_sigma(x)``.
- batches and particles are the leading axis; callers ``vmap``.
- image data lives in (x, y) coordinates, x to the right, y up, the longer side of the
  image spanning [0, 1] (SPEC section 3).
"""

from __future__ import annotations

from typing import Callable, TypeAlias

from jaxtyping import Array, Float, PRNGKeyArray

Scalar: TypeAlias = Float[Array, ""]
Point: TypeAlias = Float[Array, " d"]
Points: TypeAlias = Float[Array, "n d"]
ScoreFn: TypeAlias = Callable[[Float[Array, " d"], Float[Array, ""]], Float[Array, " d"]]
Key: TypeAlias = PRNGKeyArray

__all__ = ["Scalar", "Point", "Points", "ScoreFn", "Key"]
