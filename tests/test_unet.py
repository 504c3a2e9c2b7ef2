"""The U-Net for image data, class conditioning and classifier-free guidance (issue 13)."""


import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _cli import cli

from scorefield.losses import DenoisingScoreMatching
from scorefield.nets import UNet, guided_score
from scorefield.noise import geometric
from scorefield.train._state import init_state
from scorefield.train._step import make_chunk

SHAPE = (1, 4, 4)
SIGMAS = geometric(2.0, 0.05, 4)


def _net(n_classes=3, key=0):
    return UNet(SHAPE, channels=4, downsamples=1, n_classes=n_classes, key=jax.random.PRNGKey(key))


@eqx.filter_jit
def _call(net, x, sigma, label=None):
    return net(x, sigma, label)


def test_guidance_zero_is_the_unconditional_score_and_labels_reach_the_network():
    net = _net()
    x = jax.random.uniform(jax.random.PRNGKey(1), (16,))

    @eqx.filter_jit
    def scores(net, x, sigma):  # one compilation for every variant
        out = {"u": net(x, sigma), "none": net(x, sigma, jnp.asarray(3))}
        out.update({str(l): net(x, sigma, jnp.asarray(l)) for l in range(3)})
        out.update({f"w{w}": guided_score(net, 1, w)(x, sigma) for w in (0.0, 1.0, 3.0)})
        out["w_none"] = guided_score(net, None)(x, sigma)
        return out

    s = {k: np.asarray(v) for k, v in scores(net, x, jnp.asarray(0.3)).items()}
    # labels reach the network: each label gives its own score; "no label" is row n_classes
    assert all(np.max(np.abs(s[a] - s[b])) > 1e-4 for a, b in [("0", "1"), ("1", "2"), ("0", "2"), ("0", "u")])
    np.testing.assert_array_equal(s["none"], s["u"])
    np.testing.assert_allclose(s["w0.0"], s["u"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(s["w1.0"], s["1"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(s["w3.0"], s["u"] + 3.0 * (s["1"] - s["u"]), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(s["w_none"], s["u"])


def test_the_score_is_exact_for_gaussian_data_at_initialisation_plus_a_small_correction():
    # the network predicts the exact noise of N(centre, data_std^2 I) plus its output layer,
    # so with the output layer zeroed it is that Gaussian's score at every sigma
    net = _net(n_classes=0)
    net = eqx.tree_at(lambda n: (n.conv_out.weight, n.conv_out.bias), net,
                      (jnp.zeros_like(net.conv_out.weight), jnp.zeros_like(net.conv_out.bias)))
    x = jax.random.uniform(jax.random.PRNGKey(2), (16,))
    for sigma in (0.05, 0.5, 5.0):
        want = -(x - 0.5) / (sigma**2 + 0.25)
        np.testing.assert_allclose(np.asarray(_call(net, x, jnp.asarray(sigma))), np.asarray(want), rtol=1e-5, atol=1e-6)


def test_precondition_scales_the_learned_correction_by_c_out_over_sigma():
    # the same weights with and without preconditioning: the noise the network predicts is
    # the Gaussian's exact noise g plus the correction r, or plus c r, c = sd / sqrt(sigma^2 + sd^2)
    sd = 0.3
    plain = UNet(SHAPE, channels=4, downsamples=1, data_std=sd, key=jax.random.PRNGKey(4))
    pre = UNet(SHAPE, channels=4, downsamples=1, data_std=sd, precondition=True, key=jax.random.PRNGKey(4))
    x = jax.random.uniform(jax.random.PRNGKey(5), (16,))
    for sigma in (0.02, 0.3, 8.0):
        g = sigma * (x - 0.5) / (sigma**2 + sd**2)
        r_plain = -sigma * np.asarray(_call(plain, x, jnp.asarray(sigma))) - g
        r_pre = -sigma * np.asarray(_call(pre, x, jnp.asarray(sigma))) - g
        assert np.max(np.abs(r_plain)) > 1e-3
        np.testing.assert_allclose(r_pre, sd / np.sqrt(sigma**2 + sd**2) * r_plain, rtol=2e-4, atol=1e-6)


@pytest.mark.parametrize("levels", ["all", "continuous"])
def test_dsm_with_labels_calls_the_network_with_each_label(levels):
    net = _net()
    x = jax.random.uniform(jax.random.PRNGKey(3), (5, 16))
    labels = jnp.array([0, 1, 2, 3, 1])
    obj = DenoisingScoreMatching(SIGMAS, levels=levels)
    key = jax.random.PRNGKey(4)
    loss = eqx.filter_jit(lambda n, x, y: obj(n, x, key=key, labels=y))
    got = float(loss(net, x, labels))
    # the same loss by hand: the network called with each row's label on that row's perturbations
    ks, kz = jax.random.split(key)
    if levels == "all":
        z = jax.random.normal(kz, (5, len(SIGMAS), 16))
        sig = jnp.broadcast_to(SIGMAS, (5, len(SIGMAS)))
    else:
        from scorefield.noise import log_uniform

        sig = log_uniform(ks, jnp.min(SIGMAS), jnp.max(SIGMAS), 5)[:, None]
        z = jax.random.normal(kz, sig.shape + (16,))
    xt = x[:, None, :] + sig[..., None] * z
    f = eqx.filter_jit(jax.vmap(jax.vmap(lambda xx, s, l: net(xx, s, l), (0, 0, None)), (0, 0, 0)))
    want = 0.5 * float(jnp.mean(jnp.sum((sig[..., None] * f(xt, sig, labels) + z) ** 2, axis=-1)))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert got != float(loss(net, x, jnp.array([2, 2, 0, 0, 3])))


def test_training_moves_the_embedding_of_the_labels_drawn_only():
    net = _net()
    optimizer = optax.adam(1e-2)
    state, static = init_state(net, optimizer)

    class Data(eqx.Module):
        n_classes = 3

        def sample(self, key, n):
            return jax.random.uniform(key, (n, 16))

        def sample_labelled(self, key, n):
            return self.sample(key, n), jnp.full((n,), 2, jnp.int32)

    chunk = make_chunk(DenoisingScoreMatching(SIGMAS, levels="continuous"), optimizer, key=jax.random.PRNGKey(5),
                       batch_size=8, ema_decay=0.0, mesh=None, n_classes=3, label_dropout=0.0)
    state, losses = chunk(state, static, Data(), 2)
    assert bool(jnp.all(jnp.isfinite(losses)))
    before = np.asarray(net.label_emb.weight)
    after = np.asarray(eqx.combine(state.params, static).label_emb.weight)
    moved = np.any(before != after, axis=1)
    assert moved.tolist() == [False, False, True, False]  # label 2 only; never "no label" (dropout 0)


def _cli(*args, cwd):
    return cli(*args, cwd=cwd)


def test_cli_label_on_an_unconditional_run_is_refused_and_samples_are_saved_in_image_units(tmp_path):
    # a quick run on 4x4 digits of all labels, with a network that takes no labels (cheap)
    (tmp_path / "c.toml").write_text('net = "sigma"\nwidth = 16\ndepth = 1\nn_features = 8\nbatch_size = 32\n')
    r = _cli("train", "--data", "mnist-digits:size=4", "--out", "run", "--preset", "fast", "--steps", "20",
             "--config", "c.toml", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    import json

    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["n_classes"] == 0 and cfg["image_shape"] == [1, 4, 4] and cfg["sigma_min"] == 0.01
    r = _cli("sample", "--run", "run", "--n", "3", "--out", "s.npy", "--label", "1", cwd=tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "unconditional" in r.stderr
    r = _cli("sample", "--run", "run", "--n", "64", "--out", "s.npy", "--nfe", "5", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    s = np.load(tmp_path / "s.npy")
    assert s.shape == (64, 16) and s.dtype == np.float32 and s.min() >= 0.0 and s.max() <= 1.0
    r = _cli("plot", "samples", "--run", "run", "--samples", "s.npy", "--out", "grid.png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    from PIL import Image

    assert Image.open(tmp_path / "grid.png").size[0] > 100
    r = _cli("plot", "nearest", "--run", "run", "--samples", "s.npy", "--n", "6", "--out", "near.png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "near.png").size[0] > 100


def test_image_grid_puts_each_image_upright_in_its_cell():
    from scorefield.plot import figure_to_array, image_grid

    imgs = np.zeros((3, 1, 2, 3), np.float32)
    imgs[1, 0, 0, :] = 1.0  # image 1: its top row white
    fig = image_grid(imgs.reshape(3, -1), (1, 2, 3), columns=2, row_labels=["a", "b"], title="t")
    assert len(fig.axes) == 1
    canvas = fig.axes[0].images[0].get_array()
    assert canvas.shape == (2 * 3 + 1, 2 * 4 + 1)
    assert np.all(canvas[1, 5:8] == 1.0) and np.all(canvas[2, 5:8] == 0.0) and np.all(canvas[1, 1:4] == 0.0)
    assert figure_to_array(fig).ndim == 3


@pytest.mark.parametrize("c_in,c_out,k,stride,pad,side", [(3, 5, 3, 1, 1, 7), (4, 6, 3, 2, 1, 7), (4, 6, 3, 2, 1, 8),
                                                           (5, 2, 1, 1, 0, 6)])
def test_the_unets_convolution_as_a_matrix_product_equals_equinox_conv(c_in, c_out, k, stride, pad, side):
    from scorefield.nets._unet import _conv

    conv = eqx.nn.Conv2d(c_in, c_out, k, stride=stride, padding=pad, key=jax.random.PRNGKey(0))
    h = jax.random.normal(jax.random.PRNGKey(1), (c_in, side, side))
    want, got = conv(h), _conv(conv, h)
    assert got.shape == want.shape
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)


def test_the_initialisation_follows_each_layers_fan_in():
    net = UNet((1, 8, 8), channels=8, downsamples=1, n_classes=10, key=jax.random.PRNGKey(0))
    w = np.asarray(net.down[1][0][0].conv1.weight)  # 8 -> 16 channels, 3x3: fan_in 72
    lim = 1 / np.sqrt(72)
    assert w.shape == (16, 8, 3, 3) and np.max(np.abs(w)) <= lim and np.max(np.abs(w)) > 0.95 * lim
    assert abs(np.std(w) - lim / np.sqrt(3)) < 0.1 * lim  # uniform on [-lim, lim]
    assert abs(np.std(np.asarray(net.label_emb.weight)) - 1.0) < 0.1
    g = net.down[0][0][0].norm1
    assert np.all(np.asarray(g.weight) == 1) and np.all(np.asarray(g.bias) == 0)
    other = UNet((1, 8, 8), channels=8, downsamples=1, n_classes=10, key=jax.random.PRNGKey(1))
    assert not np.allclose(w, np.asarray(other.down[1][0][0].conv1.weight))
    # the same arrays when built under a trace (a run's skeleton is built so)
    shapes = eqx.filter_eval_shape(lambda k: UNet((1, 8, 8), channels=8, downsamples=1, n_classes=10, key=k),
                                   jax.random.PRNGKey(0))
    assert shapes.down[1][0][0].conv1.weight.shape == w.shape


def test_one_compilation_serves_every_label_and_guidance_weight():
    # the samplers' runner jits over its score function (eqx.filter_jit): a guided score is
    # a pytree whose label and weight are data, so another label does not recompile
    traces = []

    class Counting(eqx.Module):  # counts the traces of the network (one per compilation)
        net: UNet

        def __call__(self, x, sigma, label=None):
            traces.append(label is None)
            return self.net(x, sigma, label)

    model = Counting(_net())
    x = jax.random.uniform(jax.random.PRNGKey(8), (16,))
    step = eqx.filter_jit(lambda fn, x: x + 0.01 * fn(x, jnp.asarray(0.3)))
    a = np.asarray(step(guided_score(model, 0, 2.0), x))
    n_traces = len(traces)
    b, c = np.asarray(step(guided_score(model, 1, 2.0), x)), np.asarray(step(guided_score(model, 2, 3.0), x))
    assert len(traces) == n_traces == 2  # one compilation, two evaluations (guided: s_u and s_label)
    assert not np.allclose(a, b) and not np.allclose(b, c)  # the label and weight reach the network
    u, want = eqx.filter_jit(lambda n, x: (n(x, jnp.asarray(0.3)), n(x, jnp.asarray(0.3), jnp.asarray(2))))(model.net, x)
    np.testing.assert_allclose(c, np.asarray(x + 0.01 * (u + 3.0 * (want - u))), rtol=1e-5, atol=1e-6)


def test_space_to_depth_folds_each_block_into_channels_and_depth_to_space_undoes_it():
    from scorefield.nets._unet import depth_to_space, space_to_depth

    h = jnp.arange(2 * 4 * 6, dtype=jnp.float32).reshape(2, 4, 6)
    s = np.asarray(space_to_depth(h, 2))
    assert s.shape == (8, 2, 3)
    # channel c*4 + a*2 + b at (i, j) is pixel (2i + a, 2j + b) of channel c
    for c in range(2):
        for a in range(2):
            for b in range(2):
                np.testing.assert_array_equal(s[c * 4 + a * 2 + b], np.asarray(h)[c, a::2, b::2])
    np.testing.assert_array_equal(np.asarray(depth_to_space(jnp.asarray(s), 2)), np.asarray(h))
    np.testing.assert_array_equal(np.asarray(depth_to_space(space_to_depth(h, 1), 1)), np.asarray(h))


def test_patch_2_is_the_patch_1_unet_on_the_folded_image_and_bad_patches_are_refused():
    from scorefield.nets._unet import depth_to_space, space_to_depth

    key = jax.random.PRNGKey(6)
    kw = dict(channels=4, downsamples=0, n_classes=3, key=key)
    folded = UNet((1, 4, 4), patch=2, **kw)  # 4x4 pixels -> 4 channels of 2x2
    plain = UNet((4, 2, 2), patch=1, **kw)  # the same layers, on a 4-channel 2x2 image
    assert folded.conv_in.weight.shape == plain.conv_in.weight.shape == (4, 4, 3, 3)
    assert folded.conv_out.weight.shape == (4, 4, 3, 3)
    for a, b in zip(jax.tree_util.tree_leaves(folded), jax.tree_util.tree_leaves(plain)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    x = jax.random.uniform(jax.random.PRNGKey(7), (16,))

    def fold(v):
        return space_to_depth(v.reshape(1, 4, 4), 2).reshape(-1)

    def unfold(v):
        return depth_to_space(v.reshape(4, 2, 2), 2).reshape(-1)

    got, want = eqx.filter_jit(lambda f, p, x, s: (f(x, s, 1), unfold(p(fold(x), s, 1))))(folded, plain, x,
                                                                                        jnp.asarray(0.3))
    assert got.shape == (16,) and got.dtype == jnp.float32
    # every pixel gets its own score, the one the folded network gives its channel
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6, atol=1e-6)
    assert UNet((1, 4, 4), channels=4, downsamples=0, key=key).patch == 1  # the default: no folding
    from scorefield.nets._unet import auto_patch

    assert [auto_patch(s) for s in [(1, 28, 28), (3, 32, 30), (1, 14, 14), (1, 7, 7), (1, 28, 27)]] == [2, 2, 1, 1, 1]
    assert UNet((1, 4, 4), channels=4, downsamples=0, patch="auto", key=key).patch == 1
    from scorefield._errors import ConfigError
    from scorefield.nets import NETS

    assert NETS.resolve("unet", {"channels": 4})["patch"] == 1  # a config without patch (older runs)
    with pytest.raises(ConfigError, match="patch=4 must be a positive integer dividing the image's height 6") as e:
        UNet((1, 6, 6), channels=4, downsamples=0, patch=4, key=key)
    assert str(e.value).count(".") == 0 and "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="patch=0"):
        NETS.resolve("unet", {"patch": 0})


def test_sample_label_uses_the_runs_guidance_unless_told_and_bad_guidance_is_refused(tmp_path, monkeypatch):
    import types

    import scorefield.train
    from scorefield._errors import ConfigError, InputError
    from scorefield.train import TrainConfig, preset

    assert preset("images", data="mnist-digits").guidance == 1.5
    assert TrainConfig(data="mnist-digits").guidance == 1.0
    with pytest.raises(ConfigError, match="guidance"):
        TrainConfig(data="mnist-digits", guidance=float("nan")).validate()
    # the command line's plumbing, without a trained network: a run whose config says 3
    asked = []

    def score_fn(*, ema, label, guidance):
        asked.append((label, guidance))
        raise InputError("stub run: stop here")

    stub = types.SimpleNamespace(config=types.SimpleNamespace(guidance=3.0), check_label=lambda *a: None,
                                 score_fn=score_fn)
    monkeypatch.setattr(scorefield.train, "load_run", lambda path: stub)
    for extra in ([], ["--guidance", "0.5"]):
        r = _cli("sample", "--run", "run", "--n", "4", "--out", "s.npy", "--label", "1", *extra, cwd=tmp_path)
        assert r.returncode == 2 and "stub run" in r.stderr
    assert asked == [(1, 3.0), (1, 0.5)]
