"""VGG-8 (paper §4.2): the RGB stream of the two-stream network.

The CNN-M-2048 layout with batchnorm between every conv and its ReLU (in place
of the original local response normalisation):

  conv1 7x7/96 stride 2, BN, ReLU, max-pool 3x3/2
  conv2 5x5/256 stride 2, BN, ReLU, max-pool 3x3/2
  conv3 3x3/512, BN, ReLU
  conv4 3x3/512, BN, ReLU
  conv5 3x3/512, BN, ReLU, max-pool 3x3/2
  fc6 4096, ReLU, dropout;  fc7 2048, ReLU, dropout;  fc8 num_classes

Eight layers, by default eight stages. Convs and pools use SAME padding,
unlike Caffe's conv1 (pad 0) and conv2 (pad 1): then any frame of at least
1x1 works (112x112 gives a 4x4x512 map before fc6, 32x32 gives 1x1x512),
where VALID pooling would shrink tiny frames to nothing. Caffe's pooling
rounds up, as SAME does. Convs before batchnorm have no bias (batchnorm's
shift replaces it).
"""

from __future__ import annotations


from sideways_jax import layers
from sideways_jax.models import blocks
from sideways_jax.models import partition

# (features, kernel, stride, pool after it)
_CONVS = ((96, 7, 2, True), (256, 5, 2, True), (512, 3, 1, False),
          (512, 3, 1, False), (512, 3, 1, True))
_FCS = (4096, 2048)


def vgg8_layers(num_classes: int, *, dropout_rate: float = 0.0,
                width: float = 1.0, bn_momentum: float = 0.9,
                impl: layers.Impl = 'auto', dtype: layers.Dtype | None = None,
                param_dtype: layers.Dtype = layers.PARAM_DTYPE
               ) -> tuple[partition.Layer, ...]:
  """VGG-8 as named layers: conv1 ... conv5, fc6, fc7, fc8.

  Args:
    num_classes: width of the logits.
    dropout_rate: dropout after fc6 and fc7 in training (paper's best UCF101
      result: 0.9); 0 disables it.
    width: multiplies every conv and hidden FC width (1.0 is the paper's
      network; smaller values are for fast tests).
    bn_momentum: decay of batchnorm's running averages.
    impl, dtype, param_dtype: how the layers compute and store parameters,
      see `sideways_jax.models.blocks`.

  Returns:
    The eight named layers, bottom first.
  """
  blocks.check_num_classes(num_classes)
  if not 0.0 <= dropout_rate < 1.0:
    raise ValueError(f'dropout_rate must be in [0, 1), got {dropout_rate}')
  if width <= 0:
    raise ValueError(f'width must be positive, got {width}')
  scale = lambda n: max(1, round(n * width))
  precision = dict(dtype=dtype, param_dtype=param_dtype)
  convs = tuple(
      partition.Layer(f'conv{i + 1}', blocks.ConvLayer(
          features=scale(c), kernel_size=k, stride=s, batch_norm=True,
          pool_window=3 if pool else 0, pool_stride=2,
          bn_momentum=bn_momentum, impl=impl, **precision))
      for i, (c, k, s, pool) in enumerate(_CONVS))
  fcs = tuple(
      partition.Layer(f'fc{i + 6}', blocks.DenseLayer(
          scale(f), relu=True, dropout_rate=dropout_rate, flatten=i == 0,
          **precision))
      for i, f in enumerate(_FCS))
  head = partition.Layer('fc8', blocks.DenseLayer(num_classes, relu=False,
                                                  **precision))
  return (*convs, *fcs, head)


vgg8 = partition.stage_builder(
    vgg8_layers, 'VGG-8 as a stage chain mapping frames [B, H, W, C] to '
    'logits; by default eight stages of one layer (the paper\'s cut).')
