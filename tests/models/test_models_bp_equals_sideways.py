"""On a constant clip Sideways equals BP through each full network.

DESIGN.md §1: with all frames equal and K >= 2D - 1, every stage sees the
same input and cotangent at every valid step, so Sideways' averaged
gradients equal the exact ones. Each model uses its paper cut (D = 6, 8, 6),
training mode (VGG-8's batchnorm on per-frame statistics) and fp32. The
tolerance is an fp32 summation-order tolerance: BP sums the K*B frames in
one batched contraction, Sideways one step at a time. A control on a clip
whose frames differ shows the comparison is not vacuous.

VGG-8 runs at 32x32: at 16x16 its conv5 map is 1x1, so batchnorm normalises
over only B = 2 values per channel, its outputs are +-1 whatever the input,
and its input gradient is a cancellation of nearly equal terms that turns
fp32 rounding into 10% differences (measured) in both algorithms alike.
"""

import functools

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


def _random_clip(num_frames, size):
  return jax.random.uniform(jax.random.key(7),
                            (num_frames, BATCH, size, size, 3))


def _labels(num_frames):
  return jnp.broadcast_to(jnp.arange(BATCH) % NUM_CLASSES,
                          (num_frames, BATCH))


# name: (builder, loss, frame size)
CASES = {
    'simple_cnn': (lambda: models.simple_cnn(NUM_CLASSES), 'xent', 16),
    'vgg8': (lambda: models.vgg8(NUM_CLASSES), 'xent', 32),
    'autoencoder': (lambda: models.conv_autoencoder(), 'mse', 16),
}


@functools.cache
def _compiled(name):
  """Stages and jitted (Sideways, BP) gradient functions of one case.

  Cached so that the control test reuses the Simple-CNN compilation.
  """
  build, loss, _ = CASES[name]
  stages = build()
  loss_fn = _xent if loss == 'xent' else _mse
  jitted = [
      jax.jit(functools.partial(fn, stages, loss_fn=loss_fn, train=True))
      for fn in (sj.sideways_grads, sj.bp_grads)]
  return stages, jitted


def _grads_pair(name, clip):
  stages, (sideways, bp) = _compiled(name)
  variables, _ = models_testlib.random_variables(stages, clip[0])
  targets = _labels(clip.shape[0]) if CASES[name][1] == 'xent' else clip
  return (stages, variables, sideways(variables, clip, targets),
          bp(variables, clip, targets))


@pytest.mark.parametrize('name', list(CASES))
def test_constant_clip_sideways_equals_bp(name):
  num_stages = len(_compiled(name)[0])
  num_frames = 2 * num_stages - 1 + 1  # one more than the minimum.
  clip = _constant_clip(num_frames, CASES[name][2])
  stages, variables, side, bp = _grads_pair(name, clip)
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


def test_frames_that_differ_break_the_equality():
  num_frames = 2 * 6 - 1 + 1
  _, _, side, bp = _grads_pair('simple_cnn', _random_clip(num_frames, 16))
  diffs = [max(float(jnp.max(jnp.abs(a - b)))
               for a, b in zip(jax.tree.leaves(gs), jax.tree.leaves(gb)))
           for gs, gb in zip(side.grads, bp.grads)]
  assert max(diffs[:-1]) > 1e-3, diffs


def test_init_chain_accepts_the_models():
  """The engine's initialiser builds the variables describe() counts."""
  stages = models.vgg8(3, width=0.0625, dropout_rate=0.5)
  frame = jnp.zeros((2, 8, 8, 3))
  # Jitted: init_chain runs eagerly, one slow op dispatch at a time.
  variables = jax.jit(lambda key: sj.init_chain(stages, key, frame))(
      jax.random.key(0))
  summary = models.describe(stages, frame)
  assert [s.num_params for s in summary.stages] == [
      sum(x.size for x in jax.tree.leaves(v['params'])) for v in variables]
  assert [sorted(v) for v in variables] == (
      [['batch_stats', 'params']] * 5 + [['params']] * 3)
