"""Format, determinism and split tests for the synthetic video sets."""

from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest

from sideways_jax.data.synthetic import (CaterLikeStream, MovingShapes,
                                         RandomVideos)
from sideways_jax.data.synthetic import moving_shapes

# Tiny sets: (factory taking a seed, expected frames per example).
FACTORIES: dict[str, tuple[Callable[[int], object], int]] = {
    'random': (lambda seed: RandomVideos(6, 4, 16, 5, seed), 4),
    'shapes': (lambda seed: MovingShapes(12, 6, 24, seed, 'train'), 6),
    'cater': (lambda seed: CaterLikeStream(3, 10, 24, seed), 10),
}


def _bytes(source, index: int) -> bytes:
  return source.get(index, np.random.default_rng(0))['video'].tobytes()


@pytest.mark.parametrize('name', sorted(FACTORIES))
def test_example_format(name):
  make, frames = FACTORIES[name]
  source = make(0)
  assert len(source) > 0
  for index in range(len(source)):
    ex = source.get(index, np.random.default_rng(index))
    assert set(ex) == {'video', 'label', 'mask'}
    res = source.resolution
    assert ex['video'].shape == (frames, res, res, 3)
    assert ex['video'].dtype == np.uint8
    assert ex['label'].shape == () and ex['label'].dtype == np.int32
    assert ex['mask'].shape == (frames,) and ex['mask'].dtype == bool
    assert ex['mask'].all()
    if source.num_classes == 0:
      assert int(ex['label']) == 0
    else:
      assert 0 <= int(ex['label']) < source.num_classes
    # Not a constant image: something was actually rendered.
    assert ex['video'].std() > 5.0


@pytest.mark.parametrize('name', sorted(FACTORIES))
def test_same_seed_same_bytes_other_seed_differs(name):
  make, _ = FACTORIES[name]
  a, b, c = make(3), make(3), make(4)
  for index in range(len(a)):
    assert _bytes(a, index) == _bytes(b, index)
    assert _bytes(a, index) != _bytes(c, index)
  # Distinct examples within one set.
  assert len({_bytes(a, i) for i in range(len(a))}) == len(a)


@pytest.mark.parametrize('name', sorted(FACTORIES))
def test_content_ignores_rng_and_access_order(name):
  make, _ = FACTORIES[name]
  forward = [_bytes(make(5), i) for i in range(len(make(5)))]
  source = make(5)
  backward = [
      source.get(i, np.random.default_rng(100 + i))['video'].tobytes()
      for i in reversed(range(len(source)))
  ][::-1]
  assert forward == backward
  assert source.get(0)['video'].tobytes() == forward[0]  # rng is optional


@pytest.mark.parametrize('name', sorted(FACTORIES))
def test_index_out_of_range_raises(name):
  source = FACTORIES[name][0](0)
  for bad in (-1, len(source)):
    with pytest.raises(IndexError):
      source.get(bad, np.random.default_rng(0))


@pytest.mark.parametrize('make', [
    lambda: RandomVideos(4, 4, 16, 0, 0),
    lambda: RandomVideos(4, 4, 16, 3, -1),
    lambda: MovingShapes(4, 4, 16, 0, 'val'),
    lambda: MovingShapes(4, 0, 16, 0, 'train'),
    lambda: MovingShapes(4, 4, 16, 0, 'train', trail=1.5),
    lambda: CaterLikeStream(4, 4, 0, 0),
    lambda: CaterLikeStream(4, 4, 16, 0, speed=-0.1),
    lambda: CaterLikeStream(4, 4, 16, 0, num_objects=0),
])
def test_invalid_arguments_raise(make):
  with pytest.raises(ValueError):
    make()


def test_random_videos_are_uniform_noise_with_random_labels():
  source = RandomVideos(200, 2, 8, 7, 0)
  examples = [source.get(i, None) for i in range(len(source))]
  pixels = np.concatenate([e['video'].ravel() for e in examples])
  counts = np.bincount(pixels, minlength=256)
  # 76,800 draws: each of the 256 values is expected 300 times.
  assert counts.min() > 200 and counts.max() < 400
  labels = Counter(int(e['label']) for e in examples)
  assert set(labels) == set(range(7))
  # Random, not cyclic: the first seven labels are not simply 0..6.
  assert [int(e['label']) for e in examples[:7]] != list(range(7))


def test_moving_shapes_classes_documented_and_balanced():
  assert MovingShapes.num_classes == len(moving_shapes.CLASS_NAMES) == 10
  assert len(set(moving_shapes.CLASS_NAMES)) == 10
  source = MovingShapes(53, 2, 16, 0, 'train', max_distractors=0)
  labels = [int(source.get(i)['label']) for i in range(len(source))]
  counts = Counter(labels)
  assert set(counts) == set(range(10))
  assert max(counts.values()) - min(counts.values()) <= 1
  # Every prefix of whole class cycles is exactly balanced.
  assert Counter(labels[:50]) == Counter({c: 5 for c in range(10)})


def test_moving_shapes_splits_are_disjoint():
  train = MovingShapes(30, 6, 24, 0, 'train')
  test = MovingShapes(30, 6, 24, 0, 'test')
  train_clips = {_bytes(train, i) for i in range(len(train))}
  test_clips = {_bytes(test, i) for i in range(len(test))}
  assert not train_clips & test_clips
  # Not even a shared first frame (backgrounds, objects, noise all differ).
  first = lambda s: {s.get(i)['video'][0].tobytes() for i in range(len(s))}
  assert not first(train) & first(test)
  # Same index, same class, different draws.
  for i in range(10):
    a, b = train.get(i), test.get(i)
    assert int(a['label']) == int(b['label'])
    assert np.abs(a['video'].astype(int) - b['video'].astype(int)).mean() > 5


def test_moving_shapes_trail_is_drawn():
  options = dict(max_distractors=0, noise=0.0)
  base = MovingShapes(4, 6, 24, 0, 'train', **options)
  no_trail = MovingShapes(4, 6, 24, 0, 'train', trail=0.0, **options)
  # square_right (0) and square_spin_cw (3) both leave a visible trail.
  for index in (0, 3):
    diff = np.abs(base.get(index)['video'].astype(int)
                  - no_trail.get(index)['video'].astype(int))
    assert diff.max() > 20


def test_moving_shapes_distractors_add_objects():
  def bright_fraction(max_distractors):
    source = MovingShapes(40, 2, 32, 0, 'train', noise=0.0, clutter=0.0,
                          max_distractors=max_distractors)
    # Objects have luma >= 0.5, the plain background <= 0.3.
    luma = [source.get(i)['video'].astype(np.float32) @ [0.299, 0.587, 0.114]
            for i in range(len(source))]
    return np.mean([np.mean(v > 0.4 * 255) for v in luma])

  # Uniformly 0-2 distractors, each about a quarter of the actor's area.
  assert bright_fraction(2) > 1.1 * bright_fraction(0)


def test_cater_like_speed_increases_frame_to_frame_difference():
  speeds = (0.0, 0.005, 0.01, 0.02, 0.04)
  lag1 = []
  for speed in speeds:
    source = CaterLikeStream(3, 12, 32, 0, speed=speed)
    videos = [source.get(i)['video'].astype(np.float32) for i in range(3)]
    lag1.append(np.mean([np.abs(np.diff(v, axis=0)).mean() for v in videos]))
  assert lag1[0] == 0.0  # Speed 0 is a still scene.
  assert all(a < b for a, b in zip(lag1, lag1[1:])), lag1


def test_cater_like_default_speed_is_smooth_but_drifts():
  source = CaterLikeStream(4, 32, 32, 1)
  lag1, lag10 = [], []
  for i in range(len(source)):
    v = source.get(i)['video'].astype(np.float32) / 255.0
    lag1.append(np.mean((v[1:] - v[:-1]) ** 2))
    lag10.append(np.mean((v[10:] - v[:-10]) ** 2))
  # Consecutive frames close; ten steps apart several times farther.
  assert np.mean(lag1) < 0.004
  assert np.mean(lag10) > 4.0 * np.mean(lag1)


def test_cater_like_speed_only_rescales_time():
  slow = CaterLikeStream(2, 9, 32, 7, speed=0.01).get(1)['video']
  fast = CaterLikeStream(2, 5, 32, 7, speed=0.02).get(1)['video']
  # Frame 2t at speed s is frame t at speed 2s (up to float rounding).
  diff = np.abs(slow[::2].astype(int) - fast.astype(int))
  assert diff.max() <= 1
  assert np.abs(slow[0].astype(int) - slow[-1].astype(int)).max() > 50


def test_cater_like_chunking_does_not_change_video():
  a = CaterLikeStream(1, 20, 24, 2, chunk=3).get(0)['video']
  b = CaterLikeStream(1, 20, 24, 2, chunk=64).get(0)['video']
  assert a.tobytes() == b.tobytes()


def test_moving_shapes_bounding_boxes_do_not_change_pixels(monkeypatch):
  from sideways_jax.data.synthetic import _render
  cropped = [MovingShapes(10, 5, 24, 0, 'test').get(i)['video']
             for i in range(10)]
  monkeypatch.setattr(_render, 'bounding_box',
                      lambda x, y, reach, r: (slice(0, r), slice(0, r)))
  full = [MovingShapes(10, 5, 24, 0, 'test').get(i)['video']
          for i in range(10)]
  assert all(a.tobytes() == b.tobytes() for a, b in zip(cropped, full))
