"""A picture of pipeline schedules: which device works on which frame, when.

Drawn from `sideways_jax.parallel.schedule` tables, the ones the programs
run (each mesh program names its own, `MeshProgram.schedule`). One panel
per schedule; row i is stage-device i, column t is tick t.
A cell's upper half is the forward pass it runs (frame number inside), its
lower half the backward pass. GPipe and 1F1B re-run a stage's forward from
the stored input at the backward tick; their top stage only stores its
input at the forward tick (light blue) and does all its work at the
backward tick. Sideways at its warm-up steps runs on zeros (light grey), as
in the paper's Fig. 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sideways_jax.parallel import schedule as schedule_lib


def clip_length(num_stages: int) -> int:
  """Frames drawn: 2D, enough for Sideways' steady state to show."""
  return max(4, 2 * num_stages)


_FORWARD, _BACKWARD, _ZEROS = '#4c78a8', '#f58518', '#dddddd'
_STORED = '#a6c4e0'  # input stored only (top stage of GPipe / 1F1B)


def draw(plt: Any,
         schedules: Sequence[tuple[str, schedule_lib.Schedule]]) -> Any:
  """A figure of (title, schedule) pairs, one panel each, shared tick axis."""
  width = max(s.num_ticks for _, s in schedules)
  fig, axes = plt.subplots(len(schedules), 1, squeeze=False,
                           figsize=(min(20, max(6, 0.32 * width + 1.5)),
                                    1.0 + 0.45 * sum(s.num_stages + 1.5
                                                     for _, s in schedules)))
  for ax, (title, sched) in zip(axes[:, 0], schedules):
    _panel(ax, title, sched, width)
  axes[-1, 0].set_xlabel('tick (a forward climbs, a cotangent descends, '
                         'one stage per tick)')
  return fig


def _panel(ax: Any, title: str, sched: schedule_lib.Schedule,
           width: int) -> None:
  d = sched.num_stages
  for t in range(sched.num_ticks):
    for i in range(d):
      stored = sched.rematerialises and i == d - 1
      halves = ((sched.forward[t, i], _STORED if stored else _FORWARD, 0.0),
                (sched.backward[t, i], _BACKWARD, 0.5))
      for frame, colour, y0 in halves:
        if frame == schedule_lib.NONE and not sched.idle_runs:
          continue
        real = frame != schedule_lib.NONE
        ax.add_patch(_rect(t, i + y0, colour if real else _ZEROS))
        if real:
          ax.text(t + 0.5, i + y0 + 0.25, str(int(frame)), ha='center',
                  va='center', fontsize=6, color='white')
  ax.set_xlim(0, width)
  ax.set_ylim(d, 0)
  ax.set_yticks(np.arange(d) + 0.5)
  ax.set_yticklabels([f'device {i}' for i in range(d)], fontsize=7)
  ax.set_xticks(range(0, width + 1, max(1, width // 16)))
  ax.tick_params(axis='x', labelsize=7)
  frames = int(max(sched.forward.max(), sched.backward.max())) + 1
  ax.set_title(f'{title}: {sched.num_ticks} ticks for {frames} frames '
               '(blue forward, orange backward)',
               fontsize=8)


def _rect(x: float, y: float, colour: str) -> Any:
  import matplotlib.patches  # pylint: disable=g-import-not-at-top
  return matplotlib.patches.Rectangle((x + 0.04, y + 0.02), 0.92, 0.46,
                                      facecolor=colour, edgecolor='none')
