import jax
import numpy as np
import pytest

from scorefield import ConfigError
from scipy.stats import norm

from scorefield.noise import geometric, log_normal, log_uniform, nearest_level, sigma_max_ncsnv2


def test_geometric_grid_endpoints_and_constant_ratio():
    s = np.asarray(geometric(1.0, 1e-4, 30))
    assert s.shape == (30,)
    assert s[0] == pytest.approx(1.0) and s[-1] == pytest.approx(1e-4, rel=1e-5)
    ratios = s[1:] / s[:-1]
    np.testing.assert_allclose(ratios, (1e-4) ** (1 / 29), rtol=1e-5)
    # the reference counts levels upward from the smallest: its level 17 (sigma ~ 0.022,
    # SPEC section 2, item 7) is our index 29 - 17 in the descending grid
    assert s[29 - 17] == pytest.approx(0.0221, rel=0.01)


@pytest.mark.parametrize("args", [(1.0, 0.0, 10), (1.0, 2.0, 10), (1.0, 0.1, 0), (float("nan"), 0.1, 3)])
def test_geometric_rejects_bad_ranges(args):
    with pytest.raises(ConfigError):
        geometric(*args)


def test_sigma_max_rule_is_largest_pairwise_distance():
    pts = np.array([[0.0, 0.0], [3.0, 4.0], [1.0, 1.0], [-1.0, 0.5]])
    expected = max(np.linalg.norm(a - b) for a in pts for b in pts)
    assert sigma_max_ncsnv2(pts) == pytest.approx(expected)


def test_log_uniform_covers_scales_evenly():
    s = np.asarray(log_uniform(jax.random.PRNGKey(0), 1e-3, 1.0, 200_000))
    assert s.min() >= 1e-3 and s.max() <= 1.0
    # each decade gets a third of the mass: binomial s.e. ~ 0.001
    frac = [np.mean((s >= lo) & (s < lo * 10)) for lo in (1e-3, 1e-2, 1e-1)]
    np.testing.assert_allclose(frac, 1 / 3, atol=0.006)


def test_log_normal_is_the_truncated_law_of_ln_sigma():
    key = jax.random.PRNGKey(1)
    # a range far wider than the spread: ln sigma ~ N(ln 0.15, 1.2^2), mean and std to 0.01
    s = np.log(np.asarray(log_normal(key, 0.15, 1.2, 1e-6, 1e4, 200_000)))
    assert abs(s.mean() - np.log(0.15)) < 0.01 and abs(s.std() - 1.2) < 0.01
    # a range that cuts the law: every draw inside it, and the mass below the median is the
    # truncated normal's (Phi(0) - Phi(a)) / (Phi(b) - Phi(a)), binomial s.e. ~ 0.001
    lo, hi = 0.05, 2.0
    s = np.asarray(log_normal(key, 0.15, 1.2, lo, hi, 200_000))
    assert s.min() >= lo and s.max() <= hi
    a, b = np.log(lo / 0.15) / 1.2, np.log(hi / 0.15) / 1.2
    expected = (norm.cdf(0.0) - norm.cdf(a)) / (norm.cdf(b) - norm.cdf(a))
    assert np.mean(s < 0.15) == pytest.approx(expected, abs=0.005)
    assert abs(expected - 0.5) > 0.05  # the cut is asymmetric, so the check can fail


def test_nearest_level_in_log_scale():
    s = geometric(1.0, 0.01, 3)  # 1, 0.1, 0.01
    assert int(nearest_level(s, 0.3)) == 1  # log-closer to 0.1 than to 1
    assert int(nearest_level(s, 0.5)) == 0
    assert int(nearest_level(s, 1e-5)) == 2
