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
from _tiny import SIGMA_NET, tiny_toml  # noqa: E402

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
    p.write_text(tiny_toml(10) + SIGMA_NET)
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


# --- sample and plot: sizes and outputs checked before any work -------------------------------


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """A tiny run (10 steps) on a 16x16 image file, and that file."""
    from PIL import Image

    d = tmp_path_factory.mktemp("imgrun")
    a = np.zeros((16, 16), np.uint8)
    a[4:12, 4:12] = 255
    Image.fromarray(a).save(d / "img.png")
    cfg = d / "tiny.toml"
    cfg.write_text(_merged(tiny_toml(10), "centre = [0.5, 0.5]\nsigma_max = 1.0\nsigma_min = 0.01\n"))
    assert main(["train", "--data", f"image:{d / 'img.png'}", "--config", str(cfg), "--out", str(d / "run"),
                 "--quiet"]) == 0
    return d / "run", d / "img.png"


def _plot_cases(run, img, tmp):
    (tmp / "afile").write_text("x")
    return [
        (["plot", "samples", "--run", run, "--out", img], "is the data file of --run"),
        (["plot", "loss", "--run", run, "--out", tmp / "afile" / "x.png"], "cannot be written"),
        (["plot", "samples", "--run", run, "--out", tmp / "p.png", "--dpi", 100000], "the largest --dpi that fits is"),
        (["plot", "samples", "--run", run, "--out", tmp / "p.png", "--bins", 100000], "the largest --bins allowed is"),
        (["sample", "--run", run, "--n", 10, "--out", tmp / "img.npy", "--trajectory", run / "config.json"],
         "must be a .npy file name"),
    ]


def test_plot_and_sample_outputs_and_sizes_are_refused_before_work(image_run, tmp_path, capsys):
    run, img = image_run
    before = img.read_bytes()
    for argv, needle in _plot_cases(run, img, tmp_path):
        code, _, err = _cli(argv, capsys)
        assert code == 2 and len(err) == 1 and needle in err[0], (argv, err)
        assert "Traceback" not in err[0] and "internal error" not in err[0]
    assert img.read_bytes() == before  # the training image was not overwritten by a figure
    assert not (tmp_path / "p.png").exists()


def test_sample_over_the_runs_own_data_file_is_refused(tmp_path, tiny, capsys):
    pts = tmp_path / "pts.npy"
    np.save(pts, np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32))
    before = pts.read_bytes()
    out = tmp_path / "run"
    assert _cli(["train", "--data", f"points:{pts}", "--config", tiny, "--out", out, "--quiet"], capsys)[0] == 0
    for flag in ("--out", "--trajectory"):
        argv = ["sample", "--run", out, "--n", 10, "--out", tmp_path / "s.npy", flag, pts]
        if flag == "--out":
            argv = ["sample", "--run", out, "--n", 10, "--out", pts]
        code, _, err = _cli(argv, capsys)
        assert code == 2 and len(err) == 1 and f"{flag} {pts} is the data file of --run" in err[0], err
    assert pts.read_bytes() == before and not (tmp_path / "s.npy").exists()


@pytest.mark.parametrize("extra, needle", [
    ([], "--n 100000000 samples of dimension 2 need about"),
    (["--trajectory", "{tmp}/t.npy", "--trajectory-every", "1"], "--trajectory-every 1 records"),
], ids=["n", "trajectory"])
def test_samples_that_cannot_fit_in_memory_are_refused_before_sampling(tmp_path, capsys, monkeypatch, extra, needle):
    monkeypatch.setenv("SCOREFIELD_MEMORY_LIMIT", str(int(200e6)))
    n = 100_000_000 if not extra else 1_000_000
    argv = ["sample", "--exact", DATA, "--n", n, "--out", tmp_path / "s.npy", "--quiet"]
    argv += [a.replace("{tmp}", str(tmp_path)) for a in extra]
    code, _, err = _cli(argv, capsys)
    assert code == 2 and len(err) == 1 and needle in err[0] and " fit" in err[0], err
    assert list(tmp_path.iterdir()) == []


def test_library_sample_refuses_what_cannot_fit(monkeypatch):
    import jax

    from scorefield import samplers as S
    from scorefield._errors import InputError

    monkeypatch.setenv("SCOREFIELD_MEMORY_LIMIT", str(int(10e6)))
    sampler = S.SAMPLERS.build("langevin", S.SamplerContext(dim=2, sigma_max=1.0, sigma_min=0.1), {"steps": 10})
    with pytest.raises(InputError, match=r"n=10000000 samples .* the largest n that fits is \d+"):
        S.sample(sampler, lambda x, s: -x, jax.random.key(0), n=10_000_000, dim=2, init=S.UniformInit(-1.0, 1.0))


def test_sigma_0_with_a_score_sampler_on_an_image_target_is_refused(tmp_path, capsys):
    """--sigma 0 is the unsmoothed density; an image's is constant inside each pixel, so the
    score sampler diverged at step 0 ('lower the step size') before."""
    code, _, err = _cli(["sample", "--exact", "mnist", "--sampler", "langevin", "--sigma", 0, "--n", 10,
                         "--out", tmp_path / "s.npy", "--quiet"], capsys)
    assert code == 2 and len(err) == 1 and "--sigma 0" in err[0] and "--sigma 0.0357" in err[0], err
    assert "step size" not in err[0] and not (tmp_path / "s.npy").exists()


def test_a_late_write_error_of_a_figure_is_one_line(image_run, tmp_path, capsys, monkeypatch):
    import errno

    import scorefield.plot as plot

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(plot, "save_figure", full)
    run, _ = image_run
    code, _, err = _cli(["plot", "loss", "--run", run, "--out", tmp_path / "loss.png"], capsys)
    assert code == 1 and len(err) == 1 and "could not write" in err[0] and "No space left" in err[0], err


# --- item 8: a full disk on --resume -----------------------------------------------------------


@pytest.fixture
def small_fs(tmp_path):
    """A 4 MiB tmpfs (root only; skipped with the reason otherwise), unmounted afterwards."""
    import subprocess

    mnt = tmp_path / "fs"
    mnt.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({p.stderr.strip() or 'mount failed'}); needs root")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill(path: Path) -> None:
    """Write zeros into `path` until the file system is full."""
    import errno

    with open(path, "wb", buffering=0) as f:
        block = b"\0" * 65536
        while True:
            try:
                f.write(block)
            except OSError as e:
                assert e.errno == errno.ENOSPC
                break
        while True:  # the last partial block
            try:
                f.write(b"\0" * 512)
            except OSError:
                break


def test_resume_on_a_full_disk_is_one_line_and_changes_nothing(small_fs, tiny, capsys):
    """A real full file system (tmpfs): --resume says how much is free and needed, exit 1,
    and leaves the run as it was (before: "internal error: OSError [Errno 28]" and an empty
    metrics.tmp); once space is freed the same command resumes."""
    run = small_fs / "run"
    small = tiny.parent / "small.toml"  # a run that fits the small file system twice over
    small.write_text(tiny.read_text() + "grid_resolutions = [4, 8]\n")
    assert _cli(["train", "--data", DATA, "--config", small, "--out", run, "--quiet"], capsys)[0] == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.name != ".lock"}
    _fill(small_fs / "filler")
    code, _, err = _cli(["train", "--out", run, "--resume", "--steps", 20, "--quiet"], capsys)
    assert code == 1 and len(err) == 1 and "MiB free" in err[0] and str(run) in err[0], err
    after = {p.name: p.read_bytes() for p in run.iterdir() if p.name != ".lock"}
    assert after == before  # no metrics.tmp, no temporary, the log and checkpoint untouched
    (small_fs / "filler").unlink()
    code, _, err = _cli(["train", "--out", run, "--resume", "--steps", 20, "--quiet"], capsys)
    assert code == 0, err
    assert json.loads((run / "checkpoint.json").read_text())["step"] == 20


def test_enospc_when_resume_rewrites_the_log_is_one_line(tmp_path, tiny, capsys, monkeypatch):
    """The free-space check passes but the disk fills before the log is rewritten (another
    writer): one line naming the log and the intact checkpoint, exit 1, nothing left over."""
    import errno

    from scorefield.train import _rundir

    run = tmp_path / "run"
    assert _cli(["train", "--data", DATA, "--config", tiny, "--out", run, "--quiet"], capsys)[0] == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.name != ".lock"}

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_rundir._fs, "write_atomic", full)
    code, _, err = _cli(["train", "--out", run, "--resume", "--steps", 20, "--quiet"], capsys)
    assert code == 1 and len(err) == 1, err
    assert "metrics.jsonl (No space left on device)" in err[0] and "checkpoint (step 10) is intact" in err[0], err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.name != ".lock"} == before


@pytest.mark.parametrize("data, over", [
    ("mnist", {}),  # the grid net with pixel-edge features and a pixel table
    ("toy:two-moons", {}),  # the grid net without them (their fields None)
    ("toy:two-moons", {"net": "energy"}),
    ("toy:two-moons", {"net": "sigma"}),
])
def test_the_memory_estimate_follows_every_network_it_is_asked_about(data, over):
    # the check skips itself when the estimate raises, so an estimate that fails on a network
    # would silently let an impossible size through: it must run, and count the trained arrays
    import equinox as eqx
    import jax

    from scorefield.data import load
    from scorefield.nets import trainable
    from scorefield.train import preset, resolve
    from scorefield.train._build import build_model, build_objective
    from scorefield.train._memory import estimate

    config = resolve(preset("default", data=data, **over), load(data))
    model = build_model(config, key=jax.random.PRNGKey(0))
    est = estimate(config, build_objective(config), eqx.filter_eval_shape(build_model, config, key=jax.random.PRNGKey(0)))
    trained = eqx.filter(model, trainable(model))
    assert est["params"] == sum(leaf.size * 4 for leaf in jax.tree_util.tree_leaves(trained))
    assert est["total"] >= est["state"] > est["params"] > 0
