"""Output shapes and parameter counts of the paper's networks.

Parameter counts are written out by hand from the paper's architectures
(the layer lists in each model's module docstring), so a wrong width,
kernel, bias or missing layer shows up. Shapes and counts come from
`jax.eval_shape`: nothing is compiled.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sideways_jax as sj
from sideways_jax import models
import models_testlib


def _shapes_and_counts(stages, frame):
  """Per-stage output shapes (with batch) and 'params' entry counts."""
  x = jax.ShapeDtypeStruct(frame, jnp.float32)
  variables = models_testlib.variable_specs(stages, x)
  shapes = [s.shape for s in sj.output_shapes(stages, variables, x)]
  counts = [sum(int(np.prod(p.shape)) for p in jax.tree.leaves(v['params']))
            for v in variables]
  return shapes, counts


_BN = lambda c: 2 * c  # scale + bias; running stats are not params.


@pytest.mark.parametrize('build, frame, shapes, counts', [
    # Stride 2 at convs 1, 3, 5 with SAME padding: 16 -> 8 -> 8 -> 4 -> 4 -> 2.
    (lambda: models.simple_cnn(5), (2, 16, 16, 3),
     [(2, 8, 8, 32), (2, 8, 8, 64), (2, 4, 4, 64), (2, 4, 4, 128),
      (2, 2, 2, 256), (2, 5)],
     [3 * 3 * 3 * 32 + 32, 3 * 3 * 32 * 64 + 64, 3 * 3 * 64 * 64 + 64,
      3 * 3 * 64 * 128 + 128, 3 * 3 * 128 * 256 + 256, 256 * 5 + 5]),
    # conv1 s2 -> 16, pool -> 8; conv2 s2 -> 4, pool -> 2; conv3-5 keep 2;
    # pool -> 1 (SAME padding keeps tiny maps alive). Convs before batchnorm
    # have no bias.
    (lambda: models.vgg8(7), (2, 32, 32, 3),
     [(2, 8, 8, 96), (2, 2, 2, 256), (2, 2, 2, 512), (2, 2, 2, 512),
      (2, 1, 1, 512), (2, 4096), (2, 2048), (2, 7)],
     [7 * 7 * 3 * 96 + _BN(96), 5 * 5 * 96 * 256 + _BN(256),
      3 * 3 * 256 * 512 + _BN(512), 3 * 3 * 512 * 512 + _BN(512),
      3 * 3 * 512 * 512 + _BN(512), 1 * 1 * 512 * 4096 + 4096,
      4096 * 2048 + 2048, 2048 * 7 + 7]),
])
def test_shapes_and_params(build, frame, shapes, counts):
  stages = build()
  assert len(stages) == len(shapes)  # One layer per stage by default.
  assert _shapes_and_counts(stages, frame) == (shapes, counts)


def test_simple_cnn_odd_resolution():
  shapes, _ = _shapes_and_counts(models.simple_cnn(3), (1, 15, 9, 3))
  assert shapes[4] == (1, 2, 2, 256)  # ceil(15/8) = 2, ceil(9/8) = 2.
  assert shapes[-1] == (1, 3)


def test_vgg8_at_112_flattens_4x4x512():
  shapes, counts = _shapes_and_counts(models.vgg8(101), (1, 112, 112, 3))
  assert shapes == [(1, 28, 28, 96), (1, 7, 7, 256), (1, 7, 7, 512),
                    (1, 7, 7, 512), (1, 4, 4, 512), (1, 4096), (1, 2048),
                    (1, 101)]
  assert counts[5] == 4 * 4 * 512 * 4096 + 4096


def test_vgg8_width_and_batch_stats():
  stages = models.vgg8(3, width=0.125)
  (variables,) = models_testlib.variable_specs(
      stages[1:2], jax.ShapeDtypeStruct((2, 8, 8, 12), jnp.float32))
  assert variables['params']['conv2']['conv']['kernel'].shape == (5, 5, 12, 32)
  stats = variables['batch_stats']['conv2']['bn']
  assert stats['mean'].shape == stats['var'].shape == (32,)


def test_vgg8_tiny_frame_does_not_collapse():
  shapes, _ = _shapes_and_counts(models.vgg8(4, width=0.125), (1, 4, 4, 3))
  assert shapes[4] == (1, 1, 1, 64)
  assert shapes[-1] == (1, 4)


def test_autoencoder_shapes_and_params():
  stages = models.conv_autoencoder()
  assert len(stages) == 6
  shapes, counts = _shapes_and_counts(stages, (2, 16, 24, 3))
  assert shapes == [(2, 8, 12, 32), (2, 8, 12, 64), (2, 4, 6, 64),
                    (2, 4, 6, 128), (2, 2, 3, 256), (2, 16, 24, 3)]
  encoder = [3 * 3 * 3 * 32 + 32, 3 * 3 * 32 * 64 + 64, 3 * 3 * 64 * 64 + 64,
             3 * 3 * 64 * 128 + 128, 3 * 3 * 128 * 256 + 256]
  decoder = (3 * 3 * 256 * 128 + 128 + 3 * 3 * 128 * 64 + 64
             + 3 * 3 * 64 * 64 + 64 + 3 * 3 * 64 * 32 + 32
             + 3 * 3 * 32 * 3 + 3)
  assert counts == [*encoder, decoder]


def test_autoencoder_output_activation():
  frame = 5 * jax.random.normal(jax.random.key(1), (2, 8, 8, 3))
  outs = {}
  for act in ('sigmoid', 'linear'):
    stages = models.conv_autoencoder(channels=(4, 4, 4, 4, 4), impl='xla',
                                     output_activation=act)
    variables = models_testlib.random_variables(stages, frame)
    outs[act] = models_testlib.chain_apply(stages, variables, frame)
  assert outs['sigmoid'].shape == outs['linear'].shape == frame.shape
  assert float(jnp.min(outs['sigmoid'])) > 0.0
  assert float(jnp.max(outs['sigmoid'])) < 1.0
  assert float(jnp.min(outs['linear'])) < 0.0  # no squashing.
  np.testing.assert_allclose(outs['sigmoid'], jax.nn.sigmoid(outs['linear']),
                             rtol=1e-5, atol=1e-6)


def test_autoencoder_rejects_frames_it_cannot_mirror():
  with pytest.raises(ValueError, match='multiples of 8'):
    _shapes_and_counts(models.conv_autoencoder(), (1, 12, 16, 3))
  with pytest.raises(ValueError, match='output_activation'):
    models.conv_autoencoder(output_activation='tanh')


def test_bad_model_arguments():
  with pytest.raises(ValueError, match='num_classes'):
    models.simple_cnn(0)
  with pytest.raises(ValueError, match='dropout_rate'):
    models.vgg8(3, dropout_rate=1.0)
  with pytest.raises(ValueError, match='width'):
    models.vgg8(3, width=0.0)
