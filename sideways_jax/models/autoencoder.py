"""Convolutional auto-encoder (paper §4.2, auto-encoding experiments).

The Simple-CNN conv encoder (five 3x3 conv + ReLU layers, channels 32, 64,
64, 128, 256, stride 2 at convs 1, 3, 5) followed by the mirrored decoder:
five 3x3 transposed convs, widths 128, 64, 64, 32 and the frame's channels,
strides 2, 1, 2, 1, 2, ReLU between them. The decoder is ONE layer, hence
one stage trained by exact backprop inside it, as in the paper: six stages by
default. It returns a frame of the input's shape, so H and W must be
multiples of 8 (the product of the encoder's strides; checked at trace
time). The output goes through a sigmoid by default (frames scaled to
[0, 1]); 'linear' suits standardised frames.
"""

from __future__ import annotations

from collections.abc import Sequence
import math

from sideways_jax import layers
from sideways_jax.models import blocks
from sideways_jax.models import partition
from sideways_jax.models import simple_cnn


def conv_autoencoder_layers(*, out_channels: int = 3,
                            channels: Sequence[int] = simple_cnn.CHANNELS,
                            strides: Sequence[int] = simple_cnn.STRIDES,
                            output_activation: blocks.OutputActivation =
                            'sigmoid',
                            impl: layers.Impl = 'auto',
                            dtype: layers.Dtype | None = None,
                            param_dtype: layers.Dtype = layers.PARAM_DTYPE
                           ) -> tuple[partition.Layer, ...]:
  """The auto-encoder as named layers: conv1 ... conv5, decoder.

  Args:
    out_channels: channels of the frames (input and reconstruction).
    channels: encoder widths (default the paper's; smaller ones for tests).
    strides: encoder strides; the decoder mirrors them.
    output_activation: 'sigmoid' or 'linear' on the reconstruction.
    impl, dtype, param_dtype: how the layers compute and store parameters,
      see `sideways_jax.models.blocks`.

  Returns:
    The six named layers, bottom first.
  """
  if output_activation not in ('sigmoid', 'linear'):
    raise ValueError("output_activation must be 'sigmoid' or 'linear', got "
                     f'{output_activation!r}')
  precision = dict(impl=impl, dtype=dtype, param_dtype=param_dtype)
  encoder = simple_cnn.conv_encoder_layers(
      channels=channels, strides=strides, input_multiple=math.prod(strides),
      **precision)
  decoder = blocks.ConvDecoder(
      encoder_features=tuple(channels), encoder_strides=tuple(strides),
      out_channels=out_channels, output_activation=output_activation,
      **precision)
  return (*encoder, partition.Layer('decoder', decoder))


conv_autoencoder = partition.stage_builder(
    conv_autoencoder_layers, 'The auto-encoder as a stage chain mapping [B, '
    'H, W, C] to [B, H, W, C]; by default six stages: five encoder layers '
    'and the decoder (the paper\'s cut).')
