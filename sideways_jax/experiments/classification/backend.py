"""Where a classification run executes: `sideways_jax.Trainer` from a config.

One device (`config.mesh.stages == 0`) or a ('data', 'stage') mesh with one
stage per device along 'stage' (`config.mesh.stages` = the model's stage
count) and the batch split along 'data' (`config.mesh.data`). The Trainer
hides the difference: both start from the same weights (the key
`config.seed`), take the same batches and log the same metrics
(`step.train_metrics`); the loop sees only `init_state`, `train_step`,
`variables`, `step_of` and `place`. On a mesh each device holds only its own
stage's parameters, batchnorm and optimizer state, and so does each
checkpoint shard; with `mesh.data` > 1 batchnorm normalises over each
shard's clips, as data-parallel training does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.sharding import PartitionSpec as P

from sideways_jax import precision as precision_lib
from sideways_jax import train_state as train_state_lib
from sideways_jax import trainer as trainer_lib
from sideways_jax.experiments import common
from sideways_jax.experiments.classification import step as step_lib

Batch = dict[str, Any]
Metrics = dict[str, jax.Array]


def _make_mesh(config: Any) -> jax.sharding.Mesh | None:
  """The config's mesh (after joining the other hosts), or None."""
  if not config.mesh.stages:
    return None
  from sideways_jax import parallel  # pylint: disable=g-import-not-at-top
  parallel.initialize_distributed(
      parallel.DistributedConfig(**config.distributed.to_dict()))
  try:
    return parallel.make_mesh(num_data=config.mesh.data,
                              num_stages=config.mesh.stages)
  except ValueError as e:  # Too few devices: the user's set-up, not a bug.
    raise common.ConfigError(f'mesh.stages={config.mesh.stages}, mesh.data='
                             f'{config.mesh.data}: {e}') from None


class Backend:
  """A Trainer built from a config, with the runner's step around it."""

  def __init__(self, config: Any, algorithm: str, stages: tuple,
               optimizer: optax.GradientTransformation,
               schedule: optax.Schedule):
    self._config, self._schedule = config, schedule
    self.mesh = _make_mesh(config)
    self.trainer = trainer_lib.Trainer(
        stages, optimizer, step_lib.frame_xent, algorithm,
        options=config.options[algorithm].to_dict(), mesh=self.mesh,
        precision=precision_lib.policy(config.precision))
    self.train_step: Callable[[train_state_lib.TrainState, Batch],
                              tuple[train_state_lib.TrainState, Metrics]]

  def describe(self) -> dict[str, Any]:
    """What actually runs (algorithm, placement, options): for summary.json."""
    return self.trainer.describe()

  def init_state(self, example_frame: jax.Array
                 ) -> train_state_lib.TrainState:
    """The state at step 0: weights and dropout key from `config.seed`."""
    config = self._config
    clip = jax.ShapeDtypeStruct(
        (config.data.clip_length,) + tuple(example_frame.shape), jnp.float32)
    state = self.trainer.init(jax.random.PRNGKey(config.seed), clip)
    self.train_step = self._make_train_step()
    return state

  def _make_train_step(self):
    program, config, schedule = self.trainer.program, self._config, (
        self._schedule)

    def step(state: train_state_lib.TrainState, batch: Batch):
      clip, targets = step_lib.clip_and_targets(
          batch, input_mean=config.data.mean, input_std=config.data.std)
      new_state, outputs = program.update(state, clip, targets)
      return new_state, step_lib.train_metrics(
          outputs, batch, learning_rate=schedule(state.step))

    return jax.jit(step, donate_argnums=0)

  def place(self, batch: Batch) -> Batch:
    """Host batch -> the program's inputs (global arrays on a mesh)."""
    if self.mesh is None:
      return batch
    from sideways_jax import parallel  # pylint: disable=g-import-not-at-top
    spec = self.trainer.program.batch_spec
    return {key: parallel.put(value, self.mesh,
                              P(spec[1]) if value.ndim == 1 else spec)
            for key, value in batch.items()}

  def variables(self, state: train_state_lib.TrainState
                ) -> tuple[dict, ...]:
    return self.trainer.variables(state)

  def step_of(self, state: train_state_lib.TrainState) -> int:
    return int(state.step)


def make_backend(config: Any, algorithm: str, stages: tuple,
                 optimizer: optax.GradientTransformation,
                 schedule: optax.Schedule) -> Backend:
  """The backend `config.mesh` asks for, with the algorithm's options."""
  return Backend(config, algorithm, stages, optimizer, schedule)
