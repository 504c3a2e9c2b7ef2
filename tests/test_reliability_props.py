"""Property tests: random input to the config loader (dicts and TOML text), the image loader
(random bytes as .png and friends) and the checkpoint loader gets a typed one-line error,
never another exception."""

import json
import math
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scorefield import CheckpointError, ConfigError, DataSpecError
from scorefield.train import PRESETS, TrainConfig, load_toml

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
KEYS = sorted(TrainConfig.__dataclass_fields__) + ["format_version", "bogus", "train"]
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["auto", "dsm", "sigma", "reference", "all", "cosine", "continuous"]),
    st.lists(st.floats(allow_nan=True), max_size=4), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


def _one_line(e: Exception) -> None:
    assert str(e) and "\n" not in str(e).strip()


@SETTINGS
@given(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6))
def test_config_from_random_dicts_is_valid_or_a_config_error(d):
    try:
        c = TrainConfig.from_dict({**PRESETS["fast"], **d})
    except ConfigError as e:
        _one_line(e)
        return
    # what is accepted is valid: every number in range, so training cannot start on garbage
    assert c.steps >= 1 and c.batch_size >= 1 and math.isfinite(c.lr) and c.lr > 0
    assert 0 <= c.ema_decay < 1
    if c.sigma_min != "auto" and c.sigma_max != "auto":
        assert 0 < c.sigma_min < c.sigma_max < math.inf
    assert TrainConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c  # and it round-trips


TOML_ATOMS = st.one_of(
    st.sampled_from(["lr", "steps", "sigma_min", "sigma_max", "batch_size", "net", "centre", "[train]", "[x]", "bogus",
                     "=", " = ", "\n", "nan", "inf", "-inf", "0", "-1", "1e400", "true", '"auto"', '"', "[", "]",
                     "{", "}", ",", "#", "'''", '"""', "\\", "\x00", "1979-05-27", "0x1F", "1_000"]),
    st.text(max_size=6),
)


@SETTINGS
@given(st.lists(TOML_ATOMS, max_size=25).map("".join))
def test_config_loader_on_random_toml_text_gives_only_config_errors(text):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "c.toml"
        p.write_bytes(text.encode("utf-8", "replace"))
        try:
            values = load_toml(p)
        except ConfigError as e:
            _one_line(e)
            return
        # what load_toml accepts builds a config
        assert isinstance(TrainConfig.from_dict({**PRESETS["fast"], **values}), TrainConfig)


@SETTINGS
@given(st.binary(max_size=400))
def test_config_loader_on_random_bytes_gives_only_config_errors(data):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "c.toml"
        p.write_bytes(data)
        try:
            values = load_toml(p)
        except ConfigError as e:
            _one_line(e)
        else:
            assert isinstance(values, dict)


PNG = b"\x89PNG\r\n\x1a\n"
HEADERS = st.sampled_from([b"", PNG, PNG + b"\x00\x00\x00\rIHDR", b"GIF89a", b"BM", b"\xff\xd8\xff", b"II*\x00",
                           b"RIFF\x00\x00\x00\x00WEBP", b"P5\n2 2\n255\n"])


@SETTINGS
@given(HEADERS, st.binary(max_size=300), st.sampled_from([".png", ".jpg", ".gif", ".bmp", ".tif", ".pgm"]))
def test_image_loader_on_random_bytes_gives_only_data_spec_errors(header, body, ext):
    from scorefield.data import load

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"x{ext}"
        p.write_bytes(header + body)
        try:
            ds = load(f"image:{p}")
        except DataSpecError as e:
            _one_line(e)
            return
        assert ds.dim == 2  # a few random bodies are valid images: then a valid density


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.binary(max_size=600), st.sampled_from(["arrays", "pointer"]))
def test_checkpoint_loader_on_random_bytes_gives_only_checkpoint_errors(data, which):
    from scorefield.train import _checkpoint

    with tempfile.TemporaryDirectory() as d:
        _checkpoint.save(d, 5, {"a": np.arange(6, dtype=np.float32), "step": np.asarray(5)})
        target = Path(d) / ("checkpoint-000000005.npz" if which == "arrays" else "checkpoint.json")
        target.write_bytes(data)
        try:
            _checkpoint.load(d)
        except CheckpointError as e:
            _one_line(e)
            assert str(target) in str(e) or str(Path(d) / "checkpoint.json") in str(e)
