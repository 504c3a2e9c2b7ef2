"""The compiled training step: many steps per call (lax.scan), data drawn inside the
compiled step, the batch sharded over the mesh, the EMA updated after every step."""

from __future__ import annotations

from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array, Int, PRNGKeyArray

from ..nets._base import data_loss
from ._state import TrainState, step_key


def ema_update(ema, params, step: Int[Array, ""], decay: float):
    """The EMA after one more step: ``d * ema + (1 - d) * params`` leaf by leaf, with
    ``d = min(decay, (1 + t) / (10 + t))`` at step t, so that the horizon grows with the step
    and short runs are not dominated by the initial weights (decay 0: the EMA is `params`)."""
    t = step.astype(jnp.float32)
    d = jnp.minimum(decay, (1.0 + t) / (10.0 + t))
    return jax.tree_util.tree_map(lambda e, p: d * e + (1.0 - d) * p, ema, params)


def loss_and_grad(objective: Callable) -> Callable:
    """``loss_and_grad(objective)(params, static, x, key, labels) -> (loss, grads)``: the
    objective of ``eqx.combine(params, static)`` on the batch `x` (plus the network's own
    :meth:`~scorefield.nets.ScoreNet.data_loss` of `x`, where it has one) and its gradient with
    respect to `params` (`labels` None for an unconditional objective), as one compiled
    function. Made once per training and given both to the memory estimate
    (:func:`scorefield.train._memory.estimate`) and to :func:`make_chunk`: JAX's trace cache
    then traces the objective once for both, instead of once each; XLA inlines the call, so
    the compiled step is the same."""

    @eqx.filter_jit
    def value_and_grad(params, static, x, key, labels):
        def loss(p):
            model = eqx.combine(p, static)
            value = objective(model, x, key=key) if labels is None else objective(model, x, key=key, labels=labels)
            extra = data_loss(model, x)
            return value if extra is None else value + extra

        return eqx.filter_value_and_grad(loss)(params)

    return value_and_grad


def make_chunk(
    objective: Callable,
    optimizer: optax.GradientTransformation,
    *,
    key: PRNGKeyArray,
    batch_size: int,
    ema_decay: float,
    mesh: Mesh | None,
    n_classes: int = 0,
    label_dropout: float = 0.0,
    value_and_grad: Callable | None = None,
) -> Callable:
    """A compiled function ``chunk(state, static, dataset, n_steps) -> (state, losses)``
    running `n_steps` training steps in one lax.scan.

    Arguments:
        objective: ``objective(model, x, key=key) -> loss`` (a scorefield Objective or any
            callable of that signature).
        optimizer: an optax GradientTransformation over the trainable parameters.
        key: the training key; step t draws its batch and noise from ``fold_in(key, t)``.
        batch_size: global batch size (sharded over `mesh`).
        ema_decay: see :func:`ema_update`.
        mesh: the data-parallel mesh, or None on one device.
        n_classes: > 0 for class-conditional training: batches are drawn with their labels
            (``dataset.sample_labelled``), each label is replaced by `n_classes` ("no label")
            with probability `label_dropout` (classifier-free guidance), and the objective
            is called with ``labels=``.
        value_and_grad: ``loss_and_grad(objective)`` made by the caller (shared with the
            memory estimate), or None to make one here.
    Returns:
        the compiled chunk; `losses` has shape (n_steps,), NaN at a step whose loss or
        gradient was not finite.
    """
    value_and_grad = loss_and_grad(objective) if value_and_grad is None else value_and_grad
    data_sharding = None if mesh is None else NamedSharding(mesh, PartitionSpec("batch"))
    replicated = None if mesh is None else NamedSharding(mesh, PartitionSpec())

    @eqx.filter_jit
    def chunk(state: TrainState, static, dataset, n_steps: int):
        def body(state: TrainState, _):
            kd, kl = jax.random.split(step_key(key, state.step))
            y = None
            if n_classes:
                kd, kdrop = jax.random.split(kd)
                x, y = dataset.sample_labelled(kd, batch_size)
                y = jnp.where(jax.random.uniform(kdrop, y.shape) < label_dropout, n_classes, y)
            else:
                x = dataset.sample(kd, batch_size)
            if data_sharding is not None:
                x = jax.lax.with_sharding_constraint(x, data_sharding)
            loss, grads = value_and_grad(state.params, static, x, kl, y)
            # a finite loss with a non-finite gradient would put NaNs into the parameters
            # silently (and into the next checkpoint): count it as divergence at this step
            grad_ok = jnp.isfinite(optax.tree_utils.tree_norm(grads))
            loss = jnp.where(grad_ok, loss, jnp.nan)
            updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
            params = eqx.apply_updates(state.params, updates)
            ema = ema_update(state.ema, params, state.step, ema_decay)
            return TrainState(params, opt_state, ema, state.step + 1), loss

        state, losses = jax.lax.scan(body, state, None, length=n_steps)
        if replicated is not None:
            # every process reads the losses and checkpoints the state from its own devices
            state, losses = jax.tree_util.tree_map(
                lambda a: jax.lax.with_sharding_constraint(a, replicated), (state, losses))
        return state, losses

    return chunk
