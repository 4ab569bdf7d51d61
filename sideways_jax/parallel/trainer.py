"""Training on a ('data', 'stage') mesh: Sideways and four exact-BP baselines.

One object per algorithm holds the compiled programs:

* 'sideways': stage i on stage-device i, all stages busy every step
  (`sideways_mp.py`);
* 'bp_model': exact BP, stage i on stage-device i, one device busy at a time
  (`bp_model.py`), the paper's baseline;
* 'bp_data': exact BP, whole model on every device, batch over all devices
  (`bp_data.py`);
* 'bp_gpipe', 'bp_1f1b': exact BP, stage i on stage-device i, pipelined over
  the clip's frames (`bp_pipeline.py`, tick tables in `schedule.py`).

For all but 'bp_data', each device holds only its own stage's parameters,
mutable state (batchnorm) and optimizer state: its row of buffers sharded
over 'stage' (see `layout.py`). The optimizer then sees one stage's
parameter slots at a time, so it must act elementwise (sgd, momentum, adam,
weight decay ...): a transform that reduces over all parameters (global-norm
clipping) would see one stage only. With a 'data' axis, gradients, batchnorm
statistics and the loss are averaged over data shards; batchnorm normalises
over each shard's clips, and dropout keys are folded with the shard index.

`train_step` returns, beside the new state, the metrics of `GradResult` for
the global batch (see `ParallelTrainer.train_step`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.sharding import PartitionSpec as P

from sideways_jax import bp as bp_lib
from sideways_jax import chain as chain_lib
from sideways_jax import result as result_lib
from sideways_jax import sideways as sideways_lib
from sideways_jax.parallel import bp_data
from sideways_jax.parallel import bp_model
from sideways_jax.parallel import bp_pipeline
from sideways_jax.parallel import layout as layout_lib
from sideways_jax.parallel import mesh as mesh_lib
from sideways_jax.parallel import schedule as schedule_lib
from sideways_jax.parallel import sideways_mp

# BP model-parallel first: the baseline every other is compared with.
ALGORITHMS = ('bp_model', 'bp_data', 'bp_gpipe', 'bp_1f1b', 'sideways')
# The options each algorithm takes, with their defaults; no other applies.
OPTIONS: dict[str, dict[str, Any]] = {
    'sideways': {'target_alignment': 'current'},  # see sideways.align_targets
    'bp_data': {'bp_mode': 'scanned'},            # see bp.bp_grads
}
# The engine's own lists of values (one definition each).
_OPTION_VALUES = {'target_alignment': sideways_lib.TARGET_ALIGNMENTS,
                  'bp_mode': bp_lib.MODES}
_LOCAL_PROGRAMS = {
    'sideways': sideways_mp.sideways_local,
    'bp_model': bp_model.bp_model_local,
    'bp_gpipe': functools.partial(bp_pipeline.pipeline_local, 'bp_gpipe'),
    'bp_1f1b': functools.partial(bp_pipeline.pipeline_local, 'bp_1f1b'),
}


def algorithm_options(algorithm: str,
                      options: Mapping[str, Any] | None) -> dict[str, Any]:
  """`options` checked against what `algorithm` takes, defaults filled in.

  Raises:
    ValueError: unknown algorithm, an option it does not take, or a value
      the option does not allow.
  """
  if algorithm not in ALGORITHMS:
    raise ValueError(f'unknown algorithm {algorithm!r}; choose one of '
                     f'{ALGORITHMS}')
  allowed = OPTIONS.get(algorithm, {})
  options = dict(options or {})
  for name, value in options.items():
    if name not in allowed:
      takers = [a for a, o in OPTIONS.items() if name in o]
      raise ValueError(
          f'option {name!r} does not apply to algorithm {algorithm!r} '
          f'(it takes {tuple(allowed) or "no options"}); {name!r} is for '
          f'{takers or "no algorithm"}')
    if value not in _OPTION_VALUES[name]:
      raise ValueError(f'{name}={value!r}: choose one of '
                       f'{_OPTION_VALUES[name]}')
  return {**allowed, **options}


def _row(tree: Any) -> Any:
  """This device's row of [1, ...] shards (inside shard_map)."""
  return jax.tree.map(lambda x: x[0], tree)


def _expand(tree: Any) -> Any:
  return jax.tree.map(lambda x: x[None], tree)


def _square_sum(tree: Any) -> jax.Array:
  return sum((jnp.sum(jnp.square(x.astype(jnp.float32)))
              for x in jax.tree.leaves(tree)), jnp.zeros((), jnp.float32))


class TrainState(NamedTuple):
  """Everything a training loop carries; global arrays on the mesh.

  Staged algorithms (all but 'bp_data'): params a tuple of slots
  [D, slot_size] and model_state [D, state_size], sharded over 'stage';
  opt_state leaves [D, ...] likewise (see `layout.py`).
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
               options: Mapping[str, Any] | None = None,
               unroll: int | bool = 1):
    """Checks the setup and prepares the programs (compiled on first use).

    Args:
      algorithm: one of ALGORITHMS.
      stages: the D stage modules; D must equal the mesh's 'stage' size.
      variables: one variables dict per stage (only shapes are used here).
      mesh: from `make_mesh(num_data, D)`.
      loss_fn: `loss_fn(top_output, target) -> scalar` (mean over batch).
      optimizer: an elementwise optax transformation (see module doc).
      example_clip: array or ShapeDtypeStruct [K, B, ...], the global batch.
        Only B and the frame shape are fixed; other K may be used later.
      train: training mode for batchnorm and dropout.
      options: the algorithm's own options (OPTIONS): 'target_alignment'
        ('current' or 'origin') for 'sideways', 'bp_mode' ('batched' or
        'scanned') for 'bp_data'; any other raises a ValueError.
      unroll: passed to the scans over frames (ticks).
    """
    self.options = algorithm_options(algorithm, options)
    chain_lib.validate_chain(stages, variables)
    num_data, num_stages = mesh_lib.check_mesh(mesh, len(stages))
    shape = tuple(example_clip.shape)
    if len(shape) < 3:
      raise ValueError(f'example_clip must be [K, B, ...], got {shape}')
    num_frames, batch = shape[:2]
    if algorithm == 'sideways':
      sideways_lib.check_clip_length(num_frames, num_stages)
    self.algorithm, self.stages, self.mesh = algorithm, tuple(stages), mesh
    self.loss_fn, self.optimizer, self.train = loss_fn, optimizer, train
    self.unroll = unroll
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
    """Inside shard_map: this stage's grads, state and the shared metrics."""
    local_fn = _LOCAL_PROGRAMS[self.algorithm](
        self.stages, self.layout, self.loss_fn, train=self.train,
        unroll=self.unroll)
    if rng is not None and self.num_data > 1:
      rng = jax.random.fold_in(rng, lax.axis_index(mesh_lib.DATA))
    result = local_fn(mesh_lib.vary(params), mesh_lib.vary(state), clip,
                      targets, rng)
    data, stage = mesh_lib.DATA, mesh_lib.STAGE
    grads = lax.pmean(result.grads, data)
    loss = lax.pmean(lax.psum(result.loss, stage), data)
    finite = jnp.logical_and(
        lax.pmin(result_lib.finite_metric(jnp.zeros(()), grads).astype(
            jnp.int32), stage) > 0, jnp.isfinite(loss))
    metrics = {
        'loss': loss,
        'grad_norm': jnp.sqrt(lax.psum(_square_sum(grads), stage)),
        'loss_is_finite': finite,
        # Only the top device's are real; the others hold zeros.
        'outputs': lax.psum(result.outputs, stage),
    }
    return (grads, lax.pmean(result.state, data),
            lax.pmax(result.valid_steps, data), metrics)

  def _aligned(self, targets):
    if self.algorithm != 'sideways':
      return targets
    return sideways_lib.align_targets(targets, self.num_stages,
                                      self.options['target_alignment'])

  def _check_inputs(self, clip, targets):
    num_frames, _ = chain_lib.validate_clip(clip, targets)
    if self.algorithm == 'sideways':
      sideways_lib.check_clip_length(num_frames, self.num_stages)
    expected = self.layout.frame.shape[0] * self.num_shards
    if clip.shape[1] != expected:
      raise ValueError(f'this trainer was built for batches of {expected} '
                       f'clips, got {clip.shape[1]}')

  def _output_steps(self, num_frames):
    """(output_valid bool [K], output_frame int32 [K]) as the engine's."""
    if self.algorithm == 'sideways':
      top = self.num_stages - 1
      frame, _ = schedule_lib.sideways_frames(
          jnp.arange(num_frames, dtype=jnp.int32), top, self.num_stages)
      return frame >= 0, frame
    return (jnp.ones((num_frames,), bool),
            jnp.arange(num_frames, dtype=jnp.int32))

  @functools.cached_property
  def _jit(self):
    """{(update, with_rng): jitted program}; an update donates the state."""
    return {(update, with_rng): jax.jit(
        functools.partial(self._program, update=update, with_rng=with_rng),
        donate_argnums=0 if update else ())
            for update in (False, True) for with_rng in (False, True)}

  def _program(self, state, clip, targets, *rng, update, with_rng):
    """(new TrainState, metrics) if update, else (grads, state, metrics)."""
    targets = self._aligned(targets)
    batch, row = self.batch_spec, self._row
    optimizer = self.optimizer
    rng_spec = (P(),) if with_rng else ()
    metric_specs = {'loss': P(), 'grad_norm': P(), 'loss_is_finite': P(),
                    'outputs': batch}
    if self.staged:
      def body(params, model_state, opt_state, clip, targets, *rng):
        p = _row(params)
        grads, new_state, valid, metrics = self._staged_grads(
            p, model_state[0], clip, targets, rng[0] if rng else None)
        metrics['valid_steps'] = valid[None]
        if not update:
          return _expand(grads), new_state[None], metrics
        updates, o = optimizer.update(grads, _row(opt_state), p)
        p = optax.apply_updates(p, updates)
        return _expand(p), new_state[None], _expand(o), metrics
      metric_specs['valid_steps'] = row
      state_specs = (row, row, row)
    else:
      def body(params, model_state, opt_state, clip, targets, *rng):
        grads, new_state, loss, outputs = bp_data.bp_data_grads(
            self.stages, params, model_state, clip, targets,
            rng[0] if rng else None, self.loss_fn, train=self.train,
            mode=self.options['bp_mode'], unroll=self.unroll,
            num_shards=self.num_shards)
        metrics = {'loss': loss, 'grad_norm': optax.tree.norm(grads),
                   'loss_is_finite': result_lib.finite_metric(loss, grads),
                   'outputs': outputs}
        if not update:
          return grads, new_state, metrics
        params, opt_state = bp_data.bp_data_update(optimizer, params,
                                                   opt_state, grads)
        return params, new_state, opt_state, metrics
      state_specs = (P(), P(), P())
    out_specs = (state_specs if update else state_specs[:2]) + (metric_specs,)
    fn = jax.shard_map(body, mesh=self.mesh,
                       in_specs=state_specs + (batch, batch) + rng_spec,
                       out_specs=out_specs)
    *out, metrics = fn(state.params, state.model_state, state.opt_state, clip,
                       targets, *rng)
    num_frames = clip.shape[0]
    if not self.staged:
      metrics['valid_steps'] = jnp.full((self.num_stages,), num_frames,
                                        jnp.int32)
    else:  # Flat rows back to the top stage's output shape.
      metrics['outputs'] = metrics['outputs'].reshape(
          (num_frames, clip.shape[1]) + self.layout.outputs[-1].shape[1:])
    metrics['output_valid'], metrics['output_frame'] = self._output_steps(
        num_frames)
    if update:
      return TrainState(*out), metrics
    return (*out, metrics)

  # ---- public calls ----------------------------------------------------------

  def train_step(self, state: TrainState, clip: jax.Array, targets: Any,
                 rng: jax.Array | None = None
                 ) -> tuple[TrainState, dict[str, jax.Array]]:
    """One episode (clip) and one optimizer update; `state` is donated.

    Returns:
      (the new state, metrics), metrics global arrays equal to what
      `sideways_grads` ('sideways') or `bp_grads` (the others) give for the
      whole batch on one device: 'loss' f32 [], 'valid_steps' int32 [D],
      'outputs' [K, B, ...] (the top stage's output at each step; under BP
      the output of frame t), 'output_valid' bool [K], 'output_frame' int32
      [K], 'grad_norm' f32 [] (global L2 norm of the averaged gradients of
      every stage, `optax.tree.norm(grads)`), 'loss_is_finite' bool [] (the
      loss and every gradient entry finite).
    """
    self._check_inputs(clip, targets)
    extra = () if rng is None else (rng,)
    return self._jit[True, rng is not None](state, clip, targets, *extra)

  def grads(self, state: TrainState, clip: jax.Array, targets: Any,
            rng: jax.Array | None = None) -> result_lib.GradResult:
    """Gradients of one clip without an update, as host arrays per stage.

    Returns:
      A GradResult whose grads and state are tuples over stages, like
      `sideways_grads` / `bp_grads` return them; metrics as `train_step`'s.
    """
    self._check_inputs(clip, targets)
    extra = () if rng is None else (rng,)
    program = self._jit[False, rng is not None]
    grads, new_state, metrics = mesh_lib.fetch(
        program(state, clip, targets, *extra), self.mesh)
    if self.staged:
      grads = layout_lib.unstack_params(self.layout, grads)
      new_state = layout_lib.unstack_state(self.layout, new_state)
    return result_lib.GradResult(
        loss=metrics['loss'], grads=jax.tree.map(np.asarray, tuple(grads)),
        state=jax.tree.map(np.asarray, tuple(dict(s) for s in new_state)),
        metrics=metrics)

  def abstract_batch(self, num_frames: int, targets: Any = None
                     ) -> tuple[jax.ShapeDtypeStruct, Any]:
    """A clip [K, B, ...] and integer labels [K, B] as ShapeDtypeStructs."""
    sharding = mesh_lib.sharding(self.mesh, self.batch_spec)
    frame = self.layout.frame
    batch = frame.shape[0] * self.num_shards
    clip = jax.ShapeDtypeStruct((num_frames, batch, *frame.shape[1:]),
                                frame.dtype, sharding=sharding)
    if targets is None:
      targets = jax.ShapeDtypeStruct((num_frames, batch), jnp.int32,
                                     sharding=sharding)
    return clip, targets

  def memory_analysis(self, state: TrainState, clip: Any, targets: Any,
                      rng: jax.Array | None = None) -> dict[str, int]:
    """Bytes per device of the compiled `train_step` (compiles, runs nothing).

    `clip` and `targets` may be ShapeDtypeStructs (`abstract_batch`), so a
    long clip's program can be sized without allocating it.

    Returns:
      XLA's estimates for one device: 'argument_bytes' (state and batch
      shard), 'output_bytes', 'alias_bytes' (outputs reusing donated
      arguments), 'temp_bytes' (everything the program allocates itself,
      e.g. stored activations) and 'total_bytes' = temp + argument.
    """
    self._check_inputs(clip, targets)
    extra = () if rng is None else (rng,)
    stats = self._jit[True, rng is not None].lower(
        state, clip, targets, *extra).compile().memory_analysis()
    out = {name: int(getattr(stats, f'{name}_size_in_bytes'))
           for name in ('argument', 'output', 'alias', 'temp')}
    out = {f'{k}_bytes': v for k, v in out.items()}
    out['total_bytes'] = out['temp_bytes'] + out['argument_bytes']
    return out
