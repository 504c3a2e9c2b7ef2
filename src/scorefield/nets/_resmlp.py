from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
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
            key: the one uniform draw every weight and bias is sliced from.
        """
        # every weight and bias from one uniform draw, sliced: one compiled random call instead
        # of one per distinct shape (about 4 CPU s of compilation on 2 cores, BENCHMARKS.md
        # section 9); the same U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as eqx.nn.Linear's default
        shapes = [(width, dim)] + [(width, width)] * (2 * depth) + [(2 * width * depth, 2 * sigma_features)]
        # the second layer of each block and the FiLM map start small (weights x 0.1)
        scales = [1.0] + [1.0, 0.1] * depth + [0.1]
        sizes = [o * i + o for o, i in shapes]
        u = jax.random.uniform(key, (sum(sizes),), minval=-1.0, maxval=1.0)
        xp = jnp if isinstance(u, jax.core.Tracer) else np  # traced (eval_shape): the same in jnp
        u = u if xp is jnp else np.asarray(u)
        layers, at = [], 0
        for (o, i), n, scale in zip(shapes, sizes, scales):
            lim = 1.0 / math.sqrt(i)
            layers.append(_linear(u[at:at + o * i].reshape(o, i) * (lim * scale), u[at + o * i:at + n] * lim))
            at += n
        self.inp = layers[0]
        self.blocks = tuple((layers[1 + 2 * j], layers[2 + 2 * j]) for j in range(depth))
        self.film = layers[-1]
        self.out = _linear(xp.zeros((dim, width), np.float32), xp.zeros((dim,), np.float32))
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


def _linear(weight, bias) -> eqx.nn.Linear:
    """An eqx.nn.Linear with the given weight (n_out, n_in) and bias (n_out,), built without
    computing its default initialisation (its shape is traced only)."""
    n_out, n_in = weight.shape
    skeleton = eqx.filter_eval_shape(lambda: eqx.nn.Linear(n_in, n_out, key=jax.random.PRNGKey(0)))
    return eqx.tree_at(lambda l: (l.weight, l.bias), skeleton,
                       (jnp.asarray(weight, jnp.float32), jnp.asarray(bias, jnp.float32)))
