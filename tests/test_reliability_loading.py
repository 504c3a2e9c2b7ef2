"""Safe loading: nothing scorefield reads can run code (no pickle anywhere, crafted pickles
refused with a clear error), and checkpoints carry a format version and a checksum per
array, so a mismatched or damaged file is named, never half-read."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import scorefield
from scorefield import CheckpointError, DataSpecError
from scorefield.cli import main
from scorefield.train import load_run, preset, train

SRC = Path(scorefield.__file__).parent

# What would load code: pickle and its relatives, and eval/exec (never on file content).
FORBIDDEN = [
    r"^\s*(import|from)\s+(c?pickle|_pickle|cloudpickle|dill|shelve|marshal|joblib)\b",
    r"\bpickle\.loads?\(",
    r"allow_pickle\s*=\s*True",
    r"\btorch\.load\(",
    r"\byaml\.(unsafe_)?load\(",
    r"(?<![\w.])(eval|exec)\(",
]


def _sources():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 20  # the scan does see the package
    return files


def test_source_has_no_code_loading_paths():
    hits = []
    for f in _sources():
        for i, line in enumerate(f.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            hits += [f"{f.relative_to(SRC)}:{i}: {line.strip()}" for pat in FORBIDDEN if re.search(pat, code)]
    assert not hits, hits


def test_every_np_load_refuses_pickles_explicitly():
    calls = []
    for f in _sources():
        text = f.read_text()
        for m in re.finditer(r"\b(np|numpy)\.load\(", text):
            call = text[m.start(): text.find(")", m.end()) + 1]
            calls.append((f.name, call))
            assert "allow_pickle=False" in call, (f, call)
    assert calls  # the pattern matches the loaders that exist


class Payload:
    """Unpickling this creates the marker file: what a malicious file would do."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _evil_npy(path: Path, marker: Path) -> Path:
    np.save(path, np.array([Payload(marker), 1.0], dtype=object), allow_pickle=True)
    return path


def _raw_pickle(path: Path, marker: Path) -> Path:
    import pickle  # only to craft the attack file in this test

    path.write_bytes(pickle.dumps(Payload(marker)))
    return path


TINY = dict(data="toy:ncsn-mixture", width=16, depth=1, n_features=8, batch_size=32, steps=20, steps_per_call=10,
            log_every=10, checkpoint_every=20, sigma_max=10.0, sigma_min=0.05, centre=[0.0, 0.0])


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "r"
    train(preset("fast", **TINY), path, progress=False)
    return path


def _copy(run: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    dst = tmp_path / "run"
    shutil.copytree(run, dst)
    ptr = dst / "checkpoint.json"
    return dst, ptr, dst / json.loads(ptr.read_text())["file"]


@pytest.mark.parametrize("how", ["member", "whole-file-npy", "whole-file-pickle"])
def test_crafted_checkpoint_is_refused_without_running_it(tmp_path, small_run, how, capsys):
    run, ptr, arr = _copy(small_run, tmp_path)
    marker = tmp_path / "marker"
    if how == "member":  # one member of the .npz replaced by an object array
        with np.load(arr) as z:
            members = {k: z[k] for k in z.files}
        first = sorted(members)[0]
        members[first] = np.array([Payload(marker)], dtype=object)
        np.savez(arr, **members)
    elif how == "whole-file-npy":
        arr.write_bytes(_evil_npy(tmp_path / "e.npy", marker).read_bytes())
    else:
        _raw_pickle(arr, marker)
    with pytest.raises(CheckpointError) as e:
        load_run(run)
    assert str(arr) in str(e.value) and "\n" not in str(e.value)
    for argv in (["info", "--run", str(run)], ["sample", "--run", str(run), "--n", "10", "--out", str(tmp_path / "s.npy")]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(arr) in err[0]
    assert not marker.exists()
    assert not (tmp_path / "s.npy").exists()


@pytest.mark.parametrize("how", ["npy", "pickle"])
def test_crafted_points_and_samples_files_are_refused(tmp_path, how, capsys):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.npy"
    _evil_npy(path, marker) if how == "npy" else _raw_pickle(path, marker)
    from scorefield.data import load

    with pytest.raises(DataSpecError, match="evil.npy"):
        load(f"points:{path}")
    assert main(["eval", "--data", "toy:ncsn-mixture", "--samples", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "evil.npy" in err[0] and "Traceback" not in err[0]
    assert main(["train", "--data", f"points:{path}", "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert "evil.npy" in capsys.readouterr().err
    assert not marker.exists()
    assert not (tmp_path / "r").exists()


def test_crafted_config_file_is_refused(tmp_path, capsys):
    marker = tmp_path / "marker"
    cfg = _raw_pickle(tmp_path / "evil.toml", marker)
    assert main(["train", "--data", "toy:ncsn-mixture", "--config", str(cfg), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "evil.toml" in err[0]
    assert not marker.exists()


# Checkpoint metadata: a format version and a SHA-256 per array, checked on every load.

def test_checkpoint_pointer_carries_version_and_checksums(small_run):
    import hashlib

    meta = json.loads((small_run / "checkpoint.json").read_text())
    assert meta["format_version"] == 1
    with np.load(small_run / meta["file"], allow_pickle=False) as z:
        assert set(meta["arrays"]) == set(z.files)
        for k, info in meta["arrays"].items():
            a = z[k]
            assert info["sha256"] == hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
            assert info["shape"] == list(a.shape) and info["dtype"] == str(a.dtype)


def _edit_pointer(ptr: Path, fn) -> None:
    meta = json.loads(ptr.read_text())
    fn(meta)
    ptr.write_text(json.dumps(meta))


@pytest.mark.parametrize("damage", ["version-new", "version-missing", "checksum", "value-changed", "shape",
                                    "member-missing", "pointer-list", "pointer-arrays-wrong-type",
                                    "file-outside", "pointer-empty", "array-empty-file", "random-bytes"])
def test_mismatched_or_corrupted_checkpoint_names_the_file(tmp_path, small_run, damage):
    run, ptr, arr = _copy(small_run, tmp_path)
    named = arr
    if damage == "version-new":
        _edit_pointer(ptr, lambda m: m.update(format_version=2))
        named = ptr
    elif damage == "version-missing":
        _edit_pointer(ptr, lambda m: m.pop("format_version"))
        named = ptr
    elif damage == "checksum":
        _edit_pointer(ptr, lambda m: next(iter(m["arrays"].values())).update(sha256="0" * 64))
    elif damage == "value-changed":  # a valid .npz whose numbers differ: only the checksum sees it
        with np.load(arr) as z:
            members = {k: z[k] for k in z.files}
        k = next(k for k in sorted(members) if members[k].dtype == np.float32 and members[k].size)
        members[k] = members[k].copy()
        members[k].flat[0] = np.nextafter(members[k].flat[0], np.float32(np.inf))
        np.savez(arr, **members)
    elif damage == "shape":
        _edit_pointer(ptr, lambda m: next(iter(m["arrays"].values())).update(shape=[7, 7]))
    elif damage == "member-missing":
        _edit_pointer(ptr, lambda m: m["arrays"].update({"model/9999": {"shape": [1], "dtype": "float32", "sha256": "0"}}))
    elif damage == "pointer-list":
        ptr.write_text("[1, 2, 3]")
        named = ptr
    elif damage == "pointer-arrays-wrong-type":
        _edit_pointer(ptr, lambda m: m.update(arrays=["model/0000"]))
        named = ptr
    elif damage == "file-outside":
        _edit_pointer(ptr, lambda m: m.update(file="../../etc/passwd"))
        named = ptr
    elif damage == "pointer-empty":
        ptr.write_text("")
        named = ptr
    elif damage == "array-empty-file":
        arr.write_bytes(b"")
    else:
        arr.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(CheckpointError) as e:
        load_run(run)
    msg = str(e.value)
    assert str(named) in msg and "\n" not in msg
