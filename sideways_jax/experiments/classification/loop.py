"""Train and evaluate one algorithm on one config, resumably.

Run folder layout (`workdir`):

  config.json        the run's config; resuming with another one is an error
  metrics.jsonl      one JSON record per train step and per evaluation
  tensorboard/       TensorBoard event files (tensorboardX)
  checkpoints/<step> orbax checkpoints of the training state (on a mesh,
                     each device's shard holds only its own stage)
  summary.json       final numbers (written when training ends)

Re-running the same command after a crash or `kill -9` resumes from the
newest checkpoint; batches are a pure function of (seed, step) and dropout
keys of (seed, step), so on CPU the result equals an uninterrupted run's.
A checkpoint is written only after every step up to it was checked finite,
so a run stopped by a NaN keeps a checkpoint from before the NaN.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import pathlib
import sys
import time
from typing import Any, TextIO

import jax
import jax.numpy as jnp
import numpy as np

from sideways_jax.experiments.classification import backend as backend_lib
from sideways_jax.experiments.classification import builders
from sideways_jax.experiments.classification import checkpoint as checkpoint_lib
from sideways_jax.experiments.classification import progress as progress_lib
from sideways_jax.experiments.classification import state as state_lib
from sideways_jax.experiments.classification import step as step_lib
from sideways_jax.experiments.classification import writers

# Keys that change logging, pacing, where the data lives or how the devices
# are laid out, never the numbers: a run may be resumed with other values.
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
    algorithm: the algorithm word ('bp', 'sideways', ...).
    workdir: the run folder.
    steps: optimizer updates done.
    train_loss: mean train loss over the last `log_every` steps.
    train_accuracy: mean train video accuracy over the same steps.
    eval: final evaluation: 'video_accuracy', 'frame_accuracy', 'loss',
      'num_videos'; empty when `max_steps` stopped the run early.
    steps_per_second: training speed, without compilation and evaluation.
    train_seconds: time spent in training steps.
    num_params: trainable parameters.
    num_classes: classes of the data (chance is 1 / num_classes).
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
  num_classes: int


def evaluate(eval_step, variables: tuple[dict, ...], batches, *,
             max_batches: int = 0) -> dict[str, float]:
  """Video/frame accuracy and loss over `batches` (0 max_batches: all)."""
  totals = None
  for i, batch in enumerate(batches):
    if max_batches and i >= max_batches:
      break
    counts = eval_step(variables, {k: batch[k] for k in step_lib.EVAL_KEYS})
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


class _TrainLog:
  """Train records waiting for the host: checked finite, then written.

  Metrics stay on the device until a flush (no host sync per step); the
  last `window` records are kept for the summary.
  """

  def __init__(self, algorithm: str, writer: writers.MetricWriter,
               ckpt: checkpoint_lib.Checkpointer, bar: progress_lib.Progress,
               window: int):
    self._algorithm, self._writer, self._ckpt, self._bar = (
        algorithm, writer, ckpt, bar)
    self._pending: list[tuple[int, dict[str, jax.Array]]] = []
    self.recent = collections.deque(
        (r for r in writer.records if r['split'] == 'train'), maxlen=window)

  def add(self, step: int, metrics: dict[str, jax.Array]) -> None:
    self._pending.append((step, metrics))

  def flush(self) -> None:
    """Writes the pending records; stops on a non-finite loss or gradient."""
    host = jax.device_get(self._pending)
    self._pending.clear()
    for step, metrics in host:
      if not metrics.pop('loss_is_finite'):
        self._writer.flush()
        raise NonFiniteLossError(self._non_finite_message(step, metrics))
      self.recent.append(self._writer.write(step, 'train', metrics))
    self._writer.flush()
    if host:
      self._bar.update(host[-1][0], f'loss {float(host[-1][1]["loss"]):.4f}')

  def _non_finite_message(self, step: int, metrics: dict[str, Any]) -> str:
    kept = self._ckpt.latest_step()
    where = (f'the newest checkpoint, from step {kept} (before it), is kept '
             f'in {self._ckpt.directory}' if kept is not None else
             'no checkpoint was written before it')
    return (f'[{self._algorithm}] the loss or a gradient became NaN/Inf at '
            f'step {step} (loss {float(metrics["loss"])}); training stopped '
            f'and {where}. Lower --config.optimizer.learning_rate, set '
            '--config.optimizer.grad_clip_norm, or check the inputs.')

  def means(self) -> tuple[float, float]:
    def mean(key):
      values = [r[key] for r in self.recent if r.get(key) is not None]
      return float(np.mean(values)) if values else math.nan
    return mean('loss'), mean('video_accuracy')


@dataclasses.dataclass
class Prepared:
  """Everything a run builds from its config before it trains."""
  train_source: Any
  eval_source: Any
  backend: Any
  state: Any
  eval_step: Any


def prepare(config: Any, algorithm: str) -> Prepared:
  """Data sources, model, backend and initial state of one run.

  Raises:
    ConfigError, DatasetLayoutError: before anything is compiled.
  """
  train_source = builders.build_source(config, train=True)
  eval_source = builders.build_source(config, train=False)
  stages = builders.build_stages(config, train_source.num_classes)
  optimizer, schedule = builders.build_optimizer(config)
  backend = backend_lib.make_backend(config, algorithm, stages, optimizer,
                                     schedule)
  res = config.data.resolution
  state = backend.init_state(jnp.zeros((config.batch_size, res, res, 3)))
  eval_step = step_lib.make_eval_step(stages, input_mean=config.data.mean,
                                      input_std=config.data.std)
  return Prepared(train_source, eval_source, backend, state, eval_step)


def train_and_evaluate(config: Any, algorithm: str,
                       workdir: str | pathlib.Path, *,
                       max_steps: int | None = None,
                       stream: TextIO | None = None) -> RunSummary:
  """Trains `algorithm` on a validated `config`, evaluating as it goes.

  Args:
    config: a run config checked by `validate.validate_config`.
    algorithm: one of the config's algorithms (see `validate.algorithms`).
    workdir: the run folder (created; resumed from if it holds checkpoints).
    max_steps: stop this call at this step (checkpointed), as a time-boxed
      job would; the schedule still spans `config.num_train_steps`.
    stream: where progress and evaluation lines go (default stdout).

  Returns:
    The run's summary (also written to `workdir/summary.json`).

  Raises:
    NonFiniteLossError: the loss became NaN/Inf; the newest checkpoint,
      from before it happened, is kept.
  """
  out = stream or sys.stdout
  run = prepare(config, algorithm)
  workdir = pathlib.Path(workdir)
  checkpoint_lib.check_same_run(workdir / 'config.json', config.to_dict(),
                                ignore=RESUME_SAFE_KEYS)
  end = min(config.num_train_steps, max_steps or config.num_train_steps)
  with checkpoint_lib.Checkpointer(
      workdir / 'checkpoints',
      max_to_keep=config.max_checkpoints_to_keep) as ckpt:
    state = ckpt.restore_latest(run.state) or run.state
    start = run.backend.step_of(state)
    if start:
      print(f'[{algorithm}] resuming {workdir} from step {start}', file=out,
            flush=True)
    with writers.MetricWriter(workdir, resume_step=start,
                              tensorboard=config.tensorboard) as writer:
      state, clock, final_eval, means = _train(
          config, algorithm, run, state, start, end, ckpt, writer, out)
  return _summarise(config, algorithm, run, state, workdir, start, end,
                    clock, final_eval, means)


def _train(config, algorithm, run, state, start, end, ckpt, writer, out):
  """The step loop: (state, stopwatch, final eval or None, train means)."""
  bar = progress_lib.Progress(end, initial=start, desc=algorithm, stream=out)
  log = _TrainLog(algorithm, writer, ckpt, bar, config.log_every)
  clock = _Stopwatch()

  def run_eval(step: int) -> dict[str, float]:
    with builders.build_loader(config, run.eval_source, train=False) as batches:
      result = evaluate(run.eval_step, run.backend.variables(state), batches,
                        max_batches=config.max_eval_batches)
    writer.write(step, 'eval', result)
    writer.flush()
    bar.write(f'[{algorithm}] step {step} eval: video accuracy '
              f'{100 * result["video_accuracy"]:.1f}%, frame accuracy '
              f'{100 * result["frame_accuracy"]:.1f}%, loss '
              f'{result["loss"]:.4f} ({result["num_videos"]} videos)')
    return result

  final_eval = None
  with builders.build_loader(config, run.train_source, train=True,
                             start_step=start) as loader:
    for step in range(start + 1, end + 1):
      batch = run.backend.place(
          {k: v for k, v in next(loader).items() if k in step_lib.TRAIN_KEYS})
      state, metrics = run.backend.train_step(state, batch)
      log.add(step, metrics)
      if step == start + 1:
        # The first step compiles: the measured speed starts after it.
        jax.block_until_ready(state)
        clock.start()
      if step % config.log_every == 0 or step == end:
        log.flush()
      if step % config.checkpoint_every == 0 or step == end:
        log.flush()  # Never checkpoint a state that has not been checked.
        ckpt.save(state, step)
      if step % config.eval_every == 0 or step == config.num_train_steps:
        log.flush()
        jax.block_until_ready(state)
        clock.stop()
        final_eval = run_eval(step)
        clock.start()
    jax.block_until_ready(state)
    clock.stop()
  if end > start:
    bar.close()
  if final_eval is None and end == config.num_train_steps:
    final_eval = writer.logged(end, 'eval') or run_eval(end)
  return state, clock, final_eval, log.means()


def _summarise(config, algorithm, run, state, workdir, start, end, clock,
               final_eval, means) -> RunSummary:
  timed_steps = max(end - start - 1, 0)
  rate = timed_steps / clock.seconds if clock.seconds > 0 else math.nan
  train_time = clock.seconds
  summary_path = workdir / 'summary.json'
  if not timed_steps and summary_path.exists():
    previous = json.loads(summary_path.read_text())
    rate, train_time = previous['steps_per_second'], previous['train_seconds']
  summary = RunSummary(
      algorithm=algorithm, workdir=str(workdir),
      steps=run.backend.step_of(state), train_loss=means[0],
      train_accuracy=means[1], eval=final_eval or {},
      steps_per_second=rate, train_seconds=train_time,
      num_params=state_lib.num_params(run.backend.variables(state)),
      num_classes=run.train_source.num_classes)
  summary_path.write_text(json.dumps(dataclasses.asdict(summary), indent=2))
  return summary
