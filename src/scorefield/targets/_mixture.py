"""Gaussian mixtures: exact log-density, score, sampling, and sigma-smoothing in closed form."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import cho_solve
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._errors import InputError
from ._base import SmoothedTarget


def _check(name: str, a, shape_desc: str, ndim: int) -> np.ndarray | None:
    """Host-side validation of a concrete array; skipped (None) for traced inputs."""
    if isinstance(a, jax.core.Tracer):
        return None
    a = np.asarray(a)
    if a.ndim != ndim:
        raise InputError(f"GaussianMixture {name} has shape {a.shape}; expected {shape_desc}")
    if not np.all(np.isfinite(a)):
        raise InputError(f"GaussianMixture {name} contains NaN or inf; all entries must be finite")
    return a


class GaussianMixture(SmoothedTarget):
    """A mixture `sum_k w_k N(mu_k, Sigma_k)` on R^D.

    Smoothing adds `sigma^2 I` to every covariance, so the exact score exists at every
    noise level. Covariances are either full `(K, D, D)` (symmetric positive definite) or
    diagonal, given as variances `(K, D)` (`diagonal=True`, cheaper).

    Arguments:
        means: component means, shape `(K, D)`.
        covs: covariances `(K, D, D)`, or variances `(K, D)` for diagonal components.
        weights: non-negative weights `(K,)`, normalised here; default equal weights.
    """

    means: Float[Array, "k d"]
    covs: Float[Array, "k d d"] | Float[Array, "k d"]
    log_weights: Float[Array, " k"]
    diagonal: bool = eqx.field(static=True)

    def __init__(self, means, covs, weights=None):
        m = _check("means", means, "(K, D)", 2)
        c = None if isinstance(covs, jax.core.Tracer) else np.asarray(covs)
        if c is not None and c.ndim not in (2, 3):
            raise InputError(
                f"GaussianMixture covs has shape {c.shape}; expected (K, D, D) covariances or (K, D) variances"
            )
        self.diagonal = (c.ndim if c is not None else jnp.ndim(covs)) == 2
        if m is not None and c is not None:
            k, d = m.shape
            want = (k, d) if self.diagonal else (k, d, d)
            if c.shape != want:
                raise InputError(f"GaussianMixture covs has shape {c.shape}; expected {want} to match means {m.shape}")
            if not np.all(np.isfinite(c)):
                raise InputError("GaussianMixture covs contains NaN or inf; all entries must be finite")
            if self.diagonal and np.any(c <= 0):
                raise InputError("GaussianMixture variances must be > 0")
            if not self.diagonal:
                if not np.allclose(c, np.swapaxes(c, -1, -2), rtol=1e-5, atol=1e-8):
                    raise InputError("GaussianMixture covs must be symmetric")
                if np.any(np.linalg.eigvalsh(c.astype(np.float64)) <= 0):
                    raise InputError("GaussianMixture covs must be positive definite")
        k = jnp.shape(means)[0]
        if weights is None:
            log_w = jnp.full((k,), -math.log(k), jnp.float32)
        else:
            w = _check("weights", weights, "(K,)", 1)
            if w is not None:
                if w.shape != (k,):
                    raise InputError(f"GaussianMixture weights has shape {w.shape}; expected ({k},)")
                if np.any(w < 0) or w.sum() <= 0:
                    raise InputError("GaussianMixture weights must be non-negative with a positive sum")
            w = jnp.asarray(weights, jnp.float32)
            log_w = jnp.log(w) - jnp.log(jnp.sum(w))
        self.means = jnp.asarray(means, jnp.float32)
        self.covs = jnp.asarray(covs, jnp.float32)
        self.log_weights = log_w

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def weights(self) -> Float[Array, " k"]:
        """Normalised mixture weights `(K,)`."""
        return jnp.exp(self.log_weights)

    def _component_terms(self, x, sigma):
        """Per component: log w_k + log N(x; mu_k, Sigma_k + sigma^2 I), and the
        component score -(Sigma_k + sigma^2 I)^{-1} (x - mu_k)."""
        d = self.dim
        diff = x[None, :] - self.means
        s2 = jnp.square(jnp.asarray(sigma, jnp.float32))
        if self.diagonal:
            var = self.covs + s2
            comp_score = -diff / var
            log_det = jnp.sum(jnp.log(var), axis=-1)
            maha = jnp.sum(diff * diff / var, axis=-1)
        else:
            cov = self.covs + s2 * jnp.eye(d, dtype=self.covs.dtype)
            chol = jnp.linalg.cholesky(cov)
            comp_score = -jax.vmap(lambda c, r: cho_solve((c, True), r))(chol, diff)
            log_det = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
            maha = -jnp.sum(diff * comp_score, axis=-1)
        logc = self.log_weights - 0.5 * (maha + log_det + d * math.log(2.0 * math.pi))
        return logc, comp_score

    def smoothed_log_prob(self, x: Float[ArrayLike, " d"], sigma) -> Float[Array, ""]:
        """`log sum_k w_k N(x; mu_k, Sigma_k + sigma^2 I)`; `sigma >= 0`."""
        logc, _ = self._component_terms(x, sigma)
        return jax.nn.logsumexp(logc)

    def smoothed_score(self, x: Float[ArrayLike, " d"], sigma) -> Float[Array, " d"]:
        """Closed form: responsibilities times component scores, summed."""
        logc, comp_score = self._component_terms(x, sigma)
        resp = jax.nn.softmax(logc)
        return resp @ comp_score

    def log_prob(self, x: Float[ArrayLike, " d"]) -> Float[Array, ""]:
        return self.smoothed_log_prob(x, 0.0)

    def score(self, x: Float[ArrayLike, " d"]) -> Float[Array, " d"]:
        return self.smoothed_score(x, 0.0)

    def sample(self, key: PRNGKeyArray, n: int) -> Float[Array, "n d"]:
        kc, kz = jax.random.split(key)
        comp = jax.random.categorical(kc, self.log_weights, shape=(n,))
        z = jax.random.normal(kz, (n, self.dim), jnp.float32)
        if self.diagonal:
            x = self.means[comp] + jnp.sqrt(self.covs[comp]) * z
        else:
            chol = jnp.linalg.cholesky(self.covs)
            x = self.means[comp] + jnp.einsum("nij,nj->ni", chol[comp], z)
        return x.astype(jnp.float32)
