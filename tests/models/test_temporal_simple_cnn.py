"""The temporal Simple-CNN: its stages, its errors, Sideways = BP when still.

The engine's invariants for temporal stages are tested at tight tolerance
in tests/engine/test_temporal.py; here the model runs through the engine
once, with narrow widths and XLA's convolutions (quick to compile).
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sideways_jax as sj
from sideways_jax import temporal
from sideways_jax.models import registry
from sideways_jax.models import temporal_blocks
import models_testlib

NARROW = (4, 8, 8, 16, 16)
BATCH, NUM_CLASSES, SIZE = 2, 5, 16


def _build(**kwargs):
  return registry.build_model('temporal_simple_cnn', 'classifier',
                              NUM_CLASSES, num_stages=6,
                              frame_shape=(SIZE, SIZE, 3), channels=NARROW,
                              impl='xla', **kwargs)


def test_stages_and_errors():
  stages = _build()
  assert [temporal.is_temporal(s) for s in stages] == [
      True, False, True, False, False, False]
  assert temporal.has_window(stages[0]) and temporal.can_batch(stages[2])
  assert not any(temporal.is_temporal(s) for s in _build(pixel_window=1,
                                                         upper=()))
  with pytest.raises(ValueError, match='6 stages, one layer each'):
    registry.build_model('temporal_simple_cnn', 'classifier', NUM_CLASSES,
                         num_stages=3)
  with pytest.raises(ValueError, match=r"unknown convs \['conv9'\]"):
    _build(upper=('conv9',))


def test_identity_window_starts_as_its_frame_conv():
  block = temporal_blocks.CausalConv(6, window=3, temporal_init='identity',
                                     impl='xla')
  x = jax.random.normal(jax.random.key(0), (BATCH, 8, 8, 4))
  carry = temporal.zero_carry(block, x)
  variables = block.init(jax.random.key(1), x, carry, train=False)
  y, carry = block.apply(variables, x, carry, train=False)
  x2 = x[:, ::-1]
  y2, _ = block.apply(variables, x2, carry, train=False)
  spatial = variables['params']['spatial']
  conv = jax.lax.conv_general_dilated(
      x2, spatial['kernel'], (1, 1), 'SAME',
      dimension_numbers=('NHWC', 'HWIO', 'NHWC')) + spatial['bias']
  np.testing.assert_allclose(y2, jax.nn.relu(conv), rtol=1e-5, atol=1e-6)
  assert float(jnp.abs(y - y2).max()) > 1e-3


def test_constant_clip_sideways_equals_bp_through_time():
  stages = _build()
  frame = jax.random.uniform(jax.random.key(0), (BATCH, SIZE, SIZE, 3))
  # Random temporal kernels everywhere, so that summing window cotangents
  # matters (the identity start has zeros on earlier frames).
  variables = models_testlib.random_variables(stages, frame)
  num_frames = sj.min_clip_length(len(stages))
  clip = jnp.broadcast_to(frame, (num_frames, *frame.shape))
  labels = jnp.broadcast_to(jnp.arange(BATCH) % NUM_CLASSES,
                            (num_frames, BATCH))
  loss = lambda y, t: optax.softmax_cross_entropy_with_integer_labels(
      y, t).mean()
  side, bp = jax.jit(lambda v: tuple(
      sj.grad_fn(name)(stages, v, clip, labels, loss)
      for name in ('sideways', 'bp')))(variables)
  chex.assert_trees_all_close(side.grads, bp.grads, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(side.loss, bp.loss, rtol=1e-5)
