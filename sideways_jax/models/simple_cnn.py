"""Simple-CNN (paper §4.2): five 3x3 convs, global average pool, linear.

Channels (32, 64, 64, 128, 256) with stride 2 at convs 1, 3 and 5, each conv
followed by a ReLU; no normalisation. Six layers, by default six stages:
conv1 ... conv5 and the head (global average pool + linear to logits).
"""

from __future__ import annotations

from collections.abc import Sequence

from sideways_jax import layers
from sideways_jax.models import blocks
from sideways_jax.models import partition

CHANNELS = (32, 64, 64, 128, 256)
STRIDES = (2, 1, 2, 1, 2)


def conv_encoder_layers(*, channels: Sequence[int] = CHANNELS,
                        strides: Sequence[int] = STRIDES,
                        input_multiple: int = 1, impl: layers.Impl = 'auto',
                        dtype: layers.Dtype | None = None,
                        param_dtype: layers.Dtype = layers.PARAM_DTYPE
                       ) -> tuple[partition.Layer, ...]:
  """The five 3x3 conv + ReLU layers shared with the auto-encoder."""
  if len(channels) != len(strides):
    raise ValueError(f'{len(channels)} channels but {len(strides)} strides')
  return tuple(
      partition.Layer(f'conv{i + 1}', blocks.ConvLayer(
          features=c, kernel_size=3, stride=s, impl=impl, dtype=dtype,
          param_dtype=param_dtype,
          input_multiple=input_multiple if i == 0 else 1))
      for i, (c, s) in enumerate(zip(channels, strides)))


def simple_cnn_layers(num_classes: int, *, channels: Sequence[int] = CHANNELS,
                      impl: layers.Impl = 'auto',
                      dtype: layers.Dtype | None = None,
                      param_dtype: layers.Dtype = layers.PARAM_DTYPE
                     ) -> tuple[partition.Layer, ...]:
  """Simple-CNN as named layers: conv1 ... conv5, head.

  Args:
    num_classes: width of the logits.
    channels: conv widths (default the paper's; smaller ones for tests).
    impl, dtype, param_dtype: how the layers compute and store parameters,
      see `sideways_jax.models.blocks`.

  Returns:
    The six named layers, bottom first.
  """
  blocks.check_num_classes(num_classes)
  return (*conv_encoder_layers(channels=channels, impl=impl, dtype=dtype,
                               param_dtype=param_dtype),
          partition.Layer('head', blocks.GlobalPoolHead(
              num_classes, dtype=dtype, param_dtype=param_dtype)))


simple_cnn = partition.stage_builder(
    simple_cnn_layers, 'Simple-CNN as a stage chain mapping frames [B, H, W, '
    'C] to logits; by default six stages of one layer (the paper\'s cut).')
