"""Tables and figures of a streaming experiment (results as plain dicts).

A point is {'value': the stream's swept value, '<row>': RowResult fields as
a dict, ...}. Every held-out number comes per schedule ('training': each
algorithm's training timing; 'pipelined': every model as a pipelined
forward) and per score ((a) 'shown', (b) 'frame', (b) latency-free
'frame_latency_free'; see `sideways_jax.streaming.metric`). A ratio is the
exact row's (BP's) held-out MSE over another row's on one schedule and
score. Next to the plain algorithm rows stands a perfect copy with the same
timing: the score of showing the very frame each output came from, i.e.
what the timing alone costs. It is not a bound: a blurry model can score
below it on a moving stream (MSE rewards hedging between positions).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import math
import numbers
from typing import Any

from sideways_jax.experiments import common
from sideways_jax.experiments import workdir as workdir_lib
from sideways_jax.streaming import metric
from sideways_jax.streaming import schedules

# Short score labels for table cells (metric.SCORES has the long ones).
SHORT = {'shown': '(a)', 'frame': '(b)',
         'frame_latency_free': '(b) latency-free'}
_NAMES = {'bp': 'BP', 'sideways': 'Sideways',
          'sideways_delay_lr': 'Sideways + delay-scaled LR',
          'sideways_spike_compensation': 'Sideways + spike compensation',
          'sideways_origin_target': "Sideways, target 'origin'"}


def name(row: str) -> str:
  return _NAMES.get(row, row)


def mse(point: Mapping[str, Any], row: str, schedule: str, score: str, *,
        copy: bool = False) -> float:
  """A row's held-out MSE (or its perfect copy's) on a schedule and score."""
  return point[row]['copy_scores' if copy else 'scores'][schedule][score]


def baseline(point: Mapping[str, Any], rows: Sequence[str]) -> str | None:
  """The first exact row (BP), the numerator of every ratio; None if none."""
  return next((r for r in rows if r in point and point[r]['exact']), None)


def plain_rows(point: Mapping[str, Any], rows: Sequence[str]) -> list[str]:
  """The rows that run an algorithm unchanged (they get perfect copies)."""
  return [r for r in rows if r in point and point[r]['algorithm'] == r]


def ratio(point: Mapping[str, Any], rows: Sequence[str], row: str,
          schedule: str, score: str) -> float:
  """BP / `row` held-out MSE (NaN without an exact row)."""
  base = baseline(point, rows)
  if base is None or row not in point:
    return math.nan
  return mse(point, base, schedule, score) / mse(point, row, schedule, score)


def _label(field: str, value: Any) -> str:
  return f'{field} = {value}' if field else 'the config'


def legend() -> str:
  """What the schedules and scores of the tables are."""
  lines = [f'* schedule {s!r}: {text}' for s, text in
           schedules.SCHEDULES.items()]
  lines += [f'* {text}' for text in metric.SCORES.values()]
  lines.append('* perfect copy: the score of showing, with the same timing, '
               'the very frame each output came from (the cost of the timing '
               'alone; not a bound, a blurry model can score below it)')
  return '\n'.join(lines)


def summary_table(field: str, points: Sequence[Mapping[str, Any]],
                  rows: Sequence[str]) -> str:
  """Each stream x schedule x score: every row's MSE, ratios, copies."""
  first = points[0]
  base = baseline(first, rows)
  ratio_rows = [r for r in rows if base and r != base]
  plain = plain_rows(first, rows)
  head = ([field or 'stream', 'schedule', 'score'] + [name(r) for r in rows]
          + [f'{name(base)} / {name(r)}' for r in ratio_rows]
          + [f'perfect copy, {name(r)} timing' for r in plain])
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for p in points:
    for schedule in schedules.SCHEDULES:
      for score in metric.SCORES:
        cells = [str(p['value']), schedule, SHORT[score]]
        cells += [f'{mse(p, r, schedule, score):.5f}' for r in rows]
        cells += [f'{ratio(p, rows, r, schedule, score):.2f}x'
                  for r in ratio_rows]
        cells += [f'{mse(p, r, schedule, score, copy=True):.5f}'
                  for r in plain]
        lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def detail_table(point: Mapping[str, Any], rows: Sequence[str]) -> str:
  """One stream: every number of every row.

  Held-out cells read 'model (perfect copy)'. 'no-lag reconstruction' is the
  trained model's error on each frame against that same frame.
  """
  columns = [(s, score) for s in schedules.SCHEDULES for score in metric.SCORES]
  head = (['row', 'ran'] + [f'{s} {SHORT[score]}' for s, score in columns]
          + ['no-lag reconstruction', 'train ' + ' / '.join(SHORT.values())
             + ', 2nd half', 'gradient cosine per stage, bottom first',
             'frames taken / streamed', 'updates', 'train s', 'eval s'])
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for row in rows:
    r = point[row]
    cosines = (' '.join(f'{c:.2f}' for c in r['cosines']) if r['cosines']
               else 'exact' if r['exact'] else '-')
    ran = ', '.join([r['algorithm']] + [f'{k}={v}' for k, v in
                                        r['options'].items()] + r['fixes'])
    cells = [name(row), ran]
    cells += [f"{r['scores'][s][score]:.5f} ({r['copy_scores'][s][score]:.5f})"
              for s, score in columns]
    cells += [f"{r['recon_mse']:.5f}",
              ' / '.join(f'{v:.5f}' for v in r['train_scores'].values()),
              cosines, f"{r['frames_taken']} / {r['stream_frames']}",
              str(r['updates']), f"{r['train_seconds']:.0f}",
              f"{r['eval_seconds']:.0f}"]
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def markdown(config: Any, points: Sequence[Mapping[str, Any]],
             rows: Sequence[str]) -> str:
  """results.md: the summary table, the legend, one detail table a stream."""
  field = config.sweep.field
  text = ['## Held-out MSE (BP / row > 1: the row is better)', '',
          summary_table(field, points, rows), '', legend()]
  for p in points:
    text += ['', f"## {_label(field, p['value'])}", '',
             detail_table(p, rows)]
  return '\n'.join(text) + '\n'


def numeric_sweep(points: Sequence[Mapping[str, Any]]) -> bool:
  """True when the swept values are numbers (a curve makes sense)."""
  return len(points) > 1 and all(
      isinstance(p['value'], numbers.Number) for p in points)


def plot_scores(field: str, points: Sequence[Mapping[str, Any]],
                rows: Sequence[str], path: workdir_lib.PathLike
                ) -> workdir_lib.PathLike:
  """PNG: bars of every held-out score (columns) and schedule (rows)."""
  plt = common.pyplot()
  fig, axes = plt.subplots(len(schedules.SCHEDULES), len(metric.SCORES),
                           figsize=(14, 7), squeeze=False)
  width = 0.8 / len(rows)
  plain = plain_rows(points[0], rows)
  for ax_row, schedule in zip(axes, schedules.SCHEDULES):
    for ax, score in zip(ax_row, metric.SCORES):
      for k, row in enumerate(rows):
        xs = [i + (k - (len(rows) - 1) / 2) * width
              for i in range(len(points))]
        ax.bar(xs, [mse(p, row, schedule, score) for p in points], width,
               label=name(row))
        if row in plain:
          ax.scatter(xs, [mse(p, row, schedule, score, copy=True)
                          for p in points], marker='_', s=200, color='k',
                     zorder=3, label='perfect copy' if row == plain[0]
                     else None)
      ax.set_xticks(range(len(points)))
      ax.set_xticklabels([str(p['value']) for p in points])
      ax.set_xlabel(field or 'stream')
      ax.set_ylabel('held-out MSE')
      ax.set_title(f'{SHORT[score]}, {schedule} schedule', fontsize=9)
      ax.grid(alpha=0.3, axis='y')
  axes[0][0].legend(fontsize=7)
  fig.suptitle('Streaming auto-encoding: held-out MSE (lower is better)')
  return common.save_figure(fig, path)


def plot_sweep(field: str, points: Sequence[Mapping[str, Any]],
               rows: Sequence[str], path: workdir_lib.PathLike
               ) -> workdir_lib.PathLike:
  """PNG: the plain rows' MSE (left) and the ratios vs the field (right).

  Both on the training schedule (the paper's setting).
  """
  plt = common.pyplot()
  values = [p['value'] for p in points]
  schedule = schedules.TRAINING
  styles = dict(zip(metric.SCORES, ('o-', 's--', 'd:')))
  fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
  for row in plain_rows(points[0], rows):
    for score, style in styles.items():
      left.plot(values, [mse(p, row, schedule, score) for p in points],
                style, label=f'{name(row)} {SHORT[score]}')
  left.set_xlabel(field)
  left.set_ylabel('held-out MSE')
  left.set_title(f'every score, {schedule} schedule')
  left.legend(fontsize=7)
  left.grid(alpha=0.3)
  base = baseline(points[0], rows)
  for row in rows:
    if row == base:
      continue
    for score, style in styles.items():
      right.plot(values, [ratio(p, rows, row, schedule, score)
                          for p in points], style,
                 label=f'{name(base)} / {name(row)} {SHORT[score]}')
  right.axhline(1.0, color='grey', lw=0.8)
  right.set_xlabel(field)
  right.set_ylabel('MSE ratio')
  right.set_title(f'{name(base)} / other rows (above 1: the row is better)')
  right.legend(fontsize=6)
  right.grid(alpha=0.3)
  return common.save_figure(fig, path)


def plot_step_errors(field: str, points: Sequence[Mapping[str, Any]],
                     rows: Sequence[str], num_stages: int,
                     path: workdir_lib.PathLike) -> workdir_lib.PathLike:
  """PNG: mean held-out score-(a) error at each step, one panel a stream."""
  plt = common.pyplot()
  fig, axes = plt.subplots(1, len(points), figsize=(5.5 * len(points), 3.5),
                           squeeze=False)
  schedule = schedules.TRAINING
  for ax, point in zip(axes[0], points):
    for row in rows:
      curve = point[row]['eval_step_mse'][schedule]
      ax.plot(range(num_stages - 1, len(curve)), curve[num_stages - 1:],
              label=name(row))
    ax.set_xlabel('step t within a held-out video (scored from D-1)')
    ax.set_ylabel('MSE(shown output, frame t)')
    ax.set_title(_label(field, point['value']))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
  fig.suptitle(f'Score (a) at each step of a held-out video, {schedule} '
               'schedule')
  return common.save_figure(fig, path)
