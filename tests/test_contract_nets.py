"""The contract every registered score network keeps, parametrised over the registry
(scorefield.nets.NETS): one unbatched example in, (D,) float32 out; vmap agrees with
on_grid; the arrays it lists as frozen never change in a training step while the others do.
A network registered without a case here fails `test_every_registered_network_is_in_the_suite`."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from scorefield.losses import DenoisingScoreMatching
from scorefield.nets import NETS, NetContext, trainable
from scorefield.noise import geometric
from scorefield.train._state import init_state
from scorefield.train._step import make_chunk

# small options per network (every other option at its declared default)
CASES = {
    "sigma": dict(n_features=8, width=16, depth=2),
    "grid": dict(grid_resolutions=[4, 8], grid_features=2, width=16, depth=2),
    "reference": dict(n_features=8, width=16, depth=2),
    "energy": dict(grid_resolutions=[4, 8], grid_features=2, width=16, depth=2),
    "unet": dict(channels=8, downsamples=1, attention=True, patch=2),  # as the images preset, 2x2 blocks folded
    "resmlp": dict(width=16, depth=2, sigma_features=4),
}
# networks for image data in pixel space get a tiny image instead of 2-D points
IMAGE_SHAPES = {"unet": (1, 8, 8)}  # folded by patch 2 to 4 channels of 4x4
DIM = 2
SIGMAS = geometric(2.0, 0.05, 6)


def _dim(name):
    shape = IMAGE_SHAPES.get(name)
    return DIM if shape is None else int(np.prod(shape))


def _build(name, key=0):
    d = _dim(name)
    ctx = NetContext(dim=d, centre=jnp.zeros(d), half_width=3.0, sigmas=SIGMAS, key=jax.random.PRNGKey(key),
                     image_shape=IMAGE_SHAPES.get(name))
    return NETS.get(name).from_options(ctx, **NETS.resolve(name, CASES[name]))


def test_every_registered_network_is_in_the_suite():
    missing = set(NETS.names()) - set(CASES)
    assert not missing, f"registered networks without a contract case: {sorted(missing)}; add them to CASES"


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_unbatched_example_in_one_score_out(name):
    net = _build(name)
    x = jnp.resize(jnp.array([0.3, -0.7], jnp.float32), (_dim(name),))
    xs = jnp.stack([x, -x, 2 * x])
    # compiled, as every caller runs it (eagerly, each of a U-Net's operations compiles alone);
    # the one example and a batch through vmap in one program (one compilation, not two)
    s, batch = eqx.filter_jit(lambda n, x, xs, s: (n(x, s), jax.vmap(n, (0, None))(xs, s)))(
        net, x, xs, jnp.asarray(0.4, jnp.float32))
    assert s.shape == (_dim(name),) and s.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(s)))
    # the batch gives the same rows
    assert batch.shape == (3, _dim(name))
    np.testing.assert_allclose(np.asarray(batch[0]), np.asarray(s), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", sorted(CASES))
def test_on_grid_agrees_with_vmap(name):
    net = _build(name, key=1)
    x = jax.random.normal(jax.random.PRNGKey(2), (5, len(SIGMAS), _dim(name)))
    # both in one program: one compilation, not two
    got, want = eqx.filter_jit(lambda n, x, s: (n.on_grid(x, s), jax.vmap(jax.vmap(n), (0, None))(x, s)))(net, x, SIGMAS)
    assert got.shape == (5, len(SIGMAS), _dim(name))
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-4 * float(jnp.max(jnp.abs(want))))


@pytest.mark.parametrize("name", sorted(CASES))
def test_frozen_arrays_never_change_in_a_training_step(name):
    net = _build(name, key=3)
    optimizer = optax.adam(1e-2)
    state, static = init_state(net, optimizer)

    d = _dim(name)

    class Data(eqx.Module):
        def sample(self, key, n):
            return jax.random.normal(key, (n, d))

    chunk = make_chunk(DenoisingScoreMatching(SIGMAS, levels="random"), optimizer, key=jax.random.PRNGKey(4),
                       batch_size=16, ema_decay=0.0, mesh=None)
    state, losses = chunk(state, static, Data(), 3)
    assert losses.shape == (3,) and bool(jnp.all(jnp.isfinite(losses)))
    after = eqx.combine(state.params, static)
    for field in type(net).frozen:
        assert np.array_equal(np.asarray(getattr(net, field)), np.asarray(getattr(after, field))), field
    before_leaves = jax.tree_util.tree_leaves(eqx.filter(net, trainable(net)))
    after_leaves = jax.tree_util.tree_leaves(eqx.filter(after, trainable(net)))
    moved = [not np.array_equal(a, b) for a, b in zip(before_leaves, after_leaves, strict=True)]
    assert moved and all(moved)
