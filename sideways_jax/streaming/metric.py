"""The streaming errors: latency charged, or throughput charged only.

At every computation step t a new frame x^t arrives and the system shows
its current output (the last one it produced; a blocked system holds it).
Errors are mean squared errors over pixels and channels, frames in [0, 1].

(a) 'shown' (latency and throughput charged): the error of step t is
    between the output shown at step t and x^t itself, whatever frame the
    output was computed from, so lagging behind a moving scene costs error,
    as it would in a real-time application. Scored steps: t >= D-1 for both
    algorithms (both show their first output at step D-1: the first frame
    needs D steps to climb D stages); nothing is imputed before.
(b) 'frame' (the likely reading of the paper's Table 3): each frame x^s is
    compared with the reconstruction the system produced from x^s, whenever
    it appeared. A frame the system never processed (BP is blocked) is
    charged the output the system showed at step s, which is several frames
    old: part of this charge is latency.
(b) 'frame_latency_free': the same, but a frame never processed is charged
    the reconstruction of the nearest earlier frame the system processed,
    as if it had been shown at once: throughput charged, latency not. For
    a system that processes every frame (Sideways) it equals 'frame'.
Both (b) scores use frames D-1 <= s <= T-D, the frames whose output can
appear within the video for a latency of D-1 steps and whose step shows
something, the same frames for both algorithms.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

if TYPE_CHECKING:  # trace imports this module.
  from sideways_jax.streaming.trace import StreamTrace

# Score name -> its label in tables and logs.
SCORES = {
    'shown': '(a) shown at t vs frame t',
    'frame': '(b) each frame vs its own reconstruction; skipped frames '
             'charged the output shown at their step',
    'frame_latency_free': "(b) latency-free: skipped frames charged the "
                          'nearest earlier processed frame\'s reconstruction',
}


def video_errors(output: jax.Array, frame: jax.Array) -> jax.Array:
  """Squared error averaged over all but the batch axis: [B, ...] -> [B]."""
  diff = output.astype(jnp.float32) - frame.astype(jnp.float32)
  return jnp.mean(jnp.square(diff).reshape(diff.shape[0], -1), axis=1)


def first_scored_step(num_stages: int) -> int:
  """The first step at which both BP and Sideways show an output: D-1."""
  if num_stages < 1:
    raise ValueError(f'num_stages must be >= 1, got {num_stages}')
  return num_stages - 1


def _valid_videos(errors: np.ndarray, emitted: np.ndarray, first_step: int,
                  video_valid: np.ndarray | None) -> np.ndarray:
  """Checks a [T, B] error array and its flags; returns bool [B]."""
  if errors.ndim != 2:
    raise ValueError(f'errors must be [T, B], got shape {errors.shape}')
  num_steps, batch = errors.shape
  if emitted.shape != (num_steps,):
    raise ValueError(f'emitted must be [T]={num_steps}, got {emitted.shape}')
  if not 0 <= first_step < num_steps:
    raise ValueError(f'first_step must be in [0, {num_steps}), got '
                     f'{first_step}: the videos are too short to score')
  video_valid = (np.ones((batch,), bool) if video_valid is None
                 else np.asarray(video_valid, bool))
  if video_valid.shape != (batch,):
    raise ValueError(f'video_valid must be [B]={batch}, got '
                     f'{video_valid.shape}')
  missing = np.flatnonzero(~emitted[first_step:]) + first_step
  if missing.size:
    raise ValueError(f'no output at scored steps {missing.tolist()}: every '
                     f'step from {first_step} on must show an output')
  return video_valid


def scored_error_sum(errors: np.ndarray, emitted: np.ndarray, *,
                     first_step: int,
                     video_valid: np.ndarray | None = None
                     ) -> tuple[float, int]:
  """Sum and count of the per-step, per-video errors of score (a).

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
  valid = _valid_videos(errors, np.asarray(emitted, bool), first_step,
                        video_valid)
  scored = errors[first_step:][:, valid]
  return float(scored.sum()), int(scored.size)


def stream_mse(errors: np.ndarray, emitted: np.ndarray, *, first_step: int,
               video_valid: np.ndarray | None = None) -> float:
  """Mean of the scored errors (see `scored_error_sum`)."""
  return _mean(scored_error_sum(errors, emitted, first_step=first_step,
                                video_valid=video_valid))


def frame_error_sum(source_errors: np.ndarray, origin: np.ndarray,
                    emitted: np.ndarray, skipped_errors: np.ndarray | None,
                    *, latency: int, video_valid: np.ndarray | None = None
                    ) -> tuple[float, int]:
  """Sum and count of a score (b): each frame against its reconstruction.

  Args:
    source_errors: [T, B] error of the output shown at step t against the
      frame it came from, x^{origin[t]}.
    origin: int [T]: the frame the output shown at step t came from (-1:
      nothing shown).
    emitted: bool [T]: an output is shown at step t.
    skipped_errors: [T, B], the charge of frame s if the system never
      processed it, at index s: `StreamTrace.errors` (the output shown at
      step s: score 'frame') or `StreamTrace.latest_errors` (the nearest
      earlier processed frame's reconstruction: 'frame_latency_free'). None
      when every scored frame must have been processed.
    latency: steps from taking a frame to showing its output (D-1 for both
      algorithms); frames latency..T-1-latency are scored.
    video_valid: bool [B]: False for padding videos of an eval batch.

  Returns:
    (sum of the scored errors, number of scored (frame, video) pairs).

  Raises:
    ValueError: on shape mismatches, videos too short, a scored step
      without output, or a scored frame never processed while
      `skipped_errors` is None.
  """
  source_errors = np.asarray(source_errors, np.float64)
  origin = np.asarray(origin)
  valid = _valid_videos(source_errors, np.asarray(emitted, bool), latency,
                        video_valid)
  num_steps = source_errors.shape[0]
  if origin.shape != (num_steps,) or (
      skipped_errors is not None
      and np.shape(skipped_errors) != source_errors.shape):
    raise ValueError(f'source_errors {source_errors.shape} and '
                     f'skipped_errors {np.shape(skipped_errors)} must be '
                     f'[T, B], origin {origin.shape} [T]')
  last = num_steps - 1 - latency
  if last < latency:
    raise ValueError(f'videos of {num_steps} frames are too short to score '
                     f'frames {latency}..{last}')
  first_shown = np.full((num_steps,), -1)
  for t in range(num_steps - 1, -1, -1):  # The earliest step wins.
    if origin[t] >= 0:
      first_shown[origin[t]] = t
  frames = np.arange(latency, last + 1)
  shown = first_shown[frames]
  if skipped_errors is None and (shown < 0).any():
    raise ValueError(f'frames {frames[shown < 0].tolist()} were never '
                     'processed: pass skipped_errors to charge them')
  skipped = (np.zeros_like(source_errors) if skipped_errors is None
             else np.asarray(skipped_errors, np.float64))
  per_frame = np.where((shown >= 0)[:, None],
                       source_errors[np.maximum(shown, 0)], skipped[frames])
  per_frame = per_frame[:, valid]
  return float(per_frame.sum()), int(per_frame.size)


def frame_mse(source_errors: np.ndarray, origin: np.ndarray,
              emitted: np.ndarray, skipped_errors: np.ndarray | None, *,
              latency: int, video_valid: np.ndarray | None = None) -> float:
  """Mean of a score (b) (see `frame_error_sum`)."""
  return _mean(frame_error_sum(source_errors, origin, emitted,
                               skipped_errors, latency=latency,
                               video_valid=video_valid))


def _mean(total_count: tuple[float, int]) -> float:
  total, count = total_count
  if count == 0:
    raise ValueError('no valid video to score')
  return total / count


def score_sums(trace: StreamTrace, *, num_stages: int,
               video_valid: np.ndarray | None = None
               ) -> dict[str, tuple[float, int]]:
  """Every score of SCORES on one trace: name -> (sum, count).

  Args:
    trace: a (host) `StreamTrace` of one video batch.
    num_stages: D (scored steps and frames start at D-1).
    video_valid: bool [B]: False for padding videos of an eval batch.
  """
  latency = first_scored_step(num_stages)
  frame = functools.partial(frame_error_sum, trace.source_errors,
                            trace.origin, trace.emitted, latency=latency,
                            video_valid=video_valid)
  return {
      'shown': scored_error_sum(trace.errors, trace.emitted,
                                first_step=latency, video_valid=video_valid),
      'frame': frame(trace.errors),
      'frame_latency_free': frame(trace.latest_errors),
  }
