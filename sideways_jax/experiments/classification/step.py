"""What a classification step computes around the Trainer: loss, metrics, eval.

The update itself is `sideways_jax.Trainer`'s (see backend.py); this module
gives it the per-frame loss and turns its outputs into the logged metrics.

Batches are time-major (see `sideways_jax.data`): 'video' uint8
[K, B, H, W, 3], 'label' int32 [B], 'mask' bool [K, B] (real vs padded
frame) and, in evaluation, 'example_valid' bool [B] (real vs padded clip).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax

from sideways_jax import chain as chain_lib
from sideways_jax.data import normalize_video

Batch = Mapping[str, Any]
Metrics = dict[str, jax.Array]
TRAIN_KEYS = ('video', 'label', 'mask')
EVAL_KEYS = TRAIN_KEYS + ('example_valid',)


def frame_xent(logits: jax.Array, target: Mapping[str, jax.Array]) -> jax.Array:
  """Cross-entropy of one step: logits [B, C], target 'label' [B], 'weight' [B].

  Padded frames have weight 0; the mean is over the batch, so a step whose
  frames are all real gets the plain mean cross-entropy.
  """
  losses = optax.softmax_cross_entropy_with_integer_labels(
      logits, target['label'])
  return jnp.sum(losses * target['weight']) / logits.shape[0]


def video_predictions(logits: jax.Array, frame_valid: jax.Array) -> jax.Array:
  """Class of each clip from its averaged frame probabilities.

  Args:
    logits: [K, B, C] per-frame logits.
    frame_valid: bool [K, B], the frames that count.

  Returns:
    int32 [B]: argmax of the mean softmax over the valid frames.
  """
  weight = frame_valid.astype(jnp.float32)[..., None]
  summed = jnp.sum(jax.nn.softmax(logits) * weight, axis=0)
  return jnp.argmax(summed, axis=-1)


def _classification_counts(logits: jax.Array, labels: jax.Array,
                           frame_valid: jax.Array,
                           clip_valid: jax.Array) -> Metrics:
  """Correct/total counts of clips and frames (sums, so batches add up)."""
  frame_correct = (jnp.argmax(logits, -1) == labels[None]) & frame_valid
  video_correct = (video_predictions(logits, frame_valid) == labels) & (
      clip_valid)
  return {
      'correct_videos': jnp.sum(video_correct, dtype=jnp.int32),
      'num_videos': jnp.sum(clip_valid, dtype=jnp.int32),
      'correct_frames': jnp.sum(frame_correct, dtype=jnp.int32),
      'num_frames': jnp.sum(frame_valid, dtype=jnp.int32),
  }


def clip_and_targets(batch: Batch, *, input_mean: float, input_std: float
                     ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """The normalised clip [K, B, H, W, 3] and per-frame targets of a batch."""
  clip = normalize_video(batch['video'], mean=input_mean, std=input_std)
  labels = batch['label']
  targets = {
      'label': jnp.broadcast_to(labels, (clip.shape[0],) + labels.shape),
      'weight': batch['mask'].astype(jnp.float32),
  }
  return clip, targets


def train_metrics(outputs: Metrics, batch: Batch, *,
                  learning_rate: jax.Array) -> Metrics:
  """The logged metrics of one training step, from what the step returned.

  Args:
    outputs: 'loss', 'grad_norm', 'loss_is_finite', 'outputs' [K, B, C],
      'output_valid' bool [K] and 'output_frame' int32 [K] (as the engine's
      `GradResult.metrics` and `Trainer.step` give them).
    batch: the training batch ('label' [B], 'mask' [K, B]).
    learning_rate: the rate this step used.

  Returns:
    Device scalars 'loss', 'video_accuracy', 'frame_accuracy', 'grad_norm',
    'learning_rate', 'loss_is_finite'.
  """
  labels = batch['label']
  num_frames = batch['mask'].shape[0]
  # An output counts when the pipeline emitted a real one and the frame it
  # came from is real (Sideways' first D-1 outputs are warm-up).
  origin = jnp.clip(outputs['output_frame'], 0, num_frames - 1)
  frame_valid = outputs['output_valid'][:, None] & batch['mask'][origin]
  counts = _classification_counts(outputs['outputs'], labels, frame_valid,
                                  jnp.ones(labels.shape, bool))
  return {
      'loss': outputs['loss'],
      'video_accuracy': counts['correct_videos'] / counts['num_videos'],
      'frame_accuracy': counts['correct_frames'] / jnp.maximum(
          counts['num_frames'], 1),
      'grad_norm': outputs['grad_norm'],
      'learning_rate': learning_rate,
      'loss_is_finite': outputs['loss_is_finite'],
  }


def forward_frames(stages: chain_lib.Stages,
                   variables: chain_lib.ChainVariables,
                   clip: jax.Array) -> jax.Array:
  """Eval-mode outputs of every frame: clip [K, B, ...] -> [K, B, ...]."""
  return chain_lib.apply_clip(stages, variables, clip)


def make_eval_step(stages: chain_lib.Stages, *, input_mean: float,
                   input_std: float
                  ) -> Callable[[chain_lib.ChainVariables, Batch], Metrics]:
  """Eval-mode classification counts of one batch (sums over the batch).

  Evaluation is the same for both algorithms: they train the same
  frame-based model, and with fixed weights the Sideways pipeline computes
  exactly a plain forward pass per frame (only later), so every real frame
  of every real clip is classified and the video's class is the argmax of
  its averaged frame probabilities.

  Returns:
    A jitted `eval_step(variables, batch)` giving int32 'correct_videos',
    'num_videos', 'correct_frames', 'num_frames' and f32 'loss_sum' (the
    summed cross-entropy of the counted frames).
  """

  def eval_step(variables: chain_lib.ChainVariables, batch: Batch
                ) -> Metrics:
    clip = normalize_video(batch['video'], mean=input_mean, std=input_std)
    logits = forward_frames(stages, variables, clip)
    clip_valid = batch['example_valid']
    frame_valid = batch['mask'] & clip_valid[None]
    counts = _classification_counts(logits, batch['label'], frame_valid,
                                     clip_valid)
    losses = optax.softmax_cross_entropy_with_integer_labels(
        logits, jnp.broadcast_to(batch['label'], frame_valid.shape))
    counts['loss_sum'] = jnp.sum(jnp.where(frame_valid, losses, 0.0))
    return counts

  return jax.jit(eval_step)
