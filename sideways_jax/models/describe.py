"""Per-stage size and cost of a stage chain: params, output shape, FLOPs.

FLOP convention: forward FLOPs per frame = 2 x the multiply-adds of the
convolutions, transposed convolutions and dense layers, counted analytically
from their shapes. Biases, batchnorm, activations, pooling and dropout are not
counted (they are a small fraction and no GEMM). A transposed convolution
counts each input pixel times the whole kernel, 2*H_in*W_in*k*k*C_in*C_out,
i.e. the cost of the convolution it is the gradient of; the zeros of its
dilated input are not counted. The count is the same on every backend, unlike
XLA's cost analysis, which would also count the im2col form's extra work.

Everything is traced with `jax.eval_shape`: nothing is computed or allocated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import math
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import numpy as np

from sideways_jax import layers
from sideways_jax import temporal

_CONV_TYPES = (layers.Conv, nn.Conv)
_TRANSPOSE_TYPES = (layers.ConvTranspose, nn.ConvTranspose)


class LayerSummary(NamedTuple):
  """Size and cost of one layer (or stage) for one frame."""
  name: str
  num_params: int             # entries of the 'params' collection
  output_shape: tuple[int, ...]  # one frame's output, without the batch axis
  flops: int                  # forward FLOPs for one frame


class StageSummary(NamedTuple):
  """Size and cost of one stage for one frame."""
  index: int                  # 0-based position in the chain
  layers: tuple[str, ...]     # names of the layers it holds ('' if unknown)
  num_params: int
  output_shape: tuple[int, ...]
  flops: int


class ChainSummary(NamedTuple):
  """Per-stage summaries of a chain plus totals and balance."""
  input_shape: tuple[int, ...]  # one frame, without the batch axis
  stages: tuple[StageSummary, ...]

  @property
  def total_params(self) -> int:
    return sum(s.num_params for s in self.stages)

  @property
  def total_flops(self) -> int:
    return sum(s.flops for s in self.stages)

  @property
  def balance(self) -> float:
    """Largest stage FLOPs / mean stage FLOPs: 1.0 is perfectly balanced.

    It bounds the depth-parallel speed-up: D stages on D devices run at most
    D / balance times faster than one device.
    """
    flops = [s.flops for s in self.stages]
    if not flops or max(flops) == 0:
      return 1.0
    return max(flops) / (sum(flops) / len(flops))

  def table(self) -> str:
    """A printable table, one row per stage, with totals and balance."""
    total = max(self.total_flops, 1)
    rows = [('stage', 'layers', 'params', 'output', 'MFLOPs/frame', 'share')]
    for s in self.stages:
      rows.append((str(s.index), '+'.join(s.layers), f'{s.num_params:,}',
                   'x'.join(map(str, s.output_shape)), f'{s.flops / 1e6:.2f}',
                   f'{100 * s.flops / total:.1f}%'))
    rows.append(('total', f'input {"x".join(map(str, self.input_shape))}',
                 f'{self.total_params:,}', '', f'{self.total_flops / 1e6:.2f}',
                 '100.0%'))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ['  '.join(cell.ljust(w) if c < 2 else cell.rjust(w)
                       for c, (cell, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, '-' * len(lines[0]))
    lines.append(f'balance (largest / mean stage FLOPs): {self.balance:.3f} '
                 f'over {len(self.stages)} stages')
    return '\n'.join(lines)

  def __str__(self) -> str:
    return self.table()


def _call_flops(module: nn.Module, args: tuple[Any, ...], out: Any) -> int:
  """Forward FLOPs of one intercepted call, for the whole batch."""
  if isinstance(module, _CONV_TYPES):
    x = args[0]
    kernel = math.prod(np.atleast_1d(module.kernel_size))
    return 2 * math.prod(out.shape[:-1]) * kernel * x.shape[-1] * out.shape[-1]
  if isinstance(module, _TRANSPOSE_TYPES):
    x = args[0]
    kernel = math.prod(np.atleast_1d(module.kernel_size))
    return 2 * math.prod(x.shape[:-1]) * kernel * x.shape[-1] * out.shape[-1]
  if isinstance(module, nn.Dense):
    x = args[0]
    return 2 * math.prod(x.shape[:-1]) * x.shape[-1] * module.features
  return 0


def _param_count(variables: Mapping[str, Any]) -> int:
  return sum(math.prod(np.shape(leaf))
             for leaf in jax.tree.leaves(variables.get('params', {})))


def _trace(module: nn.Module, x: jax.ShapeDtypeStruct,
           axis_name: str | None = None
           ) -> tuple[int, jax.ShapeDtypeStruct, int]:
  """(FLOPs per frame, output spec, param count) of one module on `x`.

  `axis_name`: an axis the module's BatchNorm averages over, bound to one
  member while tracing.
  """
  flops = [0]

  def count(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    if context.method_name == '__call__':
      flops[0] += _call_flops(context.module, args, out)
    return out

  key = jax.random.key(0)
  # A temporal stage runs on (frame, clip-start carry) and returns
  # (output, carry); its defining module is the one to initialise.
  owner = temporal.interface(module) or module

  def init(a):
    carry = temporal.carry_args(module, a)
    out, variables = owner.init_with_output(
        {'params': key, 'dropout': key}, a, *carry, train=False)
    return (out[0] if carry else out), variables

  with nn.intercept_methods(count):
    if axis_name is None:
      out, variables = jax.eval_shape(init, x)
    else:
      out, variables = jax.eval_shape(
          lambda a: jax.tree.map(lambda v: v[0], jax.vmap(
              init, axis_name=axis_name)(a[None])), x)
  return flops[0] // x.shape[0], out, _param_count(variables)


def _as_spec(example_frame: Any) -> jax.ShapeDtypeStruct:
  shape = tuple(example_frame.shape)
  if len(shape) < 2:
    raise ValueError(f'example_frame must be a batch [B, ...], got {shape}')
  return jax.ShapeDtypeStruct((1, *shape[1:]), example_frame.dtype)


def describe_layers(layer_list: Sequence[Any], example_frame: Any, *,
                    axis_name: str | None = None
                    ) -> tuple[LayerSummary, ...]:
  """Summaries of each named layer (`partition.Layer`) of a network.

  Args:
    layer_list: `(name, module)` pairs, bottom first; a module may also be
      a `partition.Factory` or `partition.Function`.
    example_frame: an array or `jax.ShapeDtypeStruct` [B, ...] for the first
      layer; only its shape and dtype are used.
    axis_name: the axis the layers' BatchNorm averages over, if any.

  Returns:
    One `LayerSummary` per layer; `flops` is per frame.
  """
  from sideways_jax.models import partition  # pylint: disable=g-import-not-at-top
  x = _as_spec(example_frame)
  rows = []
  for name, module in layer_list:
    # As a one-layer stage: the layer is called as a stage would call it.
    flops, x, num_params = _trace(partition.group_layers([partition.Layer(name, module)], ())[0], x,
                                  axis_name)
    rows.append(LayerSummary(name, num_params, tuple(x.shape[1:]), flops))
  return tuple(rows)


def describe(stages: Sequence[nn.Module], example_frame: Any,
             variables: Sequence[Mapping[str, Any]] | None = None
            ) -> ChainSummary:
  """Per-stage parameter count, output shape and forward FLOPs per frame.

  Args:
    stages: the chain, bottom first (modules with `__call__(x, train)`, or
      temporal stages, see `sideways_jax.temporal`).
    example_frame: an array or `jax.ShapeDtypeStruct` [B, ...] for stage 1;
      only its shape and dtype are used.
    variables: the chain's variables; when given, parameter counts come from
      them, else from the shapes `init` would create.

  Returns:
    A `ChainSummary`; `print(summary)` shows the table and the balance.
  """
  if variables is not None and len(variables) != len(stages):
    raise ValueError(f'{len(stages)} stages but {len(variables)} variables')
  x = _as_spec(example_frame)
  input_shape = tuple(x.shape[1:])
  rows = []
  for i, stage in enumerate(stages):
    flops, x, num_params = _trace(stage, x)
    if variables is not None:
      num_params = _param_count(variables[i])
    names = tuple(getattr(stage, 'names', ('',)))
    rows.append(StageSummary(i, names, num_params, tuple(x.shape[1:]), flops))
  return ChainSummary(input_shape, tuple(rows))
