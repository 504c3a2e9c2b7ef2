"""Reliability II (issue 14): special files, bounded reads, float32 range, seeds, limits,
strict JSON and clear messages. Each case here failed before its fix; the table runs every
command in process through `scorefield.cli.main` and asserts the exit code, exactly one
line on stderr, the words that name the cause, and that nothing was written."""

import gzip
import io
import json
import math
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from scorefield import CheckpointError, ConfigError, DataSpecError
from scorefield.cli import main

sys.path.insert(0, str(Path(__file__).parent))
from _tiny import SIGMA_NET, tiny_toml  # noqa: E402

DATA = "toy:ncsn-mixture"


def _run_cli(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as e:  # argparse usage errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def _fill(text: str, ws: dict) -> str:
    for k, v in ws.items():
        text = text.replace("{" + k + "}", v)
    return text


def _npy_claiming_rows(path: Path, rows: int, cols: int = 2) -> None:
    """A .npy file whose header claims (rows, cols) float32 but which holds 80 bytes."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (rows, cols)})
    path.write_bytes(buf.getvalue() + b"\0" * 80)


def _idx_header(shape, code=0x08) -> bytes:
    return bytes([0, 0, code, len(shape)]) + np.asarray(shape, ">u4").tobytes()


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """Files for the table; placeholders {name} in the table are paths in here."""
    from PIL import Image

    d = tmp_path_factory.mktemp("inputs")
    os.mkfifo(d / "fifo.npy")
    os.mkfifo(d / "fifo.png")
    os.mkfifo(d / "fifo.toml")
    os.mkfifo(d / "fifo.csv")
    os.symlink("/dev/zero", d / "zero-link.npy")
    np.savez(d / "archive.npz", a=np.zeros((4, 2)))
    shutil.copy(d / "archive.npz", d / "archive.npy")  # an npz renamed .npy
    (d / "zeros.npy").write_bytes(b"\0" * 4096)
    _npy_claiming_rows(d / "claims.npy", 10**11)
    (d / "big.csv").write_text("0,0\n1,1\n2,1e39\n3,3\n")
    np.save(d / "big64.npy", np.array([[0.0, 0.0], [1.0, 1e39]]))
    np.save(d / "huge.npy", np.full((50, 2), 1e30, np.float32))
    np.save(d / "one.npy", np.ones((1, 2), np.float32))
    np.save(d / "same.npy", np.full((20, 2), 3.0, np.float32))
    Image.new("L", (8, 8), 255).save(d / "white.png")
    (d / "seed.toml").write_text("seed = -1\n")
    (d / "nll.toml").write_text("pixel_table_nll = inf\n")
    (d / "gate.toml").write_text('pixel_table_gate = "yes"\n')
    (d / "bigseed.toml").write_text("seed = 9223372036854775807\nsteps = 2147483648\n")
    (d / "dim3.toml").write_text("dim = 3\n")
    (d / "tiny.toml").write_text(tiny_toml(10) + SIGMA_NET)
    np.save(d / "good.npy", np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32))
    return {k: str(d / k) for k in os.listdir(d)} | {"tmp": str(d)}


@pytest.fixture(scope="module")
def run_dir(ws):
    """A tiny finished run (10 steps)."""
    out = Path(ws["tmp"]) / "run"
    assert main(["train", "--data", DATA, "--config", ws["tiny.toml"], "--out", str(out), "--quiet"]) == 0
    return out


TRAIN = ["train", "--quiet", "--out", "{tmp}/new"]
CASES = [
    # 11: special files are refused before they are opened (they would block or never end)
    (TRAIN + ["--data", "points:{fifo.npy}"], 2, "FIFO"),
    (TRAIN + ["--data", "points:{fifo.csv}"], 2, "FIFO"),
    (TRAIN + ["--data", "image:{fifo.png}"], 2, "FIFO"),
    (TRAIN + ["--data", DATA, "--config", "{fifo.toml}"], 2, "FIFO"),
    (["eval", "--data", DATA, "--samples", "{fifo.npy}"], 2, "FIFO"),
    (TRAIN + ["--data", "mnist-idx:/dev/zero"], 2, "character device"),
    (TRAIN + ["--data", "points:{zero-link.npy}"], 2, "character device"),
    # 10: a header claiming 10^11 rows is refused from the header, without reading
    (TRAIN + ["--data", "points:{claims.npy}"], 2, "truncated: its header promises shape (100000000000, 2)"),
    (["eval", "--data", DATA, "--samples", "{claims.npy}"], 2, "truncated"),
    # 15: values beyond float32's range, caught after the cast, naming the file and row
    (TRAIN + ["--data", "points:{big.csv}"], 2, "big.csv' has 1 row(s) with values beyond float32's range (first: row 2"),
    (TRAIN + ["--data", "points:{big64.npy}"], 2, "(first: row 1"),
    (["eval", "--data", DATA, "--samples", "{big64.npy}"], 2, "beyond float32's range (first: row 1"),
    # 13: samples whose distances overflow float32 are refused instead of giving nan metrics
    (["eval", "--data", DATA, "--samples", "{huge.npy}"], 2, "too large to compute distances in float32"),
    (TRAIN + ["--steps", str(10**40), "--data", DATA], 2, "the largest allowed is 2147483647"),
    (TRAIN + ["--data", DATA, "--config", "{bigseed.toml}"], 2, "steps=2147483648 is too large"),
    # a sampler's counts: each option, and the steps and evaluations they multiply to, fit int32
    # (before: "internal error: OverflowError" from inside the compiled step)
    (["sample", "--exact", DATA, "--n", "4", "--out", "{tmp}/s.npy", "--corrector-steps", str(2**80)], 2,
     "at most 2147483647 in magnitude"),
    (["sample", "--exact", DATA, "--n", "4", "--out", "{tmp}/s.npy", "--levels", "2", "--corrector-steps",
      str(2**31 - 1)], 2, "--corrector-steps 2147483647 must be at most 1073741822 over 2 levels"),
    (["sample", "--exact", DATA, "--n", "4", "--out", "{tmp}/s.npy", "--sampler", "annealed", "--levels", "2",
      "--steps-per-level", str(2**31 - 1)], 2, "= 4294967294 steps per particle, more than 2147483647"),
    # 12: one seed rule everywhere
    (TRAIN + ["--data", DATA, "--seed", str(2**70)], 2, "a seed is an integer in [0, 2^63)"),
    (TRAIN + ["--data", DATA, "--seed", str(2**63)], 2, "a seed is an integer in [0, 2^63)"),
    (TRAIN + ["--data", DATA, "--config", "{seed.toml}"], 2, "seed=-1 is out of range"),
    (["sample", "--exact", DATA, "--n", "10", "--out", "{tmp}/s.npy", "--seed", "-1"], 2, "[0, 2^63)"),
    (["sample", "--exact", DATA, "--n", "10", "--out", "{tmp}/s.npy", "--seed", str(2**64)], 2, "[0, 2^63)"),
    (["demo", "--fast", "--quiet", "--out", "{tmp}/demo", "--seed", "-1"], 2, "[0, 2^63)"),
    (["eval", "--data", DATA, "--samples", "{good.npy}", "--seed", "-1"], 2, "[0, 2^63)"),
    (["plot", "samples", "--run", "{tmp}/run", "--out", "{tmp}/p.png", "--seed", str(2**63)], 2, "[0, 2^63)"),
    # 17: messages that name the real cause
    (TRAIN + ["--data", "points:{one.npy}"], 2, "one.npy have no spread"),
    (TRAIN + ["--data", "points:{same.npy}"], 2, "same.npy have no spread"),
    (TRAIN + ["--data", "points:{archive.npy}"], 2, "is a .npz archive, not a .npy array"),
    (TRAIN + ["--data", "points:{zeros.npy}"], 2, "zero-filled"),
    (["eval", "--data", DATA, "--samples", "{archive.npy}"], 2, "is a .npz archive"),
    (TRAIN + ["--data", "image:{white.png},invert"], 2, "drop invert"),
    (TRAIN + ["--data", DATA, "--coordinator", "not a host", "--num-processes", "2", "--process-id", "1"], 2,
     "'not a host' is not HOST:PORT"),
    # 14: a config that does not fit the data
    (TRAIN + ["--data", DATA, "--config", "{dim3.toml}"], 2, "dim=3 does not fit the data"),
    # the pixel table's maximum-likelihood weight: a number >= 0, finite
    (TRAIN + ["--data", DATA, "--pixel-table-nll", "-1"], 2, "--pixel-table-nll: -1 must be a number >= 0"),
    (TRAIN + ["--data", DATA, "--pixel-table-nll", "nan"], 2, "--pixel-table-nll: nan must be a number >= 0"),
    (TRAIN + ["--data", DATA, "--config", "{nll.toml}"], 2, "pixel_table_nll=inf must be a finite number >= 0"),
    (TRAIN + ["--data", DATA, "--config", "{gate.toml}"], 2, "pixel_table_gate='yes' must be true or false"),
    # 18: no command: a short usage, exit 2
    ([], 2, "usage: scorefield"),
]


@pytest.mark.parametrize("argv, code, needle", CASES, ids=[" ".join(c[0])[:90] for c in CASES])
def test_bad_input_is_one_line_naming_the_cause(ws, run_dir, capsys, argv, code, needle):
    argv = [_fill(a, ws) for a in argv]
    got, out, err = _run_cli(argv, capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert got == code, (got, err)
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert needle in lines[0], lines[0]
    for left in ("new", "s.npy", "demo", "p.png"):
        assert not (Path(ws["tmp"]) / left).exists(), left


def test_fifo_as_data_does_not_hang_in_a_real_process(ws):
    """The FIFO case end to end: a child process answers at once (before the fix it blocked
    in open() until killed)."""
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    for spec in (f"points:{ws['fifo.npy']}", f"image:{ws['fifo.png']}"):
        p = subprocess.run([sys.executable, "-m", "scorefield.cli", "train", "--data", spec, "--out", ws["tmp"] + "/fifo-run"],
                           capture_output=True, text=True, timeout=60, env=env)
        assert p.returncode == 2 and "FIFO" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_gzip_idx_is_read_only_as_far_as_its_header_says(tmp_path):
    """A 100 kB gzip file that expands to 50 MB: one image reads only the header and that
    image; reading the whole file refuses the data beyond what the header promises."""
    from scorefield.data import idx_image, read_idx

    img = np.arange(28 * 28, dtype=np.uint8).reshape(28, 28)
    p = tmp_path / "bomb-idx3-ubyte.gz"
    with gzip.open(p, "wb") as f:
        f.write(_idx_header((2, 28, 28)) + img.tobytes() + img.tobytes())
        for _ in range(50):
            f.write(b"\0" * (1 << 20))
    assert p.stat().st_size < 200_000
    np.testing.assert_array_equal(idx_image(str(p), 1), img / 255.0)
    with pytest.raises(DataSpecError, match="holds more data than its header"):
        read_idx(str(p))


def test_idx_header_beyond_free_memory_is_refused(tmp_path, monkeypatch):
    from scorefield.data import idx_image, read_idx

    p = tmp_path / "many-idx3-ubyte.gz"
    with gzip.open(p, "wb") as f:
        f.write(_idx_header((100_000, 28, 28)) + b"\1" * 28 * 28)
    monkeypatch.setenv("SCOREFIELD_MEMORY_LIMIT", str(10 << 20))
    with pytest.raises(DataSpecError, match="more than the free memory"):
        read_idx(str(p))
    assert idx_image(str(p), 0).shape == (28, 28)  # one image still reads
    with pytest.raises(DataSpecError, match="truncated"):
        idx_image(str(p), 5)


def test_npy_beyond_free_memory_names_the_rows_that_fit(tmp_path, monkeypatch):
    from scorefield.data import read_points

    p = tmp_path / "many.npy"
    np.save(p, np.zeros((100_000, 2), np.float32))
    monkeypatch.setenv("SCOREFIELD_MEMORY_LIMIT", str(1 << 20))
    with pytest.raises(DataSpecError, match=r"more than the free memory .* at most 21845 rows fit"):
        read_points(str(p))


def test_utf8_csv_with_a_byte_order_mark_keeps_its_first_row(tmp_path):
    from scorefield.data import read_points

    p = tmp_path / "bom.csv"
    p.write_text("1,2\n3,4\n5,6\n", encoding="utf-8-sig")
    assert p.read_bytes()[:3] == b"\xef\xbb\xbf"
    np.testing.assert_array_equal(read_points(str(p)), [[1, 2], [3, 4], [5, 6]])


@pytest.mark.parametrize("orientation, transpose", [(6, "ROTATE_270"), (3, "ROTATE_180"), (8, "ROTATE_90")])
def test_exif_orientation_is_applied(tmp_path, orientation, transpose):
    """A photograph stored sideways with an EXIF orientation tag is read as a viewer shows it."""
    from PIL import Image

    from scorefield.data import read_image

    raw = np.zeros((6, 10), np.uint8)
    raw[0, :3] = 255  # a mark in the stored top-left corner
    raw[5, 9] = 128
    im = Image.fromarray(raw)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.png"
    im.save(path, exif=exif)
    want = np.asarray(im.transpose(getattr(Image.Transpose, transpose)), np.float64) / 255.0
    got = read_image(str(path))
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_seed_keys_are_distinct_and_unchanged_below_2_32():
    import jax

    from scorefield._seed import seed_key
    from scorefield.train import preset
    from scorefield.train._build import keys

    data = lambda k: tuple(np.asarray(jax.random.key_data(k)).tolist())  # noqa: E731
    for s in (0, 1, 12345, 2**31, 2**32 - 1):  # the keys every existing run was made with
        assert data(seed_key(s)) == data(jax.random.key(s))
        assert np.array_equal(seed_key(s, raw=True), jax.random.PRNGKey(s))
    seeds = [0, 1, 2**32, 2**32 + 1, 2**33, 2**40, 2**63 - 1, 2**63 - 2**32]
    assert len({data(seed_key(s)) for s in seeds}) == len(seeds)
    # the training keys too: seed 0 and seed 2^32 are different runs
    k0 = keys(preset("fast", seed=0))["model"]
    k1 = keys(preset("fast", seed=2**32))["model"]
    assert not np.array_equal(k0, k1)
    for bad in (-1, 2**63, 2**70, 1.5, True, "3"):
        with pytest.raises(ConfigError, match="seed"):
            preset("fast", seed=bad)


def test_info_json_is_strict_json_and_skips_odd_log_lines(run_dir, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    with open(run / "metrics.jsonl", "a") as f:
        f.write("[1, 2]\n\"text\"\n{\"step\": 9, \"loss\": NaN, \"wall\": 1.0}\n")
    code, out, err = _run_cli(["info", "--run", str(run), "--json"], capsys)
    assert code == 0, err

    def refuse(name):
        raise AssertionError(f"{name} is not JSON")

    info = json.loads(out, parse_constant=refuse)
    assert info["last_loss"] is None and info["steps_done"] == 10
    code, out, err = _run_cli(["info", "--run", str(run)], capsys)
    assert code == 0 and err == "", err


def test_eval_metrics_that_overflow_are_an_error_not_nan(monkeypatch, ws, capsys):
    """Below the magnitude bound a metric can still overflow (here forced): exit 1, one line."""
    import scorefield.metrics as M

    real = M.evaluate
    monkeypatch.setattr(M, "evaluate", lambda *a, **k: {**real(*a, **k), "energy_distance": math.nan})
    code, out, err = _run_cli(["eval", "--data", DATA, "--samples", ws["good.npy"], "--repeats", "2"], capsys)
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1 and "energy_distance" in err, err


@pytest.mark.parametrize("damage, says", [
    ("zeros", "is zero-filled"),
    ("self", "names itself"),
    ("symlink", "(a symbolic link to"),
    ("text", "is a text file, not a checkpoint array file"),
])
def test_damaged_checkpoint_files_are_named_for_what_they_are(run_dir, tmp_path, damage, says):
    from scorefield.train import load_run

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    ptr = json.loads((run / "checkpoint.json").read_text())
    arr = run / ptr["file"]
    if damage == "zeros":
        arr.write_bytes(b"\0" * arr.stat().st_size)
    elif damage == "self":
        (run / "checkpoint.json").write_text(json.dumps({**ptr, "file": "checkpoint.json"}))
    elif damage == "symlink":
        arr.unlink()
        target = tmp_path / "passwd"
        target.write_text("root:x:0:0:root:/root:/bin/bash\n")
        arr.symlink_to(target)
    else:
        arr.write_text("hello\n")
    with pytest.raises(CheckpointError) as e:
        load_run(run)
    assert says in str(e.value) and "pickled" not in str(e.value)


def test_config_json_claiming_another_dim_is_refused(run_dir, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    c = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**c, "dim": 3}))
    code, out, err = _run_cli(["sample", "--run", str(run), "--n", "10", "--out", str(tmp_path / "s.npy")], capsys)
    assert code == 2 and "dim=3 but centre has 2 entries" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "s.npy").exists()


def test_relative_data_paths_are_stored_absolute(ws, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ws["tmp"])
    out = tmp_path / "rel"
    code, _, err = _run_cli(["train", "--data", "points:good.npy", "--config", "tiny.toml", "--out", str(out), "--quiet"],
                            capsys)
    assert code == 0, err
    assert json.loads((out / "config.json").read_text())["data"] == f"points:{ws['good.npy']}"
