"""Random-number videos for speed runs.

The paper times training on clips of random numbers to keep data loading
out of the measurement (§4.3, Table 2). Content carries no signal: uniform
uint8 noise with a uniformly random label.
"""

from __future__ import annotations

import numpy as np

from sideways_jax.data.synthetic import _render

_TAG = 1  # Mixed into the seed so no two synthetic sets share streams.


class RandomVideos(_render.RenderedSource):
  """Uniform uint8 noise clips with random labels (a ClipSource).

  Example `index` is a deterministic function of (seed, index) only.
  """
  _tag = _TAG

  def __init__(self, num_videos: int, clip_length: int, resolution: int,
               num_classes: int, seed: int):
    self._init_set(num_videos, clip_length, resolution, seed,
                   num_classes=num_classes)
    self.num_classes = int(num_classes)

  def _example(self, index: int,
               gen: np.random.Generator) -> dict[str, np.ndarray]:
    """Noise with a random label (not index % num_classes)."""
    label = int(gen.integers(self.num_classes))
    r = self.resolution
    video = gen.integers(0, 256, (self.clip_length, r, r, 3), dtype=np.uint8)
    return _render.clip_example(video, label)
