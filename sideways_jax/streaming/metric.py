"""The two streaming errors: latency charged, or throughput charged only.

At every computation step t a new frame x^t arrives and the system shows
its current output (the last one it produced; a blocked system holds it).
Errors are mean squared errors over pixels and channels, frames in [0, 1].

(a) 'shown' (latency and throughput charged): the error of step t is
    between the output shown at step t and x^t itself, whatever frame the
    output was computed from, so lagging behind a moving scene costs error,
    as it would in a real-time application. Scored steps: t >= D-1 for both
    algorithms (both show their first output at step D-1: the first frame
    needs D steps to climb D stages); nothing is imputed before.
(b) 'frame' (throughput charged, latency not; the likely reading of the
    paper's Table 3): each frame x^s is compared with the reconstruction
    the system produced from x^s, whenever it appeared; a frame the system
    never processed (BP is blocked) is charged the output the system showed
    at step s. Scored frames: D-1 <= s <= T-D, the frames whose output can
    appear within the video for a latency of D-1 steps and whose step shows
    something, the same frames for both algorithms.
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


def frame_error_sum(errors: np.ndarray, source_errors: np.ndarray,
                    origin: np.ndarray, emitted: np.ndarray, *,
                    latency: int, video_valid: np.ndarray | None = None
                    ) -> tuple[float, int]:
  """Sum and count of score (b): each frame against its own reconstruction.

  Args:
    errors: [T, B] error of the output shown at step t against x^t.
    source_errors: [T, B] error of the output shown at step t against the
      frame it came from, x^{origin[t]}.
    origin: int [T]: the frame the output shown at step t came from (-1:
      nothing shown).
    emitted: bool [T]: an output is shown at step t.
    latency: steps from taking a frame to showing its output (D-1 for both
      algorithms); frames latency..T-1-latency are scored.
    video_valid: bool [B]: False for padding videos of an eval batch.

  Returns:
    (sum of the scored errors, number of scored (frame, video) pairs).
  """
  errors = np.asarray(errors, np.float64)
  source_errors = np.asarray(source_errors, np.float64)
  origin = np.asarray(origin)
  num_steps = errors.shape[0] if errors.ndim == 2 else -1
  if errors.shape != source_errors.shape or origin.shape != (num_steps,):
    raise ValueError(f'errors {errors.shape} and source_errors '
                     f'{source_errors.shape} must be [T, B], origin '
                     f'{origin.shape} [T]')
  last = num_steps - 1 - latency
  # Checks the emitted steps and the valid videos as score (a) does.
  scored_error_sum(errors, emitted, first_step=latency,
                   video_valid=video_valid)
  if last < latency:
    raise ValueError(f'videos of {num_steps} frames are too short to score '
                     f'frames {latency}..{last}')
  first_shown = np.full((num_steps,), -1)
  for t in range(num_steps - 1, -1, -1):  # The earliest step wins.
    if origin[t] >= 0:
      first_shown[origin[t]] = t
  frames = np.arange(latency, last + 1)
  shown = first_shown[frames]
  per_frame = np.where((shown >= 0)[:, None],
                       source_errors[np.maximum(shown, 0)], errors[frames])
  if video_valid is not None:
    per_frame = per_frame[:, np.asarray(video_valid, bool)]
  return float(per_frame.sum()), int(per_frame.size)


def frame_mse(errors: np.ndarray, source_errors: np.ndarray,
              origin: np.ndarray, emitted: np.ndarray, *, latency: int,
              video_valid: np.ndarray | None = None) -> float:
  """Mean of score (b) (see `frame_error_sum`)."""
  total, count = frame_error_sum(errors, source_errors, origin, emitted,
                                 latency=latency, video_valid=video_valid)
  if count == 0:
    raise ValueError('no valid video to score')
  return total / count
