"""Property tests of the data-spec grammar: valid specs round-trip, invalid ones raise."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scorefield import DataSpecError
from scorefield.data import TOY_NAMES, DataSpec, parse_spec

paths = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)

specs = st.one_of(
    st.just(DataSpec("mnist")),
    st.builds(lambda l, k: DataSpec("mnist", label=l, index=k), st.integers(0, 9), st.integers(0, 499)),
    st.builds(lambda p, k: DataSpec("mnist-idx", path=p, index=k), paths, st.integers(0, 10**6)),
    st.builds(lambda p, i, c: DataSpec("image", path=p, invert=i, centres=c), paths, st.booleans(), st.booleans()),
    st.builds(lambda n: DataSpec("toy", name=n), st.sampled_from(TOY_NAMES)),
    st.builds(lambda p: DataSpec("points", path=p), paths),
)


@settings(max_examples=300, deadline=None)
@given(specs)
def test_canonical_string_round_trips(spec):
    text = str(spec)
    assert parse_spec(text) == spec
    assert str(parse_spec(text)) == text


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_any_string_parses_or_raises_typed_error(text):
    try:
        spec = parse_spec(text)
    except DataSpecError as e:
        msg = str(e)
        assert "\n" not in msg and len(msg) < 600
    else:
        assert parse_spec(str(spec)) == spec


@settings(max_examples=100, deadline=None)
@given(st.integers().filter(lambda n: not 0 <= n <= 9), st.integers(0, 499))
def test_label_out_of_range(label, index):
    with pytest.raises(DataSpecError, match="label"):
        parse_spec(f"mnist:label={label},index={index}")


@settings(max_examples=100, deadline=None)
@given(st.integers().filter(lambda n: not 0 <= n <= 499), st.integers(0, 9))
def test_index_out_of_range(index, label):
    with pytest.raises(DataSpecError, match="index"):
        parse_spec(f"mnist:label={label},index={index}")


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=12).filter(lambda s: s.strip().lower() not in TOY_NAMES))
def test_unknown_toy_names(name):
    try:
        spec = parse_spec(f"toy:{name}")
    except DataSpecError as e:
        assert "toy:" in str(e)
    else:  # an alias: it must resolve to a known name
        assert spec.name in TOY_NAMES


@pytest.mark.parametrize(
    "text, expected",
    [
        ("mnist", DataSpec("mnist")),
        ("mnist:label=7,index=3", DataSpec("mnist", label=7, index=3)),
        ("mnist:index=7", DataSpec("mnist", label=0, index=7)),
        ("mnist:index=2500", DataSpec("mnist", label=5, index=0)),
        ("mnist:label=4", DataSpec("mnist", label=4, index=0)),
        ("mnist-idx:/d/train-images-idx3-ubyte.gz", DataSpec("mnist-idx", path="/d/train-images-idx3-ubyte.gz", index=0)),
        ("mnist-idx:t10k,index=9", DataSpec("mnist-idx", path="t10k", index=9)),
        ("image:a:b.png,centres,invert", DataSpec("image", path="a:b.png", invert=True, centres=True)),
        ("image:x.png,centers", DataSpec("image", path="x.png", centres=True)),
        (r"image:a\,b.png", DataSpec("image", path="a,b.png")),
        ("toy:moons", DataSpec("toy", name="two-moons")),
        ("toy:NCSN-MIXTURE", DataSpec("toy", name="ncsn-mixture")),
        ("points:pts.csv", DataSpec("points", path="pts.csv")),
    ],
)
def test_examples(text, expected):
    assert parse_spec(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "mnist:", "mnist:label=x", "mnist:colour=3", "mnist:index=5000", "mnist:label=1,label=2",
     "image:", "image:a.png,blur", "points:", "points:a,b", "toy:", "toy:nope", "foo.png", "video:x",
     "mnist-idx:f,index=-1", "mnist-idx:f,page=2", "mnist:label=²"],
)
def test_invalid_examples(text):
    with pytest.raises(DataSpecError):
        parse_spec(text)
