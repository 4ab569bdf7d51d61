"""Orbax checkpoints of a TrainState; a guard against resuming another run."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterable, Mapping
from typing import Any

import jax
import numpy as np

from sideways_jax.experiments.classification import state as state_lib


class Checkpointer:
  """Saves the TrainState every few steps; restores the latest one.

  Saves are atomic (orbax writes a temporary folder and renames it when
  complete), so a run killed mid-save resumes from the previous checkpoint.
  """

  def __init__(self, directory: str | pathlib.Path, *, max_to_keep: int):
    import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
    if max_to_keep < 1:
      raise ValueError(f'max_to_keep must be >= 1, got {max_to_keep}')
    self._ocp = ocp
    self.directory = pathlib.Path(directory).absolute()
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True,
            cleanup_tmp_directories=True))

  def latest_step(self) -> int | None:
    """Step of the newest complete checkpoint, or None."""
    return self._manager.latest_step()

  def restore_latest(self, template: state_lib.TrainState
                    ) -> state_lib.TrainState | None:
    """The newest checkpoint shaped like `template`; None if there is none."""
    step = self.latest_step()
    if step is None:
      return None
    abstract = jax.tree.map(self._ocp.utils.to_shape_dtype_struct, template)
    return self._manager.restore(
        step, args=self._ocp.args.StandardRestore(abstract))

  def save(self, state: state_lib.TrainState, step: int) -> None:
    """Starts saving `state` as checkpoint `step` (ends in the background)."""
    if step in self._manager.all_steps():
      return
    # The train step donates the state's buffers to the next step, which
    # overwrites them in place while the save still writes in the
    # background: save a private host copy (np.array copies; on CPU
    # device_get alone may return views of the donated buffers).
    host_state = jax.tree.map(np.array, jax.device_get(state))
    self._manager.save(step, args=self._ocp.args.StandardSave(host_state))

  def close(self) -> None:
    """Waits for pending saves and releases the manager."""
    self._manager.wait_until_finished()
    self._manager.close()

  def __enter__(self) -> Checkpointer:
    return self

  def __exit__(self, *exc: object) -> None:
    self.close()


def _flatten(tree: Mapping[str, Any], prefix: str = '') -> dict[str, Any]:
  flat = {}
  for key, value in tree.items():
    if isinstance(value, Mapping):
      flat.update(_flatten(value, f'{prefix}{key}.'))
    else:
      flat[f'{prefix}{key}'] = value
  return flat


def check_same_run(path: str | pathlib.Path, config: Mapping[str, Any], *,
                   ignore: Iterable[str] = ()) -> None:
  """Records `config` in `path`, or checks it equals the one recorded there.

  Resuming a run with different settings would silently mix two
  experiments, so a mismatch is an error naming the keys that differ.

  Args:
    path: a JSON file in the run's folder.
    config: the run's config as a (nested) JSON-compatible mapping.
    ignore: dotted keys that may change between resumes (e.g. logging rates).

  Raises:
    ValueError: when the recorded config differs in a key not ignored.
  """
  path = pathlib.Path(path)
  current = json.loads(json.dumps(config))  # Tuples -> lists, as on disk.
  if not path.exists():
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(current, indent=2, sort_keys=True))
    return
  recorded = _flatten(json.loads(path.read_text()))
  flat = _flatten(current)
  ignored = set(ignore)
  differ = sorted(k for k in set(recorded) | set(flat)
                  if k not in ignored and recorded.get(k) != flat.get(k))
  if differ:
    details = ', '.join(f'{k}: {recorded.get(k)!r} -> {flat.get(k)!r}'
                        for k in differ)
    raise ValueError(
        f'{path.parent} holds a run with a different config ({details}). '
        'Resuming it would mix two experiments: pass another --workdir, or '
        'delete that folder to start over.')
