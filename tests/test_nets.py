import dataclasses
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scorefield.nets import GridNet, ReferenceNet, SigmaNet, trainable
from scorefield._errors import ConfigError
from scorefield.nets._grid import _interpolate, _interpolate_quadratic
from scorefield.nets._trig import sincos_turns
from scorefield.noise import geometric

# a network called compiled, as every caller runs it: eagerly each of its operations
# compiles alone (dozens of small programs per network and shape)
_call = eqx.filter_jit(lambda net, x, sigma: net(x, sigma))
_vcall = eqx.filter_jit(lambda net, x, sigma: jax.vmap(net, (0, None))(x, sigma))


def test_polynomial_sincos_matches_float64_and_its_derivative():
    v = jnp.linspace(-50.0, 50.0, 200_001, dtype=jnp.float32)
    s, c = sincos_turns(v)
    vd = np.asarray(v, np.float64)
    assert np.max(np.abs(np.asarray(s) - np.sin(2 * np.pi * vd))) < 2e-6
    assert np.max(np.abs(np.asarray(c) - np.cos(2 * np.pi * vd))) < 2e-6
    ds = jax.vmap(jax.grad(lambda t: sincos_turns(t)[0]))(v[::97])
    np.testing.assert_allclose(np.asarray(ds), 2 * np.pi * np.cos(2 * np.pi * vd[::97]), atol=1e-4)


def test_multilinear_interpolation_is_exact_for_affine_functions():
    # an affine function sampled on the grid is reproduced exactly between grid points
    r = 9
    i, j = np.meshgrid(np.arange(r), np.arange(r), indexing="ij")
    t_i, t_j = i / (r - 1), j / (r - 1)
    grid = jnp.asarray(np.stack([2 * t_i - 3 * t_j + 0.5, t_i + t_j], -1), jnp.float32)
    pts = jax.random.uniform(jax.random.PRNGKey(0), (100, 2))
    got = jax.vmap(lambda t: _interpolate(grid, t))(pts)
    want = np.stack([2 * pts[:, 0] - 3 * pts[:, 1] + 0.5, pts[:, 0] + pts[:, 1]], -1)
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-5)


def test_quadratic_blend_reproduces_affine_functions_and_has_a_continuous_gradient():
    r = 9
    i, j = np.meshgrid(np.arange(r), np.arange(r), indexing="ij")
    t_i, t_j = i / (r - 1), j / (r - 1)
    affine = jnp.asarray(np.stack([2 * t_i - 3 * t_j + 0.5, t_i + t_j], -1), jnp.float32)
    pts = jax.random.uniform(jax.random.PRNGKey(0), (100, 2))  # the edge cells included
    got = jax.vmap(lambda t: _interpolate_quadratic(affine, t))(pts)
    want = np.stack([2 * pts[:, 0] - 3 * pts[:, 1] + 0.5, pts[:, 0] + pts[:, 1]], -1)
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-5)
    # across the points where the blend's support moves (half-way between grid points) the
    # gradient of a random grid's blend is continuous; the multilinear blend's jumps across
    # grid points (the check can fail: it does for the multilinear blend)
    grid = jax.random.normal(jax.random.PRNGKey(1), (r, r, 1))
    eps = 1e-4 / (r - 1)

    def jump(blend, at):
        g = jax.grad(lambda a: blend(grid, jnp.stack([a, jnp.float32(0.37)]))[0])
        return abs(float(g(jnp.float32(at + eps))) - float(g(jnp.float32(at - eps))))

    for k in range(1, r - 1):
        assert jump(_interpolate_quadratic, (k + 0.5) / (r - 1)) < 1e-2
    assert max(jump(_interpolate, k / (r - 1)) for k in range(1, r - 1)) > 0.5
    with pytest.raises(ConfigError, match="at least 3 points"):
        GridNet(2, resolutions=(2, 8), blend="quadratic", key=jax.random.PRNGKey(0))


@pytest.mark.parametrize("make", [
    lambda k: ReferenceNet(2, geometric(1.0, 1e-4, 30), key=k),
    lambda k: SigmaNet(3, key=k),
    lambda k: GridNet(2, key=k),
    lambda k: GridNet(2, blend="quadratic", key=k),
    lambda k: GridNet(2, pixel_cell=0.25, table_features=2, key=k),
])
def test_networks_map_one_example_and_vmap(make):
    net = make(jax.random.PRNGKey(0))
    d = 3 if isinstance(net, SigmaNet) else 2
    x = jax.random.normal(jax.random.PRNGKey(1), (5, d))
    out = _vcall(net, x, jnp.asarray(0.1))
    assert out.shape == (5, d) and bool(jnp.all(jnp.isfinite(out)))
    spec = trainable(net)
    frozen = [n for n in type(net).frozen if getattr(net, n) is not None]  # None: a part the net does not use
    for n in frozen:
        assert jax.tree_util.tree_leaves(getattr(spec, n)) == [False]


def test_reference_net_is_index_conditioned_with_nearest_level():
    sig = geometric(1.0, 1e-4, 30)
    net = ReferenceNet(2, sig, key=jax.random.PRNGKey(0))
    net = eqx.tree_at(lambda n: n.shift, net, jax.random.normal(jax.random.PRNGKey(2), net.shift.shape))
    x = jnp.array([0.3, 0.7])
    np.testing.assert_array_equal(net(x, sig[12]), net.at_level(x, 12))
    np.testing.assert_array_equal(net(x, sig[12] * 1.05), net.at_level(x, 12))
    assert not np.array_equal(net.at_level(x, 12), net.at_level(x, 13))


def test_continuous_networks_scale_as_one_over_sigma():
    # the output is divided by sigma (NCSNv2): sigma * s stays O(1) across scales
    for net in (SigmaNet(2, key=jax.random.PRNGKey(0)), GridNet(2, key=jax.random.PRNGKey(0))):
        x = jnp.array([0.2, -0.4])
        for s in (1e-3, 1e-1, 1.0):
            assert 1e-4 < float(jnp.linalg.norm(s * _call(net, x, jnp.asarray(s)))) < 10


def _reference_with_random_film(dim: int):
    """A ReferenceNet whose per-level scale and shift are not the identity, so that a wrong
    level (or a wrong broadcast) changes the output."""
    sig = geometric(1.0, 1e-4, 30)
    net = ReferenceNet(dim, sig, key=jax.random.PRNGKey(0))
    k1, k2 = jax.random.split(jax.random.PRNGKey(7))
    return eqx.tree_at(
        lambda n: (n.scale, n.shift),
        net,
        (1.0 + 0.3 * jax.random.normal(k1, net.scale.shape), 0.2 * jax.random.normal(k2, net.shift.shape)),
    ), sig


def test_reference_features_are_cos_and_sin_of_the_two_projections():
    net, _ = _reference_with_random_film(2)
    u = np.asarray(jax.random.uniform(jax.random.PRNGKey(1), (50, 2), minval=-0.5, maxval=0.5), np.float64)
    want = np.concatenate(
        [np.cos(2 * np.pi * u @ np.asarray(net.b_cos, np.float64).T), np.sin(2 * np.pi * u @ np.asarray(net.b_sin, np.float64).T)], -1
    )
    got = np.asarray(net._features(jnp.asarray(u, jnp.float32)))
    # float32: the argument |B u| is up to ~3 turns, rounded to ~2e-7 turns, times 2 pi
    assert np.max(np.abs(got - want)) < 3e-6


@pytest.mark.slow  # 99 s (d=2) and 60 s (d=6) on the loaded 2-core machine
@pytest.mark.parametrize("dim", [2, 6])  # d <= 4 uses fused multiply-adds, larger d a matmul
def test_reference_on_grid_equals_the_vmapped_network_and_its_gradient(dim):
    from scorefield.losses import DenoisingScoreMatching

    net, sig = _reference_with_random_film(dim)
    x = jax.random.uniform(jax.random.PRNGKey(2), (16, 30, dim))
    # levels off the grid (x1.05) exercise the nearest-level lookup
    grid = sig * 1.05
    # compiled, as callers run them (eagerly, each operation of the gradients compiles alone)
    vmapped = eqx.filter_jit(lambda n, x, g: jax.vmap(jax.vmap(n), (0, None))(x, g))(net, x, grid)
    on_grid = eqx.filter_jit(lambda n, x, g: n.on_grid(x, g))(net, x, grid)
    assert on_grid.shape == (16, 30, dim)
    np.testing.assert_allclose(np.asarray(on_grid), np.asarray(vmapped), rtol=1e-5, atol=2e-6)

    # the objective takes the on_grid path; its gradient equals the per-example path's
    class PerExample(eqx.Module):  # not a ScoreNet: the objective falls back to a vmap
        net: ReferenceNet

        def __call__(self, x, sigma):
            return self.net(x, sigma)

    obj = DenoisingScoreMatching(sig, levels="all")
    data = jax.random.uniform(jax.random.PRNGKey(3), (32, dim))
    params, static = eqx.partition(net, trainable(net))

    def loss(p, wrap):
        m = eqx.combine(p, static)
        return obj(PerExample(m) if wrap else m, data, key=jax.random.PRNGKey(4))

    value_and_grad = jax.jit(jax.value_and_grad(loss), static_argnums=1)
    l1, g1 = value_and_grad(params, False)
    l2, g2 = value_and_grad(params, True)
    assert float(l1) == pytest.approx(float(l2), rel=1e-5)
    for a, b in zip(jax.tree_util.tree_leaves(g1), jax.tree_util.tree_leaves(g2)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5 * float(jnp.max(jnp.abs(b))))
    # the scale of every level gets a gradient: no level is dropped by the broadcast
    assert bool(jnp.all(jnp.any(g1.scale != 0, axis=1)))


def test_default_on_grid_is_the_vmap_of_the_network():
    from scorefield.nets._base import scores_on_grid

    net = GridNet(2, key=jax.random.PRNGKey(0))
    x = jax.random.uniform(jax.random.PRNGKey(1), (4, 3, 2))
    sig = jnp.array([1.0, 0.1, 0.01])
    want = np.stack([[np.asarray(_call(net, x[i, l], sig[l])) for l in range(3)] for i in range(4)])
    got = eqx.filter_jit(lambda n, x, s: n.on_grid(x, s))(net, x, sig)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6, atol=1e-6)
    plain = lambda x, s: x / s  # noqa: E731 - any callable model works too
    np.testing.assert_allclose(np.asarray(scores_on_grid(plain, x, sig)), np.asarray(x / sig[:, None]), rtol=1e-6)


@pytest.mark.parametrize("n_levels", [30, 80])  # <= 64 levels: unrolled sum over levels; more: einsum
def test_film_dense_gradient_rule_equals_autodiff(n_levels):
    from scorefield.nets._reference import _film_dense

    k = jax.random.split(jax.random.PRNGKey(0), 5)
    f = jax.random.normal(k[0], (n_levels, 16, 24))
    scale, shift = jax.random.normal(k[1], (n_levels, 24)), jax.random.normal(k[2], (n_levels, 24))
    w = jax.random.normal(k[3], (8, 24))
    cot = jax.random.normal(k[4], (n_levels, 16, 8))
    plain = lambda f, s, t, w: (f * s[:, None] + t[:, None]) @ w.T  # noqa: E731
    args = (f, scale, shift, w)
    np.testing.assert_allclose(np.asarray(_film_dense(*args)), np.asarray(plain(*args)), rtol=1e-6, atol=1e-5)
    got = jax.grad(lambda *a: jnp.sum(_film_dense(*a) * cot), argnums=(0, 1, 2, 3))(*args)
    want = jax.grad(lambda *a: jnp.sum(plain(*a) * cot), argnums=(0, 1, 2, 3))(*args)
    for name, a, b in zip(("features", "scale", "shift", "weight"), got, want):
        # float32 sums of up to 16 x 80 products of O(1) terms in another order
        err = float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(np.asarray(b))))
        assert err < 1e-5, (name, err)


def test_grid_initialisation_is_the_normal_draw_of_each_grid_shape():
    # the grids are drawn flat (one cheap compile) and must equal the draw of their own shape,
    # so that a seed gives the network it gave before
    from scorefield.nets._base import normal_init

    key = jax.random.PRNGKey(7)
    for shape in [(8, 8, 4), (5, 3), (4, 4, 4, 2), (11,)]:
        assert np.array_equal(np.asarray(normal_init(key, shape)), np.asarray(jax.random.normal(key, shape)))
    net = GridNet(2, resolutions=(8, 16), n_grid_features=3, width=8, depth=1, key=key)
    kg, _ = jax.random.split(key)
    for g, k, r in zip(net.grids, jax.random.split(kg, 2), (8, 16)):
        assert np.array_equal(np.asarray(g), np.asarray(1e-2 * jax.random.normal(k, (r, r, 3))))


def test_pixel_edge_features_follow_the_nearest_edge_and_are_smooth_at_pixel_centres():
    from scorefield.nets._pixels import pixel_edge_features

    from math import erf

    cell, sig = 1.0 / 28, 0.002
    feats = lambda x, s=sig: jnp.stack(pixel_edge_features(x, jnp.asarray(s), cell))  # noqa: E731
    # on an edge (a whole multiple of the cell): the Gaussian is 1, the erf 0, per coordinate
    on = feats(jnp.array([5 * cell, 11 * cell]))
    np.testing.assert_allclose(np.asarray(on), [[1.0, 1.0], [0.0, 0.0]], atol=1e-4)  # float32 edges
    # one sigma past an edge in x, one sigma before one in y: the closed forms
    x = jnp.array([7 * cell + sig, 9 * cell - sig])
    env = np.cos(np.pi * sig / cell) ** 2
    want = [[env * np.exp(-0.5)] * 2, [env * erf(1 / np.sqrt(2)), -env * erf(1 / np.sqrt(2))]]
    np.testing.assert_allclose(np.asarray(feats(x)), want, rtol=1e-4)  # float32 offsets
    # at a pixel centre the nearest edge changes sides: value and slope still continuous
    centre = (3.5 * cell, 20.5 * cell)
    eps = 1e-7
    for s in (sig, cell, 10 * cell):
        left, right = (jnp.array([centre[0] + h, centre[1]]) for h in (-eps, eps))
        np.testing.assert_allclose(np.asarray(feats(left, s)), np.asarray(feats(right, s)), atol=1e-4)
        jl, jr = (np.asarray(jax.jacfwd(lambda y, s=s: feats(y, s))(p)) * cell for p in (left, right))
        np.testing.assert_allclose(jl, jr, atol=1e-3)
    # far above a pixel the features no longer depend on sigma (the offset in sigmas -> 0)
    far = jnp.array([0.3, 0.62])
    np.testing.assert_allclose(np.asarray(feats(far, 100.0)), np.asarray(feats(far, 1000.0)), atol=1e-3)


def test_blurred_pixel_table_holds_the_exact_smoothed_score_of_its_histogram():
    from scorefield.nets._pixels import LOGIT_GAIN, blurred_pixel_table, table_side
    from scorefield.targets import ImageDensity

    probs = jax.random.uniform(jax.random.PRNGKey(2), (5, 6), minval=0.05, maxval=1.0)
    target = ImageDensity(probs)  # 5 rows x 6 columns, cells of 1/6, x right, y up
    cell, origin = target.cell, (-2, -1)
    side = table_side(0.75, cell)
    table = 0.3 * np.asarray(jax.random.normal(jax.random.PRNGKey(5), (side, side, 2)), np.float32)
    table[..., 0] = -60.0 / LOGIT_GAIN  # softplus(-60) ~ 1e-26: no mass outside the image
    for j in range(5):  # y cell j holds image row 4 - j
        for k in range(6):
            table[k - origin[0], j - origin[1], 0] = np.log(np.expm1(float(target.probs[4 - j, k]))) / LOGIT_GAIN
    table, org = jnp.asarray(table), jnp.asarray(origin, jnp.float32)
    pts = jax.random.uniform(jax.random.PRNGKey(3), (48, 2), maxval=jnp.array([1.0, 5 / 6]))  # in the image
    feats = jax.jit(jax.vmap(lambda x, s: blurred_pixel_table(table, org, x, s, cell), (0, None)))
    # sigma times the gradient of channel 1's blurred value, without the fade
    grad_v1 = jax.jit(jax.vmap(lambda x, s: s * jax.grad(
        lambda y: blurred_pixel_table(table, org, y, s, cell)[0][1])(x) / jnp.exp(-((2 * s / cell) ** 2)), (0, None)))
    for sig in (0.03 * cell, 0.1 * cell, 0.3 * cell):
        fade = np.exp(-((2 * sig / cell) ** 2))
        value, slope, score = (np.asarray(f) / fade for f in feats(pts, jnp.asarray(sig)))
        want = jax.vmap(target.smoothed_score, (0, None))(pts, sig) * sig
        np.testing.assert_allclose(score, np.asarray(want), rtol=1e-3, atol=1e-3)
        # the values are the table blurred by sigma, the slopes sigma times their gradient
        grads = np.asarray(grad_v1(pts[:6], jnp.asarray(sig)))
        for x, v, g, gv in zip(pts[:6], value[:6], slope[:6], grads):
            np.testing.assert_allclose(g[1::2], gv, rtol=1e-3, atol=1e-4)
            cx, cy = (np.floor(np.asarray(x) / cell).astype(int) - np.asarray(origin))
            if sig < 0.05 * cell and min(np.abs(np.asarray(x) / cell - np.round(np.asarray(x) / cell))) > 0.3:
                assert v[1] == pytest.approx(float(table[cx, cy, 1]), abs=1e-4)  # deep in a cell: its own value
    # across a cell edge the window moves by a cell: the tapered ends keep it continuous
    both = jax.jit(lambda s: [jnp.concatenate(blurred_pixel_table(table, org, jnp.array([3 * cell + h, 0.4]), s, cell))
                              for h in (-1e-6, 1e-6)])
    for sig in np.geomspace(0.03, 3.0, 14) * cell:
        a, b = both(jnp.asarray(sig, jnp.float32))
        assert np.abs(np.asarray(a - b)).max() < 1e-4


def test_grid_net_pixel_table_on_an_image_density_adds_its_histograms_score():
    from scorefield.data import load
    from scorefield.nets._pixels import blurred_pixel_table
    from scorefield.train import preset, resolve
    from scorefield.train._build import build_model

    five = resolve(preset("fast", data="mnist", pixel_table=3), load("mnist"))
    assert five.pixel_cell == pytest.approx(1 / 28)
    net = build_model(five, key=jax.random.PRNGKey(0))
    side = int(np.ceil(2 * five.half_width * 28)) + 1
    assert net.table.shape == (side, side, 3) and not net.pixel_edges
    # the cube's low corner lies in the table's first cell
    lo = (np.asarray(five.centre) - five.half_width) * 28
    np.testing.assert_array_equal(np.asarray(net.table_origin), np.floor(lo))
    n_plain = len(five.grid_resolutions) * five.grid_features + 2
    assert net.trunk.inp.in_features == n_plain + 3 * 3 + 2
    # the table is trained (not frozen); its origin is not
    spec = trainable(net)
    assert spec.table is True and spec.table_origin is False
    # below a pixel the score is the trunk's plus the histogram's (checked with the trunk's
    # last layer zeroed: then only the histogram's score is left)
    quiet = eqx.tree_at(lambda n: (n.trunk.out.weight, n.trunk.out.bias), net,
                        (jnp.zeros_like(net.trunk.out.weight), jnp.zeros_like(net.trunk.out.bias)))
    table = net.table.at[10, 12, 0].set(3.0)  # one bright cell: the score points into it
    quiet = eqx.tree_at(lambda n: n.table, quiet, table)
    cell, sig = 1 / 28, 0.1 / 28
    x = (jnp.asarray(net.table_origin) + jnp.array([10.0, 12.5])) * cell - jnp.array([0.5 * sig, 0.0])
    s = np.asarray(quiet(x, jnp.asarray(sig)))
    _, _, head = blurred_pixel_table(table, net.table_origin, x, sig, cell)
    np.testing.assert_allclose(s, np.asarray(head) / sig, rtol=1e-5)
    assert s[0] * sig > 0.3 and abs(s[1]) * sig < 1e-3  # into the bright cell, along x only
    moons = resolve(preset("fast", data="toy:two-moons", pixel_table=3), load("toy:two-moons"))
    assert moons.pixel_cell is None and build_model(moons, key=jax.random.PRNGKey(0)).table is None


def test_pixel_table_histogram_log_density_is_normalised_and_fitted_by_its_data_loss():
    from scorefield.data import load
    from scorefield.likelihood import entropy
    from scorefield.nets._pixels import LOGIT_GAIN, table_log_density
    from scorefield.targets import ImageDensity
    from scorefield.train import preset, resolve
    from scorefield.train._build import build_model

    probs = jax.random.uniform(jax.random.PRNGKey(2), (5, 6), minval=0.05, maxval=1.0)
    target = ImageDensity(probs)  # 5 rows x 6 columns, cells of 1/6, x right, y up
    cell, origin = target.cell, jnp.asarray([-2.0, -1.0])
    side = 10
    logits = np.full((side, side), -60.0 / LOGIT_GAIN, np.float32)  # no mass outside the image
    for j in range(5):
        for k in range(6):
            logits[k + 2, j + 1] = np.log(np.expm1(float(target.probs[4 - j, k]))) / LOGIT_GAIN
    table = jnp.stack([jnp.asarray(logits), jnp.zeros((side, side))], axis=-1)
    # a point's density is its cell's mass over the cell's area; the cells' masses sum to 1
    centres = (jnp.stack(jnp.meshgrid(jnp.arange(side), jnp.arange(side), indexing="ij"), -1).reshape(-1, 2)
               + origin + 0.5) * cell
    dens = np.exp(np.asarray(table_log_density(table, origin, centres, cell)))
    assert dens.sum() * cell**2 == pytest.approx(1.0, rel=1e-5)
    pts = jax.random.uniform(jax.random.PRNGKey(4), (64, 2), maxval=jnp.array([1.0, 5 / 6]))
    np.testing.assert_allclose(np.exp(np.asarray(table_log_density(table, origin, pts, cell))),
                               np.asarray(jnp.exp(jax.vmap(target.log_prob)(pts))), rtol=1e-4)
    # with the exact histogram the mean negative log-likelihood of exact draws is the entropy
    draws = target.sample(jax.random.PRNGKey(6), 200_000)
    nll = -np.asarray(table_log_density(table, origin, draws, cell))
    assert abs(nll.mean() - entropy(target).value) < 3 * nll.std() / np.sqrt(len(nll))
    # the data loss is the histogram's maximum-likelihood fit: from the uniform start it pulls
    # mass into the occupied cells and out of the empty ones, and at the batch's own cell
    # frequencies its gradient vanishes
    five = resolve(preset("fast", data="mnist", pixel_table=2, pixel_table_nll=0.5), load("mnist"))
    net = build_model(five, key=jax.random.PRNGKey(0))
    assert net.table_nll == 0.5
    batch = load("mnist").sample(jax.random.PRNGKey(7), 50_000)
    base = -0.5 * np.asarray(table_log_density(net.table, net.table_origin, batch, net.pixel_cell)).mean()
    assert float(net.data_loss(batch)) == pytest.approx(base, rel=1e-6)
    assert build_model(resolve(preset("fast", data="mnist", pixel_table=2), load("mnist")),
                       key=jax.random.PRNGKey(0)).data_loss(batch) is None

    grad_of = jax.jit(jax.grad(lambda t: eqx.tree_at(lambda n: n.table, net, t).data_loss(batch)))

    def grad_at(t):
        return np.asarray(grad_of(t))

    idx = np.floor(np.asarray(batch) / net.pixel_cell - np.asarray(net.table_origin)).astype(int)
    counts = np.zeros(net.table.shape[:2])
    np.add.at(counts, (idx[:, 0], idx[:, 1]), 1)
    g = grad_at(net.table)
    assert (g[..., 0][counts > 0.002 * len(batch)] < 0).all() and (g[..., 0][counts == 0] > 0).all()
    assert np.abs(g[..., 1:]).max() == 0.0  # only the histogram's channel
    freq = counts / len(batch)
    fitted = np.where(freq > 0, np.log(np.expm1(np.maximum(freq, 1e-30))) / LOGIT_GAIN, -60.0 / LOGIT_GAIN)
    g = grad_at(net.table.at[..., 0].set(jnp.asarray(fitted, jnp.float32)))
    assert np.abs(g[..., 0]).max() < 1e-4 < np.abs(grad_at(net.table)[..., 0]).max() / 100


def test_pixel_table_stays_finite_where_its_histogram_or_its_weights_underflow():
    """Maximum likelihood drives empty cells' logits down without end, and far from the table
    at a small sigma every blur weight underflows: the score, the energy and its gradient stay
    finite, and a window of equal floored cells still has the score of a uniform histogram."""
    from scorefield.nets._pixels import LOGIT_GAIN, blurred_pixel_table, blurred_table_energy

    cell, side = 1 / 28, 12
    table = jnp.full((side, side, 2), -100.0 / LOGIT_GAIN * 10)  # softplus underflows to 0
    table = table.at[5, 5, 0].set(0.0)  # one occupied cell
    org = jnp.zeros(2)
    pts = [jnp.array([5.5, 5.5]) * cell, jnp.array([1.3, 9.7]) * cell, jnp.array([5.5, 6.02]) * cell,
           jnp.array([40.0, -30.0]) * cell]
    @jax.jit
    def everything(x, sig):
        grad = jax.grad(lambda y: blurred_table_energy(table, org, y, sig, cell)[1])(x)
        return (*blurred_pixel_table(table, org, x, sig, cell), *blurred_table_energy(table, org, x, sig, cell), grad)

    for x in pts:
        for sig in (1e-4 * cell, 0.05 * cell, 0.5 * cell, 3 * cell):
            for a in everything(x, jnp.asarray(sig)):
                assert np.isfinite(np.asarray(a)).all(), (x, sig)
    # deep inside an empty region the floored cells are a uniform histogram: no score
    _, _, score = blurred_pixel_table(table, org, jnp.array([1.5, 9.5]) * cell, 0.05 * cell, cell)
    assert np.abs(np.asarray(score)).max() < 1e-6


def test_grid_net_pixel_edges_only_on_an_image_density():
    from scorefield.data import load
    from scorefield.train import preset, resolve
    from scorefield.train._build import build_model

    five = resolve(preset("fast", data="mnist", pixel_edges=True), load("mnist"))
    assert five.pixel_cell == pytest.approx(1 / 28)
    net = build_model(five, key=jax.random.PRNGKey(0))
    n_plain = len(five.grid_resolutions) * five.grid_features + 2
    assert net.pixel_cell == pytest.approx(1 / 28) and net.trunk.inp.in_features == n_plain + 4
    # the features reach the score: without their input weights it changes near an edge
    cut = eqx.tree_at(lambda n: n.trunk.inp.weight, net, net.trunk.inp.weight.at[:, n_plain:].set(0.0))
    x = jnp.array([7 / 28 + 1e-3, 0.5])
    assert not np.allclose(np.asarray(_call(net, x, 2e-3)), np.asarray(_call(cut, x, 2e-3)))
    moons = resolve(preset("fast", data="toy:two-moons", pixel_edges=True), load("toy:two-moons"))
    assert moons.pixel_cell is None
    assert build_model(moons, key=jax.random.PRNGKey(0)).trunk.inp.in_features == n_plain
    # without the option nothing changes: the same network, bit for bit
    off = resolve(preset("fast", data="mnist"), load("mnist"))
    assert off.pixel_cell is None
    a, b = build_model(off, key=jax.random.PRNGKey(3)), GridNet(
        2, resolutions=tuple(off.grid_resolutions), n_grid_features=off.grid_features, width=off.width,
        depth=off.depth, centre=jnp.asarray(off.centre, jnp.float32), half_width=off.half_width,
        key=jax.random.PRNGKey(3))
    x = jnp.array([0.4, 0.5])
    assert np.array_equal(np.asarray(_call(a, x, 0.01)), np.asarray(_call(b, x, 0.01)))


def test_energy_net_pixel_table_gate_leaves_the_histograms_energy_below_a_pixel():
    """With pixel_table_gate the trunk's energy and the prior term are weighted by
    (1 - fade)^2: far below a pixel the energy is the table's histogram's alone (so its cells'
    masses are the histogram's, whatever offsets the trunk holds), above a pixel unchanged."""
    from scorefield.data import load
    from scorefield.nets._pixels import blurred_table_energy, table_fade
    from scorefield.train import preset, resolve
    from scorefield.train._build import build_model

    config = resolve(preset("default", data="mnist", net="energy", grid_resolutions=[8, 16], width=16, depth=1),
                     load("mnist"))
    assert (config.pixel_table, config.pixel_table_nll, config.pixel_table_gate) == (4, 1.0, True)
    # the same network without the gate, and a trunk with large outputs: what the gate must silence
    nets = [build_model(dataclasses.replace(config, pixel_table_gate=gate), key=jax.random.PRNGKey(0))
            for gate in (True, False)]
    loud = 30.0 * jax.random.normal(jax.random.PRNGKey(1), nets[0].trunk.out.weight.shape)
    net, open_net = (eqx.tree_at(lambda n: n.trunk.out.weight, n, loud) for n in nets)
    assert net.table_gate and not open_net.table_gate
    cell = net.pixel_cell
    pts = jax.random.uniform(jax.random.PRNGKey(2), (16, 2), minval=0.2, maxval=0.8)
    @jax.jit
    def parts(x, sig):
        return (blurred_table_energy(net.table, net.table_origin, x, sig, cell)[1], net.energy(x, sig),
                open_net.energy(x, sig))

    for sig in (1e-3 * cell, 0.03 * cell, 0.5 * cell, 4 * cell):
        g = (1.0 - float(table_fade(sig, cell))) ** 2
        for x in pts[:4]:
            head, e, e_open = (float(v) for v in parts(x, jnp.asarray(sig)))
            assert e - head == pytest.approx(g * (e_open - head), rel=1e-3, abs=1e-3 * max(1.0, abs(e_open - head)))
    # far below a pixel: the energy differences between cells are the histogram's
    sig = 1e-3 * cell
    a, b = jnp.array([10.5, 12.5]) * cell, jnp.array([14.5, 9.5]) * cell
    diff = float(net.energy(a, sig) - net.energy(b, sig))
    want = float(blurred_table_energy(net.table, net.table_origin, a, sig, cell)[1]
                 - blurred_table_energy(net.table, net.table_origin, b, sig, cell)[1])
    assert diff == pytest.approx(want, abs=1e-3)
    assert abs(float(open_net.energy(a, sig) - open_net.energy(b, sig)) - want) > 1.0  # the trunk's offset


def test_energy_net_pixel_table_adds_its_histograms_energy():
    from scorefield.nets import EnergyNet
    from scorefield.nets._pixels import blurred_pixel_table

    cell = 1 / 6
    net = EnergyNet(2, prior=False, centre=jnp.array([0.5, 0.5]), half_width=0.5, pixel_cell=cell, table_features=2,
                    width=8, depth=1, key=jax.random.PRNGKey(0))
    assert net.table.shape == (7, 7, 2) and net.trunk.inp.in_features == len(net.grids) * 4 + 2 + 2
    table = net.table.at[3, 2, 0].set(0.3)  # one brighter cell
    quiet = eqx.tree_at(lambda n: (n.trunk.out.weight, n.table), net, (jnp.zeros_like(net.trunk.out.weight), table))
    sig = 0.1 * cell
    for x in (jnp.array([3 * cell - 0.5 * sig, 2.5 * cell]), jnp.array([3.5 * cell, 3 * cell + 0.3 * sig])):
        # the score is -grad E of the histogram's energy: the grid net's histogram score
        want = np.asarray(blurred_pixel_table(table, net.table_origin, x, sig, cell)[2]) / sig
        np.testing.assert_allclose(np.asarray(quiet(x, jnp.asarray(sig))), want, rtol=1e-4, atol=1e-3)
    assert float(jnp.linalg.norm(quiet(jnp.array([3 * cell - 0.5 * sig, 2.5 * cell]), jnp.asarray(sig)))) * sig > 0.3
