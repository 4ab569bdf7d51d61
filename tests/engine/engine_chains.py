"""Tiny stage chains and helpers shared by the engine tests."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

import sideways_jax as sj
from sideways_jax import layers


class ConvStage(nn.Module):
  """conv 3x3 (+ batchnorm) + tanh: smooth, so gradients are well scaled."""
  features: int
  stride: int = 1
  batchnorm: bool = False

  @nn.compact
  def __call__(self, x, train):
    x = layers.Conv(self.features, (3, 3), (self.stride, self.stride))(x)
    if self.batchnorm:
      x = nn.BatchNorm(use_running_average=not train)(x)
    return jnp.tanh(x)


class Head(nn.Module):
  """Global average pool + linear classifier."""
  classes: int

  @nn.compact
  def __call__(self, x, train):
    return nn.Dense(self.classes)(x.mean((1, 2)))


class DropoutHead(nn.Module):
  classes: int
  rate: float = 0.5

  @nn.compact
  def __call__(self, x, train):
    x = nn.Dropout(self.rate, deterministic=not train)(x.mean((1, 2)))
    return nn.Dense(self.classes)(x)


NUM_CLASSES = 5
BATCH = 3
SIZE = 8


def make_chain(num_stages: int, batchnorm: bool = True) -> tuple:
  """num_stages - 1 conv stages (one with batchnorm) and a head."""
  bn_stage = min(1, num_stages - 2)
  convs = [ConvStage(4 + 2 * i, stride=2 if i % 2 == 0 else 1,
                     batchnorm=batchnorm and i == bn_stage)
           for i in range(num_stages - 1)]
  return tuple(convs) + (Head(NUM_CLASSES),)


def init(stages, seed: int = 0):
  frame = jax.random.normal(jax.random.PRNGKey(seed), (BATCH, SIZE, SIZE, 3))
  return sj.init_chain(stages, jax.random.PRNGKey(seed + 1), frame)


def random_clip(num_frames: int, seed: int = 0):
  return jax.random.normal(jax.random.PRNGKey(100 + seed),
                           (num_frames, BATCH, SIZE, SIZE, 3))


def constant_clip(num_frames: int, seed: int = 0):
  frame = jax.random.normal(jax.random.PRNGKey(200 + seed),
                            (BATCH, SIZE, SIZE, 3))
  return jnp.broadcast_to(frame, (num_frames,) + frame.shape)


def labels(num_frames: int, seed: int = 0):
  per_clip = jax.random.randint(jax.random.PRNGKey(300 + seed), (BATCH,), 0,
                                NUM_CLASSES)
  return jnp.broadcast_to(per_clip, (num_frames, BATCH))


def xent(logits, targets):
  return optax.softmax_cross_entropy_with_integer_labels(logits,
                                                         targets).mean()


def max_abs_diff(a, b) -> float:
  return max(float(jnp.abs(x - y).max())
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@functools.cache
def chain_and_variables(num_stages: int, batchnorm: bool = True):
  """`make_chain` and `init` of it, built once per test session.

  Each `init` compiles one initialiser per stage; sharing the chain also lets
  tests share compiled gradient functions (see `compiled`).
  """
  stages = make_chain(num_stages, batchnorm=batchnorm)
  return stages, init(stages)


@functools.cache
def compiled(algorithm: str, num_stages: int, batchnorm: bool = True,
             train: bool = True, **options):
  """`grad_fn(algorithm, **options)` on the shared chain, jitted once.

  Returns `f(variables, clip, targets) -> GradResult` with the `xent` loss;
  tests with the same shapes reuse one compilation.
  """
  stages, _ = chain_and_variables(num_stages, batchnorm)
  fn = sj.grad_fn(algorithm, **options)
  return jax.jit(lambda v, c, t: fn(stages, v, c, t, xent, train=train))

