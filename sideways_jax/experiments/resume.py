"""Which config changes a run may be resumed with, derived from the code.

A run's numbers are decided by what is built from its config before the
first step: data sources, model, optimizer and schedule, the gradient
program and the initial state. `record_reads` wraps a config so that this
building records every key it reads; those keys decide the numbers. Any
other key only paces, logs or feeds the run (log/eval/checkpoint cadence,
eval batches, loader threads, TensorBoard, ...) and may change on resume.
No list of safe keys is kept by hand: a key a builder starts to read
becomes compared by itself.

Three rules say what reading alone cannot:

* `PER_PROCESS` sections say how this process joins a multi-host run
  (process id, coordinator address, ...): never compared.
* `MAY_GROW` keys may grow: a longer `num_train_steps` trains longer (the
  learning-rate schedule then spans the new length from the resumed step).
* `PLACEMENT` keys move the same state to other devices (a mesh run resumed
  on one device, or back): accepted when the stages are the same; the saved
  state is then laid out for the new placement (parameters, batchnorm and
  optimizer state, see `classification/state.py`), or refused in one line
  that says why it cannot be.

Everything else that changed is refused in one line that names each key
and the ways out: another workdir, `--resume=fork` (continue from the
checkpoint with the new config) or `--resume=restart` (start over; the old
run is moved aside, never deleted).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

from sideways_jax.experiments import common

PER_PROCESS = ('distributed',)
MAY_GROW = ('num_train_steps',)
PLACEMENT = ('mesh.stages',)
MODES = ('auto', 'fork', 'restart')


class ResumeError(common.ConfigError):
  """The workdir holds a run that this config cannot continue."""


class _Recorder(Mapping):
  """A read-only view of a ConfigDict that records the dotted keys read."""

  def __init__(self, node: Any, prefix: str, seen: set[str]):
    self._node, self._prefix, self._seen = node, prefix, seen

  def _get(self, key: str) -> Any:
    value = self._node[key]
    dotted = self._prefix + key
    if hasattr(value, 'to_dict'):
      return _Recorder(value, dotted + '.', self._seen)
    self._seen.add(dotted)
    return value

  def __getattr__(self, name: str) -> Any:
    if name.startswith('_'):
      raise AttributeError(name)
    try:
      return self._get(name)
    except KeyError:
      raise AttributeError(name) from None

  def __getitem__(self, key: str) -> Any:
    return self._get(key)

  def __contains__(self, key: object) -> bool:
    return key in self._node  # Asking whether a key exists reads no value.

  def __iter__(self) -> Iterator[str]:
    return iter(self._node.keys())

  def __len__(self) -> int:
    return len(self._node)

  def to_dict(self) -> dict[str, Any]:
    """The plain dict; every leaf under this node counts as read."""
    plain = self._node.to_dict()
    self._seen.update(flatten(plain, self._prefix))
    return plain


def record_reads(config: Any) -> tuple[Any, set[str]]:
  """(a view of `config` to build with, the set of dotted keys it read)."""
  seen: set[str] = set()
  return _Recorder(config, '', seen), seen


def flatten(tree: Mapping[str, Any], prefix: str = '') -> dict[str, Any]:
  """{'a.b': leaf} for a nested mapping (tuples as lists, as JSON has them)."""
  flat = {}
  for key, value in tree.items():
    if isinstance(value, Mapping):
      flat.update(flatten(value, f'{prefix}{key}.'))
    else:
      flat[f'{prefix}{key}'] = list(value) if isinstance(value, tuple) else (
          value)
  return flat


def _under(key: str, sections: tuple[str, ...]) -> bool:
  return any(key == s or key.startswith(s + '.') for s in sections)


@dataclasses.dataclass
class Changes:
  """How the recorded config and the new one differ (key: (old, new)).

  Attributes:
    safe: keys that never change the numbers, or may grow and grew.
    placement: keys that move the state to other devices; fine when the
      saved state can be laid out as the new one.
    refused: keys that change the numbers.
  """
  safe: dict[str, tuple[Any, Any]]
  placement: dict[str, tuple[Any, Any]]
  refused: dict[str, tuple[Any, Any]]


def compare(recorded: Mapping[str, Any], current: Mapping[str, Any],
            numeric_keys: set[str]) -> Changes:
  """Sorts the keys whose values differ between two nested configs."""
  old, new = flatten(recorded), flatten(current)
  changes = Changes({}, {}, {})
  for key in sorted(set(old) | set(new)):
    pair = (old.get(key), new.get(key))
    if pair[0] == pair[1] or _under(key, PER_PROCESS):
      continue
    if key in MAY_GROW:
      grew = all(isinstance(v, int) for v in pair) and pair[1] > pair[0]
      (changes.safe if grew else changes.refused)[key] = pair
    elif key in PLACEMENT:
      changes.placement[key] = pair
    elif key in numeric_keys:
      changes.refused[key] = pair
    else:
      changes.safe[key] = pair
  return changes


def describe(changes: Mapping[str, tuple[Any, Any]]) -> str:
  """'key: old -> new, ...'."""
  return ', '.join(f'{k}: {a!r} -> {b!r}' for k, (a, b) in changes.items())


def refusal(run_dir: Any, step: int, changes: Mapping[str, tuple[Any, Any]],
            why: str = 'they change the numbers') -> ResumeError:
  """The one-line error for a config that cannot continue the run."""
  return ResumeError(
      f'{run_dir} holds a run with another config at step {step} '
      f'({describe(changes)}; {why}). Pass another --workdir for a new run, '
      f'or --resume=fork to continue from its step-{step} checkpoint with '
      'this config, or --resume=restart to start it over (the old run is '
      f'moved to {run_dir}/replaced/)')


def check_mode(mode: str) -> None:
  """Raises ConfigError unless `mode` is one of MODES."""
  if mode not in MODES:
    raise common.ConfigError(f'--resume={mode!r}: choose one of {MODES}')
