"""Train and evaluate one algorithm on one config, resumably.

Run folder layout (`workdir`, a local folder or a `gs://` URL):

  config.json           the config of the newest checkpoint
  metrics.jsonl         one JSON record per train step and per evaluation
  tensorboard/          TensorBoard event files (tensorboardX)
  checkpoints/<step>/   the training state (on a mesh every process writes
                        its own shards) and the run's log and counters up to
                        that step, with a manifest (see checkpoint.py)
  summary.json          final numbers, from the newest checkpoint
  lock.json             the running run's host, pid and start time
  rejected_checkpoints/ checkpoints that did not verify (moved, not deleted)
  replaced/<time>/      what `--resume=restart` moved aside (or the config
                        a `--resume=fork` replaced)

Re-running the same command after a crash or `kill -9` resumes from the
newest checkpoint that verifies; batches are a pure function of (seed,
step), dropout keys of (seed, step), and the loader's skip list is in the
checkpoint, so on CPU the result equals an uninterrupted run's. The log is
cut back to the checkpoint's own copy of it (no duplicate, no gap), and
summary.json is computed from it. A checkpoint is written only after every
step up to it was checked finite and the state itself is finite. Which
config changes a resume accepts is derived in `experiments/resume.py`.

Multi-host: every process trains, saves its shards and reads the whole
global batch (the mesh keeps each device's part); process 0 alone holds the
lock, decides where to resume, evaluates, and writes config, logs and
summary.
"""

from __future__ import annotations

import collections
import dataclasses
import errno
import math
import os
import sys
import time
from typing import Any, TextIO

import jax
import jax.numpy as jnp
import numpy as np

from sideways_jax.data import DatasetLayoutError
from sideways_jax.experiments import common
from sideways_jax.experiments import hosts
from sideways_jax.experiments import lock as lock_lib
from sideways_jax.experiments import resume as resume_lib
from sideways_jax.experiments import workdir as workdir_lib
from sideways_jax.experiments.classification import backend as backend_lib
from sideways_jax.experiments.classification import builders
from sideways_jax.experiments.classification import checkpoint as checkpoint_lib
from sideways_jax.experiments.classification import progress as progress_lib
from sideways_jax.experiments.classification import resumption
from sideways_jax.experiments.classification import state as state_lib
from sideways_jax.experiments.classification import step as step_lib
from sideways_jax.experiments.classification import writers

CHECKPOINTS = resumption.CHECKPOINTS
CONFIG_FILE = resumption.CONFIG_FILE
SUMMARY_FILE = resumption.SUMMARY_FILE
DATA_PREFIX = 'data_'  # Data-fault counts in metrics records.


class NonFiniteLossError(FloatingPointError):
  """Training produced a NaN/Inf loss, gradient or state; the run stopped."""


class StorageError(common.RunError):
  """The run's files could not be written (e.g. a full disk)."""


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
      'num_videos' and the eval split's data faults; empty when `max_steps`
      stopped the run early.
    steps_per_second: training speed, without compilation, evaluation and
      checkpointing, over every call that trained this run (NaN: unknown).
    train_seconds: time spent in training steps, over the same calls.
    num_params: trainable parameters.
    num_classes: classes of the data (chance is 1 / num_classes).
    data_faults: per split ('train', 'eval'), the loader's counts of
      unreadable (skipped) and truncated (padded) videos and of eval
      examples left unscored (see `sideways_jax.data.LoaderStats`).
    ran: what actually ran (`Trainer.describe()`: algorithm, placement,
      options, precision, mesh).
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
  data_faults: dict[str, dict[str, int]]
  ran: dict[str, Any]


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


@dataclasses.dataclass
class Prepared:
  """Everything a run builds from its config before it trains.

  Attributes:
    numeric_keys: the dotted config keys read while building the rest: the
      keys that decide the run's numbers (see `experiments/resume.py`).
  """
  train_source: Any
  eval_source: Any
  backend: Any
  state: Any
  eval_step: Any
  numeric_keys: frozenset[str]


def prepare(config: Any, algorithm: str) -> Prepared:
  """Data sources, model, backend and initial state of one run.

  Raises:
    ConfigError, DatasetLayoutError: before anything is compiled.
  """
  view, read = resume_lib.record_reads(config)
  train_source = builders.build_source(view, train=True)
  eval_source = builders.build_source(view, train=False)
  stages = builders.build_stages(view, train_source.num_classes)
  optimizer, schedule = builders.build_optimizer(view)
  backend = backend_lib.make_backend(view, algorithm, stages, optimizer,
                                     schedule)
  res = view.data.resolution
  state = backend.init_state(jnp.zeros((view.batch_size, res, res, 3)))
  eval_step = step_lib.make_eval_step(stages, input_mean=view.data.mean,
                                      input_std=view.data.std)
  return Prepared(train_source, eval_source, backend, state, eval_step,
                  frozenset(read))


@dataclasses.dataclass
class _Session:
  """The run as restored, then as trained: what each checkpoint stores."""
  state: Any
  start: int
  log: list[dict[str, Any]]
  train_seconds: float = 0.0
  timed_steps: int = 0
  loader: dict[str, Any] | None = None

  def record(self, log: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON part of a checkpoint."""
    return {'log': log, 'train_seconds': self.train_seconds,
            'timed_steps': self.timed_steps, 'loader': self.loader}


def train_and_evaluate(config: Any, algorithm: str,
                       workdir: workdir_lib.PathLike, *,
                       max_steps: int | None = None,
                       stream: TextIO | None = None,
                       resume: str = 'auto') -> RunSummary:
  """Trains `algorithm` on a validated `config`, evaluating as it goes.

  Args:
    config: a run config checked by `validate.validate_config`.
    algorithm: one of the config's algorithms (see `validate.algorithms`).
    workdir: the run folder (created; resumed from if it holds checkpoints).
    max_steps: stop this call at this step (checkpointed), as a time-boxed
      job would; the schedule still spans `config.num_train_steps`.
    stream: where progress and evaluation lines go (default stdout; other
      processes than 0 print nothing).
    resume: 'auto' (continue a run whose config differs at most in keys
      that do not change the numbers), 'fork' (continue from the newest
      checkpoint with this config) or 'restart' (move the old run aside).

  Returns:
    The run's summary (also written to `workdir/summary.json`).

  Raises:
    NonFiniteLossError: the loss, a gradient or the state became NaN/Inf;
      the newest checkpoint, from before it happened, is kept.
    resume.ResumeError, lock.LockedError, workdir.WorkdirError: one line.
    checkpoint.CheckpointError, StorageError: one line (a failed run).
  """
  resume_lib.check_mode(resume)
  run = prepare(config, algorithm)
  lead = hosts.is_lead()
  end = min(config.num_train_steps, max_steps or config.num_train_steps)
  call = resumption.RunCall(
      config, algorithm, workdir_lib.as_path(workdir), end,
      stream or (sys.stdout if lead else open(os.devnull, 'w')), lead, resume)
  print(f'== {algorithm} -> {call.workdir}', file=call.out, flush=True)
  lock = lock_lib.WorkdirLock(call.workdir) if lead else None
  try:
    # Process 0 takes the folder and decides where to resume; if it cannot,
    # the other processes stop at once instead of waiting for it.
    step, = hosts.decide(lambda: (resumption.start(call, run.numeric_keys,
                                                   run.state, lock),))
    with checkpoint_lib.Checkpointer(
        call.workdir / CHECKPOINTS, lead=lead,
        max_to_keep=config.max_checkpoints_to_keep) as ckpt:
      session = _restore(call, run, ckpt, step)
      try:
        with writers.MetricWriter(
            call.workdir, records=session.log, resume_step=session.start,
            tensorboard=config.tensorboard, enabled=lead) as writer:
          if session.start < end:
            _train(call, run, ckpt, writer, session)
          return _summarise(call, run, session, writer.records)
      except OSError as e:
        if isinstance(e, DatasetLayoutError):
          raise
        raise _storage_error(call, ckpt, e) from e
  finally:
    if lock is not None:
      lock.release()


def _restore(call: resumption.RunCall, run: Prepared,
             ckpt: checkpoint_lib.Checkpointer, step: int) -> _Session:
  """The session at checkpoint `step`, or a new one (step < 0)."""
  if step < 0:
    return _Session(state=run.state, start=0, log=[])
  state, record = ckpt.restore(step, run.state)
  start = run.backend.step_of(state)
  call.say(f'resuming {call.workdir} from step {start}')
  return _Session(state=state, start=start, log=list(record['log']),
                  train_seconds=float(record['train_seconds']),
                  timed_steps=int(record['timed_steps']),
                  loader=record['loader'])


# -- training --------------------------------------------------------------------


class _TrainLog:
  """Train records waiting for the host: checked finite, then written.

  Metrics stay on the device until a flush (no host sync per step).
  """

  def __init__(self, call: resumption.RunCall, writer: writers.MetricWriter,
               ckpt: checkpoint_lib.Checkpointer, bar: progress_lib.Progress):
    self._call, self._writer, self._ckpt, self._bar = call, writer, ckpt, bar
    self._pending: list[tuple[int, dict[str, Any], dict[str, int]]] = []

  def add(self, step: int, metrics: dict[str, jax.Array],
          faults: dict[str, int]) -> None:
    self._pending.append((step, metrics, faults))

  def flush(self) -> None:
    """Writes the pending records; stops on a non-finite loss or gradient."""
    host = jax.device_get([(s, m) for s, m, _ in self._pending])
    faults = [f for _, _, f in self._pending]
    self._pending.clear()
    for (step, metrics), counts in zip(host, faults):
      if not metrics.pop('loss_is_finite'):
        self._writer.flush()
        raise NonFiniteLossError(non_finite_message(
            self._call, self._ckpt, step,
            f'the loss or a gradient became NaN/Inf at step {step} (loss '
            f'{float(metrics["loss"])})'))
      metrics.update({DATA_PREFIX + k: v for k, v in counts.items()})
      self._writer.write(step, 'train', metrics)
    self._writer.flush()
    if host:
      self._bar.update(host[-1][0], f'loss {float(host[-1][1]["loss"]):.4f}')


def non_finite_message(call: resumption.RunCall, ckpt: checkpoint_lib.Checkpointer,
                       step: int, what: str) -> str:
  """The one-line report of a NaN/Inf, naming what is kept and what to do."""
  kept = ckpt.latest_step()
  if kept is None:
    where = ('no checkpoint was written before it, so the same workdir '
             'accepts a new config')
    fix = '--config.optimizer.learning_rate'
  else:
    where = (f'the newest checkpoint, from step {kept} (before it), is kept '
             f'in {ckpt.directory}')
    fix = ('--config.optimizer.learning_rate (with --resume=fork to continue '
           f'from step {kept}, or --resume=restart)')
  return (f'[{call.algorithm}] {what}; training stopped and {where}. Lower '
          f'{fix}, set --config.optimizer.grad_clip_norm, or check the '
          'inputs.')


def _due(config: Any, step: int, end: int) -> tuple[bool, bool, bool]:
  """(log, eval, checkpoint) due after `step`."""
  evaluate_now = step % config.eval_every == 0 or step == config.num_train_steps
  save_now = step % config.checkpoint_every == 0 or step == end
  log_now = step % config.log_every == 0 or evaluate_now or save_now
  return log_now, evaluate_now, save_now


def _train(call: resumption.RunCall, run: Prepared, ckpt: checkpoint_lib.Checkpointer,
           writer: writers.MetricWriter, session: _Session) -> None:
  """The step loop, from `session.start` to `call.end`; updates `session`."""
  config = call.config
  bar = progress_lib.Progress(call.end, initial=session.start,
                              desc=call.algorithm, stream=call.out)
  log = _TrainLog(call, writer, ckpt, bar)
  clock = _Stopwatch()
  base = (session.train_seconds, session.timed_steps)
  with builders.build_loader(config, run.train_source, train=True,
                             start_step=session.start) as loader:
    if session.loader:
      loader.set_state(session.loader)
    for step in range(session.start + 1, call.end + 1):
      batch = run.backend.place({k: v for k, v in next(loader).items()
                                 if k in step_lib.TRAIN_KEYS})
      session.state, metrics = run.backend.train_step(session.state, batch)
      log.add(step, metrics, loader.stats.as_dict())
      if step == session.start + 1:
        # The first step compiles: the measured speed starts after it.
        jax.block_until_ready(session.state)
        clock.start()
      log_now, evaluate_now, save_now = _due(config, step, call.end)
      if log_now:
        log.flush()  # Never evaluate or save a state not checked finite.
      if evaluate_now or save_now:
        jax.block_until_ready(session.state)
        clock.stop()
        if evaluate_now:
          _evaluate(call, run, session.state, writer, bar, step)
        if save_now:
          session.train_seconds = base[0] + clock.seconds
          session.timed_steps = base[1] + step - session.start - 1
          session.loader = loader.get_state()
          _save(call, ckpt, writer, session, step)
        clock.start()
  bar.close()


def _evaluate(call: resumption.RunCall, run: Prepared, state: Any,
              writer: writers.MetricWriter, bar: progress_lib.Progress,
              step: int) -> None:
  """Evaluates on process 0 (every process joins the variables' fetch)."""
  variables = run.backend.variables(state)
  if not call.lead:
    return
  config = call.config
  with builders.build_loader(config, run.eval_source, train=False) as batches:
    result = evaluate(run.eval_step, variables, batches,
                      max_batches=config.max_eval_batches)
    faults = batches.stats.as_dict()
  writer.write(step, 'eval', {**result, **{DATA_PREFIX + k: v
                                           for k, v in faults.items()}})
  writer.flush()
  unscored = faults['unscored_examples']
  bar.write(f'[{call.algorithm}] step {step} eval: video accuracy '
            f'{100 * result["video_accuracy"]:.1f}%, frame accuracy '
            f'{100 * result["frame_accuracy"]:.1f}%, loss '
            f'{result["loss"]:.4f} ({result["num_videos"]} videos'
            + (f'; {unscored} unreadable, not scored' if unscored else '')
            + ')')


def _save(call: resumption.RunCall, ckpt: checkpoint_lib.Checkpointer,
          writer: writers.MetricWriter, session: _Session, step: int) -> None:
  """Checkpoint `step` with the log and counters; config.json first."""
  try:
    if call.lead:
      workdir_lib.write_json(call.workdir / CONFIG_FILE,
                             call.config.to_dict())
    ckpt.save(step, session.state, session.record(writer.records))
    writer.rewrite()
  except checkpoint_lib.NonFiniteStateError:
    raise NonFiniteLossError(non_finite_message(
        call, ckpt, step, f'the training state (weights or optimizer state) '
        f'became NaN/Inf by step {step} although the loss and gradients '
        'were finite; it was not saved')) from None
  except OSError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    # Orbax and TensorStore report a full disk in their own error types.
    full = os.strerror(errno.ENOSPC)
    if full in str(e):
      raise OSError(errno.ENOSPC, full, str(ckpt.directory)) from e
    raise


def _storage_error(call: resumption.RunCall,
                   ckpt: checkpoint_lib.Checkpointer,
                   error: OSError) -> StorageError:
  kept = ckpt.latest_step()
  where = (f'the last good checkpoint is step {kept} in {ckpt.directory}. '
           'Free space (or fix the folder) and re-run the same command to '
           'resume from it' if kept is not None else
           'no checkpoint was written yet. Free space (or fix the folder) '
           'and re-run the same command')
  return StorageError(
      f'[{call.algorithm}] a file operation of the run failed: '
      f'{workdir_lib.describe_os_error(error)}; {where}.')


# -- summary ---------------------------------------------------------------------


def _summarise(call: resumption.RunCall, run: Prepared, session: _Session,
               log: list[dict[str, Any]]) -> RunSummary:
  """The summary of the run as its newest checkpoint holds it."""
  config = call.config
  train = collections.deque((r for r in log if r['split'] == 'train'),
                            maxlen=config.log_every)
  def mean(key: str) -> float:
    values = [r[key] for r in train if r.get(key) is not None]
    return float(np.mean(values)) if values else math.nan
  def faults(record: dict[str, Any] | None) -> dict[str, int]:
    return {k[len(DATA_PREFIX):]: v for k, v in (record or {}).items()
            if k.startswith(DATA_PREFIX)}
  steps = run.backend.step_of(session.state)
  final = [r for r in log if r['split'] == 'eval'
           and r['step'] == config.num_train_steps == steps]
  final_eval = {k: v for k, v in final[-1].items()
                if k not in ('step', 'split') and not k.startswith(DATA_PREFIX)
                } if final else {}
  summary = RunSummary(
      algorithm=call.algorithm, workdir=str(call.workdir), steps=steps,
      train_loss=mean('loss'), train_accuracy=mean('video_accuracy'),
      eval=final_eval,
      steps_per_second=(session.timed_steps / session.train_seconds
                        if session.train_seconds > 0 else math.nan),
      train_seconds=session.train_seconds,
      num_params=state_lib.num_params(run.backend.variables(session.state)),
      num_classes=run.train_source.num_classes,
      data_faults={'train': faults(train[-1] if train else None),
                   'eval': faults(final[-1] if final else None)},
      ran=run.backend.describe())
  if call.lead:
    workdir_lib.write_json(call.workdir / SUMMARY_FILE,
                           dataclasses.asdict(summary))
  return summary
