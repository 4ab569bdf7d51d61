"""Where a classification run executes: one device, or a (data, stage) mesh.

Both backends start from the same weights (`state.initial_variables`), take
the same batches and log the same metrics (`step.train_metrics`); the loop
only sees `init_state`, `train_step`, `variables` and `step_of`.

* `SingleDevice`: `sideways_jax.grad_fn(algorithm, **options)` on one device.
* `Mesh`: `sideways_jax.parallel.ParallelTrainer`, one stage per device along
  'stage' (`config.mesh.stages` = `config.model.num_stages`) and the batch
  split along 'data' (`config.mesh.data`). Each device holds only its own
  stage's parameters, batchnorm and optimizer state, and so does each
  checkpoint shard. With `mesh.data` > 1 batchnorm normalises over each
  shard's clips, as data-parallel training does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax
from jax.sharding import PartitionSpec as P

from sideways_jax import registry
from sideways_jax.experiments import common
from sideways_jax.experiments.classification import state as state_lib
from sideways_jax.experiments.classification import step as step_lib

Batch = dict[str, Any]
Metrics = dict[str, jax.Array]


class SingleDevice:
  """Trains on the default device with the engine's gradient function."""

  def __init__(self, config: Any, algorithm: str, stages: tuple,
               optimizer: optax.GradientTransformation,
               schedule: optax.Schedule, options: dict[str, Any]):
    self._stages, self._optimizer, self._config = stages, optimizer, config
    self.train_step = step_lib.make_train_step(
        stages, optimizer, registry.grad_fn(algorithm, **options),
        input_mean=config.data.mean, input_std=config.data.std,
        learning_rate_fn=schedule)

  def init_state(self, example_frame: jax.Array) -> state_lib.TrainState:
    return state_lib.create_train_state(self._stages, self._optimizer,
                                        seed=self._config.seed,
                                        example_frame=example_frame)

  def place(self, batch: Batch) -> Batch:
    return batch

  def variables(self, state: state_lib.TrainState) -> tuple[dict, ...]:
    return state.variables()

  def step_of(self, state: state_lib.TrainState) -> int:
    return int(state.step)


@flax.struct.dataclass
class MeshState:
  """A mesh run's state: the trainer's sharded state plus step and key."""
  step: jax.Array       # int32 []: optimizer updates done
  parallel: Any         # sideways_jax.parallel.TrainState (sharded)
  rng: jax.Array        # the run's dropout key; step t uses fold_in(rng, t)


def mesh_algorithm(algorithm: str) -> str:
  """The `ParallelTrainer` word for a config's algorithm ('bp': 'bp_model')."""
  return 'bp_model' if algorithm == 'bp' else algorithm


class Mesh:
  """Trains depth-parallel with `sideways_jax.parallel.ParallelTrainer`."""

  def __init__(self, config: Any, algorithm: str, stages: tuple,
               optimizer: optax.GradientTransformation,
               schedule: optax.Schedule, options: dict[str, Any]):
    from sideways_jax import parallel  # pylint: disable=g-import-not-at-top
    self._parallel, self._config, self._stages = parallel, config, stages
    self._algorithm = mesh_algorithm(algorithm)
    self._options = options
    self._optimizer, self._schedule = optimizer, schedule
    parallel.initialize_distributed(
        parallel.DistributedConfig(**config.distributed.to_dict()))
    try:
      self.mesh = parallel.make_mesh(num_data=config.mesh.data,
                                     num_stages=config.mesh.stages)
    except ValueError as e:  # Too few devices: the user's set-up, not a bug.
      raise common.ConfigError(f'mesh.stages={config.mesh.stages}, mesh.data='
                               f'{config.mesh.data}: {e}') from None
    self._trainer = None  # Built by init_state, which knows the variables.

  def init_state(self, example_frame: jax.Array) -> MeshState:
    config = self._config
    variables, dropout_key = state_lib.initial_variables(
        self._stages, seed=config.seed, example_frame=example_frame)
    clip = jax.ShapeDtypeStruct(
        (config.data.clip_length,) + tuple(example_frame.shape), jnp.float32)
    self._trainer = self._parallel.ParallelTrainer(
        self._algorithm, self._stages, variables, self.mesh,
        step_lib.frame_xent, self._optimizer, clip, options=self._options)
    self.train_step = self._make_train_step()
    # Step and key replicated on the mesh too: a restored checkpoint takes
    # its arrays' placement from this template.
    replicated = lambda x: self._parallel.put(x, self.mesh, P())
    return MeshState(step=replicated(jnp.zeros((), jnp.int32)),
                     parallel=self._trainer.init(variables),
                     rng=replicated(dropout_key))

  def _make_train_step(self) -> Callable[[MeshState, Batch],
                                         tuple[MeshState, Metrics]]:
    trainer, config, schedule = self._trainer, self._config, self._schedule

    def step(state: MeshState, batch: Batch):
      clip, targets = step_lib.clip_and_targets(
          batch, input_mean=config.data.mean, input_std=config.data.std)
      parallel_state, outputs = trainer.train_step(
          state.parallel, clip, targets,
          rng=jax.random.fold_in(state.rng, state.step))
      new_state = state.replace(step=state.step + 1, parallel=parallel_state)
      return new_state, step_lib.train_metrics(
          outputs, batch, learning_rate=schedule(state.step))

    return jax.jit(step, donate_argnums=0)

  def place(self, batch: Batch) -> Batch:
    """Host batch -> global arrays split over the trainer's batch axes."""
    spec = self._trainer.batch_spec
    put = self._parallel.put
    return {key: put(value, self.mesh,
                     P(spec[1]) if value.ndim == 1 else spec)
            for key, value in batch.items()}

  def variables(self, state: MeshState) -> tuple[dict, ...]:
    return self._trainer.variables(state.parallel)

  def step_of(self, state: MeshState) -> int:
    return int(state.step)


def make_backend(config: Any, algorithm: str, stages: tuple,
                 optimizer: optax.GradientTransformation,
                 schedule: optax.Schedule) -> SingleDevice | Mesh:
  """The backend `config.mesh` asks for, with the algorithm's options."""
  if config.mesh.stages:
    return Mesh(config, algorithm, stages, optimizer, schedule,
                mesh_options(config, mesh_algorithm(algorithm)))
  return SingleDevice(config, algorithm, stages, optimizer, schedule,
                      dict(config.options[algorithm]))


def mesh_options(config: Any, algorithm: str) -> dict[str, Any]:
  """`ParallelTrainer` options of a mesh algorithm, from `config.options`.

  The mesh programs take the engine's options under their own names: Sideways
  its target alignment, BP data-parallel (the engine's BP on every device)
  its mode; the pipelined BP layouts take none.
  """
  if algorithm == 'sideways':
    return {'target_alignment': config.options.sideways.target_alignment}
  if algorithm == 'bp_data':
    return {'bp_mode': config.options.bp.mode}
  return {}
