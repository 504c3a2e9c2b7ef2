from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._registry import Option
from ._base import NETS, NetContext, ScoreNet
from ._film import FilmMLP, sigma_frequencies
from ._trig import sincos_turns


@NETS.register
class SigmaNet(ScoreNet):
    """A continuous-sigma score network, defined for every sigma > 0.

    Random Fourier features of the centred input (frequencies N(0, feature_scale^2), frozen),
    log sigma embedded by sin/cos features that scale and shift every hidden layer through
    one linear map (FiLM), SiLU activations, and the output divided by sigma as in NCSNv2, so
    that ``sigma * s`` is O(1) at every level.
    """

    b: Float[Array, "f d"]
    freqs: Float[Array, " k"]
    centre: Float[Array, " d"]
    trunk: FilmMLP

    frozen = ("b", "freqs", "centre")
    name = "sigma"
    options = (
        Option("n_features", int, 128, "random Fourier frequencies (2 n_features features)", low=1),
        Option("feature_scale", float, 8.0, "std of the frequencies, cycles per data unit", low=0, low_open=True),
        Option("width", int, 128, "hidden width of the MLP", low=1),
        Option("depth", int, 3, "number of hidden layers of the MLP", low=1),
    )

    @classmethod
    def from_options(cls, context: NetContext, *, n_features, feature_scale, width, depth) -> "SigmaNet":
        return cls(context.dim, n_features=n_features, feature_scale=feature_scale, width=width, depth=depth,
                   centre=context.centre, key=context.key)

    def __init__(
        self,
        dim: int,
        *,
        n_features: int = 128,
        feature_scale: float = 8.0,
        width: int = 128,
        depth: int = 3,
        sigma_features: int = 16,
        centre: Float[Array, " d"] | None = None,
        key: PRNGKeyArray,
    ):
        """Arguments:
            dim: D, the data dimension.
            n_features: number of random frequencies (2 n_features features).
            feature_scale: standard deviation of the frequencies, in cycles per data unit.
            width, depth: hidden width and number of hidden layers.
            sigma_features: number of sin/cos frequencies for log sigma.
            centre: subtracted from the input first (default the origin).
            key: split so that every part has its own randomness.
        """
        kb, kt = jax.random.split(key)
        self.b = feature_scale * jax.random.normal(kb, (n_features, dim))
        self.freqs = sigma_frequencies(sigma_features)
        self.centre = jnp.zeros(dim) if centre is None else jnp.asarray(centre, jnp.float32)
        self.trunk = FilmMLP(2 * n_features + dim, dim, 2 * sigma_features, width, depth, key=kt)

    def __call__(self, x: Float[Array, " d"], sigma: Float[ArrayLike, ""]) -> Float[Array, " d"]:
        u = x - self.centre
        sin, cos = sincos_turns(self.b @ u)
        return self.trunk(jnp.concatenate([cos, sin, u]), jnp.log(sigma) * self.freqs) / sigma
