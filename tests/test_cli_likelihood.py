"""`scorefield eval --likelihood`: the exact smoothed score through the ODE (its kl minus
kl_floor is the machinery's own error), a run on data without a density, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scorefield.cli import main


def _cli(capsys, *argv):
    try:
        code = main(["eval", *map(str, argv)])
    except SystemExit as e:  # argparse's own errors (still one line, exit 2)
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_exact_score_kl_equals_the_floor_on_the_ncsn_mixture(capsys):
    code, out, err = _cli(capsys, "--exact", "toy:ncsn-mixture", "--likelihood", "--n", 300, "--json", "--quiet")
    assert code == 0, err
    r = json.loads(out)
    for key in ("nll", "nll_se", "bits_per_dim", "kl", "kl_se", "kl_floor"):
        assert isinstance(r[key], float), key
    assert r["n"] == 300 and r["dim"] == 2 and r["trace"] == "exact"
    # the default recipe's range for this data: sigma_max by NCSNv2's rule (~20), sigma_min
    # the recipe sampler's last level (for point data the data's own scale, below 1%)
    from scorefield.data import load
    from scorefield.train import build_sampler, preset, resolve

    data = load("toy:ncsn-mixture")
    end = float(build_sampler(resolve(preset("default", data="toy:ncsn-mixture"), data))[0].sigmas[-1])
    assert 15 < r["sigma_max"] < 30 and r["sigma_min"] == pytest.approx(end, rel=1e-6)
    assert r["sigma_min"] < 0.01 * r["sigma_max"]
    # the exact score: what is left of kl above its floor is the ODE's error and the prior's
    # mismatch, both far below the 0.02 nats the issue allows
    assert abs(r["kl_excess"]) < 0.02
    assert abs(r["kl"] - r["kl_floor"]) < 0.02 + 3 * r["kl_se"]
    assert r["kl"] > -3 * r["kl_se"]  # KL >= 0 within its error
    assert r["bits_per_dim"] == pytest.approx(r["nll"] / (2 * np.log(2)))
    # the mixture's entropy is 2 (1 + log 2 pi)/2 + H(0.2, 0.8) = 3.338 nats; nll ~ entropy + kl
    assert abs(r["nll"] - 3.3380) < 4 * r["nll_se"]


@pytest.fixture(scope="module")
def points_run(tmp_path_factory):
    from scorefield.train import preset, train

    root = tmp_path_factory.mktemp("llrun")
    np.save(root / "pts.npy", np.random.default_rng(0).normal(size=(300, 2)).astype(np.float32))
    cfg = preset("fast", data=f"points:{root / 'pts.npy'}", width=16, depth=1, n_features=8, batch_size=64,
                 steps=20, steps_per_call=10, log_every=10, checkpoint_every=20, grid_resolutions=[4, 8])
    train(cfg, root / "run", progress=False)
    return root / "run"


def test_data_without_a_density_gets_nll_and_says_why(points_run, capsys):
    code, out, err = _cli(capsys, "--run", points_run, "--likelihood", "--n", 40, "--quiet")
    assert code == 0, err
    assert "nll" in out and "bits_per_dim" in out
    assert "kl             not available: the data has no closed-form density" in out


def test_above_the_exact_limit_hutchinson_is_used_and_said(points_run, capsys, monkeypatch):
    import scorefield.likelihood as L

    monkeypatch.setattr(L, "EXACT_MAX_DIM", 1)  # as if 2-D were high-dimensional
    code, out, err = _cli(capsys, "--run", points_run, "--likelihood", "--n", 40, "--json", "--quiet",
                          "--probes", 3)
    assert code == 0, err
    r = json.loads(out)
    assert r["trace"] == "hutchinson" and r["n_probes"] == 3
    assert r["kl"] is None and r["kl_floor"] is None and "kl_unavailable" in r
    assert "Hutchinson" in err and "3 Rademacher probes" in err


@pytest.mark.parametrize("argv, message", [
    (["--exact", "toy:ncsn-mixture", "--likelihood", "--n", "0"], "must be a positive integer"),
    (["--exact", "toy:ncsn-mixture", "--likelihood", "--n", "-5"], "must be a positive integer"),
    (["--exact", "toy:ncsn-mixture", "--likelihood", "--rtol", "nan"], "positive finite"),
    (["--exact", "toy:ncsn-mixture", "--likelihood", "--atol", "inf"], "positive finite"),
    (["--exact", "toy:ncsn-mixture", "--likelihood", "--rtol", "0"], "positive finite"),
    (["--exact", "toy:ncsn-mixture", "--likelihood", "--sigma-min", "100"], "smaller than"),
    (["--exact", "toy:2spirals", "--likelihood"], "no closed-form smoothed score"),
    (["--exact", "toy:ncsn-mixture"], "goes with --likelihood"),
    (["--data", "toy:ncsn-mixture"], "--samples FILE.npy is required"),
    (["--data", "toy:ncsn-mixture", "--likelihood"], "needs a model"),
])
def test_bad_input_exits_2_with_one_line(argv, message, capsys):
    code, out, err = _cli(capsys, *argv)
    assert code == 2
    assert err.strip().count("\n") == 0 and message in err, err
