"""Parameter slots: per-stage parameters in shared, size-matched buffers.

Stages differ wildly in size (VGG-8's fc6 holds 33.5M weights, conv1 14K),
and every step each stage-device reads its parameters and adds its gradient
into an accumulator. With one flat buffer padded to the largest stage, the
small stages would add that whole padded buffer every step: on a GPU as much
memory traffic as their compute. So parameters live in *slots*: a tuple of
buffers, each [D, slot_size] sharded over 'stage', where every leaf of stage
i sits at the start of one slot of row i. Leaves are packed so that a slot is
at most `slack` times larger than any leaf in it, and a stage uses each slot
at most once. A stage's step then touches only its own slots, each at most
`slack` x its leaf (the others pass through `lax.switch` untouched, which
XLA aliases without a copy), and a leaf that fills its slot is read in place.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sideways_jax.parallel.flat import FlatSpec

Slots = tuple[jax.Array, ...]  # one [slot_size] buffer (or [D, ...]) per slot


class SlotPlan(NamedTuple):
  """Where every stage's parameter leaves live.

  Attributes:
    sizes: length of each slot.
    places: per stage, the slot of each of its leaves (in leaf order).
  """
  sizes: tuple[int, ...]
  places: tuple[tuple[int, ...], ...]


def plan_slots(specs: Sequence[FlatSpec], slack: float = 2.0) -> SlotPlan:
  """Packs the leaves of every stage into few slots (greedy, largest first).

  Args:
    specs: one FlatSpec per stage (its 'params' leaves).
    slack: a leaf may go into a slot at most this many times its size.

  Returns:
    The SlotPlan; the sum of its sizes is the parameter memory per device.
  """
  if slack < 1:
    raise ValueError(f'slack must be >= 1, got {slack}')
  items = sorted(((max(1, math.prod(shape)), stage, leaf)
                  for stage, spec in enumerate(specs)
                  for leaf, shape in enumerate(spec.shapes)),
                 key=lambda item: (-item[0], item[1], item[2]))
  sizes: list[int] = []
  users: list[set[int]] = []
  places = [[0] * len(spec.shapes) for spec in specs]
  for size, stage, leaf in items:
    # Slots only shrink down the list, so the last fitting one is tightest.
    fitting = [j for j, s in enumerate(sizes)
               if stage not in users[j] and s <= slack * size]
    if fitting:
      j = fitting[-1]
    else:
      j = len(sizes)
      sizes.append(size)
      users.append(set())
    users[j].add(stage)
    places[stage][leaf] = j
  return SlotPlan(tuple(sizes), tuple(tuple(p) for p in places))


def unflatten_slots(spec: FlatSpec, places: Sequence[int],
                    slots: Slots) -> Any:
  """Stage pytree from its slots (1-D each); a leaf filling its slot is free."""
  leaves = []
  for shape, dtype, j in zip(spec.shapes, spec.dtypes, places):
    size = math.prod(shape)
    flat = slots[j] if size == slots[j].shape[0] else slots[j][:size]
    leaves.append(flat.reshape(shape).astype(dtype))
  return jax.tree.unflatten(spec.treedef, leaves)


def add_to_slots(spec: FlatSpec, places: Sequence[int], slots: Slots,
                 tree: Any) -> Slots:
  """slots + tree (at the places of `spec`); untouched slots pass through."""
  out = list(slots)
  for leaf, j in zip(jax.tree.leaves(tree), places):
    flat = jnp.ravel(leaf).astype(slots[j].dtype)
    pad = slots[j].shape[0] - flat.shape[0]
    out[j] = out[j] + (jnp.pad(flat, (0, pad)) if pad else flat)
  return tuple(out)


def stack_slots(specs: Sequence[FlatSpec], plan: SlotPlan,
                trees: Sequence[Any], dtype: Any) -> tuple[np.ndarray, ...]:
  """Per-stage pytrees -> host slots [D, size] (zeros where unused)."""
  slots = [np.zeros((len(trees), size), dtype) for size in plan.sizes]
  for stage, (spec, tree) in enumerate(zip(specs, trees)):
    leaves = jax.tree.leaves(tree)
    if len(leaves) != len(spec.shapes):
      raise ValueError(f'stage {stage} has {len(leaves)} parameter arrays, '
                       f'its layout {len(spec.shapes)}')
    for leaf, j in zip(leaves, plan.places[stage]):
      flat = np.ravel(np.asarray(leaf))
      slots[j][stage, :flat.size] = flat
  return tuple(slots)


def unstack_slots(specs: Sequence[FlatSpec], plan: SlotPlan,
                  slots: Sequence[Any]) -> tuple[Any, ...]:
  """Host slots [D, size] -> per-stage pytrees of NumPy arrays."""
  slots = [np.asarray(s) for s in slots]
  return tuple(
      unflatten_slots(spec, plan.places[stage],
                      tuple(s[stage] for s in slots))
      for stage, spec in enumerate(specs))
