"""The streaming error on hand-made examples."""

import numpy as np
import pytest

from sideways_jax import streaming


def test_video_errors_by_hand():
  # Two videos of 2x1 pixels, 1 channel: errors (1 + 0)/2 and (0.25 + 1)/2.
  shown = np.array([[[[1.0]], [[0.0]]], [[[0.5]], [[1.0]]]], np.float32)
  frame = np.array([[[[0.0]], [[0.0]]], [[[0.0]], [[0.0]]]], np.float32)
  np.testing.assert_allclose(streaming.video_errors(shown, frame),
                             [0.5, 0.625])


def test_stream_mse_by_hand():
  """A 1-pixel stream, D = 2: BP-like held outputs vs the true frames."""
  frames = np.array([0.0, 0.1, 0.2, 0.3, 0.4])        # x^t, one video
  origin = np.array([-1, 0, 0, 2, 2])                 # frame shown at t
  shown = np.where(origin >= 0, frames[np.maximum(origin, 0)], 0.0)
  errors = ((shown - frames) ** 2)[:, None]           # [T, B=1]
  first = streaming.first_scored_step(2)
  assert first == 1
  # Scored steps 1..4: (0.1)^2, (0.2)^2, (0.1)^2, (0.2)^2 -> mean 0.025.
  mse = streaming.stream_mse(errors, origin >= 0, first_step=first)
  assert mse == pytest.approx(0.025)


def test_padding_videos_and_first_steps_are_not_scored():
  errors = np.array([[9.0, 9.0], [1.0, 9.0], [3.0, 9.0]])  # [T=3, B=2]
  emitted = np.array([False, True, True])
  total, count = streaming.scored_error_sum(
      errors, emitted, first_step=1, video_valid=np.array([True, False]))
  assert (total, count) == (4.0, 2)
  assert streaming.stream_mse(errors, emitted, first_step=1,
                              video_valid=[True, False]) == 2.0


def test_missing_output_at_a_scored_step_is_an_error():
  errors = np.zeros((4, 1))
  with pytest.raises(ValueError, match=r'no output at scored steps \[2\]'):
    streaming.stream_mse(errors, np.array([False, True, False, True]),
                         first_step=1)
  with pytest.raises(ValueError, match='too short'):
    streaming.stream_mse(errors, np.ones(4, bool), first_step=4)
  with pytest.raises(ValueError, match=r'\[T, B\]'):
    streaming.stream_mse(np.zeros(4), np.ones(4, bool), first_step=0)
  with pytest.raises(ValueError, match='no valid video'):
    streaming.stream_mse(errors, np.ones(4, bool), first_step=0,
                         video_valid=[False])
  with pytest.raises(ValueError, match='num_stages'):
    streaming.first_scored_step(0)


def _by_hand_stream():
  """A 1-pixel stream of 7 frames, D = 2 (latency 1), one video.

  BP-like inference: frames 0, 2, 4 taken, each shown one step later and
  held; the model adds 0.05 to every frame it reconstructs.
  """
  frames = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
  origin = np.array([-1, 0, 0, 2, 2, 4, 4])
  recon = frames + 0.05
  shown = np.where(origin >= 0, recon[np.maximum(origin, 0)], 0.0)
  errors = ((shown - frames) ** 2)[:, None]
  source_errors = np.where(origin >= 0, 0.05 ** 2, 0.0)[:, None]
  return errors, source_errors, origin


def test_both_scores_by_hand():
  errors, source_errors, origin = _by_hand_stream()
  emitted = origin >= 0
  # (a) steps 1..6 show 0.05, 0.25, 0.25, 0.45... away from frame t:
  # shown 0.05,0.05,0.25,0.25,0.45,0.45 vs 0.1..0.6 -> 0.05,0.15,0.05,0.15,
  # 0.05,0.15 -> mean of squares (3 * 0.0025 + 3 * 0.0225) / 6 = 0.0125.
  assert streaming.stream_mse(errors, emitted, first_step=1) == (
      pytest.approx(0.0125))
  # (b) frames 1..5 (latency 1, T = 7): frames 2 and 4 were processed
  # (error 0.05^2 each); frames 1, 3, 5 never were and are charged what was
  # shown at their step: 0.05^2, 0.05^2, 0.05^2 (the held output of frames
  # 0, 2, 4 against frames 1, 3, 5). Mean: 0.0025.
  assert streaming.frame_mse(source_errors, origin, emitted, errors,
                             latency=1) == pytest.approx(0.0025)


def test_latency_free_charge_by_hand():
  """D = 3 (latency 2), BP-like training timing: a frame every 5 steps.

  Frames 0 and 5 are taken; frame 0 shows at steps 2..6, frame 5 from 7.
  Skipped frames 2, 3, 4, 6 are charged (latency charged) the output shown
  at their step, frame 0's, or (latency-free) the reconstruction of the
  nearest earlier taken frame: frame 0's for 2..4, frame 5's for 6.
  """
  frames = np.arange(10) / 10.0
  recon = frames + 0.05  # The model's reconstruction of each frame.
  origin = np.array([-1, -1, 0, 0, 0, 0, 0, 5, 5, 5])
  taken = np.isin(np.arange(10), [0, 5])
  latest = np.maximum.accumulate(np.where(taken, np.arange(10), -1))
  shown = np.where(origin >= 0, recon[np.maximum(origin, 0)], 0.0)
  errors = ((shown - frames) ** 2)[:, None]
  source_errors = np.where(origin >= 0, 0.05 ** 2, 0.0)[:, None]
  latest_errors = ((recon[latest] - frames) ** 2)[:, None]
  emitted = origin >= 0
  # Scored frames 2..7: 5 is processed (0.05^2); 7 is skipped and shows
  # frame 5's output at its step under both charges (0.15^2).
  by_step = [(0.05 - 0.2) ** 2, (0.05 - 0.3) ** 2, (0.05 - 0.4) ** 2,
             0.05 ** 2, (0.05 - 0.6) ** 2, (0.55 - 0.7) ** 2]
  nearest = [(0.05 - 0.2) ** 2, (0.05 - 0.3) ** 2, (0.05 - 0.4) ** 2,
             0.05 ** 2, (0.55 - 0.6) ** 2, (0.55 - 0.7) ** 2]
  assert streaming.frame_mse(source_errors, origin, emitted, errors,
                             latency=2) == pytest.approx(np.mean(by_step))
  assert streaming.frame_mse(source_errors, origin, emitted, latest_errors,
                             latency=2) == pytest.approx(np.mean(nearest))
  with pytest.raises(ValueError, match=r'frames \[2, 3, 4, 6, 7\] were never'):
    streaming.frame_mse(source_errors, origin, emitted, None, latency=2)


def test_frame_score_uses_the_first_showing_and_skips_padding():
  # Sideways-like, latency 2, T = 6: frame s is shown at step s + 2 only.
  origin = np.array([-1, -1, 0, 1, 2, 3])
  source_errors = np.array([[0.0, 0.0], [0.0, 0.0], [0.1, 9.0], [0.2, 9.0],
                            [0.3, 9.0], [0.4, 9.0]])
  # Frames 2..3 are scored; their reconstructions appear at steps 4, 5.
  # Every scored frame was processed: nothing else is needed.
  total, count = streaming.frame_error_sum(
      source_errors, origin, origin >= 0, None, latency=2,
      video_valid=np.array([True, False]))
  assert (total, count) == (pytest.approx(0.7), 2)
  with pytest.raises(ValueError, match='too short'):
    streaming.frame_mse(source_errors[:3], origin[:3], origin[:3] >= 0, None,
                        latency=2)
