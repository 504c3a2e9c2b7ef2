"""Faults at run time, in process: a full disk (up front and at the write), an output that
cannot be written, and divergence (NaN or inf) in training and in sampling."""

import errno
import json
import os
import shutil
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
import pytest

from scorefield import ScorefieldError, _fs
from scorefield.cli import main
from scorefield.train import _checkpoint, load_run

from _tiny import SIGMA_NET, tiny_toml

CONFIG = tiny_toml(40) + SIGMA_NET


def _train_argv(tmp_path: Path, out: Path, extra: str = "") -> list[str]:
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(CONFIG + extra)
    return ["train", "--data", "toy:ncsn-mixture", "--preset", "fast", "--config", str(cfg), "--out", str(out), "--quiet"]


def _leaves(run) -> list[np.ndarray]:
    return [np.asarray(a) for t in (run.model, run.ema_model) for a in jax.tree_util.tree_leaves(eqx.filter(t, eqx.is_array))]


def _one_line(capsys) -> str:
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run every faulty one must end up equal to."""
    tmp = tmp_path_factory.mktemp("ref")
    assert main(_train_argv(tmp, tmp / "ref")) == 0
    return load_run(tmp / "ref")


@pytest.mark.parametrize("where", ["arrays", "pointer"])
def test_disk_full_at_a_checkpoint_keeps_the_previous_one(tmp_path, reference, monkeypatch, capsys, where):
    """ENOSPC at the third checkpoint (step 30), half-way through writing the arrays or at
    the rename of the pointer: one line naming the file, exit 1, the step-20 checkpoint
    intact, no temporary file left, and --resume (disk freed) ends on the reference."""
    calls = {"n": 0}
    if where == "arrays":
        real = np.savez

        def savez(f, **arrays):
            calls["n"] += 1
            if calls["n"] == 3:
                f.write(b"PK\x03\x04 half a zip")
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(f, **arrays)

        monkeypatch.setattr(_checkpoint.np, "savez", savez)
    else:
        real = os.replace

        def replace(src, dst):
            if Path(dst).name == "checkpoint.json":
                calls["n"] += 1
                if calls["n"] == 3:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(src, dst)

        monkeypatch.setattr(_fs.os, "replace", replace)
    run = tmp_path / "run"
    assert main(_train_argv(tmp_path, run)) == 1
    line = _one_line(capsys)
    assert "No space left on device" in line and str(run) in line and "step 20" in line and "intact" in line
    assert load_run(run).step == 20
    assert not list(run.glob(".*.tmp"))
    monkeypatch.undo()
    assert main(["train", "--out", str(run), "--resume", "--quiet"]) == 0
    done = load_run(run)
    assert done.step == 40
    assert all(np.array_equal(a, b) for a, b in zip(_leaves(done), _leaves(reference), strict=True))


def test_full_disk_is_reported_before_training(tmp_path, monkeypatch, capsys):
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=4096))
    run = tmp_path / "run"
    assert main(_train_argv(tmp_path, run)) == 1
    line = _one_line(capsys)
    assert "MiB free" in line and str(run) in line
    assert not run.exists() or list(run.iterdir()) == []  # nothing written: rerun as it was
    monkeypatch.undo()
    assert main(_train_argv(tmp_path, run)) == 0


@pytest.mark.parametrize("out", ["{tmp}/file/run", "/proc/scorefield-run", "/dev/null"])
def test_unwritable_output_is_reported_before_training(tmp_path, capsys, out):
    (tmp_path / "file").write_text("x")
    out = out.format(tmp=tmp_path)
    assert main(_train_argv(tmp_path, Path(out))) == 2
    line = _one_line(capsys)
    assert out in line and ("cannot be written" in line or "not a directory" in line)


def test_training_divergence_names_the_step_and_keeps_a_finite_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"
    # a learning rate no network survives: the loss overflows within a few steps
    assert main(_train_argv(tmp_path, run, "lr = 1e30\ngrad_clip = 0.0\nwarmup_steps = 0\n")) == 1
    line = _one_line(capsys)
    assert "diverged" in line and "at step" in line and str(run) in line
    step = int(line.split("at step ")[1].split(";")[0])
    kept = load_run(run)
    assert kept.step <= step and f"checkpoint (step {kept.step})" in line
    assert all(np.all(np.isfinite(a)) for a in _leaves(kept))
    rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss"]) for r in rows)  # no NaN in the log either


@pytest.mark.parametrize("sampler,extra,names", [
    ("langevin", ["--step-size", "1e30", "--steps", "20"], "step"),
    ("annealed", ["--eps", "1e30", "--levels", "3", "--steps-per-level", "5"], "level"),
])
def test_sampling_divergence_names_the_step_and_writes_nothing(tmp_path, capsys, sampler, extra, names):
    out = tmp_path / "s.npy"
    argv = ["sample", "--exact", "toy:ncsn-mixture", "--n", "64", "--out", str(out), "--quiet", "--sampler", sampler]
    assert main(argv + extra) == 1
    line = _one_line(capsys)
    assert "diverged" in line and names in line
    assert list(tmp_path.iterdir()) == []


def test_write_error_is_a_scorefield_error_not_a_traceback(tmp_path, monkeypatch):
    """The library face of the same guarantee: the exception is typed."""
    def boom(*a, **k):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(_fs, "write_json_atomic", boom)
    from scorefield.train import preset, train

    cfg = preset("fast", data="toy:ncsn-mixture", width=16, depth=1, n_features=8, batch_size=32, steps=10,
                 steps_per_call=5, checkpoint_every=10, sigma_max=10.0, sigma_min=0.05, centre=[0.0, 0.0])
    with pytest.raises(ScorefieldError, match="Read-only file system") as e:
        train(cfg, tmp_path / "run", progress=False)
    assert "no checkpoint was written yet" in str(e.value)
