"""The training state of a run: the library's one `TrainState`.

The data position is not stored: batch `step` is a pure function of (seed,
step) (see `sideways_jax.data.make_loader(start_step=...)`), so the step
counter is enough to resume the data stream.
"""

from __future__ import annotations

import jax
import optax

from sideways_jax import chain as chain_lib
from sideways_jax import trainer as trainer_lib
from sideways_jax.train_state import TrainState

__all__ = ['TrainState', 'create_train_state', 'num_params']


def create_train_state(stages: chain_lib.Stages,
                       optimizer: optax.GradientTransformation, *, seed: int,
                       example_frame: jax.Array) -> TrainState:
  """The one-device state at step 0 that a run with `seed` starts from.

  Args:
    stages: the model's stage chain.
    optimizer: the optax transformation that will update the params.
    seed: fixes the initial weights and the dropout stream.
    example_frame: one batch of frames [B, H, W, C] (only shapes matter).
  """
  from sideways_jax.experiments.classification import step as step_lib  # pylint: disable=g-import-not-at-top
  trainer = trainer_lib.Trainer(stages, optimizer, step_lib.frame_xent, 'bp')
  clip = jax.ShapeDtypeStruct((1,) + tuple(example_frame.shape),
                              example_frame.dtype)
  return trainer.init(jax.random.PRNGKey(seed), clip)


def num_params(variables: chain_lib.ChainVariables) -> int:
  """Number of trainable parameters of a chain."""
  return sum(int(x.size) for v in variables
             for x in jax.tree.leaves(v.get('params', {})))
