"""--resume without checkpoint.json (issue 14, item 4): a kill between the array write and
the pointer write leaves a complete array file and no pointer. The run resumes from the
newest verified array file, says so in one line, and ends with the parameters of an
uninterrupted run; array files that do not verify are refused in one line; it never
restarts silently from step 0."""

import shutil

import numpy as np

from scorefield.cli import main
from scorefield.train import load_run

from test_reliability_faults import _leaves, _one_line, _train_argv, reference  # noqa: F401  (fixture)


def test_missing_pointer_resumes_from_the_newest_verified_array_file(tmp_path, reference, capsys):  # noqa: F811
    run = tmp_path / "run"
    argv = _train_argv(tmp_path, run)
    assert main([*argv, "--steps", "20"]) == 0
    (run / "checkpoint.json").unlink()
    assert sorted(p.name for p in run.glob("checkpoint-*.npz")) == ["checkpoint-000000010.npz", "checkpoint-000000020.npz"]
    capsys.readouterr()
    assert main(["train", "--out", str(run), "--resume", "--steps", "40", "--quiet"]) == 0
    line = _one_line(capsys)
    assert "checkpoint.json was missing" in line and "step 20" in line and "restarts" not in line, line
    done = load_run(run)
    assert done.step == 40
    assert all(np.array_equal(a, b) for a, b in zip(_leaves(done), _leaves(reference), strict=True))
    # the loss window travels in the array file: the log is the uninterrupted run's, running
    # means included (they restarted at step 20 before, 2026-12-02)
    assert [(m["step"], m["loss"]) for m in done.metrics()] == [(m["step"], m["loss"]) for m in reference.metrics()]


def test_missing_pointer_with_only_damaged_array_files_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    assert main([*_train_argv(tmp_path, run), "--steps", "20"]) == 0
    (run / "checkpoint.json").unlink()
    for p in run.glob("checkpoint-*.npz"):
        b = bytearray(p.read_bytes())
        b[len(b) // 2] ^= 0xFF  # one flipped byte inside a member: its CRC fails
        p.write_bytes(bytes(b))
    log = (run / "metrics.jsonl").read_text()
    capsys.readouterr()
    assert main(["train", "--out", str(run), "--resume", "--steps", "40", "--quiet"]) == 2
    line = _one_line(capsys)
    assert "none of its array files verifies" in line, line
    assert (run / "metrics.jsonl").read_text() == log  # nothing restarted, nothing rewritten
    shutil.rmtree(run)


def test_nan_weights_in_a_checkpoint_are_reported_as_damage_not_divergence(tmp_path, capsys):
    """Issue 14, item 17: a checkpoint whose weights hold NaN (with checksums that match, so
    written by something other than training) is a damaged checkpoint (exit 2), not a
    divergence with "lower the step size"."""
    from scorefield.train import _checkpoint

    run = tmp_path / "run"
    assert main([*_train_argv(tmp_path, run), "--steps", "10"]) == 0
    meta, arrays = _checkpoint.load(run)
    name = next(k for k, v in arrays.items() if v.dtype.kind == "f" and v.size > 1)
    arrays[name] = arrays[name].copy()
    arrays[name].flat[0] = np.nan
    _checkpoint.save(run, 10, arrays, {k: v for k, v in meta.items() if k in ("wall", "loss_window")})
    capsys.readouterr()
    for argv in (["train", "--out", str(run), "--resume", "--steps", "20", "--quiet"],
                 ["sample", "--run", str(run), "--n", "4", "--out", str(tmp_path / "s.npy"), "--quiet"]):
        assert main(argv) == 2
        line = _one_line(capsys)
        assert "NaN or inf" in line and "damaged" in line and "step size" not in line, line
