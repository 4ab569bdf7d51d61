"""A finished classification run as an artifact: load, evaluate, export.

    run = artifacts.load_run('workdirs/synthetic_simplecnn/bp')
    logits, _ = sj.apply_chain(run.stages, run.variables, frames)  # [B, C]
    artifacts.export_run(run, 'model.msgpack')    # see export.load_model

and from the command line (`experiments/main.py`):

    --mode=eval [--split=val] [--out=eval.json]   accuracies of W's runs
    --mode=export --out=model.msgpack             one run's variables

A run is rebuilt from its own `config.json` and its newest checkpoint that
verifies (the runner's manifests and orbax state). Loading only reads: a
checkpoint that fails to verify is skipped with a note, never moved, and
nothing is written into the workdir (eval writes only `--out`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

import jax
import ml_collections
from etils import epath

from sideways_jax import algorithms
from sideways_jax.experiments import common
from sideways_jax.experiments import export as export_lib
from sideways_jax.experiments import workdir as workdir_lib

RUN_MODES = ('eval', 'export')
# The config keys a `--config.` override may change in eval or export mode:
# where the data is and how it is read, never what the run trained.
EVAL_OVERRIDES = ('data.root', 'eval_batch_size', 'max_eval_batches',
                  'data.num_threads', 'data.prefetch')
_CONFIG_FILE, _CHECKPOINTS, _REPLACED = 'config.json', 'checkpoints', 'replaced'


class NoRunError(common.ConfigError):
  """The workdir holds no run to load (one line)."""


@dataclasses.dataclass(frozen=True)
class Run:
  """A trained run, rebuilt from its workdir.

  Attributes:
    stages: the model's stages, built from the recorded config's model
      table entry (as the runner evaluates them: the config's precision
      applies to training only).
    variables: per-stage variables dicts of the checkpoint (what
      `sj.apply_chain` and `Trainer.init_from` take).
    config: the run's recorded config (`config.json`).
    step: the checkpoint's step.
    algorithm: the algorithm that trained it.
    workdir: the run folder.
    num_classes: the classifier's number of classes.
  """
  stages: tuple
  variables: tuple[dict[str, Any], ...]
  config: ml_collections.ConfigDict
  step: int
  algorithm: str
  workdir: epath.Path
  num_classes: int

  def model_spec(self) -> dict[str, Any]:
    """The arguments `builders.build_stages` gives the model's builder."""
    model, res = self.config.model, self.config.data.resolution
    return {'name': model.name, 'num_classes': self.num_classes,
            'num_stages': model.num_stages, 'frame_shape': [res, res, 3],
            'kwargs': model.kwargs.to_dict()}


def _is_run(folder: epath.Path) -> bool:
  return (folder / _CHECKPOINTS).is_dir() and (folder / _CONFIG_FILE).exists()


def find_runs(workdir: workdir_lib.PathLike) -> list[epath.Path]:
  """The run folders of `workdir`: itself, <algorithm>/ or <sweep>/<alg>/.

  Raises:
    NoRunError: `workdir` is missing, not a folder, or holds no run.
  """
  root = workdir_lib.as_path(workdir)
  if not root.is_dir():
    raise NoRunError(f'workdir {root} does not exist' if not root.exists()
                     else f'workdir {root} is not a folder')
  if _is_run(root):
    return [root]
  runs = []
  for child in sorted(p for p in root.iterdir()
                      if p.is_dir() and p.name != _REPLACED):
    if _is_run(child):
      runs.append(child)
    else:
      runs.extend(sorted(q for q in child.iterdir()
                         if q.is_dir() and _is_run(q)))
  if not runs:
    raise NoRunError(f'workdir {root} holds no trained run (no '
                     f'<algorithm>/{_CHECKPOINTS}/ with a {_CONFIG_FILE}); '
                     'train it first with the same command without --mode')
  return runs


def newest_verifying(directory: epath.Path,
                     out: TextIO | None = None) -> int:
  """The newest checkpoint step under `directory` that verifies.

  Unlike the runner's `checkpoint.newest_verified` it moves nothing: one
  that fails is named in a note on `out` (default stderr) and skipped.

  Raises:
    CheckpointError: none verifies (or there is none).
  """
  from sideways_jax.experiments.classification import checkpoint  # pylint: disable=g-import-not-at-top
  step, failed = checkpoint.scan_newest(directory)
  if step is None:
    raise checkpoint.CheckpointError(
        f'no checkpoint in {directory} verifies'
        + (' (' + '; '.join(f'step {s}: {p}' for s, p in failed) + ')'
           if failed else ' (there is none)'))
  for bad, why in failed:
    print(f'note: checkpoint {bad} in {directory} does not verify ({why});'
          f' using step {step}', file=out or sys.stderr, flush=True)
  return step


def overrides_from(config: Any, keys: Sequence[str]) -> dict[str, Any]:
  """{dotted key: its value in `config`} for the `--config.` keys given."""
  values = {}
  for key in keys:
    node = common.get_field(config, key)
    values[key] = node.to_dict() if hasattr(node, 'to_dict') else node
  return values


def _dotted_get(config: Any, key: str) -> Any:
  """config[a][b] for 'a.b'; a missing key gives a value nothing equals."""
  try:
    return common.get_field(config, key)
  except (common.ConfigError, TypeError):
    return object()


def _dotted_set(config: Any, key: str, value: Any) -> None:
  *parents, leaf = key.split('.')
  for part in parents:
    config = config[part]
  config[leaf] = value


def _recorded_config(folder: epath.Path, split: str | None,
                     overrides: Mapping[str, Any]) -> ml_collections.ConfigDict:
  """The run's config.json, with the eval split and allowed overrides."""
  path = folder / _CONFIG_FILE
  try:
    recorded = json.loads(path.read_text())
  except ValueError as e:
    raise NoRunError(f'{path} is not readable JSON ({e}): the run cannot be '
                     'rebuilt') from None
  config = ml_collections.ConfigDict(recorded)
  for key, value in overrides.items():
    if key not in EVAL_OVERRIDES and _dotted_get(config, key) == value:
      continue  # The train command repeated as it ran: nothing changes.
    if key not in EVAL_OVERRIDES:
      raise common.ConfigError(
          f'--config.{key}: eval and export rebuild the run from its '
          f'{_CONFIG_FILE}; only {", ".join(EVAL_OVERRIDES)} (and --split) '
          'may change')
    _dotted_set(config, key, value)
  if split is not None:
    config.data.eval_split = split
  return config


def _restore(folder: epath.Path, *, split: str | None = None,
             overrides: Mapping[str, Any] | None = None,
             out: TextIO | None = None) -> tuple[Run, Any]:
  """(the run, the runner's `Prepared` pieces) of one run folder."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  from sideways_jax.experiments.classification import builders  # pylint: disable=g-import-not-at-top
  from sideways_jax.experiments.classification import checkpoint  # pylint: disable=g-import-not-at-top
  from sideways_jax.experiments.classification import loop  # pylint: disable=g-import-not-at-top
  from sideways_jax.experiments.classification import validate  # pylint: disable=g-import-not-at-top
  config = _recorded_config(folder, split, overrides or {})
  validate.validate_config(config)
  # loop.py names a run's folder after its algorithm (config.algorithm is
  # only the first of a compare run's two).
  algorithm = (folder.name if folder.name in algorithms.ALGORITHMS
               else config.algorithm)
  step = newest_verifying(folder / _CHECKPOINTS, out)
  prepared = loop.prepare(config, algorithm)
  directory = folder / _CHECKPOINTS
  if not checkpoint.state_fits(directory, step, prepared.state):
    raise checkpoint.CheckpointError(
        f'the step-{step} checkpoint in {directory} holds a state of other '
        f'shapes than its {_CONFIG_FILE} builds (saved by another version of '
        'the code?)')
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, prepared.state)
  state = ocp.StandardCheckpointer().restore(
      directory / str(step) / checkpoint.STATE, abstract)
  num_classes = prepared.eval_source.num_classes
  # Built again as `loop.prepare` builds the stages its eval step applies.
  run = Run(stages=builders.build_stages(config, num_classes),
            variables=tuple(prepared.backend.variables(state)),
            config=config, step=prepared.backend.step_of(state),
            algorithm=algorithm, workdir=folder, num_classes=num_classes)
  return run, prepared


def _one_run(workdir: workdir_lib.PathLike) -> epath.Path:
  runs = find_runs(workdir)
  if len(runs) > 1:
    root = workdir_lib.as_path(workdir)
    names = ', '.join(str(r.relative_to(root)) for r in runs)
    raise NoRunError(f'workdir {root} holds {len(runs)} runs ({names}): '
                     'name one, e.g. ' + str(runs[0]))
  return runs[0]


def load_run(workdir: workdir_lib.PathLike) -> Run:
  """The run in `workdir` at its newest checkpoint that verifies.

  Args:
    workdir: a run folder, or an experiment folder holding one run.

  Raises:
    NoRunError: no run there, or several (name one).
    CheckpointError: no checkpoint verifies.
  """
  return _restore(_one_run(workdir))[0]


def export_run(run: Run, path: workdir_lib.PathLike) -> None:
  """Writes `run`'s variables with its model spec (`export.load_model`)."""
  config = run.config
  export_lib.save_variables(path, run.variables, info={
      'model': run.model_spec(), 'step': run.step,
      'algorithm': run.algorithm,
      # The runner feeds frames as (x - mean) / std.
      'input_mean': config.data.mean, 'input_std': config.data.std,
      'config': config.to_dict()})


def evaluate(run: Run, prepared: Any) -> dict[str, Any]:
  """The run's accuracies and loss on its config's eval split."""
  from sideways_jax.experiments.classification import builders  # pylint: disable=g-import-not-at-top
  from sideways_jax.experiments.classification import loop  # pylint: disable=g-import-not-at-top
  config = run.config
  with builders.build_loader(config, prepared.eval_source,
                             train=False) as batches:
    result = loop.evaluate(prepared.eval_step, run.variables, batches,
                           max_batches=config.max_eval_batches)
    unscored = batches.stats.as_dict()['unscored_examples']
  return {**result, 'unscored_examples': unscored}


def _percent(value: float) -> str:
  return '-' if math.isnan(value) else f'{100 * value:.1f}%'


def format_rows(rows: Sequence[dict[str, Any]]) -> str:
  """The eval rows as one fixed-width table."""
  header = ['run', 'algorithm', 'step', 'split', 'videos', 'video acc',
            'frame acc', 'loss']
  lines = [[r['run'] or '.', r['algorithm'], str(r['step']), r['split'],
            str(r['num_videos']), _percent(r['video_accuracy']),
            _percent(r['frame_accuracy']), f'{r["loss"]:.4f}'] for r in rows]
  widths = [max(len(line[i]) for line in [header] + lines)
            for i in range(len(header))]
  fmt = lambda cells: '  '.join(c.ljust(w) for c, w in zip(cells, widths))
  return '\n'.join(fmt(line).rstrip() for line in
                   [header, ['-' * w for w in widths]] + lines)


def run_mode(mode: str, workdir: workdir_lib.PathLike, *,
             split: str | None = None, out: str | None = None,
             overrides: Mapping[str, Any] | None = None,
             stream: TextIO | None = None) -> list[dict[str, Any]] | str:
  """`--mode=eval` (a table of every run) or `--mode=export` (one file).

  Returns:
    eval: one row per run (also printed, and written to `out` if given);
    export: the written file's path.
  """
  stream = stream or sys.stdout
  root = workdir_lib.as_path(workdir)
  if mode == 'export':
    if not out:
      raise common.ConfigError('--mode=export needs --out=FILE, e.g. '
                               '--out=model.msgpack')
    if split is not None:
      raise common.ConfigError('--split applies to --mode=eval only')
    run = _restore(_one_run(root), overrides=overrides)[0]
    export_run(run, out)
    print(f'exported {run.algorithm} at step {run.step} to {out} '
          '(sideways_jax.experiments.export.load_model reads it)', file=stream)
    return out
  if mode != 'eval':
    raise common.ConfigError(f'--mode={mode!r}: choose one of {RUN_MODES}')
  rows = []
  for folder in find_runs(root):
    run, prepared = _restore(folder, split=split, overrides=overrides)
    label = '' if folder == root else str(folder.relative_to(root))
    rows.append({'run': label, 'algorithm': run.algorithm, 'step': run.step,
                 'split': run.config.data.eval_split,
                 **evaluate(run, prepared)})
  print(format_rows(rows), file=stream, flush=True)
  if out:
    workdir_lib.write_json(out, rows)
  return rows
