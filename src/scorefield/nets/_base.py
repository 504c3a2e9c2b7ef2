from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar

import equinox as eqx
import jax
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._registry import Option, Registry

NETS: Registry = Registry("network")
"""Every score network by the name it declares (`name = "sigma"`): what `net = "..."` in a
training config, `scorefield train` and their messages offer. Register a network with
``@NETS.register`` on its class."""


@dataclasses.dataclass(frozen=True)
class NetContext:
    """What a network is built from besides its own options (see ``ScoreNet.from_options``).

    Attributes:
        dim: D, the data dimension.
        centre: (D,) a point at the centre of the data (data units).
        half_width: half the side of a cube around `centre` that holds the data, or None.
        sigmas: (L,) the training grid of noise levels, descending (data units).
        key: the model's PRNG key.
        image_shape: (C, H, W) for image data in pixel space (D = C*H*W), else None.
        n_classes: labels the network is conditioned on (0: unconditional).
        sigma_data: the data's RMS deviation from `centre` per coordinate, or None.
        pixel_cell: the side of a pixel cell (data units) where the data are a piecewise-
            constant image density with cell edges at its whole multiples, else None.
    """

    dim: int
    centre: Any
    half_width: float | None
    sigmas: Any
    key: PRNGKeyArray
    image_shape: tuple[int, ...] | None = None
    n_classes: int = 0
    sigma_data: float | None = None
    pixel_cell: float | None = None


class ScoreNet(eqx.Module):
    """A score network on one unbatched example: ``net(x, sigma) -> s``.

    ``x`` has shape (D,), ``sigma`` is the perturbation standard deviation (a scalar, data
    units), ``s`` has shape (D,) and approximates grad_x log p_sigma(x). Callers ``vmap``.

    Arrays named in the class attribute ``frozen`` are never trained: :func:`trainable`
    leaves them out, so the optimiser state is built over the trainable part only.

    A network found by name declares, as class attributes, ``name`` (what ``net = "..."``
    selects) and ``options`` (a tuple of :class:`scorefield._registry.Option`: the keys of
    a training config it reads, with types, defaults, ranges and help), implements the
    classmethod ``from_options(context, **options)`` and is registered with
    ``@NETS.register``. A network used only as an instance (``train(..., model=net)``)
    needs none of that.
    """

    frozen: ClassVar[tuple[str, ...]] = ()
    conditional: ClassVar[bool] = False  # True: also called as net(x, sigma, label)
    name: ClassVar[str]
    options: ClassVar[tuple[Option, ...]] = ()

    @classmethod
    def from_options(cls, context: NetContext, **options) -> "ScoreNet":
        """The network for `context` with its `options` (every declared option, validated,
        defaults filled). Registered networks implement it."""
        raise NotImplementedError(f"{cls.__qualname__} does not implement from_options; give an instance instead")

    @abc.abstractmethod
    def __call__(self, x: Float[Array, " d"], sigma: Float[ArrayLike, ""]) -> Float[Array, " d"]:
        raise NotImplementedError

    def on_grid(self, x: Float[Array, "b L d"], sigmas: Float[Array, " L"]) -> Float[Array, "b L d"]:
        """Scores of a batch perturbed at a shared grid of levels: ``out[i, l] = self(x[i, l],
        sigmas[l])``, the reference's training scheme (every sample at every level).

        The default vmaps ``__call__``; a network whose levels share work overrides it with
        the same function computed faster (tests check the two agree).
        """
        return _vmap_on_grid(self, x, sigmas)

    def data_loss(self, x: Float[Array, "b d"]) -> Float[Array, ""] | None:
        """A term the training adds to the objective's loss on the clean batch `x` (data
        units), for a part of the network fitted by maximum likelihood rather than by score
        matching; None (the default): none."""
        return None


def data_loss(model, x: Float[Array, "b d"]) -> Float[Array, ""] | None:
    """``model.data_loss(x)`` for a :class:`ScoreNet`, None for any other callable."""
    return model.data_loss(x) if isinstance(model, ScoreNet) else None


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
    return freeze(jax.tree_util.tree_map(eqx.is_inexact_array, model), model)


def freeze(spec, model: eqx.Module):
    """`spec` (a pytree of bools shaped like `model`) with False on the fields the network
    lists in ``frozen`` and holds (None: a part it does not use, which is no leaf)."""
    names = [n for n in getattr(type(model), "frozen", ()) if getattr(model, n) is not None]
    if not names:
        return spec
    return eqx.tree_at(lambda s: [getattr(s, n) for n in names], spec, replace=[False] * len(names))


def normal_init(key: PRNGKeyArray, shape: tuple[int, ...]) -> Float[Array, "..."]:
    """``jax.random.normal(key, shape)``, drawn flat and reshaped: the same values, bit for
    bit (threefry counts over the flattened index), but one compiled program of a 1-D shape.
    XLA's CPU backend takes seconds to compile the normal draw of every distinct 3-D shape
    (a grid network's five grids cost ~20 s of compilation under load against ~2 s flat).
    """
    n = 1
    for s in shape:
        n *= int(s)
    return jax.random.normal(key, (n,)).reshape(shape)
