"""Train and evaluate one algorithm on one config, resumably.

Run folder layout (`workdir`):

  config.json        the run's config; resuming with another one is an error
  metrics.jsonl      one JSON record per train step and per evaluation
  tensorboard/       TensorBoard event files (tensorboardX)
  checkpoints/<step> orbax checkpoints of the TrainState
  summary.json       final numbers (written when training ends)

Re-running the same command after a crash or `kill -9` resumes from the
newest checkpoint; batches are a pure function of (seed, step) and dropout
keys of (seed, step), so on CPU the result equals an uninterrupted run's.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import sys
import time
from collections.abc import Iterable
from typing import Any, TextIO

import jax
import jax.numpy as jnp
import numpy as np

from sideways_jax import runners
from sideways_jax.train import builders
from sideways_jax.train import checkpoint as checkpoint_lib
from sideways_jax.train import progress as progress_lib
from sideways_jax.train import state as state_lib
from sideways_jax.train import step as step_lib
from sideways_jax.train import validate
from sideways_jax.train import writers

# Keys that change logging, pacing or where the data lives, never the
# numbers: a run may be resumed with other values.
RESUME_SAFE_KEYS = ('algorithm', 'compare', 'data.root', 'data.num_threads',
                    'data.prefetch', 'log_every', 'eval_every',
                    'checkpoint_every', 'max_checkpoints_to_keep',
                    'tensorboard', 'sweep.field', 'sweep.choices')


class NonFiniteLossError(FloatingPointError):
  """Training produced a NaN/Inf loss or gradient; the run was stopped."""


@dataclasses.dataclass
class RunSummary:
  """What one training run reached.

  Attributes:
    algorithm: 'bp' or 'sideways'.
    workdir: the run folder.
    steps: optimizer updates done.
    train_loss: mean train loss over the last `log_every` steps.
    train_accuracy: mean train video accuracy over the same steps.
    eval: final evaluation: 'video_accuracy', 'frame_accuracy', 'loss',
      'num_videos'; empty when `max_steps` stopped the run early.
    steps_per_second: training speed, without compilation and evaluation.
    train_seconds: time spent in training steps.
    num_params: trainable parameters.
  """
  algorithm: str
  workdir: str
  steps: int
  train_loss: float
  train_accuracy: float
  eval: dict[str, float]
  steps_per_second: float
  train_seconds: float
  num_params: int


def evaluate(eval_step, state: state_lib.TrainState,
             batches: Iterable[dict[str, np.ndarray]], *,
             max_batches: int = 0) -> dict[str, float]:
  """Video/frame accuracy and loss over `batches` (0 max_batches: all)."""
  totals = None
  for i, batch in enumerate(batches):
    if max_batches and i >= max_batches:
      break
    counts = eval_step(state, {k: batch[k] for k in step_lib.EVAL_KEYS})
    totals = counts if totals is None else jax.tree.map(jnp.add, totals,
                                                        counts)
  if totals is None:
    raise ValueError('the eval split yielded no batch')
  t = jax.device_get(totals)
  frames = max(int(t['num_frames']), 1)
  return {
      'video_accuracy': int(t['correct_videos']) / max(int(t['num_videos']), 1),
      'frame_accuracy': int(t['correct_frames']) / frames,
      'loss': float(t['loss_sum']) / frames,
      'num_videos': int(t['num_videos']),
  }


def _logged_eval(workdir: pathlib.Path, step: int) -> dict[str, float] | None:
  """The evaluation logged at `step` (a finished run re-run), if any."""
  for record in reversed(writers.read_metrics(workdir, 'eval')):
    if record['step'] == step:
      return {k: v for k, v in record.items() if k not in ('step', 'split')}
  return None


class _Stopwatch:
  """Accumulates the time between start() and stop() calls."""

  def __init__(self):
    self.seconds = 0.0
    self._since: float | None = None

  def start(self) -> None:
    self._since = time.perf_counter()

  def stop(self) -> None:
    if self._since is not None:
      self.seconds += time.perf_counter() - self._since
      self._since = None


def _window_means(path: pathlib.Path, window: int) -> tuple[float, float]:
  records = writers.read_metrics(path, 'train')[-window:]
  def mean(key):
    values = [r[key] for r in records if r.get(key) is not None]
    return float(np.mean(values)) if values else math.nan
  return mean('loss'), mean('video_accuracy')


def train_and_evaluate(config: Any, algorithm: str,
                       workdir: str | pathlib.Path, *,
                       max_steps: int | None = None,
                       stream: TextIO | None = None) -> RunSummary:
  """Trains `algorithm` on `config`, evaluating as it goes; resumes if it can.

  Args:
    config: a run config (see configs/common.py).
    algorithm: 'bp' or 'sideways'.
    workdir: the run folder (created; resumed from if it holds checkpoints).
    max_steps: stop this call at this step (checkpointed), as a time-boxed
      job would; the schedule still spans `config.num_train_steps`.
    stream: where progress and evaluation lines go (default stdout).

  Returns:
    The run's summary (also written to `workdir/summary.json`).

  Raises:
    ConfigError: a config value cannot work (before anything compiles).
    NonFiniteLossError: the loss became NaN/Inf; the newest checkpoint,
      from before it happened, is kept.
  """
  validate.validate_config(config)
  if algorithm not in runners.run_algorithms(config):
    raise validate.ConfigError(
        f'algorithm {algorithm!r} is not trained by this config (algorithm='
        f'{config.algorithm!r}, compare={config.compare})')
  train_source = builders.build_source(config, train=True)
  eval_source = builders.build_source(config, train=False)
  stages = builders.build_stages(config, train_source.num_classes)
  workdir = pathlib.Path(workdir)
  checkpoint_lib.check_same_run(workdir / 'config.json', config.to_dict(),
                                ignore=RESUME_SAFE_KEYS)
  optimizer, schedule = builders.build_optimizer(config)
  res = config.data.resolution
  state = state_lib.create_train_state(
      stages, optimizer, seed=config.seed,
      example_frame=jnp.zeros((config.batch_size, res, res, 3)))
  mean_std = dict(input_mean=config.data.mean, input_std=config.data.std)
  train_step = step_lib.make_train_step(
      stages, optimizer, algorithm=algorithm,
      target_alignment=config.target_alignment, bp_mode=config.bp_mode,
      learning_rate_fn=schedule, **mean_std)
  eval_step = step_lib.make_eval_step(stages, **mean_std)

  end = config.num_train_steps
  if max_steps is not None:
    end = min(end, max_steps)
  with checkpoint_lib.Checkpointer(
      workdir / 'checkpoints',
      max_to_keep=config.max_checkpoints_to_keep) as ckpt:
    restored = ckpt.restore_latest(state)
    state = restored if restored is not None else state
    start = int(state.step)
    if start:
      print(f'[{algorithm}] resuming {workdir} from step {start}',
            file=stream or sys.stdout, flush=True)

    bar = progress_lib.Progress(end, initial=start, desc=algorithm,
                                stream=stream)

    def run_eval(step: int) -> dict[str, float]:
      with builders.build_loader(config, eval_source, train=False) as batches:
        result = evaluate(eval_step, state, batches,
                          max_batches=config.max_eval_batches)
      writer.write(step, 'eval', result)
      writer.flush()
      bar.write(f'[{algorithm}] step {step} eval: video accuracy '
                f'{100 * result["video_accuracy"]:.1f}%, frame accuracy '
                f'{100 * result["frame_accuracy"]:.1f}%, loss '
                f'{result["loss"]:.4f} ({result["num_videos"]} videos)')
      return result

    pending: list[tuple[int, dict[str, jax.Array]]] = []
    clock = _Stopwatch()

    def flush_train() -> None:
      """Writes the pending train records; stops on a non-finite loss."""
      host = jax.device_get(pending)
      pending.clear()
      for step, metrics in host:
        if not metrics.pop('loss_is_finite'):
          raise NonFiniteLossError(
              f'[{algorithm}] the loss or a gradient became NaN/Inf at step '
              f'{step} (loss {float(metrics["loss"])}). Training stopped; the '
              f'newest checkpoint, from step {ckpt.latest_step()}, was made '
              f'before that and is kept in {ckpt.directory}. Lower '
              '--config.optimizer.learning_rate, set '
              '--config.optimizer.grad_clip_norm, or check the inputs.')
        writer.write(step, 'train', metrics)
      writer.flush()
      if host:
        bar.update(host[-1][0], f'loss {float(host[-1][1]["loss"]):.4f}')

    final_eval = None
    with writers.MetricWriter(workdir, resume_step=start,
                              tensorboard=config.tensorboard) as writer, \
        builders.build_loader(config, train_source, train=True,
                              start_step=start) as loader:
      for step in range(start + 1, end + 1):
        batch = next(loader)
        state, metrics = train_step(
            state, {k: batch[k] for k in step_lib.TRAIN_KEYS})
        pending.append((step, metrics))
        if step == start + 1:
          # The first step compiles: the measured speed starts after it.
          jax.block_until_ready(state)
          clock.start()
        if step % config.log_every == 0 or step == end:
          flush_train()
        if step % config.checkpoint_every == 0 or step == end:
          flush_train()  # Never checkpoint a state that has not been checked.
          ckpt.save(state, step)
        if step % config.eval_every == 0 or step == config.num_train_steps:
          flush_train()
          jax.block_until_ready(state)
          clock.stop()
          final_eval = run_eval(step)
          clock.start()
      jax.block_until_ready(state)
      clock.stop()
      if end > start:
        bar.close()
      if final_eval is None and end == config.num_train_steps:
        final_eval = _logged_eval(workdir, end) or run_eval(end)

  timed_steps = max(end - start - 1, 0)
  rate = timed_steps / clock.seconds if clock.seconds > 0 else math.nan
  train_time = clock.seconds
  summary_path = workdir / 'summary.json'
  if not timed_steps and summary_path.exists():
    previous = json.loads(summary_path.read_text())
    rate, train_time = previous['steps_per_second'], previous['train_seconds']
  train_loss, train_accuracy = _window_means(workdir, config.log_every)
  summary = RunSummary(
      algorithm=algorithm, workdir=str(workdir), steps=int(state.step),
      train_loss=train_loss, train_accuracy=train_accuracy,
      eval=final_eval or {},
      steps_per_second=rate, train_seconds=train_time,
      num_params=state_lib.num_params(state))
  summary_path.write_text(json.dumps(dataclasses.asdict(summary), indent=2))
  return summary
