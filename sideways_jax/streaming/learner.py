"""What a streaming learner carries across steps and videos, and its update.

Each stage has its own optimizer state, so a stage can skip an update while
another one takes it: at the start of every video the Sideways pipeline is
refilling and the lower stages have no gradient yet (their input or their
cotangent is not a real frame). Skipping matters with Adam-like optimizers,
which would otherwise keep moving a stage on momentum alone at every reset.
For elementwise optimizers (SGD, Adam, AdamW) one state per stage updated
together is the same as one state for the whole model, so BP, which always
updates every stage, is unaffected by the split.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Union

import jax
import jax.numpy as jnp
import optax

from sideways_jax import chain as chain_lib

# One optimizer for every stage, or one per stage (bottom first), e.g. a
# learning rate scaled by each stage's gradient delay (see `staleness`).
Optimizers = Union[optax.GradientTransformation,
                   Sequence[optax.GradientTransformation]]


def stage_optimizers(optimizer: Optimizers, num_stages: int
                     ) -> tuple[optax.GradientTransformation, ...]:
  """One optimizer per stage: `optimizer` repeated, or checked for length."""
  if isinstance(optimizer, optax.GradientTransformation):
    return (optimizer,) * num_stages
  optimizers = tuple(optimizer)
  if len(optimizers) != num_stages:
    raise ValueError(f'got {len(optimizers)} optimizers for {num_stages} '
                     'stages: pass one, or one per stage')
  return optimizers


class LearnerState(NamedTuple):
  """Weights and optimizer of a streaming learner (D stages).

  Attributes:
    params: D × params_i.
    model_state: D × mutable collections of stage i (e.g. 'batch_stats').
    opt_states: D × optax state of stage i.
    num_updates: int32 [D]: updates applied to each stage so far.
  """
  params: tuple[Any, ...]
  model_state: tuple[dict, ...]
  opt_states: tuple[Any, ...]
  num_updates: jax.Array

  @property
  def variables(self) -> tuple[dict, ...]:
    """One variables dict per stage, as the engine takes them."""
    return tuple({'params': p, **s}
                 for p, s in zip(self.params, self.model_state))


def init_learner(variables: chain_lib.ChainVariables,
                 optimizer: Optimizers) -> LearnerState:
  """A learner starting from `variables` (one dict per stage)."""
  split = [chain_lib.split_variables(v) for v in variables]
  params = tuple(p for p, _ in split)
  optimizers = stage_optimizers(optimizer, len(params))
  return LearnerState(
      params=params,
      model_state=tuple(dict(s) for _, s in split),
      opt_states=tuple(o.init(p) for o, p in zip(optimizers, params)),
      num_updates=jnp.zeros((len(params),), jnp.int32))


def _tree_where(condition: jax.Array, new: Any, old: Any) -> Any:
  return jax.tree.map(lambda a, b: jnp.where(condition, a, b), new, old)


def apply_stage_updates(learner: LearnerState,
                        optimizer: Optimizers,
                        grads: tuple[Any, ...],
                        active: jax.Array,
                        model_state: tuple[dict, ...] | None = None,
                        ) -> LearnerState:
  """One optimizer step on every stage whose `active[i]` is true.

  Args:
    learner: the current learner.
    optimizer: the optimizer(s) the learner was built with.
    grads: D × gradient pytree shaped like the params.
    active: bool [D]: which stages take the step; the others keep their
      params and optimizer state exactly.
    model_state: new mutable collections (kept as they are if None).

  Returns:
    The updated learner.
  """
  params, opt_states = [], []
  optimizers = stage_optimizers(optimizer, len(learner.params))
  for i, (opt, p, g, s) in enumerate(zip(optimizers, learner.params, grads,
                                         learner.opt_states)):
    updates, new_s = opt.update(g, s, p)
    new_p = optax.apply_updates(p, updates)
    params.append(_tree_where(active[i], new_p, p))
    opt_states.append(_tree_where(active[i], new_s, s))
  return LearnerState(
      params=tuple(params),
      model_state=learner.model_state if model_state is None else tuple(
          dict(s) for s in model_state),
      opt_states=tuple(opt_states),
      num_updates=learner.num_updates + active.astype(jnp.int32))


def mse_loss(output: jax.Array, target: jax.Array) -> jax.Array:
  """Mean squared error over every element (batch, pixels, channels)."""
  return jnp.mean(jnp.square(output.astype(jnp.float32) -
                             target.astype(jnp.float32)))
