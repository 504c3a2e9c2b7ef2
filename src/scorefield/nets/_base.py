from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax
from jaxtyping import Array, Float


class ScoreNet(eqx.Module):
    """A score network on one unbatched example: ``net(x, sigma) -> s``.

    ``x`` has shape (D,), ``sigma`` is the perturbation standard deviation (a scalar, data
    units), ``s`` has shape (D,) and approximates grad_x log p_sigma(x). Callers ``vmap``.

    Arrays named in the class attribute ``frozen`` are never trained: :func:`trainable`
    leaves them out, so the optimiser state is built over the trainable part only.
    """

    frozen: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def __call__(self, x: Float[Array, " d"], sigma: Float[Array, ""]) -> Float[Array, " d"]:
        raise NotImplementedError

    def on_grid(self, x: Float[Array, "b L d"], sigmas: Float[Array, " L"]) -> Float[Array, "b L d"]:
        """Scores of a batch perturbed at a shared grid of levels: ``out[i, l] = self(x[i, l],
        sigmas[l])``, the reference's training scheme (every sample at every level).

        The default vmaps ``__call__``; a network whose levels share work overrides it with
        the same function computed faster (tests check the two agree).
        """
        return _vmap_on_grid(self, x, sigmas)


def _vmap_on_grid(model, x, sigmas):
    return jax.vmap(jax.vmap(model), (0, None))(x, sigmas)


def scores_on_grid(model, x: Float[Array, "b L d"], sigmas: Float[Array, " L"]) -> Float[Array, "b L d"]:
    """``model.on_grid(x, sigmas)`` for a :class:`ScoreNet`, and the same by vmap for any
    other callable ``model(x, sigma)``."""
    if isinstance(model, ScoreNet):
        return model.on_grid(x, sigmas)
    return _vmap_on_grid(model, x, sigmas)


def trainable(model: eqx.Module):
    """Filter spec (a pytree of bools shaped like `model`): True on the trained arrays.

    Every inexact array is trainable except the fields the network lists in ``frozen``.
    Use as ``params, rest = eqx.partition(model, trainable(model))``.
    """
    spec = jax.tree_util.tree_map(eqx.is_inexact_array, model)
    names = getattr(type(model), "frozen", ())
    if names:
        spec = eqx.tree_at(lambda s: [getattr(s, n) for n in names], spec, replace=[False] * len(names))
    return spec
