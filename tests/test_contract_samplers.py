"""The contract every registered sampler keeps, run over all of them (scorefield.samplers.SAMPLERS).

A new sampler adds one row to CASES (its options for a small, fast run and where a NaN in
the score shows up); `test_every_registered_sampler_is_in_the_suite` fails until it does.
Each sampler is built the way the CLI and recipes build it: `SAMPLERS.build(name, context,
options)`, its other options at their defaults.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _subproc import xla_flags

import scorefield.samplers as S
from scorefield import DivergenceError

S2 = 0.5  # the target N(0, S2 I) in 2-D: closed-form smoothed score and log-density
DIM = 2


def score(x, sigma):
    return -x / (S2 + sigma**2)


def log_density(sigma):
    return lambda x: -0.5 * jnp.sum(x**2) / (S2 + sigma**2)


CONTEXT = S.SamplerContext(dim=DIM, sigma_max=3.0, sigma_min=0.05, levels=4, centre=np.zeros(DIM, np.float32),
                           log_density=log_density, exact=True)

# name -> (options for a small run, (level, step) of the first NaN position when the score
# is NaN below sigma = NAN_BELOW; None for Metropolis samplers, which reject such proposals)
NAN_BELOW = 0.5
CASES = {
    "annealed": (dict(levels=4, steps_per_level=3), (2, 0)),  # grid 3, 0.77, 0.20, 0.05: level 2 is the first below 0.5
    "pc": (dict(levels=4), (2, 0)),
    "ode": (dict(rtol=1e-3, atol=1e-3), (0, 0)),  # one segment from 3 to 0.05
    # few-step samplers: one level over the rho-7 grid from 3 to 0.05 (sigma_min "auto")
    "euler": (dict(nfe=6), (0, 3)),  # grid 3, 1.57, 0.77, 0.35, 0.14, 0.05: step 3 evaluates at 0.35
    "dpm2m": (dict(nfe=6), (0, 3)),  # the same grid, one evaluation per step at its start
    "dpm3m": (dict(nfe=6, eta=0.5), (0, 3)),  # the same grid and evaluations as dpm2m; eta exercises the keys
    # grid 3, 0.98, 0.26, 0.05: step 1 (0.98 -> 0.26) evaluates at 0.26; churn exercises the keys
    "heun": (dict(nfe=7, churn=0.5), (0, 1)),
    "langevin": (dict(steps=6, step_size=0.05), (0, 0)),  # sigma defaults to sigma_min = 0.05
    "uhmc": (dict(steps=6, step_size=0.1, leapfrog=2), (0, 0)),
    "mala": (dict(steps=6, step_size=0.1), None),
    "hmc": (dict(steps=4, step_size=0.2, leapfrog=3), None),
    "nuts": (dict(steps=3, step_size=0.3, max_doublings=3), None),
    # annealed MALA on the closed-form log p_sigma at every level (what an energy network
    # gives), with its step adapted per particle (the default)
    "amala": (dict(levels=3, steps_per_level=4), None),
    "ahmc": (dict(levels=3, steps_per_level=3, leapfrog=2), None),
    "anuts": (dict(levels=2, steps_per_level=2, max_doublings=2), None),
}


def build(name, **extra):
    opts, _ = CASES[name]
    return S.SAMPLERS.build(name, CONTEXT, {**opts, **extra})


def run(sampler, fn=score, n=40, **kw):
    # a Metropolis sampler is given the log-density (at every level for a smoothed one);
    # a function given in place of the score replaces it
    log_prob = CONTEXT.log_prob_for(sampler)
    if log_prob is not None and fn is not score:
        log_prob = fn
    init = kw.pop("init", None)
    init = S.default_start(sampler, CONTEXT) if init is None else init
    return S.sample(sampler, fn, jax.random.key(3), n=n, dim=DIM, init=init, log_prob=log_prob, **kw)


def test_every_registered_sampler_is_in_the_suite():
    ours = {c.name for c in S.SAMPLERS if c.__module__.startswith("scorefield.")}
    missing = sorted(ours - set(CASES))
    assert not missing, f"registered samplers missing from tests/test_contract_samplers.py CASES: {missing}"
    assert not set(CASES) - ours, "CASES names a sampler that is not registered"


@pytest.mark.xla_default  # differently shaped programs compared bit for bit
@pytest.mark.parametrize("name", CASES)
def test_float32_n_by_d_and_bitwise_independent_of_blocks_and_chunks(name):
    sampler = build(name)
    assert type(sampler).name == name and isinstance(sampler, S.AbstractSampler)
    ref = run(sampler)
    assert ref.samples.shape == (40, DIM) and ref.samples.dtype == np.float32 and np.all(np.isfinite(ref.samples))
    # one program against another shaped differently in both ways: the 40 particles in
    # chunks of 13 (a short last chunk of 1) and, within each chunk, blocks of 5 (13 = 5 + 5 + 3:
    # a short last block), against one chunk of one block. One variant, not one per way:
    # each compiles at XLA's default settings, the costliest compilation of the suite
    kw = {"chunk_size": 13, "block_size": 5}
    np.testing.assert_array_equal(run(sampler, **kw).samples, ref.samples, err_msg=f"{name} {kw}")


@pytest.mark.parametrize("name", CASES)
def test_evaluation_counts_are_the_evaluations_made(name):
    # Truth: a host callback counts every call of the model function (one particle, so the
    # vmapped loops run exactly that particle's iterations).
    calls = []

    def tick():
        calls.append(1)

    sampler = build(name)
    if getattr(sampler, "smoothed", False):  # log p_sigma(x) at every level
        def fn(x, sigma):
            jax.debug.callback(tick)
            return log_density(sigma)(x)
    elif isinstance(sampler, S.AbstractLogDensitySampler):
        lp = log_density(sampler.level_sigma(0))

        def fn(x):
            jax.debug.callback(tick)
            return lp(x)
    else:
        def fn(x, sigma):
            jax.debug.callback(tick)
            return score(x, sigma)

    r = run(sampler, fn, n=1)
    jax.effects_barrier()
    assert r.n_score_evals_per_sample == len(calls), (r.n_score_evals_per_sample, len(calls))
    assert r.level_info["n_evals"].shape == (sampler.n_levels,)


@pytest.mark.parametrize("name", CASES)
def test_nan_score_is_a_divergence_named_with_level_and_step(name):
    sampler = build(name)
    where = CASES[name][1]

    def bad_score(x, sigma):
        return jnp.where(sigma < NAN_BELOW, jnp.nan, score(x, sigma))

    if where is None:  # Metropolis: NaN log-density proposals are rejected, never returned
        def bad_lp(x, sigma=0.0):
            return jnp.where(x[0] > 0.5, jnp.nan, log_density(sigma)(x))

        r = run(sampler, bad_lp, n=16, init=np.zeros(DIM, np.float32))
        assert np.all(np.isfinite(r.samples)) and np.all(r.samples[:, 0] <= 0.5)
        assert np.all((r.acceptance >= 0) & (r.acceptance < 1))
        return
    with pytest.raises(DivergenceError) as e:
        run(sampler, bad_score, n=8)
    assert (e.value.level, e.value.step) == where
    assert f"level {where[0]} of 0..{sampler.n_levels - 1}" in str(e.value) and f"step {where[1]} " in str(e.value)
    assert f"sampler '{name}'" in str(e.value)


@pytest.mark.parametrize("name", [n for n, (_, where) in CASES.items() if where is None])
def test_metropolis_samplers_report_acceptance(name):
    sampler = build(name)
    r = run(sampler)
    assert r.acceptance.shape == (sampler.n_levels,) and np.all((0.3 < r.acceptance) & (r.acceptance <= 1.0))
    assert "acceptance" in r.level_info


def test_score_samplers_report_no_acceptance_and_the_ode_its_solver_steps():
    assert run(build("pc")).acceptance is None
    r = run(build("ode"))
    assert r.level_info["solver_steps"][0] >= 1
    # Tsit5 is FSAL with 7 stages: 6 evaluations per solver step plus the first one
    assert r.n_score_evals_per_sample == pytest.approx(6 * r.level_info["solver_steps"][0] + 1)


def test_unadjusted_langevin_stationary_variance_is_exact():
    # x <- x + (eta/2) s(x) + sqrt(eta) z on N(0, s2 I) is the AR(1) chain
    # x <- (1 - eta/(2 s2)) x + sqrt(eta) z, whose stationary variance is
    # eta / (1 - a^2) with a = 1 - eta/(2 s2): s2 / (1 - eta/(4 s2)), not s2.
    s2, eta = 1.0, 0.8
    expected = s2 / (1 - eta / (4 * s2))  # 1.25
    n, steps = 20_000, 60  # a^steps = 0.6^60: the start N(0, 1) is forgotten to 1e-13
    sampler = S.Langevin(0.0, eta, steps)
    r = S.sample(sampler, lambda x, sigma: -x / s2, jax.random.key(0), n=n, dim=1, init=S.GaussianInit(1.0))
    var = float(np.var(r.samples.astype(np.float64)))
    se = expected * np.sqrt(2.0 / (n - 1))  # standard error of a Gaussian sample variance
    assert abs(var - expected) < 4 * se, (var, expected, se)
    assert abs(var - s2) > 10 * se  # and the bias is real: the unadjusted chain does not sample N(0, s2)


@pytest.fixture(scope="module")
def tiny_image_run(tmp_path_factory):
    """A small run on the bundled MNIST five (the README's runs/five, shortened)."""
    from scorefield.train import preset, train

    out = tmp_path_factory.mktemp("five") / "run"
    cfg = preset("fast", data="mnist", steps=200, width=16, depth=1, n_features=8, batch_size=64,
                 steps_per_call=100, log_every=100, checkpoint_every=200)
    train(cfg, out, progress=False)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n, (_, where) in CASES.items() if where is not None])
def test_defaults_do_not_diverge_on_a_trained_model(tiny_image_run, name):
    # Every score sampler with every option at its default, as `scorefield sample --run R
    # --sampler NAME` builds it; the image lies in [0, 1]^2.
    from scorefield.train import load_run, sampler_context

    r = load_run(tiny_image_run)
    ctx = sampler_context(r.config)
    sampler = S.SAMPLERS.build(name, ctx, {})
    res = S.sample(sampler, r.score_fn(), jax.random.key(0), n=32, dim=2, init=S.default_start(sampler, ctx))
    assert np.all(np.isfinite(res.samples)) and np.abs(res.samples).max() < 3.0


def test_one_level_default_steps_respect_the_curvature_bound():
    # On a run's context (sigma_min = 5e-3 sigma_max) the defaults are capped by sigma.
    ctx = S.SamplerContext(dim=2, sigma_max=1.0, sigma_min=5e-3, levels=30)
    assert S.SAMPLERS.build("uhmc", ctx, {}).step_size == pytest.approx(5e-3)
    assert S.SAMPLERS.build("langevin", ctx, {}).step_size == pytest.approx(25e-6)
    # on a smooth target at a large sigma the sigma_max / 20 rule decides
    assert S.SAMPLERS.build("uhmc", ctx, {"sigma": 0.5}).step_size == pytest.approx(0.05)


# the default sampler and the annealed Metropolis one (blackjax's kernel, a state per
# particle); every sampler would take minutes on 2 cores
TWO_DEVICES = ("pc", "amala")


@pytest.mark.xla_default  # one device against two, bit for bit
def test_bitwise_equal_on_two_devices(tmp_path):
    # The runner splits particles over the local devices once a chunk has 64 per device;
    # a second process with two host devices gives the same samples as this one-device one.
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, jax, numpy as np\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "import test_contract_samplers as C\n"
        "assert jax.local_device_count() == 2\n"
        f"two = {{n: C.run(C.build(n), n=128).samples for n in C.TWO_DEVICES}}\n"
        # the pc run again in one sharded chunk of two blocks (32 particles per device each)
        "two['pc-blocks'] = C.run(C.build('pc'), n=128, chunk_size=128, block_size=64).samples\n"
        f"np.savez({str(tmp_path / 'two.npz')!r}, **two)\n"
    )
    env = dict(os.environ, XLA_FLAGS=xla_flags("--xla_force_host_platform_device_count=2"), JAX_PLATFORMS="cpu")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert jax.local_device_count() == 1
    two = np.load(tmp_path / "two.npz")
    one = {name: run(build(name), n=128).samples for name in TWO_DEVICES}
    for name in TWO_DEVICES:
        np.testing.assert_array_equal(two[name], one[name], err_msg=name)
    np.testing.assert_array_equal(two["pc-blocks"], one["pc"], err_msg="pc, two blocks per chunk")
