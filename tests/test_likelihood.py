"""The probability-flow likelihood against closed forms: a single Gaussian (a linear ODE),
the exact smoothed scores of 2-D and 5-D mixtures, the KL floor of an image against a
direct fine-grid integration, and the density map's mass."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scorefield import ConfigError, DivergenceError, InputError
from scorefield.data import from_image_array
from scorefield.likelihood import density_map, entropy, kl_floor, log_likelihood, report
from scorefield.targets import GaussianMixture

SMIN, SMAX = 0.01, 20.0


def _gauss_ode_closed_form(x, mu, v, smin, smax, centre):
    """log p_model for the exact score of N(mu, v I): the flow is x(s) = mu + (x - mu) a(s),
    a(s) = sqrt((v + s^2) / (v + smin^2)), so log p = log N(x(smax); c, smax^2 I) + D log a."""
    d = x.shape[1]
    a = math.sqrt((v + smax**2) / (v + smin**2))
    xt = mu + (x - mu) * a
    lp = -0.5 * np.sum((xt - centre) ** 2, 1) / smax**2 - 0.5 * d * math.log(2 * math.pi * smax**2) + d * math.log(a)
    return lp, xt


def test_single_gaussian_linear_ode_matches_closed_form():
    mu, v, centre = np.array([0.3, -0.2, 1.0]), 0.5, np.array([0.1, 0.0, -0.3])
    g = GaussianMixture(mu[None], np.full((1, 3), v))
    x = np.asarray(g.sample(jax.random.key(1), 40), np.float64)
    x[:4] += 3.0  # a few points far out in the tail
    # the solver's error follows its tolerances (relative 1e-5 by default, ~5e-4 nats at
    # log p = -50); 1e-7 puts it below float32's own rounding of the sums
    r = log_likelihood(g.score_fn, x, sigma_min=SMIN, sigma_max=5.0, prior_centre=centre, rtol=1e-7, atol=1e-7)
    want, xt = _gauss_ode_closed_form(x, mu, v, SMIN, 5.0, centre)
    assert r.trace == "exact" and r.n_probes == 3
    np.testing.assert_allclose(r.log_prob, want, rtol=0, atol=1e-4)
    np.testing.assert_allclose(r.endpoints, xt, rtol=1e-5, atol=1e-4)
    # the divergence integral alone is D log a
    np.testing.assert_allclose(r.divergence_integral, 3 * math.log(math.sqrt((v + 25.0) / (v + SMIN**2))), atol=1e-4)


@pytest.fixture(scope="module")
def mix2():
    return GaussianMixture(np.array([[-1.0, 0.5], [1.5, 1.0], [0.0, -1.5]]),
                           np.array([[0.3, 0.2], [0.1, 0.4], [0.5, 0.05]]), np.array([0.5, 0.3, 0.2]))


@pytest.fixture(scope="module")
def mix5():
    key = jax.random.key(5)
    means = 1.5 * jax.random.normal(key, (3, 5))
    covs = 0.1 + jax.random.uniform(jax.random.fold_in(key, 1), (3, 5))
    return GaussianMixture(means, covs, np.array([0.2, 0.5, 0.3]))


def _points(t, n, seed):
    """Draws of the target smoothed at SMIN, where log p_SMIN is well defined and varied."""
    k1, k2 = jax.random.split(jax.random.key(seed))
    return np.asarray(t.sample(k1, n) + SMIN * jax.random.normal(k2, (n, t.dim)))


@pytest.mark.parametrize("which", ["mix2", "mix5"])
def test_mixture_exact_trace_equals_smoothed_log_density(which, request):
    t = request.getfixturevalue(which)
    x = _points(t, 48, 2)
    prior = lambda z: t.smoothed_log_prob(z, SMAX)  # noqa: E731
    r = log_likelihood(t.score_fn, x, sigma_min=SMIN, sigma_max=SMAX, prior_log_prob=prior, trace="exact")
    want = np.asarray(jax.vmap(lambda z: t.smoothed_log_prob(z, SMIN))(x), np.float64)
    # the exact flow carries p_SMIN onto p_SMAX, so with the exact prior it is exact
    np.testing.assert_allclose(r.log_prob_exact_prior, want, rtol=0, atol=1e-3)
    # the Gaussian prior differs from p_SMAX by the prior mismatch only (small at SMAX = 20)
    assert abs(r.prior_mismatch) < 0.05
    np.testing.assert_allclose(r.log_prob - r.log_prob_exact_prior, r.prior_log_prob - (r.log_prob_exact_prior - r.divergence_integral))


@pytest.mark.slow
def test_hutchinson_is_unbiased_within_three_standard_errors(mix5):
    t = mix5
    x = _points(t, 64, 3)
    prior = lambda z: t.smoothed_log_prob(z, SMAX)  # noqa: E731
    r = log_likelihood(t.score_fn, x, sigma_min=SMIN, sigma_max=SMAX, prior_log_prob=prior,
                       trace="hutchinson", n_probes=2, key=jax.random.key(7))
    assert r.trace == "hutchinson" and r.n_probes == 2
    want = np.asarray(jax.vmap(lambda z: t.smoothed_log_prob(z, SMIN))(x), np.float64)
    d = r.log_prob_exact_prior - want
    se = d.std(ddof=1) / math.sqrt(len(d))
    assert se > 1e-3  # the estimator is noisy: this is not the exact trace in disguise
    assert abs(d.mean()) < 3 * se


def test_kl_floor_of_an_image_against_a_fine_grid():
    img = np.array([[0.0, 1.0, 2.0, 0.5], [3.0, 0.0, 1.0, 0.0], [0.2, 2.0, 4.0, 1.0]])
    t = from_image_array(img).target
    h = t.cell
    sigma = 0.3 * h
    got = kl_floor(t, sigma)
    # midpoint rule on M x M sub-cells of every occupied pixel: KL = sum_cells P * mean(log p - log p_sigma)
    m = 96
    u = (np.arange(m) + 0.5) / m
    p = np.asarray(t.probs, np.float64)
    f = jax.jit(jax.vmap(lambda z: t.smoothed_log_prob(z, sigma)))
    total = 0.0
    for r, c in zip(*np.nonzero(p > 0)):
        X, Y = np.meshgrid(c * h + u * h, (t.height - 1 - r) * h + u * h)
        pts = np.stack([X.ravel(), Y.ravel()], -1).astype(np.float32)
        total += p[r, c] * np.mean(math.log(p[r, c] / h**2) - np.asarray(f(pts), np.float64))
    assert got.stderr == 0.0 and got.method.startswith("quadrature")
    assert total > 0.01
    assert got.value == pytest.approx(total, rel=2e-3)
    # and the exact entropy against Monte Carlo of -log p
    ent = entropy(t)
    x = t.sample(jax.random.key(0), 20000)
    lp = np.asarray(jax.vmap(t.log_prob)(x), np.float64)
    assert abs(ent.value + lp.mean()) < 4 * lp.std() / math.sqrt(len(lp)) + 1e-6


def test_kl_floor_of_a_gaussian_is_closed_form():
    v, d, sigma = 0.3, 2, 0.2
    g = GaussianMixture(np.zeros((1, d)), np.full((1, d), v))
    got = kl_floor(g, sigma, key=jax.random.key(1), n=20000)
    want = 0.5 * d * (v / (v + sigma**2) - 1 + math.log((v + sigma**2) / v))
    assert abs(got.value - want) < 4 * got.stderr + 1e-6
    # log p - log p_sigma is O(sigma^2) per draw while its mean is O(sigma^4), so Monte Carlo
    # is precise in absolute terms (what a floor is compared at), not relative ones
    assert got.stderr < 2e-3


def test_report_kl_of_a_wrong_gaussian_model_matches_closed_form():
    """Data N(0, v I); model the exact score of N(m, w I). The flow is linear, so the model's
    density with the Gaussian prior is itself Gaussian, and KL(p || p_model) is closed form;
    it is positive, and the report's kl (a Monte Carlo mean) finds it within its error."""
    d, v, m, w, c = 2, 0.4, np.array([0.3, -0.2]), 0.8, np.array([0.1, 0.1])
    p = GaussianMixture(np.zeros((1, d)), np.full((1, d), v))
    q = GaussianMixture(m[None], np.full((1, d), w))
    x = np.asarray(p.sample(jax.random.key(4), 400))
    r = log_likelihood(q.score_fn, x, sigma_min=SMIN, sigma_max=5.0, prior_centre=c)
    out = report(r, target=p, points=x)
    a = math.sqrt((w + 25.0) / (w + SMIN**2))
    mean_q, var_q = m + (c - m) / a, 25.0 / a**2  # pushforward of N(c, 25 I) through x -> m + (x - m)/a
    kl = 0.5 * (d * v / var_q + np.sum(mean_q**2) / var_q - d + d * math.log(var_q / v))
    assert kl > 0.1
    assert abs(out["kl"] - kl) < 3 * out["kl_se"] + 1e-3
    assert out["kl"] - 3 * out["kl_se"] > 0  # KL >= 0, here clearly
    assert out["bits_per_dim"] == pytest.approx(out["nll"] / (d * math.log(2)))
    assert out["kl_floor"] > 0 and out["kl_floor_method"].startswith("monte carlo")
    # kl - kl_floor and the paired kl_excess estimate the same number
    assert abs((out["kl"] - out["kl_floor"]) - out["kl_excess"]) < 3 * out["kl_se"]


def test_density_map_integrates_to_one_and_is_upright(mix2):
    t = mix2
    ext = (-3.5, 3.5, -3.5, 3.0)
    centre = np.asarray(t.weights) @ np.asarray(t.means)  # the prior at the data's mean
    dm = density_map(t.score_fn, ext, resolution=40, sigma_min=SMIN, sigma_max=SMAX, prior_centre=centre,
                     exact_log_prob=lambda z: t.smoothed_log_prob(z, SMIN), chunk_size=512)
    assert dm.log_prob.shape == (len(dm.ys), len(dm.xs)) == (37, 40)
    assert abs(dm.integral - 1.0) < 0.01
    assert abs(dm.exact_integral - 1.0) < 0.01
    # where the mass is, model and exact agree up to the prior's mismatch at sigma_max
    # (O(|x(sigma_max) - centre| |mean - centre| / sigma_max^2) + O(var / sigma_max^2),
    # growing in the far tails, which are left out)
    mass = dm.exact_log_prob > dm.exact_log_prob.max() + math.log(1e-2)
    assert np.max(np.abs(dm.difference[mass])) < 0.03
    # row i is at y = ys[i] (y up): the highest peak is component 0's at (-1, 0.5)
    # (peak w / (2 pi sqrt(det C)) = 0.32 against 0.24 and 0.20); a flip or a transpose
    # would move it to (-1, -1) or (0.5, -1)
    i, j = np.unravel_index(np.argmax(dm.log_prob), dm.log_prob.shape)
    assert abs(dm.xs[j] + 1.0) < 0.2 and abs(dm.ys[i] - 0.5) < 0.2


def test_bad_input_is_a_typed_one_line_error(mix2):
    t = mix2
    x = np.zeros((4, 2), np.float32)
    with pytest.raises(InputError, match="NaN or inf"):
        log_likelihood(t.score_fn, np.array([[0.0, np.nan]]), sigma_min=SMIN, sigma_max=SMAX)
    with pytest.raises(InputError, match="shape"):
        log_likelihood(t.score_fn, np.zeros((0, 2)), sigma_min=SMIN, sigma_max=SMAX)
    with pytest.raises(ConfigError, match="smaller"):
        log_likelihood(t.score_fn, x, sigma_min=1.0, sigma_max=1.0)
    for bad in (math.nan, math.inf, 0.0, -1e-5):
        with pytest.raises(ConfigError, match="rtol"):
            log_likelihood(t.score_fn, x, sigma_min=SMIN, sigma_max=SMAX, rtol=bad)
    with pytest.raises(ConfigError, match="trace"):
        log_likelihood(t.score_fn, x, sigma_min=SMIN, sigma_max=SMAX, trace="stochastic")
    with pytest.raises(ConfigError, match="solver"):
        log_likelihood(t.score_fn, x, sigma_min=SMIN, sigma_max=SMAX, solver="euler")
    for res in (0, 1, 4097, 2.5):
        with pytest.raises(InputError, match="resolution"):
            density_map(t.score_fn, (0, 1, 0, 1), resolution=res, sigma_min=SMIN, sigma_max=SMAX)


def test_a_nan_score_stops_with_a_divergence_error():
    def score(x, sigma):
        return jnp.where(sigma > 0.5, jnp.nan, -x)

    with pytest.raises(DivergenceError, match="NaN or inf"):
        log_likelihood(score, np.ones((3, 2)), sigma_min=SMIN, sigma_max=2.0, max_steps=64)


def test_failed_solves_are_nan_on_request_and_a_map_draws_them_blank():
    """on_failure="nan": a point whose solve fails (here a score that is NaN for x_0 > 1) is
    NaN and counted, the others are the closed form; a density map counts such cells as
    unresolved and leaves them out of its integral; the default still raises."""
    mu, v = np.zeros(2), 0.5

    def score(x, sigma):
        return jnp.where(x[0] > 1.0, jnp.nan, -(x - mu) / (v + sigma**2))

    x = np.array([[0.2, -0.1], [1.5, 0.0], [-0.4, 0.3], [2.0, 1.0]])
    with pytest.raises(DivergenceError):
        log_likelihood(score, x, sigma_min=SMIN, sigma_max=3.0, max_steps=256)
    r = log_likelihood(score, x, sigma_min=SMIN, sigma_max=3.0, max_steps=256, on_failure="nan", rtol=1e-7, atol=1e-7)
    want, _ = _gauss_ode_closed_form(x, mu, v, SMIN, 3.0, 0.0)
    assert r.n_failed == 2 and np.isnan(r.log_prob[[1, 3]]).all()
    np.testing.assert_allclose(r.log_prob[[0, 2]], want[[0, 2]], rtol=0, atol=1e-4)
    # the flow carries x to x a(sigma), a(3) = 4.36: a cell fails where its path crosses x_0 = 1
    dm = density_map(score, (-3.0, 3.0, -3.0, 3.0), resolution=12, sigma_min=SMIN, sigma_max=3.0)
    a = math.sqrt((v + 9.0) / (v + SMIN**2))
    fails = dm.xs * a > 1.0
    assert dm.unresolved == int(fails.sum()) * len(dm.ys) == 72
    assert np.isnan(dm.log_prob[:, fails]).all() and np.isfinite(dm.log_prob[:, ~fails]).all()
    assert abs(dm.integral - 0.5) < 0.02  # the resolved cells cover x_0 < 0: half of N(0, 0.5 I)
    with pytest.raises(ConfigError):
        log_likelihood(score, x, sigma_min=SMIN, sigma_max=3.0, on_failure="skip")


def test_density_map_figure_is_upright():
    from scorefield.likelihood import DensityMap
    from scorefield.plot import density_map_figure, figure_to_array

    xs, ys = np.linspace(0.05, 0.95, 10), np.linspace(0.05, 0.55, 6)
    lp = np.full((6, 10), -5.0)
    lp[-1, 0] = 1.0  # the top-left cell: high y, low x
    exact = lp - 0.1
    dm = DensityMap(xs=xs, ys=ys, log_prob=lp, exact_log_prob=exact, extent=(0.0, 1.0, 0.0, 0.6), cell_area=0.01,
                    integral=0.5, exact_integral=0.45, sigma_min=0.01, seconds=0.0)
    fig = density_map_figure(dm)
    axes = [ax for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>"]
    assert len(axes) == 3  # model, exact, difference
    im = axes[0].images[0]
    assert im.origin == "lower" and tuple(im.get_extent()) == (0.0, 1.0, 0.0, 0.6)
    np.testing.assert_array_equal(np.asarray(im.get_array())[-1, 0], 1.0)  # row -1 drawn at the top
    np.testing.assert_allclose(np.nanmax(np.asarray(axes[2].images[0].get_array())), 0.1)
    assert figure_to_array(fig).shape[2] == 4
