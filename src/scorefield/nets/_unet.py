"""A U-Net score network for images in pixel space (issue 13), optionally class-conditional."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from .._errors import ConfigError
from .._registry import Option
from ._base import NETS, NetContext, ScoreNet
from ._film import sigma_frequencies
from ._trig import sincos_turns


def _groups(c: int) -> int:
    return math.gcd(c, 8)


class _ResBlock(eqx.Module):
    """GroupNorm, SiLU, 3x3 conv; GroupNorm scaled and shifted per channel by the embedding
    (after the norm, so that the norm cannot remove it), SiLU, 3x3 conv; residual."""

    norm1: eqx.nn.GroupNorm
    conv1: eqx.nn.Conv2d
    emb: eqx.nn.Linear
    norm2: eqx.nn.GroupNorm
    conv2: eqx.nn.Conv2d
    skip: eqx.nn.Conv2d | None

    def __init__(self, c_in: int, c_out: int, e: int, *, key):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        self.norm1 = eqx.nn.GroupNorm(_groups(c_in), c_in)
        self.conv1 = eqx.nn.Conv2d(c_in, c_out, 3, padding=1, key=k1)
        self.emb = eqx.nn.Linear(e, 2 * c_out, key=k2)
        self.norm2 = eqx.nn.GroupNorm(_groups(c_out), c_out)
        self.conv2 = eqx.nn.Conv2d(c_out, c_out, 3, padding=1, key=k3)
        self.skip = eqx.nn.Conv2d(c_in, c_out, 1, key=k4) if c_in != c_out else None

    def __call__(self, h, e):
        y = self.conv1(jax.nn.silu(self.norm1(h)))
        scale, shift = jnp.split(self.emb(e)[:, None, None], 2)
        y = self.conv2(jax.nn.silu(self.norm2(y) * (1.0 + scale) + shift))
        return (h if self.skip is None else self.skip(h)) + y


class _Attention(eqx.Module):
    """Single-head self-attention over the pixels of a (C, H, W) map, residual."""

    norm: eqx.nn.GroupNorm
    attn: eqx.nn.MultiheadAttention

    def __init__(self, c: int, *, key):
        self.norm = eqx.nn.GroupNorm(_groups(c), c)
        self.attn = eqx.nn.MultiheadAttention(1, c, key=key)

    def __call__(self, h):
        c, hh, ww = h.shape
        t = self.norm(h).reshape(c, hh * ww).T
        return h + self.attn(t, t, t).T.reshape(c, hh, ww)


@NETS.register
class UNet(ScoreNet):
    """A U-Net on one image flattened to (C*H*W,), for image data in pixel space.

    The input is centred on the data mean and scaled by 1/sqrt(sigma^2 + data_std^2); the
    network predicts the noise z of x~ = x + sigma z (the score is -z_hat / sigma) as the
    exact value for Gaussian data N(centre, data_std^2 I) plus a learned correction:
    residual blocks (GroupNorm, SiLU, 3x3 convolutions) at `downsamples + 1` resolutions
    (stride-2 convolutions down, nearest-neighbour up, a skip per resolution), optional
    self-attention at the lowest resolution, and log sigma embedded by sin/cos features and
    an MLP, added to every block. With `n_classes` > 0 a label embedding (n_classes + 1
    rows; the last is "no label") is added to the noise embedding: ``net(x, sigma, label)``.
    """

    conv_in: eqx.nn.Conv2d
    sigma_mlp: eqx.nn.MLP
    label_emb: eqx.nn.Embedding | None
    down: tuple
    mid: tuple
    up: tuple
    norm_out: eqx.nn.GroupNorm
    conv_out: eqx.nn.Conv2d
    freqs: Float[Array, " k"]
    centre: Float[Array, " d"]
    image_shape: tuple[int, int, int] = eqx.field(static=True)
    n_classes: int = eqx.field(static=True)
    data_std: float = eqx.field(static=True)

    frozen = ("freqs", "centre")
    conditional = True  # takes a label: net(x, sigma, label)
    name = "unet"
    options = (
        Option("channels", int, 32, "channels at full resolution (doubled once below it)", low=1),
        Option("downsamples", int, 2, "number of halvings of the resolution (depth of the U)", low=0, high=6),
        Option("blocks", int, 1, "residual blocks per resolution", low=1, high=8),
        Option("attention", bool, False, "self-attention at the lowest resolution"),
        Option("data_std", float, 0.5, "std of the data per pixel assumed by the input scaling", low=0, low_open=True),
    )

    @classmethod
    def from_options(cls, context: NetContext, *, channels, downsamples, blocks, attention, data_std) -> "UNet":
        shape = getattr(context, "image_shape", None)
        if shape is None:
            side = math.isqrt(context.dim)
            if side * side != context.dim:
                raise ConfigError(f"net \"unet\" is for image data in pixel space (mnist-digits, mnist-digits-idx:..., "
                                  f"image-folder:...); this data has dimension {context.dim} and no image shape")
            shape = (1, side, side)
        return cls(tuple(shape), channels=channels, downsamples=downsamples, blocks=blocks, attention=attention,
                   n_classes=int(getattr(context, "n_classes", 0) or 0), data_std=data_std,
                   centre=context.centre, key=context.key)

    def __init__(self, image_shape, *, channels: int = 32, downsamples: int = 2, blocks: int = 1,
                 attention: bool = False, n_classes: int = 0, data_std: float = 0.5,
                 centre: Float[Array, " d"] | None = None, sigma_features: int = 16, key: PRNGKeyArray):
        """Arguments:
            image_shape: (C, H, W) of one image; the input is its row-major flattening.
            channels, downsamples, blocks, attention: width and depth (see `options`).
            n_classes: labels to condition on (0: unconditional).
            data_std: the per-pixel data scale of the input scaling (intensity units).
            centre: (C*H*W,) subtracted first (default 0.5, mid-grey).
            key: split so that every part has its own randomness.
        """
        c, h, w = (int(s) for s in image_shape)
        self.image_shape = (c, h, w)
        self.n_classes = int(n_classes)
        self.data_std = float(data_std)
        e = 4 * channels
        keys = iter(jax.random.split(key, 64))
        self.freqs = sigma_frequencies(sigma_features)
        d = c * h * w
        self.centre = jnp.full(d, 0.5, jnp.float32) if centre is None else jnp.asarray(centre, jnp.float32)
        self.conv_in = eqx.nn.Conv2d(c, channels, 3, padding=1, key=next(keys))
        self.sigma_mlp = eqx.nn.MLP(2 * sigma_features, e, e, 1, activation=jax.nn.silu, key=next(keys))
        self.label_emb = eqx.nn.Embedding(n_classes + 1, e, key=next(keys)) if n_classes else None
        chans = [channels * (1 if i == 0 else 2) for i in range(downsamples + 1)]
        down, prev = [], channels
        for i, ch in enumerate(chans):
            level = [_ResBlock(prev if j == 0 else ch, ch, e, key=next(keys)) for j in range(blocks)]
            prev = ch
            sampler = eqx.nn.Conv2d(ch, ch, 3, stride=2, padding=1, key=next(keys)) if i < downsamples else None
            down.append((tuple(level), sampler))
        self.down = tuple(down)
        low = chans[-1]
        self.mid = (_ResBlock(low, low, e, key=next(keys)),
                    _Attention(low, key=next(keys)) if attention else None,
                    _ResBlock(low, low, e, key=next(keys)))
        up = []
        for i in reversed(range(downsamples + 1)):
            ch = chans[i]
            level = [_ResBlock((prev + ch) if j == 0 else ch, ch, e, key=next(keys)) for j in range(blocks)]
            prev = ch
            sampler = eqx.nn.Conv2d(ch, chans[i - 1], 3, padding=1, key=next(keys)) if i > 0 else None
            if sampler is not None:
                prev = chans[i - 1]
            up.append((tuple(level), sampler))
        self.up = tuple(up)
        self.norm_out = eqx.nn.GroupNorm(_groups(channels), channels)
        conv_out = eqx.nn.Conv2d(channels, c, 3, padding=1, key=next(keys))
        self.conv_out = eqx.tree_at(lambda m: m.weight, conv_out, 0.1 * conv_out.weight)

    def embedding(self, sigma, label=None):
        """The embedding added to every block: MLP of sin/cos(log sigma), plus the label's."""
        sin, cos = sincos_turns(jnp.log(sigma) * self.freqs)
        e = self.sigma_mlp(jnp.concatenate([sin, cos]))
        if self.label_emb is not None:
            idx = jnp.asarray(self.n_classes if label is None else label, jnp.int32)
            e = e + self.label_emb(idx)
        return jax.nn.silu(e)

    def __call__(self, x: Float[Array, " d"], sigma: Float[ArrayLike, ""],
                 label: Int[ArrayLike, ""] | None = None) -> Float[Array, " d"]:
        """The score at `x` (C*H*W,) and `sigma`; `label` in 0..n_classes-1, or None (or
        n_classes) for the unconditional score."""
        sigma = jnp.asarray(sigma, jnp.float32)
        u = x - self.centre
        scale = jax.lax.rsqrt(sigma**2 + self.data_std**2)
        e = self.embedding(sigma, label)
        h = self.conv_in((u * scale).reshape(self.image_shape))
        skips = []
        for blocks, sampler in self.down:
            for b in blocks:
                h = b(h, e)
            skips.append(h)
            if sampler is not None:
                h = sampler(h)
        first, attn, second = self.mid
        h = first(h, e)
        if attn is not None:
            h = attn(h)
        h = second(h, e)
        for blocks, sampler in self.up:
            skip = skips.pop()
            h = jnp.concatenate([h[:, : skip.shape[1], : skip.shape[2]], skip], axis=0)
            for b in blocks:
                h = b(h, e)
            if sampler is not None:
                h = sampler(jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2))
        z = self.conv_out(jax.nn.silu(self.norm_out(h))).reshape(-1)
        z = z + sigma * scale**2 * u  # the exact noise for Gaussian data N(centre, data_std^2 I)
        return -z / sigma


def guided_score(model, label: int | None = None, guidance: float = 1.0):
    """The score ``fn(x, sigma)`` of a class-conditional network for `label` with
    classifier-free guidance (Ho and Salimans 2022) of weight `guidance` = w:

        s_w(x) = s(x, sigma) + w (s(x, sigma, label) - s(x, sigma)),

    so w = 0 is the unconditional score, w = 1 the conditional one and w > 1 sharpens the
    label. `label` None: the unconditional score (one evaluation).
    """
    if label is None:
        return lambda x, sigma: model(x, jnp.asarray(sigma, jnp.float32))
    w = float(guidance)
    if w == 1.0:
        return lambda x, sigma: model(x, jnp.asarray(sigma, jnp.float32), label)

    def fn(x, sigma):
        sigma = jnp.asarray(sigma, jnp.float32)
        s_u = model(x, sigma)
        return s_u + w * (model(x, sigma, label) - s_u)

    return fn
