"""Clip sampling: which frames (temporal) and which pixels (spatial).

Temporal. A clip is K frames at stride s, read from a window of
W = (K-1)*s + 1 consecutive frames (the paper sweeps s = 2..6 at fixed K).
Training draws the window's start uniformly from [0, N-W]; evaluation centres
it at (N-W)//2.

Padding policy for videos shorter than the window (N < W): the window starts
at frame 0 and keeps its stride; positions that fall past the last frame
repeat the last real frame (edge padding) and get mask False. Edge padding
rather than zeros keeps a padded frame in the image statistics of the clip,
and the mask lets training and metrics ignore it.

Truncated videos (the header promises more frames than decode) are padded,
never skipped: when a clip's frames do not all decode, the video is read as
the N' frames that do decode from its start, and the clip is drawn again
from those N' frames with the same generator draws (padded as above when
N' < W). The example says so ('truncated': True), and the loader counts it.
The clip is then a function of the file and the generator only, whichever
process or thread reads it. A video of which no frame decodes is unreadable
(VideoReadError).

Spatial. A square of side crop_fraction * min(H, W) is cut (random position
and horizontal flip in training, centre and no flip in evaluation; the same
box and flip for every frame of a clip) and resized to resolution x
resolution. Cropping before resizing resizes only the pixels kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from sideways_jax.data.source import Example
from sideways_jax.data.source import TRUNCATED
from sideways_jax.data.source import VideoReadError


@dataclasses.dataclass(frozen=True)
class ClipSpec:
  """How clips are cut from videos.

  Attributes:
    clip_length: K, frames per clip.
    stride: s, temporal stride between the frames of a clip (>= 1).
    resolution: output frames are resolution x resolution.
    train: random window, crop and flip if True; centred and unflipped if not.
    crop_fraction: crop side / short side of the source frame. 0.875 gives
      the usual 112-from-128 crop.
  """
  clip_length: int
  stride: int
  resolution: int
  train: bool
  crop_fraction: float = 0.875

  def __post_init__(self):
    if self.clip_length < 1:
      raise ValueError(f'clip_length must be >= 1, got {self.clip_length}')
    if self.stride < 1:
      raise ValueError(f'stride must be >= 1, got {self.stride}')
    if self.resolution < 1:
      raise ValueError(f'resolution must be >= 1, got {self.resolution}')
    if not 0.0 < self.crop_fraction <= 1.0:
      raise ValueError(
          f'crop_fraction must be in (0, 1], got {self.crop_fraction}')

  @property
  def window(self) -> int:
    """Frames spanned by one clip: (K-1)*s + 1."""
    return (self.clip_length - 1) * self.stride + 1


def clip_frame_indices(num_frames: int, clip_length: int, stride: int, *,
                       train: bool, rng: np.random.Generator | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
  """Frame indices of one clip and which of them are real.

  Args:
    num_frames: N, frames in the video (>= 1).
    clip_length: K.
    stride: s.
    train: random window start if True (needs rng), centred if False.
    rng: source of the random start.

  Returns:
    (indices int64 [K], mask bool [K]); padded positions repeat the last real
    index and have mask False (see the module docstring).
  """
  if num_frames < 1:
    raise ValueError(f'num_frames must be >= 1, got {num_frames}')
  window = (clip_length - 1) * stride + 1
  slack = num_frames - window
  if slack <= 0:
    start = 0
  elif train:
    if rng is None:
      raise ValueError('train=True needs an rng for the window start')
    start = int(rng.integers(0, slack + 1))
  else:
    start = slack // 2
  positions = start + stride * np.arange(clip_length, dtype=np.int64)
  mask = positions < num_frames
  last_real = positions[mask][-1]
  return np.where(mask, positions, last_real), mask


def crop_box(height: int, width: int, crop_fraction: float, *, train: bool,
             rng: np.random.Generator | None = None) -> tuple[int, int, int]:
  """(top, left, side) of the square crop; random in train, centred in eval."""
  side = max(1, int(round(min(height, width) * crop_fraction)))
  if train:
    if rng is None:
      raise ValueError('train=True needs an rng for the crop position')
    top = int(rng.integers(0, height - side + 1))
    left = int(rng.integers(0, width - side + 1))
  else:
    top, left = (height - side) // 2, (width - side) // 2
  return top, left, side


def crop_resize(frames: np.ndarray, box: tuple[int, int, int],
                resolution: int) -> np.ndarray:
  """Crops `box` from uint8 [n, H, W, C] frames and resizes to resolution^2."""
  from sideways_jax.data.video import require_cv2  # pylint: disable=g-import-not-at-top
  cv2 = require_cv2()
  top, left, side = box
  # Shrinking by k >= 2 first averages k x k blocks (anti-aliasing; OpenCV's
  # area resize is ~10x faster at an exact integer factor, so the crop is
  # trimmed by < k pixels to a multiple of k), then bilinear covers the
  # remaining factor < 2. Bilinear alone below 2x and when enlarging.
  factor = side // resolution
  if factor >= 2:
    side = side // factor * factor
  out = np.empty((frames.shape[0], resolution, resolution, frames.shape[3]),
                 np.uint8)
  for i, frame in enumerate(frames):
    patch = frame[top:top + side, left:left + side]
    if factor >= 2:
      patch = cv2.resize(patch, (side // factor, side // factor),
                         interpolation=cv2.INTER_AREA)
    if patch.shape[0] != resolution:
      patch = cv2.resize(patch, (resolution, resolution),
                         interpolation=cv2.INTER_LINEAR)
    out[i] = patch.reshape(out[i].shape)
  return out


def sample_clip(num_frames: int, read: Callable[[Sequence[int]], np.ndarray],
                spec: ClipSpec, rng: np.random.Generator, *,
                bgr: bool) -> Example:
  """Cuts one clip from a video given its length and a frame reader.

  Args:
    num_frames: N as the container reports it.
    read: maps increasing frame indices to uint8 [n, H, W, 3] frames; at the
      first frame that does not decode it stops, returning the frames of
      the first n indices, or raises VideoReadError if n would be 0.
    spec: the clip specification.
    rng: the only source of randomness (window start, crop, flip; drawn in
      this order).
    bgr: whether `read` returns BGR (OpenCV) rather than RGB frames.

  Returns:
    {'video': uint8 [K, R, R, 3] RGB, 'mask': bool [K], 'truncated': bool []}
    (truncated: see the module docstring).

  Raises:
    VideoReadError: no frame of the video decodes.
  """
  start = rng.bit_generator.state
  indices, mask = clip_frame_indices(num_frames, spec.clip_length,
                                     spec.stride, train=spec.train, rng=rng)
  real = indices[mask]  # strictly increasing: stride >= 1
  try:
    frames = read(real)
  except VideoReadError:
    frames = None  # The window lies past the frames that decode.
  truncated = frames is None or frames.shape[0] < real.shape[0]
  if truncated:
    decodable = read(np.arange(num_frames))  # Raises if none decodes.
    rng.bit_generator.state = start  # Same draws, as if N' were the length.
    indices, mask = clip_frame_indices(decodable.shape[0], spec.clip_length,
                                       spec.stride, train=spec.train, rng=rng)
    frames = decodable[indices[mask]]
  box = crop_box(frames.shape[1], frames.shape[2], spec.crop_fraction,
                 train=spec.train, rng=rng)
  flip = spec.train and bool(rng.integers(0, 2))
  small = crop_resize(frames, box, spec.resolution)
  # Clip position k shows the rank-th real frame; padding shows the last one.
  # The mask is a prefix of Trues (positions increase), so this rank is the
  # last real frame's for every padded position.
  rank = np.cumsum(mask) - 1
  video = small[rank]
  if bgr:
    video = video[..., ::-1]
  if flip:
    video = video[:, :, ::-1]
  return {'video': np.ascontiguousarray(video), 'mask': mask,
          TRUNCATED: np.asarray(truncated)}
