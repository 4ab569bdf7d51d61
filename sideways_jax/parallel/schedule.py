"""Which frame each stage-device works on at each tick, for every schedule.

One table per schedule drives both the programs (`bp_pipeline.py` runs the
GPipe and 1F1B tables, `sideways_mp.py` uses `sideways_frames`) and the
picture the speed runner draws, so the two cannot drift apart. Each mesh
program names its table (`StagedProgram.schedule`).

A `Schedule` holds two int32 [T, D] tables: `forward[t, i]` is the frame
whose forward pass stage-device i runs at tick t, `backward[t, i]` the frame
whose backward pass it runs (NONE = -1: none). At every tick each device
sends one activation up and one cotangent down (`ppermute`), so a tick costs
what its busiest device does, and a value climbs or descends one stage per
tick. The exact-BP pipelines re-run a stage's forward from its stored input
when they backpropagate a frame (re-materialisation, as GPipe does), so the
top stage does all its work for a frame at its backward tick.

* `sideways_schedule`: stage i forwards frame t - i and backpropagates
  frame t - 2(D-1) + i at every tick, through its *current* input (the
  paper's approximation): no stored activations.
* `one_f_one_b_schedule`: the same ticks, but the backward of frame
  t - 2(D-1) + i goes through that frame's own stored input: exact BP, one
  forward and one backward per tick in the steady state, 2(D-1-i) + 1
  frames in flight on stage i, whatever K.
* `gpipe_schedule`: all K forwards (ticks 0 .. K+D-2), then all backwards:
  every stage stores all K inputs.
* `model_parallel_schedule`: one frame at a time up and down the chain (2D
  ticks a frame), one device busy at a time; drawn only (`bp_model.py` lets
  autodiff run it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

NONE = -1


class Schedule(NamedTuple):
  """Per tick t and stage-device i, the frames forwarded / backpropagated."""
  title: str            # what it is, in a few words (figure titles)
  forward: np.ndarray   # int32 [T, D]; NONE where no forward runs
  backward: np.ndarray  # int32 [T, D]; NONE where no backward runs
  idle_runs: bool       # a stage without a real frame still runs, on zeros
                        # (Sideways' warm-up), its result masked
  rematerialises: bool  # a backward re-runs the forward from the stored
                        # input: the top only stores it at its forward tick

  @property
  def num_ticks(self) -> int:
    return self.forward.shape[0]

  @property
  def num_stages(self) -> int:
    return self.forward.shape[1]


# frames(t [T, 1], i [1, D], K, D) -> (forward, backward) frame tables.
_Frames = Callable[[np.ndarray, np.ndarray, int, int],
                   tuple[np.ndarray, np.ndarray]]


def sideways_frames(t, stage, num_stages):
  """Sideways (and 1F1B): (forward frame, backward frame) of `stage` at t.

  Works on ints, NumPy and traced arrays. A negative frame is not real (a
  Sideways stage then runs on zeros and its result is masked).
  """
  return t - stage, t - 2 * (num_stages - 1) + stage


def _gpipe_frames(t, i, num_frames, num_stages):
  # Backward phase from tick K+D-1; the cotangent descends a stage a tick.
  start = num_frames + num_stages - 1
  return t - i, t - start - (num_stages - 1 - i)


def _model_parallel_frames(t, i, num_frames, num_stages):
  # Frame f's forward reaches stage i at tick 2Df + i, its backward at tick
  # 2Df + 2D-1-i.
  del num_frames
  period = 2 * num_stages
  phase, frame = t % period, t // period
  return (np.where(phase == i, frame, NONE),
          np.where(phase == period - 1 - i, frame, NONE))


def _make(title: str, frames: _Frames, num_ticks: int, num_frames: int,
          num_stages: int, idle_runs: bool = False,
          rematerialises: bool = False) -> Schedule:
  if num_frames < 1 or num_stages < 1:
    raise ValueError(f'need K >= 1 frames and D >= 1 stages, got '
                     f'{num_frames}, {num_stages}')
  t = np.arange(num_ticks)[:, None]
  i = np.arange(num_stages)[None, :]
  fwd, bwd = frames(t, i, num_frames, num_stages)
  real = lambda f: np.where((f >= 0) & (f < num_frames), f, NONE).astype(
      np.int32)
  return Schedule(title, real(fwd + 0 * t), real(bwd + 0 * t), idle_runs,
                  rematerialises)


def sideways_schedule(num_frames: int, num_stages: int) -> Schedule:
  """Sideways: K ticks, every stage busy at every one."""
  return _make('Sideways (no stored activations)',
               lambda t, i, k, d: sideways_frames(t, i, d), num_frames,
               num_frames, num_stages, idle_runs=True)


def one_f_one_b_schedule(num_frames: int, num_stages: int) -> Schedule:
  """1F1B: K + 2(D-1) ticks, one forward and one backward a tick."""
  return _make('1F1B (one forward + one backward a tick)',
               lambda t, i, k, d: sideways_frames(t, i, d),
               num_frames + 2 * (num_stages - 1), num_frames, num_stages,
               rematerialises=True)


def gpipe_schedule(num_frames: int, num_stages: int) -> Schedule:
  """GPipe: 2(K + D - 1) ticks, all forwards, then all backwards."""
  return _make('GPipe (all forwards, then all backwards)', _gpipe_frames,
               2 * (num_frames + num_stages - 1), num_frames, num_stages,
               rematerialises=True)


def model_parallel_schedule(num_frames: int, num_stages: int) -> Schedule:
  """BP model-parallel: 2DK ticks, one device busy at a time."""
  return _make('BP model-parallel (one device at a time)',
               _model_parallel_frames, 2 * num_stages * num_frames,
               num_frames, num_stages)


def _live_span(intervals: list[tuple[int, int, int]], num_ticks: int) -> int:
  """Most frames live at once, as a window: max (newest - oldest + 1)."""
  span = 0
  for tick in range(num_ticks):
    live = [f for f, start, end in intervals if start <= tick <= end]
    if live:
      span = max(span, max(live) - min(live) + 1)
  return span


def buffer_depths(schedule: Schedule) -> tuple[int, int]:
  """Frames each device must hold: (input activations, cotangents).

  An activation is held from the tick after its forward below ran until the
  stage's backward of that frame (which re-runs the forward from it); a
  cotangent from the tick after the backward above until its own. Frames
  come in order, so a buffer of that depth indexed by frame mod depth never
  overwrites a frame still needed. At least 1 (no zero-size buffers).
  """
  fwd, bwd = schedule.forward, schedule.backward
  ticks, stages = fwd.shape
  top = stages - 1

  def tick_of(table, i, f):
    return int(np.nonzero(table[:, i] == f)[0][0])

  acts, cots = [1], [1]
  frames = sorted(set(bwd[bwd >= 0].tolist()))
  for i in range(1, stages):
    acts.append(_live_span([(f, tick_of(fwd, i - 1, f) + 1,
                             tick_of(bwd, i, f)) for f in frames], ticks))
  for i in range(top):
    cots.append(_live_span([(f, tick_of(bwd, i + 1, f) + 1,
                             tick_of(bwd, i, f)) for f in frames], ticks))
  return max(acts), max(cots)
