import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scorefield.nets import GridNet, ReferenceNet, SigmaNet, trainable
from scorefield.nets._grid import _interpolate
from scorefield.nets._trig import sincos_turns
from scorefield.noise import geometric


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


@pytest.mark.parametrize("make", [
    lambda k: ReferenceNet(2, geometric(1.0, 1e-4, 30), key=k),
    lambda k: SigmaNet(3, key=k),
    lambda k: GridNet(2, key=k),
])
def test_networks_map_one_example_and_vmap(make):
    net = make(jax.random.PRNGKey(0))
    d = 3 if isinstance(net, SigmaNet) else 2
    x = jax.random.normal(jax.random.PRNGKey(1), (5, d))
    out = jax.vmap(net, (0, None))(x, jnp.asarray(0.1))
    assert out.shape == (5, d) and bool(jnp.all(jnp.isfinite(out)))
    spec = trainable(net)
    frozen = [n for n in type(net).frozen]
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
            assert 1e-4 < float(jnp.linalg.norm(s * net(x, jnp.asarray(s)))) < 10
