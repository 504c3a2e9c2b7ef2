"""The training state and its (de)serialisation to flat numeric arrays."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Int, PRNGKeyArray

from .._errors import CheckpointError
from ..nets import trainable


class TrainState(eqx.Module):
    """Everything that changes during training. `params` and `ema` hold the trainable arrays
    only (frozen ones live in `static`); `step` counts completed steps."""

    params: eqx.Module
    opt_state: object
    ema: eqx.Module
    step: Int[Array, ""]


def init_state(model: eqx.Module, optimizer: optax.GradientTransformation) -> tuple[TrainState, eqx.Module]:
    """A fresh state and the non-trainable part of `model` (see :func:`scorefield.nets.trainable`)."""
    params, static = eqx.partition(model, trainable(model))
    opt_state = optimizer.init(params)
    return TrainState(params, opt_state, params, jnp.asarray(0, jnp.int32)), static


def to_arrays(state: TrainState, static: eqx.Module) -> dict[str, np.ndarray]:
    """Flatten into name -> numpy array: the whole model (frozen arrays included, so a model
    is rebuilt from the checkpoint alone), the EMA, the optimiser state and the step."""
    model = eqx.combine(state.params, static)
    out = {}
    for prefix, tree in (("model", eqx.filter(model, eqx.is_array)), ("ema", state.ema), ("opt", state.opt_state)):
        for i, leaf in enumerate(jax.tree_util.tree_leaves(tree)):
            out[f"{prefix}/{i:04d}"] = np.asarray(leaf)
    out["step"] = np.asarray(state.step)
    return out


def _fill(tree, arrays: dict[str, np.ndarray], prefix: str):
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    names = sorted(k for k in arrays if k.startswith(prefix + "/"))
    if len(names) != len(leaves):
        raise CheckpointError(f"checkpoint holds {len(names)} {prefix} arrays but the configuration builds {len(leaves)}: it belongs to another configuration")
    new = []
    for name, ref in zip(names, leaves):
        a = arrays[name]
        # ref: an array or, for a skeleton built by eqx.filter_eval_shape, a ShapeDtypeStruct
        shape, dtype = (tuple(ref.shape), np.dtype(ref.dtype)) if hasattr(ref, "dtype") else (np.shape(ref), np.asarray(ref).dtype)
        if a.shape != shape or a.dtype != dtype:
            raise CheckpointError(f"checkpoint array {name} has shape {a.shape} {a.dtype}, the configuration expects {shape} {dtype}")
        new.append(jnp.asarray(a))
    return jax.tree_util.tree_unflatten(treedef, new)


def from_arrays(
    skeleton: eqx.Module, arrays: dict[str, np.ndarray], optimizer: optax.GradientTransformation | None = None
) -> tuple[TrainState, eqx.Module]:
    """Rebuild (state, static) from checkpoint arrays into the structure of `skeleton` (a
    model of the run's architecture, or its `eqx.filter_eval_shape`: its array values are
    replaced). Without `optimizer`
    the optimiser state is left empty (enough to load a model, not to resume)."""
    arr_part, rest = eqx.partition(skeleton, lambda x: eqx.is_array(x) or isinstance(x, jax.ShapeDtypeStruct))
    model = eqx.combine(_fill(arr_part, arrays, "model"), rest)
    params, static = eqx.partition(model, trainable(model))
    ema = _fill(params, arrays, "ema")
    opt_state = None if optimizer is None else _fill(optimizer.init(params), arrays, "opt")
    if "step" not in arrays:
        raise CheckpointError("checkpoint has no step array")
    return TrainState(params, opt_state, ema, jnp.asarray(arrays["step"], jnp.int32)), static


def step_key(base: PRNGKeyArray, step: Int[Array, ""]) -> PRNGKeyArray:
    """The key of one training step: a function of the step alone, so that a resumed run
    draws exactly the batches of an uninterrupted one."""
    return jax.random.fold_in(base, step)
