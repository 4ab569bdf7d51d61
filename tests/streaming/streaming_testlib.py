"""A tiny stage chain and videos for the streaming tests (imported by name)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from sideways_jax import chain as chain_lib

FEATURES = 3


class TanhDense(nn.Module):
  """Dense -> tanh on [B, F]: a stage whose output shape equals its input's."""

  @nn.compact
  def __call__(self, x, train):
    del train
    return jnp.tanh(nn.Dense(FEATURES)(x))


def tiny_chain(num_stages, seed=0, batch=2):
  """D stages and their variables (frames are [B, 3])."""
  stages = tuple(TanhDense() for _ in range(num_stages))
  variables = chain_lib.init_chain(stages, jax.random.key(seed),
                                   jnp.zeros((batch, FEATURES)))
  return stages, variables


def random_video(num_frames, batch=2, seed=1):
  """Frames that all differ: float32 [T, B, 3] in [0, 1]."""
  rng = np.random.default_rng(seed)
  return jnp.asarray(rng.uniform(size=(num_frames, batch, FEATURES)),
                     jnp.float32)


def optimizer():
  """Adam with momentum: an update that is skipped or not shows in params."""
  return optax.adam(0.05)


def apply_chain(stages, variables, x):
  """The chain's forward pass on one frame [B, ...] (eval mode)."""
  return chain_lib.apply_chain(stages, variables, x)[0]


def init_learner(variables, opt):
  """A streaming learner at step 0 (the tiny stages have no dropout)."""
  from sideways_jax import streaming  # pylint: disable=g-import-not-at-top
  return streaming.init_learner(variables, opt, jax.random.key(0))


def adam_counts(learner):
  """Per stage, the updates its `optax.adam` state has taken."""
  return [int(state[0].count) for state in learner.opt_state]
