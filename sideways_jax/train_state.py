"""The one training state, and the protocol every placement implements."""

from __future__ import annotations

from typing import Any, Protocol

import flax
import jax

from sideways_jax import chain as chain_lib
from sideways_jax import result as result_lib

Metrics = dict[str, jax.Array]


@flax.struct.dataclass
class TrainState:
  """Everything a training loop carries from one update to the next.

  The layout of `params`, `model_state` and `opt_state` belongs to the
  placement that made the state (one device: a tuple with one pytree per
  stage; a mesh: each device's own stage in padded rows sharded over
  'stage', see `sideways_jax.parallel`). `Trainer.variables(state)` turns
  any of them back into per-stage variables dicts.

  Attributes:
    step: int32 []: optimizer updates done.
    params: the trainable parameters.
    model_state: the other collections (e.g. 'batch_stats').
    opt_state: the optax state of `params`.
    rng: the run's dropout key; update t uses `jax.random.fold_in(rng, t)`.
  """
  step: jax.Array
  params: Any
  model_state: Any
  opt_state: Any
  rng: jax.Array


def memory_stats(compiled: Any) -> dict[str, int]:
  """XLA's per-device byte estimates of a compiled program.

  'argument_bytes' (state and batch shard), 'output_bytes', 'alias_bytes'
  (outputs reusing donated arguments), 'temp_bytes' (everything the program
  allocates itself, e.g. stored activations) and 'total_bytes' = temp +
  argument.
  """
  stats = compiled.memory_analysis()
  out = {f'{name}_bytes': int(getattr(stats, f'{name}_size_in_bytes'))
         for name in ('argument', 'output', 'alias', 'temp')}
  out['total_bytes'] = out['temp_bytes'] + out['argument_bytes']
  return out


class Program(Protocol):
  """What a placement (one device, or a mesh) provides to the Trainer.

  Metrics of `update`: 'loss' f32 [], 'grad_norm' f32 [] (global L2 norm of
  the averaged gradients), 'loss_is_finite' bool [] (loss and every gradient
  entry finite), 'valid_steps' int32 [D], 'outputs' [K, B, ...] (the top
  stage's output at each step), 'output_valid' bool [K], 'output_frame'
  int32 [K] (the frame each output came from).
  """

  def init(self, variables: chain_lib.ChainVariables,
           rng: jax.Array) -> TrainState:
    """The state at step 0 for these variables and dropout key."""

  def update(self, state: TrainState, clip: jax.Array,
             targets: Any) -> tuple[TrainState, Metrics]:
    """One clip (one episode) and one optimizer update; donates `state`."""

  def grads(self, state: TrainState, clip: jax.Array,
            targets: Any) -> result_lib.GradResult:
    """One clip's gradients without an update, host arrays per stage."""

  def variables(self, state: TrainState) -> tuple[dict, ...]:
    """Per-stage variables dicts (host arrays on a mesh)."""

  def place(self, clip: Any, targets: Any) -> tuple[Any, Any]:
    """Host clip and targets as the program's inputs."""

  def memory_analysis(self, state: TrainState, clip: Any,
                      targets: Any) -> dict[str, int]:
    """Bytes per device of the compiled update (compiles, runs nothing)."""
