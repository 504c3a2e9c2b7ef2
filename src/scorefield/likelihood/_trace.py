"""The divergence of a vector field: exact (one Jacobian-vector product per dimension) or
Hutchinson's estimator with Rademacher probes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._errors import ConfigError

TRACES = ("auto", "exact", "hutchinson")
# At or below this dimension "auto" takes the exact trace: D forward-mode products cost
# about D score evaluations, which Hutchinson's few probes beat only for larger D.
EXACT_MAX_DIM = 16


def resolve_trace(trace: str, dim: int) -> str:
    """"exact" or "hutchinson" for `trace` in TRACES at dimension `dim`."""
    if trace not in TRACES:
        raise ConfigError(f"trace={trace!r} is not one of {', '.join(TRACES)}")
    if trace == "auto":
        return "exact" if dim <= EXACT_MAX_DIM else "hutchinson"
    return trace


def probes(trace: str, dim: int, n_probes: int, key: PRNGKeyArray) -> Float[Array, "k d"]:
    """The probe vectors of one point: the basis `I` (exact) or `n_probes` Rademacher vectors."""
    if trace == "exact":
        return jnp.eye(dim, dtype=jnp.float32)
    return jax.random.rademacher(key, (n_probes, dim), dtype=jnp.float32)


def value_and_divergence(f, x: Float[Array, " d"], vs: Float[Array, "k d"], *, exact: bool):
    """`(f(x), div f(x))` from forward-mode products `J v` along the probes `vs`.

    Exact (`vs` the basis): div f = sum_k v_k . J v_k = tr J. Hutchinson: the mean of
    v_k . J v_k over Rademacher v_k, unbiased for tr J with variance 2 sum_{i != j} J_ij^2 / K
    (for a symmetric J, as a score's Jacobian is).
    """
    value, jv = jax.vmap(lambda v: jax.jvp(f, (x,), (v,)))(vs)
    quad = jnp.sum(vs * jv, axis=-1)
    div = jnp.sum(quad) if exact else jnp.mean(quad)
    return value[0], div
