"""Exact BP with data parallelism: every device holds the whole model.

What a user would otherwise pick on D devices: the batch is split over every
device of the mesh (both axes), each device runs `sideways_jax.bp_grads` on
its shard, and gradients and batchnorm statistics are averaged over all of
them. Batchnorm normalises over each device's shard (no cross-device
statistics), as plain data-parallel training does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import optax
from jax import lax

from sideways_jax import bp as bp_lib
from sideways_jax import chain as chain_lib
from sideways_jax.parallel import mesh as mesh_lib


def shard_index() -> jax.Array:
  """Position of this device's batch shard along ('data', 'stage')."""
  return (lax.axis_index(mesh_lib.DATA) * lax.axis_size(mesh_lib.STAGE)
          + lax.axis_index(mesh_lib.STAGE))


def bp_data_grads(stages: chain_lib.Stages, params: tuple[Any, ...],
                  state: tuple[dict, ...], clip: jax.Array, targets: Any,
                  rng: jax.Array | None, loss_fn: Callable, *, train: bool,
                  mode: bp_lib.BPMode, unroll: int | bool,
                  num_shards: int
                  ) -> tuple[Any, tuple[dict, ...], jax.Array, jax.Array]:
  """Per-device BP on this device's shard, averaged over every device.

  Call inside `shard_map` over ('data', 'stage') with replicated params and
  state and the batch split over both axes.

  Returns:
    (grads, new mutable state, loss), identical on every device, and this
    device's top outputs [K, b, ...].
  """
  if rng is not None and num_shards > 1:
    rng = jax.random.fold_in(rng, shard_index())
  # Cast to per-device values first, so that the gradient stays local until
  # the one explicit pmean below (no hidden psum inside the frame scan).
  variables = tuple({'params': p, **s}
                    for p, s in zip(mesh_lib.vary(params),
                                    mesh_lib.vary(state)))
  result = bp_lib.bp_grads(stages, variables, clip, targets, loss_fn,
                           rng=rng, train=train, mode=mode, unroll=unroll)
  mean = lambda x: lax.pmean(x, mesh_lib.AXES)
  return (mean(result.grads), mean(tuple(dict(s) for s in result.state)),
          mean(result.loss), result.metrics['outputs'])


def bp_data_update(optimizer: optax.GradientTransformation,
                   params: tuple[Any, ...], opt_state: Any,
                   grads: Any) -> tuple[Any, Any]:
  """One optimizer update of the replicated params (same on every device)."""
  updates, opt_state = optimizer.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state
