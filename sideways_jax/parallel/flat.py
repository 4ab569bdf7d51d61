"""Pytrees raveled into zero-padded flat buffers, and back.

Under `shard_map` every device runs the same program on arrays of the same
shape, but stages differ in shapes: what differs is raveled and padded to a
common length, and the `lax.switch` branch of stage i, which knows stage i's
static `FlatSpec`, slices stage i's pytree back out.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class FlatSpec(NamedTuple):
  """Static description of a pytree raveled into one flat vector."""
  treedef: Any                       # jax.tree_util.PyTreeDef
  shapes: tuple[tuple[int, ...], ...]
  dtypes: tuple[Any, ...]

  @property
  def size(self) -> int:
    return sum(math.prod(s) for s in self.shapes)


def flat_spec(tree: Any) -> FlatSpec:
  """The FlatSpec of a pytree of arrays or `jax.ShapeDtypeStruct`s."""
  leaves, treedef = jax.tree.flatten(tree)
  return FlatSpec(treedef, tuple(tuple(np.shape(x)) for x in leaves),
                  tuple(jnp.dtype(x.dtype) for x in leaves))


def flatten(spec: FlatSpec, tree: Any, length: int,
            dtype: Any = jnp.float32) -> jax.Array:
  """Ravels `tree` (structured as `spec`) into a zero-padded [length] vector."""
  leaves = jax.tree.leaves(tree)
  if len(leaves) != len(spec.shapes):
    raise ValueError(f'tree has {len(leaves)} leaves, spec {len(spec.shapes)}')
  parts = [jnp.ravel(x).astype(dtype) for x in leaves]
  pad = length - spec.size
  if pad < 0:
    raise ValueError(f'tree of size {spec.size} does not fit length {length}')
  if pad:
    parts.append(jnp.zeros((pad,), dtype))
  return jnp.concatenate(parts) if parts else jnp.zeros((length,), dtype)


def unflatten(spec: FlatSpec, flat: jax.Array) -> Any:
  """Slices the pytree described by `spec` back out of a flat vector."""
  leaves, offset = [], 0
  for shape, dtype in zip(spec.shapes, spec.dtypes):
    size = math.prod(shape)
    leaves.append(flat[offset:offset + size].reshape(shape).astype(dtype))
    offset += size
  return jax.tree.unflatten(spec.treedef, leaves)


def flatten_batch(x: jax.Array, length: int) -> jax.Array:
  """[b, ...] -> [b, length]: one zero-padded row per example."""
  rows = x.reshape(x.shape[0], -1)
  pad = length - rows.shape[1]
  if pad < 0:
    raise ValueError(f'activation of size {rows.shape[1]} does not fit '
                     f'length {length}')
  return jnp.pad(rows, ((0, 0), (0, pad))) if pad else rows


def unflatten_batch(flat: jax.Array, spec: jax.ShapeDtypeStruct) -> jax.Array:
  """[b, length] -> [b, ...] shaped like `spec` (which includes the batch)."""
  size = math.prod(spec.shape[1:])
  return flat[:, :size].reshape(spec.shape).astype(spec.dtype)
