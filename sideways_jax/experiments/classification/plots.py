"""PNG figures from run folders' metrics.jsonl (no TensorFlow needed).

* training dynamics, BP vs Sideways: loss and accuracy against steps (the
  paper's Fig. 4);
* a sweep (e.g. the temporal stride, the paper's Fig. 5): accuracy and loss
  against steps, one colour per value, one column per algorithm.
"""

from __future__ import annotations

import json
import pathlib
import re
from collections.abc import Mapping, Sequence

import numpy as np
from etils import epath

from sideways_jax.experiments import common
from sideways_jax.experiments import workdir as workdir_lib
from sideways_jax.experiments.classification import writers

_NAMES = {'bp': 'BP', 'sideways': 'Sideways'}
_SWEEP_DIR = re.compile(r'^(?P<key>[^=]+)=(?P<value>.+)$')


def smooth(values: Sequence[float], window: int) -> np.ndarray:
  """Trailing moving average (shorter at the start), NaNs ignored."""
  x = np.asarray(values, np.float64)
  if window <= 1 or x.size == 0:
    return x
  valid = np.isfinite(x)
  sums = np.cumsum(np.where(valid, x, 0.0))
  counts = np.cumsum(valid)
  lo = np.maximum(np.arange(x.size) - window, -1)
  def window_total(c):
    return c - np.where(lo >= 0, c[np.maximum(lo, 0)], 0)
  with np.errstate(invalid='ignore', divide='ignore'):
    return window_total(sums) / window_total(counts)


def _series(run_dir: pathlib.Path, split: str, key: str):
  records = [r for r in writers.read_metrics(run_dir, split)
             if r.get(key) is not None]
  # A resumed run may log a step twice; the later record wins.
  by_step = {r['step']: r[key] for r in records}
  steps = np.array(sorted(by_step))
  return steps, np.array([by_step[s] for s in steps], np.float64)


def _draw_run(axes, run_dir: pathlib.Path, colour, label: str) -> None:
  """Loss on axes[0], accuracy on axes[1]: smoothed train lines, eval dots."""
  steps, loss = _series(run_dir, 'train', 'loss')
  window = max(1, len(steps) // 40)
  axes[0].plot(steps, loss, color=colour, alpha=0.2, linewidth=0.8)
  axes[0].plot(steps, smooth(loss, window), color=colour, label=label)
  steps, acc = _series(run_dir, 'train', 'video_accuracy')
  axes[1].plot(steps, smooth(acc, window), color=colour,
               label=f'{label} (train)')
  steps, acc = _series(run_dir, 'eval', 'video_accuracy')
  if steps.size:
    axes[1].plot(steps, acc, color=colour, linestyle='--', marker='o',
                 markersize=3, label=f'{label} (eval)')


def _chance(run_dirs) -> float | None:
  """1 / classes, from a finished run's summary.json (None before one)."""
  for run_dir in run_dirs:
    summary = workdir_lib.as_path(run_dir) / 'summary.json'
    if summary.exists():
      return 1.0 / json.loads(summary.read_text())['num_classes']
  return None


def _finish(axes, title: str | None = None,
            chance: float | None = None) -> None:
  if chance is not None:
    axes[1].axhline(chance, color='grey', linestyle=':', linewidth=1,
                    label=f'chance ({100 * chance:.0f}%)')
  axes[0].set_ylabel('train loss')
  axes[1].set_ylabel('video accuracy')
  for ax in axes:
    ax.set_xlabel('step')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  if title:
    axes[0].set_title(title)


def plot_training_dynamics(runs: Mapping[str, pathlib.Path],
                           out: str | pathlib.Path, *,
                           title: str = '') -> pathlib.Path:
  """Loss and accuracy vs steps of each algorithm's run (like Fig. 4).

  Args:
    runs: algorithm name ('bp', 'sideways', ...) -> run folder.
    out: the PNG to write.
    title: figure title.
  """
  plt = common.pyplot()
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
  for i, (name, run_dir) in enumerate(sorted(runs.items())):
    _draw_run(axes, workdir_lib.as_path(run_dir), f'C{i}',
              _NAMES.get(name, name))
  _finish(axes, chance=_chance(runs.values()))
  fig.suptitle(title or 'Training dynamics: BP vs Sideways')
  return common.save_figure(fig, out)


def _sort_key(label: str):
  value = _SWEEP_DIR.match(label).group('value')
  try:
    return (0, float(value), value)
  except ValueError:
    return (1, 0.0, value)


def plot_sweep(sweep: Mapping[str, Mapping[str, pathlib.Path]],
               out: str | pathlib.Path, *, title: str = '') -> pathlib.Path:
  """One column per algorithm, one colour per sweep value (like Fig. 5).

  Args:
    sweep: sweep folder name ('stride=2', ...) -> algorithm -> run folder.
    out: the PNG to write.
    title: figure title.
  """
  plt = common.pyplot()
  algorithms = sorted({a for runs in sweep.values() for a in runs})
  fig, axes = plt.subplots(2, len(algorithms), squeeze=False,
                           figsize=(5 * len(algorithms), 7))
  for j, algorithm in enumerate(algorithms):
    column = (axes[0, j], axes[1, j])
    for i, label in enumerate(sorted(sweep, key=_sort_key)):
      if algorithm in sweep[label]:
        _draw_run(column, sweep[label][algorithm], f'C{i}', label)
    _finish(column, _NAMES.get(algorithm, algorithm),
            chance=_chance(r[algorithm] for r in sweep.values()
                           if algorithm in r))
  fig.suptitle(title or 'Sweep: ' + ', '.join(sorted(sweep, key=_sort_key)))
  return common.save_figure(fig, out)


def find_runs(workdir: workdir_lib.PathLike
             ) -> tuple[dict[str, epath.Path],
                        dict[str, dict[str, epath.Path]]]:
  """(algorithm -> run folder, sweep value -> algorithm -> run folder)."""
  workdir = workdir_lib.as_path(workdir)
  plain, sweep = {}, {}
  for log in sorted(workdir.glob(f'*/{writers.METRICS_FILE}')):
    plain[log.parent.name] = log.parent
  for log in sorted(workdir.glob(f'*/*/{writers.METRICS_FILE}')):
    if _SWEEP_DIR.match(log.parent.parent.name):
      sweep.setdefault(log.parent.parent.name, {})[log.parent.name] = (
          log.parent)
  return plain, sweep


def make_plots(workdir: workdir_lib.PathLike,
               out_dir: workdir_lib.PathLike | None = None
              ) -> list[pathlib.Path | epath.Path]:
  """Draws every figure the runs under `workdir` allow; returns the PNGs.

  Args:
    workdir: an experiment folder (see
      `sideways_jax.experiments.classification.experiment`); local or a
      `gs://` URL.
    out_dir: where the PNGs go (default `<workdir>/plots`).

  Raises:
    FileNotFoundError: no run with a metrics log under `workdir`.
  """
  workdir = workdir_lib.as_path(workdir)
  out_dir = workdir_lib.as_path(out_dir) if out_dir else workdir / 'plots'
  plain, sweep = find_runs(workdir)
  if not plain and not sweep:
    raise FileNotFoundError(
        f'no run logs ({writers.METRICS_FILE}) under {workdir}/<algorithm>/ '
        f'or {workdir}/<key>=<value>/<algorithm>/')
  figures = []
  if plain:
    figures.append(plot_training_dynamics(
        plain, out_dir / 'training_dynamics.png',
        title=f'{workdir.name}: BP vs Sideways'))
  if sweep:
    key = _SWEEP_DIR.match(next(iter(sweep))).group('key')
    figures.append(plot_sweep(sweep, out_dir / f'{key}_sweep.png',
                              title=f'{workdir.name}: {key} sweep'))
    for label, runs in sorted(sweep.items(), key=lambda kv: _sort_key(kv[0])):
      figures.append(plot_training_dynamics(
          runs, out_dir / f'training_dynamics_{label.replace("=", "")}.png',
          title=f'{workdir.name} {label}: BP vs Sideways'))
  return figures
