"""The layers the paper's networks are built from.

A layer here is a small Flax module with the stage signature
`__call__(x, train) -> y` on a batch of one frame per clip, so that any
contiguous run of layers is itself a valid Sideways stage (see
`partition.Stage`). Convolutions and pooling come from `sideways_jax.layers`,
whose gradients stay fast inside the engine's scan over frames on CPU.

Batchnorm normalises over the batch of the current frame (per-frame
statistics), and uses its running averages in eval mode. Dropout draws from
the rng collection 'dropout' and is active only when `train` is true.

Every layer takes `dtype` (the compute dtype; None: promoted from input and
parameters) and `param_dtype` (where parameters are stored), with
`flax.linen`'s meaning, and hands them to every submodule it builds: params
fp32 and `dtype=jnp.bfloat16` computes in bf16.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import flax.linen as nn
import jax
import jax.numpy as jnp

from sideways_jax import layers

OutputActivation = Literal['sigmoid', 'linear']


def check_num_classes(num_classes: int) -> None:
  """A ValueError unless a classifier has at least one logit."""
  if num_classes < 1:
    raise ValueError(f'num_classes must be >= 1, got {num_classes}')


class ConvLayer(nn.Module):
  """Conv -> (batchnorm) -> ReLU -> (max-pool), NHWC.

  Attributes:
    features: output channels of the convolution.
    kernel_size: square kernel side.
    stride: convolution stride (both spatial axes).
    batch_norm: insert batchnorm between the convolution and the ReLU. The
      convolution then has no bias: batchnorm subtracts the batch mean, so a
      bias would get an exactly zero gradient.
    pool_window: side of a max-pool after the ReLU; 0 for no pooling.
    pool_stride: stride of that max-pool.
    bn_momentum: decay of batchnorm's running averages.
    input_multiple: when > 1, the input's height and width must be multiples
      of it (a model whose decoder mirrors this encoder needs this to give
      back the input's shape); checked at trace time.
    impl: convolution implementation, see `sideways_jax.layers.Conv`.
    dtype: compute dtype (see the module docstring).
    param_dtype: parameter dtype.
  """
  features: int
  kernel_size: int
  stride: int = 1
  batch_norm: bool = False
  pool_window: int = 0
  pool_stride: int = 2
  bn_momentum: float = 0.9
  input_multiple: int = 1
  impl: layers.Impl = 'auto'
  dtype: layers.Dtype | None = None
  param_dtype: layers.Dtype = layers.PARAM_DTYPE

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    if self.input_multiple > 1 and (x.shape[1] % self.input_multiple
                                    or x.shape[2] % self.input_multiple):
      raise ValueError(
          f'frame height and width must be multiples of '
          f'{self.input_multiple}, got {x.shape[1]}x{x.shape[2]}')
    k, s = self.kernel_size, self.stride
    x = layers.Conv(self.features, (k, k), strides=(s, s), padding='SAME',
                    use_bias=not self.batch_norm, impl=self.impl,
                    dtype=self.dtype, param_dtype=self.param_dtype,
                    name='conv')(x)
    if self.batch_norm:
      x = nn.BatchNorm(use_running_average=not train,
                       momentum=self.bn_momentum, dtype=self.dtype,
                       param_dtype=self.param_dtype, name='bn')(x)
    x = nn.relu(x)
    if self.pool_window:
      # SAME pooling (like Caffe's ceil-mode pooling) keeps tiny frames from
      # collapsing to zero size: a 1x1 map stays 1x1.
      w, ps = self.pool_window, self.pool_stride
      x = layers.max_pool(x, (w, w), (ps, ps), padding='SAME', impl=self.impl)
    return x


class DenseLayer(nn.Module):
  """(Flatten) -> Dense -> (ReLU) -> (dropout).

  Attributes:
    features: output width.
    relu: apply a ReLU after the dense layer (False for logits).
    dropout_rate: probability of dropping a unit in training; 0 disables it.
    flatten: flatten [B, ...] to [B, -1] first (the first FC layer after the
      convolutions).
    dtype: compute dtype (see the module docstring).
    param_dtype: parameter dtype.
  """
  features: int
  relu: bool = True
  dropout_rate: float = 0.0
  flatten: bool = False
  dtype: layers.Dtype | None = None
  param_dtype: layers.Dtype = layers.PARAM_DTYPE

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    if self.flatten:
      x = x.reshape(x.shape[0], -1)
    x = nn.Dense(self.features, dtype=self.dtype,
                 param_dtype=self.param_dtype, name='dense')(x)
    if self.relu:
      x = nn.relu(x)
    if self.dropout_rate > 0.0:
      x = nn.Dropout(self.dropout_rate, deterministic=not train,
                     name='dropout')(x)
    return x


class GlobalPoolHead(nn.Module):
  """Global average pool over H and W, then a linear layer to logits.

  Attributes:
    num_classes: width of the logits.
    dtype: compute dtype (see the module docstring).
    param_dtype: parameter dtype.
  """
  num_classes: int
  dtype: layers.Dtype | None = None
  param_dtype: layers.Dtype = layers.PARAM_DTYPE

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    del train  # Nothing here behaves differently in training.
    x = jnp.mean(x, axis=(1, 2))  # [B, C]
    return nn.Dense(self.num_classes, dtype=self.dtype,
                    param_dtype=self.param_dtype, name='dense')(x)


class ConvDecoder(nn.Module):
  """Transposed convolutions mirroring a conv encoder, as one layer.

  Decoder layer j undoes encoder conv D-j: it maps that conv's output width
  back to its input width with the same kernel and stride (SAME padding, so a
  stride-2 layer exactly doubles H and W). ReLU follows every layer but the
  last, whose activation is `output_activation`: 'sigmoid' for frames scaled
  to [0, 1], 'linear' for standardised frames.

  Attributes:
    encoder_features: output channels of the encoder convs, bottom first.
    encoder_strides: their strides.
    out_channels: channels of the reconstructed frame (the encoder's input).
    kernel_size: square kernel side of every transposed conv.
    output_activation: 'sigmoid' or 'linear'.
    impl: convolution implementation, see `sideways_jax.layers.ConvTranspose`.
    dtype: compute dtype (see the module docstring).
    param_dtype: parameter dtype.
  """
  encoder_features: Sequence[int]
  encoder_strides: Sequence[int]
  out_channels: int = 3
  kernel_size: int = 3
  output_activation: OutputActivation = 'sigmoid'
  impl: layers.Impl = 'auto'
  dtype: layers.Dtype | None = None
  param_dtype: layers.Dtype = layers.PARAM_DTYPE

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    del train
    if self.output_activation not in ('sigmoid', 'linear'):
      raise ValueError("output_activation must be 'sigmoid' or 'linear', "
                       f'got {self.output_activation!r}')
    if len(self.encoder_features) != len(self.encoder_strides):
      raise ValueError('encoder_features and encoder_strides differ in length')
    widths = (self.out_channels, *self.encoder_features[:-1])
    k = self.kernel_size
    depth = len(widths)
    for j, i in enumerate(reversed(range(depth))):
      s = self.encoder_strides[i]
      x = layers.ConvTranspose(widths[i], (k, k), strides=(s, s),
                               padding='SAME', impl=self.impl,
                               dtype=self.dtype, param_dtype=self.param_dtype,
                               name=f'deconv{j + 1}')(x)
      if j < depth - 1:
        x = nn.relu(x)
    if self.output_activation == 'sigmoid':
      x = nn.sigmoid(x)
    return x
