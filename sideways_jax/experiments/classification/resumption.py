"""Where a run resumes: checks of the workdir's checkpoints and config.

Process 0 decides (see `loop.train_and_evaluate`): `--resume=restart` moves
the old run aside; otherwise the newest checkpoint that verifies is taken
if this config may continue it (`sideways_jax/experiments/resume.py` says
which changes are accepted), and `--resume=fork` continues it with any
config whose state has the same tree (or the same stages on another
placement: see `checkpoint.layout_problem`).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from typing import Any, TextIO

from etils import epath

from sideways_jax.experiments import lock as lock_lib
from sideways_jax.experiments import resume as resume_lib
from sideways_jax.experiments import workdir as workdir_lib
from sideways_jax.experiments.classification import checkpoint as checkpoint_lib
from sideways_jax.experiments.classification import writers

CONFIG_FILE = 'config.json'
SUMMARY_FILE = 'summary.json'
CHECKPOINTS = 'checkpoints'
REPLACED = 'replaced'
# What --resume=restart moves aside (everything a run writes but the lock).
RUN_FILES = (CONFIG_FILE, writers.METRICS_FILE, SUMMARY_FILE, CHECKPOINTS,
             checkpoint_lib.REJECTED, 'tensorboard')


@dataclasses.dataclass(frozen=True)
class RunCall:
  """One call of `loop.train_and_evaluate`: what, where, until when, who."""
  config: Any
  algorithm: str
  workdir: epath.Path
  end: int
  out: TextIO
  lead: bool
  resume: str

  def say(self, message: str) -> None:
    print(f'[{self.algorithm}] {message}', file=self.out, flush=True)


def start(call: RunCall, numeric_keys: frozenset[str], template: Any,
          lock: lock_lib.WorkdirLock) -> int:
  """Process 0: makes the folder, takes its lock, then `plan`s the resume.

  Raises:
    workdir.WorkdirError, lock.LockedError: the folder cannot hold the run.
  """
  workdir_lib.prepare_folder(call.workdir)
  lock.acquire()
  return plan(call, numeric_keys, template)


def plan(call: RunCall, numeric_keys: frozenset[str], template: Any) -> int:
  """Process 0: the step to resume from (-1: start at 0), after the checks.

  Args:
    call: what this call trains, where, and the `--resume` mode.
    numeric_keys: the config keys that decide the numbers (`loop.prepare`).
    template: the initial state (its tree is compared with the saved one).
  """
  if call.resume == 'restart':
    moved = move_aside(call.workdir, RUN_FILES)
    if moved:
      call.say(f'starting over: the previous run is in {moved}')
    return -1
  folder = call.workdir / CHECKPOINTS
  step = checkpoint_lib.newest_verified(folder)
  if step is None:
    return -1
  recorded = _recorded_config(call.workdir / CONFIG_FILE)
  if recorded is None and call.resume != 'fork':
    raise resume_lib.ResumeError(
        f'{call.workdir} has a step-{step} checkpoint but no readable '
        f'{CONFIG_FILE} to check this config against: --resume=fork '
        'continues from it with this config, --resume=restart starts over '
        f'(the old run is moved to {call.workdir}/{REPLACED}/), or pass '
        'another --workdir')
  changes = resume_lib.compare(recorded or {}, call.config.to_dict(),
                               set(numeric_keys))
  problem = checkpoint_lib.layout_problem(folder, step, template)
  _accept(call, step, changes if recorded is not None else None, problem)
  return step


def _recorded_config(path: epath.Path) -> dict[str, Any] | None:
  """The config a run recorded, or None (missing or unreadable)."""
  try:
    recorded = json.loads(path.read_text())
  except (OSError, ValueError):
    return None
  return recorded if isinstance(recorded, dict) else None


def _accept(call: RunCall, step: int, changes: resume_lib.Changes | None,
            problem: str | None) -> None:
  """Accepts the config changes a resume allows, or raises ResumeError.

  Args:
    call: this call.
    step: the checkpoint's step.
    changes: how the config differs from the recorded one (None: unknown).
    problem: why the saved state cannot be restored as this config's
      (`checkpoint.layout_problem`), or None.
  """
  refused = dict(changes.refused) if changes else {}
  placement = dict(changes.placement) if changes else {}
  if problem is not None:
    changed = resume_lib.describe({**refused, **placement})
    raise resume_lib.ResumeError(
        f'the step-{step} checkpoint in {call.workdir} holds a state of '
        'other shapes than this config builds ('
        + (changed or 'same config: saved by another version of the code')
        + (f': {problem}' if placement else '')
        + '), so it cannot be continued: --resume=restart starts over (the '
        f'old run is moved to {call.workdir}/{REPLACED}/), or pass another '
        '--workdir')
  if refused and call.resume != 'fork':
    raise resume_lib.refusal(call.workdir, step, refused)
  if call.resume == 'fork' and (refused or changes is None):
    kept = move_aside(call.workdir, (CONFIG_FILE,), f'-fork-at-{step}')
    call.say(f'forking from step {step} with a new config ('
             + (resume_lib.describe(refused) if refused else 'none recorded')
             + f'); the old config is in {kept}')
  accepted = {**changes.safe, **placement} if changes else {}
  if accepted:
    grown = [k for k in accepted if k in resume_lib.MAY_GROW]
    call.say(f'resuming with {resume_lib.describe(accepted)}: changes that '
             'leave the numbers up to here as they were'
             + (f' ({", ".join(grown)} grew: the learning-rate schedule '
                'stretches from here on)' if grown else '')
             + ('; the saved state is laid out for the new placement'
                if placement else ''))


def move_aside(workdir: epath.Path, names: tuple[str, ...],
               suffix: str = '') -> epath.Path | None:
  """Moves `names` of `workdir` into replaced/<time><suffix>/ (if any)."""
  present = [name for name in names if (workdir / name).exists()]
  if not present:
    return None
  stamp = datetime.datetime.now(datetime.timezone.utc).strftime(
      '%Y%m%d-%H%M%S')
  target = workdir / REPLACED / f'{stamp}{suffix}'
  n = 1
  while target.exists():
    target, n = workdir / REPLACED / f'{stamp}{suffix}.{n}', n + 1
  target.mkdir(parents=True)
  for name in present:
    (workdir / name).rename(target / name)
  return target
