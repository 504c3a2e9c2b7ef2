"""Metrics against known truth: closed-form expectations, dense references, exact samples."""

from __future__ import annotations

import functools
import math
import types

import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
import scipy.stats as ss
from hypothesis import given, settings
from hypothesis import strategies as st

from scorefield import InputError
from scorefield import metrics as M
from scorefield.metrics import _energy, _mmd
from scorefield.targets import GaussianMixture

# ---------------------------------------------------------------- test-local samplers


def image_samples(rng: np.random.Generator, probs: np.ndarray, n: int) -> np.ndarray:
    """Exact samples of the piecewise-constant image density, written from SPEC section 3:
    pixel (r, c) of an HxW image, m = max(H, W), covers x in [c/m, (c+1)/m],
    y in [(H-1-r)/m, (H-r)/m]."""
    h, w = probs.shape
    m = max(h, w)
    p = probs.ravel() / probs.sum()
    idx = rng.choice(h * w, size=n, p=p)
    r, c = np.divmod(idx, w)
    u = rng.random((n, 2))
    x = (c + u[:, 0]) / m
    y = (h - 1 - r + u[:, 1]) / m
    return np.stack([x, y], axis=1).astype(np.float32)


def mixture_samples(rng, means, covs, weights, n):
    comp = rng.choice(len(weights), size=n, p=np.asarray(weights) / np.sum(weights))
    out = np.empty((n, means.shape[1]))
    for k in range(len(weights)):
        sel = comp == k
        out[sel] = rng.multivariate_normal(means[k], covs[k], size=sel.sum())
    return out.astype(np.float32)


ASYM = np.array(  # 3 x 5, non-square and asymmetric: mass 0.5 at the top-left pixel
    [[5.0, 0.0, 0.0, 0.0, 1.0],
     [0.0, 0.0, 2.0, 0.0, 0.0],
     [0.0, 1.0, 0.0, 0.0, 1.0]]
)


# ---------------------------------------------------------------- hist_tv


@pytest.mark.parametrize("shape", [(3, 5), (5, 3)])
def test_cell_counts_follow_spec_orientation(shape):
    h, w = shape
    m = max(h, w)
    probs = jnp.ones(shape)
    for r in range(h):
        for c in range(w):
            centre = jnp.array([[(c + 0.5) / m, (h - 1 - r + 0.5) / m]])
            counts, outside = M.cell_counts(probs, centre)
            expected = np.zeros(shape)
            expected[r, c] = 1
            np.testing.assert_array_equal(np.asarray(counts), expected)
            assert float(outside) == 0


def test_hist_tv_top_row_is_high_y():
    rng = np.random.default_rng(0)
    probs = np.zeros((3, 5))
    probs[0, 0] = 1.0  # top-left pixel: x in [0, 0.2], y in [0.4, 0.6]
    top_left = np.stack([rng.uniform(0, 0.2, 500), rng.uniform(0.4, 0.6, 500)], 1)
    bottom_left = np.stack([rng.uniform(0, 0.2, 500), rng.uniform(0.0, 0.2, 500)], 1)
    transposed = top_left[:, ::-1]  # (row, col) plotted as (x, y): the reference's bug
    assert float(M.hist_tv(probs, top_left)) == pytest.approx(0.0, abs=1e-6)
    assert float(M.hist_tv(probs, bottom_left)) == pytest.approx(1.0, abs=1e-6)
    assert float(M.hist_tv(probs, transposed)) == pytest.approx(1.0, abs=1e-6)


def test_hist_tv_counts_outside_fraction():
    probs = np.ones((2, 4)) / 8  # 2 x 4: spans x in [0, 1], y in [0, 0.5]
    rng = np.random.default_rng(1)
    inside = image_samples(rng, probs, 400)
    above = inside + np.array([0.0, 0.5], np.float32)  # y in [0.5, 1]: outside the image
    nan = np.full((100, 2), np.nan, np.float32)
    # All outside: the histogram is empty, so 0.5 * (sum p + 1) = 1.
    assert float(M.hist_tv(probs, above)) == pytest.approx(1.0)
    # Mixed: compute the formula by hand from the inside half.
    both = np.concatenate([inside, above, nan])
    counts, _ = M.cell_counts(jnp.asarray(probs), jnp.asarray(inside))
    n = len(both)
    expected = 0.5 * (np.abs(np.asarray(counts) / n - probs).sum() + 500 / n)
    assert float(M.hist_tv(probs, both)) == pytest.approx(expected, rel=1e-5)


def test_hist_tv_accepts_density_object_and_normalises():
    rng = np.random.default_rng(2)
    xs = image_samples(rng, ASYM, 300)
    density = types.SimpleNamespace(probs=jnp.asarray(ASYM / ASYM.sum()))
    a = float(M.hist_tv(density, xs))
    b = float(M.hist_tv(ASYM * 7.0, xs))  # unnormalised intensities
    assert a == pytest.approx(b, rel=1e-6)


def test_hist_tv_of_exact_samples_matches_floor():
    rng = np.random.default_rng(3)
    n, reps = 1000, 40
    values = np.array([float(M.hist_tv(ASYM, image_samples(rng, ASYM, n))) for _ in range(reps)])
    floor = M.hist_tv_floor(ASYM, n, key=jr.key(0), repeats=400)
    se = math.sqrt(values.std(ddof=1) ** 2 / reps + float(floor.stderr) ** 2)
    assert abs(values.mean() - float(floor.mean)) < 4 * se
    assert float(floor.mean) > 0  # a finite-sample floor, not zero
    # A wrong density (the image flipped upside down) is far above the floor.
    flipped = image_samples(rng, ASYM[::-1], n)
    assert float(M.hist_tv(ASYM, flipped)) > float(floor.mean) + 0.2


def test_hist_tv_bins_a_grid_density_on_its_own_cells():
    """The checkerboard's cells are 2 wide from (-4, -4), not the unit image frame: exact
    draws sit at its floor, and draws shifted by one cell (onto the empty squares) at 1."""
    from scorefield.targets import Checkerboard

    board = Checkerboard()
    x = board.sample(jr.key(0), 4000)
    floor = M.hist_tv_floor(board, 4000, key=jr.key(1), repeats=64)
    assert float(floor.low) <= float(M.hist_tv(board, x)) <= float(floor.high)
    shifted = x.at[:, 0].set(jnp.where(x[:, 0] < 2.0, x[:, 0] + 2.0, x[:, 0] - 6.0))
    assert float(M.hist_tv(board, shifted)) > 0.99


def test_hist_tv_floor_shrinks_like_inverse_sqrt_n():
    probs = np.ones((8, 8))
    f1 = M.hist_tv_floor(probs, 400, key=jr.key(1), repeats=200)
    f2 = M.hist_tv_floor(probs, 6400, key=jr.key(2), repeats=200)
    # Many cells with ~N p counts each: E|c/N - p| ~ sqrt(p/N), a ratio of 4 for N x 16.
    assert float(f1.mean) / float(f2.mean) == pytest.approx(4.0, rel=0.1)


@settings(max_examples=12, deadline=None)
@given(
    h=st.integers(1, 3),
    w=st.integers(1, 3),
    # A fixed count keeps recompilation to one per image shape.
    # No subnormals: XLA on CPU flushes them to zero, so -1e-45 counts as inside.
    pts=st.lists(st.tuples(*[st.floats(-0.5, 1.5, width=32, allow_subnormal=False)] * 2), min_size=16, max_size=16),
)
def test_hist_tv_property_bounds_and_counts(h, w, pts):
    probs = np.arange(1, h * w + 1, dtype=np.float64).reshape(h, w)
    xs = np.asarray(pts, np.float32)
    tv = float(M.hist_tv(probs, xs))
    assert -1e-6 <= tv <= 1 + 1e-6
    counts, outside = M.cell_counts(jnp.asarray(probs, jnp.float32), jnp.asarray(xs))
    m = max(h, w)
    ins = (xs[:, 0] >= 0) & (xs[:, 0] * m < w) & (xs[:, 1] >= 0) & (xs[:, 1] * m < h)
    assert float(counts.sum()) == ins.sum()
    assert float(outside) == (~ins).sum()


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(0, 4), min_size=0, max_size=3))
def test_hist_tv_rejects_bad_sample_shapes(shape):
    arr = np.zeros(shape, np.float32)
    if arr.ndim == 2 and arr.shape[1] == 2 and arr.shape[0] >= 1:
        return
    with pytest.raises(InputError, match="samples"):
        M.hist_tv(np.ones((2, 2)), arr)


def test_hist_tv_rejects_bad_probs():
    with pytest.raises(InputError, match="2-D"):
        M.hist_tv(np.ones(4), np.zeros((3, 2)))
    with pytest.raises(InputError, match="non-negative"):
        M.hist_tv(-np.ones((2, 2)), np.zeros((3, 2)))
    with pytest.raises(InputError, match="positive integer"):
        M.hist_tv_floor(np.ones((2, 2)), 0, key=jr.key(0))


# ---------------------------------------------------------------- energy, MMD, SW


def test_energy_distance_matches_scipy_in_1d_with_chunking():
    x = jr.normal(jr.key(0), (301, 1))
    y = jr.normal(jr.key(1), (157, 1)) * 1.3 + 0.2
    ref = ss.energy_distance(np.asarray(x[:, 0]), np.asarray(y[:, 0])) ** 2
    for block in (None, 16):  # one block, and blocks that divide neither n nor m
        assert float(M.energy_distance(x, y, block=block)) == pytest.approx(ref, rel=1e-4)


def test_energy_and_mmd_floor_closed_forms():
    # Between two samples of one law the V-statistics have means
    # E|X - X'| (1/n + 1/m) and (1 - E k(X, X')) (1/n + 1/m); for N(0, 1) in 1-D,
    # E|X - X'| = 2/sqrt(pi) and E k = (1 + 2/h^2)^(-1/2).
    n, m, h = 100, 150, 0.7

    def sample(k, size):
        return jr.normal(k, (size, 1))

    fe = M.two_sample_floor(M.energy_distance, sample, n, m, key=jr.key(3), repeats=60)
    truth = 2 / math.sqrt(math.pi) * (1 / n + 1 / m)
    assert abs(float(fe.mean) - truth) < 4 * float(fe.stderr)
    fm = M.two_sample_floor(
        functools.partial(M.mmd2, bandwidth=h), sample, n, m, key=jr.key(4), repeats=60
    )
    truth = (1 - (1 + 2 / h**2) ** -0.5) * (1 / n + 1 / m)
    assert abs(float(fm.mean) - truth) < 4 * float(fm.stderr)
    # The U-statistics are unbiased: mean zero between samples of one law.
    fu = M.two_sample_floor(
        functools.partial(M.energy_distance, unbiased=True), sample, n, m, key=jr.key(5), repeats=40
    )
    assert abs(float(fu.mean)) < 4 * float(fu.stderr)


def test_mmd_matches_dense_reference():
    x = np.asarray(jr.normal(jr.key(0), (90, 3)), np.float64)
    y = np.asarray(jr.normal(jr.key(1), (70, 3)), np.float64) + 0.4
    h = 1.1
    kern = lambda a, b: np.exp(-((a[:, None] - b[None]) ** 2).sum(-1) / (2 * h * h))  # noqa: E731
    kxx, kyy, kxy = kern(x, x), kern(y, y), kern(x, y)
    biased = kxx.mean() + kyy.mean() - 2 * kxy.mean()
    unb = (kxx.sum() - 90) / (90 * 89) + (kyy.sum() - 70) / (70 * 69) - 2 * kxy.mean()
    assert float(M.mmd2(x, y, bandwidth=h, block=32)) == pytest.approx(biased, rel=1e-4)
    assert float(M.mmd2(x, y, bandwidth=h, unbiased=True, block=32)) == pytest.approx(unb, rel=1e-3)
    # Median heuristic: the median distance between distinct pooled points.
    z = np.concatenate([x, y])
    d = np.sqrt(((z[:, None] - z[None]) ** 2).sum(-1))[np.triu_indices(len(z), 1)]
    assert float(M.median_bandwidth(x, y)) == pytest.approx(np.median(d), rel=1e-4)
    assert float(M.mmd2(x, y)) == pytest.approx(float(M.mmd2(x, y, bandwidth=np.median(d))), rel=1e-4)
    with pytest.raises(InputError, match="bandwidth"):
        M.mmd2(x, y, bandwidth=-1.0)


def test_wasserstein_1d_exact_for_unequal_sizes():
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=37), rng.normal(1.0, 2.0, size=23)
    w1 = float(M.wasserstein_1d(jnp.asarray(u), jnp.asarray(v), p=1))
    assert w1 == pytest.approx(ss.wasserstein_distance(u, v), rel=1e-4)
    # W2^2 with unequal sizes equals the equal-size formula on both samples replicated
    # to the common size n*m (the same empirical laws).
    uu, vv = np.sort(np.repeat(u, 23)), np.sort(np.repeat(v, 37))
    w2sq = float(M.wasserstein_1d(jnp.asarray(u), jnp.asarray(v), p=2))
    assert w2sq == pytest.approx(np.mean((uu - vv) ** 2), rel=1e-4)


def test_sliced_wasserstein_known_shift():
    # Shift by a vector t: every 1-D projection is shifted by theta.t, so the population
    # SW_2^2 = E (theta.t)^2 = |t|^2 / d for theta uniform on the sphere.
    x = jr.normal(jr.key(0), (500, 2))  # y = x + t exactly: only the directions are random
    t = jnp.array([0.6, -0.8])  # |t| = 1
    sw = float(M.sliced_wasserstein(x, x + t, key=jr.key(1), n_projections=512))
    assert sw == pytest.approx(math.sqrt(0.5), rel=0.05)
    assert float(M.sliced_wasserstein(x, x, key=jr.key(1))) == 0.0


MIX = dict(
    means=np.array([[0.5, 0.5], [-0.5, -0.5]]),
    covs=np.array([np.eye(2) * 0.16, np.eye(2) * 0.16]),
    weights=np.array([0.5, 0.5]),
)


@pytest.mark.parametrize("name", ["energy", "mmd", "sw"])
def test_two_sample_metrics_reach_floor_only_for_the_same_law(name):
    n = 600
    metric = {
        "energy": M.energy_distance,
        "mmd": functools.partial(M.mmd2, bandwidth=0.5),
        "sw": functools.partial(M.sliced_wasserstein, key=jr.key(7), n_projections=64),
    }[name]
    rng = np.random.default_rng(11)
    draws = [mixture_samples(rng, **MIX, n=n) for _ in range(12)]
    # The floor from a jit-safe sampler of the same law.
    floor = M.two_sample_floor(metric, _jax_mixture, n, key=jr.key(8), repeats=12)
    same = np.array([float(metric(draws[2 * i], draws[2 * i + 1])) for i in range(6)])
    se = math.sqrt(same.var(ddof=1) / 6 + float(floor.stderr) ** 2)
    assert abs(same.mean() - float(floor.mean)) < 4 * se
    shifted = float(metric(draws[0], draws[1] + np.float32(0.3)))
    assert shifted > float(floor.mean) + 10 * se


def _jax_mixture(key, n):
    kc, kz = jr.split(key)
    comp = jr.bernoulli(kc, 0.5, (n,))
    means = jnp.where(comp[:, None], 0.5, -0.5)
    return means + 0.4 * jr.normal(kz, (n, 2))


def test_pair_sums_never_build_the_n_by_m_matrix():
    n = 100_000  # the n x n matrix would take 40 GB; n * n also overflows int32
    x = jnp.zeros((n, 2))
    for fn, extra in ((_energy._energy, (False, None)), (_mmd._mmd2, (jnp.float32(1.0), False, None))):
        stats = fn.lower(x, x, *extra).compile().memory_analysis()
        if stats is None:
            pytest.skip("this backend reports no memory analysis")
        assert stats.temp_size_in_bytes < 64 * 2**20


def test_two_sample_metrics_reject_bad_input():
    with pytest.raises(InputError, match="same dimension"):
        M.energy_distance(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(InputError, match="shape"):
        M.mmd2(np.zeros(3), np.zeros((3, 1)))
    with pytest.raises(InputError, match="p must be"):
        M.sliced_wasserstein(np.zeros((3, 2)), np.zeros((3, 2)), key=jr.key(0), p=3)


# ---------------------------------------------------------------- mode weights


def test_mode_weights_of_exact_samples_match_weights():
    means = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.5]])
    covs = np.array([np.eye(2) * 0.3, [[0.4, 0.1], [0.1, 0.2]], np.eye(2) * 0.5])  # overlapping
    weights = np.array([0.2, 0.3, 0.5])
    n = 4000
    xs = mixture_samples(np.random.default_rng(0), means, covs, weights, n)
    soft = np.asarray(M.mode_weights((means, covs, weights), xs))
    assert soft.sum() == pytest.approx(1.0, abs=1e-5)
    # Each mean responsibility has variance below w (1 - w) / n.
    np.testing.assert_array_less(np.abs(soft - weights), 4 * np.sqrt(weights * (1 - weights) / n))
    # Hard assignment is biased when components overlap, but exact when they do not.
    far = mixture_samples(np.random.default_rng(1), means * 20, covs, weights, n)
    hard = np.asarray(M.mode_weights((means * 20, covs, weights), far, hard=True))
    np.testing.assert_array_less(np.abs(hard - weights), 4 * np.sqrt(weights * (1 - weights) / n))


def test_mode_weights_detect_collapse_and_accept_a_mixture():
    mix = GaussianMixture(MIX["means"], MIX["covs"], np.array([1.0, 1.0]))
    collapsed = mixture_samples(np.random.default_rng(2), MIX["means"][:1], MIX["covs"][:1], [1.0], 2000)
    w = np.asarray(M.mode_weights(mix, collapsed))
    # A point from component 1 is attributed to component 2 with probability
    # P(N(0, 1) > |mu1 - mu2| / (2 sd)) in expectation of the responsibility; well below 0.1.
    assert w[0] > 0.9 and w[1] < 0.1
    with pytest.raises(InputError, match="covariances"):
        M.mode_weights((MIX["means"], np.ones((3, 2)), MIX["weights"]), collapsed)
    with pytest.raises(InputError, match="columns"):
        M.mode_weights(mix, np.zeros((5, 3)))
    with pytest.raises(InputError, match="means"):
        M.mode_weights(object(), collapsed)


# ---------------------------------------------------------------- Fisher divergence


def _gauss_score(s0):
    # p = N(0, s0^2 I); p_sigma = N(0, (s0^2 + sigma^2) I).
    return lambda x, sigma: -x / (s0**2 + sigma**2)


def test_fisher_divergence_zero_for_exact_and_known_under_perturbation():
    s0, d, n = 0.5, 3, 3000
    sigmas = jnp.array([1.0, 0.3, 0.05])
    exact = _gauss_score(s0)
    data = s0 * jr.normal(jr.key(0), (n, d))
    xs = M.perturbed_points(jr.key(1), data, sigmas)
    assert xs.shape == (3, n, d)
    # Zero up to rounding: compiled twice, the two calls may fuse differently.
    np.testing.assert_allclose(np.asarray(M.fisher_divergence(exact, exact, xs, sigmas)), 0.0, atol=1e-10)
    # A constant offset c: exactly |c|^2 at every level.
    c = jnp.array([0.1, -0.2, 0.3])
    fd = M.fisher_divergence(lambda x, s: exact(x, s) + c, exact, xs, sigmas, batch_size=7)
    np.testing.assert_allclose(np.asarray(fd), float(c @ c), rtol=1e-5)
    # A relative error eps: eps^2 E|s|^2 = eps^2 d / (s0^2 + sigma^2), largest at small sigma.
    eps = 0.1
    fd = np.asarray(M.fisher_divergence(lambda x, s: (1 + eps) * exact(x, s), exact, xs, sigmas))
    truth = eps**2 * d / (s0**2 + np.asarray(sigmas) ** 2)
    np.testing.assert_allclose(fd, truth, rtol=0.08)  # MC error ~ sqrt(2 / (n d))
    # Shared points (n, d) at every level.
    shared = M.fisher_divergence(lambda x, s: exact(x, s) + c, exact, data, sigmas)
    assert shared.shape == (3,)
    with pytest.raises(InputError, match="xs must have shape"):
        M.fisher_divergence(exact, exact, xs[:2], sigmas)
