"""A U-Net score network for images in pixel space (issue 13), optionally class-conditional."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from .._errors import ConfigError
from .._registry import Option
from ._base import NETS, NetContext, ScoreNet
from ._film import sigma_frequencies
from ._trig import sincos_turns


def _groups(c: int) -> int:
    return math.gcd(c, 8)



def space_to_depth(h: Float[Array, "c h w"], p: int) -> Float[Array, "cpp hp wp"]:
    """(C, H, W) -> (C*p*p, H/p, W/p): each p x p block of pixels becomes p*p channels
    (channel c*p*p + a*p + b holds pixel (p*i + a, p*j + b) of channel c). Lossless; undone by
    `depth_to_space`. H and W must be multiples of p."""
    c, hh, ww = h.shape
    return h.reshape(c, hh // p, p, ww // p, p).transpose(0, 2, 4, 1, 3).reshape(c * p * p, hh // p, ww // p)


def depth_to_space(h: Float[Array, "cpp hp wp"], p: int) -> Float[Array, "c h w"]:
    """The inverse of `space_to_depth`: (C*p*p, H/p, W/p) -> (C, H, W)."""
    cpp, hp, wp = h.shape
    c = cpp // (p * p)
    return h.reshape(c, p, p, hp, wp).transpose(0, 3, 1, 4, 2).reshape(c, hp * p, wp * p)


def auto_patch(image_shape: tuple[int, int, int]) -> int:
    """The U-Net's `patch = "auto"`: 2 where height and width are even and at least 28
    pixels (28x28 MNIST: the U-Net then runs at 14x14 on 4 channels, at about 0.3x the CPU
    time per training step; BENCHMARKS.md section 8), else 1."""
    _, h, w = image_shape
    return 2 if h % 2 == 0 and w % 2 == 0 and min(h, w) >= 28 else 1


def _conv(conv: eqx.nn.Conv2d, h: Float[Array, "c h w"]) -> Float[Array, "o hh ww"]:
    """`conv` applied to one (C, H, W) map as a matrix product of its weights with the
    map's patches (the same result as ``conv(h)`` up to rounding).

    XLA on CPU runs a convolution inside a loop (the training chunk's and the samplers'
    lax.scan) about ten times slower than outside one (jax-ml/jax#12868; measured here:
    BENCHMARKS.md section 8), while a matrix product runs at full speed in both."""
    w = conv.weight  # (O, C, k, k)
    o, c, k, _ = w.shape
    s = conv.stride[0]
    (p, _), _ = conv.padding
    _, hh, ww = h.shape
    if p:
        h = jnp.pad(h, ((0, 0), (p, p), (p, p)))
    ho, wo = (hh + 2 * p - k) // s + 1, (ww + 2 * p - k) // s + 1
    if k == 1 and s == 1:
        patches = h.reshape(c, ho * wo)
    else:
        patches = jnp.stack([h[:, i:i + s * (ho - 1) + 1:s, j:j + s * (wo - 1) + 1:s]
                             for i in range(k) for j in range(k)], axis=1).reshape(c * k * k, ho * wo)
    y = (w.reshape(o, c * k * k) @ patches).reshape(o, ho, wo)
    return y if conv.bias is None else y + conv.bias


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
        y = _conv(self.conv1, jax.nn.silu(self.norm1(h)))
        scale, shift = jnp.split(self.emb(e)[:, None, None], 2)
        y = _conv(self.conv2, jax.nn.silu(self.norm2(y) * (1.0 + scale) + shift))
        return (h if self.skip is None else _conv(self.skip, h)) + y


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


def _layers(c, channels, downsamples, blocks, attention, n_classes, sigma_features, key) -> dict:
    """The U-Net's layers (Equinox's own initialisation; used for their shapes only)."""
    e = 4 * channels
    n_keys = 8 + 2 * (downsamples + 1) * (blocks + 1)
    keys = iter(jax.random.split(key, n_keys))
    out = {"conv_in": eqx.nn.Conv2d(c, channels, 3, padding=1, key=next(keys)),
           "sigma_mlp": eqx.nn.MLP(2 * sigma_features, e, e, 1, activation=jax.nn.silu, key=next(keys)),
           "label_emb": eqx.nn.Embedding(n_classes + 1, e, key=next(keys)) if n_classes else None}
    chans = [channels * (1 if i == 0 else 2) for i in range(downsamples + 1)]
    down, prev = [], channels
    for i, ch in enumerate(chans):
        level = [_ResBlock(prev if j == 0 else ch, ch, e, key=next(keys)) for j in range(blocks)]
        prev = ch
        sampler = eqx.nn.Conv2d(ch, ch, 3, stride=2, padding=1, key=next(keys)) if i < downsamples else None
        down.append((tuple(level), sampler))
    out["down"] = tuple(down)
    low = chans[-1]
    out["mid"] = (_ResBlock(low, low, e, key=next(keys)), _Attention(low, key=next(keys)) if attention else None,
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
    out["up"] = tuple(up)
    out["norm_out"] = eqx.nn.GroupNorm(_groups(channels), channels)
    out["conv_out"] = eqx.nn.Conv2d(channels, c, 3, padding=1, key=next(keys))
    return out


_LAYERS = (eqx.nn.Conv2d, eqx.nn.Linear, eqx.nn.Embedding, eqx.nn.GroupNorm)


def _is_layer(m) -> bool:
    return isinstance(m, _LAYERS)


def _initialise(shapes, key):
    """`shapes` (layers whose arrays are only shapes) with every parameter drawn from one
    uniform vector: convolution and linear weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    (fan_in: inputs per output), embeddings of unit variance, GroupNorm scale 1 and shift 0.

    The vector is cut on the host (no compilation per shape); under a trace (e.g.
    ``eqx.filter_eval_shape``) with jax.numpy."""
    layers = [m for m in jax.tree_util.tree_leaves(shapes, is_leaf=_is_layer) if _is_layer(m)]
    plan = []  # (layer, fields, scale)
    for m in layers:
        if not isinstance(m, eqx.nn.GroupNorm):
            fs = tuple(f for f in ("weight", "bias") if getattr(m, f, None) is not None)
            lim = math.sqrt(3.0) if isinstance(m, eqx.nn.Embedding) else 1.0 / math.sqrt(math.prod(m.weight.shape[1:]))
            plan.append((m, fs, lim))
    total = sum(math.prod(getattr(m, f).shape) for m, fs, _ in plan for f in fs)
    u = jax.random.uniform(key, (total,), jnp.float32, -1.0, 1.0)
    traced = isinstance(u, jax.core.Tracer)
    xp = jnp if traced else np
    u = u if traced else np.asarray(u)
    filled, at = {}, 0
    for m, fs, lim in plan:
        vals = []
        for f in fs:
            shape = getattr(m, f).shape
            vals.append(xp.asarray(lim, xp.float32) * u[at:at + math.prod(shape)].reshape(shape))
            at += math.prod(shape)
        filled[id(m)] = (fs, vals)

    def fill(m):
        if isinstance(m, eqx.nn.GroupNorm):
            fs, vals = ("weight", "bias"), [xp.ones(m.weight.shape, xp.float32), xp.zeros(m.bias.shape, xp.float32)]
        else:
            fs, vals = filled[id(m)]
        return eqx.tree_at(lambda l: tuple(getattr(l, f) for f in fs), m, tuple(jnp.asarray(v) for v in vals))

    return eqx.tree_at(lambda t: [m for m in jax.tree_util.tree_leaves(t, is_leaf=_is_layer) if _is_layer(m)],
                       shapes, [fill(m) for m in layers])


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
    With `patch` = p > 1 every p x p pixel block is folded into channels first (and the
    output unfolded), so the U-Net runs at (H/p, W/p) on C*p*p channels.
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
    patch: int = eqx.field(static=True, default=1)
    precondition: bool = eqx.field(static=True, default=False)

    frozen = ("freqs", "centre")
    conditional = True  # takes a label: net(x, sigma, label)
    name = "unet"
    options = (
        Option("channels", int, 32, "channels at full resolution (doubled once below it)", low=1),
        Option("downsamples", int, 2, "number of halvings of the resolution (depth of the U)", low=0, high=6),
        Option("blocks", int, 1, "residual blocks per resolution", low=1, high=8),
        Option("attention", bool, False, "self-attention at the lowest resolution"),
        Option("data_std", float, 0.5, "std of the data per pixel assumed by the input scaling (\"auto\": the "
               "data's, sigma_data)", low=0, low_open=True, special=("auto",)),
        Option("patch", int, 1, "side p of the pixel blocks folded into channels: the U-Net runs at (H/p, W/p) "
               "on C*p*p channels (lossless; p must divide H and W; 1: full resolution; \"auto\": 2 for even "
               "sides of at least 28 pixels, else 1)", low=1, high=16, special=("auto",)),
        Option("precondition", bool, False, "scale the learned correction to the noise by c = data_std / "
               "sqrt(sigma^2 + data_std^2), EDM's c_out / sigma, so that its target has unit variance at every "
               "sigma (pair it with objective option weighting \"edm\")"),
    )

    @classmethod
    def from_options(cls, context: NetContext, *, channels, downsamples, blocks, attention, data_std,
                     patch=1, precondition=False) -> "UNet":
        shape = getattr(context, "image_shape", None)
        if shape is None:
            side = math.isqrt(context.dim)
            if side * side != context.dim:
                raise ConfigError(f"net \"unet\" is for image data in pixel space (mnist-digits, mnist-digits-idx:..., "
                                  f"image-folder:...); this data has dimension {context.dim} and no image shape")
            shape = (1, side, side)
        if data_std == "auto":
            data_std = 0.5 if context.sigma_data is None else float(context.sigma_data)
        return cls(tuple(shape), channels=channels, downsamples=downsamples, blocks=blocks, attention=attention,
                   n_classes=int(getattr(context, "n_classes", 0) or 0), data_std=data_std, patch=patch,
                   precondition=precondition, centre=context.centre, key=context.key)

    def __init__(self, image_shape, *, channels: int = 32, downsamples: int = 2, blocks: int = 1,
                 attention: bool = False, n_classes: int = 0, data_std: float = 0.5, patch: int | str = 1,
                 precondition: bool = False, centre: Float[Array, " d"] | None = None, sigma_features: int = 16, key: PRNGKeyArray):
        """Arguments:
            image_shape: (C, H, W) of one image; the input is its row-major flattening.
            channels, downsamples, blocks, attention: width and depth (see `options`).
            n_classes: labels to condition on (0: unconditional).
            data_std: the per-pixel data scale of the input scaling (intensity units).
            patch: p: every p x p block of pixels is folded into channels before the first
                convolution and unfolded after the last (`space_to_depth`), so that the U-Net
                runs at (H/p, W/p) on C*p*p channels; p must divide H and W. "auto":
                `auto_patch` of the image shape.
            precondition: scale the learned correction by data_std / sqrt(sigma^2 + data_std^2)
                (EDM's preconditioning; False: the correction is the raw output).
            centre: (C*H*W,) subtracted first (default 0.5, mid-grey).
            key: split so that every part has its own randomness.
        """
        c, h, w = (int(s) for s in image_shape)
        p = auto_patch((c, h, w)) if patch == "auto" else patch
        if isinstance(p, bool) or not isinstance(p, int) or p < 1 or h % p or w % p:
            raise ConfigError(f"net \"unet\" option patch={patch!r} must be a positive integer dividing the image's "
                              f"height {h} and width {w} (1: no folding of pixel blocks into channels)")
        self.image_shape = (c, h, w)
        self.patch = p
        self.precondition = bool(precondition)
        self.n_classes = int(n_classes)
        self.data_std = float(data_std)
        self.freqs = sigma_frequencies(sigma_features)
        self.centre = jnp.full(c * h * w, 0.5, jnp.float32) if centre is None else jnp.asarray(centre, jnp.float32)
        # the layers' shapes first (nothing computed), then every parameter from one draw:
        # each layer initialised eagerly by Equinox is its own compilation of the random
        # generator (about 30 s for the default U-Net on a loaded 2-core CPU)
        shapes = eqx.filter_eval_shape(
            lambda k: _layers(c * p * p, channels, downsamples, blocks, attention, n_classes, sigma_features, k), key)
        layers = _initialise(shapes, key)
        self.conv_in, self.sigma_mlp, self.label_emb = layers["conv_in"], layers["sigma_mlp"], layers["label_emb"]
        self.down, self.mid, self.up = layers["down"], layers["mid"], layers["up"]
        self.norm_out = layers["norm_out"]
        self.conv_out = eqx.tree_at(lambda m: m.weight, layers["conv_out"], 0.1 * layers["conv_out"].weight)

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
        h = (u * scale).reshape(self.image_shape)
        if self.patch > 1:
            h = space_to_depth(h, self.patch)
        h = _conv(self.conv_in, h)
        skips = []
        for blocks, sampler in self.down:
            for b in blocks:
                h = b(h, e)
            skips.append(h)
            if sampler is not None:
                h = _conv(sampler, h)
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
                h = _conv(sampler, jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2))
        z = _conv(self.conv_out, jax.nn.silu(self.norm_out(h)))
        if self.patch > 1:
            z = depth_to_space(z, self.patch)
        z = z.reshape(-1)
        if self.precondition:
            z = z * (self.data_std * scale)
        z = z + sigma * scale**2 * u  # the exact noise for Gaussian data N(centre, data_std^2 I)
        return -z / sigma


class GuidedScore(eqx.Module):
    """``score(x, sigma)`` of a class-conditional network for one label, with
    classifier-free guidance (Ho and Salimans 2022) of weight w:

        s_w(x) = s(x, sigma) + w (s(x, sigma, label) - s(x, sigma)).

    A pytree whose model arrays, label and weight are data, not constants: a compiled
    sampler (`scorefield.samplers.sample` jits over its score function) serves every label
    and weight with one compilation. Only the kind of score is static: the unconditional
    score (`label` None, one evaluation), the conditional one (w == 1, one evaluation) or
    the guided mixture (two evaluations).
    """

    model: eqx.Module
    label: Int[Array, ""] | None
    guidance: Float[Array, ""]
    mix: bool = eqx.field(static=True)

    def __init__(self, model, label: Int[ArrayLike, ""] | None = None, guidance: float = 1.0):
        """Arguments:
            model: a network called as ``model(x, sigma)`` and ``model(x, sigma, label)``.
            label: the label (0..n_classes-1), or None for the unconditional score.
            guidance: the weight w (a Python number: w == 1 exactly is the conditional score
                in one evaluation; any other value mixes two).
        """
        self.model = model
        self.label = None if label is None else jnp.asarray(label, jnp.int32)
        w = float(guidance)
        self.guidance = jnp.asarray(w, jnp.float32)
        self.mix = label is not None and w != 1.0

    def __call__(self, x: Float[Array, " d"], sigma: Float[ArrayLike, ""]) -> Float[Array, " d"]:
        sigma = jnp.asarray(sigma, jnp.float32)
        if self.label is None:
            return self.model(x, sigma)
        if not self.mix:
            return self.model(x, sigma, self.label)
        s_u = self.model(x, sigma)
        return s_u + self.guidance * (self.model(x, sigma, self.label) - s_u)


def guided_score(model, label: int | None = None, guidance: float = 1.0) -> GuidedScore:
    """The score ``fn(x, sigma)`` of a class-conditional network for `label` with
    classifier-free guidance of weight `guidance` = w (see :class:`GuidedScore`):
    w = 0 is the unconditional score, w = 1 the conditional one and w > 1 sharpens the
    label. `label` None: the unconditional score (one evaluation). The result is a pytree:
    one compiled sampler serves every label and weight.
    """
    return GuidedScore(model, label, guidance)
