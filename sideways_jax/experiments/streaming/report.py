"""Tables and figures of a streaming experiment (results as plain dicts).

A point is {'value': swept value, '<algorithm>': AlgorithmResult fields as a
dict, ...}; `ratio` is BP's held-out stream MSE over Sideways'.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import math
import pathlib
from typing import Any

_NAMES = {'bp': 'BP', 'sideways': 'Sideways'}


def ratio(point: Mapping[str, Any]) -> float:
  """BP / Sideways held-out stream MSE (NaN if either is missing)."""
  if 'bp' not in point or 'sideways' not in point:
    return math.nan
  return point['bp']['eval_mse'] / point['sideways']['eval_mse']


def results_table(point: Mapping[str, Any], algorithms: Sequence[str]) -> str:
  """Markdown table of one setting: one row per algorithm.

  'perfect copy, same timing' is the error a perfect auto-encoder would make
  if shown with the algorithm's timing (exactly the frame its output came
  from): the cost of the lag alone. A blurry model can beat it on a fast
  stream, since MSE rewards hedging between positions. 'no-lag
  reconstruction' is the trained model's error on each frame against that
  same frame: its reconstruction quality alone.
  """
  lines = [
      '| algorithm | held-out stream MSE | perfect copy, same timing |'
      ' no-lag reconstruction | train stream MSE (2nd half) |'
      ' frames taken / steps | updates | train s | eval s |',
      '|---|---|---|---|---|---|---|---|---|']
  for name in algorithms:
    r = point[name]
    lines.append(
        f"| {_NAMES[name]} | {r['eval_mse']:.5f} | "
        f"{r['perfect_copy_mse']:.5f} | {r['recon_mse']:.5f} | "
        f"{r['train_stream_mse']:.5f} | "
        f"{r['frames_taken']} / "
        f"{r['train_steps']} | {r['updates']} | {r['train_seconds']:.0f} | "
        f"{r['eval_seconds']:.0f} |")
  if not math.isnan(ratio(point)):
    lines.append(f'\nBP / Sideways held-out stream MSE: {ratio(point):.2f}x')
  return '\n'.join(lines)


def sweep_table(field: str, points: Sequence[Mapping[str, Any]]) -> str:
  """Markdown table of a sweep: held-out MSE of both and their ratio."""
  lines = [f'| {field} | BP MSE | Sideways MSE | BP / Sideways | BP perfect'
           ' copy | Sideways perfect copy | BP no-lag recon. |'
           ' Sideways no-lag recon. |', '|---|---|---|---|---|---|---|---|']
  for p in points:
    cells = [f"{p[a]['eval_mse']:.5f}" if a in p else '-'
             for a in ('bp', 'sideways')]
    copies = [f"{p[a]['perfect_copy_mse']:.5f}" if a in p else '-'
              for a in ('bp', 'sideways')]
    recons = [f"{p[a]['recon_mse']:.5f}" if a in p else '-'
              for a in ('bp', 'sideways')]
    lines.append(f"| {p['value']} | {cells[0]} | {cells[1]} | "
                 f'{ratio(p):.2f} | {copies[0]} | {copies[1]} | '
                 f'{recons[0]} | {recons[1]} |')
  return '\n'.join(lines)


def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')  # Files only: no display on these machines.
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def _save(plt, fig, path: str | pathlib.Path) -> pathlib.Path:
  """Writes the figure as a PNG and frees it."""
  fig.tight_layout()
  path = pathlib.Path(path)
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def plot_sweep(field: str, points: Sequence[Mapping[str, Any]],
               path: str | pathlib.Path) -> pathlib.Path:
  """PNG: held-out MSE of both (left) and BP/Sideways (right) vs the field."""
  plt = _pyplot()
  values = [p['value'] for p in points]
  fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
  for name in ('bp', 'sideways'):
    if all(name in p for p in points):
      left.plot(values, [p[name]['eval_mse'] for p in points], 'o-',
                label=_NAMES[name])
      left.plot(values, [p[name]['perfect_copy_mse'] for p in points], ':',
                color=left.lines[-1].get_color(),
                label=f'{_NAMES[name]}: perfect copy, same timing')
      left.plot(values, [p[name]['recon_mse'] for p in points], '--',
                color=left.lines[-1].get_color(),
                label=f'{_NAMES[name]}: no-lag reconstruction')
  left.set_xlabel(field)
  left.set_ylabel('held-out stream MSE')
  left.legend()
  left.grid(alpha=0.3)
  right.plot(values, [ratio(p) for p in points], 'o-', color='k')
  right.axhline(1.0, color='grey', lw=0.8)
  right.set_xlabel(field)
  right.set_ylabel('MSE ratio BP / Sideways')
  right.grid(alpha=0.3)
  return _save(plt, fig, path)


def plot_step_errors(point: Mapping[str, Any], num_stages: int,
                     path: str | pathlib.Path) -> pathlib.Path:
  """PNG: mean held-out error at each step of a video, both algorithms."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(7, 3.5))
  for name in ('bp', 'sideways'):
    if name in point:
      curve = point[name]['eval_step_mse']
      steps = range(num_stages - 1, len(curve))
      ax.plot(list(steps), curve[num_stages - 1:], label=_NAMES[name])
  ax.set_xlabel('step t within a held-out video (scored from D-1)')
  ax.set_ylabel('MSE(shown output, frame t)')
  ax.legend()
  ax.grid(alpha=0.3)
  return _save(plt, fig, path)
