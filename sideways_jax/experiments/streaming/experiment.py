"""A streaming auto-encoding experiment: one table per stream, files.

`run(config, workdir)` trains and evaluates the config's rows (BP, Sideways,
Sideways with each staleness correction) on every stream of `config.sweep`
(one field varied, e.g. the synthetic stream's motion or speed), then writes
into the workdir:

* results.json: every number, per stream and row;
* results.md: the summary table (each stream x each score x each row, the
  BP / row ratios and the lag floors) and one detail table per stream;
* scores.png: both held-out scores of every row on every stream;
* step_errors.png: the error at each step of a held-out video;
* sweep.png (numeric sweeps): held-out scores and ratios against the field.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
from typing import Any

from sideways_jax.experiments import common
from sideways_jax.experiments.streaming import builders
from sideways_jax.experiments.streaming import report
from sideways_jax.experiments.streaming import runner

# Fields that fix shapes or the compiled computation: a sweep over any other
# field reuses the compiled functions.
_COMPILED_FIELDS = ('algorithm', 'compare', 'model', 'optimizer', 'staleness',
                    'target_alignment', 'batch_size', 'eval_batch_size',
                    'diagnostic')
_COMPILED_DATA_FIELDS = ('resolution', 'clip_length')


def _compile_key(config: Any) -> str:
  parts = {k: config[k] for k in _COMPILED_FIELDS}
  parts.update({k: config.data[k] for k in _COMPILED_DATA_FIELDS})
  return repr(parts)


def checked_variants(config: Any) -> list[tuple[Any, Any]]:
  """Every sweep variant, each validated once, before anything is built."""
  variants = common.expand_sweep(config)
  for _, variant in variants:
    builders.check_config(variant)
  return variants


def run(config: Any, workdir: str | pathlib.Path,
        log: runner.Log = functools.partial(print, flush=True)
        ) -> dict[str, Any]:
  """Runs the experiment and writes its files; returns the results dict."""
  variants = checked_variants(config)
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  compiled = {}
  points = []
  for value, cfg in variants:
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
    points.append({'value': value, **{r: dataclasses.asdict(res)
                                      for r, res in results.items()}})
    _write(config, workdir, points)  # Partial results survive a stop.
  return _write(config, workdir, points, final=True)


def _write(config: Any, workdir: pathlib.Path, points: list[dict[str, Any]],
           *, final: bool = False) -> dict[str, Any]:
  field = config.sweep.field
  rows = builders.rows(config)
  results = {'config': config.to_dict(), 'field': field, 'rows': list(rows),
             'points': points}
  (workdir / 'results.json').write_text(json.dumps(results, indent=1,
                                                   default=str))
  text = report.markdown(config, points, rows)
  (workdir / 'results.md').write_text(text)
  if final:
    report.plot_scores(field, points, rows, workdir / 'scores.png')
    report.plot_step_errors(field, points, rows, config.model.num_stages,
                            workdir / 'step_errors.png')
    if report.numeric_sweep(points) and {'bp', 'sideways'} <= set(rows):
      report.plot_sweep(field, points, rows, workdir / 'sweep.png')
    print(text)
    print(f'written to {workdir}')
  return results
