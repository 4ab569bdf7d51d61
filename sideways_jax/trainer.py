"""`Trainer`: one class that trains a stage chain on one device or a mesh.

    trainer = sj.Trainer(stages, optax.adam(1e-3), loss_fn, 'sideways')
    state = trainer.init(jax.random.PRNGKey(0), clip)
    for clip, targets in batches:                     # time-major [K, B, ...]
      state, metrics = trainer.step(state, clip, targets)
    logits = trainer.predict(state, clip)             # [K, B, classes]

One word switches the algorithm (`sj.ALGORITHMS`: 'sideways', 'bp', and on
a mesh also 'bp_data', 'bp_gpipe', 'bp_1f1b'); one argument switches
placement (`mesh=parallel.make_mesh(num_data, num_stages)` puts stage i on
stage-device i). Both placements start from the same weights for the same
key, take the same batches and return the same metrics, and a mesh run
gives the single-device numbers.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax

from sideways_jax import algorithms
from sideways_jax import chain as chain_lib
from sideways_jax import kernel
from sideways_jax import precision as precision_lib
from sideways_jax import result as result_lib
from sideways_jax.device_program import DeviceProgram
from sideways_jax.train_state import Metrics
from sideways_jax.train_state import Program
from sideways_jax.train_state import TrainState


class Trainer:
  """Stages + optimizer + loss + algorithm (+ mesh): init, step, predict."""

  def __init__(self, stages: chain_lib.Stages,
               optimizer: optax.GradientTransformation,
               loss_fn: kernel.LossFn, algorithm: str = 'sideways', *,
               options: Mapping[str, Any] | None = None,
               mesh: jax.sharding.Mesh | None = None,
               precision: precision_lib.Precision | None = None,
               train: bool = True):
    """Checks the algorithm and its options; programs compile on first use.

    Args:
      stages: the chain, one Flax module per stage (`__call__(x, train)`;
        see `sideways_jax.flax_stages` for modules written otherwise).
      optimizer: an optax transformation. On a mesh each device updates
        only its own stage, so it must act elementwise (adam, sgd, weight
        decay ...; not global-norm clipping).
      loss_fn: `loss_fn(top_output [B, ...], target [B, ...]) -> scalar`.
      algorithm: a name in `sj.ALGORITHMS`.
      options: the algorithm's options (`sj.ALGORITHMS[algorithm].options`).
      mesh: None for one device, or a ('data', 'stage') mesh from
        `sideways_jax.parallel.make_mesh`.
      precision: e.g. `Precision(compute_dtype=jnp.bfloat16)`: stages
        compute in bf16 while parameters, gradient sums and optimizer state
        stay in the parameters' dtype (fp32). None: as the stages are.
      train: training mode (batchnorm statistics, dropout).

    Raises:
      ValueError: an unknown algorithm, one that does not run on the chosen
        placement, or a bad option.
    """
    self.placement = algorithms.DEVICE if mesh is None else algorithms.MESH
    self.algorithm = algorithms.get(algorithm)
    self.options = algorithms.resolve_options(algorithm, options,
                                              self.placement)
    self.precision = precision or precision_lib.Precision()
    self.stages = self.precision.wrap(tuple(stages))
    self.optimizer, self.loss_fn, self.mesh = optimizer, loss_fn, mesh
    self.train = train
    self._program: Program | None = None

  def describe(self) -> dict[str, Any]:
    """What runs: algorithm, placement, options used, precision (for logs)."""
    return {'algorithm': self.algorithm.name, 'placement': self.placement,
            'exact': self.algorithm.exact, 'options': dict(self.options),
            'compute_dtype': jnp.dtype(self.precision.compute_dtype).name,
            'mesh': None if self.mesh is None else dict(self.mesh.shape)}

  # ---- state -----------------------------------------------------------------

  def init(self, rng: jax.Array, example_clip: Any) -> TrainState:
    """Fresh variables from `rng` and the state at step 0.

    `rng` is split into the initialisation key and the run's dropout key, so
    every placement starts from the same weights for the same `rng`.
    `example_clip` [K, B, ...] (array or ShapeDtypeStruct) fixes the batch
    and frame shape; on a mesh B is the global batch.
    """
    init_key, dropout_key = jax.random.split(rng)
    frame = jax.ShapeDtypeStruct(tuple(example_clip.shape[1:]),
                                 example_clip.dtype)
    variables = chain_lib.init_chain(self.stages, init_key,
                                     jnp.zeros(frame.shape, frame.dtype))
    return self.init_from(variables, dropout_key, example_clip)

  def init_from(self, variables: chain_lib.ChainVariables, rng: jax.Array,
                example_clip: Any) -> TrainState:
    """The state at step 0 for given variables (e.g. imported weights)."""
    chain_lib.validate_chain(self.stages, variables)
    self._program = self._build(variables, example_clip)
    return self._program.init(variables, rng)

  def _build(self, variables: chain_lib.ChainVariables,
             example_clip: Any) -> Program:
    if self.mesh is None:
      return DeviceProgram(self.algorithm.name, self.stages, self.loss_fn,
                           self.optimizer, self.options, train=self.train)
    from sideways_jax import parallel  # pylint: disable=g-import-not-at-top
    return parallel.mesh_program(self.algorithm.name, self.stages, variables,
                                 self.mesh, self.loss_fn, self.optimizer,
                                 example_clip, self.options, train=self.train)

  @property
  def program(self) -> Program:
    if self._program is None:
      raise ValueError('call Trainer.init (or init_from) first: it fixes the '
                       'batch shape and builds the program')
    return self._program

  # ---- training --------------------------------------------------------------

  def step(self, state: TrainState, clip: Any, targets: Any
           ) -> tuple[TrainState, Metrics]:
    """One clip (one episode) and one optimizer update; `state` is donated.

    Args:
      state: from `init` or the previous step.
      clip: time-major floating-point frames [K, B, ...].
      targets: time-major targets [K, B, ...] (one per frame; repeat a
        clip's label over K).

    Returns:
      (the new state, metrics): 'loss', 'grad_norm', 'loss_is_finite',
      'valid_steps' [D], 'outputs' [K, B, ...] (the top output at each
      step), 'output_valid' [K] and 'output_frame' [K] (the frame each
      output came from: under Sideways the top lags D - 1 frames).
    """
    clip, targets = self.program.place(clip, targets)
    return self.program.update(state, clip, targets)

  def grads(self, state: TrainState, clip: Any,
            targets: Any) -> result_lib.GradResult:
    """One clip's gradients (no update), per stage, as `grad_fn` gives."""
    clip, targets = self.program.place(clip, targets)
    return self.program.grads(state, clip, targets)

  def variables(self, state: TrainState) -> tuple[dict, ...]:
    """The chain's per-stage variables dicts (what `init_from` takes)."""
    return self.program.variables(state)

  def memory_analysis(self, state: TrainState, clip: Any,
                      targets: Any) -> dict[str, int]:
    """Bytes per device of the compiled step (compiles, runs nothing)."""
    return self.program.memory_analysis(state, clip, targets)

  # ---- evaluation ------------------------------------------------------------

  def predict(self, state: TrainState, clip: jax.Array) -> jax.Array:
    """Eval-mode outputs of every frame, [K, B, ...] (a plain forward).

    No pipeline lag: output k is the whole chain applied to frame k, with
    batchnorm's running statistics and no dropout. Runs on the default
    device from `variables(state)`.
    """
    chain_lib.validate_clip(clip, jnp.zeros(clip.shape[:2]))
    return self._predict(self.variables(state), clip)

  @functools.cached_property
  def _predict(self):
    # A closure, not a static argument: modules may hold unhashable fields.
    stages = self.stages
    return jax.jit(lambda variables, clip: chain_lib.apply_clip(
        stages, variables, clip))
