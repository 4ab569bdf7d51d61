"""Temporal Simple-CNN: Simple-CNN whose stages may look across frames.

The six stages of `simple_cnn` (conv1 … conv5, head), with the same widths
and strides, where

* conv1 is a causal (2+1)D window on the pixels (`CausalConv` with
  `pixel_window` frames, random temporal kernel): what makes motion
  visible to a model that otherwise sees one frame;
* the convs named in `upper` are (2+1)D windows on features of `window`
  frames, initialised to be their frame conv (`temporal_init='identity'`),
  so that time enters higher up only as training finds it useful (random
  temporal kernels on features train poorly without normalisation);
* the other convs are frame convs, as in `simple_cnn`.

Every stage is one layer, so a temporal layer's carry stays in its stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn

from sideways_jax import layers
from sideways_jax.models import blocks
from sideways_jax.models import simple_cnn
from sideways_jax.models import temporal_blocks

NUM_STAGES = len(simple_cnn.CHANNELS) + 1
CONV_NAMES = tuple(f'conv{i + 1}' for i in range(len(simple_cnn.CHANNELS)))


def temporal_simple_cnn(num_classes: int, *,
                        num_stages: int | None = None,
                        frame_shape: Sequence[int] | None = None,
                        channels: Sequence[int] = simple_cnn.CHANNELS,
                        pixel_window: int = 3,
                        pixel_mid: int | None = None,
                        pixel_init: str = 'difference',
                        upper: Sequence[str] = ('conv3',),
                        window: int = 3,
                        impl: layers.Impl = 'auto',
                        dtype: layers.Dtype | None = None,
                        param_dtype: layers.Dtype = layers.PARAM_DTYPE
                        ) -> tuple[nn.Module, ...]:
  """The temporal Simple-CNN as six stages mapping frames to logits.

  Args:
    num_classes: width of the logits.
    num_stages: None or 6 (one layer per stage).
    frame_shape: unused (the cut is fixed).
    channels: conv widths, bottom first (5 of them).
    pixel_window: frames conv1 sees (1: a frame conv).
    pixel_mid: conv1's channels between its spatial and temporal kernels
      (linear in between: a 3D conv of that rank); None: conv1's width.
    pixel_init: the temporal kernel's start ('difference', 'identity' or
      'lecun', see `CausalConv.temporal_init`).
    upper: names of the convs above conv1 ('conv2' … 'conv5') that are
      feature windows; () for none.
    window: frames each of those sees.
    impl, dtype, param_dtype: see `sideways_jax.models.blocks`.

  Returns:
    Six stages, bottom first.

  Raises:
    ValueError: another stage count, a wrong number of widths, or an
      unknown name in `upper`.
  """
  del frame_shape
  blocks.check_num_classes(num_classes)
  if num_stages not in (None, NUM_STAGES):
    raise ValueError(
        f'temporal_simple_cnn has {NUM_STAGES} stages, one layer each (a '
        f'temporal layer keeps its carry in its stage); got num_stages='
        f'{num_stages}')
  if len(channels) != len(CONV_NAMES):
    raise ValueError(f'channels needs {len(CONV_NAMES)} widths, got '
                     f'{tuple(channels)}')
  unknown = sorted(set(upper) - set(CONV_NAMES[1:]))
  if unknown:
    raise ValueError(f'upper names unknown convs {unknown}: choose among '
                     f'{CONV_NAMES[1:]}')
  common: dict[str, Any] = dict(impl=impl, dtype=dtype,
                                param_dtype=param_dtype)
  stages = []
  for i, (name, width, stride) in enumerate(zip(CONV_NAMES, channels,
                                                simple_cnn.STRIDES)):
    if i == 0 and pixel_window > 1:
      stage = temporal_blocks.CausalConv(width, window=pixel_window,
                                         stride=stride, mid_features=pixel_mid,
                                         mid_relu=False,
                                         temporal_init=pixel_init, **common)
    elif name in upper:
      stage = temporal_blocks.CausalConv(width, window=window, stride=stride,
                                         temporal_init='identity', **common)
    else:
      stage = blocks.ConvLayer(features=width, kernel_size=3, stride=stride,
                               **common)
    stages.append(stage)
  stages.append(blocks.GlobalPoolHead(num_classes, dtype=dtype,
                                      param_dtype=param_dtype))
  return tuple(stages)
