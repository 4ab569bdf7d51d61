"""The training state of a run: the library's one `TrainState`.

The data position is not stored: batch `step` is a pure function of (seed,
step) (see `sideways_jax.data.make_loader(start_step=...)`), so the step
counter is enough to resume the data stream.

`relayout` reads a state saved by a mesh run as a one-device state and back,
so a run may move between placements when the stages are the same.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np
import optax

from sideways_jax import chain as chain_lib
from sideways_jax import trainer as trainer_lib
from sideways_jax.experiments import common
from sideways_jax.train_state import TrainState

__all__ = ['LayoutError', 'TrainState', 'create_train_state', 'num_params',
           'relayout']


def create_train_state(stages: chain_lib.Stages,
                       optimizer: optax.GradientTransformation, *, seed: int,
                       example_frame: jax.Array) -> TrainState:
  """The one-device state at step 0 that a run with `seed` starts from.

  Args:
    stages: the model's stage chain.
    optimizer: the optax transformation that will update the params.
    seed: fixes the initial weights and the dropout stream.
    example_frame: one batch of frames [B, H, W, C] (only shapes matter).
  """
  from sideways_jax.experiments.classification import step as step_lib  # pylint: disable=g-import-not-at-top
  trainer = trainer_lib.Trainer(stages, optimizer, step_lib.frame_xent, 'bp')
  clip = jax.ShapeDtypeStruct((1,) + tuple(example_frame.shape),
                              example_frame.dtype)
  return trainer.init(jax.random.PRNGKey(seed), clip)


def num_params(variables: chain_lib.ChainVariables) -> int:
  """Number of trainable parameters of a chain."""
  return sum(int(x.size) for v in variables
             for x in jax.tree.leaves(v.get('params', {})))


# -- the same state in another placement's layout ----------------------------


class LayoutError(common.ConfigError):
  """A saved state that cannot be laid out as the new one (says why)."""


def _per_stage(params: Any) -> bool:
  """True for one tree per stage (one device, or data-parallel BP)."""
  return bool(params) and isinstance(params[0], Mapping)


def _abstract(tree: Any) -> Any:
  """Shapes and dtypes of `tree` (arrays or orbax metadata), lists as tuples."""
  if isinstance(tree, Mapping):
    return {k: _abstract(v) for k, v in tree.items()}
  if isinstance(tree, (list, tuple)):
    return tuple(_abstract(v) for v in tree)
  return jax.ShapeDtypeStruct(tuple(tree.shape), tree.dtype)


def _shapes(tree: Any) -> list[tuple[int, ...]]:
  return [tuple(x.shape) for x in jax.tree.leaves(tree)]


def _map_moments(opt_state: Any, params: Any, moment: Callable[[Any], Any],
                 other: Callable[[Any], Any]) -> Any:
  """`opt_state` with each params-shaped subtree and each other leaf mapped."""
  structure = jax.tree.structure(params)
  is_moment = lambda x: jax.tree.structure(x) == structure
  return jax.tree.map(lambda x: moment(x) if is_moment(x) else other(x),
                      opt_state, is_leaf=is_moment)


def relayout(saved: Any, template: TrainState
             ) -> tuple[TrainState, Callable[[TrainState], TrainState]]:
  """How to read a state saved by the other placement as `template`'s.

  A mesh program keeps each stage's parameters in slot rows [D, size] and
  its mutable state in one padded row of [D, size] (`sideways_jax.parallel`);
  one device keeps one tree per stage. The optimizer state is converted
  with the parameters: its parameter-shaped parts like the parameters, its
  other leaves (step counts) one per stage on a mesh, one on one device.

  Args:
    saved: the saved state's tree of shapes (orbax metadata: dicts, lists).
    template: the new state (its layout, shapes and placement).

  Returns:
    (the saved state's abstract tree, to restore it with; a function from
    that state, as host arrays, to host arrays laid out like `template`).

  Raises:
    LayoutError: the saved state holds other stages, or an optimizer state
      that cannot be converted honestly.
  """
  from sideways_jax.parallel import flat as flat_lib  # pylint: disable=g-import-not-at-top
  from sideways_jax.parallel import slots as slots_lib  # pylint: disable=g-import-not-at-top
  saved_per_stage = _per_stage(saved['params'])
  if saved_per_stage == _per_stage(template.params):
    raise LayoutError('the saved state has the same layout but other shapes')
  if saved_per_stage:  # One device -> a mesh.
    stage_params = _abstract(saved['params'])
    stage_state = tuple(dict(s) for s in _abstract(saved['model_state']))
    slots, rows = template.params, template.model_state
  else:  # A mesh -> one device.
    stage_params = jax.tree.map(_abstract, template.params)
    stage_state = jax.tree.map(_abstract, template.model_state)
    slots, rows = _abstract(saved['params']), _abstract(saved['model_state'])
  num_stages = len(stage_params)
  specs = [flat_lib.flat_spec(p) for p in stage_params]
  state_specs = [flat_lib.flat_spec(s) for s in stage_state]
  plan = slots_lib.plan_slots(specs)
  if (_shapes(slots) != [(num_stages, size) for size in plan.sizes]
      or len(rows.shape) != 2 or rows.shape[0] != num_stages
      or any(s.size > rows.shape[1] for s in state_specs)):
    raise LayoutError(f'the saved {num_stages} stages do not have the shapes '
                      'of this model\'s stages')
  slot_abstract = tuple(jax.ShapeDtypeStruct(x.shape, x.dtype) for x in slots)

  def stacked(leaf):
    return jax.ShapeDtypeStruct((num_stages,) + tuple(leaf.shape), leaf.dtype)

  def one(leaf):
    if leaf.shape[:1] != (num_stages,):
      raise LayoutError(f'an optimizer state leaf of shape {leaf.shape} is '
                        'not one value per stage')
    return jax.ShapeDtypeStruct(tuple(leaf.shape[1:]), leaf.dtype)

  def to_rows(stages_tree):
    return tuple(slots_lib.stack_slots(specs, plan, stages_tree,
                                       slots[0].dtype))

  def to_stages(rows_tree):
    return slots_lib.unstack_slots(specs, plan, rows_tree)

  def same_per_stage(leaf):
    leaf = np.asarray(leaf)
    if not (leaf == leaf[:1]).all():
      raise LayoutError(
          'the optimizer state differs between stages (a per-stage step '
          f'count {leaf.tolist()}), which one device cannot hold')
    return leaf[0]

  if saved_per_stage:
    source = template.replace(
        params=stage_params, model_state=stage_state,
        opt_state=_map_moments(template.opt_state, template.params,
                               lambda _: stage_params, one))

    def convert(state: TrainState) -> TrainState:
      moments = _map_moments(state.opt_state, stage_params, to_rows,
                             lambda x: np.stack([np.asarray(x)] * num_stages))
      return state.replace(
          params=to_rows(state.params),
          model_state=np.stack([np.asarray(flat_lib.flatten(
              spec, dict(s), rows.shape[1], rows.dtype))
                                for spec, s in zip(state_specs,
                                                   state.model_state)]),
          opt_state=moments)
  else:
    source = template.replace(
        params=slot_abstract, model_state=rows,
        opt_state=_map_moments(template.opt_state, template.params,
                               lambda _: slot_abstract, stacked))

    def convert(state: TrainState) -> TrainState:
      moments = _map_moments(state.opt_state, slot_abstract, to_stages,
                             same_per_stage)
      row = np.asarray(state.model_state)
      return state.replace(
          params=to_stages(state.params),
          model_state=tuple(dict(flat_lib.unflatten(spec, row[i]))
                            for i, spec in enumerate(state_specs)),
          opt_state=moments)
  source = source.replace(step=_abstract(template.step),
                          rng=_abstract(template.rng))
  return source, convert
