"""The threaded loader: layout, determinism, epochs, sharding, bad videos."""

import json
import logging
import pathlib

import numpy as np
import pytest

from sideways_jax.data.files import VideoEntry
from sideways_jax.data.files import VideoFileSource
from sideways_jax.data.folder import folder_source
from sideways_jax.data.loader import epoch_order
from sideways_jax.data.loader import make_loader
from sideways_jax.data.sampling import ClipSpec
from sideways_jax.data.source import AllVideosUnreadable
from sideways_jax.data.source import UnreadableVideosError
from sideways_jax.data.source import VideoReadError
from sideways_jax.data.ucf101 import ucf101_source
from sideways_jax.data.video import VideoFile

K, H = 3, 4


class FakeSource:
  """In-memory source: every pixel of example i holds i; label i % 5.

  The video also stores one draw of the rng in its second channel, so tests
  see whether the per-example randomness is reproduced. Examples in
  `truncated` say they were padded because their video is truncated.
  """

  num_classes = 5

  def __init__(self, n, bad=(), truncated=()):
    self.n = n
    self.bad = set(bad)
    self.truncated = set(truncated)
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
            'mask': np.ones([K], bool),
            'truncated': np.asarray(index in self.truncated)}


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
  assert caplog.text.count('video4.avi') == 1  # warned once
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
  assert loader.stats.as_dict() == {
      'unreadable_videos': 2, 'unreadable_skips': 2, 'truncated_videos': 0,
      'truncated_clips': 0, 'unscored_examples': 2}


@pytest.mark.parametrize('train', [True, False])
def test_all_unreadable_is_one_line_naming_the_true_count(train):
  # 6 videos, 17 attempts allowed: the message counts videos, not attempts.
  loader = make_loader(FakeSource(6, bad=range(6)), 2, seed=0, train=train,
                       max_substitutions=16, process_index=0, process_count=1)
  with pytest.raises(AllVideosUnreadable) as info:
    _take(loader, 1)
  message = str(info.value)
  assert message.startswith('all 6 videos of the data source are unreadable')
  assert '\n' not in message and 'video' in message
  assert isinstance(info.value, ValueError)


def test_unreadable_in_a_row_counts_distinct_videos():
  loader = make_loader(FakeSource(40, bad=range(39)), 1, seed=0, train=True,
                       max_substitutions=5, process_index=0, process_count=1)
  with pytest.raises(UnreadableVideosError,
                     match='^6 different videos in a row are unreadable'):
    _take(loader, 20)


def _stats_run(source_args, steps, *, start_step=0, state=None):
  loader = make_loader(FakeSource(*source_args), 2, seed=3, train=True,
                       start_step=start_step, process_index=0,
                       process_count=1)
  if state is not None:
    loader.set_state(json.loads(json.dumps(state)))  # As a checkpoint would.
  batches = _take(loader, steps)
  return batches, loader


def test_resume_with_state_gives_the_same_batches_and_counts():
  args = (12, {1, 4}, {2, 7})
  full, straight = _stats_run(args, 8)
  _, first = _stats_run(args, 3)
  resumed, second = _stats_run(args, 5, start_step=3,
                               state=first.get_state())
  for x, y in zip(full[3:], resumed):
    np.testing.assert_array_equal(x['video'], y['video'])
    assert 'truncated' not in y  # Counted, not batched.
  assert second.stats.as_dict() == straight.stats.as_dict()
  assert straight.stats.as_dict()['truncated_videos'] == 2
  assert second.get_state() == straight.get_state()


def test_resumed_loader_excludes_what_the_first_one_excluded():
  # The first process found video 5 unreadable (say, a network disk hiccup);
  # the resumed one skips it too, without reading it, though it now reads.
  _, first = _stats_run((12, {5}), 6)
  state = first.get_state()
  assert state['unreadable'] == {'5': "cannot read video 'video5.avi': "
                                      'corrupt for the test'}
  resumed, loader = _stats_run((12,), 6, start_step=6, state=state)
  assert 5 not in np.concatenate([_ids(b) for b in resumed])
  assert loader.stats.bad_indices == {5}


def test_set_state_checks_step_and_timing():
  _, first = _stats_run((12,), 2)
  loader = make_loader(FakeSource(12), 2, seed=3, train=True, start_step=3,
                       process_index=0, process_count=1)
  with loader:
    with pytest.raises(ValueError, match='from step 2 but this loader starts '
                       'at step 3'):
      loader.set_state(first.get_state())
    with pytest.raises(ValueError, match='keys'):
      loader.set_state({'step': 3})
    next(loader)
    with pytest.raises(ValueError, match='before the first batch'):
      loader.set_state(loader.get_state())


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


def _decodable(path):
  with VideoFile(path) as video:
    return video.num_frames(), len(video.read(range(video.num_frames())))


def test_truncated_video_is_padded_never_skipped(tmp_path, fx):
  path = fx.write_truncated(tmp_path / 't.avi')
  header, decodable = _decodable(path)
  assert header == fx.MAX_FRAMES and 10 <= decodable < header
  spec = ClipSpec(clip_length=4, stride=3, resolution=8, train=True,
                  crop_fraction=1.0)
  source = VideoFileSource([VideoEntry(str(path), 0)], num_classes=1,
                           spec=spec)
  flags = set()
  for seed in range(12):  # Windows start anywhere in the header's 30 frames.
    example = source.get(0, np.random.default_rng(seed))
    assert example['mask'].all()  # The window fits in what decodes.
    assert fx.frame_ids(example['video']).max() < decodable
    flags.add(bool(example['truncated']))
  assert flags == {True, False}
  # A window longer than what decodes is padded with mask False.
  long = VideoFileSource([VideoEntry(str(path), 0)], num_classes=1,
                         spec=ClipSpec(clip_length=10, stride=3, resolution=8,
                                       train=False, crop_fraction=1.0))
  example = long.get(0, np.random.default_rng(0))
  real = -(-decodable // 3)
  np.testing.assert_array_equal(example['mask'], np.arange(10) < real)
  np.testing.assert_array_equal(fx.frame_ids(example['video']),
                                np.minimum(np.arange(10), real - 1) * 3)


def test_loader_counts_truncated_and_unreadable_files(tmp_path, fx):
  fx.write_video(tmp_path / 'a' / 'good.avi', 20)
  fx.write_truncated(tmp_path / 'a' / 'short.avi')
  (tmp_path / 'a' / 'empty.avi').write_bytes(b'')
  fx.write_corrupt(tmp_path / 'a' / 'text.avi')
  # The centred window of 28 frames reaches past what decodes.
  spec = ClipSpec(clip_length=10, stride=3, resolution=8, train=False)
  source = folder_source(tmp_path, split='all', spec=spec)
  loader = make_loader(source, 4, seed=0, train=False, process_index=0,
                       process_count=1)
  (batch,) = list(loader)
  names = [pathlib.Path(e.path).name for e in source.entries]
  assert names == ['empty.avi', 'good.avi', 'short.avi', 'text.avi']
  np.testing.assert_array_equal(batch['example_valid'],
                                [False, True, True, False])
  assert loader.stats.as_dict() == {
      'unreadable_videos': 2, 'unreadable_skips': 2, 'truncated_videos': 1,
      'truncated_clips': 1, 'unscored_examples': 2}


def test_a_folder_of_only_corrupt_videos_is_one_line(tmp_path, fx):
  for i in range(6):
    fx.write_corrupt(tmp_path / 'cls' / f'v{i}.avi')
  source = folder_source(tmp_path, split='all', spec=ClipSpec(
      clip_length=4, stride=1, resolution=8, train=True))
  loader = make_loader(source, 2, seed=0, train=True, process_index=0,
                       process_count=1)
  with pytest.raises(AllVideosUnreadable,
                     match='^all 6 videos of the data source are unreadable'):
    _take(loader, 1)
