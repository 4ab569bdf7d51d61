"""Sideways gradients for a whole clip: a `lax.scan` of the pipeline step.

The schedule, its masks and valid counts, why clips need K >= 2D - 1 frames
and what target alignment means are written down in docs/algorithm.md.
"""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp
from jax import lax

from sideways_jax import chain as chain_lib
from sideways_jax import pipeline
from sideways_jax import result as result_lib
from sideways_jax import temporal

TargetAlignment = Literal['current', 'origin']
TARGET_ALIGNMENTS = ('current', 'origin')


def min_clip_length(num_stages: int) -> int:
  """Shortest clip in which every stage gets a valid step: 2D - 1."""
  return 2 * num_stages - 1


def valid_step_counts(num_frames: int, num_stages: int) -> list[int]:
  """n_i = K - 2D + i + 1 for 1-indexed stages i.

  Stage i's input is real from step i on; its cotangent left the top D - i
  steps earlier, and the top's input is real from step D on, so both are
  real from step 2D - i to step K (docs/algorithm.md).
  """
  return [num_frames - 2 * num_stages + i + 1
          for i in range(1, num_stages + 1)]


def check_clip_length(num_frames: int, num_stages: int) -> None:
  """Raises a ValueError when some stage would get no valid step."""
  if num_frames < min_clip_length(num_stages):
    counts = valid_step_counts(num_frames, num_stages)
    raise ValueError(
        f'Sideways with D={num_stages} stages needs clips of at least '
        f'2D-1={min_clip_length(num_stages)} frames, got K={num_frames}: '
        f'stage 1 would get {counts[0]} valid steps (it needs its input and '
        'the cotangent returned by the top to both come from this clip). Use '
        'longer clips or fewer stages.')


def check_target_alignment(alignment: str) -> None:
  """Raises a ValueError unless `alignment` is 'current' or 'origin'."""
  if alignment not in TARGET_ALIGNMENTS:
    raise ValueError(
        f"target_alignment must be 'current' or 'origin', got {alignment!r}")


def align_targets(targets: Any, num_stages: int,
                  alignment: TargetAlignment) -> Any:
  """Per-step targets for the top stage's loss.

  'current' (the paper's choice) pairs step t with y^t; 'origin' pairs it with
  y^{t-D+1}, the target of the frame the top output came from (warm-up steps,
  whose outputs are not real, repeat the first target).
  """
  check_target_alignment(alignment)
  if alignment == 'current':
    return targets
  def shift(y):
    index = jnp.maximum(jnp.arange(y.shape[0]) - (num_stages - 1), 0)
    return y[index]
  return jax.tree.map(shift, targets)


def sideways_grads(stages: chain_lib.Stages,
                   variables: chain_lib.ChainVariables,
                   clip: jax.Array,
                   targets: Any,
                   loss_fn: pipeline.LossFn,
                   *,
                   rng: jax.Array | None = None,
                   train: bool = True,
                   target_alignment: TargetAlignment = 'current',
                   window_cotangents: str = 'sum',
                   unroll: int | bool = 1) -> result_lib.GradResult:
  """Sideways gradients of one clip (one episode, pipeline reset at its start).

  Args:
    stages: D Flax modules, applied in order.
    variables: one variables dict per stage (see `init_chain`).
    clip: time-major frames [K, B, ...].
    targets: time-major per-frame targets [K, B, ...] (a pytree is allowed).
    loss_fn: `loss_fn(top_output [B, ...], target [B, ...]) -> scalar`.
    rng: dropout key (needed only when a stage uses dropout in training).
    train: training mode for batchnorm and dropout.
    target_alignment: 'current' or 'origin' (see `align_targets`).
    window_cotangents: 'sum' (the smooth-input approximation) or 'drop':
      whether a temporal window stage adds the cotangent of its earlier
      inputs to the current input's (docs/algorithm.md, "Temporal stages");
      frame stages and recurrent carries are not affected.
    unroll: passed to `lax.scan`.

  Returns:
    A GradResult; stage i's gradient is G_i / n_i, the sum of its masked
    per-step gradients over its n_i valid steps.
  """
  chain_lib.validate_chain(stages, variables)
  num_frames, _ = chain_lib.validate_clip(clip, targets)
  num_stages = len(stages)
  check_clip_length(num_frames, num_stages)
  step_targets = align_targets(targets, num_stages, target_alignment)
  temporal.check_window_cotangents(window_cotangents)

  def body(state, frame_and_target):
    frame, target = frame_and_target
    return pipeline.sideways_step(stages, variables, state, frame, target,
                                  loss_fn, train=train, rng=rng,
                                  window_cotangents=window_cotangents)

  state = pipeline.init_pipeline(stages, variables, clip[0])
  state, emitted = lax.scan(body, state, (clip, step_targets), unroll=unroll)
  episode, _ = pipeline.take_gradients(state, variables)
  metrics = {
      'valid_steps': episode.valid_steps,
      'outputs': emitted.output,
      'output_valid': emitted.output_valid,
      'output_frame': emitted.origin,
      'step_losses': emitted.loss,
      'loss_is_finite': result_lib.finite_metric(episode.loss, episode.grads),
  }
  return result_lib.GradResult(loss=episode.loss, grads=episode.grads,
                               state=episode.state, metrics=metrics)
