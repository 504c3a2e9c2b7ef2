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
    assert "checkpoint.json was missing" in line and "step 20" in line, line
    done = load_run(run)
    assert done.step == 40
    assert all(np.array_equal(a, b) for a, b in zip(_leaves(done), _leaves(reference), strict=True))


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
