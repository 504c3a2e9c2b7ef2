from __future__ import annotations

import abc

import equinox as eqx
from jaxtyping import Array, Float, PRNGKeyArray


class Objective(eqx.Module):
    """A score-matching objective: ``objective(model, x, key=key) -> loss``.

    `model` is a score network ``model(x, sigma)`` on one example; `x` is a batch of data of
    shape (B, D); the loss is a scalar to minimise.
    """

    @abc.abstractmethod
    def __call__(self, model, x: Float[Array, "b d"], *, key: PRNGKeyArray) -> Float[Array, ""]:
        raise NotImplementedError
