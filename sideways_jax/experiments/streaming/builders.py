"""Config -> objects for the streaming runner (the only module reading it).

The config layout is the one of `configs/synthetic_autoencoder.py`; every
field is read here or in `runner`/`experiment`, none has a default in code.
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
from sideways_jax import runners
from sideways_jax import sideways
from sideways_jax.models.simple_cnn import STRIDES
from sideways_jax.streaming import bp_stream
from sideways_jax.streaming import metric
from sideways_jax.streaming import sideways_stream
from sideways_jax.streaming import trace as trace_lib

OPTIMIZERS = ('adam', 'adamw', 'sgd')


ConfigError = runners.ConfigError


def check_config(config: Any) -> None:
  """Raises ConfigError for values that cannot work, before any compile."""
  if config.runner != 'streaming':
    raise ConfigError(f"runner={config.runner!r}: this runner takes configs "
                      "with runner='streaming' (configs/*_autoencoder.py)")
  algorithms = runners.run_algorithms(config)
  if config.target_alignment not in ('current', 'origin'):
    raise ConfigError(f'target_alignment={config.target_alignment!r}: '
                      "choose 'current' or 'origin'")
  num_stages = config.model.num_stages
  if num_stages < 2:
    raise ConfigError(f'model.num_stages={num_stages}: the comparison needs '
                      'at least 2 stages (with 1, BP and Sideways coincide)')
  need = sideways.min_clip_length(num_stages)
  if config.data.num_frames < need:
    raise ConfigError(
        f'data.num_frames={config.data.num_frames} is too short: with '
        f'model.num_stages={num_stages} the bottom stage of Sideways gets its '
        f'first gradient at step 2D-1={need}; set --config.data.num_frames '
        f'to at least {need} (videos of 32+ frames are needed for a fair '
        'comparison, since the first D-1 steps of each video are not scored)')
  for key in ('batch_size', 'eval_batch_size', 'train_batches'):
    if config[key] < 1:
      raise ConfigError(f'{key}={config[key]} must be >= 1')
  if config.eval_batches < 0:
    raise ConfigError(f'eval_batches={config.eval_batches} must be >= 0 '
                      '(0: the whole eval split)')
  if config.optimizer.name not in OPTIMIZERS:
    raise ConfigError(f'optimizer.name={config.optimizer.name!r}: choose '
                      f'one of {OPTIMIZERS}')
  rates = config.optimizer.learning_rate
  for name in algorithms:
    if name not in rates or rates[name] <= 0:
      raise ConfigError(
          f'optimizer.learning_rate.{name} must be set and > 0 (one rate per '
          f'algorithm), got {rates.get(name)}')
  resolution = config.data.resolution
  multiple = math.prod(STRIDES)
  if resolution % multiple:
    raise ConfigError(f'data.resolution={resolution} must be a multiple of '
                      f'{multiple} (the encoder strides) so the decoder '
                      'gives back the frame size')


def build_stages(config: Any) -> tuple:
  """The convolutional auto-encoder of `config.model` as a stage chain."""
  resolution = config.data.resolution
  return models.conv_autoencoder(
      num_stages=config.model.num_stages,
      frame_shape=(resolution, resolution, 3),
      channels=tuple(config.model.channels),
      output_activation=config.model.output_activation)


def build_optimizer(config: Any,
                    algorithm: str) -> optax.GradientTransformation:
  """One algorithm's optax optimizer (`config.optimizer`, constant rate).

  The optimizer family is shared; the learning rate is per algorithm, since
  BP (one update per 2D-1 steps, exact gradients) and Sideways (an update
  every step, delayed pseudo-gradients) need different ones. A stream has no
  end to decay towards, so the rate is constant.
  """
  opt = config.optimizer
  return getattr(optax, opt.name)(opt.learning_rate[algorithm],
                                  **opt.kwargs.to_dict())


def build_optimizers(config: Any) -> dict[str, optax.GradientTransformation]:
  """{algorithm: optimizer} for the config's algorithms."""
  return {a: build_optimizer(config, a)
          for a in runners.run_algorithms(config)}


def build_source(config: Any, *, train: bool) -> data.ClipSource:
  """The training stream's or the held-out videos' source."""
  cfg = config.data
  kwargs = {**cfg.kwargs.to_dict(),
            **(cfg.train_kwargs if train else cfg.eval_kwargs).to_dict()}
  return data.make_source(
      cfg.name, split=cfg.train_split if train else cfg.eval_split,
      root=cfg.root, clip_length=cfg.num_frames, stride=cfg.stride,
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

  train[algorithm](learner, video uint8 [T,B,H,W,3]) -> (learner, trace)
  infer[algorithm](variables, video uint8 [T,B,H,W,3]) -> trace
  reconstruct(variables, video uint8 [T,B,H,W,3]) -> f32 [T, B]: error of
    the model's output for frame t against frame t itself (no lag).
  Frames are scaled to [0, 1] inside (the scale the MSE is reported on).
  """
  train: dict[str, Callable[..., Any]]
  infer: dict[str, Callable[..., Any]]
  reconstruct: Callable[..., Any]


def build_functions(config: Any, stages: tuple,
                    optimizers: dict[str, optax.GradientTransformation]
                    ) -> StreamFunctions:
  """The jitted streaming functions of the config's algorithms."""
  alignment = config.target_alignment

  def sideways_train(learner, video):
    return sideways_stream.sideways_train_video(
        stages, optimizers['sideways'], learner, data.normalize_video(video),
        target_alignment=alignment)

  def bp_train(learner, video):
    return bp_stream.bp_train_video(stages, optimizers['bp'], learner,
                                    data.normalize_video(video))

  def sideways_infer(variables, video):
    return sideways_stream.sideways_infer_video(stages, variables,
                                                data.normalize_video(video))

  def bp_infer(variables, video):
    return bp_stream.bp_infer_video(stages, variables,
                                    data.normalize_video(video))

  def reconstruct(variables, video):
    frames = data.normalize_video(video)  # [T, B, H, W, C]
    flat = frames.reshape(-1, *frames.shape[2:])  # Frames are independent.
    output = flat
    for stage, stage_vars in zip(stages, variables):
      params, state = chain_lib.split_variables(stage_vars)
      output, _ = chain_lib.apply_stage(stage, params, state, output,
                                        train=False, rng=None)
    return metric.video_errors(output, flat).reshape(frames.shape[:2])

  names = runners.run_algorithms(config)
  train = {'sideways': sideways_train, 'bp': bp_train}
  infer = {'sideways': sideways_infer, 'bp': bp_infer}
  return StreamFunctions(train={a: jax.jit(train[a]) for a in names},
                         infer={a: jax.jit(infer[a]) for a in names},
                         reconstruct=jax.jit(reconstruct))


def host_trace(trace: trace_lib.StreamTrace) -> trace_lib.StreamTrace:
  """A trace fetched to numpy (one sync per video, never per step)."""
  return jax.tree.map(jax.device_get, trace)
