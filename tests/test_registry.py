"""The generic registry and option tables (scorefield._registry): lookup, validation, messages."""

from __future__ import annotations

import pytest

from scorefield import ConfigError
from scorefield._registry import Option, OptionError, Registry


def _registry():
    reg = Registry("widget")

    @reg.register
    class A:
        name = "a"
        options = (
            Option("step_size", float, None, "a step", low=0.0, low_open=True),
            Option("steps", int, 10, "how many", low=1),
            Option("eps", float, "auto", "scale", special=("auto",), low=0.0, low_open=True),
            Option("denoise", bool, True, "finish cleanly"),
            Option("friction", float, None, "gamma", nullable=True, low=0.0, low_open=True),
            Option("mode", str, "x", "a mode", choices=("x", "y")),
        )

        def __init__(self, **kw):
            self.kw = kw

        @classmethod
        def from_options(cls, context, **kw):
            return cls(context=context, **kw)

    @reg.register
    class B:
        name = "b"

    return reg, A


def test_lookup_lists_valid_choices_in_order():
    reg, A = _registry()
    assert reg.names() == ("a", "b") and "a" in reg and len(reg) == 2 and reg.get("a") is A
    with pytest.raises(ConfigError, match=r"unknown widget 'c'; valid choices are a, b$"):
        reg.get("c")


def test_resolve_fills_defaults_and_converts_command_line_strings():
    reg, _ = _registry()
    got = reg.resolve("a", {"step_size": "0.5", "steps": "3", "denoise": "false", "friction": "none"})
    assert got == {"step_size": 0.5, "steps": 3, "eps": "auto", "denoise": False, "friction": None, "mode": "x"}
    assert reg.resolve("a", {"steps": 4.0}, fill=False) == {"steps": 4}  # TOML writes 4.0 for 4 at times
    built = reg.build("a", "ctx", {"eps": 0.1})
    assert built.kw["context"] == "ctx" and built.kw["eps"] == 0.1 and built.kw["steps"] == 10


@pytest.mark.parametrize("values, option, needle", [
    ({"step_size": -1}, "step_size", "must be a positive finite number"),
    ({"step_size": float("nan")}, "step_size", "positive"),
    ({"steps": 0}, "steps", "must be a positive integer"),
    ({"steps": 2.5}, "steps", "positive integer"),
    ({"steps": True}, "steps", "positive integer"),
    ({"eps": "big"}, "eps", '"auto"'),
    ({"mode": "z"}, "mode", "one of x, y"),
    ({"denoise": "maybe"}, "denoise", "true or false"),
])
def test_bad_values_name_the_component_option_and_valid_range(values, option, needle):
    reg, _ = _registry()
    with pytest.raises(OptionError) as e:
        reg.resolve("a", values)
    assert e.value.option == option and needle in str(e.value)
    assert str(e.value).startswith(f"widget 'a' option {option}=")
    assert e.value.with_flag(Option(option, float).flag).startswith("--" + option.replace("_", "-"))


def test_unknown_option_lists_the_valid_ones():
    reg, _ = _registry()
    with pytest.raises(OptionError, match="valid options are step_size, steps, eps, denoise, friction, mode"):
        reg.resolve("a", {"stepsize": 1})
    with pytest.raises(OptionError, match="valid options are none"):
        reg.resolve("b", {"x": 1})


def test_registration_rules():
    reg, A = _registry()
    reg.register(A)  # the same class again (a reloaded module) replaces itself

    class Other:
        name = "a"

    with pytest.raises(ValueError, match="taken"):
        reg.register(Other)

    class Nameless:
        pass

    with pytest.raises(TypeError, match="name"):
        reg.register(Nameless)
    assert Option("corrector_steps", int).flag == "--corrector-steps"
    with pytest.raises(ValueError):
        Option("Bad-Name", int)
    reg.unregister("a")
    assert reg.names() == ("b",)


def test_all_options_merges_components_and_refuses_type_clashes():
    reg, _ = _registry()

    @reg.register
    class C:
        name = "c"
        options = (Option("steps", int, 5, "fewer"),)

    assert reg.all_options()["steps"][1] == ("a", "c")

    @reg.register
    class D:
        name = "d"
        options = (Option("steps", float, 5.0, "clash"),)

    with pytest.raises(TypeError, match="steps"):
        reg.all_options()


def test_sampler_registry_is_what_config_validation_reads():
    from scorefield.samplers import SAMPLERS
    from scorefield.train import preset

    assert {"annealed", "langevin", "pc", "ode", "uhmc", "mala", "hmc", "nuts"} <= set(SAMPLERS.names())
    # any registered sampler and its own options are a valid recipe sampler
    preset("fast", sampler={"name": "uhmc", "leapfrog": 3})
    with pytest.raises(ConfigError, match="unknown sampler 'gibbs'; valid choices are"):
        preset("fast", sampler={"name": "gibbs"})
    with pytest.raises(ConfigError, match="valid options are"):
        preset("fast", sampler={"name": "pc", "eps": 0.1})
    with pytest.raises(ConfigError, match="option levels=0 must be a positive integer"):
        preset("fast", sampler={"name": "pc", "levels": 0})
