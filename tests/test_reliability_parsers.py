"""Reliability II (issue 14): property tests over every command-line parser and validator.

Any text given to a validator either parses or raises the library's typed error (InputError
and its subclasses: DataSpecError, ConfigError, OptionError), never another exception; and
any option value given to any command's argument parser either parses or is a usage error:
exit 2 with exactly one line on stderr, no traceback. Nothing here trains or samples, so the
tests run in seconds."""

import argparse
import contextlib
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scorefield._errors import InputError

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# text a user might type, and text a tester would: numbers of every form, specs, junk
NUMBERS = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["0", "-0", "1e40", "1e-400", "nan", "inf", "-inf", "0x10", "1_000", " 7 ", "", "1.5", "٣",
                     "2147483648", "9223372036854775808", "+3", "1e3", "True", "None"]),
)
SPECS = st.one_of(
    st.text(max_size=40),
    st.builds(lambda k, r: f"{k}:{r}", st.sampled_from(["mnist", "toy", "image", "points", "mnist-idx", "gauss", ""]),
              st.text(max_size=30)),
    st.sampled_from(["mnist:label=11", "mnist:index=-1", "mnist:label=3,index=99999999999", "toy:", "image:,invert",
                     "points:a\\,b.npy", "mnist-idx:/x,index=1e9", "toy:two-moons,extra", "mnist:label=",
                     "image:x.png,centers,invert,invert"]),
)
TEXT = st.one_of(NUMBERS, SPECS, st.text(max_size=30))


def _typed(fn, text):
    """Call fn(text): a value, or the typed error; anything else fails the test."""
    try:
        return fn(text)
    except InputError as e:
        msg = str(e)
        assert msg and "\n" not in msg.strip(), msg  # one line
        return None


@SETTINGS
@given(SPECS)
def test_data_spec_parser_gives_a_spec_or_a_data_spec_error(text):
    from scorefield import DataSpecError
    from scorefield.data import parse_spec

    try:
        spec = parse_spec(text)
    except DataSpecError as e:
        assert "\n" not in str(e).strip()
        return
    assert parse_spec(str(spec)) == spec  # a parsed spec round-trips


@SETTINGS
@given(TEXT)
def test_seed_parser_gives_a_seed_or_an_input_error(text):
    from scorefield._limits import SEED_LIMIT
    from scorefield._seed import parse_seed

    v = _typed(parse_seed, text)
    assert v is None or (isinstance(v, int) and 0 <= v < SEED_LIMIT)


@SETTINGS
@given(st.data())
def test_every_sampler_option_parses_or_raises_an_option_error(data):
    """Each option of each registered sampler (and network and objective), on any text."""
    from scorefield._registry import OptionError
    from scorefield.losses import OBJECTIVES
    from scorefield.nets import NETS
    from scorefield.samplers import SAMPLERS

    registry = data.draw(st.sampled_from([SAMPLERS, NETS, OBJECTIVES]))
    options = [opt for opt, _ in registry.all_options().values()]
    opt = data.draw(st.sampled_from(options))
    text = data.draw(TEXT)
    try:
        v = opt.parse(text, "option")
    except OptionError as e:
        assert "\n" not in str(e).strip() and e.requirement
        return
    assert v is None or isinstance(v, (opt.type, int, float, str, list))


@SETTINGS
@given(TEXT)
def test_init_spec_parser_gives_an_init_or_an_input_error(text):
    from scorefield.samplers import parse_init
    from scorefield.samplers._init import AbstractInit

    for spec in (text, "uniform:" + text, "gaussian:" + text):
        init = _typed(parse_init, spec)  # a refusal returns None after checking its one line
        assert init is None or isinstance(init, AbstractInit), (spec, init)


@SETTINGS
@given(TEXT)
def test_coordinator_check_gives_an_input_error_or_passes(text):
    from scorefield.cli._train import _check_coordinator

    _typed(lambda t: _check_coordinator(t, "--coordinator"), text)


@SETTINGS
@given(st.sampled_from(["positive_int", "non_negative_int", "seed", "positive_float"]), TEXT)
def test_cli_value_types_give_a_value_or_an_argparse_type_error(name, text):
    """argparse turns ArgumentTypeError into a one-line usage error; anything else would be
    a traceback from inside argparse."""
    from scorefield.cli import _common

    try:
        v = getattr(_common, name)(text)
    except argparse.ArgumentTypeError as e:
        assert "\n" not in str(e)
        return
    assert isinstance(v, (int, float))


def _parser_options():
    """(command words, option string) for every option of every command that takes a value."""
    from scorefield.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = []
    for name, p in sub.choices.items():
        # the sampler options are added when the parser first parses
        with contextlib.redirect_stderr(io.StringIO()), contextlib.suppress(SystemExit):
            p.parse_known_args(["--help-never"])
        for action in p._actions:
            if action.option_strings and action.nargs != 0 and action.dest not in ("help",):
                out.append((name, action.option_strings[-1]))
    return out


# a valid base command for each command, so that only the option under test can be wrong
BASE = {
    "train": ["train", "--out", "/nonexistent/run", "--data", "toy:ncsn-mixture"],
    "sample": ["sample", "--exact", "toy:ncsn-mixture", "--n", "10", "--out", "/nonexistent/s.npy"],
    "eval": ["eval", "--data", "toy:ncsn-mixture", "--samples", "/nonexistent/s.npy"],
    "plot": ["plot", "loss", "--run", "/nonexistent/run", "--out", "/nonexistent/p.png"],
    "info": ["info", "/nonexistent/run"],
    "demo": ["demo", "--out", "/nonexistent/demo"],
}


@pytest.fixture(scope="module")
def parser_and_options():
    from scorefield.cli import build_parser

    parser = build_parser()
    with contextlib.redirect_stderr(io.StringIO()), contextlib.suppress(SystemExit):
        for argv in BASE.values():  # each command's parser loads its lazy options once
            parser.parse_args(argv)
    return parser, _parser_options()


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.data())
def test_every_commands_parser_parses_or_gives_one_usage_line(parser_and_options, data):
    """Random values for every option of every command: the parser accepts them or exits
    with 2 and one line on stderr (never a traceback, never another exit code)."""
    parser, options = parser_and_options
    cmd, flag = data.draw(st.sampled_from(options))
    value = data.draw(TEXT)
    argv = BASE[cmd] + [flag, value] if not value.startswith("-") else BASE[cmd] + [f"{flag}={value}"]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(argv)
    except SystemExit as e:
        assert e.code == 2, (argv, e.code, err.getvalue())
        lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
        # argparse prints its usage line(s) and then the one error line; ours prints the error only
        assert len(lines) == 1 and "Traceback" not in err.getvalue(), (argv, err.getvalue())
