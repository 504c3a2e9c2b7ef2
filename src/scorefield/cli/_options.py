"""Command-line flags made from a registry's option tables (see scorefield._registry).

`lazy_options(parser, load, title)` gives `parser` one flag per option name of every
component in the registry `load()` returns (`step_size` -> `--step-size`; a bool option
`denoise` -> `--denoise/--no-denoise`), all defaulting to None (= not given). The registry
is imported only when this parser parses (the component modules import JAX, and
`scorefield --help` must stay fast). `given(args, registry, name)` collects the values
given for component `name`; `flag_error` turns a library OptionError into the flag's wording.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

from .._errors import ConfigError

_METAVAR = {int: "N", float: "X", str: "S"}


def lazy_options(parser: argparse.ArgumentParser, load: Callable[[], Any], title: str, *,
                 skip: tuple[str, ...] = (), choices: str | None = None) -> None:
    """Add the flags of every option of the registry `load()` to `parser` when it first parses.

    Arguments:
        parser: the command's parser.
        load: returns the registry (imported then).
        title: the help section of the flags.
        skip: option names not to offer.
        choices: a flag of `parser` (e.g. "--sampler") whose valid values are the registry's names.
    """
    base = type(parser)

    class _Lazy(base):  # type: ignore[misc, valid-type]
        _loaded = False

        def parse_known_args(self, args=None, namespace=None):
            if not self._loaded:
                self._loaded = True
                registry = load()
                _add(self, registry, title, skip)
                if choices is not None:
                    self._option_string_actions[choices].choices = registry.names()
            return super().parse_known_args(args, namespace)

    parser.__class__ = _Lazy


def _add(parser, registry, title: str, skip) -> None:
    group = parser.add_argument_group(title)
    for name, (opt, users) in registry.all_options().items():
        if name in skip:
            continue
        users_txt = "/".join(users)
        text = f"{users_txt}: {opt.help}".replace("%", "%%")
        if opt.default is not None and not isinstance(opt.default, bool):
            text += f" (default {opt.default})" if f"default {opt.default}" not in opt.help else ""
        if opt.type is bool:
            group.add_argument(opt.flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            group.add_argument(opt.flag, dest=name, default=None, metavar=_METAVAR[opt.type], help=text,
                               type=_checker(opt))


def _checker(opt):
    """An argparse type: the value converted and range-checked by the option's first
    declaration (a usage error naming the flag); each component checks its own range again."""

    def check(text: str):
        from .._registry import OptionError

        try:
            return opt.parse(text, "option")
        except OptionError as e:
            raise argparse.ArgumentTypeError(f"{text} {e.requirement}") from None

    check.__name__ = opt.type.__name__
    return check


def given(args: argparse.Namespace, registry, name: str, *, also: tuple[str, ...] = ()) -> dict[str, Any]:
    """The options of component `name` given on the command line (raw values), and an
    InputError for a flag given that `name` does not take (options named in `also` are
    used elsewhere and not checked)."""
    own = {o.name for o in registry.options(name)}
    out = {}
    for opt_name, (opt, users) in registry.all_options().items():
        value = getattr(args, opt_name, None)
        if value is None:
            continue
        if opt_name in own:
            out[opt_name] = value
        elif opt_name not in also:
            valid = ", ".join(o.flag for o in registry.options(name)) or "none"
            raise ConfigError(f"{opt.flag} is not an option of {registry.kind} '{name}' (it is one of "
                              f"{', '.join(users)}); the options of '{name}' are {valid}")
    return out


def flag_error(e) -> ConfigError:
    """A library OptionError restated with its command-line flag."""
    from .._registry import OptionError

    if isinstance(e, OptionError) and e.option is not None:
        return ConfigError(e.with_flag("--" + e.option.replace("_", "-")))
    return e
