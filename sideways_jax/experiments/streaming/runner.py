"""Trains BP and Sideways on the same stream, then scores held-out videos.

Every row (BP, Sideways, Sideways with a staleness correction) starts from
the same weights and sees the same training stream: batches of B videos
played side by side, T frames each, one frame per computation step, the
learner carried from video to video. Evaluation streams the held-out videos
through each trained model in inference mode (Sideways pipelined, BP
blocked) and scores them both ways of `sideways_jax.streaming.metric`:
(a) 'shown', what is shown at step t against frame t, and (b) 'frame', each
frame against the reconstruction made from it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
import dataclasses
import itertools
import logging
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from sideways_jax import chain as chain_lib
from sideways_jax.experiments.streaming import builders
from sideways_jax.streaming import learner as learner_lib
from sideways_jax.streaming import metric
from sideways_jax.streaming import trace as trace_lib

Log = Callable[[str], None]
SCORES = ('shown', 'frame')


@dataclasses.dataclass
class RowResult:
  """What one row did on one stream.

  Attributes:
    shown_mse: score (a) on the held-out videos: what is shown at step t
      against frame t (latency charged).
    frame_mse: score (b) on the held-out videos: each frame against the
      reconstruction made from it, or, for a frame never processed, against
      what was shown at its step (throughput charged, latency not).
    shown_copy_mse, frame_copy_mse: the same scores for a perfect
      auto-encoder with this row's timing (the lag floors).
    recon_mse: the trained model's error on each held-out frame against that
      same frame (no lag, every frame): its reconstruction quality alone.
    train_shown_mse, train_frame_mse: both scores while training, second half
      of the stream.
    train_loss: mean training loss over the second half of the stream.
    frames_taken: training frames that entered the model.
    updates: optimizer updates of the top stage.
    train_steps: computation steps streamed in training.
    eval_step_mse: mean score-(a) error at each step t of a held-out video.
    cosines: per stage (bottom first), the mean cosine between the row's
      pseudo-gradient and the exact gradient on held-out streams after
      training (`diagnostics.gradient_cosines`); None for BP (exact).
    train_seconds, eval_seconds: wall time (compilation included).
  """
  shown_mse: float
  frame_mse: float
  shown_copy_mse: float
  frame_copy_mse: float
  recon_mse: float
  train_shown_mse: float
  train_frame_mse: float
  train_loss: float
  frames_taken: int
  updates: int
  train_steps: int
  eval_step_mse: list[float]
  cosines: list[float] | None
  train_seconds: float
  eval_seconds: float


class _Sums:
  """Running (sum, count) pairs by name."""

  def __init__(self):
    self.sums = {}

  def add(self, name: str, total_count: tuple[float, int]) -> None:
    total, count = self.sums.get(name, (0.0, 0))
    self.sums[name] = (total + total_count[0], count + total_count[1])

  def mean(self, name: str) -> float:
    total, count = self.sums.get(name, (0.0, 0))
    return total / count if count else float('nan')


def _score(sums: _Sums, prefix: str, trace: trace_lib.StreamTrace,
           num_stages: int, video_valid: np.ndarray | None = None) -> None:
  """Adds a trace's two scores to `sums` as <prefix>shown, <prefix>frame."""
  latency = metric.first_scored_step(num_stages)
  sums.add(prefix + 'shown', metric.scored_error_sum(
      trace.errors, trace.emitted, first_step=latency,
      video_valid=video_valid))
  sums.add(prefix + 'frame', metric.frame_error_sum(
      trace.errors, trace.source_errors, trace.origin, trace.emitted,
      latency=latency, video_valid=video_valid))


def video_batches(config: Any, *, train: bool) -> Iterator[dict[str, Any]]:
  """Batches of the training stream, or of one pass over held-out videos.

  Training yields num_train_steps / clip_length batches; evaluation yields
  config.max_eval_batches (0: the whole held-out split).
  """
  limit = (builders.video_batches_per_run(config) if train
           else (config.max_eval_batches or None))
  with builders.build_loader(config, train=train) as loader:
    yield from itertools.islice(loader, limit)


def initial_variables(config: Any, stages: tuple) -> tuple[dict, ...]:
  """The weights every row starts from."""
  r = config.data.resolution
  example = jnp.zeros((config.batch_size, r, r, 3), jnp.float32)
  return chain_lib.init_chain(stages, jax.random.key(config.seed), example)


def train(config: Any, row: str, fns: builders.StreamFunctions,
          variables: tuple[dict, ...], optimizer: learner_lib.Optimizers,
          batches: Iterable[dict[str, Any]], log: Log
          ) -> tuple[learner_lib.LearnerState, dict[str, Any]]:
  """Streams the training videos through one row's learner."""
  num_stages = config.model.num_stages
  first = metric.first_scored_step(num_stages)
  num_batches = builders.video_batches_per_run(config)
  learner = learner_lib.init_learner(variables, optimizer)
  half = num_batches // 2  # Report the second half of the stream.
  sums = _Sums()
  loss_sum, loss_count, taken, updates, steps = 0.0, 0, 0, 0, 0
  start = time.perf_counter()
  for index, batch in enumerate(batches):
    learner, trace = fns.train[row](learner, batch['video'])
    trace = builders.host_trace(trace)
    taken += int(trace.taken.sum())
    updates += int(trace.trained.sum())
    steps += trace.taken.shape[0]
    if index >= half:
      _score(sums, 'train_', trace, num_stages)
      loss_sum += float(trace.loss.sum())
      loss_count += int(trace.trained.sum())
    if not np.isfinite(trace.loss).all():
      raise FloatingPointError(
          f'{row}: non-finite training loss at video batch {index}; lower '
          f'--config.optimizer.learning_rate.{row}')
    if (index + 1) % config.log_every == 0 or index + 1 == num_batches:
      log(f'{row} train {index + 1}/{num_batches}: video stream MSE '
          f'{trace.errors[first:].mean():.5f} '
          f'({time.perf_counter() - start:.0f} s)')
  summary = {
      'train_shown_mse': sums.mean('train_shown'),
      'train_frame_mse': sums.mean('train_frame'),
      'train_loss': loss_sum / max(loss_count, 1),
      'frames_taken': taken, 'updates': updates, 'train_steps': steps,
      'train_seconds': time.perf_counter() - start}
  return learner, summary


def perfect_copy_trace(video: np.ndarray,
                       trace: trace_lib.StreamTrace) -> trace_lib.StreamTrace:
  """The trace a perfect auto-encoder would leave with the same timing."""
  frames = video.astype(np.float32) / 255.0  # [T, B, H, W, C]
  shown = frames[np.maximum(trace.origin, 0)]
  errors = np.square(shown - frames).reshape(*frames.shape[:2], -1)
  errors = errors.mean(axis=2) * (trace.origin >= 0)[:, None]
  return trace._replace(errors=errors,
                        source_errors=np.zeros_like(errors))


def evaluate(config: Any, row: str, fns: builders.StreamFunctions,
             learner: learner_lib.LearnerState,
             batches: Iterable[dict[str, Any]]) -> dict[str, Any]:
  """Streams the held-out videos through one trained model (inference)."""
  num_stages = config.model.num_stages
  first = metric.first_scored_step(num_stages)
  infer = fns.infer[builders.row_algorithm(row)]
  variables = learner.variables
  sums = _Sums()
  curve_sum, curve_count, cosines = 0.0, 0, None
  start = time.perf_counter()
  for index, batch in enumerate(batches):
    trace = builders.host_trace(infer(variables, batch['video']))
    valid = batch['example_valid']
    _score(sums, '', trace, num_stages, valid)
    _score(sums, 'copy_', perfect_copy_trace(batch['video'], trace),
           num_stages, valid)
    recon = np.asarray(fns.reconstruct(variables, batch['video']))
    sums.add('recon', metric.scored_error_sum(
        recon, trace.emitted, first_step=first, video_valid=valid))
    curve_sum = curve_sum + trace.errors[:, valid].sum(axis=1)
    curve_count += int(valid.sum())
    if index == 0 and row in fns.cosines and config.diagnostic.streams:
      cosines = _mean_cosines(config, fns.cosines[row], learner,
                              batch['video'])
  if curve_count == 0:
    raise ValueError('no held-out video was scored')
  return {
      'shown_mse': sums.mean('shown'), 'frame_mse': sums.mean('frame'),
      'shown_copy_mse': sums.mean('copy_shown'),
      'frame_copy_mse': sums.mean('copy_frame'),
      'recon_mse': sums.mean('recon'),
      'eval_step_mse': (np.asarray(curve_sum) / curve_count).tolist(),
      'cosines': cosines,
      'eval_seconds': time.perf_counter() - start}


def _mean_cosines(config: Any, cosine_fn: Callable[..., Any],
                  learner: learner_lib.LearnerState,
                  video: np.ndarray) -> list[float]:
  """Per stage, the mean pseudo/exact gradient cosine on a held-out clip.

  The trained learner goes on training on the first `diagnostic.frames`
  frames of `diagnostic.streams` held-out videos; the learner it leaves is
  dropped (the scores above are of the learner before).
  """
  cfg = config.diagnostic
  clip = video[:cfg.frames, :cfg.streams]
  _, cosines = cosine_fn(learner, clip)
  return np.nanmean(np.asarray(cosines), axis=0).tolist()


def run_point(config: Any, fns: builders.StreamFunctions, stages: tuple,
              optimizers: dict[str, learner_lib.Optimizers],
              log: Log = logging.info) -> dict[str, RowResult]:
  """Trains and evaluates every row of the config on one stream.

  `optimizers` maps each row to its optimizer (`builders.build_optimizers`).
  """
  variables = initial_variables(config, stages)
  # Synthetic videos are a pure function of their index: render the stream
  # once for every row. File sources are re-read (same seed, so the same
  # stream), which keeps memory flat on long real-data runs.
  cached = config.data.cache
  train_batches = list(video_batches(config, train=True)) if cached else None
  eval_batches = list(video_batches(config, train=False)) if cached else None
  results = {}
  for row in builders.rows(config):
    learner, summary = train(
        config, row, fns, variables, optimizers[row],
        train_batches if cached else video_batches(config, train=True), log)
    summary.update(evaluate(
        config, row, fns, learner,
        eval_batches if cached else video_batches(config, train=False)))
    results[row] = RowResult(**summary)
    log(f'{row}: held-out MSE (a) shown {summary["shown_mse"]:.5f} '
        f'(lag floor {summary["shown_copy_mse"]:.5f}), (b) frame '
        f'{summary["frame_mse"]:.5f} (floor {summary["frame_copy_mse"]:.5f})'
        + (f', cosines {np.round(summary["cosines"], 2).tolist()}'
           if summary['cosines'] else ''))
  return results
