"""Reliability II (issue 14), items 10 and 14: sizes that cannot fit are refused from shapes
before anything is allocated or written; a run that fails in its first compiled call leaves
no run behind; a resumed run notices a changed data file; an error is never preceded by the
start banner. Every case runs `scorefield.cli.main` in process and failed before its fix."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from scorefield.cli import main

sys.path.insert(0, str(Path(__file__).parent))
from _tiny import tiny_toml  # noqa: E402

DATA = "toy:ncsn-mixture"


def _cli(argv, capsys):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, [ln for ln in err.splitlines() if ln.strip()]


def _merged(base: str, extra: str) -> str:
    """TOML `base` with the keys of `extra` replaced (TOML refuses a key given twice)."""
    keys = {ln.split("=")[0].strip() for ln in extra.splitlines() if "=" in ln}
    return "".join(ln + "\n" for ln in base.splitlines() if ln.split("=")[0].strip() not in keys) + extra


@pytest.fixture
def tiny(tmp_path):
    p = tmp_path / "tiny.toml"
    p.write_text(tiny_toml(10))
    return p


# (extra TOML, memory limit in bytes or None, words of the one line)
SIZES = [
    ("batch_size = 10000000\n", 100e6, "batch_size=10000000 needs at least"),
    ('net = "grid"\nhalf_width = 10.0\ngrid_resolutions = [100000]\n', None, "grid_resolutions=[100000] gives"),
    ("n_levels = 1000000000\n", None, "n_levels=1000000000 needs"),
    ('levels = "all"\nn_levels = 100000\nbatch_size = 512\n', 1e9, 'n_levels=100000 with levels="all"'),
]


@pytest.mark.parametrize("extra, limit, needle", SIZES, ids=["batch_size", "grid_resolutions", "n_levels", "levels-all"])
def test_training_that_cannot_fit_is_refused_before_anything_is_written(tmp_path, tiny, capsys, monkeypatch,
                                                                       extra, limit, needle):
    if limit is not None:
        monkeypatch.setenv("SCOREFIELD_MEMORY_LIMIT", str(int(limit)))
    cfg = tmp_path / "big.toml"
    cfg.write_text(_merged(tiny.read_text(), extra))
    out = tmp_path / "run"
    code, _, err = _cli(["train", "--data", DATA, "--config", cfg, "--out", out, "--quiet"], capsys)
    assert code == 2 and len(err) == 1, err
    assert needle in err[0] and " fit" in err[0] and "internal error" not in err[0], err
    assert not out.exists()  # no run directory: a rerun with a smaller value just works


def test_the_largest_batch_named_is_one_that_fits(tmp_path, tiny, capsys, monkeypatch):
    """The value the message offers is itself accepted (the estimate is consistent)."""
    import re

    monkeypatch.setenv("SCOREFIELD_MEMORY_LIMIT", str(int(100e6)))
    cfg = tmp_path / "big.toml"
    cfg.write_text(_merged(tiny.read_text(), "batch_size = 10000000\n"))
    code, _, err = _cli(["train", "--data", DATA, "--config", cfg, "--out", tmp_path / "a", "--quiet"], capsys)
    fits = int(re.search(r"the largest batch_size that fits is (\d+)", err[0]).group(1))
    assert 1000 < fits < 10_000_000
    from scorefield.data import load
    from scorefield.train import TrainConfig, load_toml, resolve
    from scorefield.train._build import build_model, build_objective, keys
    from scorefield.train._memory import check_train_memory

    c = resolve(TrainConfig.from_dict({**load_toml(tiny), "data": DATA, "batch_size": fits}), load(DATA))
    check_train_memory(c, build_objective(c), lambda: build_model(c, key=keys(c)["model"]))  # no error


def test_out_of_memory_in_the_first_call_is_one_line_and_leaves_no_run(tmp_path, tiny, capsys, monkeypatch):
    """XLA running out of memory (what a lower-bound estimate can miss) in the first compiled
    call: one line, exit 1, and the new run directory is left as it was (empty), so that the
    same command with a smaller batch works without --resume."""
    import scorefield.train._loop as loop

    def make_chunk(*a, **k):
        def chunk(*a, **k):
            raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 116800263176 bytes.")
        return chunk

    monkeypatch.setattr(loop, "make_chunk", make_chunk)
    out = tmp_path / "run"
    code, _, err = _cli(["train", "--data", DATA, "--config", tiny, "--out", out, "--quiet"], capsys)
    assert code == 1 and len(err) == 1 and "ran out of memory" in err[0] and "lower batch_size" in err[0], err
    assert list(out.iterdir()) == []  # no config.json, no log, no lock


def test_a_changed_data_file_is_refused_on_resume_unless_accepted(tmp_path, tiny, capsys):
    pts = tmp_path / "pts.npy"
    np.save(pts, np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32))
    out = tmp_path / "run"
    assert _cli(["train", "--data", f"points:{pts}", "--config", tiny, "--out", out, "--quiet"], capsys)[0] == 0
    recorded = json.loads((out / "config.json").read_text())["data_file"]
    assert recorded["path"] == str(pts) and len(recorded["sha256"]) == 64 and recorded["bytes"] == pts.stat().st_size
    # the file changed to other 3-D points: named as changed (before, a TypeError on shapes)
    np.save(pts, np.random.default_rng(1).normal(size=(64, 3)).astype(np.float32))
    before = (out / "config.json").read_text()
    code, _, err = _cli(["train", "--out", out, "--resume", "--steps", 20, "--quiet"], capsys)
    assert code == 2 and len(err) == 1 and "has changed since the run was trained on it" in err[0], err
    assert "--accept-changed-data" in err[0]
    code, _, err = _cli(["train", "--out", out, "--resume", "--steps", 20, "--quiet", "--accept-changed-data"], capsys)
    assert code == 2 and len(err) == 1 and "now have dimension 3" in err[0], err  # accepted, but it cannot fit
    assert (out / "config.json").read_text() == before
    # other 2-D points: refused, then accepted with the flag, and the new contents recorded
    np.save(pts, np.random.default_rng(2).normal(size=(64, 2)).astype(np.float32))
    assert _cli(["train", "--out", out, "--resume", "--steps", 20, "--quiet"], capsys)[0] == 2
    code, _, err = _cli(["train", "--out", out, "--resume", "--steps", 20, "--quiet", "--accept-changed-data"], capsys)
    assert code == 0, err
    assert json.loads((out / "config.json").read_text())["data_file"]["sha256"] != recorded["sha256"]
    assert json.loads((out / "checkpoint.json").read_text())["step"] == 20


def test_an_error_is_never_preceded_by_the_start_banner(tmp_path, tiny, capsys, monkeypatch):
    """Without --quiet `train` prints a start line; errors found while opening the run
    (an existing run, a size that cannot fit) came after it, two lines in all."""
    out = tmp_path / "run"
    code, _, err = _cli(["train", "--data", DATA, "--config", tiny, "--out", out], capsys)
    assert code == 0 and len(err) == 1 and err[0].startswith("scorefield train: toy:ncsn-mixture ->"), err
    code, _, err = _cli(["train", "--data", DATA, "--config", tiny, "--out", out], capsys)
    assert code == 2 and len(err) == 1 and "already holds a run" in err[0], err
    monkeypatch.setenv("SCOREFIELD_MEMORY_LIMIT", str(int(100e6)))
    code, _, err = _cli(["train", "--data", DATA, "--config", tiny, "--out", tmp_path / "b", "--batch-size",
                         10_000_000], capsys)
    assert code == 2 and len(err) == 1 and "batch_size" in err[0], err
