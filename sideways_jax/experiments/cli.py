"""The command line: load and check a config, run its runner, report errors.

`experiments/main.py` is a thin absl program over this module. Every config
names its runner in `config.runner` (see `RUNNERS`), so one command runs any
experiment:

  python experiments/main.py --config=configs/<name>.py[:smoke] \
      [--config.<key>=<value> ...] [--workdir=DIR] [--verbose]

A user's mistake (a missing or non-experiment config file, an unknown
`:arg` word, a misspelt key, a value that cannot work, a missing dataset, a
non-finite loss) ends in one line on stderr and exit code 2 (1 for a run
that started and then failed), never a traceback; `--verbose` or
`SIDEWAYS_JAX_VERBOSE=1` shows the full traceback instead.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
import pathlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

from sideways_jax.data import DatasetLayoutError
from sideways_jax.experiments import common

# config.runner -> the module whose `run(config, workdir)` runs it.
RUNNERS = {
    'classification': 'sideways_jax.experiments.classification.experiment',
    'streaming': 'sideways_jax.experiments.streaming.experiment',
    'speed': 'sideways_jax.experiments.speed',
}
VERBOSE_ENV = 'SIDEWAYS_JAX_VERBOSE'
CONFIG_PREFIX = '--config.'


class UsageError(Exception):
  """A command line that cannot run; the message is the whole explanation."""


def verbose_requested(argv: Sequence[str]) -> bool:
  """True for `--verbose` on the command line or SIDEWAYS_JAX_VERBOSE=1."""
  return ('--verbose' in argv or '--verbose=true' in argv
          or os.environ.get(VERBOSE_ENV, '') not in ('', '0'))


def _config_arg(argv: Sequence[str]) -> str | None:
  for i, arg in enumerate(argv):
    if arg.startswith('--config='):
      return arg.split('=', 1)[1]
    if arg == '--config' and i + 1 < len(argv):
      return argv[i + 1]
  return None


def _experiment_configs() -> list[str]:
  """The config files a user can pass (those with a get_config())."""
  folder = pathlib.Path('configs')
  if not folder.is_dir():
    return []
  return sorted(str(p) for p in folder.glob('*.py')
                if 'def get_config' in p.read_text(encoding='utf-8'))


def load_config(config_arg: str) -> Any:
  """Loads `path[:arg]` the way `--config` does, with one-line errors.

  Raises:
    UsageError: the file is missing, is not an experiment config, or does
      not accept `arg`.
  """
  path, _, arg = config_arg.partition(':')
  file = pathlib.Path(path)
  if not file.is_file():
    known = ', '.join(_experiment_configs()) or 'configs/*.py'
    raise UsageError(f'config file {path!r} not found (run from the '
                     f'repository root); experiment configs: {known}')
  spec = importlib.util.spec_from_file_location('_sideways_config', file)
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
  except Exception as e:  # pylint: disable=broad-except
    raise UsageError(f'{path}: cannot load it ({type(e).__name__}: {e})'
                     ) from e
  if not hasattr(module, 'get_config'):
    raise UsageError(
        f'{path} is not an experiment config (it has no get_config()); '
        f'choose one of {", ".join(_experiment_configs())}')
  try:
    config = module.get_config(arg or None)
  except ValueError as e:
    raise UsageError(f'{config_arg}: {e}') from e
  if 'runner' not in config or config.runner not in RUNNERS:
    raise UsageError(f'{path}: runner={config.get("runner")!r} is not one of '
                     f'{tuple(RUNNERS)}')
  return config


def dotted_keys(config: Any, prefix: str = '') -> list[str]:
  """Every dotted key of a (nested) ConfigDict, leaves and sub-dicts."""
  keys = []
  for key, value in config.items():
    keys.append(prefix + key)
    if hasattr(value, 'items'):
      keys.extend(dotted_keys(value, f'{prefix}{key}.'))
  return keys


def suggest_key(config: Any, key: str) -> str | None:
  """The existing dotted key a misspelt `key` most likely meant.

  Matches the whole dotted key first, then the last component against every
  key's last component (so 'lerning_rate' finds 'optimizer.learning_rate').
  """
  keys = dotted_keys(config)
  close = difflib.get_close_matches(key, keys, n=1, cutoff=0.75)
  if close:
    return close[0]
  leaf = key.rsplit('.', 1)[-1]
  by_leaf = {}
  for k in keys:
    by_leaf.setdefault(k.rsplit('.', 1)[-1], k)
  close = difflib.get_close_matches(leaf, list(by_leaf), n=1, cutoff=0.7)
  return by_leaf[close[0]] if close else None


def check_overrides(config: Any, argv: Sequence[str]) -> None:
  """Raises UsageError for a `--config.<key>=...` naming no config key."""
  keys = set(dotted_keys(config))
  for arg in argv:
    if not arg.startswith(CONFIG_PREFIX):
      continue
    key = arg[len(CONFIG_PREFIX):].split('=', 1)[0]
    if key in keys:
      continue
    hint = suggest_key(config, key)
    raise UsageError(f'unknown config key {key!r} in {arg}'
                     + (f'; did you mean --config.{hint}?' if hint else
                        '; the config has no such key'))


def parse_flags(argv: Sequence[str],
                parse: Callable[[Sequence[str]], list[str]]) -> list[str]:
  """Checks --config and its overrides, then lets absl parse the flags.

  Args:
    argv: the command line.
    parse: absl's parser (`flags.FLAGS`).

  Raises:
    UsageError: any mistake above, or a value absl cannot parse.
  """
  config_arg = _config_arg(argv)
  if config_arg is None:
    raise UsageError('--config is required, e.g. '
                     '--config=configs/synthetic_simplecnn.py')
  check_overrides(load_config(config_arg), argv)
  return parse_plain(argv, parse)


def parse_plain(argv: Sequence[str],
                parse: Callable[[Sequence[str]], list[str]]) -> list[str]:
  """absl's parse, with its error (e.g. a bad value) as a UsageError."""
  try:
    return parse(argv)
  except Exception as e:  # pylint: disable=broad-except
    # absl's message for a bad value is one line after the flag name.
    raise UsageError(str(e).strip().splitlines()[0]) from e


def fail(message: str, code: int) -> None:
  """Prints `error: message` as one line on stderr and exits with `code`."""
  print(f'error: {" ".join(message.split())}', file=sys.stderr, flush=True)
  raise SystemExit(code)


def _remove_empty_dirs(root: pathlib.Path) -> None:
  """Removes `root` and its sub-folders where they hold no file."""
  if not root.is_dir():
    return
  for folder in sorted((p for p in root.rglob('*') if p.is_dir()),
                       key=lambda p: len(p.parts), reverse=True):
    if not any(folder.iterdir()):
      folder.rmdir()
  if not any(root.iterdir()):
    root.rmdir()


def run(config: Any, *, config_file: str, workdir: str | None,
        verbose: bool = False, expect_runner: str | None = None) -> Any:
  """Runs `config` with the runner it names; user errors exit cleanly.

  Args:
    config: the parsed, locked `--config`.
    config_file: the `--config` value (names the default workdir).
    workdir: `--workdir`, or None for `common.default_workdir(config_file)`.
    verbose: re-raise errors with their traceback instead of one line.
    expect_runner: refuse configs of another runner (an entry point that
      runs only one kind).

  Returns:
    What the runner's `run` returns.

  Raises:
    SystemExit: a user error, after printing it on one line.
  """
  if config.runner not in RUNNERS:
    fail(f'runner={config.runner!r}: choose one of {tuple(RUNNERS)}', 2)
  if expect_runner and config.runner != expect_runner:
    fail(f'{config_file} is a {config.runner!r} config; run it with '
         f'python experiments/main.py --config={config_file}', 2)
  folder = pathlib.Path(workdir or common.default_workdir(config_file))
  existed = folder.exists()
  try:
    # Imported here so that a run loads only its own runner's dependencies.
    runner = importlib.import_module(RUNNERS[config.runner])
    return runner.run(config, folder)
  except (common.ConfigError, DatasetLayoutError, FloatingPointError,
          KeyboardInterrupt) as e:
    if not existed:
      _remove_empty_dirs(folder)
    if verbose:
      raise
    if isinstance(e, KeyboardInterrupt):
      fail('interrupted; re-run the same command to resume from the newest '
           'checkpoint', 1)
    if isinstance(e, DatasetLayoutError):
      fail(e.summary, 2)
    fail(str(e), 1 if isinstance(e, FloatingPointError) else 2)
