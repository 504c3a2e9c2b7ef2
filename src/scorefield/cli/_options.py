"""Command-line flags made from a registry's option tables (see scorefield._registry).

`lazy_options(parser, load, title)` gives `parser` one flag per option name of every
component in the registry `load()` returns (`step_size` -> `--step-size`; a bool option
`denoise` -> `--denoise/--no-denoise`), all defaulting to None (= not given). The registry
is imported only when this parser parses (the component modules import JAX, and
`scorefield --help` must stay fast); `sample` offers the samplers' options, `train` the
networks' and the objectives'. `given(args, registry, name)` collects the values
given for component `name`; `flag_error` turns a library OptionError into the flag's wording.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

from .._errors import ConfigError

_METAVAR = {int: "N", float: "X", str: "S"}


def lazy_options(parser: argparse.ArgumentParser, load: Callable[[], Any], title: str, *,
                 skip: tuple[str, ...] = (), choices: str | None = None, also_valid: tuple[str, ...] = ()) -> None:
    """Add the flags of every option of the registry `load()` to `parser` when it first parses.
    May be called for several registries of one parser (train: networks and objectives); an
    option name that an earlier registry or the parser itself already offers is not added again.

    Arguments:
        parser: the command's parser.
        load: returns the registry (imported then).
        title: the help section of the flags.
        skip: option names not to offer.
        choices: a flag of `parser` (e.g. "--sampler") whose valid values are the registry's names.
        also_valid: values of the `choices` flag valid besides the names (e.g. "auto").
    """
    pending = parser.__dict__.setdefault("_lazy_registries", [])
    pending.append((load, title, skip, choices, also_valid))
    if isinstance(parser, _Lazy):
        return
    parser.__class__ = type("_Lazy" + type(parser).__name__, (_Lazy, type(parser)), {})


class _Lazy(argparse.ArgumentParser):
    """Mixed into a parser by lazy_options: loads its registries' flags on the first parse."""

    def parse_known_args(self, args=None, namespace=None):
        pending = self.__dict__.get("_lazy_registries", [])
        while pending:
            load, title, skip, choices, also_valid = pending.pop(0)
            registry = load()
            _add(self, registry, title, skip)
            if choices is not None:
                self._option_string_actions[choices].choices = tuple(also_valid) + registry.names()
        return super().parse_known_args(args, namespace)


def _add(parser, registry, title: str, skip) -> None:
    group = parser.add_argument_group(title)
    taken = {a.dest for a in parser._actions}
    offered = set(parser.get_default("_offered") or ())  # option flags added by every registry so far
    for name, (opt, users) in registry.all_options().items():
        if name in skip or name in taken or opt.flag in parser._option_string_actions:
            continue  # offered already (by the command itself or another registry of it)
        offered.add(name)
        users_txt = "/".join(users)
        text = f"{users_txt}: {opt.help}".replace("%", "%%")
        if opt.default is not None and not isinstance(opt.default, bool):
            text += f" (default {opt.default})" if f"default {opt.default}" not in opt.help else ""
        if opt.type is bool:
            group.add_argument(opt.flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            group.add_argument(opt.flag, dest=name, default=None, metavar=_METAVAR.get(opt.type, "LIST"), help=text,
                               type=_checker(opt))
    parser.set_defaults(_offered=tuple(sorted(offered)))


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
    offered = getattr(args, "_offered", None)  # the names that are option flags (not the command's own)
    out = {}
    for opt_name, (opt, users) in registry.all_options().items():
        value = getattr(args, opt_name, None) if offered is None or opt_name in offered else None
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
