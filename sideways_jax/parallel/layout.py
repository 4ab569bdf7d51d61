"""The static layout of a stage chain's buffers on a ('data', 'stage') mesh.

Device i of the 'stage' axis holds stage i's share of every buffer:
* parameters in slots (see `slots.py`): a tuple of [D, slot_size] arrays;
* mutable state (batchnorm statistics), small, in one padded flat row of a
  [D, state_size] array;
* activations and cotangents sent between stages as [b, act_size] rows,
  padded to the largest inter-stage activation;
* a temporal stage's carry (`sideways_jax.temporal`) in one padded flat
  row of [carry_size], which never leaves the stage's device.
All are sharded over 'stage', so a device never holds another stage's
parameters, state or optimizer state.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from sideways_jax import chain as chain_lib
from sideways_jax import temporal
from sideways_jax.parallel import slots as slots_lib
from sideways_jax.parallel.flat import flat_spec
from sideways_jax.parallel.flat import flatten
from sideways_jax.parallel.flat import FlatSpec
from sideways_jax.parallel.flat import unflatten


def _common_dtype(dtypes: Sequence[Any], what: str) -> Any:
  kinds = sorted({str(jnp.dtype(d)) for d in dtypes})
  if len(kinds) > 1:
    raise ValueError(
        f'all stages must use one {what} dtype to share the buffers, got '
        f'{kinds}; cast them to one dtype first')
  return jnp.dtype(kinds[0]) if kinds else jnp.dtype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class ChainLayout:
  """Static layout of a stage chain's buffers for one per-device batch.

  Attributes:
    params: per stage, the FlatSpec of its 'params' pytree.
    state: per stage, the FlatSpec of its other collections (e.g.
      {'batch_stats': ...}); an empty dict for stateless stages.
    frame: one frame for one device, [b, ...].
    outputs: per stage, its output for `frame`'s batch, [b, ...].
    carries: per stage, the FlatSpec of its carry for `frame`'s batch
      (None for a frame stage).
    param_slots: where each stage's parameter leaves live (`slots.py`).
    state_size: padded row length of the state buffer.
    carry_size: padded length of a carry row (stored as float32: a carry
      may hold bool flags; float32 holds them and bf16 values exactly).
    act_size: padded per-example length of an inter-stage activation.
    param_dtype, state_dtype, act_dtype: the buffers' element types.
  """
  params: tuple[FlatSpec, ...]
  state: tuple[FlatSpec, ...]
  frame: jax.ShapeDtypeStruct
  outputs: tuple[jax.ShapeDtypeStruct, ...]
  carries: tuple[FlatSpec | None, ...]
  param_slots: slots_lib.SlotPlan
  state_size: int
  carry_size: int
  act_size: int
  param_dtype: Any
  state_dtype: Any
  act_dtype: Any

  @property
  def num_stages(self) -> int:
    return len(self.params)

  @property
  def temporal(self) -> bool:
    """Whether a stage carries state across frames."""
    return any(c is not None for c in self.carries)

  @property
  def out_size(self) -> int:
    """Per-example length of the top stage's output."""
    return math.prod(self.outputs[-1].shape[1:])


def chain_layout(stages: chain_lib.Stages,
                 variables: chain_lib.ChainVariables,
                 frame: Any) -> ChainLayout:
  """Computes the layout of a chain for per-device frames shaped like `frame`.

  Args:
    stages: the D stage modules.
    variables: one variables dict per stage (arrays or ShapeDtypeStructs).
    frame: an array or ShapeDtypeStruct [b, ...]: ONE device's batch.

  Returns:
    The ChainLayout (only shapes are used; nothing is computed).
  """
  chain_lib.validate_chain(stages, variables)
  frame = jax.ShapeDtypeStruct(tuple(frame.shape), jnp.dtype(frame.dtype))
  split = [chain_lib.split_variables(v) for v in variables]
  params = tuple(flat_spec(p) for p, _ in split)
  state = tuple(flat_spec(dict(s)) for _, s in split)
  # Checked before tracing: mixed dtypes could also fail inside the stages.
  param_dtype = _common_dtype([d for s in params for d in s.dtypes],
                              'parameter')
  state_dtype = _common_dtype([d for s in state for d in s.dtypes], 'state')
  outputs, carries, x = [], [], frame
  for stage, (p, s) in zip(stages, split):
    carry = jax.eval_shape(
        lambda a, stage=stage: temporal.zero_carry(stage, a), x)
    carries.append(None if carry is None else flat_spec(carry))
    x = jax.eval_shape(
        lambda p, s, a, c, stage=stage: chain_lib.apply_any_stage(
            stage, p, s, a, c, train=False, rng=None)[0], p, s, x, carry)
    if not isinstance(x, jax.ShapeDtypeStruct):
      raise ValueError('every stage must return a single array [B, ...]; '
                       f'got {jax.tree.structure(x)}')
    outputs.append(x)
  between = outputs[:-1]
  return ChainLayout(
      params=params, state=state, frame=frame, outputs=tuple(outputs),
      carries=tuple(carries), param_slots=slots_lib.plan_slots(params),
      state_size=max(1, max(s.size for s in state)),
      carry_size=max([1] + [c.size for c in carries if c is not None]),
      act_size=max([1] + [math.prod(o.shape[1:]) for o in between]),
      param_dtype=param_dtype, state_dtype=state_dtype,
      act_dtype=_common_dtype([o.dtype for o in between] or [frame.dtype],
                              'activation'))


def stack_params(layout: ChainLayout,
                 trees: Sequence[Any]) -> tuple[np.ndarray, ...]:
  """Per-stage params pytrees -> host parameter slots, each [D, size]."""
  return slots_lib.stack_slots(layout.params, layout.param_slots, trees,
                               layout.param_dtype)


def stack_state(layout: ChainLayout, trees: Sequence[Any]) -> np.ndarray:
  """Per-stage mutable-state dicts -> host [D, state_size]."""
  return np.stack([np.asarray(flatten(s, dict(t), layout.state_size,
                                     layout.state_dtype))
                   for s, t in zip(layout.state, trees)])


def unstack_params(layout: ChainLayout, slots: Any) -> tuple[Any, ...]:
  """Host parameter slots -> per-stage params pytrees of NumPy arrays."""
  return slots_lib.unstack_slots(layout.params, layout.param_slots, slots)


def unstack_state(layout: ChainLayout, stacked: Any) -> tuple[dict, ...]:
  """Host [D, state_size] -> per-stage mutable-state dicts."""
  stacked = np.asarray(stacked)
  return tuple(dict(unflatten(s, stacked[i]))
               for i, s in enumerate(layout.state))


def stack_variables(layout: ChainLayout,
                    variables: chain_lib.ChainVariables
                    ) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
  """Chain variables -> host (parameter slots, [D, state_size] state)."""
  split = [chain_lib.split_variables(v) for v in variables]
  return (stack_params(layout, [p for p, _ in split]),
          stack_state(layout, [s for _, s in split]))


def unstack_variables(layout: ChainLayout, params: Any,
                      state: Any) -> tuple[dict, ...]:
  """Inverse of `stack_variables`: one variables dict per stage."""
  return tuple({'params': p, **s} for p, s in
               zip(unstack_params(layout, params),
                   unstack_state(layout, state)))
