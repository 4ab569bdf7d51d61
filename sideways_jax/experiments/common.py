"""What every runner shares: user errors, algorithm choice, sweeps, workdirs.

This module imports no runner, so every runner can import it (no circle).
"""

from __future__ import annotations

import functools
import io
import pathlib
from typing import Any

from etils import epath

WORKDIR_ROOT = 'workdirs'


class ConfigError(ValueError):
  """A config value that cannot work; the message says what to change."""


class RunError(RuntimeError):
  """A run that started and then failed (storage, data, a peer process).

  The message says what happened, what was kept and how to go on.
  """


def run_algorithms(config: Any, known: tuple[str, ...],
                   compared: tuple[str, ...]) -> tuple[str, ...]:
  """The algorithms a config trains, in order.

  Args:
    config: has `algorithm` (the one word that switches algorithm) and
      `compare` (True: run every algorithm of `compared`, in that order).
    known: the algorithm words this runner accepts.
    compared: what `compare=True` runs.

  Raises:
    ConfigError: `config.algorithm` is not one of `known`.
  """
  if config.algorithm not in known:
    raise ConfigError(f'algorithm={config.algorithm!r}: choose one of '
                      f'{tuple(known)}, e.g. --config.algorithm={known[0]}')
  return tuple(compared) if config.compare else (config.algorithm,)


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


def expand_sweep(config: Any) -> list[tuple[Any, Any]]:
  """[(value, config variant), ...] for `config.sweep`, or [(None, config)].

  A sweep varies one dotted field (`sweep.field`) over `sweep.choices`; every
  runner reads sweeps the same way.
  """
  field = config.sweep.field
  if not field:
    return [(None, config)]
  if not config.sweep.choices:
    raise ConfigError(f'sweep.field={field!r} has no sweep.choices')
  return [(value, with_field(config, field, value))
          for value in config.sweep.choices]


def sweep_label(config: Any, value: Any) -> str:
  """The folder name of one sweep value, e.g. 'stride=2' ('' for none)."""
  field = config.sweep.field
  return f'{field.rsplit(".", 1)[-1]}={value}' if field else ''


def default_workdir(config_file: str) -> epath.Path:
  """workdirs/<config name>[_<arg>] for a --config like 'configs/x.py:smoke'."""
  path, _, arg = config_file.partition(':')
  name = pathlib.Path(path).stem
  if arg:
    name += '_' + ''.join(c if c.isalnum() else '_' for c in arg)
  return epath.Path(WORKDIR_ROOT) / name


def save_figure(fig: Any, path: str | pathlib.Path
               ) -> pathlib.Path | epath.Path:
  """Writes a matplotlib figure as PNG and closes it; returns the path.

  `path` may be local (a `pathlib.Path` comes back) or a bucket URL (the
  PNG is rendered in memory, then written).
  """
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  path = epath.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.tight_layout()
  png = io.BytesIO()
  fig.savefig(png, format='png', dpi=120)
  plt.close(fig)
  path.write_bytes(png.getvalue())
  return path if '://' in str(path) else pathlib.Path(path)


def pyplot() -> Any:
  """matplotlib.pyplot with the file-only backend (no display needed)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt
