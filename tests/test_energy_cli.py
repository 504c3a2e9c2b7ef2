"""Energy runs (net = "energy") end to end: the numerical normalisation of exp(-E) against a
closed form, and one tiny trained energy run shared by the CLI checks (its checkpoint
round-trips; `info` says energy; `eval --likelihood` and `plot density` use exp(-E)
directly; a Metropolis sampler on a score run is refused in one line)."""

from __future__ import annotations

import json
import math
import tomllib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from _tiny import tiny_toml
from scorefield.cli import main
from scorefield.likelihood import energy_density_map, energy_log_likelihood, normaliser


def _gauss(c, v):
    """An unnormalised 2-D Gaussian log-density (offset by 7 nats) and its normalised one."""
    c = np.asarray(c, np.float32)
    unnorm = lambda x: -0.5 * jnp.sum((x - c) ** 2) / v + 7.0  # noqa: E731
    exact = lambda x: -0.5 * np.sum((x - c) ** 2, -1) / v - math.log(2 * math.pi * v)  # noqa: E731
    return unnorm, exact


def test_numerical_normalisation_recovers_a_normalised_gaussian():
    c, v = (0.4, -0.3), 0.3**2
    unnorm, exact = _gauss(c, v)
    box = (-2.0, 2.5, -2.0, 1.5)  # 6 standard deviations or more from the centre on every side
    z = normaliser(unnorm, box, resolution=200)
    # midpoint rule on a Gaussian: error well below 1e-6 in log Z at 10+ cells per std
    assert z.log_z == pytest.approx(7.0 + math.log(2 * math.pi * v), abs=1e-5)
    assert z.edge_mass < 1e-7  # exp(-6^2 / 2) of the peak at the nearest edge
    pts = np.random.default_rng(0).normal(c, 0.3, (50, 2)).astype(np.float32)
    res, _ = energy_log_likelihood(unnorm, pts, extent=box, sigma_min=0.1, sigma_max=1.0, resolution=200)
    np.testing.assert_allclose(res.log_prob, exact(pts.astype(np.float64)), atol=1e-4)
    assert res.trace == "energy" and res.sigma_min == 0.1
    # the density map of the same function integrates to 1 and matches the exact one cell by cell
    dm = energy_density_map(unnorm, box, resolution=64, sigma_min=0.1, exact_log_prob=lambda x: unnorm(x) - 7.0)
    assert dm.integral == pytest.approx(1.0, abs=1e-9)
    assert dm.log_prob.shape == (len(dm.ys), len(dm.xs))
    top = dm.exact_log_prob > dm.exact_log_prob.max() - 12
    np.testing.assert_allclose(dm.log_prob[top], (dm.exact_log_prob - math.log(2 * math.pi * v))[top], atol=1e-3)
    # a box that cuts the mass off shows in edge_mass
    assert normaliser(unnorm, (0.3, 0.6, -0.4, -0.1), resolution=20).edge_mass > 0.1


ENERGY = dict(tomllib.loads(tiny_toml(5)), net="energy", half_width=8.0, grid_resolutions=[4, 8], grid_features=2)


@pytest.fixture(scope="module")
def energy_run(tmp_path_factory):
    """(run directory, the Run `train` returned) of a 5-step energy run on the NCSN mixture
    (a tiny network: what is under test is the plumbing, not the quality)."""
    from scorefield.train import preset, train

    rd = tmp_path_factory.mktemp("energy") / "run"
    return rd, train(preset("fast", data="toy:ncsn-mixture", **ENERGY), rd, progress=False)


def test_energy_run_checkpoint_round_trips(energy_run, capsys):
    from scorefield.nets._energy import is_energy
    from scorefield.train import load_run

    rd, trained = energy_run
    loaded = load_run(rd)
    assert is_energy(loaded.ema_model) and is_energy(loaded.model) and loaded.step == 5
    x = jnp.array([[4.0, 5.5], [-5.0, -4.0], [0.0, 0.0]])
    f = jax.jit(jax.vmap(lambda m, x: m.energy(x, 0.3), (None, 0)))
    for a, b in ((trained.ema_model, loaded.ema_model), (trained.model, loaded.model)):
        np.testing.assert_array_equal(np.asarray(f(a, x)), np.asarray(f(b, x)))
    # the EMA and the raw weights are different models, and the run's score is -grad E
    assert not np.array_equal(np.asarray(f(loaded.ema_model, x)), np.asarray(f(loaded.model, x)))
    s = np.asarray(jax.vmap(loaded.score_fn(), (0, None))(x, 0.3))
    g = np.asarray(jax.vmap(jax.grad(lambda y: loaded.ema_model.energy(y, 0.3)))(x))
    np.testing.assert_allclose(s, -g, rtol=1e-6, atol=1e-6)
    assert main(["info", "--run", str(rd)]) == 0
    out = capsys.readouterr().out
    assert "model         energy" in out and "net           energy" in out


def test_eval_likelihood_of_an_energy_run_uses_its_density(energy_run, capsys):
    from scorefield._seed import seed_key
    from scorefield.cli._eval_likelihood import format_table
    from scorefield.likelihood._report import _HELD_OUT_TAG

    rd, run = energy_run
    assert main(["eval", "--run", str(rd), "--likelihood", "--n", "200", "--json", "--quiet"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["trace"] == "energy" and r["normaliser_edge_mass"] < 1e-3
    assert math.isfinite(r["nll"]) and r["kl"] > 0 and r["kl_excess"] > 0
    # the same number by hand: -E at the held-out draws minus log Z over the same box (the
    # 5-step model is close to its smooth Gaussian prior term, so 128 cells give log Z to 1e-4)
    m, smin = run.ema_model, r["sigma_min"]
    k, _ = jax.random.split(jax.random.fold_in(seed_key(0), _HELD_OUT_TAG))
    pts = np.asarray(run.dataset().sample(k, 200), np.float32)
    z = normaliser(lambda y: m.log_prob(y, smin), tuple(r["normaliser_extent"]), resolution=128)
    lp = np.asarray(jax.jit(jax.vmap(lambda y: m.log_prob(y, smin)))(pts), np.float64) - z.log_z
    assert r["nll"] == pytest.approx(-lp.mean(), abs=1e-3)
    text = format_table(r)
    assert "exp(-E(x, sigma" in text and "no ODE" in text and "energy evaluations per point" in text
    # the energy's density needs an energy model
    code = main(["eval", "--exact", "toy:ncsn-mixture", "--likelihood", "--method", "energy", "--n", "4"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and 'net = "energy"' in err, err


def test_plot_density_of_an_energy_run_draws_exp_minus_e(energy_run, tmp_path, capsys):
    f = tmp_path / "d.png"
    assert main(["plot", "density", "--run", str(energy_run[0]), "--out", str(f), "--resolution", "32"]) == 0
    out = capsys.readouterr().out
    assert f.stat().st_size > 0 and "exp(-E)" in out and "32x" in out and "the exact one to" in out
