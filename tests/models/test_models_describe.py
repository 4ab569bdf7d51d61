"""describe(): params, output shapes and FLOPs per frame, checked by hand.

Convention under test: FLOPs = 2 x multiply-adds of convs, transposed convs
(2*H_in*W_in*k*k*C_in*C_out) and dense layers; nothing else counts.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sideways_jax import models
import models_testlib

CHANNELS = (4, 8, 8, 16, 16)


def test_simple_cnn_flops_by_hand():
  stages = models.simple_cnn(5, channels=CHANNELS)
  summary = models.describe(stages, jnp.zeros((2, 16, 16, 3)))
  expected = [
      2 * (8 * 8 * 4) * (3 * 3 * 3),     # conv1: 16 -> 8, 3 -> 4 channels
      2 * (8 * 8 * 8) * (3 * 3 * 4),     # conv2: 8x8, 4 -> 8
      2 * (4 * 4 * 8) * (3 * 3 * 8),     # conv3: 8 -> 4, 8 -> 8
      2 * (4 * 4 * 16) * (3 * 3 * 8),    # conv4: 4x4, 8 -> 16
      2 * (2 * 2 * 16) * (3 * 3 * 16),   # conv5: 4 -> 2, 16 -> 16
      2 * 16 * 5,                        # head: dense 16 -> 5
  ]
  assert [s.flops for s in summary.stages] == expected
  assert summary.total_flops == sum(expected)
  assert summary.balance == pytest.approx(max(expected) / np.mean(expected))
  assert [s.output_shape for s in summary.stages] == [
      (8, 8, 4), (8, 8, 8), (4, 4, 8), (4, 4, 16), (2, 2, 16), (5,)]
  assert [s.num_params for s in summary.stages] == [
      27 * 4 + 4, 36 * 8 + 8, 72 * 8 + 8, 72 * 16 + 16, 144 * 16 + 16,
      16 * 5 + 5]
  assert [s.layers for s in summary.stages] == [
      ('conv1',), ('conv2',), ('conv3',), ('conv4',), ('conv5',), ('head',)]
  assert summary.input_shape == (16, 16, 3)


def test_flops_are_per_frame_and_grouping_adds_them_up():
  stages = models.simple_cnn(5, channels=CHANNELS)
  one = models.describe(stages, jax.ShapeDtypeStruct((1, 16, 16, 3),
                                                     jnp.float32))
  four = models.describe(stages, jnp.zeros((4, 16, 16, 3)))
  assert one == four
  two = models.describe(models.simple_cnn(5, channels=CHANNELS,
                                          boundaries=(4,)),
                        jnp.zeros((1, 16, 16, 3)))
  flops = [s.flops for s in one.stages]
  params = [s.num_params for s in one.stages]
  assert [s.flops for s in two.stages] == [sum(flops[:4]), sum(flops[4:])]
  assert [s.num_params for s in two.stages] == [sum(params[:4]),
                                                sum(params[4:])]
  assert two.stages[0].output_shape == (4, 4, 16)
  rows = models.describe_layers(models.simple_cnn_layers(5, channels=CHANNELS),
                                jnp.zeros((1, 16, 16, 3)))
  assert [r.flops for r in rows] == flops
  assert [r.name for r in rows] == ['conv1', 'conv2', 'conv3', 'conv4',
                                    'conv5', 'head']


def test_transposed_conv_and_dense_flops_by_hand():
  ae = models.describe(models.conv_autoencoder(channels=CHANNELS),
                       jnp.zeros((1, 16, 16, 3)))
  # Decoder input 2x2x16; transposed convs mirror conv5 ... conv1.
  decoder = (2 * (2 * 2) * 9 * 16 * 16     # 2x2 -> 4x4, 16 -> 16
             + 2 * (4 * 4) * 9 * 16 * 8    # 4x4, 16 -> 8
             + 2 * (4 * 4) * 9 * 8 * 8     # 4x4 -> 8x8, 8 -> 8
             + 2 * (8 * 8) * 9 * 8 * 4     # 8x8, 8 -> 4
             + 2 * (8 * 8) * 9 * 4 * 3)    # 8x8 -> 16x16, 4 -> 3
  assert ae.stages[-1].flops == decoder
  assert ae.stages[-1].output_shape == (16, 16, 3)

  vgg = models.describe(models.vgg8(3, width=0.125), jnp.zeros((1, 32, 32, 3)))
  # width 0.125: convs 12, 32, 64, 64, 64; fc 512, 256. conv5 map is 1x1x64.
  assert vgg.stages[0].flops == 2 * (16 * 16 * 12) * (7 * 7 * 3)
  assert [s.flops for s in vgg.stages[5:]] == [
      2 * 64 * 512, 2 * 512 * 256, 2 * 256 * 3]


def test_params_from_variables_and_table():
  stages = models.vgg8(3, width=0.125)
  frame = jnp.zeros((2, 16, 16, 3))
  variables = models_testlib.random_variables(stages, frame)
  from_shapes = models.describe(stages, frame)
  from_vars = models.describe(stages, frame, variables)
  assert from_shapes == from_vars
  # batch_stats are state, not parameters.
  assert from_vars.stages[0].num_params == 7 * 7 * 3 * 12 + 2 * 12
  table = str(from_vars)
  for name in ('conv1', 'fc6', 'fc8', 'balance', 'MFLOPs/frame'):
    assert name in table
  assert f'{from_vars.balance:.3f}' in table
  assert len(table.splitlines()) == 1 + 1 + 8 + 1 + 1
  with pytest.raises(ValueError, match='variables'):
    models.describe(stages, frame, variables[:-1])
