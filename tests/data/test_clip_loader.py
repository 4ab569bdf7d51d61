"""The threaded loader: layout, determinism, epochs, sharding, corrupt videos."""

import logging

import numpy as np
import pytest

from sideways_jax.data.loader import epoch_order
from sideways_jax.data.loader import make_loader
from sideways_jax.data.sampling import ClipSpec
from sideways_jax.data.source import VideoReadError
from sideways_jax.data.ucf101 import ucf101_source

K, H = 3, 4


class FakeSource:
  """In-memory source: every pixel of example i holds i; label i % 5.

  The video also stores one draw of the rng in its second channel, so tests
  see whether the per-example randomness is reproduced.
  """

  num_classes = 5

  def __init__(self, n, bad=()):
    self.n = n
    self.bad = set(bad)
    self.calls = 0

  def __len__(self):
    return self.n

  def get(self, index, rng):
    self.calls += 1
    if index in self.bad:
      raise VideoReadError(f'video{index}.avi', 'corrupt for the test')
    video = np.full((K, H, H, 3), index, np.uint8)
    video[..., 1] = rng.integers(256)
    return {'video': video, 'label': np.asarray(index % 5, np.int32),
            'mask': np.ones([K], bool)}


def _take(loader, n):
  with loader:
    return [next(loader) for _ in range(n)]


def _ids(batch):
  return batch['video'][0, :, 0, 0, 0].astype(int)


def test_train_batches_are_time_major():
  batch = _take(make_loader(FakeSource(10), 4, seed=0, train=True,
                            process_index=0, process_count=1), 1)[0]
  assert batch['video'].shape == (K, 4, H, H, 3)
  assert batch['video'].dtype == np.uint8
  assert batch['mask'].shape == (K, 4) and batch['mask'].dtype == np.bool_
  assert batch['label'].shape == (4,) and batch['label'].dtype == np.int32
  assert 'example_valid' not in batch
  np.testing.assert_array_equal(batch['label'], _ids(batch) % 5)


def test_same_seed_same_batches_whatever_the_threading():
  def run(threads, prefetch):
    return _take(make_loader(FakeSource(13), 3, seed=5, train=True,
                             num_threads=threads, prefetch=prefetch,
                             process_index=0, process_count=1), 9)
  a, b = run(1, 1), run(4, 3)
  for x, y in zip(a, b):
    for key in x:
      np.testing.assert_array_equal(x[key], y[key])
  other = run(2, 2)
  assert other is not a
  c = _take(make_loader(FakeSource(13), 3, seed=6, train=True,
                        process_index=0, process_count=1), 9)
  assert any((_ids(x) != _ids(y)).any() for x, y in zip(a, c))


def test_epochs_are_fresh_permutations_with_remainder_dropped():
  loader = make_loader(FakeSource(10), 3, seed=1, train=True,
                       process_index=0, process_count=1)
  assert loader.batches_per_epoch == 3
  batches = _take(loader, 6)
  first = np.concatenate([_ids(b) for b in batches[:3]])
  second = np.concatenate([_ids(b) for b in batches[3:]])
  assert len(set(first)) == 9 and len(set(second)) == 9
  assert list(first) != list(second)
  np.testing.assert_array_equal(first, epoch_order(10, 1, 0, process_index=0,
                                                   process_count=1)[:9])


def test_start_step_resumes_the_same_stream():
  full = _take(make_loader(FakeSource(10), 3, seed=2, train=True,
                           process_index=0, process_count=1), 7)
  source = FakeSource(10)
  resumed = _take(make_loader(source, 3, seed=2, train=True, start_step=4,
                              prefetch=1, process_index=0, process_count=1), 3)
  for x, y in zip(full[4:], resumed):
    np.testing.assert_array_equal(x['video'], y['video'])
  assert source.calls <= 3 * 3 + 2 * 3  # skipped batches were not decoded


def test_eval_is_one_ordered_pass_with_padded_last_batch():
  loader = make_loader(FakeSource(7), 3, seed=0, train=False,
                       process_index=0, process_count=1)
  assert loader.batches_per_epoch == 3
  batches = list(loader)
  assert len(batches) == 3
  np.testing.assert_array_equal(_ids(batches[0]), [0, 1, 2])
  last = batches[-1]
  np.testing.assert_array_equal(last['example_valid'], [True, False, False])
  assert _ids(last)[0] == 6 and not last['video'][:, 1:].any()
  assert not last['mask'][:, 1:].any() and last['mask'][:, 0].all()
  with pytest.raises(StopIteration):
    next(loader)


def test_eval_ignores_the_seed_order():
  a = list(make_loader(FakeSource(5), 5, seed=0, train=False,
                       process_index=0, process_count=1))
  b = list(make_loader(FakeSource(5), 5, seed=9, train=False,
                       process_index=0, process_count=1))
  np.testing.assert_array_equal(_ids(a[0]), _ids(b[0]))


def test_eval_shards_are_disjoint_cover_everything_and_stay_in_lockstep():
  seen, counts = [], set()
  for p in range(3):
    batches = list(make_loader(FakeSource(10), 2, seed=0, train=False,
                               process_index=p, process_count=3))
    counts.add(len(batches))
    for b in batches:
      seen += list(_ids(b)[b['example_valid']])
  assert counts == {2}  # ceil(ceil(10/3) / 2) on every process
  assert sorted(seen) == list(range(10))


def test_train_shards_are_disjoint_within_an_epoch():
  shards = []
  for p in range(2):
    loader = make_loader(FakeSource(11), 2, seed=3, train=True,
                         process_index=p, process_count=2)
    assert loader.batches_per_epoch == 2  # 11 // 2 = 5 per process -> 2
    shards.append(set(np.concatenate([_ids(b) for b in _take(loader, 2)])))
  assert len(shards[0]) == 4 and len(shards[1]) == 4
  assert not shards[0] & shards[1]


def test_corrupt_videos_are_substituted_in_training(caplog):
  source = FakeSource(12, bad={1, 4, 7})
  with caplog.at_level(logging.WARNING):
    loader = make_loader(source, 4, seed=0, train=True, process_index=0,
                         process_count=1)
    batches = _take(loader, 6)  # two epochs
  for b in batches:
    ids = _ids(b)
    assert not set(ids) & source.bad
    np.testing.assert_array_equal(b['label'], ids % 5)  # labels never shift
  assert loader.stats.bad_indices == {1, 4, 7}
  assert loader.stats.num_skipped >= 6  # each bad index met in both epochs
  assert 'video4.avi' in caplog.text
  again = _take(make_loader(FakeSource(12, bad={1, 4, 7}), 4, seed=0,
                            train=True, num_threads=1, process_index=0,
                            process_count=1), 6)
  for x, y in zip(batches, again):
    np.testing.assert_array_equal(x['video'], y['video'])


def test_corrupt_videos_become_invalid_examples_in_eval():
  loader = make_loader(FakeSource(5, bad={0, 3}), 5, seed=0, train=False,
                       process_index=0, process_count=1)
  (batch,) = list(loader)
  np.testing.assert_array_equal(batch['example_valid'],
                                [False, True, True, False, True])
  np.testing.assert_array_equal(_ids(batch)[[1, 2, 4]], [1, 2, 4])
  assert loader.stats.num_skipped == 2


def test_all_corrupt_gives_up_with_a_clear_error():
  loader = make_loader(FakeSource(4, bad=range(4)), 2, seed=0, train=True,
                       max_substitutions=3, process_index=0, process_count=1)
  with pytest.raises(RuntimeError, match='unreadable videos in a row'):
    _take(loader, 1)


def test_bad_arguments():
  with pytest.raises(ValueError, match='fewer than one batch'):
    make_loader(FakeSource(5), 3, seed=0, train=True, process_index=0,
                process_count=2)
  with pytest.raises(ValueError, match='process_index'):
    make_loader(FakeSource(5), 1, seed=0, train=True, process_index=2,
                process_count=2)
  with pytest.raises(ValueError, match='no example'):
    make_loader(FakeSource(0), 1, seed=0, train=False, process_index=0,
                process_count=1)


def test_defaults_to_jax_process_layout():
  loader = make_loader(FakeSource(4), 2, seed=0, train=True)
  assert (loader.process_index, loader.process_count) == (0, 1)
  loader.close()


def test_real_videos_with_a_corrupt_file(ucf101_root, fx):
  fx.write_corrupt(ucf101_root / 'UCF-101' / 'Archery' /
                   'v_Archery_g01_c01.avi')
  spec = ClipSpec(clip_length=4, stride=2, resolution=8, train=False)
  source = ucf101_source(ucf101_root, split='test', fold=1, spec=spec)
  loader = make_loader(source, 4, seed=0, train=False, num_threads=2,
                       process_index=0, process_count=1)
  (batch,) = list(loader)
  assert batch['video'].shape == (4, 4, 8, 8, 3)
  np.testing.assert_array_equal(batch['example_valid'],
                                [True, False, True, True])
  np.testing.assert_array_equal(batch['label'][batch['example_valid']],
                                [0, 2, 3])
  np.testing.assert_array_equal(fx.frame_ids(batch['video'][:, 0]),
                                [2, 4, 6, 8])
  assert loader.stats.bad_indices == {1}
  assert 'v_Archery_g01_c01.avi' in loader.stats.messages[1]
