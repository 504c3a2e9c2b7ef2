"""Shape checks shared by the metrics: one InputError sentence naming the argument."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .._errors import InputError


def points(name: str, x, *, dim: int | None = None, min_n: int = 1):
    """`x` as a float array of shape (n, d), n >= min_n (and d == dim if given)."""
    x = jnp.asarray(x)
    if x.ndim != 2:
        raise InputError(f"{name} must be an array of shape (n, d), got shape {tuple(x.shape)}")
    if dim is not None and x.shape[1] != dim:
        raise InputError(f"{name} must have {dim} columns (points in {dim}-D), got shape {tuple(x.shape)}")
    if x.shape[0] < min_n:
        raise InputError(f"{name} needs at least {min_n} points, got {x.shape[0]}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    return x


def same_dim(xname: str, x, yname: str, y) -> None:
    if x.shape[1] != y.shape[1]:
        raise InputError(
            f"{xname} and {yname} must have the same dimension, got {x.shape[1]} and {y.shape[1]}"
        )


def positive_int(name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise InputError(f"{name} must be a positive integer, got {v!r}")
    return int(v)
