"""Vectorised numpy drawing helpers shared by the synthetic video sets.

Everything works on float32 images in [0, 1] with pixel centres at
(i + 0.5, j + 0.5), x to the right and y downwards (screen coordinates), so
a positive angular velocity turns a shape clockwise on screen. Shapes are
signed distance functions (negative inside, in pixels) evaluated on the whole
pixel grid at once; `coverage` turns a distance into a one-pixel anti-aliased
edge, which keeps sub-pixel motion visible instead of snapping to the grid.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# Signature of a shape: (dx, dy, angle, size) -> signed distance, all
# broadcastable arrays in pixels; dx, dy are offsets from the shape centre.
ShapeFn = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]

_SPLITS = {'train': 0, 'test': 1}


def example_rng(seed: int, *keys: int) -> np.random.Generator:
  """A generator that depends only on (seed, *keys).

  SeedSequence hashes the whole entropy tuple, so streams for different keys
  (set, split, example index) are statistically independent, and example i
  never depends on how many examples were drawn before it.
  """
  if seed < 0:
    raise ValueError(f'seed must be non-negative, got {seed}')
  return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


def split_code(split: str) -> int:
  """Maps a split name to the integer mixed into the example seed."""
  if split not in _SPLITS:
    raise ValueError(f"split must be one of {sorted(_SPLITS)}, got {split!r}")
  return _SPLITS[split]


def check_index(index: int, length: int) -> int:
  """Validates an example index (no negative indexing: it hides bugs)."""
  index = int(index)
  if not 0 <= index < length:
    raise IndexError(f'index {index} out of range for {length} examples')
  return index


def check_positive(**values: int | float) -> None:
  """Raises ValueError naming the first argument that is not > 0."""
  for name, value in values.items():
    if not value > 0:
      raise ValueError(f'{name} must be positive, got {value}')


def pixel_grid(resolution: int) -> tuple[np.ndarray, np.ndarray]:
  """Pixel-centre coordinates shaped [H, 1] (y) and [1, W] (x)."""
  c = np.arange(resolution, dtype=np.float32) + 0.5
  return c[:, None], c[None, :]


def offsets(ys: np.ndarray, xs: np.ndarray, cx: np.ndarray,
            cy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Offsets of every pixel from centres of any leading shape: [..., H, W]."""
  cx = np.asarray(cx, np.float32)[..., None, None]
  cy = np.asarray(cy, np.float32)[..., None, None]
  return xs - cx, ys - cy


def bounding_box(x: np.ndarray, y: np.ndarray, reach: float,
                 resolution: int) -> tuple[slice, slice]:
  """Rows and columns that centres (x, y) plus `reach` pixels can touch.

  Drawing only there gives the same image (coverage is exactly 0 outside)
  at a fraction of the cost when objects are small.
  """
  reach = reach + 1.0  # Anti-aliased edges spill half a pixel.
  def span(v):
    lo = int(np.clip(np.floor(np.min(v) - reach), 0, resolution))
    hi = int(np.clip(np.ceil(np.max(v) + reach), 0, resolution))
    return slice(lo, max(lo, hi))
  return span(y), span(x)


def _rotate(dx, dy, angle):
  # Into the shape's own frame: rotate the offsets by -angle.
  c = np.cos(angle)[..., None, None].astype(np.float32)
  s = np.sin(angle)[..., None, None].astype(np.float32)
  return c * dx + s * dy, -s * dx + c * dy


def _size(size):
  return np.asarray(size, np.float32)[..., None, None]


def sdf_disk(dx, dy, angle, size):
  """Disk of radius `size` (angle ignored)."""
  del angle
  return np.sqrt(dx * dx + dy * dy) - _size(size)


def sdf_square(dx, dy, angle, size):
  """Square of half-side `size`, rotated by `angle`."""
  u, v = _rotate(dx, dy, np.asarray(angle, np.float32))
  return np.maximum(np.abs(u), np.abs(v)) - _size(size)


def sdf_triangle(dx, dy, angle, size):
  """Equilateral triangle of inradius 0.75*size, one vertex at `angle`.

  Enlarged against a square of the same `size` (area 2.9 vs 4 size^2, vertex
  reach 1.5 vs 1.41 size) so the two shapes look about equally big.
  """
  angle = np.asarray(angle, np.float32)
  inradius = 0.75 * _size(size)
  d = None
  for k in range(3):
    # Edge normals point away from the vertex directions.
    phi = angle + np.pi + 2.0 * np.pi * k / 3.0
    c = np.cos(phi)[..., None, None].astype(np.float32)
    s = np.sin(phi)[..., None, None].astype(np.float32)
    e = c * dx + s * dy - inradius
    d = e if d is None else np.maximum(d, e)
  return d


def sdf_cross(dx, dy, angle, size):
  """Plus sign of half-length `size` and half-width 0.35*size."""
  u, v = _rotate(dx, dy, np.asarray(angle, np.float32))
  r, w = _size(size), 0.35 * _size(size)
  au, av = np.abs(u), np.abs(v)
  return np.minimum(np.maximum(au - r, av - w), np.maximum(au - w, av - r))


SHAPES: dict[str, ShapeFn] = {
    'disk': sdf_disk,
    'square': sdf_square,
    'triangle': sdf_triangle,
    'cross': sdf_cross,
}


def coverage(distance: np.ndarray, softness: float = 1.0) -> np.ndarray:
  """Fraction of a pixel inside a shape, from its signed distance."""
  return np.clip(0.5 - distance / softness, 0.0, 1.0)


def hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
  """Vectorised HSV -> RGB; inputs in [0, 1], output [..., 3] float32."""
  h, s, v = (np.asarray(a, np.float32) for a in (h, s, v))
  k = (np.array([5.0, 3.0, 1.0], np.float32) + 6.0 * h[..., None]) % 6.0
  ramp = np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
  return v[..., None] - v[..., None] * s[..., None] * ramp


_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def luminance(rgb: np.ndarray) -> np.ndarray:
  """Rec. 601 luma of [..., 3] colours."""
  return np.asarray(rgb, np.float32) @ _LUMA


def lift_luminance(rgb: np.ndarray, minimum: float) -> np.ndarray:
  """Blends a colour towards white just enough to reach `minimum` luma."""
  rgb = np.asarray(rgb, np.float32)
  luma = luminance(rgb)[..., None]
  mix = np.clip((minimum - luma) / np.maximum(1.0 - luma, 1e-6), 0.0, 1.0)
  return rgb + mix * (1.0 - rgb)


def smooth_field(rng: np.random.Generator, resolution: int, cells: int,
                 channels: int) -> np.ndarray:
  """Low-frequency random field [H, W, C], unit-variance nodes, bilinear.

  The (cells+1)^2 grid nodes sit symmetrically over the image, so the field's
  distribution is mirror-symmetric (tests rely on that for appearance checks).
  """
  nodes = rng.standard_normal((cells + 1, cells + 1, channels),
                              dtype=np.float32)
  pos = (np.arange(resolution, dtype=np.float32) + 0.5) * cells / resolution
  lo = np.minimum(np.floor(pos).astype(np.int64), cells - 1)
  frac = pos - lo
  # Interpolation matrix [resolution, cells + 1]; same for rows and columns.
  m = np.zeros((resolution, cells + 1), np.float32)
  m[np.arange(resolution), lo] = 1.0 - frac
  m[np.arange(resolution), lo + 1] = frac
  return np.einsum('hi,ijc,wj->hwc', m, nodes, m, optimize=True)


def to_uint8(image: np.ndarray) -> np.ndarray:
  """[0, 1] floats -> rounded uint8."""
  return np.clip(image * 255.0 + 0.5, 0.0, 255.0).astype(np.uint8)


def clip_example(video: np.ndarray, label: int) -> dict[str, np.ndarray]:
  """The ClipSource example dict for a fully real (unpadded) video."""
  return {
      'video': video,
      'label': np.asarray(label, np.int32),
      'mask': np.ones(video.shape[0], bool),
  }


class RenderedSource:
  """What every synthetic set shares: its length and per-example generators.

  A subclass sets `_tag` (mixed into the seed so that no two sets share
  streams; `_stream_keys` may add more, e.g. the split), calls
  `_init_set` in its constructor and renders one example in
  `_example(index, gen)`, or, for a labelled set whose label is
  index % num_classes, one video in `_render(gen, label)`. Example `index`
  is a pure function of (seed, keys, index), so a set needs no storage and
  no file.
  """
  num_videos: int
  clip_length: int
  resolution: int
  seed: int
  num_classes: int
  _tag: int
  # Examples ignore the loader's generator: a cache may keep them.
  deterministic = True

  def _init_set(self, num_videos: int, clip_length: int, resolution: int,
                seed: int, **positive: int | float) -> None:
    """Checks and stores what every set has; `positive` must be > 0 too."""
    check_positive(num_videos=num_videos, clip_length=clip_length,
                   resolution=resolution, **positive)
    self.num_videos = int(num_videos)
    self.clip_length = int(clip_length)
    self.resolution = int(resolution)
    self.seed = int(seed)
    example_rng(self.seed)  # Validates the seed early.

  def __len__(self) -> int:
    return self.num_videos

  def _stream_keys(self) -> tuple[int, ...]:
    return (self._tag,)

  def get(self, index: int,
          rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
    """Example `index` in [0, len(self)): 'video' uint8 [K, H, W, 3], ...

    `rng` (the loader's per-example generator) is unused: synthetic sets
    have no augmentation; it is accepted for the ClipSource protocol.
    """
    del rng
    index = check_index(index, self.num_videos)
    return self._example(index, example_rng(self.seed, *self._stream_keys(),
                                            index))

  def _example(self, index: int,
               gen: np.random.Generator) -> dict[str, np.ndarray]:
    """Renders example `index` from its generator `gen`.

    By default: label index % num_classes (every prefix of the set is
    balanced) and the video `_render(gen, label)`.
    """
    label = index % self.num_classes
    return clip_example(self._render(gen, label), label)

  def _render(self, gen: np.random.Generator, label: int) -> np.ndarray:
    """One video uint8 [K, H, W, 3] of class `label` (labelled sets)."""
    raise NotImplementedError(f'{type(self).__name__} renders in _example')
