"""An experiment: the config's algorithm(s) (and sweep values), then a table.

Layout under the experiment's workdir:

  <algorithm>/                   one run folder per algorithm (see loop.py)
  <key>=<value>/<algorithm>/     the same per value, for a config with a sweep
  plots/*.png                    figures drawn from the runs' metrics.jsonl
"""

from __future__ import annotations

import math
import pathlib
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from sideways_jax.experiments import common
from sideways_jax.experiments.classification import loop
from sideways_jax.experiments.classification import plots
from sideways_jax.experiments.classification import validate


def _percent(value: float | None) -> str:
  if value is None or math.isnan(value):
    return '-'
  return f'{100 * value:.1f}%'


def format_table(rows: Sequence[tuple[str, loop.RunSummary]]) -> str:
  """The BP-vs-Sideways comparison as a fixed-width text table."""
  labelled = any(label for label, _ in rows)
  header = (['run'] if labelled else []) + [
      'algorithm', 'steps', 'train loss', 'train acc', 'eval video acc',
      'eval frame acc', 'steps/s']
  lines = []
  for label, s in rows:
    cells = ([label] if labelled else []) + [
        s.algorithm, str(s.steps), f'{s.train_loss:.4f}',
        _percent(s.train_accuracy), _percent(s.eval.get('video_accuracy')),
        _percent(s.eval.get('frame_accuracy')), f'{s.steps_per_second:.2f}']
    lines.append(cells)
  widths = [max(len(r[i]) for r in [header] + lines)
            for i in range(len(header))]
  fmt = lambda cells: '  '.join(c.ljust(w) for c, w in zip(cells, widths))
  return '\n'.join([fmt(header), fmt(['-' * w for w in widths])]
                   + [fmt(r) for r in lines])


def run(config: Any, workdir: str | pathlib.Path, *,
        max_steps: int | None = None,
        stream: TextIO | None = None) -> list[tuple[str, loop.RunSummary]]:
  """Trains and evaluates every algorithm of `config`, then plots and reports.

  Args:
    config: an experiment config (see configs/common.py).
    workdir: the experiment folder.
    max_steps: stop each run at this step (see `loop.train_and_evaluate`).
    stream: where the report and progress go (default stdout).

  Returns:
    (sweep folder name or '', summary) per run, in training order.
  """
  out = stream or sys.stdout
  workdir = pathlib.Path(workdir)
  variants = [(common.sweep_label(config, value), variant)
              for value, variant in common.expand_sweep(config)]
  for _, variant in variants:  # All checks before the first compile.
    validate.validate_config(variant)
  rows = []
  for label, variant in variants:
    for algorithm in validate.algorithms(variant):
      run_dir = workdir / label / algorithm if label else workdir / algorithm
      print(f'== {label + " " if label else ""}{algorithm} -> {run_dir}',
            file=out, flush=True)
      summary = loop.train_and_evaluate(variant, algorithm, run_dir,
                                        max_steps=max_steps, stream=out)
      rows.append((label, summary))
  figures = plots.make_plots(workdir)
  print('\n' + format_table(rows), file=out)
  print(f'\nlogs (metrics.jsonl, tensorboard/), checkpoints/ and summary.json: '
        f'{workdir}/<{"sweep value>/<" if variants[0][0] else ""}algorithm>/',
        file=out)
  print(f'tensorboard --logdir {workdir}', file=out)
  for figure in figures:
    print(f'plot: {figure}', file=out)
  out.flush()
  return rows
