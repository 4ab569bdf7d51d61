"""Which streaming schedule each algorithm runs, read from the algorithm table.

    stream = streamer('sideways', target_alignment='origin')
    learner, trace = stream.train(stages, optimizer, learner, video)
    trace = stream.infer[TRAINING](stages, variables(learner), video)

Training. An exact algorithm (BP) must finish a frame's backward before the
update that the next frame's forward uses, so on a stream it is blocked
2D-2 steps per frame (`bp_stream`). The Sideways approximation pipelines
every frame and updates after every step (`sideways_stream`). Which one an
algorithm gets follows from its row of `sideways_jax.algorithms` (`exact`);
its options are checked and completed by the same table.

Held-out streams are scored under two schedules, each labelled:
* TRAINING: the timing the algorithm trains with, forward only (BP blocked,
  a frame every 2D-1 steps; Sideways every frame): the paper's setting.
* PIPELINED: every model as a pipelined forward, a new frame every step,
  latency D-1. The timing is the same for every algorithm, so the scores
  compare the trained models alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import functools
from typing import Any, NamedTuple, Protocol

import jax

from sideways_jax import algorithms
from sideways_jax import chain as chain_lib
from sideways_jax import pipeline
from sideways_jax.streaming import bp_stream
from sideways_jax.streaming import diagnostics
from sideways_jax.streaming import learner as learner_lib
from sideways_jax.streaming import sideways_stream
from sideways_jax.streaming import trace as trace_lib
from sideways_jax.train_state import TrainState

TRAINING = 'training'
PIPELINED = 'pipelined'
# Schedule -> its label in tables and logs.
SCHEDULES = {
    TRAINING: 'training timing (BP: a frame every 2D-1 steps; Sideways: '
              'every frame)',
    PIPELINED: 'pipelined inference (every model: every frame, latency D-1)',
}


class TrainVideo(Protocol):
  """Streams one training video through a learner (options bound).

  Args:
    stages: the D stages of the auto-encoder.
    optimizer: the optax transformation(s) the learner was built with.
    learner: weights and optimizer states before the video.
    video: float frames [T, B, ...], B streams side by side.
    loss_fn: `loss_fn(top_output, target) -> scalar`.
    keep_outputs: also return the shown outputs [T, B, ...].

  Returns:
    (the learner after the video, the per-step `StreamTrace`).
  """

  def __call__(self, stages: chain_lib.Stages,
               optimizer: learner_lib.Optimizers,
               learner: TrainState, video: jax.Array, *,
               loss_fn: pipeline.LossFn = ..., keep_outputs: bool = ...
               ) -> tuple[TrainState, trace_lib.StreamTrace]:
    ...


class InferVideo(Protocol):
  """Streams one video through fixed weights, forward only.

  Args:
    stages: the D stages.
    variables: one variables dict per stage.
    video: float frames [T, B, ...].
    keep_outputs: also return the shown outputs [T, B, ...].

  Returns:
    The per-step `StreamTrace`.
  """

  def __call__(self, stages: chain_lib.Stages,
               variables: chain_lib.ChainVariables, video: jax.Array, *,
               keep_outputs: bool = ...) -> trace_lib.StreamTrace:
    ...


class Streamer(NamedTuple):
  """One algorithm on a stream, its options bound.

  Attributes:
    algorithm: the table's name.
    options: every option it runs with (the table's defaults filled in).
    train: its training schedule.
    infer: schedule (TRAINING, PIPELINED) -> forward-only function.
    cosines: `diagnostics.gradient_cosines` with the options bound, for an
      approximate algorithm; None for an exact one (nothing to compare).
  """
  algorithm: str
  options: Mapping[str, Any]
  train: TrainVideo
  infer: Mapping[str, InferVideo]
  cosines: Callable[..., Any] | None


@functools.cache
def _infer(function: Callable[..., Any], unroll: int | bool) -> InferVideo:
  # One object per (function, unroll): equal schedules of different
  # algorithms are the same function, which callers compile once.
  return functools.partial(function, unroll=unroll)


def streamer(name: str, **options: Any) -> Streamer:
  """The streaming functions of a one-device algorithm of the table.

  Raises:
    ValueError: an unknown algorithm, one that needs a mesh, an option it
      does not take, or a value the option does not allow.
  """
  resolved = algorithms.resolve_options(name, options, algorithms.DEVICE)
  unroll = resolved['unroll']  # Every algorithm takes it: the step scan's.
  pipelined = _infer(sideways_stream.pipelined_infer_video, unroll)
  if algorithms.get(name).exact:
    return Streamer(
        algorithm=name, options=resolved, cosines=None,
        train=functools.partial(bp_stream.bp_train_video, **resolved),
        infer={TRAINING: _infer(bp_stream.bp_infer_video, unroll),
               PIPELINED: pipelined})
  return Streamer(
      algorithm=name, options=resolved,
      train=functools.partial(sideways_stream.sideways_train_video,
                              **resolved),
      infer={TRAINING: pipelined, PIPELINED: pipelined},
      cosines=functools.partial(diagnostics.gradient_cosines, **resolved))
