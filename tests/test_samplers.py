"""Samplers against known truth: NCSN toy mode weights, exact mixture moments, divergence."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import scorefield.samplers as S
from scorefield import ConfigError, DivergenceError


# A 2-D isotropic Gaussian mixture with closed-form sigma-smoothed log-density, score and
# moments (test-local so these tests do not depend on scorefield.targets).
class Mixture:
    def __init__(self, weights, means, stds):
        self.w = jnp.asarray(weights, jnp.float32)
        self.mu = jnp.asarray(means, jnp.float32)
        self.sd = jnp.asarray(stds, jnp.float32)

    def log_prob(self, x, sigma=0.0):
        var = self.sd**2 + sigma**2
        d = x.shape[-1]
        return jax.nn.logsumexp(
            jnp.log(self.w) - 0.5 * jnp.sum((x - self.mu) ** 2, -1) / var - 0.5 * d * jnp.log(2 * jnp.pi * var)
        )

    def score(self, x, sigma):
        return jax.grad(self.log_prob)(x, sigma)

    def moments(self, sigma=0.0):
        w, mu, var = (np.asarray(a, np.float64) for a in (self.w, self.mu, self.sd**2 + sigma**2))
        m = w @ mu
        c = sum(w[k] * (var[k] * np.eye(2) + np.outer(mu[k], mu[k])) for k in range(len(w))) - np.outer(m, m)
        return m, c

    def sample(self, key, n, sigma=0.0):
        k1, k2 = jax.random.split(key)
        comp = jax.random.choice(k1, len(self.w), (n,), p=self.w)
        sd = jnp.sqrt(self.sd[comp] ** 2 + sigma**2)[:, None]
        return np.asarray(self.mu[comp] + sd * jax.random.normal(k2, (n, 2)))


def assert_moments(x, m, c, z=5.0):
    """Mean and covariance within z Monte-Carlo standard errors (estimated from x)."""
    n = len(x)
    dm = (x.mean(0) - m) / (x.std(0) / np.sqrt(n))
    xc = x - x.mean(0)
    prod = xc[:, :, None] * xc[:, None, :]
    dc = (prod.mean(0) - c) / (prod.std(0) / np.sqrt(n))
    assert np.all(np.abs(dm) < z), f"mean {x.mean(0)} vs {m}: z={dm}"
    assert np.all(np.abs(dc) < z), f"cov {prod.mean(0).ravel()} vs {c.ravel()}: z={dc.ravel()}"


# Overlapping modes so that every sampler mixes within a short test run.
MIX = Mixture([0.3, 0.7], [[-1.0, 0.5], [1.5, -0.5]], [0.6, 0.8])
N = 2000


# --- the NCSN toy experiment (Song and Ermon 2019, appendix B.1) ---------------------------
NCSN = Mixture([0.2, 0.8], [[-5.0, -5.0], [5.0, 5.0]], [1.0, 1.0])
N_TOY = 1280
SE_TOY = np.sqrt(0.8 * 0.2 / N_TOY)  # binomial standard error of the weight, about 0.011


def weight_55(x):
    return float(np.mean(x.sum(1) > 0))


def test_ncsn_toy_plain_langevin_misestimates_weight():
    # Particles start uniform on [-8, 8]^2, so about half sit in each basin, and with a
    # barrier of depth ~12 nats between the modes T=1000 steps of eta=0.1 cannot move them.
    r = S.sample(S.Langevin(0.0, 0.1, 1000), NCSN.score, jax.random.key(0), n=N_TOY, init=S.UniformInit(-8, 8), dim=2)
    w = weight_55(r.samples)
    assert abs(w - 0.8) > 10 * SE_TOY, w
    assert abs(w - 0.5) < 5 * np.sqrt(0.25 / N_TOY), w
    assert r.n_score_evals_per_sample == 1000


def test_ncsn_toy_annealed_langevin_recovers_weight():
    sampler = S.AnnealedLangevin(S.geometric(20.0, 1.0, 10), steps_per_level=100, eps=0.1)
    r = S.sample(sampler, NCSN.score, jax.random.key(1), n=N_TOY, init=S.UniformInit(-8, 8), dim=2)
    w = weight_55(r.samples)
    assert abs(w - 0.8) < 4 * SE_TOY, w
    assert r.n_score_evals_per_sample == 10 * 100 + 1  # plus the denoising step


# --- every sampler on exact scores: mean and covariance within Monte-Carlo error --------------
SCORE_SAMPLERS = {
    "langevin": (S.Langevin(0.05, 0.01, 1500), 0.05, dict(init=S.GaussianInit(2.0))),
    "annealed": (S.AnnealedLangevin(S.geometric(5.0, 0.1, 10), 200, eps=0.02, denoise=False), 0.1, {}),
    "pc": (S.PredictorCorrector(S.geometric(5.0, 0.01, 300)), 0.0, {}),
    "uhmc": (S.UnderdampedLangevin(0.05, 0.1, 300, n_leapfrog=5, friction=None), 0.05, dict(init=S.GaussianInit(2.0))),
    "underdamped": (S.UnderdampedLangevin(0.05, 0.05, 1500, friction=1.0), 0.05, dict(init=S.GaussianInit(2.0))),
}


@pytest.mark.parametrize("name", SCORE_SAMPLERS)
def test_score_samplers_match_mixture_moments(name):
    sampler, sigma, kw = SCORE_SAMPLERS[name]
    r = S.sample(sampler, MIX.score, jax.random.key(2), n=N, dim=2, **kw)
    assert r.samples.shape == (N, 2) and r.samples.dtype == np.float32
    assert_moments(r.samples, *MIX.moments(sigma))


def test_probability_flow_ode_carries_prior_to_target():
    sigma_max, sigma_min = 30.0, 0.01
    ode = S.ProbabilityFlowODE(sigma_max, sigma_min, rtol=1e-5, atol=1e-5)
    # Exact draws from p_{sigma_max}: the flow maps them to p_{sigma_min} exactly, so any
    # mismatch is solver error.
    x0 = MIX.sample(jax.random.key(3), N, sigma_max)
    r = S.sample(ode, MIX.score, jax.random.key(4), n=N, init=x0)
    assert_moments(r.samples, *MIX.moments(sigma_min))
    # The deterministic map is monotone here: it must not mix up the prior's ordering by much.
    assert np.corrcoef(x0[:, 0], r.samples[:, 0])[0, 1] > 0.5
    # From the sampler's own prior N(centre, sigma_max^2 I), centred on the data mean.
    m, _ = MIX.moments()
    r2 = S.sample(ode, MIX.score, jax.random.key(5), n=N, dim=2, init=S.GaussianInit(sigma_max, m))
    assert_moments(r2.samples, *MIX.moments(sigma_min))
    assert 20 < r2.n_score_evals_per_sample < 2000


LOGP_SAMPLERS = {
    "mala": S.MALA(0.1, 500),
    "hmc": S.HMC(0.2, 150, n_leapfrog=10),
    "nuts": S.NUTS(0.5, 30),
}


@pytest.mark.parametrize("name", LOGP_SAMPLERS)
def test_mcmc_samplers_match_mixture_moments(name):
    n = 500 if name == "nuts" else N
    r = S.sample(LOGP_SAMPLERS[name], None, jax.random.key(6), n=n, dim=2, init=S.GaussianInit(2.0), log_prob=MIX.log_prob)
    assert_moments(r.samples, *MIX.moments())
    assert r.n_score_evals_per_sample >= LOGP_SAMPLERS[name].n_steps


def test_log_density_sampler_without_log_prob_is_a_clear_error():
    with pytest.raises(ConfigError, match="needs a log-density"):
        S.sample(S.MALA(0.1, 10), MIX.score, jax.random.key(0), n=4, dim=2, init=S.GaussianInit(1.0))


# --- runner behaviour ---------------------------------------------------------------------
def test_results_do_not_depend_on_chunking_and_trajectory_is_thinned():
    sampler = S.AnnealedLangevin(S.geometric(3.0, 0.3, 3), steps_per_level=10, eps=0.05)
    whole = S.sample(sampler, MIX.score, jax.random.key(7), n=50, dim=2)
    parts = S.sample(sampler, MIX.score, jax.random.key(7), n=50, dim=2, chunk_size=16, trajectory_every=5,
                     max_steps_per_call=5)
    np.testing.assert_array_equal(whole.samples, parts.samples)
    # start + 3 levels x 2 frames + final samples
    assert parts.trajectory.shape == (1 + 3 * 2 + 1, 50, 2)
    assert [tuple(i) for i in parts.trajectory_index[:3]] == [(-1, 0), (0, 4), (0, 9)]
    np.testing.assert_array_equal(parts.trajectory[-1], parts.samples)
    assert whole.trajectory is None


def test_divergence_stops_with_level_and_step():
    # Score of N(0, s^2) with a step far beyond stability: |1 - eta/(2 s^2)| > 1 grows
    # geometrically and overflows float32 within the second level.
    def score(x, sigma):
        return -x / 0.01**2

    sampler = S.AnnealedLangevin(jnp.asarray([1.0, 0.5, 0.25]), steps_per_level=400, eps=0.01)
    with pytest.raises(DivergenceError) as e:
        S.sample(sampler, score, jax.random.key(8), n=64, dim=2)
    assert e.value.level == 0 and 0 < e.value.step < 400
    assert "level 0" in str(e.value) and f"step {e.value.step}" in str(e.value)


def test_divergence_of_one_particle_in_a_later_level():
    # Far to the right the score is 0 (the particle only diffuses), and NaN once sigma < 0.6
    # (level 2): one particle out of 8 diverges at the first step of level 2.
    def score(x, sigma):
        return jnp.where(x[0] > 20.0, jnp.where(sigma < 0.6, jnp.nan, 0.0), -x)

    sampler = S.AnnealedLangevin(jnp.asarray([1.0, 0.7, 0.5]), steps_per_level=20, eps=0.5)
    init = np.zeros((8, 2), np.float32)
    init[5] = [100.0, 0.0]
    with pytest.raises(DivergenceError) as e:
        S.sample(sampler, score, jax.random.key(9), n=8, init=init)
    assert (e.value.level, e.value.step) == (2, 0)


def test_divergence_inside_a_split_level_names_the_exact_step():
    # Level 1 moves every particle right by exactly 1 per step (noise ~1e-4) and the score is
    # NaN once x > 12.5, so the first non-finite position is at level 1, step 13, in the third
    # of four calls of that level; the fourth call is already dispatched when it is checked.
    eps = 1e-8

    def score(x, sigma):
        eta = eps * (sigma / 0.6) ** 2  # the step size of this level
        drift = jnp.where(sigma < 0.9, 2.0 / eta, 0.0)
        return jnp.where(x[0] > 12.5, jnp.nan, jnp.asarray([drift, 0.0]))

    sampler = S.AnnealedLangevin(jnp.asarray([1.0, 0.8, 0.6]), steps_per_level=20, eps=eps)
    for kw in ({}, {"block_size": 3, "chunk_size": 5}):
        with pytest.raises(DivergenceError) as e:
            S.sample(sampler, score, jax.random.key(3), n=8, init=np.zeros(2, np.float32), max_steps_per_call=5, **kw)
        assert (e.value.level, e.value.step) == (1, 13)
        assert "level 1 of 0..2" in str(e.value) and "step 13 of 0..19" in str(e.value)


def test_results_are_bitwise_independent_of_block_and_chunk_size():
    # A matmul network: the block shape reaches XLA's dot kernels, which must not change a bit.
    import equinox as eqx

    mlp = eqx.nn.MLP(3, 2, 32, 1, activation=jax.nn.softplus, key=jax.random.key(0))

    def score(x, sigma):
        return mlp(jnp.concatenate([x, jnp.log(sigma)[None]])) - x

    sampler = S.AnnealedLangevin(S.geometric(2.0, 0.2, 3), steps_per_level=4, eps=0.01)
    ref = S.sample(sampler, score, jax.random.key(5), n=300, dim=2).samples
    for kw in ({"block_size": 7, "chunk_size": 100}, {"block_size": 64}):
        np.testing.assert_array_equal(S.sample(sampler, score, jax.random.key(5), n=300, dim=2, **kw).samples, ref)


def test_default_block_size_follows_devices_and_cores(monkeypatch):
    from types import SimpleNamespace

    from scorefield.samplers import _runner

    cpu, gpu = SimpleNamespace(platform="cpu"), SimpleNamespace(platform="gpu")
    monkeypatch.setattr(_runner, "_cpu_count", lambda: 2)
    assert _runner.default_block_size([cpu]) == 2048  # one device, two cores: big enough to thread
    assert _runner.default_block_size([cpu, cpu]) == 512  # one core each: small, cache-resident
    monkeypatch.setattr(_runner, "_cpu_count", lambda: 16)
    assert _runner.default_block_size([cpu] * 2) == 2 * 8 * 1024
    assert _runner.default_block_size([gpu]) is None  # accelerators: one block per chunk
    with pytest.raises(ConfigError, match="block_size"):
        S.sample(S.Langevin(0.1, 0.05, 2), MIX.score, jax.random.key(0), n=4, dim=2, init=S.GaussianInit(1.0),
                 block_size=0)


def test_ncsnv2_eps_matches_paper_values():
    # Song and Ermon 2020, CIFAR-10: sigma 50 -> 0.01, L = 232, T = 5, eps = 6.2e-6 in their
    # x + eps s + sqrt(2 eps) z convention (ours is twice that).
    assert S.ncsnv2_eps(S.geometric(50.0, 0.01, 232), 5) / 2 == pytest.approx(6.2e-6, rel=0.01)
    # CelebA 64: sigma 90 -> 0.01, L = 500, T = 5, eps = 3.3e-6.
    assert S.ncsnv2_eps(S.geometric(90.0, 0.01, 500), 5) / 2 == pytest.approx(3.3e-6, rel=0.02)
    # More steps per level allow a smaller step.
    assert S.ncsnv2_eps(S.geometric(20.0, 1.0, 10), 1000) < S.ncsnv2_eps(S.geometric(20.0, 1.0, 10), 10)
    assert S.AnnealedLangevin(S.geometric(20.0, 1.0, 10), 100).eps == S.ncsnv2_eps(S.geometric(20.0, 1.0, 10), 100)


@pytest.mark.parametrize(
    "make",
    [
        lambda: S.AnnealedLangevin([1.0, 2.0], 10),
        lambda: S.AnnealedLangevin([1.0, 0.5], 0),
        lambda: S.Langevin(0.1, -1.0, 10),
        lambda: S.PredictorCorrector([1.0, 0.1], snr=0.0),
        lambda: S.ProbabilityFlowODE(0.1, 1.0),
        lambda: S.UniformInit(1.0, -1.0),
        lambda: S.geometric(1.0, 0.0, 3),
    ],
)
def test_bad_hyperparameters_raise_config_error(make):
    with pytest.raises(ConfigError):
        make()


def test_runner_input_errors():
    lang = S.Langevin(0.1, 0.01, 5)
    with pytest.raises(ConfigError, match="no prior"):
        S.sample(lang, MIX.score, jax.random.key(0), n=4, dim=2)
    with pytest.raises(ConfigError, match="dim"):
        S.sample(lang, MIX.score, jax.random.key(0), n=4, init=S.GaussianInit(1.0))
    with pytest.raises(ConfigError, match="n=0"):
        S.sample(lang, MIX.score, jax.random.key(0), n=0, dim=2, init=S.GaussianInit(1.0))
    from scorefield import InputError

    with pytest.raises(InputError, match="init"):
        S.sample(lang, MIX.score, jax.random.key(0), n=4, init=np.zeros((3, 2)))


