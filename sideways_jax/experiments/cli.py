"""The command line: load and check a config, run its runner, report errors.

`experiments/main.py` is a thin absl program over this module. Every config
names its runner in `config.runner` (see `RUNNERS`), so one command runs any
experiment:

  python experiments/main.py --config=configs/<name>.py[:smoke] \
      [--config.<key>=<value> ...] [--workdir=DIR] [--verbose]

`--mode=eval` / `--mode=export` read a classification workdir's trained
runs instead of training (see `artifacts.py`).

A user's mistake (a missing or non-experiment config file, an unknown
`:arg` word, a misspelt key, a value that cannot work, a missing dataset or
only unreadable videos, a workdir that is a file or not writable, another
run holding the workdir, a config change a resume cannot take) ends in one
line on stderr and exit code 2; a run that started and then failed (a
NaN/Inf, a full disk, no checkpoint that verifies, a dead peer process,
Ctrl-C) in one line and exit code 1; never a traceback. `--verbose` or
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
from sideways_jax.data import UnreadableVideosError
from sideways_jax.experiments import common
from sideways_jax.experiments import workdir as workdir_lib

# config.runner -> the module whose `run(config, workdir)` runs it.
RUNNERS = {
    'classification': 'sideways_jax.experiments.classification.experiment',
    'streaming': 'sideways_jax.experiments.streaming.experiment',
    'speed': 'sideways_jax.experiments.speed',
}
# Runners whose runs resume from checkpoints (and take --resume).
RESUMABLE = ('classification',)
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


def override_keys(argv: Sequence[str]) -> list[str]:
  """The dotted keys of the `--config.<key>=...` arguments, in order."""
  return [arg[len(CONFIG_PREFIX):].split('=', 1)[0] for arg in argv
          if arg.startswith(CONFIG_PREFIX)]


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


# A user's mistake or set-up exits 2; a run that started and failed exits 1.
_USER_ERRORS = (common.ConfigError, DatasetLayoutError, UnreadableVideosError)
_RUN_ERRORS = (common.RunError, FloatingPointError)
# What a multi-host run's survivors see when a peer dies (jax / gloo).
_PEER_GONE = ('heartbeat', 'another task died', 'Connection reset',
              'Connection closed', 'connection refused', 'coordination service',
              'DEADLINE_EXCEEDED', 'UNAVAILABLE')


def _multi_process() -> bool:
  import jax  # pylint: disable=g-import-not-at-top
  return jax.process_count() > 1


def _one_line(error: BaseException) -> tuple[str, int] | None:
  """(message, exit code) for an error a user or machine can cause."""
  if isinstance(error, KeyboardInterrupt):
    return ('interrupted; re-run the same command to resume from the newest '
            'checkpoint', 1)
  if isinstance(error, DatasetLayoutError):
    return error.summary, 2
  if isinstance(error, _USER_ERRORS):
    return str(error), 2
  if isinstance(error, _RUN_ERRORS):
    return str(error), 1
  if isinstance(error, OSError):
    code = 2 if error.errno in workdir_lib.USER_ERRNOS else 1
    return workdir_lib.describe_os_error(error), code
  text = str(error)
  if (type(error).__name__ in ('JaxRuntimeError', 'XlaRuntimeError')
      and _multi_process()
      and any(word.lower() in text.lower() for word in _PEER_GONE)):
    first = next((line for line in text.splitlines() if line.strip()), text)
    return (f'a process of this multi-host run stopped ({first[:300]}); '
            'restart every process with the same command to resume from the '
            'newest checkpoint', 1)
  return None


def run(config: Any, *, config_file: str, workdir: str | None,
        verbose: bool = False, expect_runner: str | None = None,
        resume: str = 'auto', mode: str = 'train', split: str | None = None,
        out: str | None = None, overrides: Sequence[str] = ()) -> Any:
  """Runs `config` with the runner it names; user errors exit cleanly.

  Args:
    config: the parsed, locked `--config`.
    config_file: the `--config` value (names the default workdir).
    workdir: `--workdir` (a folder or a `gs://` URL), or None for
      `common.default_workdir(config_file)`.
    verbose: re-raise errors with their traceback instead of one line.
    expect_runner: refuse configs of another runner (an entry point that
      runs only one kind).
    resume: `--resume`: 'auto', 'fork' or 'restart' (classification runs;
      see `sideways_jax/experiments/resume.py`).
    mode: `--mode`: 'train', or (classification runs) 'eval' / 'export' of
      the workdir's trained runs (see `sideways_jax/experiments/artifacts.py`).
    split: `--split`, the split `--mode=eval` evaluates.
    out: `--out`, the file `--mode=eval` or `--mode=export` writes.
    overrides: the `--config.<key>` keys given (eval and export apply only
      the few that leave the trained run as it is).

  Returns:
    What the runner's `run` returns (or `artifacts.run_mode`'s).

  Raises:
    SystemExit: a user error (exit 2) or a failed run (exit 1), after
      printing it on one line.
  """
  if config.runner not in RUNNERS:
    fail(f'runner={config.runner!r}: choose one of {tuple(RUNNERS)}', 2)
  if expect_runner and config.runner != expect_runner:
    fail(f'{config_file} is a {config.runner!r} config; run it with '
         f'python experiments/main.py --config={config_file}', 2)
  if resume != 'auto' and config.runner not in RESUMABLE:
    fail(f'--resume={resume} applies to {RESUMABLE} runs only', 2)
  folder = workdir_lib.as_path(workdir or common.default_workdir(config_file))
  if mode != 'train':
    return _run_mode(config, folder, verbose=verbose, resume=resume,
                     mode=mode, split=split, out=out, overrides=overrides)
  for name, value, modes in (('split', split, '--mode=eval'),
                             ('out', out, '--mode=eval or --mode=export')):
    if value is not None:
      fail(f'--{name} applies to {modes} only', 2)
  existed = folder.exists()
  try:
    workdir_lib.prepare_folder(folder)
    # Imported here so that a run loads only its own runner's dependencies.
    runner = importlib.import_module(RUNNERS[config.runner])
    if config.runner in RESUMABLE:
      return runner.run(config, folder, resume=resume)
    return runner.run(config, folder)
  except BaseException as e:  # pylint: disable=broad-except
    handled = _one_line(e)
    if handled is None or verbose:
      raise
    if not existed:
      # A failed start leaves no half-made folder (a run's lock and empty
      # folders go; anything a run wrote stays).
      workdir_lib.remove_empty_dirs(folder)
    fail(*handled)


def _run_mode(config: Any, folder: Any, *, verbose: bool, resume: str,
              mode: str, split: str | None, out: str | None,
              overrides: Sequence[str]) -> Any:
  """--mode=eval or export: reads the workdir's runs, writes only --out."""
  from sideways_jax.experiments import artifacts  # pylint: disable=g-import-not-at-top
  if config.runner not in RESUMABLE:
    fail(f'--mode={mode} applies to {RESUMABLE} runs only', 2)
  if resume != 'auto':
    fail('--resume applies to --mode=train only', 2)
  try:
    return artifacts.run_mode(
        mode, folder, split=split, out=out,
        overrides=artifacts.overrides_from(config, overrides))
  except BaseException as e:  # pylint: disable=broad-except
    handled = _one_line(e)
    if handled is None or verbose:
      raise
    fail(*handled)
