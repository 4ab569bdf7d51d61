"""What a streaming run over one video records at every computation step."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from sideways_jax import chain as chain_lib
from sideways_jax.streaming import metric


class StreamTrace(NamedTuple):
  """Per-step record of one video (B streams in parallel), time-major.

  Attributes:
    errors: f32 [T, B]: MSE between the output shown at step t and the
      frame x^t that arrived at step t (0 where nothing is shown).
    source_errors: f32 [T, B]: MSE between the output shown at step t and
      the frame it was computed from, x^{origin[t]} (0 where nothing is
      shown): the reconstruction error without the lag.
    latest_errors: f32 [T, B]: MSE between the reconstruction of the latest
      frame taken at or before step t (whether shown yet or not) and x^t:
      the charge of a skipped frame without latency. Recorded by schedules
      that skip frames (blocked BP); None where every frame is taken.
    emitted: bool [T]: an output is shown at step t.
    origin: int32 [T]: index of the frame the shown output was computed
      from (-1: nothing shown yet).
    taken: bool [T]: frame t entered the model (BP skips frames while it
      is blocked; Sideways takes every frame).
    loss: f32 [T]: training loss computed at step t (0 where none).
    trained: bool [T]: an optimizer update happened at step t (for
      Sideways: the top stage's; lower stages join as the pipeline fills).
    outputs: [T, B, ...] the shown outputs, or None when not kept.
  """
  errors: jax.Array
  source_errors: jax.Array
  latest_errors: jax.Array | None
  emitted: jax.Array
  origin: jax.Array
  taken: jax.Array
  loss: jax.Array
  trained: jax.Array
  outputs: jax.Array | None


def record(shown: jax.Array, frame: jax.Array, source: jax.Array, *,
           emitted: jax.Array, origin: jax.Array, taken: jax.Array,
           loss: jax.Array, trained: jax.Array, keep_output: bool,
           latest: jax.Array | None = None) -> StreamTrace:
  """One step's record (no T axis); a `lax.scan` stacks them over steps.

  `shown` [B, ...] is what the system shows at this step, `frame` [B, ...]
  the frame that arrived, `source` [B, ...] the frame `shown` came from and
  `latest` [B, ...] the reconstruction of the latest frame taken so far
  (None for a schedule that takes every frame).
  """
  errors = jnp.where(emitted, metric.video_errors(shown, frame), 0.0)
  source_errors = jnp.where(emitted, metric.video_errors(shown, source), 0.0)
  return StreamTrace(
      errors=errors, source_errors=source_errors,
      latest_errors=None if latest is None else metric.video_errors(latest,
                                                                    frame),
      emitted=jnp.asarray(emitted, bool),
      origin=jnp.where(emitted, origin, -1).astype(jnp.int32),
      taken=jnp.asarray(taken, bool),
      loss=jnp.where(trained, loss, 0.0).astype(jnp.float32),
      trained=jnp.asarray(trained, bool),
      outputs=shown if keep_output else None)


def check_video(video: jax.Array) -> tuple[int, int]:
  """Checks a time-major float video [T, B, ...]; returns (T, B)."""
  shape = jnp.shape(video)
  if len(shape) < 3:
    raise ValueError(f'video must be time-major [T, B, ...] (e.g. '
                     f'[T, B, H, W, C]), got shape {shape}')
  if not jnp.issubdtype(jnp.result_type(video), jnp.floating):
    raise TypeError(f'video must be float (see normalize_video), got '
                    f'{jnp.result_type(video)}')
  return shape[0], shape[1]


def check_stream(stages: chain_lib.Stages,
                 variables: chain_lib.ChainVariables,
                 video: jax.Array) -> int:
  """Checks the chain and the video of a streaming run; returns D.

  Raises:
    ValueError: a temporal stage (streaming schedules carry no state across
      frames yet, so they would silently run it as a frame stage).
  """
  chain_lib.validate_chain(stages, variables)
  if chain_lib.is_temporal_chain(stages):
    raise ValueError('streaming runs frame stages only: this chain has '
                     'temporal stages (train them with sj.Trainer or '
                     'experiments/main.py)')
  check_video(video)
  return len(stages)


def frame_at(video: jax.Array, index: jax.Array) -> jax.Array:
  """Frame `index` of a time-major video (clamped to 0 for index < 0)."""
  return lax.dynamic_index_in_dim(video, jnp.maximum(index, 0), axis=0,
                                  keepdims=False)
