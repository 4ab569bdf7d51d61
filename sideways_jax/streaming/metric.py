"""The streaming error: what the system shows at step t against frame t.

At every computation step t a new frame x^t arrives and the system shows
its current output (the last one it produced; a blocked system holds it).
The error of step t is the mean squared error, over pixels and channels,
between that output and x^t itself, whatever frame the output was computed
from: lagging behind a moving scene costs error, as it would in a real-time
application.

Before its first output exists a system shows nothing. Both algorithms here
produce their first output at step D-1 (0-indexed: the first frame needs D
steps to climb D stages), so the steps scored are t >= D-1 for both, the
same steps for both; nothing is imputed for the first D-1 steps.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def video_errors(output: jax.Array, frame: jax.Array) -> jax.Array:
  """Squared error averaged over all but the batch axis: [B, ...] -> [B]."""
  diff = output.astype(jnp.float32) - frame.astype(jnp.float32)
  return jnp.mean(jnp.square(diff).reshape(diff.shape[0], -1), axis=1)


def first_scored_step(num_stages: int) -> int:
  """The first step at which both BP and Sideways show an output: D-1."""
  if num_stages < 1:
    raise ValueError(f'num_stages must be >= 1, got {num_stages}')
  return num_stages - 1


def scored_error_sum(errors: np.ndarray, emitted: np.ndarray, *,
                     first_step: int,
                     video_valid: np.ndarray | None = None
                     ) -> tuple[float, int]:
  """Sum and count of the per-step, per-video errors that are scored.

  Args:
    errors: [T, B] per-step, per-video MSE (see `video_errors`).
    emitted: bool [T]: whether the system showed an output at step t.
    first_step: steps before it are not scored (see the module docstring).
    video_valid: bool [B]: False for padding videos of an eval batch.

  Returns:
    (sum of the scored errors, number of scored (step, video) pairs).

  Raises:
    ValueError: on shape mismatches, or when a scored step has no output
      (the comparison would then not be over the same steps).
  """
  errors = np.asarray(errors, np.float64)
  emitted = np.asarray(emitted, bool)
  if errors.ndim != 2:
    raise ValueError(f'errors must be [T, B], got shape {errors.shape}')
  num_steps, batch = errors.shape
  if emitted.shape != (num_steps,):
    raise ValueError(f'emitted must be [T]={num_steps}, got {emitted.shape}')
  if not 0 <= first_step < num_steps:
    raise ValueError(f'first_step must be in [0, {num_steps}), got '
                     f'{first_step}: the videos are too short to score')
  if video_valid is None:
    video_valid = np.ones((batch,), bool)
  video_valid = np.asarray(video_valid, bool)
  if video_valid.shape != (batch,):
    raise ValueError(f'video_valid must be [B]={batch}, got '
                     f'{video_valid.shape}')
  missing = np.flatnonzero(~emitted[first_step:]) + first_step
  if missing.size:
    raise ValueError(f'no output at scored steps {missing.tolist()}: every '
                     f'step from {first_step} on must show an output')
  scored = errors[first_step:][:, video_valid]
  return float(scored.sum()), int(scored.size)


def stream_mse(errors: np.ndarray, emitted: np.ndarray, *, first_step: int,
               video_valid: np.ndarray | None = None) -> float:
  """Mean of the scored errors (see `scored_error_sum`)."""
  total, count = scored_error_sum(errors, emitted, first_step=first_step,
                                  video_valid=video_valid)
  if count == 0:
    raise ValueError('no valid video to score')
  return total / count
