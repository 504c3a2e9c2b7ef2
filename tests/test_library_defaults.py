"""Policy the CLI used to hold lives in the library, so a Python user gets the CLI's choices:
plot limits (`scorefield.plot.data_view`), the sampling context of a closed-form target
(`SamplerContext.from_dataset`) or of an energy run (`sampler_context(config, model=)`), and
the log-density a Metropolis sampler is given (`SamplerContext.log_prob_for`)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import scorefield.samplers as S
from scorefield import plot
from scorefield._seed import seed_key
from scorefield.cli import _plot as cli_plot
from scorefield.data import load


def test_data_view_of_an_image_is_its_extent_and_pixels():
    ds = load("mnist")
    lims, background = plot.data_view(ds)
    h, w = np.asarray(ds.target.probs).shape
    m = max(h, w)
    assert lims == ((0.0, w / m), (0.0, h / m))
    np.testing.assert_array_equal(background, np.asarray(ds.target.probs))


def test_data_view_of_points_is_a_square_box_around_them_and_what_the_cli_draws():
    ds = load("toy:ncsn-mixture")
    (x0, x1), (y0, y1) = lims = plot.data_view(ds)[0]
    assert np.isclose(x1 - x0, y1 - y0)  # square
    x = np.asarray(ds.sample(jax.random.PRNGKey(7), 4000))
    inside = np.mean((x[:, 0] > x0) & (x[:, 0] < x1) & (x[:, 1] > y0) & (x[:, 1] < y1))
    assert inside > 0.99
    # the box: 0.6 x the larger 0.5-99.5 percentile range each side of the percentile centre
    ref = np.asarray(ds.sample(jax.random.PRNGKey(0), 4000))
    lo, hi = np.percentile(ref, 0.5, axis=0), np.percentile(ref, 99.5, axis=0)
    np.testing.assert_allclose(x1 - x0, 1.2 * np.max(hi - lo) + 2e-6, rtol=1e-6)  # float32 data
    assert cli_plot._view(ds, seed=0) == (lims, None)
    assert cli_plot._view(ds, seed=5) == (plot.data_view(ds, key=seed_key(5, raw=True))[0], None)


def test_sampler_context_of_a_closed_form_dataset():
    ds = load("toy:ncsn-mixture")
    key = jax.random.key(3)
    c = S.SamplerContext.from_dataset(ds, key=key)
    ref = S.SamplerContext.from_points(np.asarray(ds.sample(key, 4096), np.float64))
    assert (c.dim, c.sigma_max, c.sigma_min, c.exact) == (ref.dim, ref.sigma_max, ref.sigma_min, True)
    assert c.sigma_min == 0.01 * c.sigma_max
    np.testing.assert_array_equal(c.centre, ref.centre)
    x = jnp.array([4.0, 5.5])
    assert c.log_density(0) == ds.target.log_prob  # sigma 0: the unsmoothed density
    assert float(c.log_density(0.5)(x)) == float(ds.target.smoothed_log_prob(x, 0.5))
    given = S.SamplerContext.from_dataset(ds, key=key, sigma_max=9.0, sigma_min=0.2)
    assert (given.sigma_max, given.sigma_min) == (9.0, 0.2)
    # what each sampler is given: nothing, the density at its level, or at every level
    assert c.log_prob_for(S.SAMPLERS.build("pc", c)) is None
    mala = S.SAMPLERS.build("mala", c, {"sigma": 0.5})
    assert float(c.log_prob_for(mala)(x)) == float(ds.target.smoothed_log_prob(x, 0.5))
    amala = S.SAMPLERS.build("amala", c, {"levels": 3})
    assert float(c.log_prob_for(amala)(x, 0.7)) == float(ds.target.smoothed_log_prob(x, 0.7))


def test_sampler_context_of_an_energy_run_has_its_log_density():
    from scorefield.nets import EnergyNet
    from scorefield.train import preset, sampler_context

    config = preset("fast", data="toy:ncsn-mixture", net="energy", dim=2, centre=[0.0, 0.0], sigma_max=10.0,
                    sigma_min=0.05, half_width=8.0)
    # an EnergyNet of constant arrays (built from its shapes: constructing one eagerly takes
    # tens of seconds on a loaded machine)
    shapes = eqx.filter_eval_shape(lambda k: EnergyNet(2, resolutions=(4,), width=8, depth=1, half_width=8.0, key=k),
                                   jax.random.PRNGKey(0))
    net = jax.tree_util.tree_map(lambda s: jnp.full(s.shape, 0.5, s.dtype) if isinstance(s, jax.ShapeDtypeStruct) else s,
                                 shapes)
    ctx = sampler_context(config, model=net)
    x = jnp.array([0.3, -1.2])
    got, want = eqx.filter_jit(lambda n, x: (ctx.log_density(0.4)(x), n.log_prob(x, 0.4)))(net, x)
    assert np.isfinite(float(want)) and np.isclose(float(got), float(want), rtol=1e-6, atol=0)
    assert sampler_context(config).log_density is None  # a score network gives a score only
