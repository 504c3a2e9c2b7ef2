"""Memory a training run needs, estimated from shapes before anything is allocated (issue 14,
item 10), so that an impossible `batch_size`, `grid_resolutions` or `n_levels` is refused at
once with one line naming the option and the largest value that fits, instead of failing
after tens of seconds with an out-of-memory error (or compiling for minutes).

What is estimated is a lower bound, so that nothing that would fit is ever refused:
  * the noise grid: `n_levels` values, built in float64 then float32 (16 bytes a level);
  * the training state: the network's parameters (from ``eqx.filter_eval_shape`` of the
    network: shapes only, no allocation) four times over (parameters, EMA, Adam's two
    moments), all of which live at once;
  * the largest single array of one training step (loss and gradient, traced abstractly
    with ``eqx.filter_make_jaxpr`` at the configured batch size), which must exist at some
    moment however XLA plans its buffers.
Their sum is compared with :func:`scorefield._limits.available_memory`
(``SCOREFIELD_MEMORY_LIMIT`` overrides it). A run that passes may still need more (XLA
keeps several such arrays at once); if it then runs out of memory in its first compiled
call, training stops with one line and a new run directory is removed again."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._errors import ConfigError
from .._limits import available_memory, fmt_bytes

STATE_COPIES = 4  # parameters, EMA and Adam's two moments, all alive at once
_LEVEL_BYTES = 16  # np.geomspace (float64) and the float32 grid


def _nbytes(aval) -> int:
    shape = getattr(aval, "shape", None)
    dtype = getattr(aval, "dtype", None)
    if shape is None or dtype is None:
        return 0
    try:
        item = np.dtype(dtype).itemsize
    except TypeError:  # PRNG key types
        item = 8
    return int(math.prod(int(s) for s in shape)) * item


def _total(jaxpr, mult: int = 1) -> int:
    """The sum of the sizes of every intermediate of `jaxpr` (nested calls included, a scan's
    body `length` times): an upper bound of what one step can hold at once."""
    total = 0
    for eqn in jaxpr.eqns:
        total += mult * sum(_nbytes(v.aval) for v in eqn.outvars)
        inner = mult * int(eqn.params.get("length", 1)) if eqn.primitive.name == "scan" else mult
        for p in eqn.params.values():
            for sub in (p if isinstance(p, (tuple, list)) else (p,)):
                j = getattr(sub, "jaxpr", sub)
                if hasattr(j, "eqns"):
                    total += _total(j, inner)
    return total


def _largest(jaxpr) -> int:
    """The size of the largest intermediate array of `jaxpr`, nested calls included."""
    best = 0
    for eqn in jaxpr.eqns:
        best = max([best, *(_nbytes(v.aval) for v in eqn.outvars)])
        for p in eqn.params.values():
            for sub in (p if isinstance(p, (tuple, list)) else (p,)):
                j = getattr(sub, "jaxpr", sub)
                if hasattr(j, "eqns"):
                    best = max(best, _largest(j))
    return best


def _free() -> int:
    return available_memory()


def check_levels(n_levels: int, *, what: str = "n_levels") -> None:
    """ConfigError when the noise grid alone would not fit in a quarter of free memory."""
    free = _free()
    if n_levels * _LEVEL_BYTES > free // 4:
        fits = max(1, free // 4 // _LEVEL_BYTES)
        raise ConfigError(f"{what}={n_levels} needs {fmt_bytes(n_levels * _LEVEL_BYTES)} for the noise grid alone, more "
                          f"than the free memory ({fmt_bytes(free)}) allows; the largest {what} that fits is {fits}")


def estimate(config, objective, model, batch_size: int | None = None, *, value_and_grad=None) -> dict:
    """Lower bounds of the bytes a training step of `config` needs: {'params', 'state',
    'largest', 'total'}, from the abstract `model` (an eqx.filter_eval_shape result or a
    real model) and `objective`, at `batch_size` (default the config's). `value_and_grad`:
    the training's ``loss_and_grad(objective)`` (its trace is then the training step's own),
    or None."""
    is_float = lambda leaf: hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jnp.inexact)  # noqa: E731
    from ..nets._base import freeze

    spec = freeze(jax.tree_util.tree_map(is_float, model), model)  # abstract leaves: trainable() cannot tell floats
    leaves = jax.tree_util.tree_leaves(model)
    p_bytes = sum(_nbytes(leaf) for leaf, t in zip(leaves, jax.tree_util.tree_leaves(spec)) if t)
    all_bytes = sum(_nbytes(leaf) for leaf in leaves)
    state = STATE_COPIES * p_bytes + (all_bytes - p_bytes)

    from ._step import loss_and_grad

    value_and_grad = loss_and_grad(objective) if value_and_grad is None else value_and_grad

    def step(model, x, key):  # the whole model traced (its frozen arrays too), the gradient on the trainable part
        from ..nets import trainable

        p, s = eqx.partition(model, trainable(model))
        return value_and_grad(p, s, x, key, None)

    b = int(config.batch_size if batch_size is None else batch_size)
    x = jax.ShapeDtypeStruct((b, int(config.dim)), jnp.float32)
    jaxpr = eqx.filter_make_jaxpr(step)(model, x, jax.random.PRNGKey(0))[0].jaxpr
    largest = _largest(jaxpr)
    upper = 2 * (state + all_bytes) + _total(jaxpr)  # + the next state and a checkpoint's host copy
    return {"params": p_bytes, "state": state, "largest": largest, "total": state + largest, "upper": upper}


def compiled_bytes(config, objective, optimizer, model, dataset) -> int:
    """What XLA plans for one compiled training step (arguments, outputs and temporaries),
    from a compilation on abstract shapes: nothing is allocated. Costs one compilation, so
    it is asked only when the cheap bounds of :func:`estimate` do not decide."""
    from ._build import keys
    from ._state import init_state
    from ._step import make_chunk

    chunk = make_chunk(objective, optimizer, key=keys(config)["train"], batch_size=config.batch_size,
                       ema_decay=config.ema_decay, mesh=None)
    leaves, treedef = jax.tree_util.tree_flatten((model, dataset))
    dyn = [i for i, leaf in enumerate(leaves) if isinstance(leaf, (jax.ShapeDtypeStruct, jax.Array, np.ndarray))]

    def one_step(arrays):
        filled = list(leaves)
        for i, a in zip(dyn, arrays):
            filled[i] = a
        m, d = jax.tree_util.tree_unflatten(treedef, filled)
        state, static = init_state(m, optimizer)
        return chunk(state, static, d, 1)

    args = [jax.ShapeDtypeStruct(leaves[i].shape, leaves[i].dtype) for i in dyn]
    ma = jax.jit(one_step).lower(args).compile().memory_analysis()
    if ma is None:
        return 0
    return int(ma.argument_size_in_bytes + ma.output_size_in_bytes + ma.temp_size_in_bytes)


def check_train_memory(config, objective, build, *, optimizer=None, dataset=None, value_and_grad=None) -> None:
    """Refuse, before anything is allocated or written, a configuration whose training
    cannot fit in free memory: ConfigError (exit 2) naming the option and the largest value
    that fits.

    Arguments:
        config: a resolved TrainConfig.
        objective: the objective (or None to build it from the config).
        build: ``build()`` -> the network; called inside ``eqx.filter_eval_shape`` (shapes only).
        optimizer, dataset: for XLA's own plan of one step, asked when the bounds do not decide
            (a configuration between the lower bound and the upper bound of what it needs).
        value_and_grad: the training's ``loss_and_grad(objective)``, so that the step traced
            here is the one the training compiles (traced once for both); or None.
    """
    check_levels(int(config.n_levels))
    free = _free()
    model = eqx.filter_eval_shape(build)
    if objective is None:
        from ._build import build_objective

        objective = build_objective(config)
    try:
        est = estimate(config, objective, model, value_and_grad=value_and_grad)
    except Exception:  # noqa: BLE001 - a component the abstract trace cannot follow (e.g. one that needs labels)
        return  # not estimated: the first compiled call's own out-of-memory error stays one line
    if est["upper"] <= free:
        return
    xla = None
    if est["total"] <= free and est["state"] <= free // 2:  # the bounds do not decide: ask XLA, if it can be asked
        if optimizer is None or dataset is None:
            return
        xla = compiled_bytes(config, objective, optimizer, model, dataset)
        if xla <= free:
            return
        est["total"] = xla
    need = fmt_bytes(est["total"])
    if est["state"] > free // 2:
        if config.net == "grid":
            dim, feats = int(config.dim), int(config.grid_features)
            grids = sum(r**dim * feats * 4 for r in config.grid_resolutions)
            others = max(est["params"] - grids, 0)
            budget = (free // 2 / STATE_COPIES - others) / (4 * feats * len(config.grid_resolutions))
            fits = max(1, int(math.floor(max(budget, 1) ** (1 / dim))))
            raise ConfigError(f"grid_resolutions={list(config.grid_resolutions)} gives {est['params'] // 4} parameters, "
                              f"which need at least {fmt_bytes(est['state'])} of memory to train, more than is free "
                              f"({fmt_bytes(free)}); grids of at most {fits} points per side fit")
        raise ConfigError(f"the network (net={config.net}, width={config.width}, depth={config.depth}) has "
                          f"{est['params'] // 4} parameters, which need at least {fmt_bytes(est['state'])} of memory to "
                          f"train, more than is free ({fmt_bytes(free)}); use a smaller network")
    one = estimate(config, objective, model, batch_size=1)["largest"]
    per_sample = max((est["largest"] - one) / max(config.batch_size - 1, 1), 1.0)
    room = max(free - est["state"], 0)
    if xla is not None:  # XLA's plan, scaled: its temporaries grow with the batch
        per_sample = max(per_sample, (xla - est["state"]) / config.batch_size)
    if config.levels == "all" and config.n_levels > 1:
        per_level = per_sample / config.n_levels
        fits_b = int(room // per_sample)
        fits_l = int(room // max(per_level * config.batch_size, 1))
        raise ConfigError(f"n_levels={config.n_levels} with levels=\"all\" and batch_size={config.batch_size} needs "
                          f"{'about' if xla is not None else 'at least'} {need} of memory for one training step (every sample at every level), more than is "
                          f"free ({fmt_bytes(free)}); the largest n_levels that fits is {fits_l} (or the largest "
                          f"batch_size, {fits_b})")
    fits = int(room // per_sample)
    if xla is None:
        # the straight line through batch 1 and this batch can overshoot by a little (the
        # largest temporary need not grow linearly: 781105 named, 781077 refused, on the
        # random-feature network): the value named must pass this check itself
        for _ in range(20):
            if fits <= 1 or estimate(config, objective, model, batch_size=fits, value_and_grad=value_and_grad)["total"] <= free:
                break
            fits = int(fits * 0.995)
    raise ConfigError(f"batch_size={config.batch_size} needs {'about' if xla is not None else 'at least'} {need} of memory for one training step, more than "
                      f"is free ({fmt_bytes(free)}); the largest batch_size that fits is {fits}")
