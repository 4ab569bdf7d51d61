"""Textured objects: an appearance-defined set that changes smoothly in time.

The main job's data. Like UCF101 or HMDB51, whose classes can largely be
told from one frame, a class here is what the main object *looks like*; and
like real footage, consecutive frames differ only a little (everything
moves along smooth paths, under a pixel per frame at the default speed).
That is the regime Sideways is designed for: a stage's input and the
cotangent it receives come from neighbouring frames, which look alike.

Classes (label = shape_index * 2 + pattern_index), 10 in all:

  =====  =====================  ========================================
  label  name                   main object
  =====  =====================  ========================================
  0, 1   disk_plain / _striped  a disk
  2, 3   square_*               a square
  4, 5   triangle_*             an equilateral triangle
  6, 7   cross_*                a plus sign
  8, 9   ring_*                 an annulus
  =====  =====================  ========================================

`plain` objects have one colour; `striped` ones alternate between that
colour and a darker shade in stripes fixed to the object (they turn with
it). Everything else is random per clip and independent of the class: the
hue and size of the object; its tilt (objects stand roughly upright, as
most filmed things do: under 0.6 rad, swaying slowly); its path (two
sinusoids per axis, clipped so it stays in the frame); 1-3 smaller soft
blobs of random colour drifting over or under it (clutter that can partly
occlude it); a coloured background of random low-frequency waves; a slow
camera drift that moves background, object and blobs together; and
per-frame pixel noise.

`speed` scales every motion (object, blobs, camera) in units of the frame
width per frame; it does not enter the seed, so the same index gives the
same scene at any speed, only traversed faster. A temporal stride s shows
every s-th frame of the same video, so motions look s times faster (what
the stride sweep varies); the set renders just the frames it shows, so a
stride costs nothing.
"""

from __future__ import annotations

import numpy as np

from sideways_jax.data.synthetic import _render

_TAG = 4  # Mixed into the seed so no two synthetic sets share streams.

SHAPES = ('disk', 'square', 'triangle', 'cross', 'ring')
PATTERNS = ('plain', 'striped')
CLASS_NAMES = tuple(f'{s}_{p}' for s in SHAPES for p in PATTERNS)

# Nuisance ranges, as fractions of the resolution unless stated.
_SIZE = (0.22, 0.28)          # half-size of the object
_REACH = 1.5                  # farthest point of a shape, in half-sizes
_PATH = (0.08, 0.20)          # amplitude of the object's path, per axis
_TILT = 0.3                   # max fixed tilt and max sway, radians
_SPIN = 0.05                  # max sway frequency, radians per frame
_BLOB_SIZE = (0.05, 0.09)     # std of a blob's Gaussian profile
_WAVES = 6                    # background wave components
_WAVELENGTH = (0.3, 1.2)      # of the background waves
_STRIPE_PERIOD = (0.10, 0.14)  # stripe period on the object
_RING_WIDTH = 0.35            # ring half-thickness, in half-sizes


def sdf_ring(dx, dy, angle, size):
  """Annulus of mid-radius 0.8*size and half-width 0.35*size."""
  del angle
  size = np.asarray(size, np.float32)[..., None, None]
  return np.abs(np.sqrt(dx * dx + dy * dy) - 0.8 * size) - _RING_WIDTH * size


_SDF = {**_render.SHAPES, 'ring': sdf_ring}


class TexturedObjects(_render.RenderedSource):
  """Shape x surface-pattern clips (a ClipSource); see the module docstring.

  Example `index` is a deterministic function of (seed, index): splits are
  told apart by their seed (see `registry.split_seed`). Labels cycle
  through the classes (label = index % num_classes), so every prefix of the
  set is balanced.
  """
  _tag = _TAG

  class_names: tuple[str, ...] = CLASS_NAMES
  num_classes: int = len(CLASS_NAMES)

  def __init__(self, num_videos: int, clip_length: int, resolution: int,
               seed: int, *, stride: int = 1, speed: float = 0.02,
               max_blobs: int = 3,
               noise: float = 0.04, clutter: float = 0.12):
    """Builds the set description; nothing is rendered until `get`.

    Args:
      num_videos: number of examples.
      clip_length: frames per clip (K).
      resolution: height and width in pixels.
      seed: non-negative seed; fixes every example.
      stride: show frames 0, s, 2s, ... of the video (pixel noise is drawn
        per shown frame).
      speed: typical motion per frame, as a fraction of the frame width.
      max_blobs: each clip has uniformly 1..max_blobs blobs (0: none).
      noise: std of per-frame pixel noise, in [0, 1] intensity units.
      clutter: amplitude of the background waves.
    """
    self._init_set(num_videos, clip_length, resolution, seed, stride=stride)
    if speed < 0 or max_blobs < 0 or noise < 0 or clutter < 0:
      raise ValueError('need speed, max_blobs, noise and clutter >= 0')
    self.stride = int(stride)
    self.speed = float(speed)
    self.max_blobs = int(max_blobs)
    self.noise = float(noise)
    self.clutter = float(clutter)

  def _render(self, gen: np.random.Generator, label: int) -> np.ndarray:
    k, r = self.clip_length, self.resolution
    shape, pattern = divmod(label, len(PATTERNS))
    # Motion is drawn per unit of time; `speed` only rescales the clock, so
    # it changes smoothness but never the scene.
    t = np.arange(k, dtype=np.float32) * (self.stride * self.speed / 0.02)
    ys, xs = _render.pixel_grid(r)
    cam = self._camera(gen, t)                       # [K, 2] in pixels
    frames = self._background(gen, t, cam, ys, xs)   # [K, H, W, 3]
    blobs = [self._blob(gen, t) for _ in range(
        gen.integers(1, self.max_blobs + 1) if self.max_blobs else 0)]
    over = gen.random(len(blobs)) < 0.5              # Blobs above the object.
    for blob, on_top in zip(blobs, over):
      if not on_top:
        self._draw_blob(frames, blob, cam, ys, xs)
    self._draw_object(frames, gen, SHAPES[shape], PATTERNS[pattern], t, cam,
                      ys, xs)
    for blob, on_top in zip(blobs, over):
      if on_top:
        self._draw_blob(frames, blob, cam, ys, xs)
    frames += self.noise * gen.standard_normal(frames.shape, dtype=np.float32)
    return _render.to_uint8(frames)

  def _camera(self, gen: np.random.Generator, t: np.ndarray) -> np.ndarray:
    # A slow pan that sways back and forth (up to 0.1 of the frame, periods
    # of 150-300 frames), so even long strided windows stay in the scene.
    r = self.resolution
    amp = gen.uniform(0.0, 0.1, size=2) * r
    period = gen.uniform(150.0, 300.0, size=2)
    phase = gen.uniform(0.0, 2.0 * np.pi, size=2)
    return (amp * np.sin(2 * np.pi * t[:, None] / period + phase)).astype(
        np.float32)

  def _background(self, gen, t, cam, ys, xs) -> np.ndarray:
    r = self.resolution
    base = _render.hsv_to_rgb(gen.uniform(), gen.uniform(0.0, 0.6),
                              gen.uniform(0.15, 0.35))
    frames = np.broadcast_to(base, (len(t), r, r, 3)).copy()
    for _ in range(_WAVES):
      # A plane wave fixed to the world: the camera shift moves its phase.
      a = gen.uniform(0.0, 2.0 * np.pi)
      freq = 2.0 * np.pi / (gen.uniform(*_WAVELENGTH) * r)
      kx, ky = freq * np.cos(a), freq * np.sin(a)
      phase = gen.uniform(0.0, 2.0 * np.pi)
      colour = gen.standard_normal(3).astype(np.float32)
      wave = np.sin(kx * (xs + cam[:, 0, None, None])
                    + ky * (ys + cam[:, 1, None, None]) + phase)
      frames += (self.clutter / np.sqrt(_WAVES)) * wave[..., None] * colour
    return frames

  def _path(self, gen, t, amplitude, centre_range):
    # Two incommensurate sinusoids per axis: a smooth closed-looking curve.
    r = self.resolution
    out = []
    for _ in range(2):
      c = gen.uniform(*centre_range) * r
      amp = gen.uniform(*amplitude) * r
      period = gen.uniform(60.0, 120.0)
      p = gen.uniform(0.0, 2.0 * np.pi, size=2)
      out.append(c + amp * (0.7 * np.sin(2 * np.pi * t / period + p[0])
                            + 0.3 * np.sin(4 * np.pi * t / period + p[1])))
    return np.stack(out, axis=-1).astype(np.float32)   # [K, 2]

  def _blob(self, gen, t):
    colour = _render.hsv_to_rgb(gen.uniform(), gen.uniform(0.3, 1.0),
                                gen.uniform(0.4, 1.0))
    sigma = gen.uniform(*_BLOB_SIZE) * self.resolution
    pos = self._path(gen, t, (0.1, 0.3), (0.2, 0.8))
    return colour, sigma, pos, gen.uniform(0.6, 0.9)

  def _draw_blob(self, frames, blob, cam, ys, xs) -> None:
    colour, sigma, pos, opacity = blob
    dx, dy = _render.offsets(ys, xs, pos[:, 0] - cam[:, 0],
                             pos[:, 1] - cam[:, 1])
    alpha = opacity * np.exp(-(dx * dx + dy * dy) / (2.0 * sigma * sigma))
    frames += alpha[..., None] * (colour - frames)

  def _draw_object(self, frames, gen, shape, pattern, t, cam, ys, xs) -> None:
    r = self.resolution
    colour = _render.hsv_to_rgb(gen.uniform(), gen.uniform(0.5, 1.0),
                                gen.uniform(0.7, 1.0))
    # Lit objects, brighter than the dim background (as in MovingShapes).
    colour = _render.lift_luminance(colour, gen.uniform(0.5, 0.8))
    dark = colour * gen.uniform(0.35, 0.55)
    size = gen.uniform(*_SIZE) * r
    reach = _REACH * size / r
    pos = self._path(gen, t, _PATH, (0.5 - 0.02, 0.5 + 0.02)) - cam
    # Keep the object (nearly) in the frame: it slides along the border.
    pos = np.clip(pos, 0.8 * reach * r, (1.0 - 0.8 * reach) * r)
    # Upright objects, like most things filmed: a small tilt that sways.
    angle = (gen.uniform(-_TILT, _TILT)
             + _TILT * np.sin(gen.uniform(-_SPIN, _SPIN) * t))
    x, y = pos[:, 0], pos[:, 1]
    dx, dy = _render.offsets(ys, xs, x, y)
    cover = _render.coverage(_SDF[shape](dx, dy, angle, size))
    fill = np.broadcast_to(colour, frames.shape)
    if pattern == 'striped':
      # Stripes across the object's own axis, anti-aliased like edges.
      period = gen.uniform(*_STRIPE_PERIOD) * r
      c = np.cos(angle)[:, None, None].astype(np.float32)
      s = np.sin(angle)[:, None, None].astype(np.float32)
      u = c * dx + s * dy
      wave = np.sin(2.0 * np.pi * u / period + gen.uniform(0.0, 2 * np.pi))
      light = np.clip(0.5 + wave * period / (2.0 * np.pi), 0.0, 1.0)
      fill = dark + light[..., None] * (colour - dark)
    frames += cover[..., None] * (fill - frames)
