"""Outputs of `scorefield sample` checked up front (issue 14, items 5, 7, 9): --out equal to
--trajectory, a directory, an unwritable path and a disk too small for N * D * 4 bytes are
refused before sampling; a late OSError is one line and exit 1; a killed save's stale
temporary is removed by the next run."""

import os
import shutil
import time

import numpy as np
import pytest

from scorefield.cli import main

FAST = ["--exact", "toy:ncsn-mixture", "--n", "8", "--sampler", "annealed", "--levels", "2",
        "--steps-per-level", "2", "--quiet"]


def _run(capsys, *argv):
    code = main(["sample", *FAST, *argv])
    err = capsys.readouterr().err
    return code, err


def _no_sampling(monkeypatch):
    from scorefield import samplers

    def boom(*a, **k):
        raise AssertionError("sampling started before the outputs were checked")

    monkeypatch.setattr(samplers, "sample", boom)


@pytest.mark.parametrize("case", ["same-as-trajectory", "directory", "read-only", "disk-full"])
def test_bad_output_is_refused_before_sampling(tmp_path, capsys, monkeypatch, case):
    _no_sampling(monkeypatch)
    out = tmp_path / "x.npy"
    extra = []
    code_wanted, needle = 2, None
    if case == "same-as-trajectory":
        extra, needle = ["--trajectory", str(tmp_path / "." / "x.npy")], "same file"
    elif case == "directory":
        out.mkdir()
        needle = "is a directory"
    elif case == "read-only":
        if os.geteuid() == 0:
            pytest.skip("root writes read-only directories")
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        out, needle = ro / "x.npy", "cannot be written"
    else:
        real = shutil.disk_usage
        monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=100))
        code_wanted, needle = 1, "MiB free"
    code, err = _run(capsys, "--out", str(out), *extra)
    lines = err.strip().splitlines()
    assert code == code_wanted and len(lines) == 1 and "Traceback" not in err, err
    assert needle in lines[0], lines[0]
    assert not out.is_file()


def test_late_write_error_is_one_line_and_a_stale_temporary_is_cleaned(tmp_path, capsys, monkeypatch):
    out = tmp_path / "x.npy"
    stale = tmp_path / ".x.npy.abcd1234.tmp"  # what a SIGKILL mid-save leaves
    stale.write_bytes(b"\x93NUMPY half")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    real = np.save

    def full(f, a):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", full)
    code, err = _run(capsys, "--out", str(out))
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "No space left on device" in lines[0] and str(out) in lines[0], err
    assert list(tmp_path.iterdir()) == []  # the stale one removed, the failed one cleaned up
    monkeypatch.setattr(np, "save", real)
    assert _run(capsys, "--out", str(out))[0] == 0 and np.load(out).shape == (8, 2)


@pytest.mark.parametrize("init", ["gaussian:1,nan", "gaussian:inf", "uniform:-inf,1", "uniform:0,nan"])
def test_non_finite_init_is_bad_input_not_divergence(tmp_path, capsys, monkeypatch, init):
    """Issue 14, item 17: a NaN or inf in --init is exit 2 naming --init, before sampling
    (it used to diverge and suggest a lower step size)."""
    _no_sampling(monkeypatch)
    code, err = _run(capsys, "--out", str(tmp_path / "x.npy"), "--init", init)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "--init" in lines[0] and "not finite" in lines[0], err
    assert "step size" not in err and list(tmp_path.iterdir()) == []
