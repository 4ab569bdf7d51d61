"""Trains BP and Sideways on the same stream, then scores held-out videos.

Both algorithms start from the same weights and see the same training
stream: batches of B videos played side by side, T frames each, one frame
per computation step, the learner carried from video to video. Evaluation
streams the held-out videos through each trained model in inference mode
(Sideways pipelined, BP blocked) and scores what is shown at every step
against the frame of that step (see `metric`).
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
import optax

from sideways_jax import chain as chain_lib
from sideways_jax import runners
from sideways_jax.streaming import builders
from sideways_jax.streaming import learner as learner_lib
from sideways_jax.streaming import metric

Log = Callable[[str], None]


@dataclasses.dataclass
class AlgorithmResult:
  """What one algorithm did on one stream setting.

  Attributes:
    eval_mse: stream MSE on the held-out videos (the number that counts).
    perfect_copy_mse: the same error for a perfect auto-encoder with this
      algorithm's timing (showing exactly the frame its output came from):
      the part of the error due to lag alone.
    recon_mse: the trained model's error on each held-out frame against that
      same frame (no lag, every step): its reconstruction quality alone.
    train_stream_mse: stream MSE while training, second half of the stream.
    train_loss: mean training loss over the second half of the stream.
    frames_taken: training frames that entered the model.
    updates: optimizer updates of the top stage.
    train_steps: computation steps streamed in training.
    eval_step_mse: mean error at each step t of a held-out video [T].
    train_seconds, eval_seconds: wall time (compilation included).
  """
  eval_mse: float
  perfect_copy_mse: float
  recon_mse: float
  train_stream_mse: float
  train_loss: float
  frames_taken: int
  updates: int
  train_steps: int
  eval_step_mse: list[float]
  train_seconds: float
  eval_seconds: float


def video_batches(config: Any, *, train: bool) -> Iterator[dict[str, Any]]:
  """Batches of the training stream, or of one pass over held-out videos.

  Training yields config.train_batches batches; evaluation yields
  config.eval_batches (0: the whole held-out split).
  """
  limit = config.train_batches if train else (config.eval_batches or None)
  with builders.build_loader(config, train=train) as loader:
    yield from itertools.islice(loader, limit)


def initial_variables(config: Any, stages: tuple) -> tuple[dict, ...]:
  """The weights both algorithms start from."""
  r = config.data.resolution
  example = jnp.zeros((config.batch_size, r, r, 3), jnp.float32)
  return chain_lib.init_chain(stages, jax.random.key(config.seed), example)


def train(config: Any, algorithm: str, fns: builders.StreamFunctions,
          variables: tuple[dict, ...], optimizer: optax.GradientTransformation,
          batches: Iterable[dict[str, Any]], log: Log
          ) -> tuple[learner_lib.LearnerState, dict[str, Any]]:
  """Streams the training videos through one algorithm's learner."""
  first = metric.first_scored_step(config.model.num_stages)
  learner = learner_lib.init_learner(variables, optimizer)
  half = config.train_batches // 2  # Report the second half of the stream.
  err_sum = err_count = loss_sum = 0.0
  taken = updates = steps = loss_count = 0
  start = time.perf_counter()
  for index, batch in enumerate(batches):
    learner, trace = fns.train[algorithm](learner, batch['video'])
    trace = builders.host_trace(trace)
    taken += int(trace.taken.sum())
    updates += int(trace.trained.sum())
    steps += trace.taken.shape[0]
    if index >= half:
      total, count = metric.scored_error_sum(trace.errors, trace.emitted,
                                             first_step=first)
      err_sum, err_count = err_sum + total, err_count + count
      loss_sum += float(trace.loss.sum())
      loss_count += int(trace.trained.sum())
    if not np.isfinite(trace.loss).all():
      raise FloatingPointError(
          f'{algorithm}: non-finite training loss at video batch {index}; '
          f'lower --config.optimizer.learning_rate.{algorithm}')
    if (index + 1) % config.log_every == 0 or index + 1 == config.train_batches:
      log(f'{algorithm} train {index + 1}/{config.train_batches}: video '
          f'stream MSE {trace.errors[first:].mean():.5f} '
          f'({time.perf_counter() - start:.0f} s)')
  summary = {
      'train_stream_mse': err_sum / max(err_count, 1),
      'train_loss': loss_sum / max(loss_count, 1),
      'frames_taken': taken, 'updates': updates, 'train_steps': steps,
      'train_seconds': time.perf_counter() - start}
  return learner, summary


def _perfect_copy_errors(video: np.ndarray, origin: np.ndarray) -> np.ndarray:
  """[T, B] error of showing frame origin[t] at step t (perfect model)."""
  frames = video.astype(np.float32) / 255.0  # [T, B, H, W, C]
  shown = frames[np.maximum(origin, 0)]
  errors = np.square(shown - frames).reshape(*frames.shape[:2], -1)
  return errors.mean(axis=2) * (origin >= 0)[:, None]


def evaluate(config: Any, algorithm: str, fns: builders.StreamFunctions,
             variables: tuple[dict, ...],
             batches: Iterable[dict[str, Any]]) -> dict[str, Any]:
  """Streams the held-out videos through one trained model (inference)."""
  first = metric.first_scored_step(config.model.num_stages)
  sums = {'model': [0.0, 0], 'copy': [0.0, 0], 'recon': [0.0, 0]}
  curve_sum, curve_count = 0.0, 0
  start = time.perf_counter()
  for batch in batches:
    trace = builders.host_trace(fns.infer[algorithm](variables,
                                                     batch['video']))
    valid = batch['example_valid']
    copy = _perfect_copy_errors(batch['video'], trace.origin)
    recon = np.asarray(fns.reconstruct(variables, batch['video']))
    for key, errors in (('model', trace.errors), ('copy', copy),
                        ('recon', recon)):
      total, count = metric.scored_error_sum(
          errors, trace.emitted, first_step=first, video_valid=valid)
      sums[key][0] += total
      sums[key][1] += count
    curve_sum = curve_sum + trace.errors[:, valid].sum(axis=1)
    curve_count += int(valid.sum())
  if sums['model'][1] == 0:
    raise ValueError('no held-out video was scored')
  return {
      'eval_mse': sums['model'][0] / sums['model'][1],
      'perfect_copy_mse': sums['copy'][0] / sums['copy'][1],
      'recon_mse': sums['recon'][0] / sums['recon'][1],
      'eval_step_mse': (np.asarray(curve_sum) / curve_count).tolist(),
      'eval_seconds': time.perf_counter() - start}


def run_point(config: Any, fns: builders.StreamFunctions, stages: tuple,
              optimizers: dict[str, optax.GradientTransformation],
              log: Log = logging.info) -> dict[str, AlgorithmResult]:
  """Trains and evaluates every algorithm of the config on one setting.

  `optimizers` maps each algorithm to its own optimizer (see
  `builders.build_optimizers`).
  """
  variables = initial_variables(config, stages)
  # Synthetic videos are a pure function of their index: render the stream
  # once for both algorithms. File sources are re-read (same seed, so the
  # same stream), which keeps memory flat on long real-data runs.
  cached = config.data.cache
  train_batches = list(video_batches(config, train=True)) if cached else None
  eval_batches = list(video_batches(config, train=False)) if cached else None
  results = {}
  for algorithm in runners.run_algorithms(config):
    learner, summary = train(
        config, algorithm, fns, variables, optimizers[algorithm],
        train_batches if cached else video_batches(config, train=True), log)
    summary.update(evaluate(
        config, algorithm, fns, learner.variables,
        eval_batches if cached else video_batches(config, train=False)))
    results[algorithm] = AlgorithmResult(**summary)
    log(f'{algorithm}: held-out stream MSE {summary["eval_mse"]:.5f} '
        f'(perfect copy, same timing: {summary["perfect_copy_mse"]:.5f})')
  return results
