"""One stage per stage-device: the mesh layout of Sideways and pipelined BP.

Every leaf of the train state is a [D, ...] buffer sharded over 'stage'
(`layout.py`): parameter slots, the flat state row, and the optimizer state
of the slots, so device i holds only stage i's values. The optimizer then
sees one stage's parameter slots at a time, so it must act elementwise (sgd,
momentum, adam, weight decay ...): a transform that reduces over all
parameters (global-norm clipping) would see one stage only. With a 'data'
axis, gradients, batchnorm statistics and the loss are averaged over data
shards; batchnorm normalises over each shard's clips, and dropout keys are
folded with the shard index.

A subclass names its per-device program (`build_local`, see `local.py`)
and the tick table it runs (`schedule`).
"""

from __future__ import annotations

import abc
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import PartitionSpec as P

from sideways_jax import chain as chain_lib
from sideways_jax import result as result_lib
from sideways_jax.parallel import layout as layout_lib
from sideways_jax.parallel import local as local_lib
from sideways_jax.parallel import mesh as mesh_lib
from sideways_jax.parallel import program as program_lib
from sideways_jax.train_state import TrainState


class StagedProgram(program_lib.MeshProgram):
  """A mesh program whose device i runs stage i of every frame."""
  batch_axes = (mesh_lib.DATA,)
  batch_axes_name = "'data' axis"
  state_spec = P(mesh_lib.STAGE)

  def __init__(self, setup: program_lib.MeshSetup):
    super().__init__(setup)
    self.layout = layout_lib.chain_layout(setup.stages, setup.variables,
                                          self.frame)
    self._local_fn = self.build_local(local_lib.LocalSetup(
        setup.stages, self.layout, setup.loss_fn, setup.train))

  @abc.abstractmethod
  def build_local(self, setup: local_lib.LocalSetup) -> local_lib.LocalFn:
    """The per-device program of one clip.

    Called by `StagedProgram.__init__`: a subclass stores its options
    before calling it.
    """

  def init(self, variables: chain_lib.ChainVariables,
           rng: jax.Array) -> TrainState:
    chain_lib.validate_chain(self.stages, variables)
    params, state = layout_lib.stack_variables(self.layout, variables)
    params = mesh_lib.put(params, self.mesh, self.state_spec)
    state = mesh_lib.put(state, self.mesh, self.state_spec)
    opt_init = jax.vmap(self.optimizer.init)
    row = mesh_lib.sharding(self.mesh, self.state_spec)
    shardings = jax.tree.map(lambda _: row, jax.eval_shape(opt_init, params))
    opt_state = jax.jit(opt_init, out_shardings=shardings)(params)
    return self._new_state(params, state, opt_state, rng)

  def variables(self, state: TrainState) -> tuple[dict, ...]:
    params, model_state = mesh_lib.fetch((state.params, state.model_state),
                                         self.mesh)
    return layout_lib.unstack_variables(self.layout, params, model_state)

  def _local(self, tree: Any) -> Any:
    return jax.tree.map(lambda x: x[0], tree)

  def _global(self, tree: Any) -> Any:
    return jax.tree.map(lambda x: x[None], tree)

  def _local_grads(self, params, model_state, clip, targets, rng):
    if self.num_data > 1:
      rng = jax.random.fold_in(rng, lax.axis_index(mesh_lib.DATA))
    result = self._local_fn(mesh_lib.vary(params), mesh_lib.vary(model_state),
                            clip, targets, rng)
    data, stage = mesh_lib.DATA, mesh_lib.STAGE
    grads = lax.pmean(result.grads, data)
    loss = lax.pmean(lax.psum(result.loss, stage), data)
    grads_finite = result_lib.finite_metric(jnp.zeros(()), grads)
    metrics = {
        'loss': loss,
        'grad_norm': jnp.sqrt(lax.psum(program_lib.square_sum(grads),
                                       stage)),
        'loss_is_finite': jnp.logical_and(
            lax.pmin(grads_finite.astype(jnp.int32), stage) > 0,
            jnp.isfinite(loss)),
        # Only the top device's are real; the others hold zeros.
        'outputs': lax.psum(result.outputs, stage),
        'valid_steps': lax.pmax(result.valid_steps, data)[None],
        'output_frame': result.output_frame,
    }
    return grads, lax.pmean(result.state, data), metrics

  def _host_result(self, grads, model_state):
    return (layout_lib.unstack_params(self.layout, grads),
            layout_lib.unstack_state(self.layout, model_state))
