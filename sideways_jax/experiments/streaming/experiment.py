"""A streaming auto-encoding experiment: one table per stream, files.

`run(config, workdir)` trains and evaluates the config's rows (BP, Sideways,
Sideways with one change) on every stream of `config.sweep` (one field
varied, e.g. the synthetic stream's motion or speed), then writes into the
workdir:

* results.json: every number, per stream and row, and what each row ran
  (algorithm, options, staleness corrections);
* results.md: the summary table (each stream x each schedule x each score x
  each row, the BP / row ratios and the scores of a perfect copy with the
  same timing) and one detail table per stream;
* scores.png: the held-out scores of every row on every stream;
* step_errors.png: the error at each step of a held-out video;
* sweep.png (numeric sweeps): held-out scores and ratios against the field.

The jitted functions are built once per distinct value of the fields the
builders read (recorded while building, so no list of "compiled fields" is
kept by hand): a sweep over the stream reuses them.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import ml_collections
from etils import epath

from sideways_jax.experiments import common
from sideways_jax.experiments import workdir as workdir_lib
from sideways_jax.experiments.streaming import builders
from sideways_jax.experiments.streaming import report
from sideways_jax.experiments.streaming import runner


class _Reads:
  """A read-only view of a ConfigDict that records the dotted keys read."""

  def __init__(self, node: Any, seen: set[str], prefix: str = ''):
    self._node, self._seen, self._prefix = node, seen, prefix

  def __getattr__(self, key: str) -> Any:
    if key.startswith('_'):
      raise AttributeError(key)
    return self[key]

  def __getitem__(self, key: str) -> Any:
    value = self._node[key]
    if isinstance(value, ml_collections.ConfigDict):
      return _Reads(value, self._seen, f'{self._prefix}{key}.')
    self._seen.add(self._prefix + key)
    return value

  def __contains__(self, key: str) -> bool:
    return key in self._node  # The structure is the same for every variant.

  def get(self, key: str, default: Any = None) -> Any:
    return self[key] if key in self._node else default

  def _whole(self) -> Any:
    self._seen.add(self._prefix.rstrip('.'))
    return self._node

  def items(self) -> Any:
    return self._whole().items()

  def to_dict(self) -> dict[str, Any]:
    return self._whole().to_dict()


def _value(config: Any, path: str) -> Any:
  value = common.get_field(config, path)
  return (value.to_dict() if isinstance(value, ml_collections.ConfigDict)
          else value)


def _build(config: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
  """(stages, optimizers, functions) and the config values they depend on."""
  seen = set()
  view = _Reads(config, seen)
  stages = builders.build_stages(view)
  specs = builders.row_specs(view)
  optimizers = builders.build_optimizers(view, specs)
  built = (stages, optimizers,
           builders.build_functions(stages, specs, optimizers))
  return built, {path: _value(config, path) for path in seen}


def _reuse(compiled: list[tuple[dict[str, Any], Any]], config: Any) -> Any:
  """What was built for a config reading the same values, or None."""
  for reads, built in compiled:
    if all(_value(config, p) == v for p, v in reads.items()):
      return built
  return None


def checked_variants(config: Any) -> list[tuple[Any, Any]]:
  """Every sweep variant, each validated once, before anything is built."""
  variants = common.expand_sweep(config)
  for _, variant in variants:
    builders.check_config(variant)
  return variants


def run(config: Any, workdir: workdir_lib.PathLike,
        log: runner.Log = functools.partial(print, flush=True)
        ) -> dict[str, Any]:
  """Runs the experiment and writes its files; returns the results dict.

  `workdir` may be a local folder or a bucket URL (`workdir.py`); the files
  are written whole (a reader never sees half a file) and the JSON strict.
  """
  variants = checked_variants(config)
  workdir = workdir_lib.prepare_folder(workdir)
  compiled = []
  points = []
  for value, cfg in variants:
    built = _reuse(compiled, cfg)
    if built is None:
      built, reads = _build(cfg)
      compiled.append((reads, built))
    stages, optimizers, fns = built
    if config.sweep.field:
      log(f'--- {config.sweep.field} = {value}')
    results = runner.run_point(cfg, fns, stages, optimizers, log)
    points.append({'value': value, **{r: dataclasses.asdict(res)
                                      for r, res in results.items()}})
    _write(config, workdir, points)  # Partial results survive a stop.
  return _write(config, workdir, points, final=True)


def _write(config: Any, workdir: epath.Path, points: list[dict[str, Any]],
           *, final: bool = False) -> dict[str, Any]:
  field = config.sweep.field
  rows = builders.rows(config)
  results = {'config': config.to_dict(), 'field': field, 'rows': list(rows),
             'points': points}
  workdir_lib.write_json(workdir / 'results.json', results)
  text = report.markdown(config, points, rows)
  workdir_lib.atomic_write_text(workdir / 'results.md', text)
  if final:
    report.plot_scores(field, points, rows, workdir / 'scores.png')
    report.plot_step_errors(field, points, rows, config.model.num_stages,
                            workdir / 'step_errors.png')
    if report.numeric_sweep(points) and report.baseline(points[0], rows):
      report.plot_sweep(field, points, rows, workdir / 'sweep.png')
    print(text)
    print(f'written to {workdir}')
  return results
