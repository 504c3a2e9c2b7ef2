"""`scorefield sample` end to end (in process, small n)."""

from __future__ import annotations

import numpy as np
import pytest

from scorefield.cli import main


def run(capsys, *argv):
    code = main(["sample", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_exact_ncsn_mixture_annealed(tmp_path, capsys):
    f = tmp_path / "toy.npy"
    code, out, err = run(
        capsys, "--exact", "toy:ncsn-mixture", "--n", "1000", "--out", str(f), "--sigma-max", "20", "--sigma-min", "1",
        "--levels", "10", "--steps-per-level", "100", "--eps", "0.1", "--init", "uniform:-8,8", "--quiet", "--seed", "3",
        "--sampler", "annealed",
    )
    assert code == 0, err
    x = np.load(f)
    assert x.shape == (1000, 2) and x.dtype == np.float32
    # weight of the (5, 5) mode: 0.8 within 4 binomial standard errors
    assert abs(np.mean(x.sum(1) > 0) - 0.8) < 4 * np.sqrt(0.16 / 1000)
    assert "wrote 1000 samples" in out and "1001.0 score evaluations per sample" in out and " s" in out
    assert list(tmp_path.iterdir()) == [f]  # no temporary files left behind


@pytest.mark.slow  # 83 s on the loaded 2-core machine
def test_exact_mnist_lands_on_the_image(tmp_path, capsys):
    f = tmp_path / "five.npy"
    # 200 particles and 5 steps per level: the exact image score costs per particle and step
    # (400 x 20 took 11 s); 400 x 5 and 100 x 20 land 100% in the box, against 95% asked.
    code, out, err = run(capsys, "--exact", "mnist", "--n", "200", "--out", str(f), "--levels", "8",
                         "--steps-per-level", "5", "--quiet", "--sampler", "annealed")
    assert code == 0, err
    x = np.load(f)
    assert x.shape == (200, 2) and np.all(np.isfinite(x))
    # The image spans [0, 1]^2; the smoothed density at sigma_min ~ 4e-3 puts nearly all mass there.
    assert np.mean(np.all((x > -0.02) & (x < 1.02), axis=1)) > 0.95


def test_exact_nuts_and_trajectory(tmp_path, capsys):
    f, t = tmp_path / "m.npy", tmp_path / "traj.npy"
    code, out, err = run(capsys, "--exact", "toy:ncsn-mixture", "--n", "64", "--out", str(f), "--sampler", "nuts",
                         "--steps", "20", "--trajectory", str(t), "--trajectory-every", "5", "--quiet")
    assert code == 0, err
    assert np.load(f).shape == (64, 2)
    assert np.load(t).shape == (1 + 4 + 1, 64, 2)


def test_metropolis_chains_stuck_outside_the_support_are_counted_on_the_summary_line(tmp_path, capsys):
    # at sigma 0 the image's density is zero outside the image and on its black pixels: a
    # chain started there rejects every proposal that stays there
    from scorefield.data import load

    f = tmp_path / "m.npy"
    code, out, err = run(capsys, "--exact", "mnist", "--sampler", "mala", "--sigma", "0", "--n", "60", "--steps", "20",
                         "--init", "uniform:-1,2", "--out", str(f), "--quiet")
    assert code == 0, err
    lp = np.array([float(load("mnist").target.log_prob(x)) for x in np.load(f)])
    stuck = int(np.sum(~np.isfinite(lp)))
    assert stuck > 0 and f"WARNING: {stuck} of 60 chains end where the density is zero" in out
    assert "--sigma > 0" in out and out.count("\n") == 1
    # smoothed, the density is positive everywhere: no such warning
    code, out, err = run(capsys, "--exact", "mnist", "--sampler", "mala", "--sigma", "0.01", "--n", "20", "--steps",
                         "10", "--init", "uniform:-1,2", "--out", str(f), "--quiet")
    assert code == 0, err
    assert "density is zero" not in out


def test_divergence_is_exit_1_and_writes_nothing(tmp_path, capsys):
    f = tmp_path / "bad.npy"
    code, out, err = run(capsys, "--exact", "toy:ncsn-mixture", "--n", "16", "--out", str(f), "--sampler", "langevin",
                         "--step-size", "1e4", "--steps", "200", "--quiet")
    assert code == 1
    assert "diverged" in err and "level 0" in err and "step" in err and len(err.strip().splitlines()) == 1
    assert not f.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--exact", "toy:moons", "--n", "4"], "closed-form"),
        (["--exact", "toy:ncsn-mixture", "--n", "4", "--init", "uniform:3,1"], "LOW < HIGH"),
        (["--exact", "toy:ncsn-mixture", "--n", "4", "--sigma-max", "1", "--sigma-min", "2"], "--sigma-min"),
        (["--exact", "nonsense-spec", "--n", "4"], "nonsense"),
    ],
)
def test_bad_input_is_exit_2_with_one_line(tmp_path, capsys, argv, needle):
    f = tmp_path / "x.npy"
    code, out, err = run(capsys, *argv, "--out", str(f), "--quiet")
    assert code == 2, err
    assert needle in err and len(err.strip().splitlines()) == 1
    assert not f.exists()


def test_out_must_be_npy_in_an_existing_directory(tmp_path, capsys):
    code, _, err = run(capsys, "--exact", "toy:ncsn-mixture", "--n", "4", "--out", str(tmp_path / "x.csv"))
    assert code == 2 and ".npy" in err
    code, _, err = run(capsys, "--exact", "toy:ncsn-mixture", "--n", "4", "--out", str(tmp_path / "no" / "x.npy"))
    assert code == 2 and "does not exist" in err


def test_usage_errors_and_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["sample", "--exact", "mnist", "--n", "0", "--out", "x.npy"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["sample", "--help"])
    assert e.value.code == 0
    assert "example" in capsys.readouterr().out


def test_run_with_log_density_sampler_is_clear_error(tmp_path, capsys):
    # A tiny real run (2 training steps) so the --run path is exercised end to end.
    rd = tmp_path / "run"
    assert main(["train", "--data", "toy:ncsn-mixture", "--out", str(rd), "--preset", "fast", "--steps", "2", "--quiet"]) == 0
    capsys.readouterr()
    code, _, err = run(capsys, "--run", str(rd), "--n", "4", "--out", str(tmp_path / "x.npy"), "--sampler", "mala")
    assert code == 2 and "log-density" in err and 'net = "energy"' in err and len(err.strip().splitlines()) == 1
    f = tmp_path / "r.npy"
    # Without --sampler: the run's own sampler (the recipe's dpm3m), here with 20 evaluations.
    code, out, err = run(capsys, "--run", str(rd), "--n", "32", "--out", str(f), "--nfe", "20", "--quiet")
    assert code == 0, err
    x = np.load(f)
    assert x.shape == (32, 2) and np.all(np.isfinite(x))
    assert "with dpm3m" in out and "20.0 score evaluations per sample" in out
    # an option of another sampler names the run's own and its options
    code, _, err = run(capsys, "--run", str(rd), "--n", "32", "--out", str(f), "--levels", "20", "--quiet")
    assert code == 2 and "'dpm3m'" in err and "--nfe" in err and len(err.strip().splitlines()) == 1


def test_interrupt_leaves_no_output_file(tmp_path, capsys, monkeypatch):
    import scorefield.samplers as S

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(S, "sample", interrupted)
    f = tmp_path / "x.npy"
    code, _, err = run(capsys, "--exact", "toy:ncsn-mixture", "--n", "4", "--out", str(f), "--quiet")
    assert code == 130 and "interrupted" in err
    assert list(tmp_path.iterdir()) == []


def test_save_npy_atomic_follows_umask_and_keeps_old_file_on_failure(tmp_path):
    import os

    from scorefield._fs import save_npy_atomic

    f = tmp_path / "a.npy"
    old = os.umask(0o022)
    try:
        save_npy_atomic(f, np.arange(3, dtype=np.float32))
    finally:
        os.umask(old)
    assert (f.stat().st_mode & 0o777) == 0o644
    np.testing.assert_array_equal(np.load(f), np.arange(3))
    with pytest.raises(ValueError):
        save_npy_atomic(f, _Unsaveable())
    np.testing.assert_array_equal(np.load(f), np.arange(3))  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy"]


class _Unsaveable:
    def __array__(self, *a, **k):
        raise ValueError("cannot become an array")
