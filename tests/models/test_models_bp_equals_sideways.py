"""A smoke test per architecture: on a constant clip Sideways equals BP.

The invariant itself (all frames equal and K >= 2D - 1: every stage sees the
same input and cotangent at each valid step, so Sideways' averaged gradients
are the exact ones) is tested at tight tolerance in
tests/engine/test_engine_equivalence.py, together with its control (frames
that differ break the equality). Here each model runs through the engine
with its paper cut (D = 6, 8, 6), narrow widths, the shortest clip
K = 2D - 1, training mode (VGG-8's batchnorm on per-frame statistics) and
fp32. The tolerance is an fp32 summation-order tolerance: BP sums the K*B
frames in one batched contraction, Sideways one step at a time.

VGG-8 runs at 32x32: at 16x16 its conv5 map is 1x1, so batchnorm normalises
over only B = 2 values per channel, its outputs are +-1 whatever the input,
and its input gradient is a cancellation of nearly equal terms that turns
fp32 rounding into 10% differences (measured) in both algorithms alike.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sideways_jax as sj
from sideways_jax import models
import models_testlib

RTOL, ATOL = 1e-4, 1e-5
BATCH, NUM_CLASSES = 2, 5


def _xent(logits, labels):
  return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits,
                                                                  labels))


def _mse(frames, targets):
  return jnp.mean((frames - targets) ** 2)


def _constant_clip(num_frames, size):
  frame = jax.random.uniform(jax.random.key(0), (BATCH, size, size, 3))
  return jnp.broadcast_to(frame, (num_frames, *frame.shape))


def _labels(num_frames):
  return jnp.broadcast_to(jnp.arange(BATCH) % NUM_CLASSES,
                          (num_frames, BATCH))


# name: (builder, loss, frame size). Compilation is what these tests cost:
# XLA's own convolutions (impl='xla') compile to far fewer ops than the CPU
# default im2col form (tests/engine/test_layers.py checks the two agree).
NARROW = (4, 8, 8, 16, 16)
CASES = {
    'simple_cnn': (lambda: models.simple_cnn(NUM_CLASSES, channels=NARROW,
                                             impl='xla'), 'xent', 16),
    'vgg8': (lambda: models.vgg8(NUM_CLASSES, width=0.125, impl='xla'),
             'xent', 32),
    'autoencoder': (lambda: models.conv_autoencoder(channels=NARROW,
                                                    impl='xla'), 'mse', 16),
}


@pytest.mark.parametrize('name', list(CASES))
def test_constant_clip_sideways_equals_bp(name):
  build, loss, size = CASES[name]
  stages = build()
  loss_fn = _xent if loss == 'xent' else _mse
  num_stages = len(stages)
  num_frames = sj.min_clip_length(num_stages)
  clip = _constant_clip(num_frames, size)
  targets = _labels(num_frames) if loss == 'xent' else clip
  variables = models_testlib.random_variables(stages, clip[0])
  # Both algorithms in one program: one compilation per architecture.
  side, bp = jax.jit(lambda v, c, t: tuple(
      sj.grad_fn(a)(stages, v, c, t, loss_fn) for a in ('sideways', 'bp')))(
          variables, clip, targets)
  assert len(side.grads) == len(stages) == num_stages
  np.testing.assert_array_equal(
      side.metrics['valid_steps'],
      sj.valid_step_counts(num_frames, num_stages))
  chex.assert_trees_all_close(side.grads, bp.grads, rtol=RTOL, atol=ATOL)
  chex.assert_trees_all_close(side.state, bp.state, rtol=RTOL, atol=ATOL)
  np.testing.assert_allclose(side.loss, bp.loss, rtol=RTOL)
  # Not vacuous: every stage has a real gradient.
  for g in side.grads:
    assert max(float(jnp.max(jnp.abs(x))) for x in jax.tree.leaves(g)) > 1e-6
  if name == 'vgg8':  # batchnorm statistics really moved.
    moved = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))),
                         side.state[0]['batch_stats'],
                         variables[0]['batch_stats'])
    assert max(jax.tree.leaves(moved)) > 1e-4


def test_init_chain_accepts_the_models():
  """The engine's initialiser builds the variables describe() counts."""
  stages = models.vgg8(3, width=0.0625, dropout_rate=0.5)
  frame = jnp.zeros((2, 8, 8, 3))
  # Shapes are all this needs: trace init_chain, compile nothing.
  variables = models_testlib.variable_specs(stages, frame)
  summary = models.describe(stages, frame)
  assert [s.num_params for s in summary.stages] == [
      sum(x.size for x in jax.tree.leaves(v['params'])) for v in variables]
  assert [sorted(v) for v in variables] == (
      [['batch_stats', 'params']] * 5 + [['params']] * 3)
