from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar

import equinox as eqx
from jaxtyping import Array, Float, PRNGKeyArray

from .._registry import Option, Registry

OBJECTIVES: Registry = Registry("objective")
"""Every objective by the name it declares (`name = "dsm"`): what `objective = "..."` in a
training config offers. Register one with ``@OBJECTIVES.register`` on its class."""


@dataclasses.dataclass(frozen=True)
class ObjectiveContext:
    """What an objective is built from besides its own options (see
    ``Objective.from_options``).

    Attributes:
        sigmas: (L,) the training grid of noise levels, descending (data units).
        sigma_min: the smallest level (data units), where fixed-level objectives train.
        sigma_data: the data's standard deviation per coordinate (data units), where known;
            scales that derive from it (the log-normal draw's median) need it.
    """

    sigmas: Any
    sigma_min: float
    sigma_data: float | None = None


class Objective(eqx.Module):
    """A score-matching objective: ``objective(model, x, key=key) -> loss``.

    `model` is a score network ``model(x, sigma)`` on one example; `x` is a batch of data of
    shape (B, D); the loss is a scalar to minimise.

    An objective found by name declares ``name`` and ``options`` (the training-config keys
    it reads) as class attributes, implements ``from_options(context, **options)`` and is
    registered with ``@OBJECTIVES.register``; one used only as an instance
    (``train(..., objective=obj)``) needs none of that.
    """

    name: ClassVar[str]
    options: ClassVar[tuple[Option, ...]] = ()

    @classmethod
    def from_options(cls, context: ObjectiveContext, **options) -> "Objective":
        """The objective for `context` with its `options` (validated, defaults filled)."""
        raise NotImplementedError(f"{cls.__qualname__} does not implement from_options; give an instance instead")

    @abc.abstractmethod
    def __call__(self, model, x: Float[Array, "b d"], *, key: PRNGKeyArray) -> Float[Array, ""]:
        raise NotImplementedError
