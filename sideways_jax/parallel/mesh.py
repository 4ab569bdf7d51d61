"""The ('data', 'stage') device mesh, input placement and checks.

Stage-device i (position i along 'stage') runs stage i; the 'data' axis
splits the batch. Meshes use `AxisType.Auto` axes so that `shard_map` takes
explicit `in_specs` on jax 0.10 (where `jax.make_mesh` defaults to Explicit).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np

DATA = 'data'
STAGE = 'stage'
AXES = (DATA, STAGE)


def make_mesh(num_data: int, num_stages: int,
              devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A (num_data, num_stages) mesh with axes ('data', 'stage').

  Args:
    num_data: size of the 'data' axis (batch split).
    num_stages: size of the 'stage' axis: must equal the chain's stage count.
    devices: the devices to use, num_data * num_stages of them (default: the
      first that many of `jax.devices()`, which spans every process of a
      multi-host run). Consecutive devices go along 'stage', so on hosts with
      several devices a stage pipeline stays within a host when it fits.

  Returns:
    The mesh.
  """
  if num_data < 1 or num_stages < 1:
    raise ValueError(f'mesh axes must be >= 1, got data={num_data}, '
                     f'stage={num_stages}')
  needed = num_data * num_stages
  available = list(jax.devices() if devices is None else devices)
  if len(available) < needed:
    raise ValueError(
        f'a {num_data} x {num_stages} (data x stage) mesh needs {needed} '
        f'devices, but only {len(available)} are available. On CPU, fake '
        'devices come from jax.config.update("jax_num_cpu_devices", n) '
        'before JAX starts (or XLA_FLAGS=--xla_force_host_platform_device_'
        'count=n); across hosts, from jax.distributed.initialize.')
  grid = np.array(available[:needed], dtype=object).reshape(num_data,
                                                             num_stages)
  return Mesh(grid, AXES, axis_types=(jax.sharding.AxisType.Auto,) * 2)


def check_mesh(mesh: Mesh, num_stages: int) -> tuple[int, int]:
  """Checks the mesh's axes against the chain; returns (num_data, D)."""
  if tuple(mesh.axis_names) != AXES:
    raise ValueError(f'the mesh must have axes {AXES}, got '
                     f'{tuple(mesh.axis_names)} (use parallel.make_mesh)')
  size = mesh.shape[STAGE]
  if size != num_stages:
    raise ValueError(
        f"the chain has {num_stages} stages but the mesh's 'stage' axis has "
        f'{size} devices: depth parallelism puts exactly one stage on each '
        'stage-device. Re-cut the model (e.g. num_stages=... in the model '
        'builder) or build the mesh with make_mesh(num_data, num_stages).')
  return mesh.shape[DATA], size


def check_batch(batch: int, shards: int, what: str = "'data' axis") -> int:
  """Per-shard batch size; raises when `batch` does not split evenly."""
  if batch % shards:
    raise ValueError(
        f'the batch of {batch} clips does not split evenly over the {what} '
        f'of size {shards}: use a batch size that is a multiple of {shards}')
  return batch // shards


def sharding(mesh: Mesh, spec: P) -> NamedSharding:
  return NamedSharding(mesh, spec)


def put(x: Any, mesh: Mesh, spec: P) -> Any:
  """Places a host pytree on the mesh with `spec` (works across processes).

  Every process must pass the same full (global) value; each one keeps only
  the shards its own devices hold. A leaf already placed so is kept as is.
  """
  target = NamedSharding(mesh, spec)

  def one(leaf):
    if isinstance(leaf, jax.Array) and leaf.sharding.is_equivalent_to(
        target, leaf.ndim):
      return leaf
    leaf = np.asarray(leaf)
    return jax.make_array_from_callback(leaf.shape, target,
                                        lambda index: leaf[index])
  return jax.tree.map(one, x)


def fetch(x: Any, mesh: Mesh) -> Any:
  """Copies a (possibly multi-process) pytree of global arrays to the host.

  Arrays are first replicated on every device, so each process can read the
  full value even when its own devices held only some shards.
  """
  replicated = NamedSharding(mesh, P())
  gathered = jax.jit(lambda t: t, out_shardings=replicated)(x)
  return jax.tree.map(np.asarray, gathered)


def vary(tree: Any, axes: Sequence[str] = AXES) -> Any:
  """Marks every leaf as device-varying over `axes` (inside `shard_map`).

  With shard_map's default check_vma, a scan carry or `lax.switch` branch
  output must have the same varying axes everywhere; zeros and constants are
  invariant until cast. Casting params before differentiating also keeps the
  gradient per device (the transpose of an implicit cast would be a psum).
  """
  def one(leaf):
    aval = jax.typeof(leaf)
    have = aval.mat.varying if hasattr(aval, 'mat') else aval.vma
    missing = tuple(a for a in axes if a not in have)
    return lax.pcast(leaf, missing, to='varying') if missing else leaf
  return jax.tree.map(one, tree)


def exchange(up: jax.Array, down: jax.Array,
             num_stages: int) -> tuple[jax.Array, jax.Array]:
  """Sends `up` to the next stage-device and `down` to the previous one.

  Inside `shard_map`. Returns (what came from below, what came from above),
  zeros where there is no neighbour. With two stages the two messages go in
  one `ppermute` (device 0 sends up, device 1 down): one synchronisation a
  step instead of two, which is most of a step's communication cost
  between two processes on one host (gloo).
  """
  if num_stages == 1:
    return jnp.zeros_like(up), jnp.zeros_like(down)
  if num_stages == 2:
    me = lax.axis_index(STAGE)
    got = lax.ppermute(jnp.where(me == 0, up, down), STAGE, [(0, 1), (1, 0)])
    return (jnp.where(me == 1, got, jnp.zeros_like(got)),
            jnp.where(me == 0, got, jnp.zeros_like(got)))
  below = lax.ppermute(up, STAGE, [(j, j + 1) for j in range(num_stages - 1)])
  above = lax.ppermute(down, STAGE,
                       [(j + 1, j) for j in range(num_stages - 1)])
  return below, above
