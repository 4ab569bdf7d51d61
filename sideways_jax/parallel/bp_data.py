"""Exact BP with data parallelism: every device holds the whole model.

What a user would otherwise pick on D devices: the batch is split over every
device of the mesh (both axes), each device runs `sideways_jax.bp_grads` on
its shard, and gradients and batchnorm statistics are averaged over all of
them. Batchnorm normalises over each device's shard (no cross-device
statistics), as plain data-parallel training does. Parameters, state and
optimizer state are per-stage pytrees, replicated on every device.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax import lax
from jax.sharding import PartitionSpec as P

from sideways_jax import bp as bp_lib
from sideways_jax import chain as chain_lib
from sideways_jax import result as result_lib
from sideways_jax.parallel import mesh as mesh_lib
from sideways_jax.parallel import program as program_lib
from sideways_jax.train_state import TrainState


def shard_index() -> jax.Array:
  """Position of this device's batch shard along ('data', 'stage')."""
  return (lax.axis_index(mesh_lib.DATA) * lax.axis_size(mesh_lib.STAGE)
          + lax.axis_index(mesh_lib.STAGE))


class BPDataProgram(program_lib.MeshProgram):
  """Exact BP, the whole chain on every device, the batch over all of them.

  Options: `mode` ('batched' or 'scanned', see `bp.bp_grads`) and `unroll`.
  """
  batch_axes = mesh_lib.AXES
  batch_axes_name = "mesh's devices (data x stage)"
  state_spec = P()

  def __init__(self, setup: program_lib.MeshSetup, *, mode: bp_lib.BPMode,
               unroll: int | bool):
    self._mode, self._unroll = mode, unroll
    super().__init__(setup)

  def init(self, variables: chain_lib.ChainVariables,
           rng: jax.Array) -> TrainState:
    chain_lib.validate_chain(self.stages, variables)
    split = [chain_lib.split_variables(v) for v in variables]
    params = mesh_lib.put(tuple(p for p, _ in split), self.mesh, P())
    state = mesh_lib.put(tuple(dict(s) for _, s in split), self.mesh, P())
    replicated = mesh_lib.sharding(self.mesh, P())
    opt_state = jax.jit(self.optimizer.init,
                        out_shardings=replicated)(params)
    return self._new_state(params, state, opt_state, rng)

  def variables(self, state: TrainState) -> tuple[dict, ...]:
    params, model_state = mesh_lib.fetch((state.params, state.model_state),
                                         self.mesh)
    return tuple({'params': p, **s} for p, s in zip(params, model_state))

  def _local_grads(self, params, model_state, clip, targets, rng):
    """BP on this device's shard, averaged over every device."""
    if self.num_shards > 1:
      rng = jax.random.fold_in(rng, shard_index())
    # Cast to per-device values first, so that the gradient stays local
    # until the one explicit pmean below (no hidden psum in the frame scan).
    variables = tuple({'params': p, **s}
                      for p, s in zip(mesh_lib.vary(params),
                                      mesh_lib.vary(model_state)))
    result = bp_lib.bp_grads(self.stages, variables, clip, targets,
                             self.setup.loss_fn, rng=rng,
                             train=self.setup.train, mode=self._mode,
                             unroll=self._unroll)
    mean = lambda x: lax.pmean(x, mesh_lib.AXES)
    grads, loss = mean(result.grads), mean(result.loss)
    metrics = {
        'loss': loss, 'grad_norm': optax.tree.norm(grads),
        'loss_is_finite': result_lib.finite_metric(loss, grads),
        'outputs': result.metrics['outputs'],
        'valid_steps': jnp.full((self.num_stages,), clip.shape[0], jnp.int32),
        'output_frame': jnp.arange(clip.shape[0], dtype=jnp.int32),
    }
    return grads, mean(tuple(dict(s) for s in result.state)), metrics

  def _host_result(self, grads: Any, model_state: Any):
    return tuple(grads), tuple(dict(s) for s in model_state)
