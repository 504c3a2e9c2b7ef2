"""`evaluate` and `scorefield eval`: the metrics that apply to each kind of data, their
floors, the Fisher divergence of a run, and one-line errors for bad sample files."""

from __future__ import annotations

import json
import math

import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from scorefield import InputError
from scorefield.cli import main
from scorefield.cli._eval import format_table, load_samples
from scorefield.data import from_image_array, from_points, load
from scorefield.metrics import evaluate

SMALL = dict(repeats=6, max_points=300, n_projections=32)
ASYM = np.array([[5.0, 0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 2.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0, 1.0]])


def _spread(r, name):
    """Mean plus 4 standard deviations of one exact-vs-exact value (s.e. * sqrt(repeats))."""
    return r[f"{name}_floor"] + 4 * r[f"{name}_floor_stderr"] * math.sqrt(SMALL["repeats"])


@pytest.fixture(scope="module")
def mixture():
    return load("toy:ncsn-mixture")  # weights 0.2 / 0.8 at (-5, -5) and (5, 5), unit variance


def test_evaluate_mixture_exact_vs_collapsed(mixture):
    n = 1000
    exact = mixture.sample(jr.key(1), n)
    r = evaluate(mixture, exact, key=jr.key(2), **SMALL)
    w = np.array(r["mode_weights"])
    np.testing.assert_allclose(r["mode_weights_target"], [0.2, 0.8], rtol=1e-6)
    np.testing.assert_array_less(np.abs(w - [0.2, 0.8]), 4 * math.sqrt(0.16 / n))
    for name in ("mode_weights_tv", "energy_distance", "mmd2", "sliced_wasserstein"):
        assert 0 < r[f"{name}_floor"]
        assert r[name] < _spread(r, name), name
    assert r["reference"] == "exact samples" and r["pair_n"] == 300
    # Every sample from the heavier mode: weights (0, 1), TV 0.2, every distance far off.
    collapsed = jnp.asarray([5.0, 5.0]) + jr.normal(jr.key(3), (n, 2))
    c = evaluate(mixture, collapsed, key=jr.key(2), **SMALL)
    np.testing.assert_allclose(c["mode_weights"], [0.0, 1.0], atol=1e-6)
    assert c["mode_weights_tv"] == pytest.approx(0.2, abs=1e-5)
    for name in ("energy_distance", "mmd2"):
        assert c[name] > 3 * _spread(c, name), name
    # SW_2 between exact samples is dominated by the mode-weight noise moved across
    # the 14-unit gap (~1.5 at N=300), so the collapse clears the spread by less.
    assert c["sliced_wasserstein"] > _spread(c, "sliced_wasserstein")
    json.dumps(c)  # JSON-ready


def test_evaluate_image_uses_hist_tv_with_spec_orientation():
    ds = from_image_array(ASYM / ASYM.max())
    n = 1000
    exact = ds.sample(jr.key(0), n)
    r = evaluate(ds, exact, key=jr.key(1), **SMALL)
    assert abs(r["hist_tv"] - r["hist_tv_floor"]) < 0.05  # floor s.d. at N=1000 is ~0.015
    assert "mode_weights" not in r
    # Upside down (y -> H/m - y), the image's mass moves to other cells.
    h, w = ASYM.shape
    flipped = exact.at[:, 1].set(h / max(h, w) - exact[:, 1])
    f = evaluate(ds, flipped, key=jr.key(1), **SMALL)
    assert f["hist_tv"] > f["hist_tv_floor"] + 0.3
    assert f["energy_distance"] > _spread(f, "energy_distance")


def test_evaluate_points_against_the_point_set():
    pts = np.asarray(jr.normal(jr.key(0), (300, 2)))  # 2-D, 300: the shapes above, compiled once
    ds = from_points(pts)
    r = evaluate(ds, ds.sample(jr.key(1), 600), key=jr.key(2), score_fn=lambda x, s: -x, sigmas=[1.0], **SMALL)
    assert r["reference"] == "point set" and r["reference_n"] == 300
    assert r["fisher_divergence"] is None  # a point set has no exact smoothed score
    assert "hist_tv" not in r and "mode_weights" not in r
    assert r["energy_distance"] < _spread(r, "energy_distance")
    far = evaluate(ds, ds.sample(jr.key(1), 600) * 2.0, key=jr.key(2), **SMALL)
    assert far["energy_distance"] > 10 * _spread(far, "energy_distance")


def test_evaluate_fisher_zero_for_exact_score_and_known_for_scaled(mixture):
    sigmas = jnp.array([2.0, 0.5, 0.1])
    exact = mixture.target.smoothed_score
    samples = mixture.sample(jr.key(1), 1000)  # the shapes of the test above: no recompiling
    kw = dict(key=jr.key(2), sigmas=sigmas, n_fisher=256, **SMALL)
    r = evaluate(mixture, samples, score_fn=exact, **kw)
    np.testing.assert_allclose(r["fisher_divergence"], 0.0, atol=1e-8)
    np.testing.assert_allclose(r["fisher_sigmas"], np.asarray(sigmas), rtol=1e-6)
    # (1 + eps) s: the relative Fisher divergence is eps^2 at every level, exactly.
    r = evaluate(mixture, samples, score_fn=lambda x, s: 1.1 * exact(x, s), **kw)
    np.testing.assert_allclose(r["fisher_relative"], 0.01, rtol=1e-4)


def test_evaluate_rejects_bad_samples(mixture):
    with pytest.raises(InputError, match="2 columns"):
        evaluate(mixture, np.zeros((10, 3)), key=jr.key(0))
    with pytest.raises(InputError, match="NaN"):
        evaluate(mixture, np.full((10, 2), np.inf), key=jr.key(0))


# ---------------------------------------------------------------- the command


def _cli(capsys, *argv):
    code = main(["eval", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json_and_table(tmp_path, capsys, mixture):
    f = tmp_path / "s.npy"
    np.save(f, np.asarray(mixture.sample(jr.key(0), 1000)))
    common = ["--samples", str(f), "--repeats", "6", "--max-points", "300"]
    code, out, err = _cli(capsys, "--data", "toy:ncsn-mixture", *common, "--json")
    assert code == 0, err
    r = json.loads(out)
    for key in ("energy_distance", "energy_distance_floor", "mmd2", "sliced_wasserstein", "mode_weights"):
        assert key in r
    assert r["n_samples"] == 1000 and r["data"] == "toy:ncsn-mixture"
    code, out, err = _cli(capsys, "--data", "toy:ncsn-mixture", *common)
    assert code == 0, err
    assert "energy distance" in out and "floor" in out and "target  0.200 0.800" in out


@pytest.mark.parametrize(
    "content, message",
    [
        (np.full((4, 2), np.nan, np.float32), "NaN or inf"),
        (np.zeros((4, 3), np.float32), "3 columns but the data is 2-D"),
        (np.zeros(4, np.float32), "shape"),
        (np.array(["a", "b"]), "float array"),
        (b"not an array", "not a .npy"),
        (np.array([{"a": 1}], dtype=object), "pickled Python objects"),
        (None, "does not exist"),
    ],
)
def test_cli_bad_sample_files_exit_2_with_one_line(tmp_path, capsys, content, message):
    f = tmp_path / "bad.npy"
    if isinstance(content, bytes):
        f.write_bytes(content)
    elif content is not None:
        np.save(f, content, allow_pickle=True)
    code, out, err = _cli(capsys, "--data", "toy:ncsn-mixture", "--samples", str(f))
    assert code == 2
    assert err.count("\n") == 1 and message in err and "--samples" in err
    assert out == ""


def test_cli_needs_run_or_data(capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["eval", "--samples", str(tmp_path / "s.npy")])
    assert e.value.code == 2
    capsys.readouterr()
    code, _, err = _cli(capsys, "--data", "toy:no-such", "--samples", str(tmp_path / "s.npy"))
    assert code == 2 and err.count("\n") == 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    a=hnp.arrays(
        dtype=st.sampled_from([np.float32, np.float64, np.int32, np.bool_]),
        shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
    )
)
def test_load_samples_accepts_exactly_finite_n_by_d(tmp_path, a):
    f = tmp_path / "h.npy"
    np.save(f, a)
    from scorefield.data import MAX_ABS_COORDINATE

    with np.errstate(over="ignore", invalid="ignore"):
        f32 = a.astype(np.float32)
        finite = bool(np.isfinite(f32).all())
        # beyond this, float32 distances overflow: refused (issue 14, item 13)
        small = finite and bool(np.all(np.abs(f32) <= MAX_ABS_COORDINATE))
    valid = a.ndim == 2 and a.shape[0] >= 2 and a.dtype != np.bool_ and small
    if valid:
        out = load_samples(str(f))
        assert out.dtype == np.float32 and out.shape == a.shape
    else:
        with pytest.raises(InputError, match="--samples"):
            load_samples(str(f))


class _FakeRun:
    """The part of `scorefield.train.Run` that `eval --run` uses, with a score model that
    is the exact smoothed score scaled by 1.1: its relative Fisher divergence is 0.01."""

    sigmas = jnp.array([3.0, 1.0, 0.3, 0.1])

    def __init__(self, path):
        self.path = path
        self.config = type("C", (), {"data": "toy:ncsn-mixture"})()

    def dataset(self):
        return load(self.config.data)

    def score_fn(self, ema: bool = True):
        assert ema  # eval judges the EMA weights, the ones `sample` uses
        exact = self.dataset().target.smoothed_score
        return lambda x, sigma: 1.1 * exact(x, sigma)


def test_cli_run_reports_fisher_divergence_per_level(tmp_path, capsys, monkeypatch, mixture):
    import scorefield.train

    monkeypatch.setattr(scorefield.train, "load_run", _FakeRun)
    f = tmp_path / "s.npy"
    np.save(f, np.asarray(mixture.sample(jr.key(0), 1000)))
    args = ["--run", str(tmp_path), "--samples", str(f), "--repeats", "6", "--max-points", "300"]
    code, out, err = _cli(capsys, *args, "--json")
    assert code == 0, err
    r = json.loads(out)
    np.testing.assert_allclose(r["fisher_sigmas"], np.asarray(_FakeRun.sigmas), rtol=1e-6)
    np.testing.assert_allclose(r["fisher_relative"], 0.01, rtol=1e-4)
    assert all(v > 0 for v in r["fisher_divergence"]) and r["run"] == str(tmp_path)
    table = format_table(r)  # the text report of the same result, without recomputing it
    rows = table.split("relative\n")[1].splitlines()
    assert "Fisher divergence" in table and len(rows) == 4
    np.testing.assert_allclose([float(row.split()[-1]) for row in rows], 0.01, rtol=1e-3)
