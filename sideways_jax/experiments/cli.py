"""What every experiment runner shares, and the hand-off to the right one.

Every config names its runner in `config.runner`, so one command,
`python experiments/main.py --config=configs/<name>.py`, runs any paper
experiment: action recognition (`sideways_jax.train`) or streaming
auto-encoding (`sideways_jax.streaming`). Both read `config.algorithm`
('sideways' or 'bp': the one word that switches algorithm) and
`config.compare` (train both and report them side by side).
"""

from __future__ import annotations

import functools
import pathlib
from typing import Any

from sideways_jax import registry

RUNNERS = ('classification', 'streaming')
# The gradient algorithms of sideways_jax.registry, BP first.
ALGORITHMS = tuple(sorted(registry.ALGORITHMS))
WORKDIR_ROOT = 'workdirs'


class ConfigError(ValueError):
  """A config value that cannot work; the message says what to change."""


def run_algorithms(config: Any) -> tuple[str, ...]:
  """The algorithms a config trains, in order: both (BP first) to compare.

  Raises:
    ConfigError: `config.algorithm` is not one of ALGORITHMS.
  """
  if config.algorithm not in ALGORITHMS:
    raise ConfigError(f'algorithm={config.algorithm!r}: choose one of '
                      f'{ALGORITHMS}, e.g. --config.algorithm=bp')
  return ALGORITHMS if config.compare else (config.algorithm,)


def get_field(config: Any, dotted: str) -> Any:
  """The value of a dotted key such as 'data.stride'.

  Raises:
    ConfigError: the key does not exist.
  """
  node = config
  for key in dotted.split('.'):
    if key not in node:
      raise ConfigError(f'sweep.field={dotted!r}: no config key {key!r} there')
    node = node[key]
  return node


def with_field(config: Any, dotted: str, value: Any) -> Any:
  """A copy of `config` with the dotted key set (a sweep's variant).

  Raises:
    ConfigError: the key does not exist, or `value` has the wrong type.
  """
  get_field(config, dotted)  # Names a missing key before anything is copied.
  variant = config.copy_and_resolve_references()
  *parents, leaf = dotted.split('.')
  node = functools.reduce(lambda parent, key: parent[key], parents, variant)
  try:
    node[leaf] = value
  except TypeError as e:
    raise ConfigError(f'sweep.field={dotted!r} cannot take {value!r}: '
                      f'{e}') from None
  return variant


def default_workdir(config_file: str) -> pathlib.Path:
  """workdirs/<config name>[_<arg>] for a --config like 'configs/x.py:smoke'."""
  path, _, arg = config_file.partition(':')
  name = pathlib.Path(path).stem
  if arg:
    name += '_' + ''.join(c if c.isalnum() else '_' for c in arg)
  return pathlib.Path(WORKDIR_ROOT) / name


def main(config: Any, *, config_file: str, workdir: str | None) -> None:
  """Runs `config` with the runner it names; user errors exit cleanly.

  Args:
    config: the parsed, locked `--config`.
    config_file: the `--config` value (names the default workdir).
    workdir: `--workdir`, or None for `default_workdir(config_file)`.

  Raises:
    SystemExit: `config.runner` is not one of RUNNERS, or the run stopped on
      a user error (a bad config value, a missing dataset, a NaN loss).
  """
  # Imported here so that a run loads only its own runner's dependencies.
  if config.runner == 'classification':
    from sideways_jax.train import experiment  # pylint: disable=g-import-not-at-top
  elif config.runner == 'streaming':
    from sideways_jax.streaming import experiment  # pylint: disable=g-import-not-at-top
  else:
    raise SystemExit(f'error: runner={config.runner!r}: choose one of '
                     f'{RUNNERS}')
  try:
    experiment.run(config, workdir or default_workdir(config_file))
  except experiment.USER_ERRORS as e:
    raise SystemExit(f'error: {e}') from e
