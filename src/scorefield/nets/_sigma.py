from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._base import ScoreNet
from ._trig import sincos_turns


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
    inp: eqx.nn.Linear
    hidden: tuple[eqx.nn.Linear, ...]
    film: eqx.nn.Linear
    out: eqx.nn.Linear
    width: int = eqx.field(static=True)

    frozen = ("b", "freqs", "centre")

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
        kb, ki, kh, kf, ko = jax.random.split(key, 5)
        self.b = feature_scale * jax.random.normal(kb, (n_features, dim))
        # log sigma spans about -10..2: 1/16 to 4 radians per unit of log sigma, in turns
        self.freqs = jnp.geomspace(1.0 / 16.0, 4.0, sigma_features) / (2 * jnp.pi)
        self.centre = jnp.zeros(dim) if centre is None else jnp.asarray(centre, jnp.float32)
        self.inp = eqx.nn.Linear(2 * n_features + dim, width, key=ki)
        self.hidden = tuple(eqx.nn.Linear(width, width, key=k) for k in jax.random.split(kh, depth - 1))
        # scale and shift of every hidden layer, linear in the log-sigma features: smooth in
        # sigma, and cheap (sigma differs per sample, so this runs once per row)
        film = eqx.nn.Linear(2 * sigma_features, 2 * width * depth, key=kf)
        self.film = eqx.tree_at(lambda l: l.weight, film, film.weight * 0.1)
        out = eqx.nn.Linear(width, dim, key=ko)
        # a small last layer starts the model near s = 0, the score of a very broad density
        self.out = eqx.tree_at(lambda l: l.weight, out, out.weight * 0.1)
        self.width = width

    def __call__(self, x: Float[Array, " d"], sigma: Float[Array, ""]) -> Float[Array, " d"]:
        u = x - self.centre
        sin, cos = sincos_turns(self.b @ u)
        feats = jnp.concatenate([cos, sin, u])
        film = self.film(jnp.concatenate(sincos_turns(jnp.log(sigma) * self.freqs)))
        film = film.reshape(len(self.hidden) + 1, 2, self.width)
        h = self.inp(feats)
        for i, layer in enumerate((None,) + self.hidden):
            if layer is not None:
                h = layer(h)
            h = jax.nn.silu(h * (1.0 + film[i, 0]) + film[i, 1])
        return self.out(h) / sigma
