"""Moving-shapes action set: classes defined by shape x motion pattern.

The default data of the main job, sized for a frame-based Simple-CNN. Each
clip shows one *actor* whose shape and motion define the class, plus 0-2
smaller distractors (disks and crosses with the actor's colour distribution,
drifting slowly) on a cluttered background with per-frame
pixel noise. Colours, sizes, positions, orientations, speeds and phases are
random per clip and independent of the class. Objects are always brighter
than the dim background (random hue, lifted luminance).

Classes (label = shape_index * 5 + motion_index):

  ====  ==================  ==============================================
  label name                motion of the actor
  ====  ==================  ==============================================
  0     square_right        translates to the right (+x), constant speed
  1     square_left         translates to the left (-x), constant speed
  2     square_bounce       oscillates up and down (sinusoid, 6-10 frames)
  3     square_spin_cw      spins clockwise on screen, slight drift
  4     square_spin_ccw     spins counter-clockwise on screen, slight drift
  5-9   triangle_*          the same five motions with an equilateral
                            triangle as the actor
  ====  ==================  ==============================================

What a single frame can and cannot tell. The shape is plain appearance.
The kind of motion (translate / bounce / spin) and its direction are visible
in one frame only through a faint motion trail (motion blur): every object
is also drawn at its positions over the previous three frames with fading
opacity, as in real footage. `right` and `left` (and `spin_cw` and
`spin_ccw`) are mirror images of each other, trail included, with
mirror-symmetric nuisance distributions (and, trail aside, time reversals):
every mirror-invariant statistic of a frame (colours, sizes, positions, edge
energies) has the same distribution in both classes, while frame
differences separate them at once. Tests check both, and that the trail is
the only single-frame cue of direction. A frame-based CNN thus learns shape
first, the kind of motion next and direction last, from the trail; spin
direction is the hardest.

Translation speed is given per frame (3-5% of the frame) and capped so that
the path fits in the frame; for long clips the actor therefore moves more
slowly, which makes its trail shorter and the task harder.
"""

from __future__ import annotations

import numpy as np

from sideways_jax.data.synthetic import _render

_TAG = 2  # Mixed into the seed so no two synthetic sets share streams.

SHAPES = ('square', 'triangle')
MOTIONS = ('right', 'left', 'bounce', 'spin_cw', 'spin_ccw')
CLASS_NAMES = tuple(f'{s}_{m}' for s in SHAPES for m in MOTIONS)
DISTRACTOR_SHAPES = ('disk', 'cross')

# Motion trail: ghosts every half frame over the previous three frames,
# fading linearly with age (the body itself is the last offset, 0).
_GHOST_OFFSETS = np.arange(6, -1, -1).astype(np.float32) * 0.5
_GHOST_WEIGHTS = np.arange(1, 7).astype(np.float32) / 6.0

# Nuisance ranges, as fractions of the resolution unless stated.
_SIZE = (0.12, 0.17)          # half-size of the actor
_DISTRACTOR_SIZE = (0.06, 0.10)
_REACH = 1.5                  # farthest point of a shape, in half-sizes
_SPEED = (0.03, 0.05)         # translation speed per frame
_DRIFT = 0.008                # max drift speed per frame (distractors, spin)
_SPIN = (0.15, 0.30)          # angular speed, radians per frame
_BOUNCE_AMPLITUDE = (0.10, 0.15)
_BOUNCE_PERIOD = (6.0, 10.0)  # frames


class MovingShapes(_render.RenderedSource):
  """Shape x motion action clips (a ClipSource); see the module docstring.

  Example `index` is a deterministic function of (seed, split, index); the
  'train' and 'test' splits draw from independent random streams. Labels
  cycle through the classes (label = index % num_classes), so every prefix
  of the set is balanced.
  """
  _tag = _TAG

  def _stream_keys(self) -> tuple[int, ...]:
    return (_TAG, self._split_code)  # Splits differ by stream, not seed.

  class_names: tuple[str, ...] = CLASS_NAMES
  num_classes: int = len(CLASS_NAMES)

  def __init__(self, num_videos: int, clip_length: int, resolution: int,
               seed: int, split: str, *, max_distractors: int = 2,
               trail: float = 0.5, noise: float = 0.03,
               clutter: float = 0.08):
    """Builds the set description; nothing is rendered until `get`.

    Args:
      num_videos: number of examples.
      clip_length: frames per clip (K).
      resolution: height and width in pixels.
      seed: non-negative seed; with `split` it fixes every example.
      split: 'train' or 'test'.
      max_distractors: each clip has uniformly 0..max_distractors distractors.
      trail: opacity of the newest motion-trail ghost (0 disables trails).
      noise: std of per-frame pixel noise, in [0, 1] intensity units.
      clutter: std of the static low-frequency background texture.
    """
    self._init_set(num_videos, clip_length, resolution, seed)
    if max_distractors < 0 or not 0.0 <= trail <= 1.0 or noise < 0 \
        or clutter < 0:
      raise ValueError('need max_distractors >= 0, 0 <= trail <= 1, '
                       'noise >= 0 and clutter >= 0')
    self.split = split
    self._split_code = _render.split_code(split)
    self.max_distractors = int(max_distractors)
    self.trail = float(trail)
    self.noise = float(noise)
    self.clutter = float(clutter)

  def _render(self, gen: np.random.Generator, label: int) -> np.ndarray:
    k, r = self.clip_length, self.resolution
    shape, motion = divmod(label, len(MOTIONS))
    # Time of every ghost and of the body (last column), centred on the clip
    # so that opposite motions cover the same positions: [K, G+1].
    times = (np.arange(k, dtype=np.float32)[:, None] - _GHOST_OFFSETS
             - 0.5 * (k - 1))

    frames = np.empty((k, r, r, 3), np.float32)
    frames[:] = self._background(gen)
    objects = [self._actor(gen, SHAPES[shape], MOTIONS[motion], times)]
    for _ in range(gen.integers(self.max_distractors + 1)):
      name = DISTRACTOR_SHAPES[gen.integers(len(DISTRACTOR_SHAPES))]
      objects.append(self._drifter(gen, name, times))
    weights = np.append(self.trail * _GHOST_WEIGHTS, 1.0)[:, None, None]
    ys, xs = _render.pixel_grid(r)
    for i in gen.permutation(len(objects)):
      name, colour, size, x, y, angle = objects[i]
      rows, cols = _render.bounding_box(x, y, _REACH * size, r)
      dx, dy = _render.offsets(ys[rows], xs[:, cols], x, y)
      cover = _render.coverage(_render.SHAPES[name](dx, dy, angle, size))
      # Ghosts and body share one colour, so blending them one over another
      # equals a single blend with the combined opacity 1 - prod(1 - a_g).
      alpha = 1.0 - np.prod(1.0 - weights * cover, axis=1)
      patch = frames[:, rows, cols]
      patch += alpha[..., None] * (colour - patch)
    frames += self.noise * gen.standard_normal(frames.shape, dtype=np.float32)
    return _render.to_uint8(frames)

  def _background(self, gen: np.random.Generator) -> np.ndarray:
    base = _render.hsv_to_rgb(gen.uniform(), gen.uniform(0.0, 0.5),
                              gen.uniform(0.1, 0.3))
    field = _render.smooth_field(gen, self.resolution, 3, 3)
    texture = gen.standard_normal((self.resolution, self.resolution, 3),
                                  dtype=np.float32)
    return base + self.clutter * field + 0.3 * self.clutter * texture

  def _appearance(self, gen: np.random.Generator,
                  sizes: tuple[float, float]):
    colour = _render.hsv_to_rgb(gen.uniform(), gen.uniform(0.5, 1.0),
                                gen.uniform(0.7, 1.0))
    # Objects are lit and brighter than the dim background (luminance <=
    # ~0.35): a consistent contrast polarity, as in most real footage, which
    # a small CNN needs far fewer steps to exploit than a random one.
    colour = _render.lift_luminance(colour, gen.uniform(0.5, 0.8))
    size = gen.uniform(*sizes) * self.resolution
    angle = gen.uniform(0.0, 2.0 * np.pi)
    return colour, size, angle

  def _centre(self, gen: np.random.Generator, reach: float, extent_x: float,
              extent_y: float) -> tuple[float, float]:
    # Uniform on an interval symmetric about the middle of the frame, so the
    # position distribution is mirror-symmetric.
    out = []
    for extent in (extent_x, extent_y):
      lo, hi = reach + extent, self.resolution - reach - extent
      out.append(gen.uniform(lo, hi) if lo < hi else 0.5 * self.resolution)
    return out[0], out[1]

  def _drift(self, gen: np.random.Generator) -> tuple[float, float]:
    speed = gen.uniform(0.0, _DRIFT) * self.resolution
    direction = gen.uniform(0.0, 2.0 * np.pi)
    return speed * np.cos(direction), speed * np.sin(direction)

  def _drifter(self, gen: np.random.Generator, name: str, times: np.ndarray,
               sizes: tuple[float, float] = _DISTRACTOR_SIZE):
    colour, size, angle = self._appearance(gen, sizes)
    vx, vy = self._drift(gen)
    half = 0.5 * (self.clip_length - 1)
    cx, cy = self._centre(gen, _REACH * size, abs(vx) * half, abs(vy) * half)
    x, y = cx + vx * times, cy + vy * times
    return name, colour, size, x, y, np.full_like(times, angle)

  def _actor(self, gen: np.random.Generator, name: str, motion: str,
             times: np.ndarray):
    if motion in ('spin_cw', 'spin_ccw'):
      name, colour, size, x, y, angle = self._drifter(gen, name, times, _SIZE)
      omega = gen.uniform(*_SPIN) * (1.0 if motion == 'spin_cw' else -1.0)
      return name, colour, size, x, y, angle + omega * times
    colour, size, angle = self._appearance(gen, _SIZE)
    reach = _REACH * size
    half = 0.5 * (self.clip_length - 1)
    angles = np.full_like(times, angle)
    if motion in ('right', 'left'):
      room = max(self.resolution - 2.0 * reach - 2.0, 0.0)
      speed = min(gen.uniform(*_SPEED) * self.resolution,
                  room / max(2.0 * half, 1.0))
      cx, cy = self._centre(gen, reach, speed * half, 0.0)
      sign = 1.0 if motion == 'right' else -1.0
      return name, colour, size, cx + sign * speed * times, \
          np.full_like(times, cy), angles
    # 'bounce': vertical sinusoid with a slow horizontal drift.
    amplitude = gen.uniform(*_BOUNCE_AMPLITUDE) * self.resolution
    period = gen.uniform(*_BOUNCE_PERIOD)
    phase = gen.uniform(0.0, 2.0 * np.pi)
    vx, _ = self._drift(gen)
    cx, cy = self._centre(gen, reach, abs(vx) * half, amplitude)
    y = cy + amplitude * np.sin(2.0 * np.pi * times / period + phase)
    return name, colour, size, cx + vx * times, y, angles
