"""Checkpoints that can be trusted: finite, complete, verified, multi-host.

A checkpoint `checkpoints/<step>/` holds two orbax items: `state` (any
pytree of arrays: on a mesh each process writes only the shards its own
devices hold, so nothing is fetched to one host) and `run` (JSON: the
run's log and counters up to that step, see loop.py). Saving checks the
state finite first (a NaN never reaches the disk), waits for every process
to finish, then process 0 writes `manifest.json` (the size and sha256 of
every file) last: a checkpoint without a matching manifest does not count.

`newest_verified` walks the checkpoints from the newest; one that fails to
verify is named in a warning and moved to `rejected_checkpoints/` (never
deleted), and the next older one is tried. When none verifies it moves
nothing and says so in one line.

A state saved by a mesh run restores into a one-device run and back
(`state.relayout` lays it out for the new placement); `layout_problem` says
in one phrase when it cannot.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from etils import epath

from sideways_jax.experiments import common
from sideways_jax.experiments import manifest
from sideways_jax.experiments import workdir as workdir_lib
from sideways_jax.experiments.classification import state as state_lib

STATE, RUN = 'state', 'run'
REJECTED = 'rejected_checkpoints'


class NonFiniteStateError(FloatingPointError):
  """The state to save holds NaN/Inf; it was not written."""


class CheckpointError(common.RunError):
  """No checkpoint can be used, or one could not be written."""


@jax.jit
def _all_finite(leaves: list[jax.Array]) -> jax.Array:
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def all_finite(tree: Any) -> bool:
  """True when every floating-point leaf of `tree` is finite (any sharding)."""
  leaves = [x for x in jax.tree.leaves(tree)
            if jnp.issubdtype(x.dtype, jnp.inexact)]
  return not leaves or bool(np.asarray(_all_finite(leaves)))


def saved_steps(directory: workdir_lib.PathLike) -> list[int]:
  """Steps of the finished orbax step folders under `directory`, ascending."""
  directory = workdir_lib.as_path(directory)
  if not directory.is_dir():
    return []
  return sorted(int(p.name) for p in directory.iterdir()
                if p.name.isdigit() and p.is_dir())


def _move_aside(folder: epath.Path, rejected: epath.Path) -> epath.Path:
  rejected.mkdir(parents=True, exist_ok=True)
  target, n = rejected / folder.name, 1
  while target.exists():
    target, n = rejected / f'{folder.name}.{n}', n + 1
  folder.rename(target)
  return target


def scan_newest(directory: workdir_lib.PathLike
                ) -> tuple[int | None, list[tuple[int, str]]]:
  """Verifies checkpoints newest first, up to the first that verifies.

  Returns:
    (that step, or None when none does; [(step, problem)] of the newer
    checkpoints that failed, newest first). Older ones are not read.
  """
  directory = workdir_lib.as_path(directory)
  failed = []
  for step in reversed(saved_steps(directory)):
    problem = manifest.verify(directory / str(step))
    if problem is None:
      return step, failed
    failed.append((step, problem))
  return None, failed


def newest_verified(directory: workdir_lib.PathLike) -> int | None:
  """The newest checkpoint step that verifies; None when there is none.

  Checkpoints newer than it that fail are moved aside with a warning.

  Raises:
    CheckpointError: checkpoints exist but none verifies (none is moved).
  """
  directory = workdir_lib.as_path(directory)
  newest, failed = scan_newest(directory)
  if failed and newest is None:
    details = '; '.join(f'step {s}: {p}' for s, p in failed)
    raise CheckpointError(
        f'no checkpoint in {directory} verifies ({details}). Start over with '
        '--resume=restart (they are moved aside, not deleted), or pass '
        'another --workdir')
  for step, problem in failed:
    moved = _move_aside(directory / str(step), directory.parent / REJECTED)
    logging.warning('checkpoint %d in %s does not verify (%s): moved it to '
                    '%s; resuming from step %s', step, directory, problem,
                    moved, newest)
  return newest


def _tree_signature(tree: Any) -> list[tuple[str, tuple[int, ...]]]:
  """(path, shape) of every leaf, whatever the containers' types."""
  def name(entry):
    for attr in ('key', 'name', 'idx'):
      if hasattr(entry, attr):
        return str(getattr(entry, attr))
    return str(entry)
  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  return sorted(('/'.join(name(e) for e in path), tuple(leaf.shape))
                for path, leaf in leaves)


def _saved_tree(directory: epath.Path, step: int) -> Any:
  """The tree of shapes of checkpoint `step`'s state (orbax metadata)."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  return ocp.StandardCheckpointHandler().metadata(
      directory / str(step) / STATE).tree


def layout_problem(directory: workdir_lib.PathLike, step: int,
                   template: Any) -> str | None:
  """None when checkpoint `step` can be restored as `template`, else why.

  A state saved by a mesh run and a one-device state of the same stages
  restore into each other (`state.relayout`).
  """
  saved = _saved_tree(workdir_lib.as_path(directory), step)
  if _tree_signature(saved) == _tree_signature(template):
    return None
  if not isinstance(template, state_lib.TrainState):
    return 'the saved state has other shapes'
  try:
    state_lib.relayout(saved, template)
  except (state_lib.LayoutError, KeyError, TypeError, ValueError) as e:
    return str(e) or type(e).__name__
  return None


def state_fits(directory: workdir_lib.PathLike, step: int,
               template: Any) -> bool:
  """True when checkpoint `step` holds a state with `template`'s tree."""
  saved = _saved_tree(workdir_lib.as_path(directory), step)
  return _tree_signature(saved) == _tree_signature(template)


def _place(host: Any, like: jax.Array) -> jax.Array:
  """A host array as a global array placed like `like` (any process count)."""
  host = np.asarray(host, like.dtype)
  return jax.make_array_from_callback(host.shape, like.sharding,
                                      lambda index: host[index])


class Checkpointer:
  """Saves and restores (state, run record) pairs; see the module doc."""

  def __init__(self, directory: workdir_lib.PathLike, *, max_to_keep: int,
               lead: bool = True):
    import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
    if max_to_keep < 1:
      raise ValueError(f'max_to_keep must be >= 1, got {max_to_keep}')
    self._ocp, self._lead = ocp, lead
    self.directory = workdir_lib.as_path(directory)
    # Saves are synchronous: the manifest can only be written once every
    # file exists, and the train step donates the state's buffers.
    self._manager = ocp.CheckpointManager(
        self.directory, item_names=(STATE, RUN),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True,
            cleanup_tmp_directories=True, enable_async_checkpointing=False))

  def latest_step(self) -> int | None:
    """Step of the newest saved checkpoint, or None."""
    return self._manager.latest_step()

  def restore(self, step: int, template: Any) -> tuple[Any, dict[str, Any]]:
    """(state shaped and placed like `template`, run record) of `step`.

    A state saved by the other placement (a mesh run's for a one-device
    run, or back) is read whole on every process, converted to
    `template`'s layout (`state.relayout`) and placed like it.
    """
    ocp = self._ocp
    saved = _saved_tree(self.directory, step)
    convert = None
    if _tree_signature(saved) == _tree_signature(template):
      abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
    else:
      source, convert = state_lib.relayout(saved, template)
      # Whole arrays on every device of the template's placement: replicated.
      step_sharding = template.step.sharding
      whole = (jax.sharding.NamedSharding(step_sharding.mesh,
                                          jax.sharding.PartitionSpec())
               if isinstance(step_sharding, jax.sharding.NamedSharding)
               else step_sharding)
      abstract = jax.tree.map(
          lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=whole),
          source)
    restored = self._manager.restore(step, args=ocp.args.Composite(
        **{STATE: ocp.args.StandardRestore(abstract),
           RUN: ocp.args.JsonRestore()}))
    state = restored[STATE]
    if convert is not None:
      state = jax.tree.map(_place, convert(jax.tree.map(np.asarray, state)),
                           template)
    return state, restored[RUN]

  def save(self, step: int, state: Any, record: dict[str, Any]) -> None:
    """Saves checkpoint `step` (all processes call it) and its manifest.

    Raises:
      NonFiniteStateError: `state` holds NaN/Inf (nothing is written).
      OSError: ENOSPC when the disk cannot hold it (nothing is written).
    """
    if step in self._manager.all_steps():
      return
    if not all_finite(state):
      raise NonFiniteStateError(f'the state at step {step} holds NaN/Inf')
    # Every process's shards go to the same folder: the whole state, plus
    # room for orbax's metadata and the JSON record.
    needed = sum(x.nbytes for x in jax.tree.leaves(state))
    workdir_lib.check_free_space(self.directory, int(needed * 1.02) + 2**18
                                 + 2 * len(json.dumps(record)))
    ocp = self._ocp
    self._manager.save(step, args=ocp.args.Composite(
        **{STATE: ocp.args.StandardSave(state),
           RUN: ocp.args.JsonSave(record)}))
    if self._lead:
      manifest.write(self.directory / str(step))

  def close(self) -> None:
    """Waits for pending work and releases the manager."""
    self._manager.wait_until_finished()
    self._manager.close()

  def __enter__(self) -> Checkpointer:
    return self

  def __exit__(self, *exc: object) -> None:
    self.close()
