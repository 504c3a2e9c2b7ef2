"""Energy networks and the Metropolis samplers that use their log-density: the score is the
energy's gradient, an energy set to an exact -log p samples like the exact target, training
recovers a known smoothed score, annealed MALA recovers the NCSN mode weight."""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import scorefield.samplers as S
from _gauss import COV, MEAN, exact_score, gauss_data
from scorefield.losses import DenoisingScoreMatching, ExactScoreMatching
from scorefield.nets import trainable
from scorefield.nets._energy import EnergyNet

BACKBONES = {
    "grid": lambda k: EnergyNet(2, backbone="grid", resolutions=(5, 9, 17), width=16, depth=2,
                                centre=jnp.array([0.2, -0.1]), half_width=2.0, key=k),
    "fourier": lambda k: EnergyNet(3, backbone="fourier", n_features=32, feature_scale=1.0, width=32, depth=2, key=k),
}


@eqx.filter_jit
def _randomised(net, key):
    """`net` with every trainable array perturbed, so that the trunk's term is far from 0
    (at initialisation its last layer is small) and a wrong gradient would show."""
    params, static = eqx.partition(net, trainable(net))
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, len(leaves))
    leaves = [a + 0.3 * jax.random.normal(k, a.shape, a.dtype) for a, k in zip(leaves, keys)]
    return eqx.combine(jax.tree_util.tree_unflatten(tree, leaves), static)


@pytest.mark.slow  # 56 s (fourier) and 119 s (grid) on the loaded 2-core machine
@pytest.mark.parametrize("backbone", BACKBONES)
def test_score_is_minus_the_gradient_of_the_energy(backbone):
    net = _randomised(BACKBONES[backbone](jax.random.PRNGKey(0)), jax.random.PRNGKey(1))
    d = net.centre.shape[0]
    x = 0.7 * jax.random.normal(jax.random.PRNGKey(2), (6, d))
    sigmas = jnp.array([0.03, 0.4, 3.0])
    # every (point, sigma) pair at once, compiled: score, energy, log-density
    both = eqx.filter_jit(lambda n, x, s: jax.vmap(lambda s: jax.vmap(lambda y: (n(y, s), n.energy(y, s), n.log_prob(y, s)))(x))(s))
    score, energy, logp = both(net, x, sigmas)
    assert score.shape == (3, 6, d) and energy.shape == (3, 6) and bool(jnp.all(jnp.isfinite(score)))
    np.testing.assert_array_equal(np.asarray(logp), -np.asarray(energy))
    # central differences of the energy in float64 (the same network, cast)
    with jax.enable_x64(True):
        net64 = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, net)
        h = 1e-5
        steps = h * np.eye(d)  # (d, d): +- h along each axis
        x64 = np.asarray(x, np.float64)[None, :, None, :] + np.stack([steps, -steps])[:, None]  # (2, 6, d, d)
        f = eqx.filter_jit(lambda n, y, s: jax.vmap(lambda s: jax.vmap(jax.vmap(jax.vmap(lambda z: n.energy(z, s))))(y))(s))
        e = np.asarray(f(net64, jnp.asarray(x64), jnp.asarray(sigmas, jnp.float64)))  # (3, 2, 6, d)
        fd = (e[:, 0] - e[:, 1]) / (2 * h)  # (3, 6, d)
    for i in range(3):
        s, fd_i = score[i], fd[i]
        scale = np.max(np.abs(fd_i))
        np.testing.assert_allclose(np.asarray(s, np.float64), -fd_i, atol=2e-4 * scale, rtol=1e-3)


def _exact_gaussian_energy(prior_scale: float, centre):
    """An EnergyNet whose trunk outputs exactly 0: E = 0.5 |x - c|^2 / (sigma^2 + s^2),
    the exact -log density (up to a constant) of N(c, s^2 I) smoothed by sigma."""
    net = EnergyNet(2, width=16, depth=1, resolutions=(4, 8), centre=jnp.asarray(centre), half_width=1.0,
                    prior_scale=prior_scale, key=jax.random.PRNGKey(0))
    return eqx.tree_at(lambda n: n.trunk.out.weight, net, jnp.zeros_like(net.trunk.out.weight))


def _moments_ok(x, mean, var, z=5.0):
    n = len(x)
    dm = (x.mean(0) - mean) / np.sqrt(var / n)
    dv = (x.var(0) - var) / (var * np.sqrt(2.0 / n))
    assert np.all(np.abs(dm) < z), (x.mean(0), mean, dm)
    assert np.all(np.abs(dv) < z), (x.var(0), var, dv)


@pytest.mark.slow  # 118 s on the loaded 2-core machine
def test_energy_set_to_an_exact_log_density_samples_like_the_exact_target():
    c, s0, sigma = np.array([1.0, -0.5]), 0.7, 0.3
    net = _exact_gaussian_energy(s0, c)
    exact = lambda x, s: -0.5 * jnp.sum((x - c) ** 2) / (s**2 + s0**2)  # noqa: E731
    x = jax.random.normal(jax.random.PRNGKey(1), (20, 2))
    # the same log-density up to a constant, and the same score
    pair = eqx.filter_jit(lambda n, x: jax.vmap(lambda y: (n.log_prob(y, sigma) - exact(y, sigma), n(y, sigma),
                                                              jax.grad(exact)(y, sigma)))(x))
    diff, s_net, s_exact = pair(net, x)
    assert float(jnp.ptp(diff)) < 1e-5
    np.testing.assert_allclose(np.asarray(s_net), np.asarray(s_exact), rtol=1e-5, atol=1e-6)
    var = s0**2 + sigma**2
    n = 2000
    for log_p in (lambda y: exact(y, sigma), lambda y: net.log_prob(y, sigma)):
        r = S.sample(S.MALA(0.3, 200, sigma=sigma), None, jax.random.key(2), n=n, dim=2,
                     init=S.GaussianInit(2.0), log_prob=log_p)
        _moments_ok(r.samples, c, var)
        assert 0.3 < float(r.acceptance[0]) < 1.0
    # annealed MALA on the energy at every level ends at p_{sigma_min} (no denoising)
    sam = S.AnnealedMALA(S.geometric(3.0, sigma, 6), steps_per_level=20, denoise=False)
    r = S.sample(sam, None, jax.random.key(3), n=n, dim=2, init=S.GaussianInit(3.0, jnp.asarray(c)), log_prob=net.log_prob)
    _moments_ok(r.samples, c, var)
    acc = r.acceptance
    assert acc.shape == (6,) and np.all((acc > 0.45) & (acc < 0.8)), acc  # adapted toward 0.6


def test_annealed_mala_recovers_the_ncsn_mode_weight_and_counts_evaluations():
    # NCSN toy (Song and Ermon 2019): 0.2 N((-5,-5), I) + 0.8 N((5,5), I), started uniform on
    # [-8, 8]^2 where plain Langevin keeps ~0.5 in each basin (tests/test_samplers.py)
    w = jnp.array([0.2, 0.8])
    mu = jnp.array([[-5.0, -5.0], [5.0, 5.0]])

    def log_p(x, sigma):
        var = 1.0 + sigma**2
        return jax.nn.logsumexp(jnp.log(w) - 0.5 * jnp.sum((x - mu) ** 2, -1) / var - jnp.log(var))

    n, L, T = 1280, 10, 10
    sam = S.AnnealedMALA(S.geometric(20.0, 1.0, L), steps_per_level=T)
    r = S.sample(sam, None, jax.random.key(1), n=n, init=S.UniformInit(-8, 8), dim=2, log_prob=log_p)
    weight = float(np.mean(r.samples.sum(1) > 0))
    assert abs(weight - 0.8) < 4 * np.sqrt(0.16 / n), weight
    # T MALA steps per level, one re-evaluation at each new level, one denoising step
    assert r.n_score_evals_per_sample == L * T + L + 1
    assert "acceptance per level" in S.acceptance_summary(sam, r.acceptance)


def test_collapsed_acceptance_is_reported_with_its_level():
    sam = S.AnnealedMALA(S.geometric(2.0, 0.01, 4), steps_per_level=5, step_size=5.0, denoise=False)
    r = S.sample(sam, None, jax.random.key(0), n=200, dim=2, init=S.GaussianInit(2.0),
                 log_prob=lambda x, s: -0.5 * jnp.sum(x**2) / (s**2 + 0.01))
    text = S.acceptance_summary(sam, r.acceptance)
    assert "collapsed" in text and "level 0 (sigma=2)" in text, text
    ok = S.acceptance_summary(sam, np.array([0.6, 0.5, 0.55, 0.7]))
    assert "collapsed" not in ok and "0.60 0.50 0.55 0.70" in ok


def test_exact_score_matching_differentiates_through_the_energy_gradient():
    # the exact objective needs the Jacobian of the score, i.e. the Hessian of the energy:
    # for the exact Gaussian energy, tr J = -D / v and |s|^2 = |x - c|^2 / v^2 (v = sigma^2 + s^2)
    c, s0, sigma = np.array([0.3, 0.1]), 0.5, 0.2
    net = _exact_gaussian_energy(s0, c)
    x = jax.random.normal(jax.random.PRNGKey(0), (64, 2))
    v = sigma**2 + s0**2
    loss = eqx.filter_jit(lambda n, x: ExactScoreMatching(sigma=0.0)(lambda y, s: n(y, jnp.asarray(sigma)), x,
                                                                      key=jax.random.PRNGKey(1)))
    got = loss(net, x)
    want = np.mean(-2 / v + 0.5 * np.sum((np.asarray(x) - c) ** 2, -1) / v**2)
    assert float(got) == pytest.approx(want, rel=1e-4)


@pytest.mark.slow
def test_training_an_energy_network_recovers_the_smoothed_gaussian_score():
    # DSM with continuous levels, as the default recipe; the minimiser is the exact smoothed
    # score -(C + sigma^2 I)^{-1}(x - m). Same tolerance as tests/test_train.py (0.15).
    # 1,000 steps reach 0.085, 0.041, 0.028 at sigma 0.05, 0.2, 0.5 and 0.038 on the log-
    # density (1,500: 0.065, 0.024, 0.023 and 0.022, at 1.5 times the time; 750: 0.096 at 0.05)
    data = gauss_data()
    net = EnergyNet(2, width=32, depth=2, resolutions=(8, 16), centre=jnp.asarray(MEAN, jnp.float32),
                    half_width=1.0, prior_scale=0.3, key=jax.random.PRNGKey(0))
    obj = DenoisingScoreMatching(S.geometric(1.0, 0.05, 30), levels="continuous")
    params, static = eqx.partition(net, trainable(net))
    steps = 1000
    opt = optax.adam(optax.cosine_decay_schedule(3e-3, steps, 0.05))

    @jax.jit
    def run(params, key):
        def step(carry, k):
            p, st = carry
            k1, k2 = jax.random.split(k)
            loss, g = jax.value_and_grad(lambda p: obj(eqx.combine(p, static), data.sample(k1, 128), key=k2))(p)
            u, st = opt.update(g, st, p)
            return (optax.apply_updates(p, u), st), loss

        return jax.lax.scan(step, (params, opt.init(params)), jax.random.split(key, steps))

    (params, _), losses = run(params, jax.random.PRNGKey(1))
    assert bool(jnp.all(jnp.isfinite(losses)))
    model = eqx.combine(params, static)
    x = np.asarray(data.sample(jax.random.PRNGKey(7), 400))
    scores = eqx.filter_jit(lambda m, x, s: jax.vmap(m, (0, None))(x, s))
    for s in (0.05, 0.2, 0.5):
        got = np.asarray(scores(model, jnp.asarray(x), s))
        want = exact_score(x, s)
        rel = np.linalg.norm(got - want) / np.linalg.norm(want)
        assert rel < 0.15, (s, rel)
    # and its log-density differences are those of the smoothed Gaussian (up to a constant)
    s = 0.2
    prec = np.linalg.inv(COV + s**2 * np.eye(2))
    want = -0.5 * np.einsum("ni,ij,nj->n", x - MEAN, prec, x - MEAN)
    got = np.asarray(eqx.filter_jit(lambda m, x: jax.vmap(m.log_prob, (0, None))(x, s))(model, jnp.asarray(x)))
    inner = np.einsum("ni,ij,nj->n", x - MEAN, prec, x - MEAN) < 4  # within two standard deviations
    err = (got - got[inner].mean()) - (want - want[inner].mean())
    assert np.std(err[inner]) < 0.15 * np.std(want[inner]), (np.std(err[inner]), np.std(want[inner]))


@pytest.mark.parametrize("name, opts", [("ahmc", dict(steps_per_level=6, leapfrog=4)),
                                        ("anuts", dict(steps_per_level=4, max_doublings=4))])
def test_annealed_hamiltonian_samplers_end_at_the_smallest_level_and_find_the_mode_weight(name, opts):
    # closed form: N(c, s0^2 I) smoothed by sigma is N(c, (s0^2 + sigma^2) I); without the
    # denoising step the chain ends at p_{sigma_min}
    c, s0 = jnp.array([1.0, -0.5]), 0.7
    log_p = lambda x, s: -0.5 * jnp.sum((x - c) ** 2) / (s**2 + s0**2)  # noqa: E731
    ctx = S.SamplerContext(dim=2, sigma_max=3.0, sigma_min=0.3, levels=6, centre=np.asarray(c),
                           log_density=lambda s: (lambda x: log_p(x, s)), exact=True)
    sam = S.SAMPLERS.build(name, ctx, dict(levels=6, denoise=False, **opts))
    r = S.sample(sam, None, jax.random.key(4), n=1500, dim=2, init=S.GaussianInit(3.0, c), log_prob=log_p)
    _moments_ok(r.samples, np.asarray(c), s0**2 + 0.3**2)
    assert r.acceptance.shape == (6,) and np.all(r.acceptance > 0.4), r.acceptance  # adapted, never collapsed
    if name == "anuts":
        return  # the same level machinery as ahmc: one mixture run (a NUTS compile is slow) is enough
    # NCSN mixture from uniform [-8, 8]^2: the (5, 5) mode keeps its weight 0.8
    w, mu = jnp.array([0.2, 0.8]), jnp.array([[-5.0, -5.0], [5.0, 5.0]])

    def log_mix(x, sigma):
        var = 1.0 + sigma**2
        return jax.nn.logsumexp(jnp.log(w) - 0.5 * jnp.sum((x - mu) ** 2, -1) / var - jnp.log(var))

    n = 1000
    sam = S.SAMPLERS.build(name, dataclasses.replace(ctx, sigma_max=20.0, sigma_min=1.0),
                           dict(levels=8, **opts))
    r = S.sample(sam, None, jax.random.key(5), n=n, init=S.UniformInit(-8, 8), dim=2, log_prob=log_mix)
    weight = float(np.mean(r.samples.sum(1) > 0))
    assert abs(weight - 0.8) < 4 * np.sqrt(0.16 / n), weight


@pytest.mark.parametrize("name, opts", [("mala", dict(steps=300)), ("hmc", dict(steps=100, leapfrog=3)),
                                        ("nuts", dict(steps=60, max_doublings=3))])
def test_metropolis_chains_adapt_their_step_unless_given(name, opts):
    # N(c, s0^2 I) at sigma: N(c, (s0^2 + sigma^2) I). Without --step-size each chain adapts
    # from the level's default start; a step 100x too large collapses when fixed, and is
    # brought back when it is only where the adaptation starts.
    c, s0, sigma = jnp.array([1.0, -0.5]), 0.7, 0.3
    log_p = lambda s: (lambda x: -0.5 * jnp.sum((x - c) ** 2) / (s**2 + s0**2))  # noqa: E731
    ctx = S.SamplerContext(dim=2, sigma_max=3.0, sigma_min=sigma, centre=np.asarray(c), log_density=log_p, exact=True)
    sam = S.SAMPLERS.build(name, ctx, opts)
    assert sam.adapt and S.SAMPLERS.build(name, ctx, dict(opts, step_size=0.1)).adapt is False
    big = 100.0 * sam.step_size
    n = 1000
    # the fixed 100x step (showing that the adaptation is what rescues it) for MALA only: a
    # compile per sampler and case is the cost of this test
    for adapt in (True, False) if name == "mala" else (True,):
        s = eqx.tree_at(lambda m: m.step_size, sam, big) if adapt else S.SAMPLERS.build(name, ctx, dict(opts, step_size=big))
        r = S.sample(s, None, jax.random.key(6), n=n, dim=2, init=S.GaussianInit(2.0, c), log_prob=log_p(sigma))
        acc = float(r.acceptance[0])
        if adapt:
            _moments_ok(r.samples, np.asarray(c), s0**2 + sigma**2)
            assert acc > 0.3, acc  # the mean over warm-up and sampling
        else:
            assert acc < 0.05 and "collapsed" in S.acceptance_summary(s, r.acceptance), acc


def test_the_presets_energy_values_apply_to_energy_networks_only_and_yield_to_the_users():
    from scorefield.data import load
    from scorefield import ConfigError
    from scorefield.train import PRESETS, preset, resolve

    table = PRESETS["default"]["energy"]
    base = preset("default").to_dict()  # the preset's values and TrainConfig's defaults
    assert table and all(base[k] != v for k, v in table.items())  # it changes each key it holds
    data = load("mnist")
    cfg = resolve(preset("default", data="mnist", net="energy"), data)
    assert {k: getattr(cfg, k) for k in table} == table and cfg.energy == {}
    assert cfg.dim_rule.startswith("net energy: ") and all(f"{k} {v}" in cfg.dim_rule for k, v in table.items())
    again = resolve(cfg, data)  # resolving again (a resolved config, from config.json) changes nothing
    assert {k: getattr(again, k) for k in table} == table and again.dim_rule == cfg.dim_rule
    # the score network resolves as without the table
    plain = resolve(preset("default", data="mnist"), data).to_dict()
    assert plain == resolve(preset("default", data="mnist", energy={}), data).to_dict()
    assert all(plain[k] == base[k] for k in table) and plain["dim_rule"] == ""
    # a key the user sets wins: a preset override, or TrainConfig.replace
    key, value = next(iter(table.items()))
    other = base[key]
    mine = resolve(preset("default", data="mnist", net="energy", **{key: other}), data)
    assert getattr(mine, key) == other and f"{key} {value}" not in mine.dim_rule
    mine = resolve(preset("default", data="mnist", net="energy").replace(**{key: other}), data)
    assert getattr(mine, key) == other
    with pytest.raises(ConfigError, match="energy has key"):
        preset("default", energy={"net": "grid"})
    with pytest.raises(ConfigError, match="lr"):
        preset("default", energy={"lr": -1.0})
