"""Training on a ('data', 'stage') mesh: the `Program` of every mesh algorithm.

    program = parallel.mesh_program('sideways', stages, variables, mesh,
                                    loss_fn, optax.sgd(0.1), clip)
    state = program.init(variables, jax.random.PRNGKey(0))
    state, metrics = program.update(state, *program.place(clip, labels))

`mesh_program` reads the algorithm table (`sideways_jax.algorithms`): the
row's options are checked there, and its `mesh_program` names the class
that builds the per-device program. Two layouts implement the same
`sideways_jax.train_state.Program` interface:

* `staged.StagedProgram` (Sideways, model-parallel BP, GPipe, 1F1B): stage
  i on stage-device i, which holds only stage i's parameters, mutable state
  (batchnorm) and optimizer state: its row of buffers sharded over 'stage'
  (`layout.py`). The batch is split over 'data'.
* `bp_data.BPDataProgram`: the whole chain on every device, the batch split
  over all of them.

`MeshProgram` here holds what both share: the checks, placing a batch, the
jitted `shard_map` programs (one update: one clip, one optimizer update),
gradients without an update, and XLA's memory estimate.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import PartitionSpec as P

from sideways_jax import algorithms
from sideways_jax import chain as chain_lib
from sideways_jax import kernel
from sideways_jax import result as result_lib
from sideways_jax.parallel import mesh as mesh_lib
from sideways_jax import train_state as train_state_lib
from sideways_jax.train_state import TrainState


# The metrics `update` returns (as `sideways_grads` / `bp_grads` give them
# for the whole batch on one device).
METRICS = ('loss', 'grad_norm', 'loss_is_finite', 'valid_steps', 'outputs',
           'output_valid', 'output_frame')


@dataclasses.dataclass(frozen=True)
class MeshSetup:
  """What a mesh program is built from (checked by `mesh_program`).

  Attributes:
    algorithm: the algorithm's row of the table.
    stages: the D stage modules; D is the mesh's 'stage' size.
    variables: one variables dict per stage (only shapes are read).
    mesh: from `make_mesh(num_data, D)`.
    loss_fn: `loss_fn(top_output, target) -> scalar` (mean over batch).
    optimizer: an optax transformation (elementwise for staged programs:
      each device sees one stage's parameters).
    example_clip: [K, B, ...], the global batch (array or shape). Only B
      and the frame shape are fixed; other K may be used later.
    train: training mode for batchnorm and dropout.
  """
  algorithm: algorithms.Algorithm
  stages: chain_lib.Stages
  variables: chain_lib.ChainVariables
  mesh: jax.sharding.Mesh
  loss_fn: kernel.LossFn
  optimizer: optax.GradientTransformation
  example_clip: jax.ShapeDtypeStruct
  train: bool


def mesh_program(algorithm: str, stages: chain_lib.Stages,
                 variables: chain_lib.ChainVariables,
                 mesh: jax.sharding.Mesh, loss_fn: kernel.LossFn,
                 optimizer: optax.GradientTransformation, example_clip: Any,
                 options: Mapping[str, Any] | None = None,
                 train: bool = True) -> MeshProgram:
  """The mesh program of `algorithm` (compiled on first use).

  Args:
    algorithm: a name of `algorithms.MESH_ALGORITHMS`.
    stages, variables, mesh, loss_fn, optimizer, example_clip, train: see
      `MeshSetup`.
    options: the algorithm's options (`algorithms.ALGORITHMS[name].options`);
      unset ones keep their defaults.

  Raises:
    ValueError: an unknown algorithm or option, a bad option value, a mesh
      that does not fit the chain, a clip too short for the algorithm or a
      batch that does not split over the devices.
  """
  options = algorithms.resolve_options(algorithm, options, algorithms.MESH)
  row = algorithms.get(algorithm)
  chain_lib.validate_chain(stages, variables)
  _, num_stages = mesh_lib.check_mesh(mesh, len(stages))
  shape = tuple(example_clip.shape)
  if len(shape) < 3:
    raise ValueError(f'example_clip must be [K, B, ...], got {shape}')
  row.check_clip_length(shape[0], num_stages)
  setup = MeshSetup(row, tuple(stages), tuple(variables), mesh, loss_fn,
                    optimizer, jax.ShapeDtypeStruct(
                        shape, jnp.dtype(example_clip.dtype)), train)
  return row.load_mesh_program()(setup, **options)


def square_sum(tree: Any) -> jax.Array:
  """Sum of squares of every leaf, in fp32."""
  return sum((jnp.sum(jnp.square(x.astype(jnp.float32)))
              for x in jax.tree.leaves(tree)), jnp.zeros((), jnp.float32))


def put_replicated(x: Any, mesh: jax.sharding.Mesh) -> Any:
  """A host value (e.g. a PRNG key, typed or raw) on every device."""
  if jnp.issubdtype(jnp.result_type(x), jax.dtypes.prng_key):
    return jax.random.wrap_key_data(
        put_replicated(jax.random.key_data(x), mesh),
        impl=jax.random.key_impl(x))
  return mesh_lib.put(np.asarray(x), mesh, P())


class MeshProgram(abc.ABC):
  """One algorithm's compiled programs for one chain, mesh and batch shape.

  Implements `sideways_jax.train_state.Program`. Subclasses fix the layout:
  which mesh axes split the batch (`batch_axes`), how the train state is
  sharded (`state_spec`), and what one device computes (`_local_grads`).
  """
  batch_axes: ClassVar[tuple[str, ...]]   # mesh axes that split the batch
  batch_axes_name: ClassVar[str]          # the same, for error messages
  state_spec: ClassVar[P]
  # `schedule(K, D) -> schedule.Schedule` of a pipelined layout, else None.
  schedule: ClassVar[Any] = None

  def __init__(self, setup: MeshSetup):
    self.setup = setup
    self.algorithm, self.mesh = setup.algorithm, setup.mesh
    self.stages, self.optimizer = setup.stages, setup.optimizer
    self.num_data = setup.mesh.shape[mesh_lib.DATA]
    self.num_stages = len(setup.stages)
    self.num_shards = self.num_batch_shards(self.num_data, self.num_stages)
    shape = setup.example_clip.shape
    local_batch = mesh_lib.check_batch(shape[1], self.num_shards,
                                       self.batch_axes_name)
    # One device's frame batch [b, ...].
    self.frame = jax.ShapeDtypeStruct((local_batch, *shape[2:]),
                                      setup.example_clip.dtype)
    axes = self.batch_axes
    self.batch_spec = P(None, axes[0] if len(axes) == 1 else axes)

  @classmethod
  def num_batch_shards(cls, num_data: int, num_stages: int) -> int:
    """How many pieces the batch is split into on a (data, stage) mesh."""
    sizes = {mesh_lib.DATA: num_data, mesh_lib.STAGE: num_stages}
    return math.prod(sizes[a] for a in cls.batch_axes)

  # ---- what a layout defines ------------------------------------------------

  @abc.abstractmethod
  def init(self, variables: chain_lib.ChainVariables,
           rng: jax.Array) -> TrainState:
    """Puts the variables, a fresh optimizer state and `rng` on the mesh."""

  @abc.abstractmethod
  def variables(self, state: TrainState) -> tuple[dict, ...]:
    """The chain's variables as host arrays, one dict per stage."""

  @abc.abstractmethod
  def _local_grads(self, params: Any, model_state: Any, clip: jax.Array,
                   targets: Any, rng: jax.Array
                   ) -> tuple[Any, Any, dict[str, jax.Array]]:
    """Inside shard_map, on local views: (grads, new model state, metrics).

    Metrics: all of METRICS but 'output_valid', reduced over devices.
    """

  @abc.abstractmethod
  def _host_result(self, grads: Any, model_state: Any
                   ) -> tuple[tuple[Any, ...], tuple[dict, ...]]:
    """Host (grads, state) in the layout -> per-stage pytrees."""

  def _local(self, tree: Any) -> Any:
    """A state leaf as one device sees it (staged: its row)."""
    return tree

  def _global(self, tree: Any) -> Any:
    """Inverse of `_local` (staged: a [1, ...] shard)."""
    return tree

  # ---- the programs -----------------------------------------------------------

  def _program(self, state: TrainState, clip: jax.Array, targets: Any, *,
               update: bool) -> Any:
    """(new state, metrics) if update, else (grads, model state, metrics)."""
    optimizer, spec, batch = self.optimizer, self.state_spec, self.batch_spec

    def body(params, model_state, opt_state, clip, targets, rng):
      params = self._local(params)
      grads, new_model_state, metrics = self._local_grads(
          params, self._local(model_state), clip, targets, rng)
      if not update:
        return self._global((grads, new_model_state)), metrics
      updates, opt_state = optimizer.update(grads, self._local(opt_state),
                                            params)
      params = optax.apply_updates(params, updates)
      return self._global((params, new_model_state, opt_state)), metrics

    metric_specs = {name: P() for name in METRICS if name != 'output_valid'}
    metric_specs.update(outputs=batch, valid_steps=spec)
    out_specs = ((spec,) * (3 if update else 2), metric_specs)
    fn = jax.shard_map(body, mesh=self.mesh,
                       in_specs=(spec,) * 3 + (batch, batch, P()),
                       out_specs=out_specs)
    rng = jax.random.fold_in(state.rng, state.step)
    out, metrics = fn(state.params, state.model_state, state.opt_state, clip,
                      targets, rng)
    metrics['output_valid'] = metrics['output_frame'] >= 0
    if not update:
      return (*out, metrics)
    params, model_state, opt_state = out
    return state.replace(step=state.step + 1, params=params,
                         model_state=model_state,
                         opt_state=opt_state), metrics

  @functools.cached_property
  def _jit(self) -> dict[bool, Any]:
    """{update: jitted program}; an update donates the state."""
    return {update: jax.jit(functools.partial(self._program, update=update),
                            donate_argnums=0 if update else ())
            for update in (False, True)}

  def _check_inputs(self, clip: Any, targets: Any) -> None:
    num_frames, batch = chain_lib.validate_clip(clip, targets)
    self.algorithm.check_clip_length(num_frames, self.num_stages)
    expected = self.frame.shape[0] * self.num_shards
    if batch != expected:
      raise ValueError(f'this program was built for batches of {expected} '
                       f'clips, got {batch}')

  # ---- the Program interface ---------------------------------------------------

  def place(self, clip: Any, targets: Any) -> tuple[Any, Any]:
    """Host clip [K, B, ...] and targets [K, B, ...] -> global arrays."""
    chain_lib.validate_clip(clip, targets)
    return (mesh_lib.put(clip, self.mesh, self.batch_spec),
            mesh_lib.put(targets, self.mesh, self.batch_spec))

  def update(self, state: TrainState, clip: jax.Array, targets: Any
             ) -> tuple[TrainState, dict[str, jax.Array]]:
    """One episode (clip) and one optimizer update; `state` is donated.

    The dropout key is `fold_in(state.rng, state.step)` (then folded with
    the batch shard's index when the batch is split).

    Returns:
      (the new state, step + 1; metrics), metrics global arrays equal to
      what `sideways_grads` (Sideways) or `bp_grads` (exact BP) give for
      the whole batch on one device: 'loss' f32 [], 'valid_steps' int32
      [D], 'outputs' [K, B, ...] (the top stage's output at each step; under
      BP the output of frame t), 'output_valid' bool [K], 'output_frame'
      int32 [K], 'grad_norm' f32 [] (global L2 norm of the averaged
      gradients of every stage), 'loss_is_finite' bool [] (the loss and
      every gradient entry finite).
    """
    self._check_inputs(clip, targets)
    return self._jit[True](state, clip, targets)

  def grads(self, state: TrainState, clip: jax.Array,
            targets: Any) -> result_lib.GradResult:
    """Gradients of one clip without an update, as host arrays per stage.

    Returns:
      A GradResult whose grads and state are tuples over stages, like
      `sideways_grads` / `bp_grads` return them; metrics as `update`'s.
    """
    self._check_inputs(clip, targets)
    grads, model_state, metrics = mesh_lib.fetch(
        self._jit[False](state, clip, targets), self.mesh)
    grads, model_state = self._host_result(grads, model_state)
    return result_lib.GradResult(
        loss=metrics['loss'], grads=jax.tree.map(np.asarray, tuple(grads)),
        state=jax.tree.map(np.asarray, tuple(dict(s) for s in model_state)),
        metrics=metrics)

  def abstract_batch(self, num_frames: int, targets: Any = None
                     ) -> tuple[jax.ShapeDtypeStruct, Any]:
    """A clip [K, B, ...] and (default) integer labels [K, B], as shapes."""
    sharding = mesh_lib.sharding(self.mesh, self.batch_spec)
    batch = self.frame.shape[0] * self.num_shards
    clip = jax.ShapeDtypeStruct((num_frames, batch, *self.frame.shape[1:]),
                                self.frame.dtype, sharding=sharding)
    if targets is None:
      targets = jax.ShapeDtypeStruct((num_frames, batch), jnp.int32,
                                     sharding=sharding)
    return clip, targets

  def memory_analysis(self, state: TrainState, clip: Any,
                      targets: Any) -> dict[str, int]:
    """Bytes per device of the compiled `update` (compiles, runs nothing).

    `clip` and `targets` may be ShapeDtypeStructs (`abstract_batch`), so a
    long clip's program can be sized without allocating it.

    Returns:
      XLA's estimates for one device: 'argument_bytes' (state and batch
      shard), 'output_bytes', 'alias_bytes' (outputs reusing donated
      arguments), 'temp_bytes' (everything the program allocates itself,
      e.g. stored activations) and 'total_bytes' = temp + argument.
    """
    self._check_inputs(clip, targets)
    return train_state_lib.memory_stats(
        self._jit[True].lower(state, clip, targets).compile())

  def _new_state(self, params: Any, model_state: Any, opt_state: Any,
                 rng: jax.Array) -> TrainState:
    return TrainState(step=mesh_lib.put(np.zeros((), np.int32), self.mesh,
                                        P()),
                      params=params, model_state=model_state,
                      opt_state=opt_state,
                      rng=put_replicated(rng, self.mesh))
