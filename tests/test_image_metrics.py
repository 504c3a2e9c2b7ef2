"""Image metrics (issue 13): the shipped classifier, Frechet distance, label accuracy, memorisation."""

import hashlib
import importlib.resources

import numpy as np
import pytest
from _cli import cli

from scorefield.data import load
from scorefield.metrics import frechet_distance, image_report
from scorefield.metrics._classifier import SHA256, held_out_split, load_classifier, upsample_to_28


def test_shipped_weights_load_and_reproduce_their_held_out_accuracy():
    data = (importlib.resources.files("scorefield.metrics") / "_bundled" / "mnist_classifier.npz").read_bytes()
    assert hashlib.sha256(data).hexdigest() == SHA256
    clf = load_classifier()
    _, _, x, y = held_out_split()
    assert len(y) == 1000 and np.array_equal(np.bincount(y), np.full(10, 100))
    acc = float(np.mean(clf.predict(x) == y))
    assert acc == pytest.approx(clf.held_out_accuracy, abs=1e-6)
    assert acc >= 0.9
    assert clf.features(x[:5]).shape == (5, 64)


def test_frechet_distance_of_gaussians_in_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200_000, 2)) * [1.0, 2.0]
    b = rng.normal(size=(200_000, 2)) * [3.0, 1.0] + [1.0, 0.0]
    # diagonal covariances: |dmu|^2 + sum (s1 - s2)^2
    assert frechet_distance(a, b) == pytest.approx(1.0 + (1 - 3) ** 2 + (2 - 1) ** 2, rel=0.02)
    assert abs(frechet_distance(a, a)) < 1e-8


def test_image_report_reads_real_digits_as_real_and_copies_as_copies():
    d = load("mnist-digits:size=14")
    real = d.points
    rng = np.random.default_rng(1)
    # held-out-like check: real digits of label 4 are read as 4, their floor is the floor
    fours = real[d.labels == 4][:200]
    r = image_report(fours, d, label=4)
    assert r["label_accuracy"] > 0.9 and r["memorised_fraction"] == 1.0  # they ARE training images
    noise = rng.uniform(0, 1, (500, 196)).astype(np.float32)
    rn = image_report(noise, d, label=4)
    assert rn["memorised_fraction"] == 0.0 and rn["frechet"] > 10 * rn["frechet_floor"]
    mixed = real[rng.permutation(len(real))[:500]] + rng.normal(0, 0.05, (500, 196)).astype(np.float32)
    rm = image_report(np.clip(mixed, 0, 1), d)
    assert rm["frechet"] < rn["frechet"] and sum(rm["label_histogram"]) == pytest.approx(1.0)


def test_cli_eval_reports_image_metrics_and_refuses_a_bad_label(tmp_path):
    d = load("mnist-digits:size=7")
    np.save(tmp_path / "s.npy", d.points[d.labels == 2][:100])
    def run(*a):
        return cli("eval", "--data", "mnist-digits:size=7", "--samples", "s.npy", *a, cwd=tmp_path)

    r = run("--label", "2", "--json", "--repeats", "2", "--max-points", "200")
    assert r.returncode == 0, r.stderr
    import json

    out = json.loads(r.stdout)
    assert out["label"] == 2 and out["label_accuracy"] > 0.8 and "frechet_floor" in out and "memorised_fraction" in out
    r = run("--label", "12")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert upsample_to_28(d.points[:3], d.image_shape).shape == (3, 784)
