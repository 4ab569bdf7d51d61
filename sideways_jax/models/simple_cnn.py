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
                        input_multiple: int = 1,
                        impl: layers.Impl = 'auto'
                       ) -> tuple[partition.Layer, ...]:
  """The five 3x3 conv + ReLU layers shared with the auto-encoder."""
  if len(channels) != len(strides):
    raise ValueError(f'{len(channels)} channels but {len(strides)} strides')
  return tuple(
      partition.Layer(f'conv{i + 1}', blocks.ConvLayer(
          features=c, kernel_size=3, stride=s, impl=impl,
          input_multiple=input_multiple if i == 0 else 1))
      for i, (c, s) in enumerate(zip(channels, strides)))


def simple_cnn_layers(num_classes: int, *, channels: Sequence[int] = CHANNELS,
                      impl: layers.Impl = 'auto'
                     ) -> tuple[partition.Layer, ...]:
  """Simple-CNN as named layers: conv1 ... conv5, head."""
  if num_classes < 1:
    raise ValueError(f'num_classes must be >= 1, got {num_classes}')
  return (*conv_encoder_layers(channels=channels, impl=impl),
          partition.Layer('head', blocks.GlobalPoolHead(num_classes)))


def simple_cnn(num_classes: int, *, num_stages: int | None = None,
               boundaries: Sequence[int] | None = None,
               frame_shape: Sequence[int] = (112, 112, 3),
               channels: Sequence[int] = CHANNELS,
               impl: layers.Impl = 'auto') -> tuple[partition.Stage, ...]:
  """Simple-CNN as a stage chain mapping frames [B, H, W, C] to logits.

  Args:
    num_classes: width of the logits.
    num_stages: cut into this many FLOP-balanced stages (default: 6, one
      layer per stage as in the paper).
    boundaries: explicit cuts instead (layer indices opening a stage).
    frame_shape: (H, W, C) used only to count FLOPs for `num_stages`.
    channels: conv widths (default the paper's; smaller ones for tests).
    impl: convolution implementation, see `sideways_jax.layers.Conv`.

  Returns:
    The stages, bottom first.
  """
  return partition.make_stages(
      simple_cnn_layers(num_classes, channels=channels, impl=impl),
      num_stages=num_stages, boundaries=boundaries, frame_shape=frame_shape)
