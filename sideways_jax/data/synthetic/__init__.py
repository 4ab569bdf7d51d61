"""Synthetic video sets that ship with the code (no download needed).

Each set is a ClipSource: `len(source)`, `source.num_classes` and
`source.get(index, rng)` returning {'video': uint8 [K,H,W,3], 'label': int32
[], 'mask': bool [K]}. Content is a deterministic function of the set's seed
(and split) and the index, rendered on demand with vectorised numpy.

- `RandomVideos`: uniform noise clips for speed runs.
- `TexturedObjects`: shape x surface-pattern classes, smooth in time (the
  main job's data).
- `MovingShapes`: a shape x motion action set (motion is the hard part).
- `CaterLikeStream`: smoothly moving shaded objects for auto-encoding.
"""

from sideways_jax.data.synthetic.cater_like import CaterLikeStream
from sideways_jax.data.synthetic.moving_shapes import MovingShapes
from sideways_jax.data.synthetic.random_videos import RandomVideos
from sideways_jax.data.synthetic.textured_objects import TexturedObjects

__all__ = ['CaterLikeStream', 'MovingShapes', 'RandomVideos',
           'TexturedObjects']
