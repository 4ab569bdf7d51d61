"""CATER-like stream: moving shaded objects for auto-encoding.

A stand-in for CATER (Girdhar & Ramanan, 2020) in the paper's streaming
auto-encoding experiment (§4.4), where what matters is how much frame t and
frame t+k differ. Each video shows `num_objects` objects (shaded spheres,
cubes and cones in the CATER palette, with soft shadows) on a plain lit
floor. Every object glides at constant speed along its own smooth closed
curve (a random two-harmonic Lissajous figure, re-parametrised by arc
length), cubes turn as they slide, and nearer objects (lower in the frame)
look larger and occlude farther ones.

`speed` is the mean distance an object travels per frame as a fraction of
the frame width (each object gets 0.6-1.4x of it). It does not enter the
seed: the same seed and index give the same scene and paths at any speed,
only traversed faster or slower, so speed alone sets the frame-to-frame
smoothness. At the default (0.02) consecutive frames differ by under a
pixel of motion while frames 10 apart are displaced by about one object
diameter.

`motion='intermittent'` moves the objects as CATER's videos do: each one
rests, then slides for a while, then rests again (rests of 16-80 frames,
moves of 8-24, a random phase per object), so most of the scene is still
and about one object in four moves at a time. A move eases in and out and
covers, on average per moving frame, the same `speed`; the scene and the
paths are the ones of `motion='continuous'` (same seed, same index).
"""

from __future__ import annotations

import numpy as np

from sideways_jax.data.synthetic import _render

_TAG = 3  # Mixed into the seed so no two synthetic sets share streams.

OBJECT_TYPES = ('sphere', 'cube', 'cone')
# CATER's eight colours: gray, red, blue, green, brown, purple, cyan, yellow.
PALETTE = np.array(
    [[0.50, 0.50, 0.50], [0.68, 0.14, 0.14], [0.16, 0.29, 0.84],
     [0.11, 0.56, 0.20], [0.51, 0.29, 0.10], [0.51, 0.15, 0.75],
     [0.16, 0.82, 0.82], [1.00, 0.93, 0.20]], np.float32)
_SIZES = (0.07, 0.09, 0.11)   # small/medium/large half-size, x resolution
_PERSPECTIVE = (0.75, 1.25)   # size scale at the top and bottom of the frame
_LIGHT = np.array([-0.45, -0.65, 0.62], np.float32)  # from upper left, front
_HALF = (_LIGHT + np.array([0.0, 0.0, 1.0], np.float32))
_HALF /= np.linalg.norm(_HALF)
_DENSE = 512                   # samples per closed path before re-param.
MOTIONS = ('continuous', 'intermittent')
_REST = (16, 80)               # intermittent: frames an object rests
_MOVE = (8, 24)                # ... and frames it then moves


class CaterLikeStream(_render.RenderedSource):
  """Unlabelled videos of moving objects (a ClipSource).

  `get` returns the whole video (num_frames frames), label 0, mask all True.
  Example `index` is a deterministic function of (seed, index) only.
  """
  _tag = _TAG

  num_classes: int = 0

  def __init__(self, num_videos: int, num_frames: int, resolution: int,
               seed: int, speed: float = 0.02, num_objects: int = 5, *,
               motion: str = 'continuous', chunk: int = 32):
    """Builds the set description; nothing is rendered until `get`.

    Args:
      num_videos: number of videos.
      num_frames: frames per video.
      resolution: height and width in pixels.
      seed: non-negative seed; fixes every scene and path.
      speed: mean travel per frame, as a fraction of the frame width.
      num_objects: objects per video.
      motion: 'continuous' (every object always glides) or 'intermittent'
        (objects rest and move in turns, see the module docstring).
      chunk: frames rendered at once (bounds memory for long videos).
    """
    self._init_set(num_videos, num_frames, resolution, seed,
                   num_objects=num_objects, chunk=chunk)
    if speed < 0:
      raise ValueError(f'speed must be >= 0, got {speed}')
    if motion not in MOTIONS:
      raise ValueError(f'motion must be one of {MOTIONS}, got {motion!r}')
    self.motion = motion
    self.speed = float(speed)
    self.num_objects = int(num_objects)
    self.chunk = int(chunk)

  def _example(self, index: int,
               gen: np.random.Generator) -> dict[str, np.ndarray]:
    """Renders example `index` from its generator `gen` (see `get`)."""
    scene = self._scene(gen)
    video = np.empty((self.clip_length, self.resolution, self.resolution, 3),
                     np.uint8)
    for start in range(0, self.clip_length, self.chunk):
      stop = min(start + self.chunk, self.clip_length)
      video[start:stop] = self._render(scene, np.arange(start, stop))
    return _render.clip_example(video, 0)

  def _scene(self, gen: np.random.Generator) -> dict[str, np.ndarray]:
    """Draws every random quantity of a video (independent of speed)."""
    n, r = self.num_objects, self.resolution
    floor_level = gen.uniform(0.42, 0.58)
    kinds = gen.integers(len(OBJECT_TYPES), size=n)
    colours = PALETTE[gen.integers(len(PALETTE), size=n)]
    sizes = np.asarray(_SIZES, np.float32)[gen.integers(3, size=n)] * r
    shininess = gen.choice([0.15, 0.7], size=n)  # rubber or metal
    yaw0 = gen.uniform(0.0, 2.0 * np.pi, size=n)
    turn = gen.uniform(-3.0, 3.0, size=n)  # radians per frame width slid

    # Closed two-harmonic curves, each axis normalised to [-1, 1].
    tau = np.linspace(0.0, 2.0 * np.pi, _DENSE + 1)
    unit = []
    for _ in range(2):
      f2 = gen.integers(2, 4, size=n)[:, None]
      a2 = gen.uniform(0.0, 0.6, size=n)[:, None]
      ph = gen.uniform(0.0, 2.0 * np.pi, size=(n, 2))
      c = np.sin(tau + ph[:, :1]) + a2 * np.sin(f2 * tau + ph[:, 1:])
      unit.append(c / np.abs(c).max(axis=1, keepdims=True))
    # Room left for each object's farthest point at the largest scale.
    reach = 1.4 * _PERSPECTIVE[1] * sizes[:, None]
    half_room = np.maximum(0.5 * r - reach, 0.0)
    amp = gen.uniform(0.4, 1.0, size=(n, 2))[..., None] * half_room[:, None]
    centre = 0.5 * r + gen.uniform(-1.0, 1.0, size=(n, 2))[..., None] * (
        half_room[:, None] - amp)
    path = centre + amp * np.stack(unit, axis=1)  # [N, 2, DENSE+1]
    step = np.linalg.norm(np.diff(path, axis=2), axis=1)
    arc = np.concatenate([np.zeros((n, 1)), np.cumsum(step, axis=1)], axis=1)
    scene = {
        'floor_level': np.float32(floor_level), 'kinds': kinds,
        'colours': colours, 'sizes': sizes, 'shininess': shininess,
        'yaw0': yaw0, 'turn': turn, 'path': path, 'arc': arc,
        'start': gen.uniform(0.0, 1.0, size=n) * arc[:, -1],
        'pace': gen.uniform(0.6, 1.4, size=n),
    }
    # Drawn last, so the continuous stream's scenes are unchanged by it.
    if self.motion == 'intermittent':
      scene['progress'] = np.stack(
          [self._moving_frames(gen) for _ in range(n)])
    return scene

  def _moving_frames(self, gen: np.random.Generator) -> np.ndarray:
    """[num_frames + 1]: an object's travel, in moving frames, by frame."""
    velocity = np.zeros((self.clip_length,))
    frame = int(gen.integers(0, _REST[1]))  # A random phase.
    while frame < self.clip_length:
      length = int(gen.integers(_MOVE[0], _MOVE[1] + 1))
      ease = np.sin(np.pi * (np.arange(length) + 0.5) / length) ** 2
      stop = min(frame + length, self.clip_length)
      velocity[frame:stop] = 2.0 * ease[:stop - frame]  # Mean 1 per move.
      frame += length + int(gen.integers(_REST[0], _REST[1] + 1))
    return np.concatenate([[0.0], np.cumsum(velocity)])

  def _positions(self, scene, frames: np.ndarray):
    """Centres [N, T] (x, y), scaled sizes and yaw angles at `frames`."""
    r = self.resolution
    if 'progress' in scene:
      moved = scene['progress'][:, frames]  # [N, T]
    else:
      moved = frames[None, :]
    travel = self.speed * r * scene['pace'][:, None] * moved
    total = scene['arc'][:, -1:]
    s = (scene['start'][:, None] + travel) % np.maximum(total, 1e-6)
    xy = [np.stack([np.interp(s[i], scene['arc'][i], scene['path'][i, a])
                    for i in range(self.num_objects)]) for a in (0, 1)]
    x, y = (v.astype(np.float32) for v in xy)
    lo, hi = _PERSPECTIVE
    size = scene['sizes'][:, None] * (lo + (hi - lo) * y / r)
    yaw = scene['yaw0'][:, None] + scene['turn'][:, None] * travel / r
    return x, y, size.astype(np.float32), yaw.astype(np.float32)

  def _render(self, scene, frames: np.ndarray) -> np.ndarray:
    r, n, t = self.resolution, self.num_objects, len(frames)
    x, y, size, yaw = self._positions(scene, frames)
    ys, xs = _render.pixel_grid(r)
    # Floor: lit from the upper left, a little darker towards the edges.
    fall = ((xs - 0.35 * r) ** 2 + (ys - 0.3 * r) ** 2) / (r * r)
    floor = scene['floor_level'] * (1.1 - 0.5 * fall)
    image = np.broadcast_to(floor[..., None], (t, r, r, 3)).copy()

    # Soft shadows, cast down and to the right (order does not matter).
    dx, dy = _render.offsets(ys, xs, x + 0.45 * size, y + 0.55 * size)
    sx, sy = dx / (1.2 * size[..., None, None]), dy / (0.7 * size[..., None,
                                                                    None])
    shadow = np.clip(1.3 - np.sqrt(sx * sx + sy * sy), 0.0, 1.0)
    image *= np.prod(1.0 - 0.35 * shadow, axis=0)[..., None]

    # Painter's algorithm: per frame, farther (smaller y) objects first.
    alpha = np.empty((n, t, r, r), np.float32)
    colour = np.empty((n, t, r, r, 3), np.float32)
    dx, dy = _render.offsets(ys, xs, x, y)
    for i in range(n):
      alpha[i], colour[i] = self._shade(scene, i, dx[i], dy[i], size[i],
                                        yaw[i])
    order = np.argsort(y, axis=0, kind='stable')
    frame_ids = np.arange(t)
    for rank in range(n):
      a = alpha[order[rank], frame_ids][..., None]
      image += a * (colour[order[rank], frame_ids] - image)
    return _render.to_uint8(image)

  def _shade(self, scene, i: int, dx, dy, size, yaw):
    """Coverage [T,H,W] and shaded colour [T,H,W,3] of object i."""
    kind = OBJECT_TYPES[scene['kinds'][i]]
    base = scene['colours'][i]
    s = size[:, None, None]
    if kind == 'sphere':
      dist = _render.sdf_disk(dx, dy, yaw, size)
      nx, ny = dx / s, dy / s
      nz = np.sqrt(np.clip(1.0 - nx * nx - ny * ny, 0.0, 1.0))
      lambert = np.clip(nx * _LIGHT[0] + ny * _LIGHT[1] + nz * _LIGHT[2],
                        0.0, 1.0)
      spec = np.clip(nx * _HALF[0] + ny * _HALF[1] + nz * _HALF[2], 0.0,
                     1.0) ** 24
      shade = (0.3 + 0.7 * lambert)[..., None] * base
      shade = shade + (scene['shininess'][i] * spec)[..., None]
    elif kind == 'cube':
      dist = _render.sdf_square(dx, dy, yaw, 0.85 * size)
      # Flat lit face with a darker rim, brighter towards the light.
      ramp = np.clip(0.65 - 0.25 * (dx * 0.6 + dy * 0.8) / s, 0.3, 1.0)
      rim = 0.7 + 0.3 * np.clip(-dist / 1.5, 0.0, 1.0)
      shade = (ramp * rim)[..., None] * base
    else:  # cone: apex up, lit from the left.
      dist = _render.sdf_triangle(dx, dy, np.full_like(yaw, -0.5 * np.pi),
                                  0.8 * size)
      ramp = np.clip(0.7 - 0.45 * dx / s, 0.25, 1.0)
      shade = ramp[..., None] * base
    return _render.coverage(dist), np.clip(shade, 0.0, 1.0)
