"""A 2-D Gaussian dataset for training tests: known mean and covariance, so the score of
the data smoothed by sigma is exact: -(C + sigma^2 I)^{-1} (x - m)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

MEAN = np.array([0.5, 0.3])
CHOL = np.array([[0.2, 0.0], [0.1, 0.1]])
COV = CHOL @ CHOL.T


class GaussData(eqx.Module):
    mean: jax.Array
    chol: jax.Array
    spec: str = eqx.field(static=True, default="gauss")
    dim: int = eqx.field(static=True, default=2)
    target = None

    def sample(self, key, n):
        return self.mean + jax.random.normal(key, (n, 2)) @ self.chol.T


def gauss_data() -> GaussData:
    return GaussData(jnp.asarray(MEAN, jnp.float32), jnp.asarray(CHOL, jnp.float32))


def exact_score(x: np.ndarray, sigma: float) -> np.ndarray:
    c = COV + sigma**2 * np.eye(2)
    return -np.linalg.solve(c, (x - MEAN).T).T
