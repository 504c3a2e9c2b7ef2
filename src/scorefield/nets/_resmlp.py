from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._registry import Option
from ._base import NETS, NetContext, ScoreNet
from ._film import sigma_frequencies
from ._trig import sincos_turns


@NETS.register
class ResMLP(ScoreNet):
    """A residual MLP score network for point data in 3 to 32 dimensions, with the
    preconditioning of EDM (Karras et al. 2022) written for scores.

    With u = x - centre and sigma_d the data's per-coordinate scale, the network F sees the
    input at unit scale, c_in u with c_in = 1 / sqrt(sigma^2 + sigma_d^2), and the score is

        sigma s(x, sigma) = -sigma u / (sigma^2 + sigma_d^2) + sigma_d c_in F(c_in u, log sigma),

    i.e. the denoiser D = c_skip x + c_out F of EDM (c_skip = sigma_d^2 / (sigma^2 + sigma_d^2),
    c_out = sigma sigma_d c_in) turned into s = (D - x) / sigma^2. The skip term is the exact
    score of N(centre, sigma_d^2 I) smoothed by sigma, so at large sigma (where every density
    is nearly that Gaussian) the network starts right and only learns a correction; the DSM
    target of F has unit scale at every level. F: a linear input layer, `depth` residual
    blocks h <- h + W2 silu(W1 silu(h (1 + gamma) + beta)), whose scale gamma and shift beta
    come from one linear map of a sin/cos embedding of log sigma (FiLM), and a zero-
    initialised output layer, so the untrained network is the Gaussian score.
    """

    name = "resmlp"
    options = (
        Option("width", int, 64, "hidden width", low=1),
        Option("depth", int, 2, "residual blocks (two width x width layers each)", low=1),
        Option("sigma_features", int, 16, "sin/cos frequencies of log sigma", low=1),
    )

    inp: eqx.nn.Linear
    blocks: tuple[tuple[eqx.nn.Linear, eqx.nn.Linear], ...]
    film: eqx.nn.Linear
    out: eqx.nn.Linear
    freqs: Float[Array, " k"]
    centre: Float[Array, " d"]
    sigma_data: Float[Array, ""]
    width: int = eqx.field(static=True)

    frozen = ("freqs", "centre", "sigma_data")

    def __init__(
        self,
        dim: int,
        *,
        width: int = 256,
        depth: int = 2,
        sigma_features: int = 16,
        centre: Float[Array, " d"] | None = None,
        sigma_data: float = 1.0,
        key: PRNGKeyArray,
    ):
        """Arguments:
            dim: D, the data dimension.
            width: hidden width.
            depth: number of residual blocks (two width x width layers each).
            sigma_features: number of sin/cos frequencies of log sigma.
            centre: subtracted from the input first (default the origin).
            sigma_data: the data's per-coordinate standard deviation (data units), > 0.
            key: split so that every part has its own randomness.
        """
        ki, kb, kf, ko = jax.random.split(key, 4)
        self.inp = eqx.nn.Linear(dim, width, key=ki)
        blocks = []
        for k in jax.random.split(kb, depth):
            k1, k2 = jax.random.split(k)
            w2 = eqx.nn.Linear(width, width, key=k2)
            blocks.append((eqx.nn.Linear(width, width, key=k1), eqx.tree_at(lambda l: l.weight, w2, w2.weight * 0.1)))
        self.blocks = tuple(blocks)
        film = eqx.nn.Linear(2 * sigma_features, 2 * width * depth, key=kf)
        self.film = eqx.tree_at(lambda l: l.weight, film, film.weight * 0.1)
        out = eqx.nn.Linear(width, dim, key=ko)
        self.out = eqx.tree_at(lambda l: (l.weight, l.bias), out, (jnp.zeros_like(out.weight), jnp.zeros_like(out.bias)))
        self.freqs = sigma_frequencies(sigma_features)
        self.centre = jnp.zeros(dim) if centre is None else jnp.asarray(centre, jnp.float32)
        self.sigma_data = jnp.asarray(sigma_data, jnp.float32)
        self.width = width

    @classmethod
    def from_options(cls, context: NetContext, *, width, depth, sigma_features) -> "ResMLP":
        sd = 1.0 if context.sigma_data is None else float(context.sigma_data)
        return cls(context.dim, width=width, depth=depth, sigma_features=sigma_features, centre=context.centre,
                   sigma_data=sd, key=context.key)

    def __call__(self, x: Float[Array, " d"], sigma: Float[Array, ""]) -> Float[Array, " d"]:
        u = x - self.centre
        var = sigma**2 + self.sigma_data**2
        c_in = jax.lax.rsqrt(var)
        film = self.film(jnp.concatenate(sincos_turns(jnp.log(sigma) * self.freqs))).reshape(len(self.blocks), 2, self.width)
        h = self.inp(c_in * u)
        for i, (l1, l2) in enumerate(self.blocks):
            a = jax.nn.silu(h * (1.0 + film[i, 0]) + film[i, 1])
            h = h + l2(jax.nn.silu(l1(a)))
        f = self.out(jax.nn.silu(h))
        return -u / var + (self.sigma_data * c_in / sigma) * f
