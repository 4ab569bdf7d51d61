"""A streaming learner's state (the library's one `TrainState`) and update.

The state is `sideways_jax.TrainState` with the one-device layout (a tuple
with one pytree per stage) and one optax state per stage in `opt_state`,
so a stage can skip an update while another one takes it: at the start of
every video the Sideways pipeline is refilling and the lower stages have no
gradient yet (their input or their cotangent is not a real frame). Skipping
matters with Adam-like optimizers, which would otherwise keep moving a stage
on momentum alone at every reset. For elementwise optimizers (SGD, Adam,
AdamW) one state per stage updated together is the same as one state for
the whole model, so BP, which always updates every stage, is unaffected by
the split. `step` counts the top stage's updates (every stage's, for BP);
a stage's own count is its optimizer state's. Update t's dropout key is
`fold_in(rng, t)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Union

import jax
import jax.numpy as jnp
import optax

from sideways_jax import chain as chain_lib
from sideways_jax.train_state import TrainState

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


def variables(learner: TrainState) -> tuple[dict, ...]:
  """One variables dict per stage, as the engine takes them."""
  return tuple({'params': p, **s}
               for p, s in zip(learner.params, learner.model_state))


def dropout_key(learner: TrainState) -> jax.Array:
  """The dropout key of the learner's next update: fold_in(rng, step)."""
  return jax.random.fold_in(learner.rng, learner.step)


def init_learner(chain_variables: chain_lib.ChainVariables,
                 optimizer: Optimizers, rng: jax.Array) -> TrainState:
  """A learner at step 0 from `chain_variables` (one dict per stage).

  `rng` is the run's dropout key (unused by stages without dropout).
  """
  split = [chain_lib.split_variables(v) for v in chain_variables]
  params = tuple(p for p, _ in split)
  optimizers = stage_optimizers(optimizer, len(params))
  return TrainState(
      step=jnp.zeros((), jnp.int32), params=params,
      model_state=tuple(dict(s) for _, s in split),
      opt_state=tuple(o.init(p) for o, p in zip(optimizers, params)),
      rng=rng)


def _tree_where(condition: jax.Array, new: Any, old: Any) -> Any:
  return jax.tree.map(lambda a, b: jnp.where(condition, a, b), new, old)


def apply_stage_updates(learner: TrainState,
                        optimizer: Optimizers,
                        grads: tuple[Any, ...],
                        active: jax.Array,
                        model_state: tuple[dict, ...] | None = None,
                        ) -> TrainState:
  """One optimizer step on every stage whose `active[i]` is true.

  Args:
    learner: the current learner.
    optimizer: the optimizer(s) the learner was built with.
    grads: D × gradient pytree shaped like the params.
    active: bool [D]: which stages take the step; the others keep their
      params and optimizer state exactly. `step` advances with the top's.
    model_state: new mutable collections (kept as they are if None).

  Returns:
    The updated learner.
  """
  params, opt_states = [], []
  optimizers = stage_optimizers(optimizer, len(learner.params))
  for i, (opt, p, g, s) in enumerate(zip(optimizers, learner.params, grads,
                                         learner.opt_state)):
    updates, new_s = opt.update(g, s, p)
    new_p = optax.apply_updates(p, updates)
    params.append(_tree_where(active[i], new_p, p))
    opt_states.append(_tree_where(active[i], new_s, s))
  return learner.replace(
      step=learner.step + active[-1].astype(jnp.int32),
      params=tuple(params),
      model_state=learner.model_state if model_state is None else tuple(
          dict(s) for s in model_state),
      opt_state=tuple(opt_states))


def mse_loss(output: jax.Array, target: jax.Array) -> jax.Array:
  """Mean squared error over every element (batch, pixels, channels)."""
  return jnp.mean(jnp.square(output.astype(jnp.float32) -
                             target.astype(jnp.float32)))
