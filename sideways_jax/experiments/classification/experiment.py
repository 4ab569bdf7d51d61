"""An experiment: the config's algorithm(s) (and sweep values), then a table.

Layout under the experiment's workdir:

  <algorithm>/                   one run folder per algorithm (see loop.py)
  <key>=<value>/<algorithm>/     the same per value, for a config with a sweep
  plots/*.png                    figures drawn from the runs' metrics.jsonl
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from sideways_jax.experiments import common
from sideways_jax.experiments import hosts
from sideways_jax.experiments import workdir as workdir_lib
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


def run(config: Any, workdir: workdir_lib.PathLike, *,
        max_steps: int | None = None, stream: TextIO | None = None,
        resume: str = 'auto') -> list[tuple[str, loop.RunSummary]]:
  """Trains and evaluates every algorithm of `config`, then plots and reports.

  Args:
    config: an experiment config (see configs/common.py).
    workdir: the experiment folder (local, or a `gs://` URL).
    max_steps: stop each run at this step (see `loop.train_and_evaluate`).
    stream: where the report and progress go (default stdout; processes
      other than 0 of a multi-host run print nothing).
    resume: 'auto', 'fork' or 'restart' (see `loop.train_and_evaluate`).

  Returns:
    (sweep folder name or '', summary) per run, in training order.
  """
  workdir = workdir_lib.as_path(workdir)
  variants = [(common.sweep_label(config, value), variant)
              for value, variant in common.expand_sweep(config)]
  for _, variant in variants:  # All checks before the first compile.
    validate.validate_config(variant)
  rows = []
  for label, variant in variants:
    for algorithm in validate.algorithms(variant):
      run_dir = workdir / label / algorithm if label else workdir / algorithm
      summary = loop.train_and_evaluate(variant, algorithm, run_dir,
                                        max_steps=max_steps, stream=stream,
                                        resume=resume)
      rows.append((label, summary))
  # Process 0 reports; the other processes of a multi-host run stay quiet
  # (known only now: a mesh run joins the other processes as it starts).
  if hosts.is_lead():
    _report(workdir, rows, stream or sys.stdout, sweep=bool(variants[0][0]))
  return rows


def _report(workdir: Any, rows: list[tuple[str, loop.RunSummary]],
            out: TextIO, *, sweep: bool) -> None:
  """Plots, the table and where everything is (process 0 only)."""
  figures = plots.make_plots(workdir)
  print('\n' + format_table(rows), file=out)
  print(f'\nlogs (metrics.jsonl, tensorboard/), checkpoints/ and summary.json: '
        f'{workdir}/<{"sweep value>/<" if sweep else ""}algorithm>/',
        file=out)
  print(f'tensorboard --logdir {workdir}   (pip install -e '
        "'.[tensorboard]')", file=out)
  for figure in figures:
    print(f'plot: {figure}', file=out)
  out.flush()
