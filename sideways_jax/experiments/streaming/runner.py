"""Trains BP and Sideways on the same stream, then scores held-out videos.

Every row (BP, Sideways, Sideways with one change) starts from the same
weights and sees the same training stream: batches of B videos played side
by side, T frames each, one frame per computation step, the learner carried
from video to video. Evaluation streams the held-out videos through each
trained model, forward only, under both schedules of
`sideways_jax.streaming.schedules` (the training timing, and pipelined
inference), and scores every trace with every score of
`sideways_jax.streaming.metric` (SCORES), next to the same scores of a
perfect copy with the same timing (the output is the frame it came from:
the cost of the timing alone; not a bound, a blurry model can score below
it).
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
from sideways_jax.train_state import TrainState

Log = Callable[[str], None]
# schedule -> score -> mean squared error.
Scores = dict[str, dict[str, float]]


@dataclasses.dataclass
class RowResult:
  """What one row did on one stream.

  Attributes:
    algorithm: the algorithm table's name it ran.
    options: every algorithm option it ran with.
    exact: the algorithm computes BP's gradients.
    fixes: the staleness corrections of its optimizer.
    scores: held-out MSE by schedule ('training', 'pipelined') and score
      ('shown', 'frame', 'frame_latency_free'; see `metric.SCORES`).
    copy_scores: the same for a perfect copy (the output is the frame it
      came from) with the same timing: what the timing alone costs.
    recon_mse: the trained model's error on each held-out frame against that
      same frame (no lag, every frame): its reconstruction quality alone.
    train_scores: score -> MSE while training, second half of the stream.
    train_loss: mean training loss over the second half of the stream.
    frames_taken: training frames that entered the model.
    updates: optimizer updates of the top stage.
    stream_frames: computation steps (frames) streamed in training.
    eval_step_mse: schedule -> mean score-(a) error at each step t of a
      held-out video.
    cosines: per stage (bottom first), the mean cosine between the row's
      pseudo-gradient and the exact gradient on held-out streams after
      training (`diagnostics.gradient_cosines`); None for an exact row.
    train_seconds, eval_seconds: wall time (compilation included).
  """
  algorithm: str
  options: dict[str, Any]
  exact: bool
  fixes: list[str]
  scores: Scores
  copy_scores: Scores
  recon_mse: float
  train_scores: dict[str, float]
  train_loss: float
  frames_taken: int
  updates: int
  stream_frames: int
  eval_step_mse: dict[str, list[float]]
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

  def add_trace(self, prefix: str, trace: trace_lib.StreamTrace,
                num_stages: int, video_valid: np.ndarray | None = None
                ) -> None:
    """Adds every score of a trace as '<prefix><score>'."""
    for score, total_count in metric.score_sums(
        trace, num_stages=num_stages, video_valid=video_valid).items():
      self.add(prefix + score, total_count)

  def mean(self, name: str) -> float:
    total, count = self.sums.get(name, (0.0, 0))
    return total / count if count else float('nan')

  def scores(self, prefix: str) -> dict[str, float]:
    """score -> mean of '<prefix><score>'."""
    return {score: self.mean(prefix + score) for score in metric.SCORES}


def video_batches(config: Any, *, train: bool) -> Iterator[dict[str, Any]]:
  """Batches of the training stream, or of one pass over held-out videos.

  Training yields stream_frames / clip_length batches; evaluation yields
  config.max_eval_batches (0: the whole held-out split).
  """
  limit = (builders.video_batches_per_run(config) if train
           else (config.max_eval_batches or None))
  with builders.build_loader(config, train=train) as loader:
    yield from itertools.islice(loader, limit)


def initial_variables(config: Any, stages: tuple) -> tuple[dict, ...]:
  """The weights every row starts from (initialised with key(seed))."""
  r = config.data.resolution
  example = jnp.zeros((config.batch_size, r, r, 3), jnp.float32)
  return chain_lib.init_chain(stages, jax.random.key(config.seed), example)


def dropout_key(config: Any) -> jax.Array:
  """Every row's dropout key (another key than the initialisation's)."""
  return jax.random.fold_in(jax.random.key(config.seed), 1)


def train(config: Any, row: str, fns: builders.StreamFunctions,
          variables: tuple[dict, ...], optimizer: learner_lib.Optimizers,
          batches: Iterable[dict[str, Any]], log: Log
          ) -> tuple[TrainState, dict[str, Any]]:
  """Streams the training videos through one row's learner."""
  num_stages = config.model.num_stages
  first = metric.first_scored_step(num_stages)
  num_batches = builders.video_batches_per_run(config)
  learner = learner_lib.init_learner(variables, optimizer,
                                     dropout_key(config))
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
      sums.add_trace('train_', trace, num_stages)
      loss_sum += float(trace.loss.sum())
      loss_count += int(trace.trained.sum())
    if not np.isfinite(trace.loss).all():
      raise FloatingPointError(
          f'{row}: non-finite training loss at video batch {index}; lower '
          f'--config.optimizer.row_learning_rates.{row}')
    if (index + 1) % config.log_every == 0 or index + 1 == num_batches:
      log(f'{row} train {index + 1}/{num_batches}: video stream MSE '
          f'{trace.errors[first:].mean():.5f} '
          f'({time.perf_counter() - start:.0f} s)')
  summary = {
      'train_scores': sums.scores('train_'),
      'train_loss': loss_sum / max(loss_count, 1),
      'frames_taken': taken, 'updates': updates, 'stream_frames': steps,
      'train_seconds': time.perf_counter() - start}
  return learner, summary


def perfect_copy_trace(video: np.ndarray,
                       trace: trace_lib.StreamTrace) -> trace_lib.StreamTrace:
  """The trace a perfect auto-encoder would leave with the same timing."""
  frames = video.astype(np.float32) / 255.0  # [T, B, H, W, C]

  def errors(shown_index):
    diff = np.square(frames[np.maximum(shown_index, 0)] - frames)
    return diff.reshape(*frames.shape[:2], -1).mean(axis=2)

  steps = np.arange(frames.shape[0])
  latest = np.maximum.accumulate(np.where(trace.taken, steps, -1))
  return trace._replace(
      errors=errors(trace.origin) * (trace.origin >= 0)[:, None],
      source_errors=np.zeros(frames.shape[:2], np.float32),
      latest_errors=None if trace.latest_errors is None else errors(latest))


def evaluate(config: Any, row: str, fns: builders.StreamFunctions,
             learner: TrainState,
             batches: Iterable[dict[str, Any]]) -> dict[str, Any]:
  """Streams the held-out videos through one trained model, each schedule.

  A schedule whose function is another's (Sideways: the training timing is
  the pipelined one) is run once and reported under both names.
  """
  num_stages = config.model.num_stages
  schedules = fns.infer[row]
  distinct = list(dict.fromkeys(schedules.values()))
  variables = learner_lib.variables(learner)
  sums = {fn: _Sums() for fn in distinct}
  curves, recon, count, cosines = {}, _Sums(), 0, None
  start = time.perf_counter()
  for index, batch in enumerate(batches):
    video, valid = batch['video'], batch['example_valid']
    for fn in distinct:
      trace = builders.host_trace(fn(variables, video))
      sums[fn].add_trace('', trace, num_stages, valid)
      sums[fn].add_trace('copy_', perfect_copy_trace(video, trace),
                         num_stages, valid)
      curves[fn] = curves.get(fn, 0.0) + trace.errors[:, valid].sum(axis=1)
    errors = np.asarray(fns.reconstruct(variables, video))
    recon.add('recon', metric.scored_error_sum(
        errors, np.ones(errors.shape[0], bool),
        first_step=metric.first_scored_step(num_stages), video_valid=valid))
    count += int(valid.sum())
    if index == 0 and row in fns.cosines and config.diagnostic.streams:
      cosines = _mean_cosines(config, fns.cosines[row], learner, video)
  if count == 0:
    raise ValueError('no held-out video was scored')
  return {
      'scores': {s: sums[fn].scores('') for s, fn in schedules.items()},
      'copy_scores': {s: sums[fn].scores('copy_')
                      for s, fn in schedules.items()},
      'recon_mse': recon.mean('recon'),
      'eval_step_mse': {s: (np.asarray(curves[fn]) / count).tolist()
                        for s, fn in schedules.items()},
      'cosines': cosines,
      'eval_seconds': time.perf_counter() - start}


def _mean_cosines(config: Any, cosine_fn: Callable[..., Any],
                  learner: TrainState,
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


def _log_scores(log: Log, row: str, result: RowResult) -> None:
  for schedule, scores in result.scores.items():
    copies = result.copy_scores[schedule]
    log(f'{row}: held-out MSE, {schedule} schedule (perfect copy with this '
        'timing): ' + ', '.join(f'{s} {v:.5f} ({copies[s]:.5f})'
                                for s, v in scores.items()))
  if result.cosines:
    log(f'{row}: gradient cosines {np.round(result.cosines, 2).tolist()}')


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
  for name, row in builders.row_specs(config).items():
    learner, summary = train(
        config, name, fns, variables, optimizers[name],
        train_batches if cached else video_batches(config, train=True), log)
    summary.update(evaluate(
        config, name, fns, learner,
        eval_batches if cached else video_batches(config, train=False)))
    results[name] = RowResult(
        algorithm=row.stream.algorithm, options=dict(row.stream.options),
        exact=row.exact, fixes=sorted(row.fixes), **summary)
    _log_scores(log, name, results[name])
  return results
