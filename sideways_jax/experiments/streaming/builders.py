"""Config -> checked values and objects for the streaming runner.

The config layout is the one of `configs/cater_autoencoder.py`. This module
checks a config (`check_config`) and builds what the compiled functions
depend on: the stages, each row's algorithm and optimizer, the jitted
per-video functions. `runner` reads the amounts and the data of a run
(stream length, eval batches, logging) and `experiment` the sweep; no field
has a default in code.

A run trains one or more *rows*: the one-device algorithms of the table
(`sideways_jax.algorithms`): `config.algorithm`, or all of them with
`config.compare`. With `compare`, every approximate algorithm (Sideways)
is also run with one change at a time, as rows '<algorithm>_<change>':
each staleness correction of `config.staleness.compare` ('delay_lr',
'spike_compensation') and each entry of `config.option_rows` (row suffix
-> algorithm options, e.g. 'origin_target': target_alignment 'origin',
the loss against the frame the output came from: the objective of score
(b)). Algorithm names, options and their values are checked by the table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import optax

from sideways_jax import algorithms as algorithms_lib
from sideways_jax import chain as chain_lib
from sideways_jax import data
from sideways_jax import models
from sideways_jax import streaming
from sideways_jax.experiments import common
from sideways_jax.streaming import learner as learner_lib
from sideways_jax.streaming import metric
from sideways_jax.streaming import staleness
from sideways_jax.streaming import trace as trace_lib

OPTIMIZERS = ('adam', 'adamw', 'sgd')
# Staleness corrections of a Sideways row's optimizer
# (sideways_jax.streaming.staleness).
FIXES = ('delay_lr', 'spike_compensation')
# Config keys that set an algorithm option of every row whose algorithm
# takes it (the variants of `option_rows` override them).
_OPTION_KEYS = ('target_alignment',)


class Row(NamedTuple):
  """One trained row of the table."""
  name: str
  stream: streaming.Streamer  # its algorithm, options (as run), functions
  exact: bool                 # the algorithm computes BP's gradients
  fixes: frozenset[str]       # staleness corrections of its optimizer


def algorithms(config: Any) -> tuple[str, ...]:
  """The one-device algorithms the config trains, in table order."""
  return common.run_algorithms(config,
                               known=algorithms_lib.DEVICE_ALGORITHMS,
                               compared=algorithms_lib.DEVICE_ALGORITHMS)


def _options(config: Any, algorithm: str) -> dict[str, Any]:
  taken = algorithms_lib.get(algorithm).options
  return {k: config[k] for k in _OPTION_KEYS if k in taken}


def row_specs(config: Any) -> dict[str, Row]:
  """Every trained row by name: the algorithms, then their variants.

  Raises:
    ValueError: an algorithm option or value the table does not allow.
  """
  specs = {}

  def add(name, algorithm, options, fixes=frozenset()):
    specs[name] = Row(name=name, fixes=frozenset(fixes),
                      stream=streaming.streamer(algorithm, **options),
                      exact=algorithms_lib.get(algorithm).exact)

  for algorithm in algorithms(config):
    base = _options(config, algorithm)
    exact = algorithms_lib.get(algorithm).exact
    add(algorithm, algorithm, base,
        () if exact else {f for f in FIXES if config.staleness[f]})
    if not config.compare or exact:
      continue
    for fix in config.staleness.compare:
      add(f'{algorithm}_{fix}', algorithm, base, {fix})
    for suffix, options in config.option_rows.items():
      add(f'{algorithm}_{suffix}', algorithm, {**base, **dict(options)})
  return specs


def rows(config: Any) -> tuple[str, ...]:
  """The names of every trained row (see `row_specs`)."""
  return tuple(row_specs(config))


def video_batches_per_run(config: Any) -> int:
  """Training video batches: stream_frames / clip_length."""
  return config.stream_frames // config.data.clip_length


def check_config(config: Any) -> None:
  """Raises ConfigError for values that cannot work, before any compile."""
  if config.runner != 'streaming':
    raise common.ConfigError(
        f'runner={config.runner!r}: this runner takes configs with '
        "runner='streaming' (configs/*_autoencoder*.py)")
  _check_rows(config)
  _check_lengths(config)
  _check_optimizer(config)
  _check_diagnostic(config)
  _check_model(config)


def _check_rows(config: Any) -> None:
  for fix in config.staleness.compare:
    if fix not in FIXES:
      raise common.ConfigError(f'staleness.compare has {fix!r}: choose from '
                               f'{FIXES}')
  try:
    row_specs(config)
  except ValueError as e:
    raise common.ConfigError(str(e)) from None
  if config.model.num_stages < 2:
    raise common.ConfigError(
        f'model.num_stages={config.model.num_stages}: the comparison needs '
        'at least 2 stages (with 1, BP and Sideways coincide)')


def min_clip_length(config: Any) -> tuple[int, str]:
  """The shortest clip every trained algorithm needs, and which needs it."""
  num_stages = config.model.num_stages
  return max((algorithms_lib.get(a).min_clip_length(num_stages), a)
             for a in algorithms(config))


def _check_lengths(config: Any) -> None:
  clip_length = config.data.clip_length
  need, algorithm = min_clip_length(config)
  if clip_length < need:
    raise common.ConfigError(
        f'data.clip_length={clip_length} is too short: with '
        f'model.num_stages={config.model.num_stages} {algorithm!r} needs '
        f'videos of at least {need} frames for every stage to get a '
        f'gradient; set --config.data.clip_length to at least {need} (videos '
        'of 32+ frames are needed for a fair comparison, since the first D-1 '
        'steps of each video are not scored)')
  for key in ('batch_size', 'eval_batch_size', 'stream_frames'):
    if config[key] < 1:
      raise common.ConfigError(f'{key}={config[key]} must be >= 1')
  frames = config.stream_frames
  if frames % clip_length:
    lower = frames // clip_length * clip_length
    near = ' or '.join(str(n) for n in (lower, lower + clip_length) if n)
    raise common.ConfigError(
        f'stream_frames={frames} counts the training stream\'s frames, one '
        f'per computation step, so it must be a multiple of '
        f'data.clip_length={clip_length} (whole videos): use {near}')
  if config.max_eval_batches < 0:
    raise common.ConfigError(f'max_eval_batches={config.max_eval_batches} '
                             'must be >= 0 (0: the whole eval split)')


def _check_optimizer(config: Any) -> None:
  opt = config.optimizer
  if opt.name not in OPTIMIZERS:
    raise common.ConfigError(f'optimizer.name={opt.name!r}: choose one of '
                             f'{OPTIMIZERS}')
  specs = row_specs(config)
  fixes = set().union(*(r.fixes for r in specs.values()))
  if 'spike_compensation' in fixes and opt.name != 'adam':
    raise common.ConfigError(
        f'staleness spike_compensation is written for Adam; '
        f'optimizer.name={opt.name!r}: use adam or drop the fix')
  delay = config.staleness.delay_lr_settings
  if delay.power < 0 or delay.anneal_steps < 0:
    raise common.ConfigError(
        f'staleness.delay_lr_settings: power={delay.power} and '
        f'anneal_steps={delay.anneal_steps} must be >= 0')
  for name in specs:
    rate = opt.row_learning_rates.get(name)
    if rate is None or rate <= 0:
      raise common.ConfigError(
          f'optimizer.row_learning_rates.{name} must be set and > 0 (one rate '
          f'per trained row), got {rate}')


def _check_diagnostic(config: Any) -> None:
  diagnostic, clip_length = config.diagnostic, config.data.clip_length
  need, _ = min_clip_length(config)
  if diagnostic.streams < 0 or (
      diagnostic.streams and not need <= diagnostic.frames <= clip_length):
    raise common.ConfigError(
        f'diagnostic.streams={diagnostic.streams} must be >= 0 (0: off) and '
        f'diagnostic.frames={diagnostic.frames} in [{need}, {clip_length}]')
  if diagnostic.streams > config.eval_batch_size:
    raise common.ConfigError(
        f'diagnostic.streams={diagnostic.streams} must be <= '
        f'eval_batch_size={config.eval_batch_size} (one held-out batch)')


def _check_model(config: Any) -> None:
  """The model builds, and maps a frame to a frame of the same shape."""
  resolution = config.data.resolution
  frame = jax.ShapeDtypeStruct((1, resolution, resolution, 3), 'float32')
  try:
    stages = build_stages(config)
    variables = jax.eval_shape(
        lambda: chain_lib.init_chain(stages, jax.random.key(0), frame))
    output = chain_lib.output_shapes(stages, variables, frame)[-1]
  except ValueError as e:
    raise common.ConfigError(
        f'model.name={config.model.name!r} with data.resolution='
        f'{resolution}: {e}') from None
  if output.shape != frame.shape:
    raise common.ConfigError(
        f'model.name={config.model.name!r} maps frames {frame.shape[1:]} '
        f'to {output.shape[1:]}: an auto-encoder must give back the frame')


def build_stages(config: Any) -> tuple:
  """The model of `config.model` as a stage chain (the model table's)."""
  resolution = config.data.resolution
  kwargs = config.model.kwargs.to_dict()
  if 'channels' in kwargs:
    kwargs['channels'] = tuple(kwargs['channels'])
  return models.build_model(
      config.model.name, 'autoencoder', num_stages=config.model.num_stages,
      frame_shape=(resolution, resolution, 3), **kwargs)


def build_optimizer(config: Any, row: Row) -> learner_lib.Optimizers:
  """One row's optimizer: shared by the stages, or one per stage (fixes).

  The optimizer family is shared; the learning rate is per row, since BP
  (one update per 2D-1 steps, exact gradients) and Sideways (an update every
  step, delayed pseudo-gradients) need different ones. A stream has no end
  to decay towards, so the base rate is constant. Without a fix the
  optimizer is exactly the plain optax one.
  """
  opt = config.optimizer
  rate = opt.row_learning_rates[row.name]
  kwargs = opt.kwargs.to_dict()
  if not row.fixes:
    return getattr(optax, opt.name)(rate, **kwargs)
  per_stage = []
  settings = config.staleness.delay_lr_settings
  for delay in staleness.sideways_delays(config.model.num_stages):
    if 'spike_compensation' in row.fixes:
      stage_opt = staleness.spike_compensated_adam(rate, delay, **kwargs)
    else:
      stage_opt = getattr(optax, opt.name)(rate, **kwargs)
    if 'delay_lr' in row.fixes:
      stage_opt = optax.chain(stage_opt, staleness.scale_by_delay(
          delay, power=settings.power, anneal_steps=settings.anneal_steps))
    per_stage.append(stage_opt)
  return tuple(per_stage)


def build_optimizers(config: Any, specs: Mapping[str, Row]
                     ) -> dict[str, learner_lib.Optimizers]:
  """{row: optimizer} for the config's rows."""
  return {name: build_optimizer(config, r) for name, r in specs.items()}


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
  infer[row][schedule](variables, video uint8 [T,B,H,W,3]) -> trace; where
    two schedules of a row are the same (Sideways) the function is the same
    object, and rows of one algorithm share theirs.
  reconstruct(variables, video uint8 [T,B,H,W,3]) -> f32 [T, B]: error of
    the model's output for frame t against frame t itself (no lag).
  cosines[row](learner, video) -> (learner, f32 [T, D]) for approximate
    rows: `diagnostics.gradient_cosines`.
  Frames are scaled to [0, 1] inside (the scale the MSE is reported on).
  """
  train: dict[str, Callable[..., Any]]
  infer: dict[str, dict[str, Callable[..., Any]]]
  reconstruct: Callable[..., Any]
  cosines: dict[str, Callable[..., Any]]


def build_functions(stages: tuple, specs: Mapping[str, Row],
                    optimizers: Mapping[str, learner_lib.Optimizers]
                    ) -> StreamFunctions:
  """The jitted streaming functions of the rows (reads no config)."""

  def on_frames(fn, *args):
    """fn(*args, stages, state, frames in [0, 1]) on a uint8 video."""
    return jax.jit(lambda state, video: fn(
        stages, *args, state, data.normalize_video(video)))

  infer = {}  # One jitted function per distinct schedule function.
  for r in specs.values():
    for fn in r.stream.infer.values():
      if fn not in infer:
        infer[fn] = jax.jit(lambda variables, video, fn=fn: fn(
            stages, variables, data.normalize_video(video)))

  def reconstruct(variables, video):
    frames = data.normalize_video(video)  # [T, B, H, W, C]
    flat = frames.reshape(-1, *frames.shape[2:])  # Frames are independent.
    output, _ = chain_lib.apply_chain(stages, variables, flat)
    return metric.video_errors(output, flat).reshape(frames.shape[:2])

  return StreamFunctions(
      train={n: on_frames(r.stream.train, optimizers[n])
             for n, r in specs.items()},
      infer={n: {s: infer[fn] for s, fn in r.stream.infer.items()}
             for n, r in specs.items()},
      reconstruct=jax.jit(reconstruct),
      cosines={n: on_frames(r.stream.cosines, optimizers[n])
               for n, r in specs.items() if r.stream.cosines is not None})


def host_trace(trace: trace_lib.StreamTrace) -> trace_lib.StreamTrace:
  """A trace fetched to numpy (one sync per video, never per step)."""
  return jax.tree.map(jax.device_get, trace)
