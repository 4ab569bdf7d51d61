"""Decoding frames of a video file with OpenCV, reading only what a clip needs.

OpenCV (`opencv-python-headless`, the package's optional extra `video`) is
imported lazily so that the synthetic sets and the engine work without it.

Inter-coded video cannot be decoded from an arbitrary frame, so a clip is
read as follows: when it starts SEEK_MIN_FRAMES or more frames ahead,
OpenCV seeks to it (FFmpeg decodes forward from the preceding keyframe;
measured exact and 2-3x cheaper than decoding from frame 0 at 70-140
frames, dearer below ~30); the position is checked after the seek and, if it
is not the one asked for, the file is reopened and read from the start.
Then `grab()` decodes frames without converting them, `retrieve()` converts
only the frames the clip uses, and reading stops after the last one needed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from sideways_jax.data.source import VideoReadError

SEEK_MIN_FRAMES = 32
_CV2_HINT = ('reading video files needs OpenCV: pip install '
             '"opencv-python-headless>=4.8" (or the extra: pip install '
             '"sideways-jax[video]")')


def require_cv2() -> Any:
  """Imports cv2, or raises ImportError saying how to install it."""
  try:
    import cv2  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(_CV2_HINT) from e
  return cv2


class VideoFile:
  """One open video file; use as a context manager.

  Raises VideoReadError (never a cv2 error) when the file is missing, cannot
  be opened, or yields no frame.
  """

  def __init__(self, path: str | os.PathLike[str], *,
               seek_min_frames: int = SEEK_MIN_FRAMES):
    self.path = os.fspath(path)
    self.seek_min_frames = seek_min_frames
    self._cv2 = require_cv2()
    if not os.path.isfile(self.path):
      raise VideoReadError(self.path, 'no such file')
    self._position = 0  # index of the frame the next grab() returns
    try:
      self._cap = self._cv2.VideoCapture(self.path)
      opened = self._cap.isOpened()
    except self._cv2.error as e:
      raise VideoReadError(self.path, f'OpenCV error: {e}') from e
    if not opened:
      raise VideoReadError(self.path, 'OpenCV cannot open it (corrupt file '
                           'or unsupported codec)')

  def __enter__(self) -> VideoFile:
    return self

  def __exit__(self, *exc: object) -> None:
    self.close()

  def close(self) -> None:
    self._cap.release()

  def num_frames(self) -> int:
    """Number of frames: from the container header, counted if absent.

    The header count can exceed what decodes (truncated files); `read`
    then returns fewer frames and the clip is padded, see
    sampling.sample_clip.
    """
    n = int(self._cap.get(self._cv2.CAP_PROP_FRAME_COUNT))
    if n > 0:
      return n
    # No usable header count: count by demuxing once, then start again.
    count = 0
    while self._cap.grab():
      count += 1
    self._reopen()
    if count == 0:
      raise VideoReadError(self.path, 'no decodable frame')
    return count

  def read(self, indices: Sequence[int]) -> np.ndarray:
    """Decodes frames at increasing `indices`; returns uint8 BGR [n, H, W, 3].

    Stops early at the end of the stream, at the first undecodable frame
    or at the first frame whose size differs from the first one's, so n may
    be smaller than len(indices) (then the frames returned are those of the
    first n indices). n == 0 raises VideoReadError. Calls may repeat; going
    back in the video reopens it.
    """
    wanted = [int(i) for i in indices]
    if any(b <= a for a, b in zip(wanted, wanted[1:])) or (
        wanted and wanted[0] < 0):
      raise ValueError(f'indices must be increasing and >= 0, got {wanted}')
    frames = []
    try:
      if wanted and wanted[0] < self._position:
        self._reopen()
      if wanted and wanted[0] - self._position >= self.seek_min_frames:
        self._seek(wanted[0])
      for target in wanted:
        ok = True
        while self._position <= target:
          ok = self._cap.grab()
          if not ok:
            break
          self._position += 1
        if not ok:
          break
        ok, frame = self._cap.retrieve()
        if not ok or frame is None:
          break
        frame = _as_bgr(frame)
        if frames and frame.shape != frames[0].shape:
          break  # A size change ends the readable part, like a bad frame.
        frames.append(frame)
    except self._cv2.error as e:
      if not frames:
        raise VideoReadError(self.path, f'OpenCV error: {e}') from e
    if not frames:
      raise VideoReadError(self.path, 'no decodable frame at the requested '
                           f'indices {wanted[:4]}...')
    return np.stack(frames)

  def _seek(self, target: int) -> None:
    """Makes the next grab() return frame `target`, or reopens at frame 0."""
    pos = self._cv2.CAP_PROP_POS_FRAMES
    if self._cap.set(pos, target) and int(round(self._cap.get(pos))) == target:
      self._position = target
    else:
      self._reopen()

  def _reopen(self) -> None:
    self._cap.release()
    self._cap = self._cv2.VideoCapture(self.path)
    self._position = 0


def _as_bgr(frame: np.ndarray) -> np.ndarray:
  """Grey or BGRA frames (rare, but some AVIs have them) as 3-channel BGR."""
  if frame.ndim == 2:
    return np.repeat(frame[:, :, None], 3, axis=2)
  if frame.shape[2] == 4:
    return frame[:, :, :3]
  return frame


def read_video_frames(path: str | os.PathLike[str],
                      indices: Sequence[int] | None = None) -> np.ndarray:
  """Convenience: uint8 RGB [n, H, W, 3] for `indices` (default: all frames)."""
  with VideoFile(path) as video:
    if indices is None:
      indices = range(video.num_frames())
    return video.read(indices)[..., ::-1].copy()
