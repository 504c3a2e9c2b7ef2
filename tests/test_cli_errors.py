"""Every bad input answered: each command, fed missing, empty, mistyped, random or
out-of-range input, exits 2 (bad input) or 1 (failure at run time) with one line on
stderr that names what was wrong, and no traceback. In-process through
`scorefield.cli.main`; argparse's usage errors arrive as SystemExit(2)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from scorefield.cli import main
from scorefield.train import preset, train

# the run the cases read: the random-feature network (not the preset's grid network, which
# costs more to build, compile and train); the cases check the command line, not the network
TINY = dict(data="toy:ncsn-mixture", net="sigma", width=16, depth=1, n_features=8, batch_size=32, steps=20,
            steps_per_call=10, log_every=10, checkpoint_every=20, sigma_max=10.0, sigma_min=0.05, centre=[0.0, 0.0])


def _png_header(width: int, height: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 8)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> dict[str, str]:
    """A workspace of good and bad files; its paths fill the {placeholders} of the table."""
    d = tmp_path_factory.mktemp("ws")
    rng = np.random.default_rng(0)
    run = d / "run"
    train(preset("fast", **TINY), run, progress=False)
    norun = d / "norun"  # config.json but no checkpoint: killed before its first one
    norun.mkdir()
    shutil.copy(run / "config.json", norun / "config.json")
    badcfg = d / "badcfg"  # a run whose config.json is random bytes
    shutil.copytree(run, badcfg)
    (badcfg / "config.json").write_bytes(rng.bytes(300))
    oddcfg = d / "oddcfg"  # a run whose config.json holds an invalid value
    shutil.copytree(run, oddcfg)
    c = json.loads((run / "config.json").read_text())
    (oddcfg / "config.json").write_text(json.dumps({**c, "sigma_min": 5.0, "sigma_max": 1.0}))
    (d / "emptydir").mkdir()
    (d / "file").write_text("a regular file\n")
    (d / "empty.npy").write_bytes(b"")
    (d / "empty.png").write_bytes(b"")
    (d / "empty.toml").write_bytes(b"")
    (d / "random.npy").write_bytes(rng.bytes(2000))
    (d / "random.png").write_bytes(rng.bytes(2000))
    (d / "random.toml").write_bytes(rng.bytes(2000))
    (d / "text.png").write_text("not an image\n")
    (d / "bomb.png").write_bytes(_png_header(60_000, 60_000))  # 3.6e9 pixels declared
    (d / "points.txt").write_text("1,2\n3,4\n")
    np.save(d / "good.npy", rng.normal(size=(50, 2)).astype(np.float32))
    np.save(d / "nan.npy", np.full((50, 2), np.nan, np.float32))
    np.save(d / "threecol.npy", rng.normal(size=(50, 3)).astype(np.float32))
    np.save(d / "vector.npy", rng.normal(size=50).astype(np.float32))
    np.save(d / "strings.npy", np.array(["a", "b"]))
    for name, text in {
        "inverted.toml": "sigma_min = 2.0\nsigma_max = 1.0\n",
        "equal.toml": "sigma_min = 1.0\nsigma_max = 1.0\n",
        "nanlr.toml": "lr = nan\n",
        "neglr.toml": "lr = -0.001\n",
        "zerosteps.toml": "steps = 0\n",
        "negbatch.toml": "batch_size = -4\n",
        "unknown.toml": "learning_rate = 0.1\n",
        "typo.toml": "lr = \"fast\"\n",
        "badnet.toml": "net = \"transformer\"\n",
        "badtoml.toml": "lr = = 1\n",
        "emadecay.toml": "ema_decay = 1.5\n",
        "infsigma.toml": "sigma_max = inf\n",
        "boolsteps.toml": "steps = true\n",
        "centre.toml": "centre = [0.0, 0.0, 0.0]\n",
        "version.toml": "format_version = 7\n",
    }.items():
        (d / name).write_text(text)
    return {"tmp": str(d), "run": str(run), "norun": str(norun), "badcfg": str(badcfg), "oddcfg": str(oddcfg)}


T, S, E, P, I, D = "train", "sample", "eval", "plot", "info", "demo"
TRAIN = ["train", "--quiet", "--out", "{tmp}/new"]
SAMPLE = ["sample", "--quiet", "--n", "10"]

# (argv, exit code, a substring of the one stderr line: what was wrong, or what is valid)
CASES = [
    # --- train: data specs
    (TRAIN + ["--data", "image:{tmp}/missing.png"], 2, "missing.png"),
    (TRAIN + ["--data", "image:{tmp}/emptydir"], 2, "is a directory"),
    (TRAIN + ["--data", "image:{tmp}/random.png"], 2, "random.png"),
    (TRAIN + ["--data", "image:{tmp}/empty.png"], 2, "empty.png"),
    (TRAIN + ["--data", "image:{tmp}/text.png"], 2, "text.png"),
    (TRAIN + ["--data", "image:{tmp}/bomb.png"], 2, "bomb.png"),
    (TRAIN + ["--data", "points:{tmp}/empty.npy"], 2, "empty.npy"),
    (TRAIN + ["--data", "points:{tmp}/random.npy"], 2, "random.npy"),
    (TRAIN + ["--data", "points:{tmp}/nan.npy"], 2, "NaN"),
    (TRAIN + ["--data", "points:{tmp}/vector.npy"], 2, "N x D"),
    (TRAIN + ["--data", "points:{tmp}/strings.npy"], 2, "strings.npy"),
    (TRAIN + ["--data", "points:{tmp}/points.txt"], 2, ".npy or .csv"),
    (TRAIN + ["--data", "toy:nope"], 2, "toy:two-moons"),
    (TRAIN + ["--data", "nonsense"], 2, "nonsense"),
    (TRAIN + ["--data", ""], 2, "data"),
    (TRAIN + ["--data", "mnist:label=12"], 2, "label"),
    (["train", "--quiet", "--out", "{tmp}/new"], 2, "--data is required"),
    # --- train: numbers and choices
    (TRAIN + ["--data", "toy:ncsn-mixture", "--steps", "0"], 2, "positive integer"),
    (TRAIN + ["--data", "toy:ncsn-mixture", "--steps", "-5"], 2, "positive integer"),
    (TRAIN + ["--data", "toy:ncsn-mixture", "--steps", "ten"], 2, "integer"),
    (TRAIN + ["--data", "toy:ncsn-mixture", "--batch-size", "0"], 2, "positive integer"),
    (TRAIN + ["--data", "toy:ncsn-mixture", "--seed", "-1"], 2, "[0, 2^63)"),
    (TRAIN + ["--data", "toy:ncsn-mixture", "--preset", "turbo"], 2, "invalid choice"),
    # --- train: config files
    (TRAIN + ["--data", "toy:ncsn-mixture", "--config", "{tmp}/missing.toml"], 2, "does not exist"),
    (TRAIN + ["--data", "toy:ncsn-mixture", "--config", "{tmp}/emptydir"], 2, "emptydir"),
    (TRAIN + ["--data", "toy:ncsn-mixture", "--config", "{tmp}/random.toml"], 2, "random.toml"),
    (TRAIN + ["--data", "toy:ncsn-mixture", "--config", "{tmp}/badtoml.toml"], 2, "not valid TOML"),
    (TRAIN + ["--data", "toy:ncsn-mixture", "--config", "{tmp}/inverted.toml"], 2, "sigma_min"),
    (TRAIN + ["--data", "toy:ncsn-mixture", "--config", "{tmp}/equal.toml"], 2, "smaller than sigma_max"),
    (TRAIN + ["--data", "toy:ncsn-mixture", "--config", "{tmp}/nanlr.toml"], 2, "lr="),
    (TRAIN + ["--data", "toy:ncsn-mixture", "--config", "{tmp}/neglr.toml"], 2, "positive finite"),
    (TRAIN + ["--data", "toy:ncsn-mixture", "--config", "{tmp}/zerosteps.toml"], 2, "steps=0"),
    (TRAIN + ["--data", "toy:ncsn-mixture", "--config", "{tmp}/negbatch.toml"], 2, "batch_size=-4"),
    (TRAIN + ["--data", "toy:ncsn-mixture", "--config", "{tmp}/unknown.toml"], 2, "learning_rate"),
    (TRAIN + ["--data", "toy:ncsn-mixture", "--config", "{tmp}/typo.toml"], 2, "lr="),
    (TRAIN + ["--data", "toy:ncsn-mixture", "--config", "{tmp}/badnet.toml"], 2, "is not one of auto, reference"),
    (TRAIN + ["--data", "toy:ncsn-mixture", "--config", "{tmp}/emadecay.toml"], 2, "ema_decay"),
    (TRAIN + ["--data", "toy:ncsn-mixture", "--config", "{tmp}/infsigma.toml"], 2, "sigma_max"),
    (TRAIN + ["--data", "toy:ncsn-mixture", "--config", "{tmp}/boolsteps.toml"], 2, "steps"),
    (TRAIN + ["--data", "toy:ncsn-mixture", "--config", "{tmp}/centre.toml"], 2, "centre"),
    (TRAIN + ["--data", "toy:ncsn-mixture", "--config", "{tmp}/version.toml"], 2, "format_version"),
    # --- train: output directories and --resume
    (["train", "--quiet", "--data", "toy:ncsn-mixture", "--out", "{tmp}/file/run"], 2, "cannot be written"),
    (["train", "--quiet", "--data", "toy:ncsn-mixture", "--out", "/proc/scorefield-run"], 2, "cannot be written"),
    (["train", "--quiet", "--data", "toy:ncsn-mixture", "--out", "{tmp}/file"], 2, "not a directory"),
    (["train", "--quiet", "--data", "toy:ncsn-mixture", "--out", "{run}"], 2, "already holds a run"),
    (["train", "--quiet", "--resume", "--out", "{tmp}/never-trained"], 2, "not a scorefield run directory"),
    (["train", "--quiet", "--resume", "--out", "{tmp}/emptydir"], 2, "not a scorefield run directory"),
    (["train", "--quiet", "--resume", "--out", "{tmp}/file"], 2, "not a scorefield run directory"),
    (["train", "--quiet", "--resume", "--out", "{run}", "--data", "toy:two-moons"], 2, "data: the run has"),
    (["train", "--quiet", "--resume", "--out", "{badcfg}"], 2, "config.json"),
    (["train", "--quiet", "--resume", "--out", "{oddcfg}"], 2, "sigma_min"),
    (["train", "--quiet", "--data", "toy:ncsn-mixture"], 2, "--out"),
    # --- sample
    (SAMPLE + ["--run", "{tmp}/missing", "--out", "{tmp}/s.npy"], 2, "missing"),
    (SAMPLE + ["--run", "{tmp}/file", "--out", "{tmp}/s.npy"], 2, "not a directory"),
    (SAMPLE + ["--run", "{tmp}/emptydir", "--out", "{tmp}/s.npy"], 2, "config.json"),
    (SAMPLE + ["--run", "{norun}", "--out", "{tmp}/s.npy"], 2, "holds no checkpoint"),
    (SAMPLE + ["--run", "{badcfg}", "--out", "{tmp}/s.npy"], 2, "config.json"),
    (SAMPLE + ["--run", "{run}", "--out", "{tmp}/s.npy", "--sampler", "nuts"], 2, "log-density"),
    (SAMPLE + ["--run", "{run}", "--out", "{tmp}/s.npy", "--sampler", "gibbs"], 2, "invalid choice"),
    (SAMPLE + ["--exact", "toy:nope", "--out", "{tmp}/s.npy"], 2, "toy:two-moons"),
    (SAMPLE + ["--exact", "toy:two-moons", "--out", "{tmp}/s.npy"], 2, "closed-form"),
    (SAMPLE + ["--exact", "image:{tmp}/random.png", "--out", "{tmp}/s.npy"], 2, "random.png"),
    (SAMPLE + ["--exact", "toy:ncsn-mixture", "--out", "{tmp}/s.txt"], 2, ".npy"),
    (SAMPLE + ["--exact", "toy:ncsn-mixture", "--out", "{tmp}/nodir/s.npy"], 2, "does not exist"),
    (SAMPLE + ["--exact", "toy:ncsn-mixture", "--out", "{tmp}/file/s.npy"], 2, "file"),
    (SAMPLE + ["--exact", "toy:ncsn-mixture", "--out", "{tmp}/emptydir"], 2, ".npy"),
    (SAMPLE + ["--exact", "toy:ncsn-mixture", "--out", "{tmp}/s.npy", "--sigma-min", "2", "--sigma-max", "1"], 2, "smaller"),
    (SAMPLE + ["--exact", "toy:ncsn-mixture", "--out", "{tmp}/s.npy", "--sigma-min", "1", "--sigma-max", "1"], 2, "smaller"),
    (SAMPLE + ["--run", "{run}", "--out", "{tmp}/s.npy", "--sigma-min", "20"], 2, "smaller"),
    (SAMPLE + ["--exact", "toy:ncsn-mixture", "--out", "{tmp}/s.npy", "--sigma-max", "nan"], 2, "positive"),
    (SAMPLE + ["--exact", "toy:ncsn-mixture", "--out", "{tmp}/s.npy", "--sampler", "langevin", "--step-size", "nan"], 2, "positive"),
    (SAMPLE + ["--exact", "toy:ncsn-mixture", "--out", "{tmp}/s.npy", "--sampler", "langevin", "--step-size", "-0.1"], 2, "positive"),
    (SAMPLE + ["--exact", "toy:ncsn-mixture", "--out", "{tmp}/s.npy", "--sampler", "langevin", "--step-size", "inf"], 2, "positive"),
    (SAMPLE + ["--exact", "toy:ncsn-mixture", "--out", "{tmp}/s.npy", "--sampler", "langevin", "--sigma", "nan"], 2, "--sigma"),
    (SAMPLE + ["--exact", "toy:ncsn-mixture", "--out", "{tmp}/s.npy", "--sampler", "langevin", "--sigma", "-1"], 2, "--sigma"),
    (SAMPLE + ["--run", "{run}", "--out", "{tmp}/s.npy", "--sampler", "langevin", "--sigma", "0"], 2, "--sigma"),
    (SAMPLE + ["--exact", "toy:ncsn-mixture", "--out", "{tmp}/s.npy", "--steps", "0"], 2, "positive"),
    (SAMPLE + ["--exact", "toy:ncsn-mixture", "--out", "{tmp}/s.npy", "--levels", "0"], 2, "positive"),
    (SAMPLE + ["--exact", "toy:ncsn-mixture", "--out", "{tmp}/s.npy", "--chunk-size", "-3"], 2, "positive"),
    (SAMPLE + ["--exact", "toy:ncsn-mixture", "--out", "{tmp}/s.npy", "--corrector-steps", "-1"], 2, "--corrector-steps"),
    (SAMPLE + ["--exact", "toy:ncsn-mixture", "--out", "{tmp}/s.npy", "--init", "banana:3"], 2, "banana"),
    (SAMPLE + ["--exact", "toy:ncsn-mixture", "--out", "{tmp}/s.npy", "--init", "uniform:1,0"], 2, "uniform"),
    (["sample", "--quiet", "--n", "0", "--exact", "toy:ncsn-mixture", "--out", "{tmp}/s.npy"], 2, "positive"),
    (["sample", "--quiet", "--n", "-10", "--exact", "toy:ncsn-mixture", "--out", "{tmp}/s.npy"], 2, "positive"),
    (["sample", "--quiet", "--n", "10", "--out", "{tmp}/s.npy"], 2, "--run"),
    # --- eval
    (["eval", "--data", "toy:ncsn-mixture", "--samples", "{tmp}/missing.npy"], 2, "missing.npy"),
    (["eval", "--data", "toy:ncsn-mixture", "--samples", "{tmp}/emptydir"], 2, "directory"),
    (["eval", "--data", "toy:ncsn-mixture", "--samples", "{tmp}/empty.npy"], 2, "empty.npy"),
    (["eval", "--data", "toy:ncsn-mixture", "--samples", "{tmp}/random.npy"], 2, "random.npy"),
    (["eval", "--data", "toy:ncsn-mixture", "--samples", "{tmp}/nan.npy"], 2, "NaN"),
    (["eval", "--data", "toy:ncsn-mixture", "--samples", "{tmp}/threecol.npy"], 2, "columns"),
    (["eval", "--data", "toy:ncsn-mixture", "--samples", "{tmp}/vector.npy"], 2, "shape"),
    (["eval", "--data", "toy:ncsn-mixture", "--samples", "{tmp}/strings.npy"], 2, "float"),
    (["eval", "--data", "toy:nope", "--samples", "{tmp}/good.npy"], 2, "toy:two-moons"),
    (["eval", "--run", "{tmp}/missing", "--samples", "{tmp}/good.npy"], 2, "missing"),
    (["eval", "--run", "{norun}", "--samples", "{tmp}/good.npy"], 2, "holds no checkpoint"),
    (["eval", "--data", "toy:ncsn-mixture", "--samples", "{tmp}/good.npy", "--repeats", "0"], 2, "positive"),
    (["eval", "--data", "toy:ncsn-mixture", "--samples", "{tmp}/good.npy", "--max-points", "-1"], 2, "positive"),
    (["eval", "--data", "toy:ncsn-mixture"], 2, "--samples"),
    # --- plot
    (["plot", "spiral", "--run", "{run}", "--out", "{tmp}/p.png"], 2, "invalid choice"),
    (["plot", "field", "--run", "{tmp}/missing", "--out", "{tmp}/p.png"], 2, "missing"),
    (["plot", "field", "--run", "{norun}", "--out", "{tmp}/p.png"], 2, "holds no checkpoint"),
    (["plot", "loss", "--run", "{tmp}/emptydir", "--out", "{tmp}/p.png"], 2, "emptydir"),
    (["plot", "field", "--run", "{badcfg}", "--out", "{tmp}/p.png"], 2, "config.json"),
    (["plot", "field", "--run", "{run}", "--out", "{tmp}/p.xyz"], 2, ".png"),
    (["plot", "field", "--run", "{run}", "--out", "{tmp}/random.png/p.png"], 2, "cannot be written"),
    (["plot", "field", "--run", "{run}", "--out", "{tmp}/emptydir"], 2, ".png"),
    (["plot", "field", "--run", "{run}", "--out", "{tmp}/p.png", "--levels", "99"], 2, "99"),
    (["plot", "field", "--run", "{run}", "--out", "{tmp}/p.png", "--levels", "a,b"], 2, "--levels"),
    (["plot", "samples", "--run", "{run}", "--out", "{tmp}/p.png", "--n", "0"], 2, "positive"),
    (["plot", "samples", "--run", "{run}", "--out", "{tmp}/p.png", "--bins", "-2"], 2, "positive"),
    (["plot", "field", "--run", "{run}", "--out", "{tmp}/p.png", "--dpi", "0"], 2, "positive"),
    (["plot", "density", "--run", "{run}", "--out", "{tmp}/p.png", "--sigma", "nan"], 2, "positive"),
    (["plot", "animate", "--run", "{run}", "--out", "{tmp}/p.png"], 2, ".gif"),
    # --- info
    (["info", "--run", "{tmp}/missing"], 2, "missing"),
    (["info", "--run", "{tmp}/file"], 2, "not a directory"),
    (["info", "--run", "{tmp}/emptydir"], 2, "config.json"),
    (["info", "--run", "{norun}"], 2, "holds no checkpoint"),
    (["info", "--run", "{badcfg}"], 2, "config.json"),
    (["info", "--run", "{oddcfg}"], 2, "sigma_min"),
    (["info"], 2, "--run"),
    # --- demo
    (["demo", "--quiet", "--fast", "--out", "{tmp}/file"], 2, "file"),
    (["demo", "--quiet", "--fast", "--out", "{tmp}/file/sub"], 2, "file"),
    (["demo", "--quiet", "--fast", "--seed", "x"], 2, "--seed"),
    # --- the frame
    (["fly"], 2, "invalid choice"),
    (["train", "--out", "{tmp}/new", "--bogus-flag"], 2, "unrecognized arguments"),
    (["demo", "--out", "{tmp}/d", "[--fast]"], 2, "(see 'scorefield demo --help')"),
    (["demo", "--out", "{tmp}/d", "[--fast]"], 2, "type it without them"),
]


def _run_cli(argv, capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as e:  # argparse usage errors
        code = e.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("argv,code,needle", CASES, ids=[" ".join(c[0])[:80] for c in CASES])
def test_bad_input_gets_one_line_and_an_exit_code(ws, argv, code, needle, capsys):
    argv = [a.format(**ws) for a in argv]
    before = sorted(p.name for p in Path(ws["tmp"]).iterdir())
    got, err = _run_cli(argv, capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert got == code, (got, err)
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert needle.format(**ws) in lines[0], lines[0]
    # nothing was left behind: no new run directory, no samples, no figure
    assert sorted(p.name for p in Path(ws["tmp"]).iterdir()) == before


def test_every_command_is_covered():
    from scorefield.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == {c[0][0] for c in CASES if c[0][0] in sub.choices}


def test_library_warnings_reach_stderr_as_one_line(monkeypatch, capsys):
    import warnings

    from scorefield.cli import _info

    def warn_then_fail(args):
        warnings.warn("Corrupt EXIF data.\n  Expecting to read 2 bytes", UserWarning, stacklevel=1)
        return 0

    monkeypatch.setattr(_info, "run", warn_then_fail)
    assert main(["info", "--run", "x"]) == 0
    err = capsys.readouterr().err
    assert err == "scorefield info: warning: Corrupt EXIF data. Expecting to read 2 bytes\n"
