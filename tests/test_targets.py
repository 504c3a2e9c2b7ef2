"""Closed-form targets against independent truths: numpyro/scipy log-densities, Monte-Carlo
smoothing, exact moments, chi-square cell frequencies, finite differences."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
import pytest
import scipy.special
import scipy.stats

from scorefield import InputError
from scorefield.targets import (
    Checkerboard,
    GaussianMixture,
    ImageDensity,
    NoDensityError,
    NoSmoothedScoreError,
    SmoothedTarget,
    NumpyroTarget,
    log_normal_mass,
)


def _random_mixture(seed, k, d, diagonal):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(k, d)) * 2
    if diagonal:
        covs = rng.uniform(0.2, 1.5, size=(k, d))
    else:
        a = rng.normal(size=(k, d, d))
        covs = a @ np.swapaxes(a, -1, -2) + 0.3 * np.eye(d)
    weights = rng.uniform(0.1, 1.0, size=k)
    return means, covs, weights


def _numpyro_mixture(means, covs, weights, sigma=0.0):
    d = means.shape[1]
    full = covs if covs.ndim == 3 else np.einsum("kd,de->kde", covs, np.eye(d))
    full = full + sigma**2 * np.eye(d)
    return nd.MixtureSameFamily(
        nd.Categorical(probs=jnp.asarray(weights / weights.sum())),
        nd.MultivariateNormal(jnp.asarray(means), covariance_matrix=jnp.asarray(full)),
    )


@pytest.mark.parametrize("diagonal", [False, True])
@pytest.mark.parametrize("sigma", [0.0, 0.7])
def test_mixture_matches_numpyro_autodiff(diagonal, sigma):
    means, covs, weights = _random_mixture(1, 3, 3, diagonal)
    gm = GaussianMixture(means, covs, weights)
    ref = _numpyro_mixture(means, covs, weights, sigma)
    xs = jnp.asarray(np.random.default_rng(2).normal(size=(12, 3)) * 2.5, jnp.float32)
    lp = jax.jit(jax.vmap(gm.smoothed_log_prob, (0, None)))(xs, sigma)
    sc = jax.jit(jax.vmap(gm.smoothed_score, (0, None)))(xs, sigma)
    np.testing.assert_allclose(lp, jax.jit(jax.vmap(ref.log_prob))(xs), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(sc, jax.jit(jax.vmap(jax.grad(ref.log_prob)))(xs), rtol=1e-3, atol=1e-4)
    if sigma == 0.0:
        np.testing.assert_allclose(jax.jit(jax.vmap(gm.score))(xs), sc, rtol=1e-6, atol=1e-6)


def test_mixture_exact_moments():
    means, covs, weights = _random_mixture(3, 3, 2, False)
    gm = GaussianMixture(means, covs, weights)
    n = 100_000
    x = np.asarray(jax.jit(lambda k: gm.sample(k, n))(jax.random.key(0)), np.float64)
    assert x.shape == (n, 2)
    w = weights / weights.sum()
    mean = w @ means
    cov = np.einsum("k,kij->ij", w, covs + np.einsum("ki,kj->kij", means, means)) - np.outer(mean, mean)
    se_mean = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(x.mean(0) - mean) < 5 * se_mean)
    np.testing.assert_allclose(np.cov(x.T), cov, rtol=0.03, atol=0.03)


def _mc_smoothed(y, xs, sigma):
    """Monte-Carlo log p_sigma and score at points xs from exact samples y (float64)."""
    out = []
    for x in xs:
        logk = -np.sum((x - y) ** 2, 1) / (2 * sigma**2) - math.log(2 * math.pi * sigma**2)
        k = np.exp(logk - logk.max())
        se = k.std() / (k.mean() * math.sqrt(len(k)))  # delta-method s.e. of log mean
        out.append((math.log(k.mean()) + logk.max(), (k[:, None] * (y - x)).sum(0) / k.sum() / sigma**2, se))
    return np.array([o[0] for o in out]), np.array([o[1] for o in out]), np.array([o[2] for o in out])


def _oracle(target, xs, sigma):
    xs = jnp.asarray(xs, jnp.float32)
    lp = jax.jit(jax.vmap(target.smoothed_log_prob, (0, None)))(xs, sigma)
    sc = jax.jit(jax.vmap(target.smoothed_score, (0, None)))(xs, sigma)
    return np.asarray(lp), np.asarray(sc)


def test_mixture_smoothed_matches_monte_carlo():
    gm = GaussianMixture(np.array([[0.5, 0.5], [-0.5, -0.5]]), np.full((2, 2), 0.16))
    sigma = 0.5
    y = np.asarray(gm.sample(jax.random.key(7), 200_000), np.float64)
    xs = np.array([[0.0, 0.0], [0.8, -0.3], [-1.2, 0.4]])
    lp_mc, s_mc, se = _mc_smoothed(y, xs, sigma)
    lp, sc = _oracle(gm, xs, sigma)
    assert np.all(np.abs(lp - lp_mc) < 5 * se + 1e-3), (lp, lp_mc, se)
    np.testing.assert_allclose(sc, s_mc, atol=0.03)


def test_mixture_rejects_bad_input():
    with pytest.raises(InputError, match="weights"):
        GaussianMixture(np.zeros((2, 2)), np.ones((2, 2)), np.array([1.0, -1.0]))
    with pytest.raises(InputError, match="covs"):
        GaussianMixture(np.zeros((2, 2)), np.ones((2, 3)))
    with pytest.raises(InputError, match="positive definite"):
        GaussianMixture(np.zeros((1, 2)), -np.eye(2)[None])


def test_numpyro_adapter_transformed_distribution():
    # LogNormal(0, 1) built as exp of a Normal: score d/dx log p = -(1 + log x) / x.
    t = NumpyroTarget(nd.TransformedDistribution(nd.Normal(0.0, 1.0), nd.transforms.ExpTransform()))
    assert t.dim == 1 and not isinstance(t, SmoothedTarget)
    xs = jnp.array([[0.3], [1.0], [2.5]])
    np.testing.assert_allclose(jax.vmap(t.score)(xs)[:, 0], -(1 + np.log(xs[:, 0])) / xs[:, 0], rtol=1e-5)
    x = t.sample(jax.random.key(0), 100_000)
    assert x.shape == (100_000, 1) and x.dtype == jnp.float32
    se = math.sqrt((math.e - 1) * math.e / 100_000)
    assert abs(float(x.mean()) - math.exp(0.5)) < 5 * se
    with pytest.raises(NoSmoothedScoreError):
        t.smoothed_score(xs[0], 0.1)


def test_numpyro_adapter_mixture_same_family_and_jit():
    means, covs, weights = _random_mixture(4, 2, 2, False)
    t = NumpyroTarget(_numpyro_mixture(means, covs, weights))
    gm = GaussianMixture(means, covs, weights)
    xs = jnp.asarray(np.random.default_rng(0).normal(size=(5, 2)), jnp.float32)
    np.testing.assert_allclose(jax.jit(jax.vmap(t.score))(xs), jax.jit(jax.vmap(gm.score))(xs), rtol=1e-3, atol=1e-4)
    import equinox as eqx

    x = eqx.filter_jit(lambda t, k: t.sample(k, 7))(t, jax.random.key(0))
    assert x.shape == (7, 2)
    with pytest.raises(InputError, match="batch_shape"):
        NumpyroTarget(nd.Normal(jnp.zeros(3), 1.0))


def test_log_normal_mass_against_scipy_float64():
    mids = np.array([0.0, 0.7, -3.0, 12.0, -40.0, 300.0])
    ws = np.array([1e-4, 0.05, 1.0, 7.0, 50.0])
    m, w = (a.ravel() for a in np.meshgrid(mids, ws))
    u, v = -np.abs(m) + w / 2, -np.abs(m) - w / 2
    a, b = scipy.special.log_ndtr(u), scipy.special.log_ndtr(v)
    ref = a + np.log(-np.expm1(b - a))
    got = np.asarray(jax.jit(log_normal_mass)(jnp.asarray(m, jnp.float32), jnp.asarray(w, jnp.float32)))
    np.testing.assert_allclose(got, ref, rtol=2e-5, atol=2e-5)
    g = jax.jit(jax.vmap(jax.grad(log_normal_mass, (0, 1))))(jnp.asarray(m * 1e3, jnp.float32), jnp.asarray(w, jnp.float32))
    assert all(np.all(np.isfinite(gi)) for gi in g)


# A small non-square, asymmetric image: any flip or transpose changes the cell frequencies.
IMG = np.array(
    [
        [0.0, 1.0, 2.0, 0.0, 0.5],
        [3.0, 0.0, 0.0, 0.0, 4.0],
        [0.0, 0.25, 5.0, 0.0, 0.0],
    ]
)


def _cells(x, h, w):
    """Independent inverse of the SPEC coordinates: (x, y) -> (row, col)."""
    m = max(h, w)
    col = np.floor(x[:, 0] * m).astype(int)
    row = h - 1 - np.floor(x[:, 1] * m).astype(int)
    return row, col


def test_image_sampler_chi_square_and_orientation():
    t = ImageDensity.from_array(IMG)
    assert (t.height, t.width) == (3, 5) and t.extent == (1.0, 0.6)
    n = 60_000
    x = np.asarray(jax.jit(lambda k: t.sample(k, n))(jax.random.key(11)))
    assert x.dtype == np.float32 and x.shape == (n, 2)
    row, col = _cells(x, 3, 5)
    assert row.min() >= 0 and row.max() < 3 and col.min() >= 0 and col.max() < 5
    counts = np.zeros((3, 5))
    np.add.at(counts, (row, col), 1)
    p = IMG / IMG.sum()
    assert np.all(counts[p == 0] == 0)
    stat, pval = scipy.stats.chisquare(counts[p > 0], n * p[p > 0])
    assert pval > 1e-3, (stat, pval)
    # Uniform within a cell: the fractional positions have mean 1/2.
    frac = (x * 5) % 1.0
    assert np.all(np.abs(frac.mean(0) - 0.5) < 0.01)


def test_image_single_pixel_top_right():
    img = np.zeros((4, 6))
    img[0, 5] = 1.0  # top row, rightmost column
    t = ImageDensity.from_array(img)
    x = np.asarray(t.sample(jax.random.key(0), 1000))
    assert np.all((x[:, 0] >= 5 / 6) & (x[:, 0] <= 1.0))
    assert np.all((x[:, 1] >= 3 / 6) & (x[:, 1] <= 4 / 6))


def test_image_smoothed_log_prob_matches_monte_carlo():
    t = ImageDensity.from_array(IMG)
    sigma = 0.08
    y = np.asarray(jax.jit(lambda k: t.sample(k, 200_000))(jax.random.key(3)), np.float64)
    xs = np.array([[0.3, 0.3], [0.05, 0.55], [1.1, -0.1]])
    lp_mc, s_mc, se = _mc_smoothed(y, xs, sigma)
    lp, sc = _oracle(t, xs, sigma)
    assert np.all(np.abs(lp - lp_mc) < 5 * se + 1e-3), (lp, lp_mc, se)
    np.testing.assert_allclose(sc, s_mc, rtol=0.03, atol=0.15)


@pytest.mark.parametrize("centres", [False, True])
def test_image_smoothed_score_matches_finite_differences(centres):
    t = ImageDensity.from_array(IMG, centres=centres)
    sigma, h = 0.05, 1e-3
    xs = jnp.array([(0.31, 0.27), (0.5, 0.3), (0.92, 0.33), (-0.2, 0.9), (0.45, 0.05)])
    f = jax.jit(jax.vmap(lambda x: t.smoothed_log_prob(x, sigma)))
    _, g = _oracle(t, xs, sigma)
    fd = np.stack([(f(xs + h * e) - f(xs - h * e)) / (2 * h) for e in jnp.eye(2)], -1)
    np.testing.assert_allclose(g, fd, rtol=0.02, atol=0.05)


def test_image_oracle_small_sigma_limit():
    t = ImageDensity.from_array(IMG)
    oracle = jax.jit(lambda x, s: (t.smoothed_log_prob(x, s), t.smoothed_score(x, s)))
    p = IMG / IMG.sum()
    for r, c in [(0, 1), (1, 4), (2, 2), (2, 1)]:
        x = jnp.array([(c + 0.5) / 5, (3 - r - 0.5) / 5], jnp.float32)
        for sigma in (1e-2, 1e-4):
            lp, s = oracle(x, sigma)
            assert abs(float(lp) - math.log(p[r, c] * 25)) < 1e-4
            assert float(jnp.max(jnp.abs(s))) < 1e-3
        assert abs(float(jax.jit(lambda x: t.log_prob(x))(x)) - math.log(p[r, c] * 25)) < 1e-5
    # Far outside the image, and in an empty cell next to mass: finite, pointing back in.
    for x, sigma in [((5.0, -3.0), 1e-4), ((5.0, -3.0), 0.05), ((0.7, 0.5), 1e-4)]:
        x = jnp.asarray(x, jnp.float32)
        lp, s = oracle(x, sigma)
        assert np.all(np.isfinite(s)) and np.isfinite(float(lp))
        towards = jnp.array([0.5, 0.3]) - x
        assert float(s @ towards) > 0
    # Tiny sigma, outside: the score approaches -(x - nearest point of mass) / sigma^2.
    _, s = oracle(jnp.array([0.5, 0.7]), 1e-3)  # 0.1 above the mass of row 0, col 2
    np.testing.assert_allclose(s, [0.0, -0.1 / 1e-6], rtol=0.02, atol=1.0)


def test_image_centres_is_a_gaussian_mixture():
    t = ImageDensity.from_array(IMG, centres=True)
    p = (IMG / IMG.sum()).ravel()
    r, c = np.divmod(np.arange(15), 5)
    centres = np.stack([(c + 0.5) / 5, (3 - r - 0.5) / 5], -1)
    sigma = 0.07
    for x in np.array([[0.3, 0.3], [0.9, 0.1], [-0.4, 1.0]]):
        ref = scipy.special.logsumexp(
            scipy.stats.multivariate_normal.logpdf(centres, mean=x, cov=sigma**2), b=p
        )
        assert abs(float(jax.jit(lambda x: t.smoothed_log_prob(x, sigma))(jnp.asarray(x, jnp.float32))) - ref) < 1e-3
    x = np.asarray(t.sample(jax.random.key(0), 500))
    assert np.all(np.min(np.abs(x[:, None, :] - centres[None]).max(-1), axis=1) < 1e-6)
    with pytest.raises(NoDensityError):
        t.log_prob(jnp.zeros(2))


@pytest.mark.parametrize(
    "img, match",
    [(np.zeros((3, 4)), "zero total"), (-np.ones((2, 2)), "negative"), (np.array([[1.0, np.nan]]), "NaN"), (np.ones(3), "shape")],
)
def test_image_rejects_bad_arrays(img, match):
    from scorefield import DataSpecError

    with pytest.raises(DataSpecError, match=match):
        ImageDensity.from_array(img)


def test_checkerboard_density_and_smoothing():
    cb = Checkerboard()
    assert float(cb.log_prob(jnp.array([-3.0, -3.0]))) == pytest.approx(math.log(1 / 32))
    assert float(cb.log_prob(jnp.array([-1.0, -3.0]))) == -np.inf
    assert float(cb.log_prob(jnp.array([1.0, 1.0]))) == pytest.approx(math.log(1 / 32))
    y = np.asarray(jax.jit(lambda k: cb.sample(k, 200_000))(jax.random.key(5)), np.float64)
    assert np.all(np.isfinite(jax.jit(jax.vmap(cb.log_prob))(jnp.asarray(y[:1000], jnp.float32))))
    sigma = 0.6
    xs = np.array([[0.2, 0.9], [-4.5, 1.0]])
    lp_mc, s_mc, se = _mc_smoothed(y, xs, sigma)
    lp, sc = _oracle(cb, xs, sigma)
    assert np.all(np.abs(lp - lp_mc) < 5 * se + 1e-3), (lp, lp_mc, se)
    np.testing.assert_allclose(sc, s_mc, atol=0.05)
