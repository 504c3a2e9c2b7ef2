"""Components found by name, and their options: one small registry per kind.

A component (a sampler, a score network, an objective) is a class that declares, as class
attributes, the name a user types and the options it takes:

    @SAMPLERS.register
    class Langevin(AbstractSampler):
        name = "langevin"
        options = (
            Option("step_size", float, None, "eta, squared data units (default (sigma_max/20)^2)", low=0, low_open=True),
            Option("steps", int, 1000, "steps per particle", low=1),
        )

        @classmethod
        def from_options(cls, context, **values): ...   # values: every option, defaults filled

`Registry(kind)` collects such classes (`register`, used as a decorator); `get(name)` finds
one or raises ConfigError "unknown sampler 'x'; valid choices are a, b, c"; `resolve`
validates a table of option values (a TOML table, CLI values, Python keywords: the same
snake_case names) and fills in the defaults. The CLI turns an option `step_size` into the
flag `--step-size` (`Option.flag`); TOML and Python use `step_size`.

Errors name the option, never a CLI flag: `OptionError` (a ConfigError) carries the
component, the option and the requirement, so the CLI can say the same with its flag.
Nothing here imports JAX.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from typing import Any, Callable, Generic, TypeVar

from ._errors import ConfigError
from ._limits import MAX_COUNT

__all__ = ["Option", "OptionError", "Registry", "FROM_CONTEXT"]

T = TypeVar("T")

FROM_CONTEXT = None  # an Option default of None: the component decides from its context


class OptionError(ConfigError):
    """An option value out of range, of the wrong type, or unknown.

    Attributes:
        owner: what the option belongs to, e.g. "sampler 'pc'".
        option: the option's snake_case name (None when the problem is an unknown name).
        value: the value given.
        requirement: what would be valid, e.g. "must be a positive number".
    """

    def __init__(self, owner: str, option: str | None, value: Any, requirement: str):
        self.owner, self.option, self.value, self.requirement = owner, option, value, requirement
        what = f"{owner} option {option}={value!r}" if option is not None else f"{owner}: {value!r}"
        super().__init__(f"{what} {requirement}")

    def with_flag(self, flag: str) -> str:
        """The same message as a command line says it: `--step-size -1 must be ... (sampler 'x')`."""
        return f"{flag} {self.value} {self.requirement} ({self.owner})"


_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
               list: "a non-empty list of integers"}


@dataclasses.dataclass(frozen=True)
class Option:
    """One hyperparameter of a component.

    Attributes:
        name: snake_case key: the TOML key and Python keyword; the CLI flag is `--kebab-case`.
        type: int, float, bool, str, or list (a list of integers; `low`/`high` bound each).
        default: the value used when none is given; None means the component derives it
            from its context (the help says how).
        help: one line (what it is, units, what the default is when derived).
        low, high: inclusive bounds for numbers (None: unbounded); `low_open` makes the
            lower bound strict (low=0, low_open=True: positive).
        choices: the valid values, for strings.
        special: string values accepted as they are besides the type (e.g. ("auto",)).
        nullable: whether an explicit None is valid (e.g. "no friction": a full refresh).
    """

    name: str
    type: type
    default: Any = None
    help: str = ""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple | None = None
    special: tuple = ()
    nullable: bool = False

    def __post_init__(self):
        if not self.name.isidentifier() or self.name != self.name.lower():
            raise ValueError(f"option name {self.name!r} must be a snake_case identifier")
        if self.type not in _TYPE_NAMES:
            raise ValueError(f"option {self.name}: type must be int, float, bool, str or list (of integers), not {self.type!r}")

    @property
    def flag(self) -> str:
        """The command-line flag: `step_size` -> `--step-size`."""
        return "--" + self.name.replace("_", "-")

    def requirement(self) -> str:
        """What a valid value is, as a sentence fragment: 'must be a number > 0'."""
        if self.choices is not None:
            valid = "one of " + ", ".join(map(str, self.choices))
        else:
            valid = _TYPE_NAMES[self.type]
            positive = self.low == 0 and self.low_open or (self.type is int and self.low == 1 and not self.low_open)
            if positive:
                valid = "a positive integer" if self.type is int else "a positive finite number"
            if self.type is list and self.low is not None:
                valid += f" each >= {self.low:g}"
            if self.type in (int, float):
                lo = None if (self.low is None or positive) else (f"> {self.low:g}" if self.low_open else f">= {self.low:g}")
                hi = None if self.high is None else f"<= {self.high:g}"
                bounds = " and ".join(b for b in (lo, hi) if b)
                if bounds:
                    valid += " " + bounds
        extra = [f'"{s}"' for s in self.special] + (["none"] if self.nullable else [])
        if extra:
            valid += " or " + " or ".join(extra)
        return f"must be {valid}"

    def parse(self, value: Any, owner: str = "component") -> Any:
        """`value` (a string from a command line, or a TOML/Python value) checked and converted.

        Raises:
            OptionError naming `owner`, the option and the valid values.
        """
        bad = OptionError(owner, self.name, value, self.requirement())
        if value is None:
            if self.nullable:
                return None
            raise bad
        if isinstance(value, str) and value in self.special:
            return value
        if isinstance(value, str) and self.nullable and value.lower() == "none":
            return None
        t = self.type
        if t is list:  # a list of integers (e.g. grid resolutions); "8,16,32" on a command line
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, (list, tuple)) or not items:
                raise bad
            elem = dataclasses.replace(self, type=int, choices=None, special=(), nullable=False)
            try:
                return [elem.parse(v, owner) for v in items]
            except OptionError:
                raise bad from None
        if t is bool:
            if isinstance(value, bool):
                v = value
            elif isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
                v = value.lower() in ("true", "yes", "1")
            else:
                raise bad
        elif t is int:
            if isinstance(value, bool):
                raise bad
            if isinstance(value, str):
                try:
                    value = int(value.strip())
                except ValueError:
                    raise bad from None
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if not isinstance(value, int):
                raise bad
            if abs(value) > MAX_COUNT:  # counts go to JAX as int32 (steps, levels, sizes)
                raise OptionError(owner, self.name, value, f"{self.requirement()}, at most {MAX_COUNT} in magnitude")
            v = value
        elif t is float:
            if isinstance(value, bool):
                raise bad
            try:
                v = float(value)
            except (TypeError, ValueError):
                raise bad from None
            if not math.isfinite(v):
                raise bad
        else:
            if not isinstance(value, str):
                raise bad
            v = value
        if t in (int, float):
            if self.low is not None and (v <= self.low if self.low_open else v < self.low):
                raise bad
            if self.high is not None and v > self.high:
                raise bad
        if self.choices is not None and v not in self.choices:
            raise bad
        return v


class Registry(Generic[T]):
    """The components of one kind, by the `name` each class declares.

    Arguments:
        kind: what the components are, singular, for messages ("sampler", "network").
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._classes: dict[str, type[T]] = {}

    def register(self, cls: type[T]) -> type[T]:
        """Add `cls` (use as a class decorator). It must declare `name` (a str) itself and may
        declare `options` (a tuple of Option). A class of the same module and qualified name
        replaces an earlier one (a reloaded module); another class of a taken name is an error."""
        name = cls.__dict__.get("name")
        if not isinstance(name, str) or not name:
            raise TypeError(f"{cls.__qualname__} must declare its {self.kind} name as a class attribute name = '...'")
        old = self._classes.get(name)
        if old is not None and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
            raise ValueError(f"{self.kind} name {name!r} is taken by {old.__module__}.{old.__qualname__}")
        seen: set[str] = set()
        for opt in getattr(cls, "options", ()):
            if not isinstance(opt, Option):
                raise TypeError(f"{cls.__qualname__}.options must hold Option instances, not {opt!r}")
            if opt.name in seen:
                raise ValueError(f"{cls.__qualname__} declares option {opt.name!r} twice")
            seen.add(opt.name)
        self._classes[name] = cls
        return cls

    def unregister(self, name: str) -> None:
        """Remove a component (for tests that register their own)."""
        self._classes.pop(name, None)

    def names(self) -> tuple[str, ...]:
        """Every registered name, in registration order."""
        return tuple(self._classes)

    def choices(self) -> str:
        return ", ".join(self._classes)

    def get(self, name: str) -> type[T]:
        """The class registered as `name`; ConfigError listing the valid choices otherwise."""
        try:
            return self._classes[name]
        except (KeyError, TypeError):
            raise ConfigError(f"unknown {self.kind} {name!r}; valid choices are {self.choices()}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._classes

    def __iter__(self) -> Iterator[type[T]]:
        return iter(list(self._classes.values()))

    def __len__(self) -> int:
        return len(self._classes)

    def options(self, name: str) -> tuple[Option, ...]:
        """The options of the component `name`."""
        return tuple(getattr(self.get(name), "options", ()))

    def resolve(self, name: str, values: Mapping[str, Any], *, fill: bool = True) -> dict[str, Any]:
        """Validate option `values` of component `name`.

        Arguments:
            name: a registered name.
            values: option name -> value (strings from a command line are converted);
                a value of None counts as not given unless the option is nullable.
            fill: add the defaults of the options not given.
        Returns:
            option name -> checked value.
        Raises:
            OptionError for an unknown option (listing the valid ones) or an invalid value.
        """
        cls = self.get(name)
        opts = {o.name: o for o in getattr(cls, "options", ())}
        owner = f"{self.kind} '{name}'"
        unknown = sorted(set(values) - set(opts))
        if unknown:
            valid = ", ".join(opts) or "none"
            raise OptionError(owner, None, unknown[0], f"is not one of its options; valid options are {valid}")
        out: dict[str, Any] = {}
        for key, opt in opts.items():
            if key in values and (values[key] is not None or opt.nullable):
                out[key] = opt.parse(values[key], owner)
            elif fill:
                out[key] = opt.default
        return out

    def build(self, name: str, context: Any, values: Mapping[str, Any] | None = None) -> T:
        """`cls.from_options(context, **options)` of the component `name`, options validated
        and defaults filled."""
        cls = self.get(name)
        return cls.from_options(context, **self.resolve(name, values or {}))

    def all_options(self) -> dict[str, tuple[Option, tuple[str, ...]]]:
        """Every option name of every component -> (the first declaration, the components
        that take it); what a command line offers. Raises TypeError if two components give
        one name different types."""
        out: dict[str, tuple[Option, tuple[str, ...]]] = {}
        for cname, cls in self._classes.items():
            for opt in getattr(cls, "options", ()):
                if opt.name in out:
                    first, users = out[opt.name]
                    if first.type is not opt.type:
                        raise TypeError(f"option {opt.name!r} is {first.type.__name__} in {users[0]} "
                                        f"but {opt.type.__name__} in {cname}")
                    out[opt.name] = (first, users + (cname,))
                else:
                    out[opt.name] = (opt, (cname,))
        return out


def describe(registry: Registry, label: Callable[[type], str] | None = None) -> str:
    """One line per component: its name, a label, and its options (for help texts)."""
    lines = []
    for cls in registry:
        opts = ", ".join(o.name for o in getattr(cls, "options", ()))
        what = label(cls) if label else (cls.__doc__ or "").strip().split("\n")[0]
        lines.append(f"  {cls.name:<10} {what}" + (f" [{opts}]" if opts else ""))
    return "\n".join(lines)
