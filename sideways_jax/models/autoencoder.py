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
                            impl: layers.Impl = 'auto'
                           ) -> tuple[partition.Layer, ...]:
  """The auto-encoder as named layers: conv1 ... conv5, decoder."""
  if output_activation not in ('sigmoid', 'linear'):
    raise ValueError("output_activation must be 'sigmoid' or 'linear', got "
                     f'{output_activation!r}')
  encoder = simple_cnn.conv_encoder_layers(
      channels=channels, strides=strides, impl=impl,
      input_multiple=math.prod(strides))
  decoder = blocks.ConvDecoder(
      encoder_features=tuple(channels), encoder_strides=tuple(strides),
      out_channels=out_channels, output_activation=output_activation,
      impl=impl)
  return (*encoder, partition.Layer('decoder', decoder))


def conv_autoencoder(*, out_channels: int = 3,
                     num_stages: int | None = None,
                     boundaries: Sequence[int] | None = None,
                     frame_shape: Sequence[int] = (112, 112, 3),
                     channels: Sequence[int] = simple_cnn.CHANNELS,
                     output_activation: blocks.OutputActivation = 'sigmoid',
                     impl: layers.Impl = 'auto'
                    ) -> tuple[partition.Stage, ...]:
  """The auto-encoder as a stage chain mapping [B, H, W, C] to [B, H, W, C].

  Args:
    out_channels: channels of the frames (input and reconstruction).
    num_stages: cut into this many FLOP-balanced stages (default: 6, five
      encoder stages and the decoder, as in the paper).
    boundaries: explicit cuts instead (layer indices opening a stage).
    frame_shape: (H, W, C) used only to count FLOPs for `num_stages`.
    channels: encoder widths (default the paper's; smaller ones for tests).
    output_activation: 'sigmoid' or 'linear' on the reconstruction.
    impl: convolution implementation, see `sideways_jax.layers.Conv`.

  Returns:
    The stages, bottom first.
  """
  return partition.make_stages(
      conv_autoencoder_layers(out_channels=out_channels, channels=channels,
                              output_activation=output_activation, impl=impl),
      num_stages=num_stages, boundaries=boundaries, frame_shape=frame_shape)
