from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._trig import sincos_turns


def sigma_frequencies(n: int) -> Float[Array, " k"]:
    """Frequencies (in turns per unit of log sigma) of the sin/cos embedding of log sigma:
    log sigma spans about -10..2, and 1/16 to 4 radians per unit covers it."""
    return jnp.geomspace(1.0 / 16.0, 4.0, n) / (2 * jnp.pi)


class FilmMLP(eqx.Module):
    """The trunk shared by the continuous-sigma networks: a SiLU MLP whose every hidden
    layer is scaled and shifted (FiLM) by one linear map of the log-sigma embedding, with a
    small last layer, so that the network starts near s = 0."""

    inp: eqx.nn.Linear
    hidden: tuple[eqx.nn.Linear, ...]
    film: eqx.nn.Linear
    out: eqx.nn.Linear
    width: int = eqx.field(static=True)

    def __init__(self, in_size: int, out_size: int, emb_size: int, width: int, depth: int, *, key: PRNGKeyArray):
        ki, kh, kf, ko = jax.random.split(key, 4)
        self.inp = eqx.nn.Linear(in_size, width, key=ki)
        self.hidden = tuple(eqx.nn.Linear(width, width, key=k) for k in jax.random.split(kh, depth - 1))
        film = eqx.nn.Linear(emb_size, 2 * width * depth, key=kf)
        self.film = eqx.tree_at(lambda l: l.weight, film, film.weight * 0.1)
        out = eqx.nn.Linear(width, out_size, key=ko)
        self.out = eqx.tree_at(lambda l: l.weight, out, out.weight * 0.1)
        self.width = width

    def __call__(self, feats: Float[Array, " f"], log_sigma_turns: Float[Array, " k"]) -> Float[Array, " d"]:
        film = self.film(jnp.concatenate(sincos_turns(log_sigma_turns)))
        film = film.reshape(len(self.hidden) + 1, 2, self.width)
        h = self.inp(feats)
        for i, layer in enumerate((None,) + self.hidden):
            if layer is not None:
                h = layer(h)
            h = jax.nn.silu(h * (1.0 + film[i, 0]) + film[i, 1])
        return self.out(h)
