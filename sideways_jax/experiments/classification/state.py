"""The training state: one pytree that a checkpoint saves and restores whole."""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from sideways_jax import chain as chain_lib


@flax.struct.dataclass
class TrainState:
  """Everything a run needs to continue exactly where it stopped.

  The data position is not stored: batch `step` is a pure function of
  (seed, step) (see `sideways_jax.data.make_loader(start_step=...)`), so the
  step counter is enough to resume the data stream.

  Attributes:
    step: int32 [], optimizer updates done so far.
    params: one params pytree per stage.
    model_state: one dict of mutable collections per stage (e.g.
      'batch_stats'); empty dicts for stages without any.
    opt_state: the optax state of `params`.
    rng: uint32 [2], the run's dropout key; step t uses fold_in(rng, t).
  """
  step: jax.Array
  params: tuple[Any, ...]
  model_state: tuple[dict, ...]
  opt_state: optax.OptState
  rng: jax.Array

  def variables(self) -> tuple[dict, ...]:
    """The per-stage variables dicts the engine takes."""
    return tuple({'params': p, **s}
                 for p, s in zip(self.params, self.model_state))


def initial_variables(stages: chain_lib.Stages, *, seed: int,
                      example_frame: jax.Array
                      ) -> tuple[tuple[dict, ...], jax.Array]:
  """The chain's initial variables and the run's dropout key, from `seed`.

  Every backend starts from these, so a run on one device and one on a mesh
  start from the same weights.
  """
  init_key, dropout_key = jax.random.split(jax.random.PRNGKey(seed))
  return chain_lib.init_chain(stages, init_key, example_frame), dropout_key


def create_train_state(stages: chain_lib.Stages,
                       optimizer: optax.GradientTransformation, *, seed: int,
                       example_frame: jax.Array) -> TrainState:
  """Initialises the stages and the optimizer from `seed`.

  Args:
    stages: the model's stage chain.
    optimizer: the optax transformation that will update the params.
    seed: fixes the initial weights and the dropout stream.
    example_frame: one batch of frames [B, H, W, C] (only shapes matter).

  Returns:
    The state at step 0.
  """
  variables, dropout_key = initial_variables(stages, seed=seed,
                                             example_frame=example_frame)
  split = [chain_lib.split_variables(v) for v in variables]
  params = tuple(p for p, _ in split)
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    model_state=tuple(dict(s) for _, s in split),
                    opt_state=optimizer.init(params), rng=dropout_key)


def num_params(variables: chain_lib.ChainVariables) -> int:
  """Number of trainable parameters of a chain."""
  return sum(int(x.size) for v in variables
             for x in jax.tree.leaves(v['params']))
