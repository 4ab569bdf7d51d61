"""Config -> objects for the streaming runner (the only module reading it).

The config layout is the one of `configs/synthetic_autoencoder.py`; every
field is read here or in `runner`/`experiment`, none has a default in code.

A run trains one or more *rows*: 'bp' and 'sideways' (`config.algorithm`,
or both with `config.compare`), and with `compare` also Sideways with each
option of `config.staleness.compare` switched on alone, as rows
'sideways_<fix>': the staleness corrections 'delay_lr' and
'spike_compensation', and 'origin_target' (the loss compares the top output
with the frame it came from instead of the frame arriving now: the
objective of score (b)).
"""

from __future__ import annotations

from collections.abc import Callable
import math
from typing import Any, NamedTuple

import jax
import optax

from sideways_jax import chain as chain_lib
from sideways_jax import data
from sideways_jax import models
from sideways_jax import sideways
from sideways_jax.experiments import common
from sideways_jax.models.simple_cnn import STRIDES
from sideways_jax.streaming import bp_stream
from sideways_jax.streaming import diagnostics
from sideways_jax.streaming import learner as learner_lib
from sideways_jax.streaming import metric
from sideways_jax.streaming import sideways_stream
from sideways_jax.streaming import staleness
from sideways_jax.streaming import trace as trace_lib

ALGORITHMS = ('bp', 'sideways')
MODELS = {'conv_autoencoder': models.conv_autoencoder}
OPTIMIZERS = ('adam', 'adamw', 'sgd')
# Options of Sideways: staleness corrections (sideways_jax.streaming.
# staleness) and the target of the top's loss.
FIXES = ('delay_lr', 'spike_compensation', 'origin_target')


def algorithms(config: Any) -> tuple[str, ...]:
  """The algorithms the config trains ('bp', 'sideways')."""
  return common.run_algorithms(config, known=ALGORITHMS, compared=ALGORITHMS)


def rows(config: Any) -> tuple[str, ...]:
  """Every trained row: the algorithms, then 'sideways_<fix>' rows."""
  names = algorithms(config)
  if config.compare and 'sideways' in names:
    names += tuple(f'sideways_{fix}' for fix in config.staleness.compare)
  return names


def row_algorithm(row: str) -> str:
  """'bp' or 'sideways': how the row streams (inference included)."""
  return row.split('_', 1)[0]


def row_fixes(config: Any, row: str) -> frozenset[str]:
  """The staleness corrections a row trains with."""
  if row == 'bp':
    return frozenset()
  if row == 'sideways':
    return frozenset(f for f in FIXES if f != 'origin_target'
                     and config.staleness[f])
  return frozenset({row.split('_', 1)[1]})


def row_alignment(config: Any, row: str) -> sideways.TargetAlignment:
  """The target of a Sideways row's loss ('current' or 'origin')."""
  if 'origin_target' in row_fixes(config, row):
    return 'origin'
  return config.target_alignment


def video_batches_per_run(config: Any) -> int:
  """Training video batches: num_train_steps / clip_length."""
  return config.num_train_steps // config.data.clip_length


def check_config(config: Any) -> None:
  """Raises ConfigError for values that cannot work, before any compile."""
  if config.runner != 'streaming':
    raise common.ConfigError(
        f'runner={config.runner!r}: this runner takes configs with '
        "runner='streaming' (configs/*_autoencoder*.py)")
  algorithms(config)
  try:
    sideways.check_target_alignment(config.target_alignment)
  except ValueError as e:
    raise common.ConfigError(str(e)) from None
  if config.model.name not in MODELS:
    raise common.ConfigError(f'model.name={config.model.name!r}: choose one '
                             f'of {tuple(MODELS)}')
  num_stages = config.model.num_stages
  if num_stages < 2:
    raise common.ConfigError(
        f'model.num_stages={num_stages}: the comparison needs at least 2 '
        'stages (with 1, BP and Sideways coincide)')
  clip_length = config.data.clip_length
  need = sideways.min_clip_length(num_stages)
  if clip_length < need:
    raise common.ConfigError(
        f'data.clip_length={clip_length} is too short: with '
        f'model.num_stages={num_stages} the bottom stage of Sideways gets its '
        f'first gradient at step 2D-1={need}; set --config.data.clip_length '
        f'to at least {need} (videos of 32+ frames are needed for a fair '
        'comparison, since the first D-1 steps of each video are not scored)')
  for key in ('batch_size', 'eval_batch_size', 'num_train_steps'):
    if config[key] < 1:
      raise common.ConfigError(f'{key}={config[key]} must be >= 1')
  steps = config.num_train_steps
  if steps % clip_length:
    lower = max(steps // clip_length, 1) * clip_length
    upper = (steps // clip_length + 1) * clip_length
    raise common.ConfigError(
        f'num_train_steps={steps} counts computation steps, one frame each, '
        f'so it must be a multiple of data.clip_length={clip_length} (whole '
        f'videos): use {lower} or {upper}')
  if config.max_eval_batches < 0:
    raise common.ConfigError(f'max_eval_batches={config.max_eval_batches} '
                             'must be >= 0 (0: the whole eval split)')
  _check_optimizer(config)
  diagnostic = config.diagnostic
  if diagnostic.streams < 0 or (
      diagnostic.streams and not need <= diagnostic.frames <= clip_length):
    raise common.ConfigError(
        f'diagnostic.streams={diagnostic.streams} must be >= 0 (0: off) and '
        f'diagnostic.frames={diagnostic.frames} in [{need}, {clip_length}]')
  if diagnostic.streams > config.eval_batch_size:
    raise common.ConfigError(
        f'diagnostic.streams={diagnostic.streams} must be <= '
        f'eval_batch_size={config.eval_batch_size} (one held-out batch)')
  resolution = config.data.resolution
  multiple = math.prod(STRIDES)
  if resolution % multiple:
    raise common.ConfigError(
        f'data.resolution={resolution} must be a multiple of {multiple} (the '
        'encoder strides) so the decoder gives back the frame size')


def _check_optimizer(config: Any) -> None:
  opt = config.optimizer
  if opt.name not in OPTIMIZERS:
    raise common.ConfigError(f'optimizer.name={opt.name!r}: choose one of '
                             f'{OPTIMIZERS}')
  for fix in config.staleness.compare:
    if fix not in FIXES:
      raise common.ConfigError(f'staleness.compare has {fix!r}: choose from '
                               f'{FIXES}')
  fixes = set().union(*(row_fixes(config, r) for r in rows(config)))
  if 'spike_compensation' in fixes and opt.name != 'adam':
    raise common.ConfigError(
        f'staleness spike_compensation is written for Adam; '
        f'optimizer.name={opt.name!r}: use adam or drop the fix')
  delay = config.staleness.delay_lr_settings
  if delay.power < 0 or delay.anneal_steps < 0:
    raise common.ConfigError(
        f'staleness.delay_lr_settings: power={delay.power} and '
        f'anneal_steps={delay.anneal_steps} must be >= 0')
  for name in rows(config):
    rate = opt.learning_rate.get(name)
    if rate is None or rate <= 0:
      raise common.ConfigError(
          f'optimizer.learning_rate.{name} must be set and > 0 (one rate per '
          f'trained row), got {rate}')


def build_stages(config: Any) -> tuple:
  """The model of `config.model` as a stage chain."""
  resolution = config.data.resolution
  kwargs = config.model.kwargs.to_dict()
  if 'channels' in kwargs:
    kwargs['channels'] = tuple(kwargs['channels'])
  return MODELS[config.model.name](
      num_stages=config.model.num_stages,
      frame_shape=(resolution, resolution, 3), **kwargs)


def build_optimizer(config: Any, row: str) -> learner_lib.Optimizers:
  """One row's optimizer: shared by the stages, or one per stage (fixes).

  The optimizer family is shared; the learning rate is per row, since BP
  (one update per 2D-1 steps, exact gradients) and Sideways (an update every
  step, delayed pseudo-gradients) need different ones. A stream has no end
  to decay towards, so the base rate is constant. Without a fix the
  optimizer is exactly the plain optax one.
  """
  opt = config.optimizer
  rate = opt.learning_rate[row]
  kwargs = opt.kwargs.to_dict()
  fixes = row_fixes(config, row) - {'origin_target'}
  if not fixes:
    return getattr(optax, opt.name)(rate, **kwargs)
  per_stage = []
  settings = config.staleness.delay_lr_settings
  for delay in staleness.sideways_delays(config.model.num_stages):
    if 'spike_compensation' in fixes:
      stage_opt = staleness.spike_compensated_adam(rate, delay, **kwargs)
    else:
      stage_opt = getattr(optax, opt.name)(rate, **kwargs)
    if 'delay_lr' in fixes:
      stage_opt = optax.chain(stage_opt, staleness.scale_by_delay(
          delay, power=settings.power, anneal_steps=settings.anneal_steps))
    per_stage.append(stage_opt)
  return tuple(per_stage)


def build_optimizers(config: Any) -> dict[str, learner_lib.Optimizers]:
  """{row: optimizer} for the config's rows."""
  return {r: build_optimizer(config, r) for r in rows(config)}


def build_source(config: Any, *, train: bool) -> data.ClipSource:
  """The training stream's or the held-out videos' source."""
  cfg = config.data
  kwargs = {**cfg.kwargs.to_dict(),
            **(cfg.train_kwargs if train else cfg.eval_kwargs).to_dict()}
  return data.make_source(
      cfg.name, split=cfg.train_split if train else cfg.eval_split,
      root=cfg.root, clip_length=cfg.clip_length, stride=cfg.stride,
      resolution=cfg.resolution, train=train, seed=config.seed, **kwargs)


def build_loader(config: Any, *, train: bool) -> data.ClipLoader:
  """Batches of B videos streamed side by side: 'video' uint8 [T,B,H,W,3]."""
  source = build_source(config, train=train)
  return data.make_loader(
      source, config.batch_size if train else config.eval_batch_size,
      seed=config.seed, train=train, num_threads=config.data.num_threads,
      prefetch=config.data.prefetch)


class StreamFunctions(NamedTuple):
  """Jitted per-video functions, built once and reused across a sweep.

  train[row](learner, video uint8 [T,B,H,W,3]) -> (learner, trace)
  infer[algorithm](variables, video uint8 [T,B,H,W,3]) -> trace
  reconstruct(variables, video uint8 [T,B,H,W,3]) -> f32 [T, B]: error of
    the model's output for frame t against frame t itself (no lag).
  cosines[row](learner, video) -> (learner, f32 [T, D]) for Sideways rows:
    `diagnostics.gradient_cosines`.
  Frames are scaled to [0, 1] inside (the scale the MSE is reported on).
  """
  train: dict[str, Callable[..., Any]]
  infer: dict[str, Callable[..., Any]]
  reconstruct: Callable[..., Any]
  cosines: dict[str, Callable[..., Any]]


def build_functions(config: Any, stages: tuple,
                    optimizers: dict[str, learner_lib.Optimizers]
                    ) -> StreamFunctions:
  """The jitted streaming functions of the config's rows."""

  def train_fn(row):
    opt = optimizers[row]
    alignment = row_alignment(config, row)
    if row_algorithm(row) == 'bp':
      return lambda learner, video: bp_stream.bp_train_video(
          stages, opt, learner, data.normalize_video(video))
    return lambda learner, video: sideways_stream.sideways_train_video(
        stages, opt, learner, data.normalize_video(video),
        target_alignment=alignment)

  def cosine_fn(row):
    return lambda learner, video: diagnostics.gradient_cosines(
        stages, optimizers[row], learner, data.normalize_video(video),
        target_alignment=row_alignment(config, row))

  infer = {
      'sideways': lambda variables, video: sideways_stream.
      sideways_infer_video(stages, variables, data.normalize_video(video)),
      'bp': lambda variables, video: bp_stream.bp_infer_video(
          stages, variables, data.normalize_video(video)),
  }

  def reconstruct(variables, video):
    frames = data.normalize_video(video)  # [T, B, H, W, C]
    flat = frames.reshape(-1, *frames.shape[2:])  # Frames are independent.
    output, _ = chain_lib.apply_chain(stages, variables, flat)
    return metric.video_errors(output, flat).reshape(frames.shape[:2])

  names = rows(config)
  return StreamFunctions(
      train={r: jax.jit(train_fn(r)) for r in names},
      infer={a: jax.jit(infer[a]) for a in algorithms(config)},
      reconstruct=jax.jit(reconstruct),
      cosines={r: jax.jit(cosine_fn(r)) for r in names
               if row_algorithm(r) == 'sideways'})


def host_trace(trace: trace_lib.StreamTrace) -> trace_lib.StreamTrace:
  """A trace fetched to numpy (one sync per video, never per step)."""
  return jax.tree.map(jax.device_get, trace)
