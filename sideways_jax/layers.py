"""Convolution and pooling layers whose gradients stay fast inside `lax.scan`.

Sideways steps a pipeline over frames with `jax.lax.scan`. On XLA:CPU a
convolution's backward pass inside a rolled loop runs 7-30x slower than the
same op outside one (measured on 2 CPU cores with jax 0.10: batch 8 at
64x64x32, forward + vjp took 56 ms outside a scan and 0.7-1.3 s inside a
rolled one), and plain `lax.conv` backward is also slow at large batch.
Writing the convolution as strided slices ("im2col") plus one `dot_general`
avoids XLA's convolution emitter entirely: autodiff turns the slices into
pads and the contraction into two more contractions, all of which XLA:CPU
runs at full speed in or out of a loop. On GPU/TPU the native
convolution is fastest, so `impl='auto'` picks im2col only on the CPU backend.

The modules are drop-ins for `flax.linen.Conv` / `ConvTranspose` (same
parameter names and shapes, same `dtype` / `param_dtype` meaning), so models
written with them can load weights of the Flax originals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

Impl = Literal['auto', 'xla', 'im2col']
Padding = str | Sequence[tuple[int, int]]
Dtype = Any  # a jnp dtype or its name, e.g. jnp.bfloat16 or 'bfloat16'
# Where parameters live unless a module says otherwise (flax's default too).
PARAM_DTYPE = jnp.float32
_DIMENSION_NUMBERS = ('NHWC', 'HWIO', 'NHWC')


def resolve_impl(impl: Impl) -> Literal['xla', 'im2col']:
  """Maps 'auto' to 'im2col' on the CPU backend and to 'xla' elsewhere."""
  if impl == 'auto':
    return 'im2col' if jax.default_backend() == 'cpu' else 'xla'
  if impl not in ('xla', 'im2col'):
    raise ValueError(f"impl must be 'auto', 'xla' or 'im2col', got {impl!r}")
  return impl


def _transpose_pads(kernel: int, stride: int, padding: str) -> tuple[int, int]:
  """Padding of a transposed conv, as `lax.conv_transpose` computes it."""
  if padding == 'SAME':
    total = kernel + stride - 2
    before = kernel - 1 if stride > kernel - 1 else -(-total // 2)
  elif padding == 'VALID':
    total = kernel + stride - 2 + max(kernel - stride, 0)
    before = kernel - 1
  else:
    raise ValueError(f"padding must be 'SAME' or 'VALID', got {padding!r}")
  return before, total - before


def _im2col_conv(x: jax.Array, kernel: jax.Array, strides: Sequence[int],
                 pads: Sequence[tuple[int, int]],
                 lhs_dilation: Sequence[int]) -> jax.Array:
  """`lax.conv_general_dilated` (NHWC/HWIO) as slices and one contraction."""
  kh, kw, cin, cout = kernel.shape
  sh, sw = strides
  (pt, pb), (pl, pr) = pads
  dh, dw = lhs_dilation
  # One lax.pad does both the explicit padding and the input dilation of a
  # transposed conv; its transpose under autodiff is a strided slice.
  xp = lax.pad(x, jnp.zeros((), x.dtype),
               ((0, 0, 0), (pt, pb, dh - 1), (pl, pr, dw - 1), (0, 0, 0)))
  batch, hp, wp, _ = xp.shape
  ho = (hp - kh) // sh + 1
  wo = (wp - kw) // sw + 1
  if ho <= 0 or wo <= 0:
    raise ValueError(f'kernel {kh}x{kw} does not fit input {x.shape[1:3]}')
  cols = [
      lax.slice(xp, (0, dy, dx, 0),
                (batch, dy + (ho - 1) * sh + 1, dx + (wo - 1) * sw + 1, cin),
                (1, sh, sw, 1))
      for dy in range(kh) for dx in range(kw)
  ]
  patches = jnp.stack(cols, axis=3)  # [B, Ho, Wo, kh*kw, Cin]
  return jnp.einsum('bhwkc,kco->bhwo', patches,
                    kernel.reshape(kh * kw, cin, cout))


def conv2d(x: jax.Array, kernel: jax.Array, strides: Sequence[int] = (1, 1),
           padding: Padding = 'SAME', impl: Impl = 'auto') -> jax.Array:
  """2D convolution, NHWC input and HWIO kernel, like `nn.Conv` computes it."""
  strides = tuple(strides)
  if isinstance(padding, str):
    pads = lax.padtype_to_pads(x.shape[1:3], kernel.shape[:2], strides,
                               padding)
  else:
    pads = tuple(tuple(p) for p in padding)
  if resolve_impl(impl) == 'xla':
    return lax.conv_general_dilated(x, kernel, strides, pads,
                                    dimension_numbers=_DIMENSION_NUMBERS)
  return _im2col_conv(x, kernel, strides, pads, (1, 1))


def conv_transpose2d(x: jax.Array, kernel: jax.Array,
                     strides: Sequence[int] = (1, 1), padding: str = 'SAME',
                     impl: Impl = 'auto') -> jax.Array:
  """Transposed 2D convolution with `lax.conv_transpose` semantics (no flip)."""
  strides = tuple(strides)
  pads = tuple(_transpose_pads(k, s, padding)
               for k, s in zip(kernel.shape[:2], strides))
  if resolve_impl(impl) == 'xla':
    return lax.conv_general_dilated(x, kernel, (1, 1), pads,
                                    lhs_dilation=strides,
                                    dimension_numbers=_DIMENSION_NUMBERS)
  return _im2col_conv(x, kernel, (1, 1), pads, strides)


def max_pool(x: jax.Array, window: Sequence[int], strides: Sequence[int],
             padding: str = 'VALID', impl: Impl = 'auto') -> jax.Array:
  """Max pooling over H and W of an NHWC array.

  The im2col form takes the max of strided slices, whose gradient is a select
  rather than XLA's select-and-scatter (slow inside CPU loops).
  """
  window, strides = tuple(window), tuple(strides)
  if resolve_impl(impl) == 'xla':
    return nn.max_pool(x, window, strides, padding)
  pads = lax.padtype_to_pads(x.shape[1:3], window, strides, padding)
  (pt, pb), (pl, pr) = pads
  xp = lax.pad(x, jnp.array(-jnp.inf, x.dtype),
               ((0, 0, 0), (pt, pb, 0), (pl, pr, 0), (0, 0, 0)))
  batch, hp, wp, channels = xp.shape
  ho = (hp - window[0]) // strides[0] + 1
  wo = (wp - window[1]) // strides[1] + 1
  out = None
  for dy in range(window[0]):
    for dx in range(window[1]):
      view = lax.slice(
          xp, (0, dy, dx, 0),
          (batch, dy + (ho - 1) * strides[0] + 1,
           dx + (wo - 1) * strides[1] + 1, channels),
          (1, strides[0], strides[1], 1))
      out = view if out is None else jnp.maximum(out, view)
  return out


class _ConvBase(nn.Module):
  """What `Conv` and `ConvTranspose` share: parameters, dtypes, the bias.

  Like `flax.linen.Conv`: the kernel and bias are stored in `param_dtype`;
  input, kernel and bias are cast to `dtype` (when None, the promoted dtype
  of input and parameters) and the convolution computes in it, whichever
  `impl` runs it.
  """
  features: int
  kernel_size: Sequence[int]
  strides: Sequence[int] = (1, 1)
  padding: Padding = 'SAME'
  use_bias: bool = True
  impl: Impl = 'auto'
  dtype: Dtype | None = None
  param_dtype: Dtype = PARAM_DTYPE
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
  bias_init: nn.initializers.Initializer = nn.initializers.zeros_init()

  def _convolve(self, x: jax.Array, kernel: jax.Array) -> jax.Array:
    raise NotImplementedError

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kh, kw = self.kernel_size
    kernel = self.param('kernel', self.kernel_init,
                        (kh, kw, x.shape[-1], self.features), self.param_dtype)
    bias = (self.param('bias', self.bias_init, (self.features,),
                       self.param_dtype) if self.use_bias else None)
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias,
                                              dtype=self.dtype)
    y = self._convolve(x, kernel)
    return y if bias is None else y + bias


class Conv(_ConvBase):
  """Drop-in for `flax.linen.Conv` (2D, NHWC) with a scan-friendly backward."""

  def _convolve(self, x: jax.Array, kernel: jax.Array) -> jax.Array:
    return conv2d(x, kernel, self.strides, self.padding, self.impl)


class ConvTranspose(_ConvBase):
  """Drop-in for `flax.linen.ConvTranspose` (2D, NHWC, no kernel flip).

  `padding` must be 'SAME' or 'VALID'.
  """

  def _convolve(self, x: jax.Array, kernel: jax.Array) -> jax.Array:
    return conv_transpose2d(x, kernel, self.strides, self.padding, self.impl)
