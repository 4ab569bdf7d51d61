"""A streaming auto-encoding experiment: one table, one sweep, files.

`run(config, workdir)` trains and evaluates the config's algorithms at the
config's own setting and at every value of `config.sweep` (one field varied,
e.g. the synthetic stream's speed), then writes into the workdir:

* results.json: every number, per setting and algorithm;
* results.md: the table at the config's setting and the sweep table;
* sweep.png: held-out MSE and the BP / Sideways ratio against the field;
* step_errors.png: the error at each step of a held-out video.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
from typing import Any

from sideways_jax import runners
from sideways_jax.data import DatasetLayoutError
from sideways_jax.streaming import builders
from sideways_jax.streaming import report
from sideways_jax.streaming import runner

# Fields that fix shapes or the compiled computation: a sweep over any other
# field reuses the compiled functions.
_COMPILED_FIELDS = ('algorithm', 'compare', 'model', 'optimizer',
                    'target_alignment', 'batch_size', 'eval_batch_size')
_COMPILED_DATA_FIELDS = ('resolution', 'num_frames')
# Stop a command-line run with a message instead of a traceback.
USER_ERRORS = (builders.ConfigError, DatasetLayoutError, FloatingPointError)


def _compile_key(config: Any) -> str:
  parts = {k: config[k] for k in _COMPILED_FIELDS}
  parts.update({k: config.data[k] for k in _COMPILED_DATA_FIELDS})
  return repr(parts)


def settings(config: Any) -> tuple[Any, list[tuple[Any, Any]]]:
  """(the config's own value of the swept field, [(value, config), ...]).

  The config's own setting comes first; sweep values equal to it are not
  run twice. Without a sweep, the list holds the config alone.
  """
  field = config.sweep.field
  if not field:
    return None, [(None, config)]
  own = runners.get_field(config, field)
  values = [own] + [v for v in config.sweep.choices if v != own]
  return own, [(v, runners.with_field(config, field, v)) for v in values]


def run(config: Any, workdir: str | pathlib.Path,
        log: runner.Log = functools.partial(print, flush=True)
        ) -> dict[str, Any]:
  """Runs the experiment and writes its files; returns the results dict."""
  builders.check_config(config)
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  own, points_config = settings(config)
  compiled = {}
  points = []
  for value, cfg in points_config:
    builders.check_config(cfg)
    key = _compile_key(cfg)
    if key not in compiled:
      stages = builders.build_stages(cfg)
      optimizers = builders.build_optimizers(cfg)
      compiled[key] = (stages, optimizers,
                       builders.build_functions(cfg, stages, optimizers))
    stages, optimizers, fns = compiled[key]
    if config.sweep.field:
      log(f'--- {config.sweep.field} = {value}')
    results = runner.run_point(cfg, fns, stages, optimizers, log)
    points.append({'value': value, **{a: dataclasses.asdict(r)
                                      for a, r in results.items()}})
    _write(config, workdir, points)  # Partial results survive a stop.
  return _write(config, workdir, points, plots=True, own=own)


def _write(config: Any, workdir: pathlib.Path, points: list[dict[str, Any]],
           *, plots: bool = False, own: Any = None) -> dict[str, Any]:
  field = config.sweep.field
  ordered = sorted(points, key=lambda p: p['value']) if field else points
  results = {'config': config.to_dict(), 'field': field, 'own_value': own,
             'points': ordered}
  (workdir / 'results.json').write_text(json.dumps(results, indent=1,
                                                   default=str))
  algorithms = runners.run_algorithms(config)
  text = ['## Held-out stream MSE at the config\'s setting'
          + (f' ({field} = {points[0]["value"]})' if field else ''), '',
          report.results_table(points[0], algorithms)]
  if field and len(points) > 1:
    text += ['', f'## Sweep of {field}', '', report.sweep_table(field,
                                                                 ordered)]
  (workdir / 'results.md').write_text('\n'.join(text) + '\n')
  if plots:
    report.plot_step_errors(points[0], config.model.num_stages,
                            workdir / 'step_errors.png')
    if field and len(points) > 1 and len(algorithms) == 2:
      report.plot_sweep(field, ordered, workdir / 'sweep.png')
    print('\n'.join(text))
    print(f'\nwritten to {workdir}')
  return results
