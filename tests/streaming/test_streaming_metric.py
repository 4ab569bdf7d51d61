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
