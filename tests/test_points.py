"""Point clouds (issue 16): the data-driven noise range, the ResMLP network for D >= 3,
and the D >= 3 metrics of `evaluate`, each against a known truth."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scorefield import ConfigError
from scorefield.data import load
from scorefield.data._dataset import Dataset, EmpiricalSampler
from scorefield.metrics import evaluate, marginal_ks, outside_shells, within_std_ratio
from scorefield.nets import ResMLP
from scorefield.noise import finest_scale, sigma_max_ncsnv2, sigma_min_from_data
from scorefield.targets import GaussianMixture
from scorefield.train import preset, resolve, train


def _clusters(n_clusters, dim, std, n, *, spread=3.0, seed=0):
    rng = np.random.default_rng(seed)
    means = rng.uniform(-spread, spread, (n_clusters, dim))
    return means[rng.integers(0, n_clusters, n)] + std * rng.normal(size=(n, dim))


# The finest scale reads the cluster width where a point's 10 neighbours spread over its
# cluster: a few dozen sample points per cluster in 2-D (the jittered set: 8,000
# points around 142 base points), or D >= 8. A factor of 2 either way is the requirement; a
# wrong normalisation (no sqrt(2D), or the nearest instead of the 10th neighbour) misses it.
@pytest.mark.parametrize("n_clusters, dim, std", [(142, 2, 0.012), (142, 2, 0.05), (8, 8, 0.5), (8, 32, 0.5),
                                                  (40, 4, 0.1)])
def test_finest_scale_reads_the_cluster_width(n_clusters, dim, std):
    x = _clusters(n_clusters, dim, std, 4096)
    got = finest_scale(x)
    assert std / 2 <= got <= 2 * std, (got, std)
    smin, why = sigma_min_from_data(x, sigma_max_ncsnv2(x))
    # the rule: finest scale / 4 inside [1e-4, 5e-3] x sigma_max, and it says which applied
    smax = sigma_max_ncsnv2(x)
    assert smin == pytest.approx(min(max(got / 4, 1e-4 * smax), 5e-3 * smax))
    assert "finest scale" in why and f"{smin:.4g}" in why


def test_finest_scale_is_proportional_to_the_data_and_rejects_too_few_points():
    x = _clusters(142, 2, 0.02, 4096)
    assert finest_scale(3.0 * x) == pytest.approx(3.0 * finest_scale(x), rel=1e-6)
    with pytest.raises(ConfigError):
        finest_scale(x[:5])


def test_image_densities_keep_their_range_and_points_get_the_data_rule():
    cfg = resolve(preset("default", data="mnist"), load("mnist"))
    # image densities: the preset's own ratio (the default recipe trains to 0.1% of sigma_max)
    assert cfg.sigma_min == pytest.approx(cfg.sigma_min_ratio * cfg.sigma_max)
    assert cfg.sigma_min_ratio == pytest.approx(1e-3)
    assert cfg.sampler["sigma_min"] == "auto"  # the recipe sampler's sample_sigma_min_ratio, not the data rule
    assert "image" in cfg.sigma_rule and "NCSNv2" in cfg.sigma_rule
    pts = _clusters(142, 2, 0.012, 8000).astype(np.float32)
    ds = Dataset("fine", 2, None, EmpiricalSampler(jnp.asarray(pts)), "test")
    cfg = resolve(preset("default", data="points:x.npy"), ds)
    scale = finest_scale(np.asarray(ds.sample(jax.random.split(jax.random.PRNGKey(0), 3)[2], 4096)))
    assert cfg.sigma_min == pytest.approx(scale / 4, rel=1e-5)
    assert cfg.sigma_min < 0.2 * 0.012  # resolves the 0.012 jitter (the former rule: ~0.04)
    assert cfg.sampler["sigma_min"] == pytest.approx(cfg.sigma_min)
    # given values are kept, and said to be given
    cfg = resolve(preset("default", data="points:x.npy", sigma_min=0.1, sigma_max=5.0), ds)
    assert (cfg.sigma_min, cfg.sigma_max) == (0.1, 5.0) and cfg.sigma_rule.count("given") == 2


def test_high_dim_values_apply_from_dimension_three_and_2d_resolves_as_before():
    from scorefield.train import PRESETS

    table = PRESETS["default"]["high_dim"]
    assert {"steps", "second_order"} <= set(table)
    base = {k: v for k, v in PRESETS["default"].items() if k not in ("high_dim", "energy")}
    assert any(base[k] != v for k, v in table.items())  # the table changes something
    pts = _clusters(8, 4, 0.5, 2000).astype(np.float32)
    ds4 = Dataset("c4", 4, None, EmpiricalSampler(jnp.asarray(pts)), "test")
    cfg = resolve(preset("default", data="points:x.npy"), ds4)
    # the recipe sampler's sigma_min "auto" is resolved to the data's rule, as on every point set
    assert {k: getattr(cfg, k) for k in table} == {**table, "sampler": {**table["sampler"], "sigma_min": cfg.sigma_min}}
    assert cfg.high_dim == {} and cfg.dim_rule.startswith("dimension 4 >= 3")
    assert all(f"{k} {v}" in cfg.dim_rule for k, v in table.items())
    # resolving again (a resolved config, e.g. from config.json) changes nothing
    again = resolve(cfg, ds4)
    assert {k: getattr(again, k) for k in table} == {k: getattr(cfg, k) for k in table} and again.dim_rule == cfg.dim_rule
    # a key the user sets wins on every dimension: a preset override, or TrainConfig.replace
    mine = resolve(preset("default", data="points:x.npy", steps=100), ds4)
    assert mine.steps == 100 and mine.second_order == table["second_order"]
    mine = resolve(preset("default", data="points:x.npy").replace(second_order=0.2), ds4)
    assert mine.second_order == 0.2 and mine.steps == table["steps"]
    assert "second_order" not in mine.dim_rule
    # 2-D point data (and so the 2-D toys and image densities) resolve as without the table
    pts2 = _clusters(142, 2, 0.012, 8000).astype(np.float32)
    ds2 = Dataset("fine", 2, None, EmpiricalSampler(jnp.asarray(pts2)), "test")
    for spec, ds in (("points:x.npy", ds2), ("mnist", load("mnist"))):
        got = resolve(preset("default", data=spec), ds).to_dict()
        assert got == resolve(preset("default", data=spec, high_dim={}), ds).to_dict()
        assert all(got[k] == v for k, v in base.items() if v != "auto" and k != "sampler")
        assert got["dim_rule"] == "" and got["high_dim"] == {}
    with pytest.raises(ConfigError, match="high_dim"):
        preset("default", high_dim={"dim": 3})
    with pytest.raises(ConfigError, match="steps"):
        preset("default", high_dim={"steps": 0})


def test_marginal_ks_against_scipy_and_its_extremes():
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 4))
    y = rng.normal(size=(200, 4)) + np.array([0.0, 0.3, 1.0, -0.2])
    got = np.asarray(marginal_ks(jnp.asarray(x), jnp.asarray(y)))
    want = [ks_2samp(x[:, d], y[:, d]).statistic for d in range(4)]
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert float(marginal_ks(x[:, :1], x[:, :1] + 100.0)[0]) == 1.0


def _mixture(dim, std=0.5, seed=0):
    means = jax.random.uniform(jax.random.PRNGKey(seed), (8, dim), minval=-4.0, maxval=4.0)
    return GaussianMixture(means, jnp.full((8, dim), std**2))


@pytest.mark.parametrize("dim", [3, 32])
def test_shell_fraction_and_spread_of_exact_and_distorted_draws(dim):
    from scipy.stats import chi2

    gm = _mixture(dim)
    n = 20_000
    x = gm.sample(jax.random.PRNGKey(1), n)
    # exact draws: each component's own points leave its 3-sigma ellipsoid with probability
    # 1 - erf(3/sqrt 2) = 0.27%, fewer leave all of them; binomial s.e. ~0.04%
    frac = float(outside_shells(gm, x))
    assert frac <= 0.0027 + 4 * math.sqrt(0.0027 / n)
    if dim == 32:  # well separated: only the own component counts
        assert frac == pytest.approx(0.0027, abs=4 * math.sqrt(0.0027 / n))
    assert float(within_std_ratio(gm, x)) == pytest.approx(1.0, abs=0.02)
    # spread each point about its own component's mean by 1.3: the shell fraction is then
    # P(chi2_D > q / 1.69) (well separated), the spread reads 1.3
    r = jnp.argmin(jnp.sum((x[:, None, :] - gm.means[None]) ** 2, -1), axis=1)
    wide = gm.means[r] + 1.3 * (x - gm.means[r])
    q = chi2.ppf(math.erf(3 / math.sqrt(2)), dim)
    if dim == 32:
        assert float(outside_shells(gm, wide)) == pytest.approx(chi2.sf(q / 1.69, dim), abs=0.01)
    assert float(within_std_ratio(gm, wide)) == pytest.approx(1.3, rel=0.03)
    assert float(within_std_ratio(gm, gm.means[r] + 0.9 * (x - gm.means[r]))) == pytest.approx(0.9, rel=0.03)


def test_evaluate_adds_the_point_metrics_from_dimension_three():
    gm = _mixture(4)
    ds = Dataset("gmm4", 4, gm, gm, "test")
    good = gm.sample(jax.random.PRNGKey(5), 1000)
    r = evaluate(ds, good, key=jax.random.PRNGKey(0), repeats=4, max_points=500)
    for name in ("marginal_ks_max", "marginal_ks_mean", "outside_shells", "within_std_ratio", "mode_weights_max_error"):
        assert name in r and name + "_floor" in r
    assert len(r["marginal_ks"]) == 4
    # exact samples sit at their floor; samples missing half the components do not
    assert r["marginal_ks_max"] < 3 * r["marginal_ks_max_floor"]
    # samples missing half the components, as many as `good` (the second call then reuses
    # every program the first compiled: 16 of the test's 33 s on the loaded machine)
    near = good[np.asarray(jnp.argmin(jnp.sum((good[:, None] - gm.means[None]) ** 2, -1), axis=1) < 4)]
    bad = near[np.arange(good.shape[0]) % near.shape[0]]
    rb = evaluate(ds, bad, key=jax.random.PRNGKey(0), repeats=4, max_points=500)
    assert rb["mode_weights_max_error"] > 0.1 > r["mode_weights_max_error"]
    r2 = evaluate(load("toy:8gaussians"), np.asarray(good[:, :2]), key=jax.random.PRNGKey(0), repeats=2, max_points=200)
    assert "marginal_ks_max" not in r2


# --- the network -------------------------------------------------------------------

MEAN5 = np.array([0.5, -1.0, 2.0, 0.0, 1.0])
CHOL5 = np.array([[1.0, 0, 0, 0, 0], [0.5, 0.4, 0, 0, 0], [0, 0.3, 0.6, 0, 0], [0.2, 0, 0, 1.5, 0],
                  [0, 0, 0.4, -0.3, 0.3]])
COV5 = CHOL5 @ CHOL5.T


class Gauss5(eqx.Module):
    spec: str = eqx.field(static=True, default="gauss5")
    dim: int = eqx.field(static=True, default=5)
    target = None

    def sample(self, key, n):
        return jnp.asarray(MEAN5, jnp.float32) + jax.random.normal(key, (n, 5)) @ jnp.asarray(CHOL5.T, jnp.float32)


def _exact5(x, sigma):
    return -np.linalg.solve(COV5 + sigma**2 * np.eye(5), (x - MEAN5).T).T


def test_untrained_resmlp_is_the_smoothed_gaussian_score():
    net = ResMLP(5, width=16, depth=2, centre=jnp.asarray(MEAN5, jnp.float32), sigma_data=0.8, key=jax.random.PRNGKey(0))
    x = jnp.asarray(Gauss5().sample(jax.random.PRNGKey(1), 50))
    for s in (0.01, 1.0, 30.0):
        got = np.asarray(jax.vmap(net, (0, None))(x, jnp.float32(s)))
        np.testing.assert_allclose(got, -(np.asarray(x) - MEAN5) / (s**2 + 0.64), rtol=1e-5, atol=1e-6)


# DSM's minimiser is the score of the data smoothed by sigma, -(C + sigma^2 I)^{-1}(x - m),
# exact for a Gaussian. Tolerance: relative L2 error over data points below 0.15 at three
# levels (0.1 to 1.5; trained from 0.05), as the 2-D test of every objective
# (tests/test_train.py). 750 steps reach 0.092, 0.050, 0.023 at 0.1, 0.3, 1.5 (1,500 steps:
# 0.077, 0.042, 0.019, at twice the time; batch 128 instead: 0.11-0.12 at 0.1). The correlated, unequal
# covariance (eigenvalues 0.04 to 2.6) makes the untrained network (the isotropic Gaussian
# score it starts from) miss by 0.5-0.9 at the small levels, so the bound is only met by
# learning; a sign or sigma-power error in the preconditioning gives errors of order 1.
@pytest.mark.slow  # ~10 s idle, 2 minutes on the shared machine
def test_resmlp_recovers_the_smoothed_score_of_a_5d_gaussian(tmp_path):
    cfg = preset("fast", data="gauss5", net="resmlp", width=64, depth=2, steps=750, batch_size=256, lr=3e-3,
                 ema_decay=0.99, sigma_max=5.0, sigma_min=0.05, steps_per_call=250, checkpoint_every=750)
    run = train(cfg, tmp_path / "r", dataset=Gauss5(), progress=False)
    x = np.asarray(Gauss5().sample(jax.random.PRNGKey(7), 500))
    untrained = ResMLP(5, width=8, depth=1, centre=jnp.asarray(run.config.centre), sigma_data=run.config.sigma_data,
                       key=jax.random.PRNGKey(0))
    for s in (0.1, 0.3, 1.5):
        want = _exact5(x, s)
        got = np.asarray(jax.vmap(run.score_fn(), (0, None))(jnp.asarray(x), s))
        rel = np.linalg.norm(got - want) / np.linalg.norm(want)
        base = np.asarray(jax.vmap(untrained, (0, None))(jnp.asarray(x), jnp.float32(s)))
        rel0 = np.linalg.norm(base - want) / np.linalg.norm(want)
        assert rel < 0.15, (s, rel)
        assert s > 1 or rel0 > 0.4, (s, rel0)
