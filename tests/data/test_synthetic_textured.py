"""TexturedObjects: format, determinism, splits, and smooth time."""

import numpy as np
import pytest

from sideways_jax.data import make_source
from sideways_jax.data.registry import StridedSource
from sideways_jax.data.synthetic import TexturedObjects
from sideways_jax.data.synthetic import textured_objects


def _source(split='train', stride=1, **kwargs):
  return make_source('textured_objects', split=split, root=None,
                     clip_length=6, stride=stride, resolution=24, train=True,
                     num_videos=12, **kwargs)


def test_format_labels_and_determinism():
  a, b = _source(), _source()
  assert a.num_classes == len(textured_objects.CLASS_NAMES) == 10
  assert len(set(textured_objects.CLASS_NAMES)) == 10
  for index in range(len(a)):
    ex = a.get(index, np.random.default_rng(index))
    assert ex['video'].shape == (6, 24, 24, 3)
    assert ex['video'].dtype == np.uint8 and ex['video'].std() > 5.0
    assert int(ex['label']) == index % 10 and ex['label'].dtype == np.int32
    assert ex['mask'].shape == (6,) and ex['mask'].all()
    # Content ignores the loader's rng and the order of access.
    assert (b.get(len(a) - 1 - index, None)['video'].tobytes()
            == a.get(len(a) - 1 - index, np.random.default_rng(7))[
                'video'].tobytes())
  with pytest.raises(IndexError):
    a.get(12, None)
  with pytest.raises(ValueError):
    TexturedObjects(4, 4, 16, 0, speed=-1.0)


def test_splits_and_seeds_differ():
  videos = {
      name: [s.get(i, None)['video'].tobytes() for i in range(len(s))]
      for name, s in [('train', _source('train')), ('val', _source('val')),
                      ('test', _source('test')),
                      ('seed1', _source('train', seed=1))]}
  everything = [v for vs in videos.values() for v in vs]
  assert len(set(everything)) == len(everything)


def test_speed_rescales_time_and_frames_change_smoothly():
  # Speed only changes the clock, and a native stride shows the frames a
  # strided reader of the full-rate video would (noise off: its draws
  # depend on the number of frames rendered).
  fast = TexturedObjects(3, 6, 24, 5, speed=0.04, noise=0.0)
  strided = _source('train', stride=2, seed=5, noise=0.0, speed=0.02)
  full = StridedSource(TexturedObjects(3, 11, 24, 5, noise=0.0), 2)
  for index in range(3):
    np.testing.assert_array_equal(fast.get(index, None)['video'],
                                  full.get(index, None)['video'])
    np.testing.assert_array_equal(strided.get(index, None)['video'],
                                  full.get(index, None)['video'])
  # Smooth like real footage: neighbouring frames differ far less than
  # frames 12 steps apart.
  video = TexturedObjects(10, 13, 32, 0, noise=0.0).get(3, None)['video']
  video = video.astype(np.float32)
  near = np.abs(video[1:] - video[:-1]).mean()
  far = np.abs(video[12] - video[0]).mean()
  assert near < 0.35 * far
