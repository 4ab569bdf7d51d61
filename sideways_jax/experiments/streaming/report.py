"""Tables and figures of a streaming experiment (results as plain dicts).

A point is {'value': the stream's swept value, '<row>': RowResult fields as
a dict, ...}; a ratio is BP's held-out MSE over a Sideways row's, on one
score: (a) 'shown' (latency charged) or (b) 'frame' (throughput charged).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import math
import numbers
import pathlib
from typing import Any

from sideways_jax.experiments import common

SCORES = {'shown': '(a) shown at t vs frame t',
          'frame': '(b) each frame vs its own reconstruction'}
_NAMES = {'bp': 'BP', 'sideways': 'Sideways',
          'sideways_delay_lr': 'Sideways + delay-scaled LR',
          'sideways_spike_compensation': 'Sideways + spike compensation',
          'sideways_origin_target': "Sideways, target 'origin'"}


def name(row: str) -> str:
  return _NAMES.get(row, row)


def ratio(point: Mapping[str, Any], row: str, score: str) -> float:
  """BP / `row` held-out MSE on `score` (NaN if either is missing)."""
  if 'bp' not in point or row not in point:
    return math.nan
  return point['bp'][f'{score}_mse'] / point[row][f'{score}_mse']


def _label(field: str, value: Any) -> str:
  return f'{field} = {value}' if field else 'the config'


def summary_table(field: str, points: Sequence[Mapping[str, Any]],
                  rows: Sequence[str]) -> str:
  """Each stream x each score: every row's held-out MSE, ratios, floors."""
  sideways_rows = [r for r in rows if r != 'bp']
  ratio_rows = sideways_rows if 'bp' in rows else []
  head = ([field or 'stream', 'score'] + [name(r) for r in rows]
          + [f'BP / {name(r)}' for r in ratio_rows]
          + [f'lag floor {name(r)}' for r in rows if r in ('bp', 'sideways')])
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for p in points:
    for score, title in SCORES.items():
      cells = [str(p['value']), title]
      cells += [f"{p[r][f'{score}_mse']:.5f}" for r in rows]
      cells += [f'{ratio(p, r, score):.2f}x' for r in ratio_rows]
      cells += [f"{p[r][f'{score}_copy_mse']:.5f}" for r in rows
                if r in ('bp', 'sideways')]
      lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def detail_table(point: Mapping[str, Any], rows: Sequence[str]) -> str:
  """One stream: every number of every row.

  'lag floor' is the score a perfect auto-encoder would get with the row's
  timing (a perfect copy of the frame its output came from): the cost of
  the lag alone. A blurry model can beat it on a fast stream under score
  (a), since MSE rewards hedging between positions. 'no-lag reconstruction'
  is the trained model's error on each frame against that same frame.
  """
  lines = [
      '| row | (a) held-out | (a) lag floor | (b) held-out | (b) lag floor |'
      ' no-lag reconstruction | train (a) / (b), 2nd half |'
      ' gradient cosine per stage, bottom first | frames taken / steps |'
      ' updates | train s | eval s |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|']
  for row in rows:
    r = point[row]
    cosines = (' '.join(f'{c:.2f}' for c in r['cosines']) if r['cosines']
               else 'exact' if row == 'bp' else '-')
    lines.append(
        f"| {name(row)} | {r['shown_mse']:.5f} | {r['shown_copy_mse']:.5f} | "
        f"{r['frame_mse']:.5f} | {r['frame_copy_mse']:.5f} | "
        f"{r['recon_mse']:.5f} | {r['train_shown_mse']:.5f} / "
        f"{r['train_frame_mse']:.5f} | {cosines} | {r['frames_taken']} / "
        f"{r['train_steps']} | {r['updates']} | {r['train_seconds']:.0f} | "
        f"{r['eval_seconds']:.0f} |")
  return '\n'.join(lines)


def markdown(config: Any, points: Sequence[Mapping[str, Any]],
             rows: Sequence[str]) -> str:
  """results.md: the summary table, then one detail table per stream."""
  field = config.sweep.field
  text = ['## Held-out MSE, both scores (BP / row > 1: the row is better)',
          '', summary_table(field, points, rows)]
  for p in points:
    text += ['', f"## {_label(field, p['value'])}", '',
             detail_table(p, rows)]
  return '\n'.join(text) + '\n'


def numeric_sweep(points: Sequence[Mapping[str, Any]]) -> bool:
  """True when the swept values are numbers (a curve makes sense)."""
  return len(points) > 1 and all(
      isinstance(p['value'], numbers.Number) for p in points)


def plot_scores(field: str, points: Sequence[Mapping[str, Any]],
                rows: Sequence[str], path: str | pathlib.Path
                ) -> pathlib.Path:
  """PNG: bars of both held-out scores, per stream, one bar per row."""
  plt = common.pyplot()
  fig, axes = plt.subplots(1, len(SCORES), figsize=(11, 4), squeeze=False)
  width = 0.8 / len(rows)
  for ax, (score, title) in zip(axes[0], SCORES.items()):
    for k, row in enumerate(rows):
      xs = [i + (k - (len(rows) - 1) / 2) * width for i in range(len(points))]
      ax.bar(xs, [p[row][f'{score}_mse'] for p in points], width,
             label=name(row))
      if row in ('bp', 'sideways'):
        ax.scatter(xs, [p[row][f'{score}_copy_mse'] for p in points],
                   marker='_', s=200, color='k', zorder=3,
                   label='lag floor' if row == 'bp' else None)
    ax.set_xticks(range(len(points)))
    ax.set_xticklabels([str(p['value']) for p in points])
    ax.set_xlabel(field or 'stream')
    ax.set_ylabel('held-out MSE')
    ax.set_title(title)
    ax.grid(alpha=0.3, axis='y')
  axes[0][0].legend(fontsize=8)
  fig.suptitle('Streaming auto-encoding: held-out MSE (lower is better)')
  return common.save_figure(fig, path)


def plot_sweep(field: str, points: Sequence[Mapping[str, Any]],
               rows: Sequence[str], path: str | pathlib.Path
               ) -> pathlib.Path:
  """PNG: held-out MSE of BP and Sideways (left) and ratios vs the field."""
  plt = common.pyplot()
  values = [p['value'] for p in points]
  fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
  for row in ('bp', 'sideways'):
    for score, style in (('shown', 'o-'), ('frame', 's--')):
      left.plot(values, [p[row][f'{score}_mse'] for p in points], style,
                label=f'{name(row)} {score}')
  left.set_xlabel(field)
  left.set_ylabel('held-out MSE')
  left.set_title('BP and Sideways, both scores')
  left.legend(fontsize=8)
  left.grid(alpha=0.3)
  for row in rows:
    if row == 'bp':
      continue
    for score, style in (('shown', 'o-'), ('frame', 's--')):
      right.plot(values, [ratio(p, row, score) for p in points], style,
                 label=f'BP / {name(row)} ({score})')
  right.axhline(1.0, color='grey', lw=0.8)
  right.set_xlabel(field)
  right.set_ylabel('MSE ratio')
  right.set_title('BP / Sideways rows (above 1: Sideways better)')
  right.legend(fontsize=8)
  right.grid(alpha=0.3)
  return common.save_figure(fig, path)


def plot_step_errors(field: str, points: Sequence[Mapping[str, Any]],
                     rows: Sequence[str], num_stages: int,
                     path: str | pathlib.Path) -> pathlib.Path:
  """PNG: mean held-out score-(a) error at each step, one panel a stream."""
  plt = common.pyplot()
  fig, axes = plt.subplots(1, len(points), figsize=(5.5 * len(points), 3.5),
                           squeeze=False)
  for ax, point in zip(axes[0], points):
    for row in rows:
      curve = point[row]['eval_step_mse']
      ax.plot(range(num_stages - 1, len(curve)), curve[num_stages - 1:],
              label=name(row))
    ax.set_xlabel('step t within a held-out video (scored from D-1)')
    ax.set_ylabel('MSE(shown output, frame t)')
    ax.set_title(_label(field, point['value']))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
  fig.suptitle('Score (a) at each step of a held-out video')
  return common.save_figure(fig, path)
