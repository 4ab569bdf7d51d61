"""Temporal stages: a causal (2+1)D window and a convolutional GRU cell.

Both follow the temporal-stage interface of `sideways_jax.temporal`
(`init_carry(x)`, `__call__(x, carry, train) -> (y, carry)`), NHWC, with
the scan-friendly convolutions of `sideways_jax.layers`:

* `CausalConv` keeps a window of its last T inputs (the carry holds the
  T - 1 earlier ones): a spatial conv on each of them, a ReLU, then a
  temporal kernel of length T across them. The carry holds inputs, not
  features, so a stage's own parameters see the whole window in one step
  and its gradient is exact; only what flows to the stage below is
  approximated under Sideways (the window-cotangent rule).
* `ConvGRU` keeps a hidden state: a recurrent carry, which no algorithm
  here can batch over frames and whose cotangent Sideways drops.
"""

from __future__ import annotations

from typing import Literal

import flax.linen as nn
import jax
import jax.numpy as jnp

from sideways_jax import layers
from sideways_jax import temporal

TemporalInit = Literal['identity', 'difference', 'lecun']


def _structured_in_time(kind: str) -> nn.initializers.Initializer:
  """A temporal kernel [T, C, C] that starts as a fixed map of frames.

  'identity': every channel passes the current frame through (the block
  starts as its frame conv). 'difference': the first half does that and
  the second half takes the current frame minus the oldest one, so the
  block sees motion from the start.
  """
  def init(key, shape, dtype=jnp.float32):
    del key
    window, mid, features = shape
    if mid != features:
      raise ValueError(f'temporal_init={kind!r} needs mid_features == '
                       f'features, got {mid} and {features}')
    eye = jnp.eye(features, dtype=dtype)
    kernel = jnp.zeros(shape, dtype).at[window - 1].set(eye)
    if kind == 'difference' and window > 1:
      moving = eye * (jnp.arange(features) >= features // 2)
      kernel = kernel.at[0].add(-moving)
    return kernel
  return init


class CausalConv(nn.Module):
  """Causal (2+1)D conv over the stage's last `window` inputs, then ReLU.

  y^t = relu(Σ_k g(conv(x^{t-k})) · W_k + b), k = 0 … T-1, with g a ReLU
  (`mid_relu`) or the identity (then the block is a 3D conv of rank
  `mid_features`), and the first input repeated before the clip's first
  frame (see `temporal.window_push`).

  Attributes:
    features: output channels.
    window: T, the number of inputs the block sees (the current one and
      T - 1 earlier ones).
    kernel_size: square side of the spatial conv.
    stride: its stride.
    mid_features: channels between the spatial and the temporal kernel
      (None: `features`).
    mid_relu: a ReLU between the spatial and the temporal kernel.
    temporal_init: 'lecun' (random); 'identity': W_{T-1} = I and the
      earlier W_k = 0, so that at initialisation the block is a frame conv
      + ReLU and time enters only as training finds it useful; or
      'difference': half the channels as 'identity', the other half the
      current frame's conv minus the oldest one's (motion from the start).
    impl, dtype, param_dtype: see `sideways_jax.layers.Conv`.
  """
  features: int
  window: int = 3
  kernel_size: int = 3
  stride: int = 1
  mid_features: int | None = None
  mid_relu: bool = True
  temporal_init: TemporalInit = 'lecun'
  impl: layers.Impl = 'auto'
  dtype: layers.Dtype | None = None
  param_dtype: layers.Dtype = layers.PARAM_DTYPE

  def init_carry(self, x: jax.ShapeDtypeStruct) -> temporal.Window:
    return temporal.window_spec(x, self.window)

  def carry_input_cotangent(self, cotangent: temporal.Window) -> jax.Array:
    return temporal.window_cotangent(cotangent)

  def window_carries(self, xs: jax.Array) -> temporal.Window:
    return temporal.window_history(xs, self.window)

  @nn.compact
  def __call__(self, x: jax.Array, carry: temporal.Window,
               train: bool) -> tuple[jax.Array, temporal.Window]:
    del train  # Nothing here behaves differently in training.
    full, carry = temporal.window_push(carry, x)   # T x [B, H, W, C]
    mid = self.mid_features or self.features
    k, s = self.kernel_size, self.stride
    spatial = layers.Conv(mid, (k, k), strides=(s, s), padding='SAME',
                          impl=self.impl, dtype=self.dtype,
                          param_dtype=self.param_dtype, name='spatial')
    # One conv per frame (one module: shared weights); measured faster
    # inside the engine's scans than one conv on the stacked window.
    hs = [spatial(frame) for frame in full]
    if self.mid_relu:
      hs = [nn.relu(h) for h in hs]
    init = (nn.initializers.lecun_normal(in_axis=(0, 1), out_axis=2)
            if self.temporal_init == 'lecun'
            else _structured_in_time(self.temporal_init))
    kernel = self.param('temporal', init, (self.window, mid, self.features),
                        self.param_dtype)
    bias = self.param('bias', nn.initializers.zeros_init(), (self.features,),
                      self.param_dtype)
    *hs, kernel, bias = nn.dtypes.promote_dtype(*hs, kernel, bias,
                                                dtype=self.dtype)
    y = sum(jnp.einsum('bhwc,co->bhwo', h, kernel[t])
            for t, h in enumerate(hs)) + bias
    return nn.relu(y), carry


class ConvGRU(nn.Module):
  """A convolutional GRU cell; its output is the new hidden state.

  z, r = σ(conv(x) + conv(h)); n = tanh(conv(x) + conv(r ⊙ h));
  h' = (1 - z) ⊙ n + z ⊙ h, starting from h = 0 at every clip.

  Attributes:
    features: hidden (and output) channels.
    kernel_size: square side of the input and hidden convs.
    stride: stride of the input conv (the hidden state has the output's
      resolution).
    impl, dtype, param_dtype: see `sideways_jax.layers.Conv`.
  """
  features: int
  kernel_size: int = 3
  stride: int = 1
  impl: layers.Impl = 'auto'
  dtype: layers.Dtype | None = None
  param_dtype: layers.Dtype = layers.PARAM_DTYPE

  def init_carry(self, x: jax.ShapeDtypeStruct) -> jax.ShapeDtypeStruct:
    batch, height, width = x.shape[:3]
    s = self.stride
    return jax.ShapeDtypeStruct(
        (batch, -(-height // s), -(-width // s), self.features),
        self.dtype or x.dtype)

  def _conv(self, features: int, stride: int, name: str,
            use_bias: bool) -> layers.Conv:
    k = self.kernel_size
    return layers.Conv(features, (k, k), strides=(stride, stride),
                       padding='SAME', use_bias=use_bias, impl=self.impl,
                       dtype=self.dtype, param_dtype=self.param_dtype,
                       name=name)

  @nn.compact
  def __call__(self, x: jax.Array, carry: jax.Array,
               train: bool) -> tuple[jax.Array, jax.Array]:
    del train
    f = self.features
    from_x = self._conv(3 * f, self.stride, 'input', True)(x)
    gates = self._conv(2 * f, 1, 'gates', False)(carry)
    z = nn.sigmoid(from_x[..., :f] + gates[..., :f])
    r = nn.sigmoid(from_x[..., f:2 * f] + gates[..., f:])
    n = jnp.tanh(from_x[..., 2 * f:]
                 + self._conv(f, 1, 'candidate', False)(r * carry))
    h = (1 - z) * n + z * carry
    return h, h
