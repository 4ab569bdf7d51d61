"""Training on one device: the engine's gradient function + an optax update."""

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
from sideways_jax import result as result_lib
from sideways_jax.train_state import memory_stats
from sideways_jax.train_state import Metrics
from sideways_jax.train_state import TrainState


class DeviceProgram:
  """`grad_fn(algorithm, **options)` and one optimizer update, jitted."""

  def __init__(self, algorithm: str, stages: chain_lib.Stages,
               loss_fn: kernel.LossFn,
               optimizer: optax.GradientTransformation,
               options: Mapping[str, Any], *, train: bool = True):
    self.stages = tuple(stages)
    self.algorithm = algorithms.get(algorithm)
    self.loss_fn, self.optimizer, self.train = loss_fn, optimizer, train
    self._grad_fn = algorithms.grad_fn(algorithm, **options)

  def init(self, variables: chain_lib.ChainVariables,
           rng: jax.Array) -> TrainState:
    chain_lib.validate_chain(self.stages, variables)
    # Copies: updates donate the state, which must not delete the caller's
    # arrays (e.g. imported weights used again).
    split = [chain_lib.split_variables(jax.tree.map(jnp.array, v))
             for v in variables]
    params = tuple(p for p, _ in split)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      model_state=tuple(dict(s) for _, s in split),
                      opt_state=self.optimizer.init(params), rng=rng)

  def _grads(self, state: TrainState, clip: jax.Array,
             targets: Any) -> result_lib.GradResult:
    return self._grad_fn(self.stages, self.variables(state), clip, targets,
                         self.loss_fn,
                         rng=jax.random.fold_in(state.rng, state.step),
                         train=self.train)

  def _update(self, state: TrainState, clip: jax.Array,
              targets: Any) -> tuple[TrainState, Metrics]:
    result = self._grads(state, clip, targets)
    updates, opt_state = self.optimizer.update(result.grads, state.opt_state,
                                               state.params)
    new_state = state.replace(
        step=state.step + 1, params=optax.apply_updates(state.params, updates),
        model_state=tuple(dict(s) for s in result.state), opt_state=opt_state)
    metrics = {k: v for k, v in result.metrics.items() if k != 'step_losses'}
    metrics.update(loss=result.loss, grad_norm=optax.tree.norm(result.grads))
    return new_state, metrics

  @functools.cached_property
  def _jit_update(self):
    return jax.jit(self._update, donate_argnums=0)

  def update(self, state: TrainState, clip: jax.Array,
             targets: Any) -> tuple[TrainState, Metrics]:
    self.algorithm.check_clip_length(clip.shape[0], len(self.stages))
    return self._jit_update(state, clip, targets)

  def grads(self, state: TrainState, clip: jax.Array,
            targets: Any) -> result_lib.GradResult:
    return jax.jit(self._grads)(state, clip, targets)

  def variables(self, state: TrainState) -> tuple[dict, ...]:
    return tuple({'params': p, **s}
                 for p, s in zip(state.params, state.model_state))

  def place(self, clip: Any, targets: Any) -> tuple[Any, Any]:
    chain_lib.validate_clip(clip, targets)
    return jnp.asarray(clip), jax.tree.map(jnp.asarray, targets)

  def memory_analysis(self, state: TrainState, clip: Any,
                      targets: Any) -> dict[str, int]:
    return memory_stats(
        self._jit_update.lower(state, clip, targets).compile())
