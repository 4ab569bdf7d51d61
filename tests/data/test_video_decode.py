"""OpenCV decoding of fixture videos: frame identity, early stop, bad files."""

import sys

import numpy as np
import pytest

from sideways_jax.data.source import VideoReadError
from sideways_jax.data.video import VideoFile
from sideways_jax.data.video import read_video_frames
from sideways_jax.data.video import require_cv2


def test_reads_exactly_the_requested_frames(tmp_path, fx):
  path = fx.write_video(tmp_path / 'v.avi', 25)
  with VideoFile(path) as video:
    assert video.num_frames() == 25
    frames = video.read([1, 4, 7, 24])
  assert frames.shape == (4, fx.HEIGHT, fx.WIDTH, 3)
  np.testing.assert_array_equal(fx.frame_ids(frames), [1, 4, 7, 24])


@pytest.mark.parametrize('indices', [[5, 6, 9], [12, 29], [0, 20]])
def test_seeking_gives_the_frames_of_sequential_reading(tmp_path, fx,
                                                        indices):
  path = fx.write_video(tmp_path / 'v.avi', 30)
  with VideoFile(path, seek_min_frames=1) as video:
    seeking = video.read(indices)
  with VideoFile(path, seek_min_frames=10**6) as video:
    sequential = video.read(indices)
  np.testing.assert_array_equal(seeking, sequential)
  np.testing.assert_array_equal(fx.frame_ids(seeking), indices)


def test_seek_past_the_end_returns_nothing_readable(tmp_path, fx):
  path = fx.write_video(tmp_path / 'v.avi', 10)
  with VideoFile(path, seek_min_frames=1) as video:
    with pytest.raises(VideoReadError):
      video.read([40, 41])


def test_repeated_reads_go_forward_and_back(tmp_path, fx):
  path = fx.write_video(tmp_path / 'v.avi', 30)
  with VideoFile(path, seek_min_frames=8) as video:
    assert video.num_frames() == 30
    np.testing.assert_array_equal(fx.frame_ids(video.read([2, 3])), [2, 3])
    np.testing.assert_array_equal(fx.frame_ids(video.read([4, 25])), [4, 25])
    np.testing.assert_array_equal(fx.frame_ids(video.read([1])), [1])


def test_read_stops_at_the_end_of_the_stream(tmp_path, fx):
  path = fx.write_video(tmp_path / 'v.avi', 10)
  with VideoFile(path) as video:
    frames = video.read([8, 9, 10, 30])
  np.testing.assert_array_equal(fx.frame_ids(frames), [8, 9])


def test_read_video_frames_returns_all_frames_rgb(tmp_path, fx):
  path = fx.write_video(tmp_path / 'v.avi', 6)
  frames = read_video_frames(path)
  np.testing.assert_array_equal(fx.frame_ids(frames), np.arange(6))


def test_indices_must_increase(tmp_path, fx):
  path = fx.write_video(tmp_path / 'v.avi', 6)
  with VideoFile(path) as video, pytest.raises(ValueError, match='increasing'):
    video.read([3, 2])


def test_corrupt_missing_and_truncated_files_raise_video_read_error(
    tmp_path, fx):
  bad = fx.write_corrupt(tmp_path / 'bad.avi')
  good = fx.write_video(tmp_path / 'good.avi', 20)
  truncated = tmp_path / 'truncated.avi'
  truncated.write_bytes(good.read_bytes()[:300])
  for path in (bad, tmp_path / 'missing.avi', truncated):
    with pytest.raises(VideoReadError) as info:
      with VideoFile(path) as video:
        video.read(range(video.num_frames()))
    assert str(path) in str(info.value)


def test_missing_opencv_says_how_to_install(monkeypatch):
  monkeypatch.setitem(sys.modules, 'cv2', None)  # import cv2 -> ImportError
  with pytest.raises(ImportError, match='opencv-python-headless'):
    require_cv2()
