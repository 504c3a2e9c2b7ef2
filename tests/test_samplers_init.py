"""Property tests of the init-spec parser (`--init` on the command line)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
import pytest

from scorefield import InputError
from scorefield.samplers import GaussianInit, UniformInit, parse_init

finite = st.floats(-1e6, 1e6, allow_nan=False)


@settings(max_examples=50, deadline=None)
@given(finite, finite)
def test_uniform_round_trip(a, b):
    text = f"uniform:{a!r},{b!r}"
    if a < b:
        init = parse_init(text)
        assert isinstance(init, UniformInit) and (init.low, init.high) == (a, b)
    else:
        with pytest.raises(InputError):
            parse_init(text)


@settings(max_examples=50, deadline=None)
@given(st.floats(-1e6, 1e6, allow_nan=False), finite)
def test_gaussian(scale, centre):
    text = f"gaussian:{scale!r},{centre!r}"
    if scale > 0:
        init = parse_init(text)
        assert isinstance(init, GaussianInit) and init.scale == scale and init.centre == centre
    else:
        with pytest.raises(InputError):
            parse_init(text)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=20))
def test_garbage_is_input_error_never_crash(text):
    try:
        init = parse_init(text)
    except InputError as e:  # the library names its argument; the CLI says --init
        assert str(e).startswith(("init ", "uniform init")), str(e)
    else:
        assert isinstance(init, (UniformInit, GaussianInit))
        if isinstance(init, UniformInit):
            assert math.isfinite(init.low) and init.low < init.high
