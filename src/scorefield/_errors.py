"""Typed exceptions. The CLI maps them to exit codes: InputError -> 2, any other
ScorefieldError -> 1, each printed as one line."""

from __future__ import annotations


class ScorefieldError(Exception):
    """Base of every error scorefield raises on purpose. Exit code 1 from the CLI."""

    exit_code: int = 1


class InputError(ScorefieldError, ValueError):
    """Bad input from the user: a spec, a file, a number out of range. Exit code 2.

    The message is one sentence that names the input and what would be valid.
    """

    exit_code = 2


class DataSpecError(InputError):
    """A data spec (`mnist`, `image:PATH`, `toy:NAME`, ...) that cannot be parsed or loaded."""


class ConfigError(InputError):
    """A training or sampling configuration with an invalid value."""


class CheckpointError(InputError):
    """A checkpoint that is missing, truncated, corrupted or of another format version."""


class DivergenceError(ScorefieldError, FloatingPointError):
    """A NaN or inf appeared in training or sampling. Exit code 1.

    Attributes:
        step: the step at which it was detected (or None).
        level: the noise level index, for samplers that anneal (or None).
    """

    def __init__(self, message: str, *, step: int | None = None, level: int | None = None):
        super().__init__(message)
        self.step = step
        self.level = level


class ComponentRequiredError(InputError):
    """A run trained with a component given as an instance (a model, objective or optimiser
    that config.json cannot rebuild) was loaded or resumed without it. Exit code 2."""
