"""Reliability II (issue 14): property tests over every command-line parser and validator.

Any text given to a validator either parses or raises the library's typed error (InputError
and its subclasses: DataSpecError, ConfigError, OptionError), never another exception; and
any option value given to any command's argument parser either parses or is a usage error:
exit 2 with exactly one line on stderr, no traceback; and every command run for real with a
random option value ends as the contract says. Nothing here trains; the only sampling is of
4 particles from a closed-form score, so the tests run in seconds."""

import argparse
import contextlib
import io
import shutil
import tempfile
from pathlib import Path

import numpy as np

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


# Real command runs (issue 14: "a property test drives every command's argument parser with
# random option values"): each command from a valid base, one option given a random value,
# run in process through the CLI's main, up to the moment its work (training, sampling,
# metrics, the demo) would start: there the test presses Ctrl-C, which has its own contract
# (exit 130, one line, nothing left in the output). So every check a command makes of its
# options and inputs runs for real, and nothing is trained, sampled or compiled: the samplers
# and metrics themselves are run with their own options by the contract suites. Options
# that write where the test did not say (--out, --trajectory), or that would start a join
# (the multi-host flags), are left to the base; every other option of every command is drawn.
NOT_DRAWN = {"--out", "--trajectory", "--coordinator", "--num-processes", "--process-id", "--distributed"}
RUN_VALUES = st.one_of(  # values that pass a parser (to reach the commands' own checks), and TEXT
    st.integers(min_value=-3, max_value=40).map(str),
    st.floats(min_value=-1, max_value=50, allow_nan=False).map(lambda x: f"{x:.3g}"),
    st.sampled_from(["auto", "none", "all", "random", "continuous", "dsm", "ssm", "exact", "grid", "sigma", "fourier",
                     "pc", "langevin", "karras", "uniform:-1,1", "gaussian:1", "gaussian:0.5,0,0", "8,16", "fast"]),
    TEXT)
DEMO_MARKER = ".scorefield-demo"  # a demo's --out is marked as the demo's before its work starts


def _run_base(tmp, cmd: str, flag: str, data) -> list[str]:
    """A valid base argv for `cmd`; a sampler's option comes with a sampler that takes it
    (so that its value is checked by that sampler, not refused as another's)."""
    from scorefield.samplers import SAMPLERS

    samples = tmp / "in.npy"
    if not samples.exists():
        np.save(samples, np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32))
    if cmd == "sample":
        users = SAMPLERS.all_options().get(flag[2:].replace("-", "_"), (None, ("pc",)))[1]
        return ["sample", "--exact", "toy:ncsn-mixture", "--n", "4", "--sampler",
                data.draw(st.sampled_from(users), label="sampler"), "--quiet"]
    return {
        "train": ["train", "--data", "toy:two-moons", "--preset", "fast", "--quiet"],
        "eval": ["eval", "--data", "toy:ncsn-mixture", "--samples", str(samples)],
        "plot": ["plot", data.draw(st.sampled_from(["loss", "samples", "field", "anneal", "target", "density"]),
                                   label="kind"), "--run", str(tmp / "norun")],
        "info": ["info", "--run", str(tmp / "norun")],
        "demo": ["demo", "--fast", "--quiet"],
    }[cmd]


@pytest.fixture
def work_is_interrupted(monkeypatch):
    """Ctrl-C at the first call that does a command's work: sampling's first chunk (after
    the sampler's own checks of its configuration, the particles and their memory), the
    metrics, training, the demo."""
    import scorefield.demo
    import scorefield.metrics
    import scorefield.samplers._runner
    import scorefield.train

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    for module, name in ((scorefield.samplers._runner, "_run_chunk"), (scorefield.metrics, "evaluate"),
                         (scorefield.train, "train"), (scorefield.train, "resume"), (scorefield.demo, "run_demo")):
        monkeypatch.setattr(module, name, ctrl_c)


@settings(max_examples=50, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_commands_run_with_random_option_values_end_in_1_2_or_130_with_one_line(parser_and_options, tmp_path_factory,
                                                                               work_is_interrupted, data):
    """Every command run with one option at a random value ends with exit 1 or 2 (an argparse
    usage error included) or, once every check passed, 130 from the Ctrl-C as its work
    starts; always exactly one line on stderr, never a traceback or an internal error, and
    nothing left in the output directory."""
    from scorefield.cli import main

    _, options = parser_and_options
    tmp = tmp_path_factory.getbasetemp() / "command-runs"
    tmp.mkdir(exist_ok=True)
    cmd, flag = data.draw(st.sampled_from([(c, f) for c, f in options if f not in NOT_DRAWN]), label="option")
    argv = _run_base(tmp, cmd, flag, data)
    value = data.draw(RUN_VALUES, label="value")
    out = Path(tempfile.mkdtemp(dir=tmp))
    argv += {"train": ["--out", str(out / "run")], "sample": ["--out", str(out / "s.npy")],
             "plot": ["--out", str(out / "p.png")], "demo": ["--out", str(out / "demo")]}.get(cmd, [])
    argv += [flag, value] if not value.startswith("-") else [f"{flag}={value}"]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse's usage errors
            code = e.code
    text = err.getvalue()
    assert code in (1, 2, 130), (argv, code, text)
    assert "Traceback" not in text and "internal error" not in text, (argv, text)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) == 1, (argv, text)
    left = [p.relative_to(out) for p in out.rglob("*") if p.is_file()]
    assert left in ([], [Path("demo") / DEMO_MARKER]), (argv, left)
    shutil.rmtree(out)
