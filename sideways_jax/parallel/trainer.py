"""Training on a ('data', 'stage') mesh: Sideways, BP model- and data-parallel.

One object per algorithm holds the compiled programs:

* 'sideways': stage i on stage-device i, all stages busy every step
  (`sideways_mp.py`);
* 'bp_model': exact BP, stage i on stage-device i, one device busy at a time
  (`bp_model.py`), the paper's baseline;
* 'bp_data': exact BP, whole model on every device, batch over all devices
  (`bp_data.py`).

For the first two, each device holds only its own stage's parameters,
mutable state (batchnorm) and optimizer state: its row of buffers sharded
over 'stage' (see `layout.py`). The optimizer then sees one stage's
parameter slots at a time, so it must act elementwise (sgd, momentum, adam,
weight decay ...): a transform that reduces over all parameters (global-norm
clipping) would see one stage only. With a 'data' axis, gradients, batchnorm
statistics and the loss are averaged over data shards; batchnorm normalises
over each shard's clips, and dropout keys are folded with the shard index.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.sharding import PartitionSpec as P

from sideways_jax import chain as chain_lib
from sideways_jax import result as result_lib
from sideways_jax import sideways as sideways_lib
from sideways_jax.parallel import bp_data
from sideways_jax.parallel import bp_model
from sideways_jax.parallel import layout as layout_lib
from sideways_jax.parallel import mesh as mesh_lib
from sideways_jax.parallel import sideways_mp

ALGORITHMS = ('sideways', 'bp_model', 'bp_data')


def _row(tree: Any) -> Any:
  """This device's row of [1, ...] shards (inside shard_map)."""
  return jax.tree.map(lambda x: x[0], tree)


def _expand(tree: Any) -> Any:
  return jax.tree.map(lambda x: x[None], tree)


class TrainState(NamedTuple):
  """Everything a training loop carries; global arrays on the mesh.

  'sideways' / 'bp_model': params a tuple of slots [D, slot_size] and
  model_state [D, state_size], sharded over 'stage'; opt_state leaves
  [D, ...] likewise (see `layout.py`).
  'bp_data': per-stage pytrees (tuples), replicated on every device.
  """
  params: Any
  model_state: Any
  opt_state: Any


class ParallelTrainer:
  """Compiled training programs for one chain, mesh and batch shape."""

  def __init__(self, algorithm: str, stages: chain_lib.Stages,
               variables: chain_lib.ChainVariables, mesh: jax.sharding.Mesh,
               loss_fn: Callable, optimizer: optax.GradientTransformation,
               example_clip: Any, *, train: bool = True,
               target_alignment: sideways_lib.TargetAlignment = 'current',
               bp_mode: str = 'scanned', unroll: int | bool = 1):
    """Checks the setup and prepares the programs (compiled on first use).

    Args:
      algorithm: 'sideways', 'bp_model' or 'bp_data'.
      stages: the D stage modules; D must equal the mesh's 'stage' size.
      variables: one variables dict per stage (only shapes are used here).
      mesh: from `make_mesh(num_data, D)`.
      loss_fn: `loss_fn(top_output, target) -> scalar` (mean over batch).
      optimizer: an elementwise optax transformation (see module doc).
      example_clip: array or ShapeDtypeStruct [K, B, ...], the global batch.
      train: training mode for batchnorm and dropout.
      target_alignment: Sideways' 'current' or 'origin' (see
        `sideways_jax.sideways.align_targets`).
      bp_mode: 'batched' or 'scanned' for 'bp_data' (see `bp_grads`).
      unroll: passed to the scans over frames.
    """
    if algorithm not in ALGORITHMS:
      raise ValueError(f'unknown algorithm {algorithm!r}; choose one of '
                       f'{ALGORITHMS}')
    chain_lib.validate_chain(stages, variables)
    num_data, num_stages = mesh_lib.check_mesh(mesh, len(stages))
    shape = tuple(example_clip.shape)
    if len(shape) < 3:
      raise ValueError(f'example_clip must be [K, B, ...], got {shape}')
    num_frames, batch = shape[:2]
    if algorithm == 'sideways':
      sideways_lib.check_clip_length(num_frames, num_stages)
    if target_alignment not in ('current', 'origin'):
      raise ValueError("target_alignment must be 'current' or 'origin', got "
                       f'{target_alignment!r}')
    self.algorithm, self.stages, self.mesh = algorithm, tuple(stages), mesh
    self.loss_fn, self.optimizer, self.train = loss_fn, optimizer, train
    self.target_alignment, self.bp_mode, self.unroll = (
        target_alignment, bp_mode, unroll)
    self.num_data, self.num_stages = num_data, num_stages
    self.staged = algorithm != 'bp_data'
    shards = num_data if self.staged else num_data * num_stages
    self.num_shards = shards
    what = "'data' axis" if self.staged else "mesh's devices (data x stage)"
    local_batch = mesh_lib.check_batch(batch, shards, what)
    frame = jax.ShapeDtypeStruct((local_batch, *shape[2:]),
                                 jnp.dtype(example_clip.dtype))
    self.layout = layout_lib.chain_layout(stages, variables, frame)
    self.batch_spec = (P(None, mesh_lib.DATA) if self.staged
                       else P(None, mesh_lib.AXES))
    self._row = P(mesh_lib.STAGE)

  # ---- placement ---------------------------------------------------------

  def init(self, variables: chain_lib.ChainVariables) -> TrainState:
    """Puts the variables and a fresh optimizer state on the mesh."""
    chain_lib.validate_chain(self.stages, variables)
    if self.staged:
      params, state = layout_lib.stack_variables(self.layout, variables)
      params = mesh_lib.put(params, self.mesh, self._row)
      state = mesh_lib.put(state, self.mesh, self._row)
      opt_init = jax.vmap(self.optimizer.init)
      row = mesh_lib.sharding(self.mesh, self._row)
      shardings = jax.tree.map(lambda _: row, jax.eval_shape(opt_init,
                                                             params))
      opt_state = jax.jit(opt_init, out_shardings=shardings)(params)
      return TrainState(params, state, opt_state)
    split = [chain_lib.split_variables(v) for v in variables]
    params = mesh_lib.put(tuple(p for p, _ in split), self.mesh, P())
    state = mesh_lib.put(tuple(dict(s) for _, s in split), self.mesh, P())
    replicated = mesh_lib.sharding(self.mesh, P())
    opt_state = jax.jit(self.optimizer.init,
                        out_shardings=replicated)(params)
    return TrainState(params, state, opt_state)

  def place(self, clip: Any, targets: Any) -> tuple[Any, Any]:
    """Host clip [K, B, ...] and targets [K, B, ...] -> global arrays."""
    chain_lib.validate_clip(clip, targets)
    return (mesh_lib.put(clip, self.mesh, self.batch_spec),
            mesh_lib.put(targets, self.mesh, self.batch_spec))

  def variables(self, state: TrainState) -> tuple[dict, ...]:
    """The chain's variables as host arrays, one dict per stage."""
    params, model_state = mesh_lib.fetch((state.params, state.model_state),
                                         self.mesh)
    if self.staged:
      return layout_lib.unstack_variables(self.layout, params, model_state)
    return tuple({'params': p, **s} for p, s in zip(params, model_state))

  # ---- programs ------------------------------------------------------------

  def _staged_grads(self, params, state, clip, targets, rng):
    """Inside shard_map: this stage's (grads, state, loss, valid_steps)."""
    make = (sideways_mp.sideways_local if self.algorithm == 'sideways'
            else bp_model.bp_model_local)
    local_fn = make(self.stages, self.layout, self.loss_fn, train=self.train,
                    unroll=self.unroll)
    if rng is not None and self.num_data > 1:
      rng = jax.random.fold_in(rng, lax.axis_index(mesh_lib.DATA))
    result = local_fn(mesh_lib.vary(params), mesh_lib.vary(state), clip,
                      targets, rng)
    data = mesh_lib.DATA
    return (lax.pmean(result.grads, data), lax.pmean(result.state, data),
            lax.pmean(lax.psum(result.loss, mesh_lib.STAGE), data),
            lax.pmax(result.valid_steps, data))

  def _aligned(self, targets):
    if self.algorithm != 'sideways':
      return targets
    return sideways_lib.align_targets(targets, self.num_stages,
                                      self.target_alignment)

  def _check_inputs(self, clip, targets):
    num_frames, _ = chain_lib.validate_clip(clip, targets)
    if self.algorithm == 'sideways':
      sideways_lib.check_clip_length(num_frames, self.num_stages)
    expected = self.layout.frame.shape[0] * self.num_shards
    if clip.shape[1] != expected:
      raise ValueError(f'this trainer was built for batches of {expected} '
                       f'clips, got {clip.shape[1]}')

  def _shard_map(self, body, in_specs, out_specs, with_rng):
    if with_rng:
      in_specs = in_specs + (P(),)
    return jax.shard_map(body, mesh=self.mesh, in_specs=in_specs,
                         out_specs=out_specs)

  @functools.cached_property
  def _grads_jit(self):
    return {with_rng: jax.jit(functools.partial(self._grads_program,
                                                with_rng=with_rng))
            for with_rng in (False, True)}

  def _grads_program(self, state, clip, targets, *rng, with_rng):
    targets = self._aligned(targets)
    batch = self.batch_spec
    if self.staged:
      def body(params, model_state, clip, targets, *rng):
        grads, new_state, loss, valid = self._staged_grads(
            _row(params), model_state[0], clip, targets,
            rng[0] if rng else None)
        return _expand(grads), new_state[None], loss, valid[None]
      fn = self._shard_map(body, (self._row, self._row, batch, batch),
                           (self._row, self._row, P(), self._row), with_rng)
    else:
      def body(params, model_state, clip, targets, *rng):
        grads, new_state, loss = bp_data.bp_data_grads(
            self.stages, params, model_state, clip, targets,
            rng[0] if rng else None, self.loss_fn, train=self.train,
            mode=self.bp_mode, unroll=self.unroll,
            num_shards=self.num_shards)
        return grads, new_state, loss
      fn = self._shard_map(body, (P(), P(), batch, batch), (P(), P(), P()),
                           with_rng)
    return fn(state.params, state.model_state, clip, targets, *rng)

  @functools.cached_property
  def _step_jit(self):
    return {with_rng: jax.jit(functools.partial(self._step_program,
                                                with_rng=with_rng),
                              donate_argnums=0)
            for with_rng in (False, True)}

  def _step_program(self, state, clip, targets, *rng, with_rng):
    targets = self._aligned(targets)
    batch, row = self.batch_spec, self._row
    optimizer = self.optimizer
    if self.staged:
      def body(params, model_state, opt_state, clip, targets, *rng):
        p = _row(params)
        grads, new_state, loss, valid = self._staged_grads(
            p, model_state[0], clip, targets, rng[0] if rng else None)
        updates, o = optimizer.update(grads, _row(opt_state), p)
        p = optax.apply_updates(p, updates)
        return (_expand(p), new_state[None], _expand(o), loss, valid[None])
      fn = self._shard_map(body, (row, row, row, batch, batch),
                           (row, row, row, P(), row), with_rng)
      params, model_state, opt_state, loss, valid = fn(
          state.params, state.model_state, state.opt_state, clip, targets,
          *rng)
    else:
      def body(params, model_state, opt_state, clip, targets, *rng):
        grads, new_state, loss = bp_data.bp_data_grads(
            self.stages, params, model_state, clip, targets,
            rng[0] if rng else None, self.loss_fn, train=self.train,
            mode=self.bp_mode, unroll=self.unroll,
            num_shards=self.num_shards)
        params, opt_state = bp_data.bp_data_update(optimizer, params,
                                                   opt_state, grads)
        return params, new_state, opt_state, loss
      fn = self._shard_map(body, (P(), P(), P(), batch, batch),
                           (P(), P(), P(), P()), with_rng)
      params, model_state, opt_state, loss = fn(
          state.params, state.model_state, state.opt_state, clip, targets,
          *rng)
      valid = jnp.full((self.num_stages,), clip.shape[0], jnp.int32)
    metrics = {'loss': loss, 'valid_steps': valid}
    return TrainState(params, model_state, opt_state), metrics

  # ---- public calls ----------------------------------------------------------

  def train_step(self, state: TrainState, clip: jax.Array, targets: Any,
                 rng: jax.Array | None = None
                 ) -> tuple[TrainState, dict[str, jax.Array]]:
    """One episode (clip) and one optimizer update; `state` is donated.

    Returns:
      (the new state, {'loss': f32 [], 'valid_steps': int32 [D]}).
    """
    self._check_inputs(clip, targets)
    extra = () if rng is None else (rng,)
    return self._step_jit[rng is not None](state, clip, targets, *extra)

  def grads(self, state: TrainState, clip: jax.Array, targets: Any,
            rng: jax.Array | None = None) -> result_lib.GradResult:
    """Gradients of one clip without an update, as host arrays per stage.

    Returns:
      A GradResult whose grads and state are tuples over stages, like
      `sideways_grads` / `bp_grads` return them; metrics has 'valid_steps'.
    """
    self._check_inputs(clip, targets)
    extra = () if rng is None else (rng,)
    out = mesh_lib.fetch(self._grads_jit[rng is not None](
        state, clip, targets, *extra), self.mesh)
    if self.staged:
      grads, new_state, loss, valid = out
      grads = layout_lib.unstack_params(self.layout, grads)
      new_state = layout_lib.unstack_state(self.layout, new_state)
    else:
      grads, new_state, loss = out
      valid = np.full((self.num_stages,), clip.shape[0], np.int32)
    return result_lib.GradResult(
        loss=loss, grads=jax.tree.map(np.asarray, tuple(grads)),
        state=jax.tree.map(np.asarray, tuple(dict(s) for s in new_state)),
        metrics={'valid_steps': np.asarray(valid)})
